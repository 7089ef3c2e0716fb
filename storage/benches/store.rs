//! Store benchmarks, per backend: durable appends (observations per second), bytes on
//! disk per observation, and open and summary time of a large store.
//!
//! Sizes come from the environment:
//! - `RLCS_STORE_BENCH_BATCH` observations per iteration (default 4096 = 1024 × 4);
//! - `RLCS_STORE_BENCH_OBS` observations in the large store (default 1,000,000);
//! - `RLCS_STORE_BENCH_SAMPLES` distinct samples they cycle over (default 100,000).
//!
//! `cargo bench -p rlcs-storage --bench store`; the size lines are printed to stderr.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rlcs_curriculum::Observation;
use rlcs_storage::{BackendKind, RunRecord, RunStatus, Store};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A content-hash-like sample id for slot `i`.
fn sample_id(i: u64) -> u64 {
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Iteration `it`'s observations: `batch` distinct samples of a pool of `pool`.
fn iteration(it: u32, batch: usize, pool: usize) -> Vec<Observation> {
    (0..batch)
        .map(|j| {
            let slot = (it as usize * batch + j) % pool;
            let successes = ((slot as u32).wrapping_mul(7) ^ it) % 9;
            Observation {
                sample: sample_id(slot as u64),
                iteration: it,
                policy_version: it as u64,
                rollouts: 8,
                successes,
                mean_reward: successes as f32 / 8.0,
                tier_after: (successes / 2) as u8,
            }
        })
        .collect()
}

fn registered(dir: &std::path::Path, kind: BackendKind) -> Store {
    let s = Store::open_with(dir, kind).expect("open store");
    s.put_run(&RunRecord {
        run: "bench".into(),
        seed: 1,
        config: serde_json::json!({}),
        status: RunStatus::Running,
        last_iteration: 0,
    })
    .expect("register run");
    s
}

fn bench(c: &mut Criterion) {
    let batch = env("RLCS_STORE_BENCH_BATCH", 4096);
    let total = env("RLCS_STORE_BENCH_OBS", 1_000_000);
    let pool = env("RLCS_STORE_BENCH_SAMPLES", 100_000);
    for kind in BackendKind::ALL {
        // Durable appends into a store that already holds some history.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = registered(dir.path(), kind);
        let mut it = 0u32;
        let mut g = c.benchmark_group(format!("store/{kind}"));
        g.sample_size(10).measurement_time(Duration::from_secs(8));
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(format!("append_iteration/{batch}"), |b| {
            b.iter_custom(|iters| {
                let batches: Vec<_> = (0..iters)
                    .map(|k| iteration(it + k as u32, batch, pool))
                    .collect();
                it += iters as u32;
                let t = Instant::now();
                for o in &batches {
                    store.append_iteration(o).expect("append");
                }
                t.elapsed()
            })
        });
        drop(store);

        // A large store, built by durable appends, then measured.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = registered(dir.path(), kind);
        let iterations = total.div_ceil(batch) as u32;
        let mut write = Duration::ZERO;
        for i in 0..iterations {
            let o = iteration(i, batch, pool);
            let t = Instant::now();
            store.append_iteration(&o).expect("append");
            write += t.elapsed();
        }
        let n = store.observation_count();
        let bytes = store.bytes_on_disk().expect("size");
        eprintln!(
            "store/{kind}: built {n} observations ({iterations} iterations of {batch}, {pool} samples) \
             in {:.2} s = {:.0} obs/s durable; {bytes} bytes on disk = {:.1} bytes/observation",
            write.as_secs_f64(),
            n as f64 / write.as_secs_f64(),
            bytes as f64 / n as f64
        );
        drop(store);
        let t = Instant::now();
        let s = Store::open(dir.path()).expect("reopen");
        eprintln!(
            "store/{kind}: first reopen {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        let t = Instant::now();
        let sum = s.summary().expect("summary");
        eprintln!(
            "store/{kind}: summary {:.1} ms ({} samples, {} observations); \
             bytes/observation after reopen {:.1}",
            t.elapsed().as_secs_f64() * 1e3,
            sum.samples,
            sum.observations,
            sum.bytes_on_disk as f64 / sum.observations as f64
        );
        let t = Instant::now();
        let mut count = 0u64;
        s.for_each_observation(|_| {
            count += 1;
            Ok::<_, rlcs_storage::StoreError>(())
        })
        .expect("scan");
        eprintln!(
            "store/{kind}: full scan of {count} observations {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        let t = Instant::now();
        let h = s.history(sample_id(3)).expect("history");
        eprintln!(
            "store/{kind}: history of one sample ({} entries) {:.1} ms",
            h.len(),
            t.elapsed().as_secs_f64() * 1e3
        );
        drop(s);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("open/{n}"), |b| {
            b.iter(|| black_box(Store::open(dir.path()).expect("open")))
        });
        let s = Store::open(dir.path()).expect("open");
        g.bench_function(format!("summary/{n}"), |b| {
            b.iter(|| black_box(s.summary().expect("summary")))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
