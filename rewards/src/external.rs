//! External verifiers: a team's verifier as a process speaking JSON lines.
//!
//! A verifier written in Python (or anything else) plugs in without Rust: rlcs
//! starts `command` as up to `concurrency` long-lived processes and writes one JSON
//! request per line to a process's stdin; the process answers each with one JSON
//! line on stdout.
//!
//! Request (one line):
//!
//! ```json
//! {"id": 7, "domain": "counting", "response": "<think>…</think><answer>…</answer>",
//!  "answer": "12", "gold": "12", "extra": {}}
//! ```
//!
//! `answer` is the final answer from the strict GLM format gate (`null` with
//! `extract = "none"`, when the process reads `response` itself); `extra` is the
//! verifier's `extra` table from the config, passed through.
//!
//! Reply (one line, same `id`):
//!
//! ```json
//! {"id": 7, "reward": 1.0, "subscores": {"exact": 1.0}, "error": null}
//! ```
//!
//! `reward` must lie in `[0, 1]`; optional fields: `correct` (default `reward ≥ 1`),
//! `subscores`, `reason`, and `error` (a non-null error scores 0 and is recorded as
//! the reason). Anything else the process prints on stdout that is not a reply to
//! the request in flight is a protocol error; stderr is kept (its last 4 KiB) for
//! error messages.
//!
//! Supervision: a process that exits, closes stdout, answers garbage or misses the
//! per-request timeout is killed and replaced by a fresh one, and the request is
//! retried once on it; a second failure scores the response 0 with the error as its
//! reason. The run goes on either way. A caller waits for a free process
//! (back-pressure): the pool never has more requests in flight than processes.
//! Dropping the verifier kills its processes.
//!
//! `examples/verifiers/exact_match.py` in the repository is a documented example.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{excerpt, gates, Judgement, Tolerance, Verdict, Verifier};

/// Longest stdout line read from a process (a longer one is a protocol error).
const MAX_LINE: usize = 16 << 20;
/// Bytes of a process's stderr kept for error messages.
const STDERR_TAIL: usize = 4096;

/// How responses reach the process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternalExtract {
    /// rlcs applies the strict GLM format gate first (a format failure scores 0
    /// without asking the process) and sends the boxed answer as `answer`.
    #[default]
    Glm,
    /// The process gets the raw response (`answer` is `null`) and judges the
    /// format itself.
    None,
}

/// Settings of one external verifier (`kind = "external"` in the TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalConfig {
    /// The program and its arguments, e.g. `["python3", "verifier.py"]`.
    pub command: Vec<String>,
    /// Processes run at once: the most requests in flight (default 2).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Seconds one request may take before its process is replaced (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Format handling (default `glm`).
    #[serde(default)]
    pub extract: ExternalExtract,
    /// The `domain` field of requests (default: the verifier's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Passed through as every request's `extra`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// Environment variables set for the processes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory of the processes (default: the caller's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
}

fn default_concurrency() -> usize {
    2
}
fn default_timeout() -> f64 {
    10.0
}

impl ExternalConfig {
    /// A config running `command` with the defaults.
    pub fn new(command: &[&str]) -> Self {
        ExternalConfig {
            command: command.iter().map(|s| s.to_string()).collect(),
            concurrency: default_concurrency(),
            timeout_s: default_timeout(),
            extract: ExternalExtract::default(),
            domain: None,
            extra: BTreeMap::new(),
            env: BTreeMap::new(),
            cwd: None,
        }
    }

    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<(), ExternalError> {
        let bad =
            |field: &'static str, reason: String| Err(ExternalError::Config { field, reason });
        if self.command.is_empty() || self.command[0].trim().is_empty() {
            return bad(
                "command",
                "must name a program, e.g. [\"python3\", \"verifier.py\"]".into(),
            );
        }
        if self.concurrency == 0 || self.concurrency > 1024 {
            return bad(
                "concurrency",
                format!("must lie in 1..=1024, got {}", self.concurrency),
            );
        }
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0 && self.timeout_s <= 86_400.0) {
            return bad(
                "timeout_s",
                format!(
                    "must be a number of seconds in (0, 86400], got {}",
                    self.timeout_s
                ),
            );
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }
}

/// Error starting an external verifier.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// A setting is out of range.
    #[error("external verifier `{field}`: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The program could not be started.
    #[error("cannot start external verifier `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
}

/// What an external verifier has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExternalStats {
    /// Requests answered by a process (retries included).
    pub requests: u64,
    /// Requests sent again after their process failed.
    pub retries: u64,
    /// Processes started (the first ones included).
    pub spawned: u64,
    /// Responses scored 0 because the request failed twice.
    pub failed: u64,
    /// Requests that ran past the timeout.
    pub timeouts: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    spawned: AtomicU64,
    failed: AtomicU64,
    timeouts: AtomicU64,
}

/// One line from a process's stdout, or its end.
enum Out {
    Line(String),
    TooLong,
    End,
}

/// A running process.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Out>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
}

impl Proc {
    /// The last bytes the process wrote to stderr, trimmed, or a placeholder.
    fn stderr_tail(&self) -> String {
        let tail = lock(&self.stderr);
        let bytes: Vec<u8> = tail.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        if text.is_empty() {
            "(no stderr)".into()
        } else {
            format!("stderr: {}", last_chars(&text, 600))
        }
    }

    /// How the process ended, waiting briefly for it after stdout closed.
    fn exit_status(&mut self) -> String {
        let until = Instant::now() + Duration::from_millis(500);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) => return "still running".into(),
                Err(e) => return format!("unknown ({e})"),
            }
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn last_chars(s: &str, n: usize) -> &str {
    let count = s.chars().count();
    if count <= n {
        return s;
    }
    match s.char_indices().nth(count - n) {
        Some((i, _)) => &s[i..],
        None => s,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A request line.
#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    domain: &'a str,
    response: &'a str,
    answer: Option<&'a str>,
    gold: &'a str,
    extra: &'a BTreeMap<String, serde_json::Value>,
}

/// A reply line.
#[derive(Deserialize)]
struct Reply {
    id: u64,
    #[serde(default)]
    reward: Option<f64>,
    #[serde(default)]
    correct: Option<bool>,
    #[serde(default)]
    subscores: BTreeMap<String, f64>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Why a request got no reply from its process.
enum Failure {
    Spawn(String),
    Crashed(String),
    Timeout,
    Protocol(String),
}

impl Failure {
    fn describe(&self, timeout: Duration) -> String {
        match self {
            Failure::Spawn(e) => format!("could not start: {e}"),
            Failure::Crashed(e) => format!("process died: {e}"),
            Failure::Timeout => format!("no reply within {:.3} s", timeout.as_secs_f64()),
            Failure::Protocol(e) => format!("protocol error: {e}"),
        }
    }
}

/// A verifier that asks a pool of external processes (see the [module docs](self)).
pub struct ExternalVerifier {
    name: String,
    config: ExternalConfig,
    /// Slots not in use; each holds its process once started.
    idle: Mutex<Vec<Option<Proc>>>,
    freed: Condvar,
    next_id: AtomicU64,
    counters: Counters,
    in_use: AtomicUsize,
}

impl ExternalVerifier {
    /// Validates `config` and starts its processes; fails when the program cannot be
    /// started.
    pub fn start(name: &str, config: ExternalConfig) -> Result<Self, ExternalError> {
        config.validate()?;
        let v = ExternalVerifier {
            name: name.to_string(),
            idle: Mutex::new(Vec::new()),
            freed: Condvar::new(),
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
            in_use: AtomicUsize::new(0),
            config,
        };
        let mut procs = Vec::with_capacity(v.config.concurrency);
        for _ in 0..v.config.concurrency {
            let p = v.spawn().map_err(|source| ExternalError::Spawn {
                command: v.config.command.join(" "),
                source,
            })?;
            procs.push(Some(p));
        }
        *lock(&v.idle) = procs;
        Ok(v)
    }

    /// What the pool has done so far.
    pub fn stats(&self) -> ExternalStats {
        let c = &self.counters;
        ExternalStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            spawned: c.spawned.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            timeouts: c.timeouts.load(Ordering::Relaxed),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ExternalConfig {
        &self.config
    }

    fn spawn(&self) -> std::io::Result<Proc> {
        let mut cmd = Command::new(&self.config.command[0]);
        cmd.args(&self.config.command[1..])
            .envs(&self.config.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.config.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn()?;
        self.counters.spawned.fetch_add(1, Ordering::Relaxed);
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(std::io::Error::other("process pipes missing"));
                }
            };
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("verifier-{}-out", self.name))
            .spawn(move || read_lines(stdout, tx))?;
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let keep = tail.clone();
        std::thread::Builder::new()
            .name(format!("verifier-{}-err", self.name))
            .spawn(move || read_tail(stderr, keep))?;
        Ok(Proc {
            child,
            stdin,
            lines,
            stderr: tail,
        })
    }

    /// Takes a free slot, waiting while every process is busy.
    fn acquire(&self) -> Slot<'_> {
        let mut idle = lock(&self.idle);
        loop {
            if let Some(p) = idle.pop() {
                self.in_use.fetch_add(1, Ordering::Relaxed);
                return Slot {
                    pool: self,
                    proc: p,
                };
            }
            idle = self
                .freed
                .wait(idle)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// One request on `slot`'s process (started first if it is not running).
    fn exchange(&self, slot: &mut Slot<'_>, request: &str, id: u64) -> Result<Reply, Failure> {
        if slot.proc.is_none() {
            slot.proc = Some(self.spawn().map_err(|e| Failure::Spawn(e.to_string()))?);
        }
        let Some(p) = slot.proc.as_mut() else {
            return Err(Failure::Spawn("no process".into()));
        };
        let deadline = Instant::now() + self.config.timeout();
        let written = p
            .stdin
            .write_all(request.as_bytes())
            .and_then(|_| p.stdin.write_all(b"\n"))
            .and_then(|_| p.stdin.flush());
        let result = match written {
            Err(e) => Err(Failure::Crashed(format!(
                "writing the request: {e}; exit {}; {}",
                p.exit_status(),
                p.stderr_tail()
            ))),
            Ok(()) => self.await_reply(p, id, deadline),
        };
        if result.is_err() {
            if let Some(p) = slot.proc.take() {
                p.kill();
            }
        }
        result
    }

    fn await_reply(&self, p: &mut Proc, id: u64, deadline: Instant) -> Result<Reply, Failure> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match p.lines.recv_timeout(left) {
                Ok(Out::Line(line)) => {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let reply: Reply = serde_json::from_str(&line).map_err(|e| {
                        Failure::Protocol(format!(
                            "reply `{}` is not a reply object: {e}",
                            excerpt(&line)
                        ))
                    })?;
                    if reply.id == id {
                        return Ok(reply);
                    }
                    return Err(Failure::Protocol(format!(
                        "reply for id {} while waiting for id {id}",
                        reply.id
                    )));
                }
                Ok(Out::TooLong) => {
                    return Err(Failure::Protocol(format!(
                        "a reply line longer than {MAX_LINE} bytes"
                    )))
                }
                Ok(Out::End) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Failure::Crashed(format!(
                        "stdout closed; exit {}; {}",
                        p.exit_status(),
                        p.stderr_tail()
                    )))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                    return Err(Failure::Timeout);
                }
            }
        }
    }

    /// Sends one request, retrying once on a fresh process; the verdict of the reply,
    /// or reward 0 with the failure.
    fn ask(&self, response: &str, answer: Option<&str>, gold: &str) -> Verdict {
        let mut slot = self.acquire();
        let mut first: Option<String> = None;
        for attempt in 0..2 {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let request = Request {
                id,
                domain: self.config.domain.as_deref().unwrap_or(&self.name),
                response,
                answer,
                gold,
                extra: &self.config.extra,
            };
            let line = match serde_json::to_string(&request) {
                Ok(l) => l,
                Err(e) => return failed_verdict(answer, format!("cannot encode the request: {e}")),
            };
            if attempt > 0 {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            match self.exchange(&mut slot, &line, id) {
                Ok(reply) => return reply_verdict(reply, answer),
                Err(f) => {
                    let what = f.describe(self.config.timeout());
                    match first {
                        None => first = Some(what),
                        Some(earlier) => {
                            self.counters.failed.fetch_add(1, Ordering::Relaxed);
                            return failed_verdict(
                                answer,
                                format!(
                                    "external verifier `{}` failed twice: {earlier}; then {what}",
                                    self.name
                                ),
                            );
                        }
                    }
                }
            }
        }
        failed_verdict(answer, "external verifier: no attempt made".into())
    }
}

/// A slot taken from the pool; goes back (with its process, if still running) on drop.
struct Slot<'a> {
    pool: &'a ExternalVerifier,
    proc: Option<Proc>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let p = self.proc.take();
        lock(&self.pool.idle).push(p);
        self.pool.in_use.fetch_sub(1, Ordering::Relaxed);
        self.pool.freed.notify_one();
    }
}

impl Drop for ExternalVerifier {
    fn drop(&mut self) {
        for p in lock(&self.idle).drain(..).flatten() {
            p.kill();
        }
    }
}

/// Reward 0 for a request that got no usable reply.
fn failed_verdict(answer: Option<&str>, reason: String) -> Verdict {
    let mut subscores = BTreeMap::new();
    subscores.insert(
        "format".to_string(),
        if answer.is_some() { 1.0 } else { 0.0 },
    );
    subscores.insert(crate::VERIFIER_ERROR.to_string(), 1.0);
    Verdict {
        reward: 0.0,
        correct: false,
        format_ok: answer.is_some(),
        extracted: answer.map(str::to_string),
        subscores,
        reason: Some(reason),
    }
}

/// The verdict a reply gives; an invalid reply scores 0 with the reason.
fn reply_verdict(reply: Reply, answer: Option<&str>) -> Verdict {
    if let Some(e) = reply.error {
        return failed_verdict(answer, format!("verifier error: {}", excerpt(&e)));
    }
    let reward = match reply.reward {
        Some(r) if r.is_finite() && (0.0..=1.0).contains(&r) => r,
        Some(r) => return failed_verdict(answer, format!("reply reward {r} is outside [0, 1]")),
        None => return failed_verdict(answer, "reply has neither `reward` nor `error`".into()),
    };
    let correct = reply.correct.unwrap_or(reward >= 1.0);
    let mut subscores: BTreeMap<String, f64> = reply
        .subscores
        .into_iter()
        .filter(|(_, v)| v.is_finite())
        .collect();
    subscores.insert("format".to_string(), 1.0);
    subscores.insert("answer".to_string(), reward);
    Verdict {
        reward,
        correct,
        format_ok: true,
        extracted: answer.map(str::to_string),
        subscores,
        reason: if correct {
            None
        } else {
            Some(
                reply
                    .reason
                    .map(|r| excerpt(&r))
                    .unwrap_or_else(|| format!("reward {reward}")),
            )
        },
    }
}

/// Forwards `out`'s lines to `tx` until it closes (or the receiver goes away).
fn read_lines(out: impl Read, tx: mpsc::Sender<Out>) {
    let mut reader = BufReader::new(out);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf);
        let msg = match read {
            Ok(0) | Err(_) => {
                let _ = tx.send(Out::End);
                return;
            }
            Ok(_) if buf.len() > MAX_LINE => {
                // Skip the rest of the over-long line.
                let mut rest = Vec::new();
                let _ = reader.read_until(b'\n', &mut rest);
                Out::TooLong
            }
            Ok(_) => Out::Line(String::from_utf8_lossy(&buf).trim_end().to_string()),
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

/// Keeps the last [`STDERR_TAIL`] bytes of `err` in `tail`.
fn read_tail(mut err: impl Read, tail: Arc<Mutex<VecDeque<u8>>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = err.read(&mut buf) {
        if n == 0 {
            return;
        }
        let mut t = lock(&tail);
        t.extend(&buf[..n]);
        let excess = t.len().saturating_sub(STDERR_TAIL);
        t.drain(..excess);
    }
}

impl Verifier for ExternalVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    /// Asks a process about an already extracted answer (sent as both `response`
    /// and `answer`).
    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        let v = self.ask(answer, Some(answer), gold);
        let mut j = Judgement::partial(v.reward, v.reason);
        j.correct = v.correct;
        j.subscores = v.subscores;
        j.subscores.remove("format");
        j
    }

    fn verify(&self, response: &str, gold: &str) -> Verdict {
        match self.config.extract {
            ExternalExtract::None => self.ask(response, None, gold),
            ExternalExtract::Glm => {
                if let Err(e) = gates::check(response, &Default::default()) {
                    return Verdict::rejected(format!("gate: {e}"));
                }
                match crate::extract(response, Default::default()) {
                    Ok(answer) => self.ask(response, Some(&answer), gold),
                    Err(e) => Verdict::format_failure(&e),
                }
            }
        }
    }

    fn verify_group(&self, responses: &[String], gold: &str) -> Vec<Verdict> {
        crate::parallel_verify(self, responses, gold, self.config.concurrency)
    }

    fn blocking(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/verifiers/exact_match.py"
    );

    fn glm(answer: &str) -> String {
        format!("<think>t</think><answer><|begin_of_box|>{answer}<|end_of_box|></answer>")
    }

    /// A Python script in a temp dir; the returned dir keeps it alive.
    fn script(body: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.py");
        let mut f = std::fs::File::create(&path).expect("create");
        f.write_all(body.as_bytes()).expect("write");
        (dir, path.to_string_lossy().into_owned())
    }

    fn quick(path: &str) -> ExternalConfig {
        let mut c = ExternalConfig::new(&["python3", path]);
        c.timeout_s = 5.0;
        c
    }

    #[test]
    fn the_example_verifier_scores_answers() {
        let v = ExternalVerifier::start("exact", ExternalConfig::new(&["python3", EXAMPLE]))
            .expect("start");
        let right = v.verify(&glm("12"), "12");
        assert_eq!(right.reward, 1.0, "{right:?}");
        assert!(right.correct && right.format_ok);
        assert_eq!(right.extracted.as_deref(), Some("12"));
        assert_eq!(right.subscores.get("exact"), Some(&1.0));
        let numeric = v.verify(&glm("12.0"), "12");
        assert_eq!(numeric.reward, 1.0, "numbers compare by value: {numeric:?}");
        let wrong = v.verify(&glm("13"), "12");
        assert_eq!(wrong.reward, 0.0);
        assert!(
            wrong.reason.as_deref().unwrap_or("").contains("13"),
            "{wrong:?}"
        );
        // A format failure never reaches the process.
        let before = v.stats().requests;
        let bad = v.verify("12", "12");
        assert!(!bad.format_ok && bad.reward == 0.0);
        assert_eq!(v.stats().requests, before);
        let group: Vec<String> = ["1", "2", "3", "2"].iter().map(|a| glm(a)).collect();
        let rewards: Vec<f64> = v
            .verify_group(&group, "2")
            .iter()
            .map(|v| v.reward)
            .collect();
        assert_eq!(rewards, [0.0, 1.0, 0.0, 1.0]);
        assert_eq!(v.stats().failed, 0);
        assert_eq!(v.stats().spawned, 2);
    }

    #[test]
    fn raw_responses_reach_the_process_with_extract_none() {
        let (_d, path) = script(
            "import sys, json\n\
             for line in sys.stdin:\n\
             \x20   r = json.loads(line)\n\
             \x20   ok = r['answer'] is None and r['response'] == 'raw text' and r['extra'] == {'k': 1} and r['domain'] == 'essays'\n\
             \x20   print(json.dumps({'id': r['id'], 'reward': 1.0 if ok else 0.0, 'reason': repr(r)}), flush=True)\n",
        );
        let mut c = quick(&path);
        c.extract = ExternalExtract::None;
        c.domain = Some("essays".into());
        c.extra.insert("k".into(), serde_json::json!(1));
        let v = ExternalVerifier::start("essay", c).expect("start");
        let verdict = v.verify("raw text", "gold");
        assert_eq!(verdict.reward, 1.0, "{verdict:?}");
    }

    #[test]
    fn a_crash_is_retried_once_on_a_fresh_process() {
        // Each process answers one request, then dies on the next.
        let (_d, path) = script(
            "import sys, json\n\
             n = 0\n\
             for line in sys.stdin:\n\
             \x20   n += 1\n\
             \x20   if n > 1:\n\
             \x20       sys.stderr.write('boom on request %d\\n' % n); sys.exit(3)\n\
             \x20   r = json.loads(line)\n\
             \x20   print(json.dumps({'id': r['id'], 'reward': 1.0}), flush=True)\n",
        );
        let mut c = quick(&path);
        c.concurrency = 1;
        let v = ExternalVerifier::start("flaky", c).expect("start");
        for _ in 0..3 {
            assert_eq!(v.verify(&glm("x"), "x").reward, 1.0);
        }
        let s = v.stats();
        assert_eq!(s.retries, 2, "{s:?}");
        assert_eq!(s.spawned, 3, "{s:?}");
        assert_eq!(s.failed, 0, "{s:?}");
    }

    #[test]
    fn a_verifier_that_always_dies_scores_zero_with_its_stderr() {
        let (_d, path) = script("import sys\nsys.stdin.readline()\nsys.stderr.write('Traceback: no such model\\n')\nsys.exit(2)\n");
        let mut c = quick(&path);
        c.concurrency = 1;
        let v = ExternalVerifier::start("dead", c).expect("start");
        let verdict = v.verify(&glm("1"), "1");
        assert_eq!(verdict.reward, 0.0);
        assert!(!verdict.correct);
        let reason = verdict.reason.unwrap_or_default();
        assert!(reason.contains("failed twice"), "{reason}");
        assert!(reason.contains("no such model"), "{reason}");
        assert!(reason.contains("exit status: 2"), "{reason}");
        assert_eq!(verdict.subscores.get("verifier_error"), Some(&1.0));
        // The pool goes on: the next request starts a fresh process again.
        assert_eq!(v.verify(&glm("1"), "1").reward, 0.0);
        let s = v.stats();
        assert_eq!((s.failed, s.retries), (2, 2), "{s:?}");
    }

    #[test]
    fn a_hung_request_times_out_and_the_process_is_replaced() {
        let (_d, path) = script(
            "import sys, json, time\n\
             for line in sys.stdin:\n\
             \x20   r = json.loads(line)\n\
             \x20   if r['answer'] == 'hang':\n\
             \x20       time.sleep(60)\n\
             \x20   print(json.dumps({'id': r['id'], 'reward': 1.0}), flush=True)\n",
        );
        let mut c = quick(&path);
        c.concurrency = 1;
        c.timeout_s = 0.3;
        let v = ExternalVerifier::start("slow", c).expect("start");
        let started = Instant::now();
        let verdict = v.verify(&glm("hang"), "x");
        let took = started.elapsed();
        assert_eq!(verdict.reward, 0.0);
        assert!(verdict
            .reason
            .unwrap_or_default()
            .contains("no reply within 0.300 s"));
        assert!(
            took < Duration::from_secs(5),
            "two timeouts, not a hang: {took:?}"
        );
        assert_eq!(v.stats().timeouts, 2);
        assert_eq!(v.verify(&glm("fine"), "x").reward, 1.0, "the pool recovers");
    }

    #[test]
    fn bad_replies_are_errors_not_rewards() {
        let (_d, path) = script(
            "import sys, json\n\
             for line in sys.stdin:\n\
             \x20   r = json.loads(line)\n\
             \x20   a = r['answer']\n\
             \x20   if a == 'junk': print('hello there', flush=True)\n\
             \x20   elif a == 'big': print(json.dumps({'id': r['id'], 'reward': 7}), flush=True)\n\
             \x20   elif a == 'err': print(json.dumps({'id': r['id'], 'error': 'cannot parse gold'}), flush=True)\n\
             \x20   elif a == 'nan': print('{\"id\": %d, \"reward\": NaN}' % r['id'], flush=True)\n\
             \x20   else: print(json.dumps({'id': r['id'], 'reward': 0.5, 'subscores': {'style': 0.25}}), flush=True)\n",
        );
        let v = ExternalVerifier::start("picky", quick(&path)).expect("start");
        let junk = v.verify(&glm("junk"), "g");
        assert!(junk.reason.unwrap_or_default().contains("protocol error"));
        let big = v.verify(&glm("big"), "g");
        assert!(big.reward == 0.0 && big.reason.unwrap_or_default().contains("outside [0, 1]"));
        let err = v.verify(&glm("err"), "g");
        assert_eq!(
            err.reason.as_deref(),
            Some("verifier error: cannot parse gold")
        );
        assert_eq!(v.verify(&glm("nan"), "g").reward, 0.0);
        let half = v.verify(&glm("ok"), "g");
        assert_eq!(half.reward, 0.5);
        assert!(!half.correct);
        assert_eq!(half.subscores.get("style"), Some(&0.25));
    }

    #[test]
    fn callers_wait_for_a_free_process() {
        let v = ExternalVerifier::start("exact", {
            let mut c = ExternalConfig::new(&["python3", EXAMPLE]);
            c.concurrency = 2;
            c
        })
        .expect("start");
        let answers: Vec<String> = (0..40).map(|i| glm(&(i % 3).to_string())).collect();
        std::thread::scope(|s| {
            for chunk in answers.chunks(5) {
                let v = &v;
                s.spawn(move || {
                    let got = v.verify_group(chunk, "1");
                    assert_eq!(got.len(), chunk.len());
                    assert!(v.in_use.load(Ordering::Relaxed) <= 2);
                });
            }
        });
        let s = v.stats();
        assert_eq!((s.requests, s.spawned, s.failed), (40, 2, 0), "{s:?}");
    }

    #[test]
    fn bad_settings_and_missing_programs_are_clear_errors() {
        let mut c = ExternalConfig::new(&["python3", EXAMPLE]);
        c.concurrency = 0;
        let e = ExternalVerifier::start("x", c).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("external verifier `concurrency`: must lie in 1..=1024, got 0")
        );
        let mut c = ExternalConfig::new(&["python3"]);
        c.timeout_s = f64::NAN;
        assert!(c.validate().is_err());
        let e = ExternalVerifier::start("x", ExternalConfig::new(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("`command`"), "{e}");
        let e = ExternalVerifier::start("x", ExternalConfig::new(&["/no/such/verifier"]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("cannot start external verifier `/no/such/verifier`"),
            "{e}"
        );
    }
}
