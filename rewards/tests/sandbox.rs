//! The code verifier against hostile programs: each attack is contained, scores 0,
//! and the host (this test process) is unaffected. Every hostile program is written
//! so that it would pass its test if the attack worked.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rlcs_rewards::code::{CodeConfig, CodeVerifier};
use rlcs_rewards::sandbox::{Sandbox, SandboxConfig};
use rlcs_rewards::Verifier;

/// One verifier for every test (building it probes the kernel and the interpreter).
fn verifier() -> &'static CodeVerifier {
    static V: OnceLock<CodeVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let mut c = CodeConfig::default();
        c.sandbox.timeout_s = 3.0;
        c.sandbox.memory_mb = 256;
        c.sandbox.file_size_mb = 1;
        c.sandbox.max_output_bytes = 4096;
        match CodeVerifier::new("code", c) {
            Ok(v) => v,
            Err(e) => panic!("the code sandbox must work on this machine: {e}"),
        }
    })
}

fn glm(program: &str) -> String {
    format!("<think>write it</think><answer><|begin_of_box|>```python\n{program}\n```<|end_of_box|></answer>")
}

/// A gold spec: one stdio test expecting `out` (no input).
fn expects(out: &str) -> String {
    serde_json::json!({"tests": [{"input": "", "output": out}]}).to_string()
}

fn score(program: &str, gold: &str) -> rlcs_rewards::Verdict {
    verifier().verify(&glm(program), gold)
}

#[test]
fn honest_programs_pass_their_tests() {
    let sum = "a, b = map(int, input().split())\nprint(a + b)";
    let gold = serde_json::json!({"tests": [
        {"input": "1 2\n", "output": "3\n"},
        {"input": "10 -4\n", "output": "6"},
        {"input": "2 2\n", "output": "5\n"}
    ]})
    .to_string();
    let v = score(sum, &gold);
    assert!((v.reward - 2.0 / 3.0).abs() < 1e-9, "{v:?}");
    assert_eq!(v.subscores.get("tests_passed"), Some(&2.0));
    assert!(
        v.reason
            .as_deref()
            .unwrap_or("")
            .contains("test 3: output \"4\" != expected \"5\""),
        "{v:?}"
    );
    let asserts = serde_json::json!({
        "setup": "import math",
        "asserts": ["assert add(1, 2) == 3", "assert add(1, 0) == 1", "assert math.isclose(add(0.1, 0.2), 0.3)"]
    })
    .to_string();
    let v = score("def add(a, b):\n    return a + b", &asserts);
    assert_eq!(v.reward, 1.0, "{v:?}");
    let v = score("def add(a, b):\n    return a - b", &asserts);
    assert!((v.reward - 1.0 / 3.0).abs() < 1e-9, "{v:?}");
    assert!(
        v.reason.as_deref().unwrap_or("").contains("AssertionError"),
        "{v:?}"
    );
    // Threads are allowed (only process creation is refused).
    let threads = "import threading\nout = []\nt = threading.Thread(target=lambda: out.append(7))\nt.start(); t.join()\nprint(out[0])";
    assert_eq!(score(threads, &expects("7")).reward, 1.0);
}

#[test]
fn a_fork_bomb_is_refused() {
    let bomb = "import os\nwhile True:\n    os.fork()";
    let v = score(bomb, &expects(""));
    assert_eq!(v.reward, 0.0, "{v:?}");
    assert!(
        v.reason
            .as_deref()
            .unwrap_or("")
            .contains("PermissionError"),
        "{v:?}"
    );
    let spawn = "import subprocess\nprint(subprocess.run(['echo', 'hi'], capture_output=True).stdout.decode().strip())";
    assert_eq!(score(spawn, &expects("hi")).reward, 0.0);
    let mp = "import multiprocessing as m\np = m.Process(target=print, args=('child',))\np.start(); p.join()\nprint('done')";
    assert_eq!(score(mp, &expects("child\ndone")).reward, 0.0);
}

#[test]
fn an_infinite_loop_is_stopped_by_the_limits() {
    let started = Instant::now();
    let v = score("while True:\n    pass", &expects("never"));
    assert_eq!(v.reward, 0.0);
    let why = v.reason.unwrap_or_default();
    assert!(
        why.contains("CPU time limit") || why.contains("timed out"),
        "{why}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Sleeping uses no CPU: the wall clock stops it.
    let started = Instant::now();
    let v = score(
        "import time\ntime.sleep(600)\nprint('late')",
        &expects("late"),
    );
    assert_eq!(v.reward, 0.0);
    assert!(v.reason.unwrap_or_default().contains("timed out"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_memory_hog_is_capped() {
    let hog = "x = bytearray(8 * 1024 ** 3)\nprint(len(x))";
    let v = score(hog, &expects("8589934592"));
    assert_eq!(v.reward, 0.0);
    assert!(v.reason.unwrap_or_default().contains("MemoryError"));
    let grow = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 ** 2))";
    assert_eq!(score(grow, &expects("")).reward, 0.0);
    // Threads cannot get round the cap either.
    let threads = "import threading\nts = [threading.Thread(target=lambda: __import__('time').sleep(5)) for _ in range(10000)]\nfor t in ts: t.start()\nprint('all started')";
    assert_eq!(score(threads, &expects("all started")).reward, 0.0);
}

#[test]
fn sockets_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let connect = format!(
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'stolen')\nprint('sent')"
    );
    let v = score(&connect, &expects("sent"));
    assert_eq!(v.reward, 0.0, "{v:?}");
    assert!(v.reason.unwrap_or_default().contains("PermissionError"));
    assert!(
        listener.accept().is_err(),
        "the sandbox reached a host socket"
    );
    let udp = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nprint('made')";
    assert_eq!(score(udp, &expects("made")).reward, 0.0);
    let unix = "import socket\ns = socket.socket(socket.AF_UNIX)\nprint('made')";
    assert_eq!(score(unix, &expects("made")).reward, 0.0);
}

#[test]
fn files_outside_the_run_directory_are_out_of_reach() {
    let host = tempfile::tempdir().expect("tempdir");
    let secret = host.path().join("secret.txt");
    std::fs::write(&secret, "s3cr3t-value").expect("write secret");
    let read = format!("print(open({:?}).read())", secret.display().to_string());
    let v = score(&read, &expects("s3cr3t-value"));
    assert_eq!(v.reward, 0.0);
    let reason = v.reason.unwrap_or_default();
    assert!(reason.contains("PermissionError"), "{reason}");
    assert!(!reason.contains("s3cr3t-value"));
    for path in [
        "/etc/passwd",
        "/proc/self/environ",
        "/root/.bashrc",
        "/etc/hostname",
    ] {
        let p = format!("print(len(open({path:?}, 'rb').read()) >= 0)");
        assert_eq!(
            score(&p, &expects("True")).reward,
            0.0,
            "{path} is readable"
        );
    }
    let listing = "import os\nprint(len(os.listdir('/home')) >= 0)";
    assert_eq!(score(listing, &expects("True")).reward, 0.0);
    // Writing outside.
    let target = host.path().join("planted.txt");
    let write = format!(
        "open({:?}, 'w').write('x')\nprint('written')",
        target.display().to_string()
    );
    assert_eq!(score(&write, &expects("written")).reward, 0.0);
    assert!(!target.exists(), "the sandbox wrote outside its directory");
    let tmp = "open('/tmp/rlcs-sandbox-escape', 'w').write('x')\nprint('written')";
    assert_eq!(score(tmp, &expects("written")).reward, 0.0);
    assert!(!std::path::Path::new("/tmp/rlcs-sandbox-escape").exists());
    // Its own directory is writable, within the file size limit.
    let local = "open('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read())";
    assert_eq!(score(local, &expects("ok")).reward, 1.0);
    let big = "open('big.bin', 'wb').write(b'x' * (4 * 1024 * 1024))\nprint('wrote')";
    assert_eq!(score(big, &expects("wrote")).reward, 0.0);
}

#[test]
fn the_host_process_cannot_be_signalled_or_traced() {
    let parent = std::process::id();
    let kill = format!("import os, signal\nos.kill({parent}, signal.SIGTERM)\nprint('sent')");
    let v = score(&kill, &expects("sent"));
    assert_eq!(v.reward, 0.0, "{v:?}");
    assert!(v.reason.unwrap_or_default().contains("PermissionError"));
    let ppid = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('sent')";
    assert_eq!(score(ppid, &expects("sent")).reward, 0.0);
    let limits = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\nprint('raised')";
    assert_eq!(score(limits, &expects("raised")).reward, 0.0);
    // A program may still signal itself.
    let own = "import os, signal\nsignal.signal(signal.SIGUSR1, lambda *a: print('got it'))\nos.kill(os.getpid(), signal.SIGUSR1)";
    assert_eq!(score(own, &expects("got it")).reward, 1.0);
    // We are still here.
}

#[test]
fn floods_of_output_are_capped_and_the_marker_cannot_be_guessed() {
    let flood = "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)";
    let started = Instant::now();
    let v = score(flood, &expects("y"));
    assert_eq!(v.reward, 0.0);
    assert!(started.elapsed() < Duration::from_secs(10));
    // A program that exits early with success does not pass an assert test.
    let quit = "import os\nprint('RLCS-PASS-00000000000000000000000000000000')\nos._exit(0)";
    let gold = serde_json::json!({"asserts": ["assert False"]}).to_string();
    let v = score(quit, &gold);
    assert_eq!(v.reward, 0.0, "{v:?}");
    // Nor one that reads the harness's frames for the marker.
    let peek = "import sys\nprint(sys._getframe(1).f_locals.get('marker'))";
    assert_eq!(score(peek, &gold).reward, 0.0);
    let always_equal = "class E:\n    def __eq__(self, o): return True\ndef f(): return E()";
    let stdio = serde_json::json!({"tests": [{"input": "", "output": "3"}]}).to_string();
    assert_eq!(
        score(&format!("{always_equal}\nprint(f())"), &stdio).reward,
        0.0
    );
}

#[test]
fn bad_gold_and_bad_settings_are_clear() {
    let v = score("print(1)", "not json");
    assert!(v
        .reason
        .unwrap_or_default()
        .starts_with("gold is not a code test spec"));
    let v = score("print(1)", "{}");
    assert_eq!(
        v.reason.as_deref(),
        Some("gold has no `tests` and no `asserts`")
    );
    let e = Sandbox::new(SandboxConfig {
        memory_mb: 1,
        ..SandboxConfig::default()
    })
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.starts_with("code sandbox `memory_mb`"), "{e}");
    let e = Sandbox::new(SandboxConfig {
        python: "no-such-python-3".into(),
        ..SandboxConfig::default()
    })
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(e.contains("`no-such-python-3`: not found"), "{e}");
}

#[test]
fn a_group_is_scored_in_parallel_and_in_order() {
    let gold = expects("42");
    let group: Vec<String> = ["print(42)", "print(41)", "while True: pass", "print(6 * 7)"]
        .iter()
        .map(|p| glm(p))
        .collect();
    let rewards: Vec<f64> = verifier()
        .verify_group(&group, &gold)
        .iter()
        .map(|v| v.reward)
        .collect();
    assert_eq!(rewards, [1.0, 0.0, 0.0, 1.0]);
    assert!(verifier().layers().landlock_abi >= 1);
}

#[test]
fn adversarial_answers_never_break_the_code_verifier() {
    let gold = expects("1");
    for (label, answer) in rlcs_rewards::conformance::adversarial_answers() {
        let first = verifier().judge(&answer, &gold, None);
        assert!((0.0..=1.0).contains(&first.score), "{label}: {first:?}");
        assert_eq!(first.correct, first.score >= 1.0, "{label}");
        assert_eq!(first.score, 0.0, "{label} passed a test it cannot pass");
        let as_gold = verifier().judge("print(1)", &answer, None);
        assert_eq!(as_gold.score, 0.0, "{label} as gold: {as_gold:?}");
    }
}

#[test]
fn an_interpreter_behind_a_shim_script_runs_its_real_binary() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let shim = dir.path().join("python-shim");
    std::fs::write(&shim, "#!/bin/sh\nexec python3 \"$@\"\n").expect("write shim");
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let sandbox = Sandbox::new(SandboxConfig {
        python: shim.to_string_lossy().into_owned(),
        ..SandboxConfig::default()
    })
    .expect("a shim resolves to its interpreter");
    let out = sandbox
        .run(&[("m.py", b"print(6 * 7)")], "m.py", b"")
        .expect("runs");
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.trim(), "42");
}
