//! Traces of a run, through the real binary: with `OTEL_EXPORTER_OTLP_ENDPOINT` set
//! (or `[telemetry] otlp_endpoint` in the config),
//! spans reach an OTLP/HTTP receiver started by the test, whose request bodies are
//! decoded with the official OpenTelemetry protobuf definitions (the
//! `opentelemetry-proto` Python package); the same spans land in the run's
//! `spans.jsonl`, which `rlcs trace` reads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const CONFIG: &str = r#"name = "trace-e2e"
seed = 3

[run]
iterations = 4
batch_size = 8
group_size = 4
eval_rollouts = 1

[[domains]]
name = "arithmetic"
train = 64
eval = 16

[actors]
loaders = 1
replicas = 2
verifiers = 2
"#;

/// Runs `cmd` and fails the test with its stderr unless it succeeds.
fn succeed(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Accepts OTLP/HTTP POSTs, answers 200, and keeps every request body.
fn receiver() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            let mut line = String::new();
            let mut path = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if path.is_empty() {
                    path = line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_string();
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_ok() && path == "/v1/traces" {
                kept.lock().unwrap().push(body);
            }
            let mut stream = reader.into_inner();
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    (port, bodies)
}

/// Decodes OTLP export requests with the official protobuf definitions; returns
/// one `trace_id span_id parent_span_id name` line per span.
fn decode(bodies: &[Vec<u8>], dir: &Path) -> Vec<(String, String, String, String)> {
    let mut files = Vec::new();
    for (k, b) in bodies.iter().enumerate() {
        let f = dir.join(format!("body-{k}.bin"));
        std::fs::write(&f, b).unwrap();
        files.push(f);
    }
    let script = "import sys\n\
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest\n\
        for path in sys.argv[1:]:\n\
        \x20   req = ExportTraceServiceRequest()\n\
        \x20   req.ParseFromString(open(path, 'rb').read())\n\
        \x20   for rs in req.resource_spans:\n\
        \x20       for ss in rs.scope_spans:\n\
        \x20           for s in ss.spans:\n\
        \x20               print(s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex() or '-', s.name)\n";
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("the venv python (scripts/test installs opentelemetry-proto)");
    assert!(
        out.status.success(),
        "decoding OTLP: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, ' ').collect();
            (f[0].into(), f[1].into(), f[2].into(), f[3].into())
        })
        .collect()
}

#[test]
fn spans_reach_an_otlp_collector_and_the_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("exp.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let run_dir = dir.path().join("run");
    let (port, bodies) = receiver();
    succeed(
        Command::new(env!("CARGO_BIN_EXE_rlcs"))
            .args(["run", cfg.to_str().unwrap(), "--out"])
            .arg(&run_dir)
            .arg("--quiet")
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            )
            .env("RLCS_TRACE", "rlcs_actors=debug,rlcs_experiments=info")
            .stdout(Stdio::null()),
    );
    let bodies = bodies.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "no OTLP request reached the receiver");
    let spans = decode(&bodies, dir.path());
    let by_id: std::collections::HashMap<&str, &(String, String, String, String)> =
        spans.iter().map(|s| (s.1.as_str(), s)).collect();
    let parent_name = |s: &(String, String, String, String)| {
        by_id
            .get(s.2.as_str())
            .map(|p| p.3.clone())
            .unwrap_or_default()
    };
    // One trace: the run.
    let run = spans.iter().find(|s| s.3 == "run").expect("a run span");
    assert!(
        spans.iter().all(|s| s.0 == run.0),
        "every span in the run's trace"
    );
    // Handlers of at least three actors, each the child of the sender's span.
    for (child, parents) in [
        ("replica.generate", &["group"][..]),
        ("verifier.score", &["group"]),
        ("loader.load", &["load", "evaluate"]),
        ("curriculum.observe", &["observe"]),
        ("storage.append", &["store"]),
        ("learner.step", &["train"]),
        ("group", &["rollout_and_score", "evaluate"]),
        ("iteration", &["stage"]),
        ("stage", &["run"]),
    ] {
        let found: Vec<_> = spans.iter().filter(|s| s.3 == child).collect();
        assert!(!found.is_empty(), "no {child} span");
        for s in found {
            let parent = parent_name(s);
            assert!(
                parents.contains(&parent.as_str()),
                "parent of {child}: {parent}"
            );
        }
    }
    // Groups of RL iterations, not only of evaluations.
    assert!(spans
        .iter()
        .any(|s| s.3 == "group" && parent_name(s) == "rollout_and_score"));
    assert_eq!(spans.iter().filter(|s| s.3 == "iteration").count(), 4);

    // The same spans in the run directory, with the learner's links to its groups.
    let file = std::fs::read_to_string(run_dir.join("spans.jsonl")).unwrap();
    let local: Vec<serde_json::Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(local.len(), spans.len());
    let step = local.iter().find(|s| s["name"] == "learner.step").unwrap();
    let links = step["links"].as_array().unwrap();
    assert!(
        !links.is_empty(),
        "learner.step links to the groups it trained on"
    );
    for l in links {
        let id = l[1].as_str().unwrap();
        assert_eq!(by_id.get(id).map(|s| s.3.as_str()), Some("group"));
    }

    let report = Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(["trace"])
        .arg(&run_dir)
        .args(["--iteration", "2"])
        .output()
        .unwrap();
    assert!(report.status.success());
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("| rl |"), "{text}");
    assert!(text.contains("critical path of iteration 2"), "{text}");
    assert!(text.contains("learner.step"), "{text}");
    let missing = Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(["trace"])
        .arg(&run_dir)
        .args(["--iteration", "99"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no span of iteration 99"));
}

#[test]
fn the_config_can_name_the_collector_and_switch_telemetry_off() {
    let dir = tempfile::tempdir().unwrap();
    let (port, bodies) = receiver();
    // `[telemetry] otlp_endpoint`, no environment variable: the run's spans reach
    // the collector, a whole trace with the run at its root.
    let cfg = dir.path().join("exp.toml");
    std::fs::write(
        &cfg,
        format!("{CONFIG}\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let run_dir = dir.path().join("run");
    succeed(
        Command::new(env!("CARGO_BIN_EXE_rlcs"))
            .args(["run", cfg.to_str().unwrap(), "--out"])
            .arg(&run_dir)
            .arg("--quiet")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .stdout(Stdio::null()),
    );
    let bodies = bodies.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "no OTLP request reached the receiver");
    let spans = decode(&bodies, dir.path());
    let run = spans.iter().find(|s| s.3 == "run").expect("a run span");
    assert!(spans.iter().all(|s| s.0 == run.0), "one trace");
    assert_eq!(spans.iter().filter(|s| s.3 == "iteration").count(), 4);
    let local = std::fs::read_to_string(run_dir.join("spans.jsonl")).unwrap();
    assert_eq!(local.lines().count(), spans.len());

    // Spans and metrics off: no span file, and `--serve` is refused up front.
    let off = dir.path().join("off.toml");
    std::fs::write(
        &off,
        format!("{CONFIG}\n[telemetry]\nmetrics = false\nspans = false\n"),
    )
    .unwrap();
    let quiet_dir = dir.path().join("quiet");
    succeed(
        Command::new(env!("CARGO_BIN_EXE_rlcs"))
            .args(["run", off.to_str().unwrap(), "--out"])
            .arg(&quiet_dir)
            .arg("--quiet")
            .stdout(Stdio::null()),
    );
    assert!(quiet_dir.join("report.json").is_file());
    assert!(!quiet_dir.join("spans.jsonl").exists());
    let refused = Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args([
            "run",
            off.to_str().unwrap(),
            "--serve",
            "127.0.0.1:0",
            "--out",
        ])
        .arg(dir.path().join("served"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("telemetry.metrics = false"), "{err}");
    assert!(
        !dir.path().join("served").exists(),
        "nothing made on bad input"
    );
}
