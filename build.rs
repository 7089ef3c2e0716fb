//! Embeds the libtorch library directory as an rpath in the `rlcs` binary, so it
//! starts without `LD_LIBRARY_PATH`. The directory comes from `LIBTORCH` (a libtorch
//! tree or the PyTorch wheel's `torch/` folder) or, with `LIBTORCH_USE_PYTORCH=1`,
//! from the `python3` first on `PATH` — the same places `torch-sys` looks. Also
//! records the git commit it is built from (`RLCS_CODE_REVISION`), which runs write
//! into their store's run registry.

use std::path::PathBuf;
use std::process::Command;

fn libtorch_lib_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    if std::env::var("LIBTORCH_USE_PYTORCH").is_ok() {
        let python = std::env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python3".into());
        let out = Command::new(python)
            .args([
                "-c",
                "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
            ])
            .output()
            .ok()?;
        if out.status.success() {
            return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    None
}

/// The commit the binary is built from (`git rev-parse`), when built in a checkout.
fn code_revision() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    let rev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !rev.is_empty()).then_some(rev)
}

fn main() {
    for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
        }
    }
    if let Some(rev) = code_revision() {
        println!("cargo:rustc-env=RLCS_CODE_REVISION={rev}");
    }
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
    println!("cargo:rerun-if-env-changed=PATH");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    match libtorch_lib_dir() {
        Some(dir) if dir.is_dir() => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        }
        _ => println!(
            "cargo:warning=libtorch not found for the rpath; run the rlcs binary through scripts/rlcs or set LD_LIBRARY_PATH"
        ),
    }
}
