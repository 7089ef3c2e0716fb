//! The sampler conformance suite, written once and run against every [`SamplerKind`]
//! (burn-style): determinism under a seed, batch size honoured, no repeats within a
//! batch, empty and tiny pools, all-solved and all-unsolved pools, offline tiers, and
//! a save / serialise / restore round trip that continues bit-identically.

use std::collections::HashSet;

use proptest::prelude::*;
use rlcs_curriculum::{
    sampler_by_name, Curriculum, CurriculumConfig, CurriculumState, GroupOutcome, PoolEntry,
    PoolView, SampleId, SampleStats, SamplerKind, SamplerState, SteerWhen, TierConfig, TierMerge,
    WithinTier,
};

fn pool(n: usize, domains: u16) -> Vec<PoolEntry> {
    (0..n)
        .map(|i| PoolEntry {
            // Spread ids so sorting order differs from pool order.
            id: (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xABCD,
            domain: (i as u16) % domains.max(1),
        })
        .collect()
}

fn domains(n: u16) -> Vec<String> {
    (0..n).map(|d| format!("d{d}")).collect()
}

/// Every sampler with its defaults, then the non-default RLCS variants that change
/// how it selects (each must keep the same contract).
fn variants() -> Vec<CurriculumConfig> {
    let mut all: Vec<CurriculumConfig> = SamplerKind::ALL
        .into_iter()
        .map(CurriculumConfig::with_sampler)
        .collect();
    let mut balanced = CurriculumConfig::with_sampler(SamplerKind::Rlcs);
    balanced.rlcs.within_tier = WithinTier::Balanced;
    all.push(balanced);
    let mut steered = CurriculumConfig::with_sampler(SamplerKind::Rlcs);
    steered.rlcs.steer.when = SteerWhen::Always;
    all.push(steered);
    all
}

fn curriculum(config: &CurriculumConfig, n: usize, b: usize, seed: u64) -> Curriculum {
    Curriculum::new(config.clone(), domains(3), pool(n, 3), b, seed).unwrap()
}

/// A deterministic "learner": sample difficulty from its id, improving over time.
fn grade(ids: &[SampleId], it: u32) -> Vec<GroupOutcome> {
    ids.iter()
        .map(|&id| {
            let hardness = (id % 11) as u32;
            let successes = (8 + it / 3).saturating_sub(hardness).min(8);
            let mut g = GroupOutcome::new(id, 8, successes, it as u64);
            if id % 3 == 0 {
                g.mean_abs_advantage = Some((successes as f32 / 8.0) * 0.7);
                g.mean_response_len = Some(100.0 + (id % 50) as f32);
            }
            g
        })
        .collect()
}

fn assert_batch(kind: SamplerKind, got: &[SampleId], expected: usize, pool_ids: &HashSet<u64>) {
    assert_eq!(got.len(), expected, "{kind:?}: batch size");
    let mut seen = HashSet::new();
    for id in got {
        assert!(
            seen.insert(*id),
            "{kind:?}: sample {id:#x} twice in a batch"
        );
        assert!(
            pool_ids.contains(id),
            "{kind:?}: sample {id:#x} not in pool"
        );
    }
}

/// Runs `iterations` select/observe rounds; returns every selection and summary.
fn run(c: &mut Curriculum, from: u32, iterations: u32) -> Vec<String> {
    let mut log = Vec::new();
    for it in from..from + iterations {
        let sel = c.select();
        let groups = grade(&sel.samples, it);
        let o = c.observe(it, &groups).unwrap();
        log.push(format!("{sel:?} {o:?}"));
    }
    log
}

#[test]
fn every_sampler_is_deterministic_under_a_seed() {
    for config in variants() {
        let kind = config.sampler;
        let mut a = curriculum(&config, 500, 32, 11);
        let mut b = curriculum(&config, 500, 32, 11);
        assert_eq!(run(&mut a, 0, 12), run(&mut b, 0, 12), "{kind:?}");
        let mut c = curriculum(&config, 500, 32, 12);
        let mut d = curriculum(&config, 500, 32, 11);
        assert_ne!(
            run(&mut c, 0, 3),
            run(&mut d, 0, 3),
            "{kind:?}: seed has no effect"
        );
    }
}

#[test]
fn batch_size_is_honoured_without_repeats_on_any_pool_size() {
    for config in variants() {
        let kind = config.sampler;
        for n in [0usize, 1, 2, 3, 17, 300] {
            let mut c = curriculum(&config, n, 8, 3);
            let ids: HashSet<u64> = c.entries().iter().map(|e| e.id).collect();
            for it in 0..6 {
                for want in [0usize, 1, 2, 5, 64] {
                    let sel = c.select_n(want);
                    assert_batch(kind, &sel.samples, want.min(n), &ids);
                }
                let sel = c.select();
                assert!(sel.samples.len() <= n, "{kind:?}");
                assert_batch(kind, &sel.samples, sel.samples.len(), &ids);
                if n > 0 {
                    assert!(!sel.samples.is_empty(), "{kind:?}: nothing selected");
                }
                c.observe(it, &grade(&sel.samples, it)).unwrap();
            }
        }
    }
}

#[test]
fn top_up_rounds_never_repeat_a_sample_within_an_iteration() {
    for config in variants() {
        let kind = config.sampler;
        for n in [0usize, 1, 5, 40, 300] {
            let mut c = curriculum(&config, n, 8, 9);
            let ids: HashSet<u64> = c.entries().iter().map(|e| e.id).collect();
            for it in 0..4 {
                let sel = c.select();
                let mut taken: HashSet<u64> = sel.samples.iter().copied().collect();
                let mut groups = grade(&sel.samples, it);
                // Rounds until the pool is used up: each draws only new samples.
                for round in 0..12 {
                    let more = c.select_more(7);
                    assert!(more.samples.len() <= 7, "{kind:?}");
                    for id in &more.samples {
                        assert!(ids.contains(id), "{kind:?}: {id} not in the pool");
                        assert!(
                            taken.insert(*id),
                            "{kind:?}, pool {n}, iteration {it}, round {round}: {id} repeated"
                        );
                    }
                    // Epoch samplers find the samples not yet taken; weighted ones
                    // (RLCS tiers, priorities) may draw a low-weight one only rarely.
                    let covers = matches!(kind, SamplerKind::Uniform | SamplerKind::Dapo);
                    if taken.len() < n && covers {
                        assert!(
                            !more.samples.is_empty(),
                            "{kind:?}, pool {n}: top-up empty with {} of {n} taken",
                            taken.len()
                        );
                    }
                    groups.extend(grade(&more.samples, it));
                }
                c.observe(it, &groups).unwrap();
            }
        }
    }
}

#[test]
fn all_solved_and_all_unsolved_pools_still_return_batches() {
    for config in variants() {
        let kind = config.sampler;
        for successes in [0u32, 8] {
            let mut c = curriculum(&config, 200, 16, 5);
            let ids: HashSet<u64> = c.entries().iter().map(|e| e.id).collect();
            for it in 0..40 {
                let sel = c.select();
                assert!(sel.samples.len() >= 16, "{kind:?} {successes}: short batch");
                assert_batch(kind, &sel.samples, sel.samples.len(), &ids);
                let groups: Vec<_> = sel
                    .samples
                    .iter()
                    .map(|&id| GroupOutcome::new(id, 8, successes, 0))
                    .collect();
                let o = c.observe(it, &groups).unwrap();
                assert_eq!(o.kept_mixed, 0);
                if kind != SamplerKind::Dapo {
                    assert_eq!(o.kept.len(), 16);
                }
                if it > 30 {
                    assert!(o.saturated, "{kind:?}: saturation not reported");
                }
            }
            for want in [1, 16, 200, 500] {
                assert_batch(kind, &c.select_n(want).samples, want.min(200), &ids);
            }
        }
    }
}

#[test]
fn offline_tiers_and_merge_rules_work_with_every_sampler() {
    let merges = [
        TierMerge::OnlineAfter { groups: 2 },
        TierMerge::Blend {
            offline_weight: 0.4,
        },
        TierMerge::OfflineOnly,
        TierMerge::OnlineOnly,
    ];
    for config in variants() {
        let kind = config.sampler;
        for merge in merges {
            let mut config = config.clone();
            config.tiers = TierConfig {
                merge,
                ..Default::default()
            };
            let mut c = Curriculum::new(config, domains(2), pool(300, 2), 24, 9).unwrap();
            let ids: HashSet<u64> = c.entries().iter().map(|e| e.id).collect();
            run(&mut c, 0, 3);
            let offline: Vec<(u64, f32)> = c
                .entries()
                .iter()
                .map(|e| (e.id, (e.id % 10) as f32 / 9.0))
                .collect();
            c.set_offline_pass_rates(&offline).unwrap();
            for it in 3..8 {
                let sel = c.select();
                assert_batch(kind, &sel.samples, sel.samples.len(), &ids);
                assert!(sel.samples.len() >= 24);
                c.observe(it, &grade(&sel.samples, it)).unwrap();
            }
            let counted: usize = c.tier_counts().iter().map(|t| t.1).sum();
            assert_eq!(counted, 300);
            // The incremental tier counts agree with a recount.
            let tiers = &c.config().tiers;
            let mut recount = vec![0usize; tiers.len() + 1];
            for s in c.all_stats() {
                let t = tiers.current(s) as usize;
                recount[t.min(tiers.len())] += 1;
            }
            let counts: Vec<usize> = c.tier_counts().iter().map(|t| t.1).collect();
            assert_eq!(counts, recount, "{kind:?} {merge:?}");
        }
    }
}

#[test]
fn state_round_trip_continues_bit_identically() {
    for config in variants() {
        let kind = config.sampler;
        let mut straight = curriculum(&config, 400, 24, 21);
        let mut first = curriculum(&config, 400, 24, 21);
        let mut log = run(&mut straight, 0, 6);
        log.extend(run(&mut straight, 6, 8));
        let mut resumed_log = run(&mut first, 0, 6);
        let state = first.save();
        drop(first);
        // JSON …
        let json = serde_json::to_string(&state).unwrap();
        let back: CurriculumState = serde_json::from_str(&json).unwrap();
        assert!(back == state, "{kind:?}: JSON round trip");
        // … and the checkpoint encoding (bincode); damaged bytes are an error.
        let bytes = state.encode().unwrap();
        let back = CurriculumState::decode(&bytes).unwrap();
        assert!(back == state, "{kind:?}: encoded round trip");
        assert!(CurriculumState::decode(&bytes[..bytes.len() / 2]).is_err());
        let mut resumed = Curriculum::restore(back).unwrap();
        resumed_log.extend(run(&mut resumed, 6, 8));
        assert!(log == resumed_log, "{kind:?}: restored run diverged");
        assert!(resumed.save() == straight.save(), "{kind:?}");
    }
}

#[test]
fn restore_rejects_inconsistent_state() {
    let c = curriculum(&CurriculumConfig::with_sampler(SamplerKind::Rlcs), 10, 4, 1);
    let mut s = c.save();
    s.stats.pop();
    assert!(Curriculum::restore(s).is_err());
    let mut s = c.save();
    s.config.sampler = SamplerKind::Uniform;
    assert!(Curriculum::restore(s).is_err());
}

#[test]
fn raw_samplers_handle_empty_views_and_round_trip() {
    let config = CurriculumConfig::default();
    let tiers = TierConfig::default();
    for kind in SamplerKind::ALL {
        let mut s = sampler_by_name(kind, &config, 1, &[], &[]);
        assert_eq!(s.name(), kind.name());
        assert_eq!(SamplerKind::from_name(kind.name()), Some(kind));
        let view = PoolView {
            entries: &[],
            stats: &[],
            tiers: &tiers,
            domains: 0,
            iteration: 0,
            generation: 0,
        };
        assert!(s.select(10, &view).is_empty());
        s.observe(&[], &view);
        let state: SamplerState = s.save();
        assert_eq!(state.kind(), kind);
        let json = serde_json::to_string(&state).unwrap();
        let back: SamplerState = serde_json::from_str(&json).unwrap();
        assert!(back == state, "{kind:?}");
        // A pool of one, viewed directly.
        let entries = pool(1, 1);
        let stats = vec![SampleStats::default()];
        let view = PoolView {
            entries: &entries,
            stats: &stats,
            tiers: &tiers,
            domains: 1,
            iteration: 0,
            generation: 0,
        };
        let mut r = back.into_sampler();
        for _ in 0..3 {
            assert_eq!(r.select(4, &view), vec![0]);
        }
    }
    assert_eq!(SamplerKind::from_name("pq"), Some(SamplerKind::P1mp));
    assert_eq!(SamplerKind::from_name("nope"), None);
}

#[test]
fn configs_parse_by_name_and_reject_unknown_fields() {
    for kind in SamplerKind::ALL {
        let json = format!(r#"{{"sampler":"{}"}}"#, kind.name());
        let c: CurriculumConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(c.sampler, kind);
        c.validate().unwrap();
    }
    assert!(serde_json::from_str::<CurriculumConfig>(r#"{"plr":{"beta":1}}"#).is_err());
    let c: CurriculumConfig = serde_json::from_str(
        r#"{"sampler":"plr","plr":{"temperature":0.3},"tiers":{"names":["a","b"],"min_pass":[0.5,0.0],"merge":"offline_only"}}"#,
    )
    .unwrap();
    assert_eq!(c.plr.temperature, 0.3);
    assert!(c.validate().unwrap_err().contains("initial_weights"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any sampler, any pool, any outcomes: batches are `min(n, pool)` distinct pool
    /// members, and tier counts always add up to the pool.
    #[test]
    fn samplers_keep_their_contract(
        kind_ix in 0usize..variants().len(),
        n in 0usize..60,
        doms in 1u16..4,
        want in 0usize..40,
        seed in any::<u64>(),
        outcomes in proptest::collection::vec(0u32..=8, 1..20),
    ) {
        let config = variants().swap_remove(kind_ix);
        let mut c = Curriculum::new(
            config, domains(doms), pool(n, doms), 8, seed,
        ).unwrap();
        let ids: HashSet<u64> = c.entries().iter().map(|e| e.id).collect();
        for it in 0..5u32 {
            let sel = c.select_n(want);
            prop_assert_eq!(sel.samples.len(), want.min(n));
            let distinct: HashSet<_> = sel.samples.iter().collect();
            prop_assert_eq!(distinct.len(), sel.samples.len());
            prop_assert!(sel.samples.iter().all(|id| ids.contains(id)));
            let groups: Vec<_> = sel.samples.iter().enumerate()
                .map(|(k, &id)| GroupOutcome::new(id, 8, outcomes[k % outcomes.len()], 0))
                .collect();
            c.observe(it, &groups).unwrap();
            prop_assert_eq!(c.tier_counts().iter().map(|t| t.1).sum::<usize>(), n);
        }
    }

    /// Statistics survive both encodings exactly.
    #[test]
    fn sample_stats_round_trip(
        a in any::<u32>(), s in any::<u32>(), p in 0.0f32..=1.0, adv in proptest::option::of(0.0f32..2.0),
        len in proptest::option::of(0.0f32..1e5), seen in any::<u32>(), off in any::<u8>(),
    ) {
        let mut st = SampleStats { attempts: a, successes: s, ema_pass: p, last_seen: seen, offline_tier: off, ..Default::default() };
        st.record_signal(adv, len, 0.5);
        let json = serde_json::to_string(&st).unwrap();
        prop_assert_eq!(serde_json::from_str::<SampleStats>(&json).unwrap(), st);
        let bytes = bincode::serialize(&st).unwrap();
        prop_assert_eq!(bincode::deserialize::<SampleStats>(&bytes).unwrap(), st);
    }
}
