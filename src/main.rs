//! The `rlcs` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Run the GLM-4.1V-Thinking training recipe as experiments of supervised actors.
#[derive(Parser)]
#[command(name = "rlcs", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment file (TOML) and write its report into the run directory.
    Run {
        /// The experiment file, e.g. experiments/configs/sim-rlcs.toml.
        config: PathBuf,
        /// Run directory (default: runs/<name>-<UTC timestamp>); must be new or empty.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Do not draw the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Show what this build links against (libtorch, CUDA) and exit.
    Doctor,
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config, out, quiet } => {
            let outcome = rlcs_experiments::run_experiment(
                &config,
                rlcs_experiments::RunOptions {
                    out,
                    progress: !quiet,
                },
            )
            .await
            .with_context(|| format!("running {}", config.display()))?;
            let r = &outcome.report;
            println!(
                "{}: eval accuracy {:.3} -> {:.3} over {} iterations ({} rollouts, {} restarts)",
                r.name,
                r.initial_eval.accuracy,
                r.final_eval.accuracy,
                r.iterations.len(),
                r.totals.rollouts,
                r.totals.restarts
            );
            println!("report: {}", outcome.run_dir.join("report.md").display());
        }
        Command::Doctor => {
            println!("rlcs {}", env!("CARGO_PKG_VERSION"));
            match rlcs_experiments::torch_info() {
                Some(info) => println!("libtorch: {info}"),
                None => println!("libtorch: not built in (build with the default `torch` feature)"),
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RLCS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
