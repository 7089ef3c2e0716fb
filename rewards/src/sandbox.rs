//! A sandbox for untrusted Python programs (the coding domain's verifier).
//!
//! Each [`Sandbox::run`] gets a fresh temporary directory (removed afterwards) and
//! runs `python -I -B` in it as a new process group, confined by these layers, all
//! set between `fork` and `exec` and none needing privileges:
//!
//! | layer | what it stops |
//! | --- | --- |
//! | user + network namespace (`unshare`) | any network: the process sees only a down loopback; no capability outside its namespace (a root caller's program cannot raise its limits or override file permissions) |
//! | rlimits | CPU seconds, address space (memory), file size, open files; no core dumps |
//! | Landlock | files: read-only beneath the Python installation and the system library directories (plus `read_paths`), read-write only in the temporary directory, executing only the interpreter and the loader; TCP bind and connect when the kernel has Landlock ABI 4 |
//! | seccomp | sockets of every family, `fork`/`vfork` and process-creating `clone` (threads stay allowed), signals to other processes, `ptrace`, raising rlimits, mount and namespace calls, `io_uring`, `bpf`, keyrings, module and reboot calls, `open_by_handle_at` |
//! | wall clock | the whole process group is killed at the timeout |
//! | output cap | stdout and stderr beyond `max_output_bytes` are read and dropped |
//!
//! [`Sandbox::new`] probes the kernel: Landlock and seccomp are required (the
//! error says which is missing); the namespace layer is used when the kernel allows
//! unprivileged user namespaces, and [`Sandbox::layers`] says whether it is on.
//! Linux on x86-64 or aarch64 only; elsewhere `new` fails with
//! [`SandboxError::Unavailable`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Limits of one sandboxed run (`kind = "code"` in the TOML takes these fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// The Python interpreter: a path or a name looked up on `PATH` (default `python3`).
    #[serde(default = "default_python")]
    pub python: String,
    /// Wall-clock seconds per run (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// CPU seconds per run (default: the timeout, rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<u64>,
    /// Address space per run, MiB (default 512).
    #[serde(default = "default_memory")]
    pub memory_mb: u64,
    /// Largest file a run may write, MiB (default 16).
    #[serde(default = "default_file_size")]
    pub file_size_mb: u64,
    /// Bytes of stdout (and of stderr) kept per run (default 64 KiB).
    #[serde(default = "default_output")]
    pub max_output_bytes: usize,
    /// Extra paths the program may read (besides Python's own and the system
    /// library directories).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_paths: Vec<PathBuf>,
}

fn default_python() -> String {
    "python3".into()
}
fn default_timeout() -> f64 {
    10.0
}
fn default_memory() -> u64 {
    512
}
fn default_file_size() -> u64 {
    16
}
fn default_output() -> usize {
    64 << 10
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            python: default_python(),
            timeout_s: default_timeout(),
            cpu_s: None,
            memory_mb: default_memory(),
            file_size_mb: default_file_size(),
            max_output_bytes: default_output(),
            read_paths: Vec::new(),
        }
    }
}

impl SandboxConfig {
    /// Checks the limits; the error names the field.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |field: &'static str, reason: String| Err(SandboxError::Config { field, reason });
        if self.python.trim().is_empty() {
            return bad("python", "must name an interpreter".into());
        }
        if !(self.timeout_s.is_finite() && self.timeout_s > 0.0 && self.timeout_s <= 3600.0) {
            return bad(
                "timeout_s",
                format!("must lie in (0, 3600] seconds, got {}", self.timeout_s),
            );
        }
        if self.cpu_s == Some(0) {
            return bad("cpu_s", "must be at least 1".into());
        }
        if !(32..=1 << 20).contains(&self.memory_mb) {
            return bad(
                "memory_mb",
                format!(
                    "must lie in 32..=1048576 (Python needs about 32 MiB), got {}",
                    self.memory_mb
                ),
            );
        }
        if self.file_size_mb == 0 {
            return bad("file_size_mb", "must be at least 1".into());
        }
        if self.max_output_bytes == 0 || self.max_output_bytes > 64 << 20 {
            return bad(
                "max_output_bytes",
                format!("must lie in 1..=67108864, got {}", self.max_output_bytes),
            );
        }
        Ok(())
    }

    fn cpu_seconds(&self) -> u64 {
        self.cpu_s
            .unwrap_or_else(|| self.timeout_s.ceil().max(1.0) as u64)
    }
}

/// Error setting up or running the sandbox (not the program's own failures, which
/// are an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A setting is out of range.
    #[error("code sandbox `{field}`: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The kernel or platform lacks a required layer.
    #[error("code sandbox unavailable: {0}")]
    Unavailable(String),
    /// The interpreter could not be found or does not run.
    #[error("code sandbox interpreter `{python}`: {reason}")]
    Python {
        /// The configured interpreter.
        python: String,
        /// What went wrong.
        reason: String,
    },
    /// A file or process operation failed.
    #[error("code sandbox: {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// Which layers a sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Layers {
    /// The Landlock ABI version in force (≥ 1).
    pub landlock_abi: u32,
    /// Whether runs get their own user and network namespaces.
    pub namespaces: bool,
    /// Seccomp filtering (always on when a sandbox exists).
    pub seccomp: bool,
}

/// How a sandboxed run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Exit code, when the process exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did (`SIGKILL` at the timeout or the memory
    /// limit, `SIGXCPU` at the CPU limit).
    pub signal: Option<i32>,
    /// Whether the wall-clock timeout killed it.
    pub timed_out: bool,
    /// Stdout, at most `max_output_bytes` (lossy UTF-8).
    pub stdout: String,
    /// Stderr, at most `max_output_bytes` (lossy UTF-8).
    pub stderr: String,
    /// Whether output beyond the cap was dropped.
    pub truncated: bool,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether the program exited with code 0 in time.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// A one-line account of a failed run: timeout, signal or exit code, and the last
    /// line of stderr.
    pub fn describe(&self) -> String {
        let how = if self.timed_out {
            format!("timed out after {:.2} s", self.elapsed.as_secs_f64())
        } else if let Some(s) = self.signal {
            match s {
                libc::SIGXCPU => "killed at the CPU time limit".to_string(),
                libc::SIGKILL => "killed (memory or time limit)".to_string(),
                libc::SIGXFSZ => "killed at the file size limit".to_string(),
                other => format!("killed by signal {other}"),
            }
        } else {
            format!("exit code {}", self.code.unwrap_or(-1))
        };
        match self.stderr.lines().rev().find(|l| !l.trim().is_empty()) {
            Some(last) => format!("{how}: {}", crate::excerpt(last.trim())),
            None => how,
        }
    }
}

/// A configured sandbox; [`Sandbox::run`] may be called from many threads at once.
#[derive(Debug, Clone)]
pub struct Sandbox {
    config: SandboxConfig,
    /// The interpreter, resolved to a real path.
    python: PathBuf,
    /// Paths readable by every run (canonical; files or directories).
    read: Vec<PathBuf>,
    /// Paths executable by every run (the interpreter, the loader's directories).
    exec: Vec<PathBuf>,
    layers: Layers,
}

impl Sandbox {
    /// Checks `config`, probes the kernel and finds the interpreter's installation
    /// (running it once, sandboxed, to prove the layers work).
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        config.validate()?;
        let landlock_abi = imp::landlock_abi()?;
        let python = find_program(&config.python).ok_or_else(|| SandboxError::Python {
            python: config.python.clone(),
            reason: "not found (give a path or put it on PATH)".into(),
        })?;
        // Shims (pyenv) and wrappers are scripts: ask the interpreter for its own
        // binary and run that.
        let (executable, prefixes) = python_prefixes(&python, &config.python)?;
        let python = executable
            .canonicalize()
            .map_err(|e| SandboxError::Python {
                python: config.python.clone(),
                reason: format!("its sys.executable {}: {e}", executable.display()),
            })?;
        let mut read: Vec<PathBuf> = [
            "/usr",
            "/lib",
            "/lib64",
            "/lib32",
            "/etc/ld.so.cache",
            "/etc/localtime",
        ]
        .iter()
        .map(PathBuf::from)
        .chain(prefixes)
        .chain(config.read_paths.iter().cloned())
        .filter_map(|p| p.canonicalize().ok())
        .collect();
        read.sort();
        read.dedup();
        let mut exec: Vec<PathBuf> = ["/lib", "/lib64", "/usr/lib", "/usr/lib64"]
            .iter()
            .filter_map(|p| Path::new(p).canonicalize().ok())
            .collect();
        exec.push(python.clone());
        let namespaces = imp::namespaces_work();
        let sandbox = Sandbox {
            config,
            python,
            read,
            exec,
            layers: Layers {
                landlock_abi,
                namespaces,
                seccomp: true,
            },
        };
        let probe = sandbox.run(&[("probe.py", b"print('ok')")], "probe.py", b"")?;
        if !probe.success() || probe.stdout.trim() != "ok" {
            return Err(SandboxError::Python {
                python: sandbox.config.python.clone(),
                reason: format!("does not run inside the sandbox: {}", probe.describe()),
            });
        }
        Ok(sandbox)
    }

    /// The layers in force.
    pub fn layers(&self) -> Layers {
        self.layers
    }

    /// The settings.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Writes `files` (name, contents) into a fresh temporary directory and runs
    /// `python -I -B <script>` there with `stdin`, under every layer. The program's
    /// failures (exceptions, limits, timeouts) are in the [`Outcome`]; an `Err` means
    /// the sandbox itself could not run.
    pub fn run(
        &self,
        files: &[(&str, &[u8])],
        script: &str,
        stdin: &[u8],
    ) -> Result<Outcome, SandboxError> {
        let dir = tempfile::Builder::new()
            .prefix("rlcs-sandbox-")
            .tempdir()
            .map_err(io("creating the run's temporary directory"))?;
        for (name, body) in files {
            if name.contains('/') || name.starts_with('.') || name.is_empty() {
                return Err(SandboxError::Io {
                    what: format!("file name `{name}`"),
                    source: std::io::Error::other("must be a plain file name"),
                });
            }
            std::fs::write(dir.path().join(name), body).map_err(io(format!("writing {name}")))?;
        }
        let work = dir
            .path()
            .canonicalize()
            .map_err(io("resolving the temporary directory"))?;
        let setup = imp::Setup::new(self, &work)?;
        let mut cmd = Command::new(&self.python);
        cmd.arg("-I")
            .arg("-B")
            .arg(script)
            .current_dir(&work)
            .env_clear()
            .env("HOME", &work)
            .env("TMPDIR", &work)
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("PYTHONHASHSEED", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        setup.install(&mut cmd);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(io("starting the sandboxed interpreter"))?;
        let pid = child.id() as i32;
        let cap = self.config.max_output_bytes;
        let out = child
            .stdout
            .take()
            .map(|o| std::thread::spawn(move || read_capped(o, cap)));
        let err = child
            .stderr
            .take()
            .map(|e| std::thread::spawn(move || read_capped(e, cap)));
        if let Some(mut input) = child.stdin.take() {
            let body = stdin.to_vec();
            std::thread::spawn(move || {
                let _ = input.write_all(&body);
            });
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let timeout = Duration::from_secs_f64(self.config.timeout_s);
        let (status, timed_out) = match rx.recv_timeout(timeout) {
            Ok(status) => (status, false),
            Err(_) => {
                imp::kill_group(pid);
                (
                    rx.recv()
                        .unwrap_or_else(|_| Err(std::io::Error::other("waiter gone"))),
                    true,
                )
            }
        };
        let elapsed = started.elapsed();
        // Nothing may outlive the run (fork is blocked; this is a second fence).
        imp::kill_group(pid);
        let status = status.map_err(io("waiting for the sandboxed interpreter"))?;
        let (stdout, t1) = out.and_then(|h| h.join().ok()).unwrap_or_default();
        let (stderr, t2) = err.and_then(|h| h.join().ok()).unwrap_or_default();
        use std::os::unix::process::ExitStatusExt;
        Ok(Outcome {
            code: status.code(),
            signal: status.signal(),
            timed_out,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            truncated: t1 || t2,
            elapsed,
        })
    }
}

/// Reads `r` to its end, keeping the first `cap` bytes; whether any were dropped.
fn read_capped(mut r: impl Read, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut dropped = false;
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => return (kept, dropped),
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                dropped |= n > room;
            }
        }
    }
}

/// `name` itself when it holds a `/`, else the first match on `PATH`; canonical.
fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).canonicalize().ok();
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .and_then(|p| p.canonicalize().ok())
    })
}

/// The interpreter's own binary and its installation directories (asked outside
/// the sandbox).
fn python_prefixes(
    python: &Path,
    configured: &str,
) -> Result<(PathBuf, Vec<PathBuf>), SandboxError> {
    let out = Command::new(python)
        .args([
            "-I",
            "-c",
            "import sys; print(sys.executable); print('\\n'.join({sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}))",
        ])
        .output()
        .map_err(|e| SandboxError::Python {
            python: configured.to_string(),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(SandboxError::Python {
            python: configured.to_string(),
            reason: format!(
                "`-c` exited with {}: {}",
                out.status,
                crate::excerpt(String::from_utf8_lossy(&out.stderr).trim())
            ),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(PathBuf::from);
    let executable = lines.next().ok_or_else(|| SandboxError::Python {
        python: configured.to_string(),
        reason: "reported no sys.executable".into(),
    })?;
    Ok((executable, lines.collect()))
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod imp {
    //! The Linux layers: raw landlock and seccomp system calls, set in `pre_exec`.

    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    use std::path::Path;
    use std::process::Command;

    use super::{Sandbox, SandboxError};

    // Landlock (include/uapi/linux/landlock.h).
    const CREATE_RULESET_VERSION: u32 = 1;
    const RULE_PATH_BENEATH: u32 = 1;
    const FS_EXECUTE: u64 = 1 << 0;
    const FS_WRITE_FILE: u64 = 1 << 1;
    const FS_READ_FILE: u64 = 1 << 2;
    const FS_READ_DIR: u64 = 1 << 3;
    const FS_MAKE_CHAR: u64 = 1 << 6;
    const FS_MAKE_SOCK: u64 = 1 << 9;
    const FS_MAKE_FIFO: u64 = 1 << 10;
    const FS_MAKE_BLOCK: u64 = 1 << 11;
    const FS_REFER: u64 = 1 << 13;
    const FS_TRUNCATE: u64 = 1 << 14;
    const FS_IOCTL_DEV: u64 = 1 << 15;
    const NET_BIND_TCP: u64 = 1 << 0;
    const NET_CONNECT_TCP: u64 = 1 << 1;
    /// Rights that apply to files (not only directories).
    const FILE_RIGHTS: u64 = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;

    #[repr(C)]
    struct RulesetAttr {
        handled_access_fs: u64,
        handled_access_net: u64,
    }

    #[repr(C, packed)]
    struct PathBeneathAttr {
        allowed_access: u64,
        parent_fd: i32,
    }

    /// The filesystem rights an ABI version knows.
    fn fs_rights(abi: u32) -> u64 {
        let mut all = (1u64 << 13) - 1;
        if abi >= 2 {
            all |= FS_REFER;
        }
        if abi >= 3 {
            all |= FS_TRUNCATE;
        }
        if abi >= 5 {
            all |= FS_IOCTL_DEV;
        }
        all
    }

    /// The kernel's Landlock ABI version.
    pub(super) fn landlock_abi() -> Result<u32, SandboxError> {
        // SAFETY: querying the version takes no pointer (NULL, 0).
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<RulesetAttr>(),
                0usize,
                CREATE_RULESET_VERSION,
            )
        };
        if v < 1 {
            return Err(SandboxError::Unavailable(format!(
                "this kernel has no Landlock ({}); the code verifier needs Linux 5.13 or later with Landlock enabled",
                std::io::Error::last_os_error()
            )));
        }
        Ok(v as u32)
    }

    /// Whether a child can enter new user and network namespaces here.
    pub(super) fn namespaces_work() -> bool {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "exit 0"]);
        // SAFETY: the closure makes one system call.
        unsafe {
            cmd.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.status().map(|s| s.success()).unwrap_or(false)
    }

    /// Kills process group `pid` (the sandboxed run and anything it started).
    pub(super) fn kill_group(pid: i32) {
        if pid > 1 {
            // SAFETY: plain system call; the group may already be gone.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }

    /// Everything a run's child needs, prepared before `fork` (the child may not
    /// allocate).
    pub(super) struct Setup {
        ruleset: OwnedFd,
        filter: Filter,
        limits: Vec<(libc::__rlimit_resource_t, libc::rlim_t)>,
        namespaces: bool,
    }

    impl Setup {
        pub(super) fn new(sandbox: &Sandbox, work: &Path) -> Result<Self, SandboxError> {
            let abi = sandbox.layers.landlock_abi;
            let fs = fs_rights(abi);
            let attr = RulesetAttr {
                handled_access_fs: fs,
                handled_access_net: NET_BIND_TCP | NET_CONNECT_TCP,
            };
            let size = if abi >= 4 {
                std::mem::size_of::<RulesetAttr>()
            } else {
                8
            };
            // SAFETY: `attr` outlives the call and `size` covers only its fields.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_landlock_create_ruleset,
                    &attr as *const RulesetAttr,
                    size,
                    0u32,
                )
            };
            if fd < 0 {
                return Err(SandboxError::Io {
                    what: "creating the Landlock ruleset".into(),
                    source: std::io::Error::last_os_error(),
                });
            }
            // SAFETY: the kernel just returned this descriptor to us alone.
            let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            let read = FS_READ_FILE | FS_READ_DIR;
            for p in &sandbox.read {
                add_rule(&ruleset, p, read & fs)?;
            }
            for p in &sandbox.exec {
                add_rule(&ruleset, p, (read | FS_EXECUTE) & fs)?;
            }
            let dev_null = Path::new("/dev/null");
            add_rule(&ruleset, dev_null, (FS_READ_FILE | FS_WRITE_FILE) & fs)?;
            let urandom = Path::new("/dev/urandom");
            add_rule(&ruleset, urandom, FS_READ_FILE & fs)?;
            let work_rights = fs
                & !(FS_EXECUTE
                    | FS_MAKE_CHAR
                    | FS_MAKE_BLOCK
                    | FS_MAKE_SOCK
                    | FS_MAKE_FIFO
                    | FS_IOCTL_DEV);
            add_rule(&ruleset, work, work_rights)?;
            let c = &sandbox.config;
            let mib = |m: u64| m.saturating_mul(1 << 20) as libc::rlim_t;
            let limits = vec![
                (libc::RLIMIT_CPU, c.cpu_seconds() as libc::rlim_t),
                (libc::RLIMIT_AS, mib(c.memory_mb)),
                (libc::RLIMIT_FSIZE, mib(c.file_size_mb)),
                (libc::RLIMIT_NOFILE, 64),
                (libc::RLIMIT_CORE, 0),
            ];
            Ok(Setup {
                ruleset,
                filter: Filter::new(),
                limits,
                namespaces: sandbox.layers.namespaces,
            })
        }

        /// Sets the layers up in the child between `fork` and `exec`.
        pub(super) fn install(self, cmd: &mut Command) {
            let Setup {
                ruleset,
                mut filter,
                limits,
                namespaces,
            } = self;
            // SAFETY: the closure only makes system calls and writes into memory it
            // owns (no allocation, no locks), as a child of a multi-threaded parent
            // must.
            unsafe {
                cmd.pre_exec(move || {
                    step(libc::setsid() < 0, b"setsid")?;
                    if namespaces {
                        step(
                            libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0,
                            b"unshare",
                        )?;
                    }
                    for &(resource, value) in &limits {
                        let hard = if resource == libc::RLIMIT_CPU {
                            value + 1
                        } else {
                            value
                        };
                        let lim = libc::rlimit {
                            rlim_cur: value,
                            rlim_max: hard,
                        };
                        step(libc::setrlimit(resource, &lim) != 0, b"setrlimit")?;
                    }
                    step(
                        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0,
                        b"no_new_privs",
                    )?;
                    step(
                        libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32)
                            != 0,
                        b"landlock",
                    )?;
                    filter.set_pid(libc::getpid());
                    let prog = libc::sock_fprog {
                        len: filter.code.len() as u16,
                        filter: filter.code.as_mut_ptr(),
                    };
                    step(
                        libc::syscall(
                            libc::SYS_seccomp,
                            libc::SECCOMP_SET_MODE_FILTER,
                            0u32,
                            &prog as *const libc::sock_fprog,
                        ) != 0,
                        b"seccomp",
                    )?;
                    Ok(())
                });
            }
        }
    }

    /// In the child: on failure, names the step on stderr and returns the OS error.
    fn step(failed: bool, what: &[u8]) -> std::io::Result<()> {
        if !failed {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        let prefix = b"rlcs sandbox setup failed at ";
        // SAFETY: writes of borrowed buffers to stderr.
        unsafe {
            libc::write(2, prefix.as_ptr().cast(), prefix.len());
            libc::write(2, what.as_ptr().cast(), what.len());
            libc::write(2, b"\n".as_ptr().cast(), 1);
        }
        Err(err)
    }

    fn add_rule(ruleset: &OwnedFd, path: &Path, rights: u64) -> Result<(), SandboxError> {
        let Ok(cpath) = CString::new(path.as_os_str().as_bytes()) else {
            return Ok(());
        };
        // SAFETY: `cpath` is a valid C string; O_PATH opens nothing for reading.
        let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            // A missing system directory (no /lib32 here) simply grants nothing.
            return Ok(());
        }
        // SAFETY: the descriptor was just opened by us.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let rights = if path.is_dir() {
            rights
        } else {
            rights & FILE_RIGHTS
        };
        let attr = PathBeneathAttr {
            allowed_access: rights,
            parent_fd: fd.as_raw_fd(),
        };
        // SAFETY: `attr` outlives the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset.as_raw_fd(),
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0u32,
            )
        };
        if r != 0 {
            return Err(SandboxError::Io {
                what: format!("granting {} in the Landlock ruleset", path.display()),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    // Classic BPF for seccomp (linux/filter.h, linux/seccomp.h).
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const JSET_K: u16 = 0x45;
    const RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    const OFF_NR: u32 = 0;
    const OFF_ARCH: u32 = 4;
    const fn off_arg_lo(i: u32) -> u32 {
        16 + 8 * i
    }
    const fn off_arg_hi(i: u32) -> u32 {
        16 + 8 * i + 4
    }
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;

    fn errno(e: i32) -> u32 {
        libc::SECCOMP_RET_ERRNO | (e as u32 & 0xffff)
    }

    fn ins(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }

    /// Calls refused outright (with EPERM).
    fn denied() -> Vec<libc::c_long> {
        let mut v = vec![
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_tkill,
            libc::SYS_rt_sigqueueinfo,
            libc::SYS_rt_tgsigqueueinfo,
            libc::SYS_pidfd_open,
            libc::SYS_pidfd_send_signal,
            libc::SYS_pidfd_getfd,
            libc::SYS_setsid,
            libc::SYS_setpgid,
            libc::SYS_setrlimit,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_chroot,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_userfaultfd,
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_kexec_load,
            libc::SYS_kexec_file_load,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
            libc::SYS_reboot,
            libc::SYS_swapon,
            libc::SYS_swapoff,
            libc::SYS_acct,
            libc::SYS_settimeofday,
            libc::SYS_clock_settime,
            libc::SYS_clock_adjtime,
            libc::SYS_adjtimex,
            libc::SYS_sethostname,
            libc::SYS_setdomainname,
            libc::SYS_syslog,
            libc::SYS_quotactl,
            libc::SYS_name_to_handle_at,
            libc::SYS_open_by_handle_at,
            libc::SYS_fanotify_init,
            libc::SYS_mknodat,
            libc::SYS_personality,
            libc::SYS_capset,
            libc::SYS_setuid,
            libc::SYS_setgid,
            libc::SYS_setreuid,
            libc::SYS_setregid,
            libc::SYS_setresuid,
            libc::SYS_setresgid,
            libc::SYS_setgroups,
            libc::SYS_fsopen,
            libc::SYS_fsmount,
            libc::SYS_move_mount,
            libc::SYS_open_tree,
        ];
        #[cfg(target_arch = "x86_64")]
        v.extend([
            libc::SYS_fork,
            libc::SYS_vfork,
            libc::SYS_mknod,
            libc::SYS_iopl,
            libc::SYS_ioperm,
        ]);
        v
    }

    /// The seccomp program, with slots for the child's own pid.
    pub(super) struct Filter {
        code: Vec<libc::sock_filter>,
        /// Instructions whose `k` is the pid (`false`) or minus the pid (`true`).
        pid_slots: Vec<(usize, bool)>,
    }

    impl Filter {
        fn new() -> Filter {
            let mut code = vec![
                ins(LD_W_ABS, 0, 0, OFF_ARCH),
                ins(JEQ_K, 1, 0, AUDIT_ARCH),
                ins(RET_K, 0, 0, RET_KILL_PROCESS),
                ins(LD_W_ABS, 0, 0, OFF_NR),
            ];
            #[cfg(target_arch = "x86_64")]
            {
                // x32 system call numbers.
                code.push(ins(JGE_K, 0, 1, 0x4000_0000));
                code.push(ins(RET_K, 0, 0, errno(libc::EPERM)));
            }
            let mut pid_slots = Vec::new();
            for nr in denied() {
                code.push(ins(JEQ_K, 0, 1, nr as u32));
                code.push(ins(RET_K, 0, 0, errno(libc::EPERM)));
            }
            for nr in [libc::SYS_socket, libc::SYS_socketpair] {
                code.push(ins(JEQ_K, 0, 1, nr as u32));
                code.push(ins(RET_K, 0, 0, errno(libc::EACCES)));
            }
            // clone3's flags sit behind a pointer: say it does not exist, and the C
            // library falls back to clone.
            code.push(ins(JEQ_K, 0, 1, libc::SYS_clone3 as u32));
            code.push(ins(RET_K, 0, 0, errno(libc::ENOSYS)));
            // clone: threads only.
            code.push(ins(JEQ_K, 0, 4, libc::SYS_clone as u32));
            code.push(ins(LD_W_ABS, 0, 0, off_arg_lo(0)));
            code.push(ins(JSET_K, 0, 1, libc::CLONE_THREAD as u32));
            code.push(ins(RET_K, 0, 0, RET_ALLOW));
            code.push(ins(RET_K, 0, 0, errno(libc::EPERM)));
            // kill: only itself or its own group.
            let at = code.len();
            code.push(ins(JEQ_K, 0, 6, libc::SYS_kill as u32));
            code.push(ins(LD_W_ABS, 0, 0, off_arg_lo(0)));
            code.push(ins(JEQ_K, 3, 0, 0));
            pid_slots.push((at + 2, false));
            code.push(ins(JEQ_K, 2, 0, 0));
            code.push(ins(JEQ_K, 1, 0, 0));
            pid_slots.push((at + 4, true));
            code.push(ins(RET_K, 0, 0, errno(libc::EPERM)));
            code.push(ins(RET_K, 0, 0, RET_ALLOW));
            // tgkill: only its own threads.
            let at = code.len();
            code.push(ins(JEQ_K, 0, 4, libc::SYS_tgkill as u32));
            code.push(ins(LD_W_ABS, 0, 0, off_arg_lo(0)));
            code.push(ins(JEQ_K, 0, 1, 0));
            pid_slots.push((at + 2, false));
            code.push(ins(RET_K, 0, 0, RET_ALLOW));
            code.push(ins(RET_K, 0, 0, errno(libc::EPERM)));
            // prlimit64: reading only (no new limit).
            code.push(ins(JEQ_K, 0, 6, libc::SYS_prlimit64 as u32));
            code.push(ins(LD_W_ABS, 0, 0, off_arg_lo(2)));
            code.push(ins(JEQ_K, 0, 3, 0));
            code.push(ins(LD_W_ABS, 0, 0, off_arg_hi(2)));
            code.push(ins(JEQ_K, 0, 1, 0));
            code.push(ins(RET_K, 0, 0, RET_ALLOW));
            code.push(ins(RET_K, 0, 0, errno(libc::EPERM)));
            code.push(ins(RET_K, 0, 0, RET_ALLOW));
            Filter { code, pid_slots }
        }

        /// Writes the child's pid into the program (no allocation).
        fn set_pid(&mut self, pid: libc::pid_t) {
            for &(i, negate) in &self.pid_slots {
                if let Some(ins) = self.code.get_mut(i) {
                    ins.k = if negate {
                        pid.wrapping_neg() as u32
                    } else {
                        pid as u32
                    };
                }
            }
        }
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod imp {
    //! No sandbox off Linux x86-64 / aarch64.
    use super::{Sandbox, SandboxError};
    use std::path::Path;
    use std::process::Command;

    pub(super) fn landlock_abi() -> Result<u32, SandboxError> {
        Err(SandboxError::Unavailable(
            "the code sandbox needs Linux (Landlock and seccomp) on x86-64 or aarch64".into(),
        ))
    }
    pub(super) fn namespaces_work() -> bool {
        false
    }
    pub(super) fn kill_group(_pid: i32) {}
    pub(super) struct Setup;
    impl Setup {
        pub(super) fn new(_: &Sandbox, _: &Path) -> Result<Self, SandboxError> {
            landlock_abi().map(|_| Setup)
        }
        pub(super) fn install(self, _: &mut Command) {}
    }
}
