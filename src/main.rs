//! The `rlcs` command-line tool.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rlcs_experiments::bench;
use rlcs_experiments::bench::store::BackendKind;
use rlcs_experiments::score::{score_stream, ScoreOptions};
use rlcs_experiments::{export, inspect};
use rlcs_experiments::{Registry, SamplerKind};

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
        #[arg(long, conflicts_with = "resume")]
        out: Option<PathBuf>,
        /// Continue the run in this directory from its newest checkpoint (curriculum,
        /// policy, RNG, progress). CONFIG must be the run's own config; only
        /// run.iterations, run.max_rollouts, run.checkpoint_every,
        /// run.keep_checkpoints, [actors] and [testing] may change. The report equals
        /// that of an uninterrupted run.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
        /// Do not draw the progress bar.
        #[arg(long)]
        quiet: bool,
        /// Serve the live dashboard (curves, actor tree, latest rollouts) and
        /// Prometheus metrics (/metrics) on this address while the run goes on, e.g.
        /// 127.0.0.1:8080 (port 0: any free port, printed at start).
        #[arg(long, value_name = "ADDR")]
        serve: Option<std::net::SocketAddr>,
        /// Let worker nodes (`rlcs node --join`) serve the verifier and replica pools,
        /// joining on this address, e.g. 0.0.0.0:7700 (port 0: any free port, printed
        /// at start). Overrides `[cluster] listen`.
        #[arg(long, value_name = "ADDR")]
        serve_cluster: Option<std::net::SocketAddr>,
        /// The file holding the cluster's shared secret (overrides `[cluster]
        /// cookie_file`).
        #[arg(long, value_name = "FILE")]
        cookie_file: Option<PathBuf>,
    },
    /// Start a worker node: join a run's cluster and serve its verifier or replica
    /// pool until stopped. The node waits for the coordinator to listen, and joins
    /// again after losing it.
    Node(NodeSettings),
    /// Serve the dashboard of a run, finished or running, from its logs:
    /// curves, actor tree with restarts, latest rollouts, and /metrics.
    Dashboard {
        /// The run directory.
        run_dir: PathBuf,
        /// Address to listen on (binds to loopback unless told otherwise).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        serve: std::net::SocketAddr,
    },
    /// Where a run's time went, from its span file (RUN_DIR/spans.jsonl): seconds
    /// per stage, milliseconds per phase of every RL iteration, and the critical
    /// path of one iteration (the chain of spans that decided when it ended).
    Trace {
        /// The run directory.
        run_dir: PathBuf,
        /// The iteration whose critical path to print (default: the last).
        #[arg(long)]
        iteration: Option<u32>,
    },
    /// Compare finished runs side by side: a table of accuracy (initial, final, per
    /// domain), rollouts, kept-group signal and the config keys that differ, and
    /// overlay plots (held-out accuracy against rollouts, training accuracy, ratio
    /// EMA, not-valid rate).
    Compare {
        /// Run directories (each with a report.json).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Also write compare.md, compare.json and the plots into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a grid of variants of an experiment and compare them: every combination
    /// of the `--set` values runs into OUT/<key=value,…>/, then OUT/compare.md.
    Sweep {
        /// The experiment file.
        config: PathBuf,
        /// `key=v1,v2,…`: a dotted config key and its values (TOML literals; bare
        /// words are strings), e.g. `--set curriculum.sampler=rlcs,uniform`. Repeat
        /// for more axes. Without any, the config's own `sweep` list is the grid.
        #[arg(long = "set", value_name = "KEY=V1,V2")]
        sets: Vec<String>,
        /// Sweep directory (default runs/<name>-sweep-<UTC timestamp>); must be new or
        /// empty.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Do not draw progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Run a curriculum study: every sampler of a study file on each of its scenarios,
    /// at an equal rollout budget; writes study.md, study.json and one PNG of learning
    /// curves per scenario.
    Study {
        /// The study file, e.g. experiments/configs/sim-curriculum.toml.
        config: PathBuf,
        /// Output directory (default: runs/<study name>-<UTC timestamp>); must be new or
        /// empty.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Do not print a line per finished run.
        #[arg(long)]
        quiet: bool,
    },
    /// Score model outputs (JSON lines) with the training verifiers.
    ///
    /// Each input line: {"id"?, "domain", "response", "gold", "tolerance"?, "extract"?}.
    /// Each output line, in input order: {"id", "reward", "correct", "format_ok",
    /// "extracted", "subscores", "reason", "error"}. A line that cannot be scored gets an
    /// `error` naming its line number; the others are still scored, and the exit status
    /// is 1 if any line failed.
    Score {
        /// Input file, or `-` for standard input.
        #[arg(long, default_value = "-")]
        input: PathBuf,
        /// Output file, or `-` for standard output.
        #[arg(long, default_value = "-")]
        output: PathBuf,
        /// Extraction mode for lines without an `extract` field.
        #[arg(long, default_value = "glm", value_parser = ["glm", "glm45v", "boxed", "lenient"])]
        extract: String,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<std::num::NonZeroUsize>,
        /// A TOML file whose `[verifiers.<name>]` tables add plug-in verifiers
        /// (external processes, the code sandbox, judges); an experiment file works.
        #[arg(long)]
        verifiers: Option<PathBuf>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Look inside a store: one sample's history across runs, or a summary.
    ///
    /// STORE is a store directory (RUN_DIR/store) or a run directory with a store/ inside.
    Inspect {
        /// The store directory, or a run directory.
        store: PathBuf,
        #[command(subcommand)]
        what: InspectCommand,
    },
    /// Export every observation of a store as one row (run, iteration, sample_id,
    /// policy_version, rollouts, successes, mean_reward, tier_after), for pandas or polars.
    Export {
        /// The store directory, or a run directory.
        store: PathBuf,
        /// Output format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Output file (`-` is standard output, JSON lines only).
        #[arg(long)]
        out: PathBuf,
        /// Rows per Parquet row group (the most rows held in memory).
        #[arg(long, default_value_t = 1 << 20)]
        row_group_rows: usize,
    },
    /// Look at data: render a domain's samples, or check a dataset file.
    Data {
        #[command(subcommand)]
        what: DataCommand,
    },
    /// Show what this build links against (libtorch, CUDA) and exit.
    Doctor,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Render samples of a domain as PNG files plus a JSON sidecar each (prompt,
    /// typed answer, gold, verifier, SFT template and its reward), and index.json.
    Preview {
        /// Domain name (arithmetic, stem, counting, ocr, chart, grounding, gui, video).
        #[arg(long)]
        domain: String,
        /// Difficulty in [0, 1].
        #[arg(long, default_value_t = 0.5)]
        difficulty: f32,
        /// Number of samples.
        #[arg(long, default_value_t = 8)]
        count: usize,
        /// Seed of the first sample (sample k uses a seed derived from it and k).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output directory; must be new or empty.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a word-level vocabulary (`tokenizer.json`) of the built-in domains' text —
    /// ASCII characters, then words seen at least --min-count times — for
    /// `[tch.model] tokenizer = { kind = "hugging_face", path = "…" }`.
    Vocab {
        /// The file to write; must not exist.
        #[arg(long)]
        out: PathBuf,
        /// Samples per domain and difficulty.
        #[arg(long, default_value_t = 300)]
        samples: usize,
        /// Difficulties to draw at, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "0.05,0.5,0.95")]
        difficulties: Vec<f32>,
        /// Seed of the samples.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Words seen fewer times stay spelled out character by character.
        #[arg(long, default_value_t = 3)]
        min_count: usize,
    },
    /// Read a JSONL or Parquet dataset (verl row format) as a run would; print what
    /// loads per verifier and domain, and every bad row with its file, row and field.
    /// Exit status 1 when any row is bad.
    Check {
        /// The dataset file (.jsonl, .json or .parquet).
        file: PathBuf,
        /// Verifier for every row (overrides ability/data_source).
        #[arg(long)]
        verifier: Option<String>,
        /// Stop at the first bad row (an error naming it) instead of listing them all.
        #[arg(long)]
        fail_on_bad_row: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum InspectCommand {
    /// A sample's history across runs: run, iteration, policy version, rollouts,
    /// successes, pass rate, mean reward, tier after.
    Sample {
        /// The sample id, decimal or 0x-hex.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Samples, observations, iterations, tier histogram, runs, backend, bytes on disk.
    Summary {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet, uncompressed, unsigned integer columns.
    Parquet,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BackendChoice {
    /// sled 0.34.
    Sled,
    /// redb 2.
    Redb,
    /// sled, then redb.
    Both,
}

/// `rlcs bench perception`'s arguments.
#[derive(clap::Args)]
struct PerceptionArgs {
    /// Experiment file whose `[tch.model]`, `seed` and `[pretrain]` schedule
    /// (rate, warmup, floor) the models use.
    #[arg(long, default_value = "experiments/configs/demo.toml")]
    config: PathBuf,
    /// Tasks, comma separated: colour, blobs, two-colours or built-in domains.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "colour,blobs,two-colours,counting"
    )]
    tasks: Vec<String>,
    /// Training steps per task.
    #[arg(long, default_value_t = 400)]
    steps: usize,
    /// Samples per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Held-out samples per evaluation.
    #[arg(long, default_value_t = 200)]
    eval: usize,
    /// Evaluate every this many steps (and after the last).
    #[arg(long, default_value_t = 50)]
    every: usize,
    /// Difficulty of domain samples.
    #[arg(long, default_value_t = 0.05)]
    difficulty: f32,
    /// Device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl PerceptionArgs {
    /// The benchmark's options: the experiment file's model, seed and pretraining
    /// schedule, and the tasks parsed.
    fn options(self) -> anyhow::Result<bench::perception::PerceptionOptions> {
        let mut experiment = rlcs_experiments::config::ExperimentConfig::load(&self.config)?;
        experiment.resolve_paths(self.config.parent().unwrap_or(std::path::Path::new(".")));
        let tasks = self
            .tasks
            .iter()
            .map(|t| bench::perception::Task::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        Ok(bench::perception::PerceptionOptions {
            tch: experiment.tch,
            schedule: experiment.pretrain.schedule.unwrap_or_default(),
            seed: experiment.seed,
            tasks,
            steps: self.steps,
            batch: self.batch,
            eval: self.eval,
            every: self.every,
            difficulty: self.difficulty,
            device: self.device,
        })
    }
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Verifications per second (and accuracy, with --cases) of the verifiers.
    Verifiers {
        /// A cases file (JSON lines: id, source, domain, gold, response, expected,
        /// extract?, tolerance?); default: the built-in mixed workload.
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Threads, each looping over all cases.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Minimum seconds of timed work.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Skip the worst-case timings on adversarial inputs.
        #[arg(long)]
        no_adversarial: bool,
    },
    /// Requests per second through an external verifier's processes (and the code
    /// sandbox) against the same rule in-process, in one run.
    Plugins {
        /// The external verifier's command line (split on spaces).
        #[arg(long, default_value = "python3 examples/verifiers/exact_match.py")]
        command: String,
        /// Process counts to measure, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        concurrency: Vec<usize>,
        /// Minimum seconds of timed work per row.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Skip the code sandbox rows.
        #[arg(long)]
        no_sandbox: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// select(1024) latency, observe throughput and memory per sample of the samplers.
    Curriculum {
        /// Pool sizes, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
        sizes: Vec<usize>,
        /// Samplers, comma separated (default: all); uniform is always measured as the baseline.
        #[arg(long, value_delimiter = ',')]
        samplers: Vec<String>,
        /// Timed repetitions per measurement.
        #[arg(long, default_value_t = 50)]
        reps: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Training tokens/s and MFU (against the fp32 matmul peak measured in the same
    /// run), generation tokens/s with and without the KV cache, packing efficiency
    /// of the libtorch model.
    Model {
        /// Timed training steps.
        #[arg(long, default_value_t = 10)]
        train_steps: usize,
        /// Timed generation runs with the KV cache.
        #[arg(long, default_value_t = 3)]
        gen_runs: usize,
        /// Device: auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// How many answer-only training steps the libtorch model needs before it reads
    /// its images: held-out greedy accuracy over training on probe tasks (colour,
    /// blobs, two-colours) and domains, against each task's guessing rate.
    Perception(PerceptionArgs),
    /// Observations written per second (durable appends of 4 × 1024 per iteration),
    /// bytes on disk per observation, open and summary time, per backend.
    Store {
        /// Observations to write per backend (the figure is 10000000).
        #[arg(long, default_value_t = 1_000_000)]
        observations: u64,
        /// Backends to measure, one after the other in this run.
        #[arg(long, value_enum, default_value = "both")]
        backend: BackendChoice,
        /// Directory for the benchmark stores (default: the system temp directory);
        /// each is removed afterwards.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `rlcs inspect`.
fn data(what: DataCommand) -> anyhow::Result<ExitCode> {
    match what {
        DataCommand::Preview {
            domain,
            difficulty,
            count,
            seed,
            out,
        } => {
            let summary = rlcs_experiments::data::preview(&domain, difficulty, count, seed, &out)?;
            let bad = summary
                .samples
                .iter()
                .filter(|e| e.template_reward < 1.0)
                .count();
            println!(
                "{}: {} samples, {} files in {}",
                domain,
                summary.samples.len(),
                summary.files,
                out.display()
            );
            if bad > 0 {
                println!("warning: {bad} templates score below 1 with their verifier");
            }
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Vocab {
            out,
            samples,
            difficulties,
            seed,
            min_count,
        } => {
            let v = rlcs_experiments::data::vocab(&out, samples, &difficulties, seed, min_count)?;
            println!(
                "{}: {} tokens from {} texts; {:.1} tokens per text (characters: {:.1})",
                v.path.display(),
                v.vocab_size,
                v.texts,
                v.mean_tokens,
                v.mean_chars
            );
            Ok(ExitCode::SUCCESS)
        }
        DataCommand::Check {
            file,
            verifier,
            fail_on_bad_row,
            json,
        } => {
            let options = rlcs_experiments::data::ReaderOptions {
                verifier,
                on_bad_row: if fail_on_bad_row {
                    rlcs_experiments::data::OnBadRow::Fail
                } else {
                    rlcs_experiments::data::OnBadRow::Skip
                },
                ..Default::default()
            };
            let report = rlcs_experiments::data::check(&file, &options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{}: {} rows load, {} images, {} bad rows",
                    report.file.display(),
                    report.loaded,
                    report.images,
                    report.bad_rows.len()
                );
                for (v, n) in &report.by_verifier {
                    println!("  verifier {v}: {n}");
                }
                for (d, n) in &report.by_domain {
                    println!("  domain {d}: {n}");
                }
                for b in &report.bad_rows {
                    println!("  bad: {b}");
                }
            }
            Ok(if report.bad_rows.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn inspect(store: &Path, what: InspectCommand) -> anyhow::Result<()> {
    match what {
        InspectCommand::Sample { id, json } => {
            let sample = inspect::parse_sample_id(&id)?;
            let opened = inspect::open_existing(store)?;
            let report = inspect::sample_report(&opened, sample)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_table());
            }
        }
        InspectCommand::Summary { json } => {
            let opened = inspect::open_existing(store)?;
            let report = inspect::summary_report(&opened)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
        }
    }
    Ok(())
}

/// `rlcs export`.
fn export(
    store: &Path,
    format: ExportFormat,
    out: &Path,
    row_group_rows: usize,
) -> anyhow::Result<()> {
    let opened = inspect::open_existing(store)?;
    let rows = match format {
        ExportFormat::Jsonl => export::export_jsonl(&opened, open_output(out)?, out)?,
        ExportFormat::Parquet => {
            if out == Path::new("-") {
                anyhow::bail!("--format parquet needs a file for --out, not standard output");
            }
            export::export_parquet(&opened, out, export::ParquetOptions { row_group_rows })?
        }
    };
    eprintln!("exported {rows} observations to {}", out.display());
    Ok(())
}

/// `rlcs bench store`.
fn bench_store(
    observations: u64,
    backend: BackendChoice,
    dir: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let backends: &[BackendKind] = match backend {
        BackendChoice::Sled => &[BackendKind::Sled],
        BackendChoice::Redb => &[BackendKind::Redb],
        BackendChoice::Both => &BackendKind::ALL,
    };
    let parent = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir(),
    };
    let root = parent.join(format!("rlcs-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let report = bench::store::run(&root, observations, backends);
    // Best effort: the benchmark removed its stores; only the empty root is left.
    let _ = std::fs::remove_dir(&root);
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_markdown());
    }
    Ok(())
}

/// `rlcs bench curriculum`.
fn bench_curriculum(
    sizes: &[usize],
    samplers: &[String],
    reps: usize,
    json: bool,
) -> anyhow::Result<()> {
    let kinds = if samplers.is_empty() {
        SamplerKind::ALL.to_vec()
    } else {
        samplers
            .iter()
            .map(|s| {
                SamplerKind::from_name(s).ok_or_else(|| {
                    let known: Vec<&str> = SamplerKind::ALL.iter().map(|k| k.name()).collect();
                    anyhow::anyhow!("unknown sampler `{s}` (known: {})", known.join(", "))
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let report = bench::curriculum::run(sizes, &kinds, reps, 1).map_err(anyhow::Error::msg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_markdown());
    }
    Ok(())
}

/// Opens `path` for reading (`-` is standard input).
fn open_input(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(std::io::stdin().lock())));
    }
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Box::new(BufReader::new(f)))
}

/// Opens `path` for writing (`-` is standard output).
fn open_output(path: &Path) -> anyhow::Result<Box<dyn Write>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufWriter::new(std::io::stdout().lock())));
    }
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(Box::new(BufWriter::new(f)))
}

/// `rlcs score`: returns whether every line was scored.
fn score(
    input: &Path,
    output: &Path,
    extract: &str,
    threads: Option<std::num::NonZeroUsize>,
    verifiers: Option<&Path>,
) -> anyhow::Result<bool> {
    let defaults = ScoreOptions::default();
    let options = ScoreOptions {
        extract: extract.parse().map_err(anyhow::Error::msg)?,
        threads: threads.unwrap_or(defaults.threads),
    };
    let registry = match verifiers {
        None => Registry::builtin(),
        Some(path) => rlcs_experiments::registry_from(path)?,
    };
    let summary = score_stream(
        &registry,
        open_input(input)?,
        &input.display().to_string(),
        open_output(output)?,
        &output.display().to_string(),
        &options,
    )?;
    eprintln!(
        "scored {} of {} lines ({} correct, {} errors)",
        summary.scored, summary.lines, summary.correct, summary.failed
    );
    Ok(summary.failed == 0)
}

/// `rlcs bench verifiers`.
fn bench_verifiers(
    cases: Option<&Path>,
    json: bool,
    threads: usize,
    seconds: f64,
    no_adversarial: bool,
) -> anyhow::Result<()> {
    if !(seconds.is_finite() && seconds > 0.0) {
        anyhow::bail!("--seconds must be a positive number, got {seconds}");
    }
    let registry = Registry::builtin();
    let cases = match cases {
        Some(path) => bench::verifiers::load_cases(path, &registry)?,
        None => bench::verifiers::builtin_workload(),
    };
    let report = bench::verifiers::run_bench(
        &registry,
        &cases,
        &bench::verifiers::BenchOptions {
            min_time: std::time::Duration::from_secs_f64(seconds),
            threads,
            adversarial: !no_adversarial,
        },
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Trace { run_dir, iteration } => {
            let spans = rlcs_experiments::spans::read_spans(&run_dir)?;
            print!(
                "{}",
                rlcs_experiments::spans::trace_report(&spans, iteration)?
            );
        }
        Command::Dashboard { run_dir, serve } => {
            let server = rlcs_experiments::serve_dashboard(&run_dir, serve).await?;
            println!(
                "dashboard of {}: http://{}/  (metrics: /metrics); Ctrl-C stops it",
                run_dir.display(),
                server.addr
            );
            tokio::signal::ctrl_c().await?;
            server.stop().await;
        }
        Command::Run {
            config,
            out,
            resume,
            quiet,
            serve,
            serve_cluster,
            cookie_file,
        } => {
            let options = rlcs_experiments::RunOptions {
                out,
                progress: !quiet,
                code_revision: option_env!("RLCS_CODE_REVISION").map(String::from),
                prior_stages: Vec::new(),
                serve,
                spans: true,
                serve_cluster,
                cookie_file,
            };
            let outcome = match &resume {
                Some(run_dir) => rlcs_experiments::resume_experiment(&config, run_dir, options)
                    .await
                    .with_context(|| {
                        format!("resuming {} with {}", run_dir.display(), config.display())
                    })?,
                None => rlcs_experiments::run_experiment(&config, options)
                    .await
                    .with_context(|| format!("running {}", config.display()))?,
            };
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
        Command::Node(settings) => run_node(settings).await?,
        Command::Compare { runs, out } => {
            let (comparison, reports) = rlcs_experiments::compare::compare(&runs)?;
            print!("{}", comparison.markdown());
            if let Some(dir) = out {
                comparison.write(&reports, &dir)?;
                println!("\ncomparison: {}", dir.join("compare.md").display());
            }
        }
        Command::Sweep {
            config,
            sets,
            out,
            quiet,
        } => {
            let axes = sets
                .iter()
                .map(|s| rlcs_experiments::compare::SweepAxis::parse(s))
                .collect::<Result<Vec<_>, _>>()?;
            let outcome = rlcs_experiments::compare::sweep(
                &config,
                &axes,
                out,
                !quiet,
                option_env!("RLCS_CODE_REVISION").map(String::from),
            )
            .await
            .with_context(|| format!("sweeping {}", config.display()))?;
            print!("{}", outcome.comparison.markdown());
            println!("\ncomparison: {}", outcome.out.join("compare.md").display());
        }
        Command::Study { config, out, quiet } => {
            let outcome = rlcs_experiments::study::run_study(
                &config,
                rlcs_experiments::study::StudyOptions {
                    out,
                    progress: !quiet,
                    code_revision: option_env!("RLCS_CODE_REVISION").map(String::from),
                },
            )
            .await
            .with_context(|| format!("running study {}", config.display()))?;
            println!(
                "{}: {} scenarios x {} samplers in {:.1} s",
                outcome.result.name,
                outcome.result.scenarios.len(),
                outcome
                    .result
                    .scenarios
                    .first()
                    .map(|s| s.rows.len())
                    .unwrap_or(0),
                outcome.wall_seconds
            );
            println!("tables: {}", outcome.out.join("study.md").display());
        }
        Command::Score {
            input,
            output,
            extract,
            threads,
            verifiers,
        } => {
            let all_scored = score(&input, &output, &extract, threads, verifiers.as_deref())?;
            return Ok(if all_scored {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Command::Bench {
            what:
                BenchCommand::Verifiers {
                    cases,
                    json,
                    threads,
                    seconds,
                    no_adversarial,
                },
        } => bench_verifiers(cases.as_deref(), json, threads, seconds, no_adversarial)?,
        Command::Bench {
            what:
                BenchCommand::Plugins {
                    command,
                    concurrency,
                    seconds,
                    no_sandbox,
                    json,
                },
        } => {
            if !(seconds.is_finite() && seconds > 0.0) {
                anyhow::bail!("--seconds must be a positive number, got {seconds}");
            }
            if concurrency.is_empty() || concurrency.contains(&0) {
                anyhow::bail!("--concurrency takes positive counts, e.g. 1,2,4");
            }
            let report = bench::plugins::run(&bench::plugins::PluginBenchOptions {
                command: command.split_whitespace().map(str::to_string).collect(),
                concurrency,
                min_time: std::time::Duration::from_secs_f64(seconds),
                sandbox: !no_sandbox,
            })
            .map_err(anyhow::Error::msg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
        }
        Command::Bench {
            what:
                BenchCommand::Curriculum {
                    sizes,
                    samplers,
                    reps,
                    json,
                },
        } => bench_curriculum(&sizes, &samplers, reps, json)?,
        Command::Bench {
            what:
                BenchCommand::Model {
                    train_steps,
                    gen_runs,
                    device,
                    json,
                },
        } => {
            let report =
                bench::model::run(train_steps, gen_runs, &device).map_err(anyhow::Error::msg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", bench::model::to_markdown(&report));
            }
        }
        Command::Bench {
            what: BenchCommand::Perception(args),
        } => {
            let json = args.json;
            let report = bench::perception::run(&args.options()?).map_err(anyhow::Error::msg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", bench::perception::to_markdown(&report));
            }
        }
        Command::Bench {
            what:
                BenchCommand::Store {
                    observations,
                    backend,
                    dir,
                    json,
                },
        } => bench_store(observations, backend, dir.as_deref(), json)?,
        Command::Inspect { store, what } => inspect(&store, what)?,
        Command::Export {
            store,
            format,
            out,
            row_group_rows,
        } => export(&store, format, &out, row_group_rows)?,
        Command::Data { what } => return data(what),
        Command::Doctor => {
            println!("rlcs {}", env!("CARGO_PKG_VERSION"));
            match rlcs_experiments::torch_info() {
                Some(info) => println!("libtorch: {info}"),
                None => println!("libtorch: not built in (build with the default `torch` feature)"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs on stderr and OpenTelemetry spans (to each run's spans.jsonl, and over
    // OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set).
    let tracing = match rlcs_experiments::trace::init() {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
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
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Export what is left (OTLP batches) before the process ends.
    if let Some(t) = tracing {
        t.shutdown();
    }
    code
}

/// What `rlcs node` was told.
#[derive(clap::Args)]
struct NodeSettings {
    /// The coordinator's cluster address (`rlcs run --serve-cluster`).
    #[arg(long, value_name = "HOST:PORT")]
    join: String,
    /// The file holding the cluster's shared secret.
    #[arg(long, value_name = "FILE")]
    cookie_file: PathBuf,
    /// The pool this node serves.
    #[arg(long, default_value = "verifiers")]
    role: rlcs_experiments::cluster::Role,
    /// Jobs the node runs at once (default: the machine's cores).
    #[arg(long)]
    slots: Option<usize>,
    /// The node's name (default node-<pid>).
    #[arg(long)]
    name: Option<String>,
    /// Plug-in verifiers this node scores with, besides the built-in ones (a
    /// TOML of `[verifiers.<name>]` tables, as `rlcs score --verifiers`).
    #[arg(long, value_name = "FILE")]
    verifiers: Option<PathBuf>,
    /// Exit when the coordinator closes the connection instead of joining again.
    #[arg(long)]
    once: bool,
}

/// Joins the coordinator and serves until stopped (or, with `--once`, until the
/// coordinator closes the connection). A wrong cookie ends the node with an error.
async fn run_node(s: NodeSettings) -> anyhow::Result<()> {
    use rlcs_experiments::cluster::{join, read_cookie, AgentArgs, JoinError, PolicyFactory, Role};
    let cookie = read_cookie(&s.cookie_file).map_err(anyhow::Error::msg)?;
    let registry = Arc::new(match &s.verifiers {
        None => Registry::builtin(),
        Some(path) => rlcs_experiments::registry_from(path)?,
    });
    let name = s
        .name
        .unwrap_or_else(|| format!("node-{}", std::process::id()));
    let slots = s
        .slots
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let policies: Option<PolicyFactory> = (s.role == Role::Replicas).then(|| {
        Arc::new(|json: &str| rlcs_experiments::replica_builder_from_json(json)) as PolicyFactory
    });
    let mut waiting_said = false;
    loop {
        let args = AgentArgs {
            name: name.clone(),
            role: s.role,
            slots,
            registry: registry.clone(),
            policies: policies.clone(),
        };
        match join(&s.join, &cookie, args).await {
            Ok(mut node) => {
                waiting_said = false;
                eprintln!(
                    "node {name}: joined {} as {} ({slots} slots)",
                    s.join,
                    s.role.name()
                );
                tokio::select! {
                    _ = node.disconnected() => {}
                    _ = tokio::signal::ctrl_c() => {
                        node.stop().await;
                        return Ok(());
                    }
                }
                eprintln!(
                    "node {name}: the coordinator closed the connection ({} jobs served)",
                    node.jobs()
                );
                node.stop().await;
                if s.once {
                    return Ok(());
                }
            }
            Err(e @ JoinError::Refused { .. }) | Err(e @ JoinError::Start(_)) => {
                return Err(anyhow::Error::new(e));
            }
            Err(e @ JoinError::Unreachable { .. }) => {
                if !waiting_said {
                    eprintln!("node {name}: waiting for the coordinator ({e})");
                    waiting_said = true;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}
