//! `rlcs bench perception`: how many training steps the libtorch model needs before
//! it reads its images.
//!
//! Each task trains a fresh model (the experiment file's `[tch.model]`, seeded by its
//! `seed`) on answers alone — the loss is on the gold answer, never on the prompt —
//! with `batch` fresh samples per step, and every `every` steps decodes greedily on
//! `eval` held-out samples and counts exact matches with the gold answer. A task's
//! *guessing rate* is the share of its held-out samples whose gold is the most
//! frequent one: what a model that ignores the image scores at best.
//!
//! Three probe tasks isolate what reading takes, from least to most:
//! - `colour`: the whole image is red, blue or green; "What colour is the image?" —
//!   any image signal at all reaching the decoder;
//! - `blobs`: 1–3 red squares on white; "How many squares are there?" — counting
//!   without having to pick objects out by the prompt;
//! - `two-colours`: 1–3 red and 1–3 blue squares; the prompt asks for one colour —
//!   the prompt has to select what to count (what every domain asks of the model);
//!
//! and any built-in domain name (`counting`, `chart`, …) trains on that domain's
//! samples at `difficulty`, as the recipe's answer-only pretraining reads them.
//!
//! Needs the `torch` feature; [`run`] says so when the binary was built without it.

use serde::{Deserialize, Serialize};

/// A synthetic probe task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The image is one colour; name it.
    Colour,
    /// Count the red squares.
    Blobs,
    /// Count the squares of the colour the prompt names.
    TwoColours,
}

/// What a model is trained and evaluated on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// A synthetic probe.
    Probe(Probe),
    /// A built-in domain's samples.
    Domain(String),
}

impl Task {
    /// Parses a task name: `colour`, `blobs`, `two-colours` or a built-in domain.
    pub fn parse(name: &str) -> Result<Task, String> {
        match name {
            "colour" => Ok(Task::Probe(Probe::Colour)),
            "blobs" => Ok(Task::Probe(Probe::Blobs)),
            "two-colours" => Ok(Task::Probe(Probe::TwoColours)),
            other => match rlcs_domains::domain_by_name(other) {
                Ok(_) => Ok(Task::Domain(other.to_string())),
                Err(_) => Err(format!(
                    "unknown perception task {other:?}: expected colour, blobs, two-colours or a built-in domain ({})",
                    rlcs_domains::BUILTIN_DOMAINS.join(", ")
                )),
            },
        }
    }

    /// The task's name, as [`parse`](Task::parse) reads it.
    pub fn name(&self) -> &str {
        match self {
            Task::Probe(Probe::Colour) => "colour",
            Task::Probe(Probe::Blobs) => "blobs",
            Task::Probe(Probe::TwoColours) => "two-colours",
            Task::Domain(d) => d,
        }
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct PerceptionOptions {
    /// The model (sizes, tokenizer, optimiser); its `device` is replaced by `device`.
    pub tch: rlcs_model::config::TchConfig,
    /// Peak learning rate, warmup and floor of the schedule; its `total_steps` is
    /// replaced by `steps`.
    pub schedule: rlcs_model::pack::Schedule,
    /// Seed of the model and of every sample.
    pub seed: u64,
    /// Tasks, each on a fresh model.
    pub tasks: Vec<Task>,
    /// Training steps per task.
    pub steps: usize,
    /// Samples per step.
    pub batch: usize,
    /// Held-out samples per evaluation.
    pub eval: usize,
    /// Evaluate every this many steps (and after the last).
    pub every: usize,
    /// Difficulty of domain samples.
    pub difficulty: f32,
    /// Device: `cpu`, `cuda`, `cuda:N` or `auto`.
    pub device: String,
}

/// One evaluation of a task's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Training steps taken.
    pub step: usize,
    /// Share of held-out samples answered exactly (greedy).
    pub accuracy: f64,
    /// Mean per-example training loss of the step before it.
    pub loss: f64,
}

/// A task's learning curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// The task.
    pub task: String,
    /// Share of held-out samples whose gold is the most frequent one.
    pub guessing_rate: f64,
    /// Held-out accuracy over training.
    pub curve: Vec<Point>,
    /// Wall seconds per training step (evaluations excluded).
    pub seconds_per_step: f64,
}

/// The benchmark's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerceptionReport {
    /// Model parameters.
    pub parameters: usize,
    /// Device the models trained on.
    pub device: String,
    /// Samples per step.
    pub batch: usize,
    /// Held-out samples per evaluation.
    pub eval: usize,
    /// One per task, in the order asked.
    pub tasks: Vec<TaskReport>,
}

/// Runs the benchmark.
#[cfg(feature = "torch")]
pub fn run(options: &PerceptionOptions) -> Result<PerceptionReport, String> {
    imp::run(options)
}

/// Built without the `torch` feature: the model cannot be trained.
#[cfg(not(feature = "torch"))]
pub fn run(_: &PerceptionOptions) -> Result<PerceptionReport, String> {
    Err("this rlcs was built without the `torch` feature; rebuild with default features to measure perception".into())
}

/// A readable table of a report: one row per task, one column per evaluation.
pub fn to_markdown(report: &PerceptionReport) -> String {
    let mut out = format!(
        "model: {} parameters on {}; {} samples per step, {} held-out per evaluation (greedy, exact match)\n\n",
        report.parameters, report.device, report.batch, report.eval
    );
    let steps: Vec<usize> = report
        .tasks
        .first()
        .map(|t| t.curve.iter().map(|p| p.step).collect())
        .unwrap_or_default();
    out.push_str("| task | guessing rate | s/step |");
    for s in &steps {
        out.push_str(&format!(" step {s} |"));
    }
    out.push_str("\n|---|---:|---:|");
    out.push_str(&"---:|".repeat(steps.len()));
    out.push('\n');
    for t in &report.tasks {
        out.push_str(&format!(
            "| {} | {:.2} | {:.2} |",
            t.task, t.guessing_rate, t.seconds_per_step
        ));
        for p in &t.curve {
            out.push_str(&format!(" {:.2} |", p.accuracy));
        }
        out.push('\n');
    }
    out
}

/// The probe tasks' samples: prompts with images, and gold answers.
#[cfg(any(feature = "torch", test))]
mod probes {
    use std::sync::Arc;

    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rlcs_model::{Prompt, PromptImage};

    use super::{Probe, Task};

    /// Canvas side in pixels.
    pub const SIDE: usize = 64;
    /// Cells per side of the grid squares are placed on.
    const GRID: usize = 3;
    const RED: [u8; 3] = [220, 40, 40];
    const BLUE: [u8; 3] = [40, 60, 220];
    const GREEN: [u8; 3] = [40, 180, 60];

    /// A white canvas.
    pub struct Canvas {
        pub rgb: Vec<u8>,
    }

    impl Canvas {
        fn new() -> Canvas {
            Canvas {
                rgb: vec![255; SIDE * SIDE * 3],
            }
        }

        fn fill(&mut self, x0: usize, y0: usize, side: usize, rgb: [u8; 3]) {
            for y in y0..(y0 + side).min(SIDE) {
                for x in x0..(x0 + side).min(SIDE) {
                    let at = (y * SIDE + x) * 3;
                    self.rgb[at..at + 3].copy_from_slice(&rgb);
                }
            }
        }

        /// Squares of `side` px in distinct random cells of the grid, one colour
        /// each, jittered inside their cells.
        fn squares(&mut self, rng: &mut ChaCha8Rng, colours: &[[u8; 3]], side: usize) {
            let cell = SIDE / GRID;
            let mut cells: Vec<usize> = (0..GRID * GRID).collect();
            cells.shuffle(rng);
            for (&c, &rgb) in cells.iter().zip(colours) {
                let jitter = cell.saturating_sub(side);
                let x = (c % GRID) * cell + rng.random_range(0..=jitter);
                let y = (c / GRID) * cell + rng.random_range(0..=jitter);
                self.fill(x, y, side, rgb);
            }
        }
    }

    /// Sample `key` of a probe: its prompt and gold answer.
    pub fn sample(probe: Probe, key: u64) -> (Prompt, String) {
        let mut rng = ChaCha8Rng::seed_from_u64(key);
        let mut canvas = Canvas::new();
        let (text, gold) = match probe {
            Probe::Colour => {
                let (name, rgb) =
                    [("red", RED), ("blue", BLUE), ("green", GREEN)][rng.random_range(0..3usize)];
                canvas.fill(0, 0, SIDE, rgb);
                (
                    "What colour is the image? Answer with one word.".to_string(),
                    name.to_string(),
                )
            }
            Probe::Blobs => {
                let n = rng.random_range(1..=3usize);
                canvas.squares(&mut rng, &vec![RED; n], 12);
                (
                    "How many squares are there in the image? Answer with a number.".to_string(),
                    n.to_string(),
                )
            }
            Probe::TwoColours => {
                let (r, b) = (rng.random_range(1..=3usize), rng.random_range(1..=3usize));
                let mut colours = vec![RED; r];
                colours.extend(std::iter::repeat_n(BLUE, b));
                canvas.squares(&mut rng, &colours, 10);
                let (name, n) = if rng.random_bool(0.5) {
                    ("red", r)
                } else {
                    ("blue", b)
                };
                (
                    format!(
                        "How many {name} squares are there in the image? Answer with a number."
                    ),
                    n.to_string(),
                )
            }
        };
        let prompt = Prompt {
            sample_id: key,
            domain: Task::Probe(probe).name().to_string(),
            text,
            gold: gold.clone(),
            answer: gold.clone(),
            wrong_answers: Vec::new(),
            difficulty: 0.0,
            images: vec![PromptImage {
                width: SIDE as u32,
                height: SIDE as u32,
                rgb: Arc::from(canvas.rgb.as_slice()),
            }],
            video: false,
        };
        (prompt, gold)
    }
}

#[cfg(feature = "torch")]
mod imp {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Instant;

    use rlcs_model::vlm::{GenerateOptions, TchPolicy};
    use rlcs_model::{LmExample, Prompt};

    use super::{PerceptionOptions, PerceptionReport, Point, Probe, Task, TaskReport};

    /// Seed of sample `index` of stream `stream` (0: training, 1: held-out) of a task:
    /// FNV-1a over the task's name and the stream, mixed with the seed and index.
    fn key(seed: u64, task: &Task, stream: u64, index: u64) -> u64 {
        let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
        for b in task.name().bytes().chain(stream.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h ^ index.wrapping_mul(0xbf58_476d_1ce4_e5b9)
    }

    /// What a task draws its samples from.
    enum Source {
        Probe(Probe),
        Domain(Arc<dyn rlcs_domains::Domain>),
    }

    impl Source {
        fn of(task: &Task) -> Result<Source, String> {
            match task {
                Task::Probe(p) => Ok(Source::Probe(*p)),
                Task::Domain(name) => rlcs_domains::domain_by_name(name)
                    .map(Source::Domain)
                    .map_err(|e| e.to_string()),
            }
        }

        /// Sample `index` of stream `stream` (0: training, 1: held-out).
        fn sample(
            &self,
            o: &PerceptionOptions,
            task: &Task,
            stream: u64,
            index: u64,
        ) -> (Prompt, String) {
            let k = key(o.seed, task, stream, index);
            match self {
                Source::Probe(p) => super::probes::sample(*p, k),
                Source::Domain(d) => {
                    let s = d.generate(k, o.difficulty);
                    (rlcs_actors::driver::prompt_of(&s), s.gold)
                }
            }
        }
    }

    fn device(name: &str) -> String {
        match name {
            "auto" if rlcs_model::torch::runtime_info().cuda_available => "cuda".into(),
            "auto" => "cpu".into(),
            d => d.into(),
        }
    }

    pub fn run(o: &PerceptionOptions) -> Result<PerceptionReport, String> {
        if o.steps == 0 || o.batch == 0 || o.eval == 0 || o.every == 0 {
            return Err("steps, batch, eval and every must each be at least 1".into());
        }
        let mut tch = o.tch.clone();
        tch.device = device(&o.device);
        tch.train.schedule = rlcs_model::pack::Schedule {
            total_steps: o.steps as u64,
            ..o.schedule
        };
        let mut parameters = 0;
        let mut tasks = Vec::new();
        for task in &o.tasks {
            let source = Source::of(task)?;
            let mut policy = TchPolicy::new(tch.clone(), o.seed).map_err(|e| e.to_string())?;
            parameters = policy.model.parameter_count();
            let held: Vec<(Prompt, String)> = (0..o.eval as u64)
                .map(|i| source.sample(o, task, 1, i))
                .collect();
            let mut golds: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, g) in &held {
                *golds.entry(g.as_str()).or_default() += 1;
            }
            let guessing_rate =
                golds.values().copied().max().unwrap_or(0) as f64 / held.len() as f64;
            let longest = held
                .iter()
                .map(|(_, g)| policy.model.tokenizer.encode(g).len())
                .max()
                .unwrap_or(1);
            let options = GenerateOptions {
                temperature: 0.0,
                max_new_tokens: longest + 2,
                thinking_budget: None,
                ..GenerateOptions::default()
            };
            let mut curve = Vec::new();
            let mut train_seconds = 0.0;
            for step in 0..o.steps {
                let examples: Vec<LmExample> = (0..o.batch)
                    .map(|i| {
                        let (prompt, gold) = source.sample(o, task, 0, (step * o.batch + i) as u64);
                        LmExample {
                            prompt,
                            response: gold,
                            train_prompt: false,
                            weight: 1.0,
                        }
                    })
                    .collect();
                let started = Instant::now();
                let stats = policy.train_lm(&examples).map_err(|e| e.to_string())?;
                train_seconds += started.elapsed().as_secs_f64();
                let loss = stats.loss / o.batch as f64;
                let done = step + 1;
                if done % o.every == 0 || done == o.steps {
                    let mut right = 0usize;
                    for (prompt, gold) in &held {
                        let out = policy
                            .model
                            .generate(prompt, &options)
                            .map_err(|e| e.to_string())?;
                        if out.first().is_some_and(|g| g.text.trim() == gold.trim()) {
                            right += 1;
                        }
                    }
                    curve.push(Point {
                        step: done,
                        accuracy: right as f64 / held.len() as f64,
                        loss,
                    });
                }
            }
            tasks.push(TaskReport {
                task: task.name().to_string(),
                guessing_rate,
                curve,
                seconds_per_step: train_seconds / o.steps as f64,
            });
        }
        Ok(PerceptionReport {
            parameters,
            device: tch.device,
            batch: o.batch,
            eval: o.eval,
            tasks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_round_trip_and_an_unknown_one_lists_the_choices() {
        for name in ["colour", "blobs", "two-colours", "counting", "ocr"] {
            assert_eq!(Task::parse(name).unwrap().name(), name);
        }
        let err = Task::parse("colours").unwrap_err();
        assert!(err.contains("\"colours\""), "{err}");
        assert!(
            err.contains("two-colours") && err.contains("counting"),
            "{err}"
        );
    }

    /// Pixels of `rgb` in a probe image.
    fn count(prompt: &rlcs_model::Prompt, rgb: [u8; 3]) -> usize {
        prompt.images[0]
            .rgb
            .chunks(3)
            .filter(|p| p == &rgb.as_slice())
            .count()
    }

    #[test]
    fn probe_images_show_what_their_gold_answers_say() {
        for key in 0..200 {
            let (p, gold) = probes::sample(Probe::Blobs, key);
            let n: usize = gold.parse().unwrap();
            assert_eq!(count(&p, [220, 40, 40]), n * 144, "blobs {key}");
            let (p, gold) = probes::sample(Probe::TwoColours, key);
            let n: usize = gold.parse().unwrap();
            let asked = if p.text.contains(" red ") {
                [220, 40, 40]
            } else {
                [40, 60, 220]
            };
            assert_eq!(count(&p, asked), n * 100, "two-colours {key}: {}", p.text);
            let (p, gold) = probes::sample(Probe::Colour, key);
            assert!(p.images[0].rgb.len() == probes::SIDE * probes::SIDE * 3);
            assert!(["red", "blue", "green"].contains(&gold.as_str()));
        }
        // Seeded: the same key draws the same sample.
        let (a, _) = probes::sample(Probe::TwoColours, 9);
        let (b, _) = probes::sample(Probe::TwoColours, 9);
        assert_eq!(a.images[0].rgb, b.images[0].rgb);
        assert_eq!(a.text, b.text);
    }

    #[test]
    fn the_table_has_a_column_per_evaluation() {
        let report = PerceptionReport {
            parameters: 10,
            device: "cpu".into(),
            batch: 4,
            eval: 8,
            tasks: vec![TaskReport {
                task: "colour".into(),
                guessing_rate: 0.375,
                curve: vec![
                    Point {
                        step: 5,
                        accuracy: 0.5,
                        loss: 1.0,
                    },
                    Point {
                        step: 10,
                        accuracy: 1.0,
                        loss: 0.1,
                    },
                ],
                seconds_per_step: 0.25,
            }],
        };
        let md = to_markdown(&report);
        assert!(
            md.contains("| task | guessing rate | s/step | step 5 | step 10 |"),
            "{md}"
        );
        assert!(
            md.contains("| colour | 0.38 | 0.25 | 0.50 | 1.00 |"),
            "{md}"
        );
    }

    /// The image path end to end: a small model trained on answers alone learns to
    /// name the colour of a one-colour image, which it cannot do without reading
    /// the image (the guessing rate is about a third).
    #[cfg(feature = "torch")]
    #[test]
    fn a_small_model_learns_to_name_an_image_colour() {
        let mut tch = rlcs_model::config::TchConfig::default();
        tch.model.dim = 32;
        tch.model.layers = 1;
        tch.model.heads = 2;
        tch.model.mlp_hidden = 64;
        tch.model.vision_dim = 16;
        tch.model.vision_layers = 1;
        tch.model.vision_heads = 2;
        tch.model.max_seq_len = 256;
        let o = PerceptionOptions {
            tch,
            schedule: rlcs_model::pack::Schedule {
                lr: 3e-3,
                warmup_steps: 5,
                total_steps: 0,
                min_ratio: 0.1,
            },
            seed: 3,
            tasks: vec![Task::Probe(Probe::Colour)],
            steps: 200,
            batch: 8,
            eval: 30,
            every: 200,
            difficulty: 0.0,
            device: "cpu".into(),
        };
        let report = run(&o).unwrap();
        let t = &report.tasks[0];
        assert!(t.guessing_rate < 0.6, "{t:?}");
        let last = t.curve.last().unwrap();
        assert_eq!(last.step, 200);
        assert!(last.accuracy >= 0.9, "{t:?}");
    }
}
