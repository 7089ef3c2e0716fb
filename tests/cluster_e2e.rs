//! Multi-node runs on loopback, with several `rlcs` processes: a coordinator
//! (`rlcs run` with a `[cluster]`) and worker nodes (`rlcs node --join`) that serve
//! its verifier and replica pools over ractor_cluster.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Killed;
use serde_json::Value;

const SIM: &str = r#"name = "cluster-e2e"
seed = 11

[run]
iterations = ITERATIONS
batch_size = 16
group_size = 8
eval_rollouts = 2

[[domains]]
name = "arithmetic"
train = 200
eval = 40

[[domains]]
name = "counting"
train = 200
eval = 40

[curriculum]
sampler = "rlcs"

[actors]
loaders = 1
replicas = 1
verifiers = 1
"#;

fn rlcs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rlcs"))
}

/// Lines of a child's stderr, as they come.
fn lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns it.
fn expect_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {needle:?}: {e}"),
        }
    }
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(iterations: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sim = SIM.replace("ITERATIONS", &iterations.to_string());
        std::fs::write(dir.path().join("solo.toml"), &sim).unwrap();
        std::fs::write(
            dir.path().join("cluster.toml"),
            format!(
                "{sim}\n[cluster]\nlisten = \"127.0.0.1:0\"\ncookie_file = \"cookie\"\nwait_for_verifiers = 1\nwait_for_replicas = 1\njoin_timeout_s = 60\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("cookie"), "a shared secret\n").unwrap();
        std::fs::write(dir.path().join("wrong-cookie"), "not the secret\n").unwrap();
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The single-process run of the same experiment.
    fn solo(&self) -> Value {
        let out = self.path("solo");
        let o = rlcs()
            .args([
                "run",
                self.path("solo.toml").to_str().unwrap(),
                "--quiet",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        report(&out)
    }

    /// Starts the coordinator; returns it, its stderr lines and the join address.
    fn coordinator(&self, config: &str) -> (Killed, mpsc::Receiver<String>, String) {
        let mut child = Killed(
            rlcs()
                .args([
                    "run",
                    self.path(config).to_str().unwrap(),
                    "--quiet",
                    "--out",
                ])
                .arg(self.path("run"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let rx = lines(child.0.stderr.take().unwrap());
        let line = expect_line(&rx, "nodes join at ");
        let addr = line.rsplit(' ').next().unwrap().to_string();
        (child, rx, addr)
    }

    fn node(
        &self,
        addr: &str,
        role: &str,
        name: &str,
        cookie: &str,
    ) -> (Killed, mpsc::Receiver<String>) {
        let mut child = Killed(
            rlcs()
                .args([
                    "node", "--join", addr, "--role", role, "--slots", "2", "--name", name,
                ])
                .arg("--cookie-file")
                .arg(self.path(cookie))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let rx = lines(child.0.stderr.take().unwrap());
        (child, rx)
    }
}

fn report(run: &Path) -> Value {
    let text = std::fs::read_to_string(run.join("report.json")).unwrap();
    let mut r: Value = serde_json::from_str(&text).unwrap();
    rlcs_experiments::report::strip_wall_times(&mut r);
    // The cluster's own settings are the only difference in the config.
    if let Some(c) = r["config"].as_object_mut() {
        c.remove("cluster");
    }
    r
}

fn events(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn named<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn remote_verifier_and_replica_nodes_give_the_single_process_report() {
    let setup = Setup::new(40);
    let solo = setup.solo();
    let (mut coord, _lines, addr) = setup.coordinator("cluster.toml");
    let (_v, v_lines) = setup.node(&addr, "verifiers", "v1", "cookie");
    let (_r, r_lines) = setup.node(&addr, "replicas", "r1", "cookie");
    expect_line(&v_lines, "joined");
    expect_line(&r_lines, "joined");
    assert!(coord.0.wait().unwrap().success(), "the coordinator failed");

    let run = setup.path("run");
    assert_eq!(report(&run), solo, "same seed, same report");
    let events = events(&run);
    let joined = named(&events, "node_joined");
    assert_eq!(joined.len(), 2, "{joined:?}");
    // Both nodes did real work: the remote pools answered jobs.
    let work = named(&events, "node_work");
    for (node, role) in [("v1", "verifiers"), ("r1", "replicas")] {
        let w = work
            .iter()
            .find(|e| e["node"] == node)
            .unwrap_or_else(|| panic!("no work recorded for {node}: {work:?}"));
        assert_eq!(w["role"], role);
        assert!(w["jobs"].as_u64().unwrap() > 0, "{node} served no job");
    }
}

#[test]
fn a_killed_node_loses_no_sample_and_a_returning_node_is_readmitted() {
    let setup = Setup::new(600);
    let solo = setup.solo();
    let (mut coord, _lines, addr) = setup.coordinator("cluster.toml");
    let (mut v, v_lines) = setup.node(&addr, "verifiers", "v1", "cookie");
    let (mut r, r_lines) = setup.node(&addr, "replicas", "r1", "cookie");
    expect_line(&v_lines, "joined");
    expect_line(&r_lines, "joined");
    // Mid-run: both nodes die with jobs in flight.
    std::thread::sleep(Duration::from_millis(400));
    v.0.kill().unwrap();
    r.0.kill().unwrap();
    let _ = (v.0.wait(), r.0.wait());
    // The replica node comes back.
    let (_r2, r2_lines) = setup.node(&addr, "replicas", "r2", "cookie");
    expect_line(&r2_lines, "joined");
    assert!(coord.0.wait().unwrap().success(), "the coordinator failed");

    let run = setup.path("run");
    // Every sample scored exactly once: the same iterations, rollouts and results.
    assert_eq!(report(&run), solo, "same seed, same report");
    let events = events(&run);
    let lost: Vec<&str> = named(&events, "node_lost")
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    assert!(
        lost.contains(&"v1") && lost.contains(&"r1"),
        "lost: {lost:?}"
    );
    let joined: Vec<&str> = named(&events, "node_joined")
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    assert!(
        joined.contains(&"r2"),
        "the returning node was not re-admitted: {joined:?}"
    );
}

#[test]
fn a_node_with_the_wrong_cookie_is_refused() {
    // Long enough that the coordinator still runs when the node knocks.
    let setup = Setup::new(400);
    let config = std::fs::read_to_string(setup.path("cluster.toml"))
        .unwrap()
        .replace("wait_for_verifiers = 1", "wait_for_verifiers = 0")
        .replace("wait_for_replicas = 1", "wait_for_replicas = 0");
    std::fs::write(setup.path("open.toml"), config).unwrap();
    let (mut coord, _lines, addr) = setup.coordinator("open.toml");
    let (mut bad, bad_lines) = setup.node(&addr, "verifiers", "intruder", "wrong-cookie");
    // Refused at the handshake, at once: not after retries or a timeout.
    let knocked = std::time::Instant::now();
    let status = loop {
        if let Some(status) = bad.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            knocked.elapsed() < Duration::from_secs(8),
            "the node was not refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "a node with the wrong cookie must fail");
    assert!(
        coord.0.try_wait().unwrap().is_none(),
        "the run must still be going when the node is refused"
    );
    let said: Vec<String> = bad_lines.try_iter().collect();
    assert!(
        said.iter()
            .any(|l| l.contains("refused this node") && l.contains("cookie")),
        "{said:?}"
    );
    assert!(coord.0.wait().unwrap().success());
    let events = events(&setup.path("run"));
    assert!(named(&events, "node_joined").is_empty());
}

#[test]
fn a_cluster_without_its_nodes_or_secret_fails_clearly() {
    let setup = Setup::new(5);
    // Nobody joins within the timeout: the error says who is missing.
    let config = std::fs::read_to_string(setup.path("cluster.toml"))
        .unwrap()
        .replace("join_timeout_s = 60", "join_timeout_s = 0.5");
    std::fs::write(setup.path("lonely.toml"), config).unwrap();
    let o = rlcs()
        .args([
            "run",
            setup.path("lonely.toml").to_str().unwrap(),
            "--quiet",
            "--out",
        ])
        .arg(setup.path("lonely"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("0 of 1 verifier nodes"), "{err}");
    // A missing cookie file is named.
    std::fs::remove_file(setup.path("cookie")).unwrap();
    let o = rlcs()
        .args([
            "run",
            setup.path("cluster.toml").to_str().unwrap(),
            "--quiet",
            "--out",
        ])
        .arg(setup.path("nocookie"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("cookie file") && err.contains("cookie"),
        "{err}"
    );
    // A listen address that is not one names the key.
    let config = std::fs::read_to_string(setup.path("cluster.toml"))
        .unwrap()
        .replace("127.0.0.1:0", "nowhere");
    std::fs::write(setup.path("badaddr.toml"), config).unwrap();
    let o = rlcs()
        .args([
            "run",
            setup.path("badaddr.toml").to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cluster.listen"), "{err}");
}
