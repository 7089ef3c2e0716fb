//! End-to-end tests of `rlcs score` and `rlcs bench verifiers`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn rlcs_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rlcs"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rlcs starts");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    child.wait_with_output().expect("rlcs finishes")
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each output line is JSON"))
        .collect()
}

const GLM_RIGHT: &str = r#"{"id": "r", "domain": "math", "response": "<think>2+2</think><answer><|begin_of_box|>4<|end_of_box|></answer>", "gold": "4"}"#;
const GLM_WRONG: &str = r#"{"id": "w", "domain": "math", "response": "<think>2+2</think><answer><|begin_of_box|>5<|end_of_box|></answer>", "gold": "4"}"#;
const BAD_FORMAT: &str = r#"{"id": "f", "domain": "math", "response": "4", "gold": "4"}"#;

#[test]
fn score_reads_stdin_and_writes_one_line_per_request_in_order() {
    let input = [GLM_RIGHT, GLM_WRONG, BAD_FORMAT].join("\n");
    let out = rlcs_with_stdin(&["score", "--threads", "2"], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let ids: Vec<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
    assert_eq!(ids, ["r", "w", "f"]);
    assert_eq!(lines[0]["reward"], 1.0);
    assert_eq!(lines[0]["correct"], true);
    assert_eq!(lines[0]["extracted"], "4");
    assert_eq!(lines[0]["subscores"]["format"], 1.0);
    assert_eq!(lines[1]["reward"], 0.0);
    assert_eq!(lines[1]["format_ok"], true);
    assert_eq!(lines[2]["format_ok"], false);
    assert!(lines[2]["reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("format:")));
    for l in &lines {
        assert!(l["error"].is_null());
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("scored 3 of 3 lines (1 correct, 0 errors)")
    );
}

#[test]
fn score_malformed_line_names_its_number_scores_the_rest_and_fails() {
    let input = [GLM_RIGHT, "{not json", GLM_WRONG].join("\n");
    let out = rlcs_with_stdin(&["score"], &input);
    assert!(
        !out.status.success(),
        "a failed line makes the exit status non-zero"
    );
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["correct"], true);
    assert!(lines[1]["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("line 2:")));
    assert!(lines[1]["reward"].is_null());
    assert_eq!(lines[2]["id"], "w");
    assert_eq!(lines[2]["correct"], false);
}

#[test]
fn score_files_and_extraction_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    std::fs::write(
        &input,
        r#"{"id": 1, "domain": "math", "response": "So the answer is \\boxed{\\frac{1}{2}}.", "gold": "0.5"}"#,
    )
    .expect("write input");
    let (i, o) = (
        input.to_str().expect("utf-8"),
        output.to_str().expect("utf-8"),
    );
    // Strict GLM extraction refuses a plain \boxed{} answer …
    let strict = rlcs_with_stdin(&["score", "--input", i, "--output", o], "");
    assert!(strict.status.success());
    let lines = json_lines(&std::fs::read(&output).expect("output"));
    assert_eq!(lines[0]["format_ok"], false);
    // … `--extract boxed` scores it.
    let boxed = rlcs_with_stdin(
        &["score", "--input", i, "--output", o, "--extract", "boxed"],
        "",
    );
    assert!(boxed.status.success());
    let lines = json_lines(&std::fs::read(&output).expect("output"));
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["correct"], true);
    assert_eq!(lines[0]["extracted"], "\\frac{1}{2}");
    // A missing input file is a clear error.
    let missing = rlcs_with_stdin(&["score", "--input", "no/such/file.jsonl"], "");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no/such/file.jsonl"));
}

#[test]
fn bench_verifiers_prints_a_json_report() {
    let out = rlcs_with_stdin(
        &[
            "bench",
            "verifiers",
            "--json",
            "--seconds",
            "0.05",
            "--no-adversarial",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["tool"], "rlcs");
    assert!(report["cases"].as_u64().is_some_and(|n| n >= 20));
    assert!(report["verifications_per_sec"]
        .as_f64()
        .is_some_and(|v| v > 0.0));
    let bad = rlcs_with_stdin(&["bench", "verifiers", "--seconds", "-1"], "");
    assert!(!bad.status.success());
}
