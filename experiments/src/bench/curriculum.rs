//! `rlcs bench curriculum`: how fast each sampler selects and observes on pools of
//! millions of samples, and how much memory a sample costs.
//!
//! Each pool spreads its samples over four domains, gets offline pass rates from a
//! synthetic grade stage (so every tier is populated) and runs a few warm-up
//! iterations. Then `select(1024)` is timed `reps` times (p50, p99) and so is
//! `observe` of 1024 groups of 8 (groups per second). The uniform sampler is the
//! baseline measured in the same run; each sampler's p50 is reported as a ratio to it.

use std::time::Instant;

use rlcs_curriculum::{Curriculum, CurriculumConfig, GroupOutcome, PoolEntry, SamplerKind};
use serde::Serialize;

/// Prompts per `select` and groups per `observe`.
pub const BATCH: usize = 1024;
/// Rollouts per group.
pub const GROUP: u32 = 8;

/// Timings of one sampler on one pool size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplerTiming {
    /// Sampler name.
    pub sampler: String,
    /// Samples in the pool.
    pub pool: usize,
    /// Median `select(1024)` time in milliseconds.
    pub select_p50_ms: f64,
    /// 99th-percentile `select(1024)` time in milliseconds.
    pub select_p99_ms: f64,
    /// `select` p50 divided by the uniform sampler's on the same pool.
    pub select_vs_uniform: f64,
    /// Median `observe` time of 1024 groups of 8, in milliseconds.
    pub observe_p50_ms: f64,
    /// Groups observed per second (from the median).
    pub observe_groups_per_sec: f64,
    /// Heap bytes per sample (statistics, pool entry, id index, sampler index).
    pub bytes_per_sample: f64,
    /// Seconds to build the pool (index, offline tiers, warm-up).
    pub build_seconds: f64,
}

/// The `rlcs bench curriculum` report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurriculumBenchReport {
    /// Bytes of one `SampleStats` (the per-sample statistics record).
    pub stats_bytes: usize,
    /// Timed repetitions per measurement.
    pub reps: usize,
    /// One row per (pool size, sampler).
    pub timings: Vec<SamplerTiming>,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Deterministic successes for a group: a function of the id and the iteration.
fn outcomes(ids: &[u64], iteration: u32) -> Vec<GroupOutcome> {
    ids.iter()
        .map(|&id| {
            let k = ((id >> 7) ^ u64::from(iteration)) % u64::from(GROUP + 1);
            let mut g = GroupOutcome::new(id, GROUP, k as u32, u64::from(iteration));
            g.mean_abs_advantage = Some(0.5);
            g.mean_response_len = Some(256.0);
            g
        })
        .collect()
}

/// Builds and warms a pool of `n` samples for `kind`.
fn build(kind: SamplerKind, n: usize, seed: u64) -> Result<Curriculum, String> {
    let entries: Vec<PoolEntry> = (0..n as u64)
        .map(|i| PoolEntry {
            id: i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            domain: (i % 4) as u16,
        })
        .collect();
    let domains = (0..4).map(|d| format!("domain{d}")).collect();
    let mut config = CurriculumConfig::with_sampler(kind);
    config.expansion.enabled = false;
    let mut c =
        Curriculum::new(config, domains, entries, BATCH, seed).map_err(|e| e.to_string())?;
    let offline: Vec<(u64, f32)> = c
        .entries()
        .iter()
        .map(|e| (e.id, (e.id % 101) as f32 / 100.0))
        .collect();
    c.set_offline_pass_rates(&offline)
        .map_err(|e| e.to_string())?;
    for it in 0..4 {
        let sel = c.select_n(BATCH);
        c.observe(it, &outcomes(&sel.samples, it))
            .map_err(|e| e.to_string())?;
    }
    Ok(c)
}

/// Times every sampler in `kinds` on every pool size in `sizes`. The uniform sampler
/// is always measured first on each size, as the baseline.
pub fn run(
    sizes: &[usize],
    kinds: &[SamplerKind],
    reps: usize,
    seed: u64,
) -> Result<CurriculumBenchReport, String> {
    let reps = reps.max(3);
    let mut timings = Vec::new();
    for &n in sizes {
        let mut order = vec![SamplerKind::Uniform];
        order.extend(kinds.iter().copied().filter(|k| *k != SamplerKind::Uniform));
        let mut uniform_p50 = f64::NAN;
        for kind in order {
            let t0 = Instant::now();
            let mut c = build(kind, n, seed)?;
            let build_seconds = t0.elapsed().as_secs_f64();
            let mut select_ms = Vec::with_capacity(reps);
            let mut observe_ms = Vec::with_capacity(reps);
            for r in 0..reps {
                let iteration = 10 + r as u32;
                let t = Instant::now();
                let sel = c.select_n(BATCH);
                select_ms.push(t.elapsed().as_secs_f64() * 1e3);
                let groups = outcomes(&sel.samples, iteration);
                let t = Instant::now();
                c.observe(iteration, &groups).map_err(|e| e.to_string())?;
                observe_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            select_ms.sort_by(f64::total_cmp);
            observe_ms.sort_by(f64::total_cmp);
            let select_p50 = percentile(&select_ms, 0.5);
            if kind == SamplerKind::Uniform {
                uniform_p50 = select_p50;
            }
            let observe_p50 = percentile(&observe_ms, 0.5);
            let row = SamplerTiming {
                sampler: kind.name().to_string(),
                pool: n,
                select_p50_ms: select_p50,
                select_p99_ms: percentile(&select_ms, 0.99),
                select_vs_uniform: select_p50 / uniform_p50,
                observe_p50_ms: observe_p50,
                observe_groups_per_sec: BATCH as f64 / (observe_p50 / 1e3).max(1e-12),
                bytes_per_sample: c.heap_bytes() as f64 / n.max(1) as f64,
                build_seconds,
            };
            // The uniform baseline is reported even when not asked for.
            timings.push(row);
        }
    }
    Ok(CurriculumBenchReport {
        stats_bytes: std::mem::size_of::<rlcs_curriculum::SampleStats>(),
        reps,
        timings,
    })
}

impl CurriculumBenchReport {
    /// A Markdown table of the timings.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "SampleStats: {} bytes; {} timed repetitions per cell\n\n",
            self.stats_bytes, self.reps
        );
        s += "| sampler | pool | select(1024) p50 ms | p99 ms | vs uniform | observe 1024x8 p50 ms | groups/s | bytes/sample |\n";
        s += "|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for t in &self.timings {
            s += &format!(
                "| {} | {} | {:.3} | {:.3} | {:.2}x | {:.3} | {:.0} | {:.1} |\n",
                t.sampler,
                t.pool,
                t.select_p50_ms,
                t.select_p99_ms,
                t.select_vs_uniform,
                t.observe_p50_ms,
                t.observe_groups_per_sec,
                t.bytes_per_sample
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pools_report_every_sampler_with_the_uniform_baseline() {
        let kinds = [SamplerKind::Rlcs, SamplerKind::Kimi];
        let report = run(&[5_000], &kinds, 3, 7).expect("runs");
        let names: Vec<&str> = report.timings.iter().map(|t| t.sampler.as_str()).collect();
        assert_eq!(names, ["uniform", "rlcs", "kimi"]);
        for t in &report.timings {
            assert!(t.select_p50_ms > 0.0 && t.select_p99_ms >= t.select_p50_ms);
            assert!(t.observe_groups_per_sec > 0.0);
            assert!(t.bytes_per_sample > report.stats_bytes as f64);
        }
        assert_eq!(report.timings[0].select_vs_uniform, 1.0);
        assert!(report.to_markdown().contains("| rlcs | 5000 |"));
    }
}
