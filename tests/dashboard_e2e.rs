//! The operator's view of a run, through the real binary: `rlcs run --serve` exposes
//! Prometheus metrics while the run goes on (parsed with the OpenMetrics parser of
//! Prometheus' own Python client), and `rlcs dashboard RUN_DIR` serves a finished
//! run's page, which headless Chromium renders with charts, the actor tree and the
//! latest rollouts, and no console errors.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Killed;

/// Long enough that the run is still going when the test first scrapes it.
const CONFIG: &str = r#"name = "dashboard-e2e"
seed = 5

[run]
iterations = 300
batch_size = 16
group_size = 8
eval_rollouts = 2

[[domains]]
name = "arithmetic"
train = 300
eval = 40

[[domains]]
name = "counting"
train = 300
eval = 40

[curriculum]
sampler = "rlcs"

[actors]
loaders = 1
replicas = 2
verifiers = 2
"#;

/// Reads lines from `reader` until one contains `http://ADDR/`; returns ADDR.
fn address(reader: impl Read) -> SocketAddr {
    for line in BufReader::new(reader).lines() {
        let line = line.expect("a line of output");
        if let Some(rest) = line.split("http://").nth(1) {
            let addr = rest.split('/').next().unwrap_or_default();
            return addr.parse().expect("a socket address");
        }
    }
    panic!("no http:// address printed");
}

/// A plain HTTP/1.1 GET; returns the status line's code, headers and body.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, head.to_string(), body.to_string()))
}

/// The value of the unlabelled sample `name` in OpenMetrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

fn venv_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Parses `text` with prometheus_client's strict OpenMetrics parser; returns the
/// metric families it found, or panics with the parser's complaint.
fn parse_openmetrics(text: &str) -> Vec<String> {
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        for f in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   print(f.name, f.type, len(f.samples))\n";
    let mut child = Command::new(venv_python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the repository's venv python (scripts/test installs prometheus_client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "/metrics is not valid OpenMetrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn chromium() -> PathBuf {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .expect("Chromium (scripts/test installs Debian's `chromium` when it is absent)")
}

#[test]
fn metrics_during_a_run_and_the_dashboard_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("exp.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let run_dir = dir.path().join("run");
    let mut run = Killed(
        Command::new(env!("CARGO_BIN_EXE_rlcs"))
            .args(["run", cfg.to_str().unwrap(), "--out"])
            .arg(&run_dir)
            .args(["--quiet", "--serve", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let addr = address(run.0.stderr.take().unwrap());
    assert!(addr.ip().is_loopback());

    // Scrape until an iteration has finished (the run goes on meanwhile).
    let deadline = Instant::now() + Duration::from_secs(120);
    let metrics = loop {
        let (code, head, body) = get(addr, "/metrics").expect("/metrics answers during the run");
        assert_eq!(code, 200);
        assert!(head.contains("application/openmetrics-text"), "{head}");
        if sample(&body, "rlcs_iteration").unwrap_or(0.0) >= 3.0 {
            break body;
        }
        assert!(Instant::now() < deadline, "no iteration finished: {body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let families = parse_openmetrics(&metrics);
    for family in [
        "rlcs_iteration gauge",
        "rlcs_reward gauge",
        "rlcs_accuracy gauge",
        "rlcs_tier_samples gauge",
        "rlcs_expansion_ratio_ema gauge",
        "rlcs_not_valid_rate gauge",
        "rlcs_pool_queue_depth gauge",
        "rlcs_actor_restarts counter",
        "rlcs_verifier_latency_seconds histogram",
        "rlcs_store_write_seconds histogram",
    ] {
        assert!(
            families.iter().any(|f| f.starts_with(family)),
            "{family} missing from {families:?}"
        );
    }
    for domain in ["all", "arithmetic", "counting"] {
        assert!(
            metrics.contains(&format!("rlcs_accuracy{{domain=\"{domain}\"}}")),
            "{domain}: {metrics}"
        );
    }
    for pool in ["loaders", "replicas", "verifiers"] {
        assert!(metrics.contains(&format!("rlcs_pool_queue_depth{{pool=\"{pool}\"}}")));
    }
    let count = sample(&metrics, "rlcs_verifier_latency_seconds_count").unwrap_or(0.0);
    assert!(count > 0.0, "verifier latencies recorded: {metrics}");
    let (code, _, state) = get(addr, "/api/state").unwrap();
    assert_eq!(code, 200);
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["run"], "dashboard-e2e");
    assert!(!state["iterations"].as_array().unwrap().is_empty());

    let status = run.0.wait().unwrap();
    assert!(status.success(), "the served run failed");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["iterations"].as_array().unwrap().len(), 300);
    assert!(run_dir.join("rollouts.jsonl").is_file());

    // After the fact: the dashboard of the finished run, rebuilt from its logs.
    let mut dash = Killed(
        Command::new(env!("CARGO_BIN_EXE_rlcs"))
            .args(["dashboard"])
            .arg(&run_dir)
            .args(["--serve", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = address(dash.0.stdout.take().unwrap());
    let (_, _, state) = get(addr, "/api/state").unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["status"], "finished");
    assert_eq!(state["iterations"].as_array().unwrap().len(), 300);
    let actors = state["actors"].as_array().unwrap();
    assert!(actors
        .iter()
        .any(|a| a["name"] == "verifiers" && a["workers"] == 2));
    let rollouts = state["rollouts"].as_array().unwrap();
    assert!(!rollouts.is_empty());
    assert!(rollouts
        .iter()
        .any(|r| r["domain"] == "counting" && r["image_png"].is_string()));

    // The page in a real browser: charts drawn from the run's data, no errors.
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=15000",
            "--window-size=1400,1000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{addr}/"))
        .output()
        .expect("chromium starts");
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page never rendered:\n{dom}\n{log}"
    );
    assert!(
        !dom.contains("data-errors"),
        "the page reported errors:\n{dom}"
    );
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output: {console:#?}");
    // Four RL charts with every iteration's point; no supervised stage, no loss chart.
    assert_eq!(dom.matches("class=\"uplot").count(), 4, "{dom}");
    assert!(dom.contains("data-points=\"300\""), "{dom}");
    assert!(
        dom.contains("data:image/png;base64,"),
        "rollout images shown"
    );
    assert!(dom.contains("verifiers ×2"), "actor tree shown");
}

#[test]
fn a_resumed_runs_live_page_starts_from_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.toml");
    std::fs::write(
        &short,
        CONFIG.replace("iterations = 300", "iterations = 20\ncheckpoint_every = 10"),
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    let status = Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(["run", short.to_str().unwrap(), "--out"])
        .arg(&run_dir)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    // The same run, extended, resumed with the live page.
    let long = dir.path().join("long.toml");
    std::fs::write(
        &long,
        CONFIG.replace(
            "iterations = 300",
            "iterations = 300\ncheckpoint_every = 10",
        ),
    )
    .unwrap();
    let mut run = Killed(
        Command::new(env!("CARGO_BIN_EXE_rlcs"))
            .args(["run", long.to_str().unwrap(), "--resume"])
            .arg(&run_dir)
            .args(["--quiet", "--serve", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let addr = address(run.0.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    let iterations = loop {
        let (_, _, state) = get(addr, "/api/state").expect("/api/state answers");
        let state: serde_json::Value = serde_json::from_str(&state).unwrap();
        let its: Vec<u64> = state["iterations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["iteration"].as_u64().unwrap())
            .collect();
        if its.len() > 22 {
            break its;
        }
        assert!(Instant::now() < deadline, "no iteration after the resume");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Every iteration once, from the first: the history before the checkpoint and
    // the live ones after it.
    let expected: Vec<u64> = (1..=iterations.len() as u64).collect();
    assert_eq!(iterations, expected);
    assert!(run.0.wait().unwrap().success());
}
