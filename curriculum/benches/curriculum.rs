//! Curriculum micro-benchmarks: `select(1024)` and `observe` of 1024 groups of 8 on
//! pools of 1M and 10M samples, per sampler, plus memory per sample (printed).
//!
//! `cargo bench -p rlcs-curriculum -- --quick` (set `RLCS_BENCH_10M=0` to skip 10M,
//! `RLCS_BENCH_SAMPLERS=rlcs,uniform` to choose samplers).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rlcs_curriculum::{Curriculum, CurriculumConfig, GroupOutcome, PoolEntry, SamplerKind};

const BATCH: usize = 1024;

/// A pool of `n` samples over 4 domains, with offline tiers from a synthetic grade
/// stage and a few warm-up iterations, so every bucket is populated.
fn pool(kind: SamplerKind, n: usize) -> Curriculum {
    let entries: Vec<PoolEntry> = (0..n as u64)
        .map(|i| PoolEntry {
            id: i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            domain: (i % 4) as u16,
        })
        .collect();
    let domains = (0..4).map(|d| format!("d{d}")).collect();
    let mut config = CurriculumConfig::with_sampler(kind);
    config.expansion.enabled = false;
    let mut c = Curriculum::new(config, domains, entries, BATCH, 1).expect("valid pool");
    let offline: Vec<(u64, f32)> = c
        .entries()
        .iter()
        .map(|e| (e.id, (e.id % 101) as f32 / 100.0))
        .collect();
    c.set_offline_pass_rates(&offline).expect("known ids");
    for it in 0..4 {
        let sel = c.select_n(BATCH);
        c.observe(it, &grade(&sel.samples, it)).expect("known ids");
    }
    c
}

fn grade(ids: &[u64], it: u32) -> Vec<GroupOutcome> {
    ids.iter()
        .map(|&id| {
            let mut g = GroupOutcome::new(id, 8, ((id >> 7) % 9) as u32, it as u64);
            g.mean_abs_advantage = Some(0.5);
            g
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut sizes = vec![1_000_000usize];
    if std::env::var("RLCS_BENCH_10M").map_or(true, |v| v != "0") {
        sizes.push(10_000_000);
    }
    // RLCS_BENCH_SAMPLERS=rlcs,uniform,… picks samplers (default: these four).
    let kinds: Vec<SamplerKind> = match std::env::var("RLCS_BENCH_SAMPLERS") {
        Ok(v) => v.split(',').filter_map(SamplerKind::from_name).collect(),
        Err(_) => vec![
            SamplerKind::Rlcs,
            SamplerKind::Uniform,
            SamplerKind::Kimi,
            SamplerKind::Plr,
        ],
    };
    for &n in &sizes {
        for &kind in &kinds {
            let mut cur = pool(kind, n);
            eprintln!(
                "memory: {} pool {n}: {:.1} bytes/sample ({} MiB)",
                kind.name(),
                cur.heap_bytes() as f64 / n as f64,
                cur.heap_bytes() >> 20
            );
            let mut g = c.benchmark_group(format!("{}_{}M", kind.name(), n / 1_000_000));
            g.sample_size(20);
            g.bench_function("select_1024", |b| b.iter(|| black_box(cur.select_n(BATCH))));
            let mut it = 10u32;
            g.bench_function("observe_1024x8", |b| {
                // Selection and grading happen outside the timed region.
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        it += 1;
                        let groups = grade(&cur.select_n(BATCH).samples, it);
                        let t = Instant::now();
                        black_box(cur.observe(it, &groups).expect("known ids"));
                        total += t.elapsed();
                    }
                    total
                })
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
