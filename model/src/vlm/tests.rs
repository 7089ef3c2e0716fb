use std::sync::Arc;

use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

use super::nn::{apply_rope, mrope_sections, rope2d_sections, rope_tables};
use super::*;
use crate::{GenerationParams, Policy, TrainGroup, Weights};

fn tiny() -> VlmConfig {
    VlmConfig {
        patch_size: 8,
        max_image_side: 64,
        vision_dim: 32,
        vision_layers: 1,
        vision_heads: 2,
        dim: 64,
        layers: 2,
        heads: 2,
        mlp_hidden: 128,
        max_seq_len: 512,
        ..VlmConfig::default()
    }
}

fn tiny_policy(seed: u64) -> TchPolicy {
    let config = TchConfig {
        model: tiny(),
        device: "cpu".into(),
        max_new_tokens: 32,
        thinking_budget: 0,
        train: TrainConfig {
            schedule: crate::pack::Schedule {
                lr: 3e-3,
                warmup_steps: 5,
                total_steps: 400,
                min_ratio: 0.1,
            },
            ..TrainConfig::default()
        },
        ..TchConfig::default()
    };
    TchPolicy::new(config, seed).unwrap()
}

fn image(w: u32, h: u32, seed: u64) -> PromptImage {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // 4 × 4 blocks of random colours.
    let colours: Vec<[u8; 3]> = (0..16)
        .map(|_| [rng.random(), rng.random(), rng.random()])
        .collect();
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let c = colours[((y * 4 / h) * 4 + x * 4 / w) as usize];
            rgb.extend_from_slice(&c);
        }
    }
    PromptImage {
        width: w,
        height: h,
        rgb: Arc::from(rgb),
    }
}

fn prompt(id: u64, text: &str, images: Vec<PromptImage>) -> Prompt {
    Prompt {
        sample_id: id,
        domain: "test".into(),
        text: text.into(),
        gold: String::new(),
        answer: String::new(),
        wrong_answers: Vec::new(),
        difficulty: 0.5,
        video: images.len() > 1,
        images,
    }
}

#[test]
fn any_image_size_and_aspect_ratio_gives_consistent_shapes() {
    let conv = VlmConfig {
        patch_stem: PatchStem::Conv,
        ..tiny()
    };
    for config in [tiny(), conv] {
        image_shapes_are_consistent(config);
    }
}

fn image_shapes_are_consistent(config: VlmConfig) {
    let m = Vlm::new(config, 1, Device::Cpu).unwrap();
    for (w, h) in [
        (16, 16),
        (17, 93),
        (96, 32),
        (1, 1),
        (64, 40),
        (200, 30),
        (33, 200),
    ] {
        let img = m.prepare_image(&image(w, h, 7)).unwrap();
        let unit = 16;
        assert!(img.height % unit == 0 && img.width % unit == 0, "{w}x{h}");
        assert!(img.height <= 64 && img.width <= 64 && img.height >= 16 && img.width >= 16);
        // The aspect ratio survives as well as whole merged tokens allow.
        if w >= 32 && h >= 32 && w <= 64 && h <= 64 {
            let before = w as f64 / h as f64;
            let after = img.width as f64 / img.height as f64;
            assert!(
                (before.ln() - after.ln()).abs() < 0.6,
                "{w}x{h} -> {}x{}",
                img.width,
                img.height
            );
        }
        let (gh, gw) = img.grid(8);
        let feats = m.encode_images(&[&img]);
        assert_eq!(feats[0].size(), vec![gh * gw, 64], "{w}x{h}");
        let l = m.layout(&prompt(1, "hi", vec![image(w, h, 7)])).unwrap();
        let n_img = l
            .ids
            .iter()
            .filter(|&&i| i == m.tokenizer.special(Special::Image))
            .count();
        assert_eq!(n_img as i64, gh * gw);
        let logits = m.sequence_logits(&l, &[]);
        assert_eq!(
            logits.size(),
            vec![l.ids.len() as i64, m.tokenizer.vocab_size() as i64]
        );
    }
    // Video: frames advance time, each frame's tokens share it.
    let frames = vec![image(32, 32, 1), image(32, 32, 2), image(32, 32, 3)];
    let l = m.layout(&prompt(1, "what moved?", frames)).unwrap();
    let video = m.tokenizer.special(Special::Video);
    let times: std::collections::BTreeSet<i64> = l
        .ids
        .iter()
        .zip(&l.positions)
        .filter(|(&i, _)| i == video)
        .map(|(_, p)| p[0])
        .collect();
    assert_eq!(times.len(), 3);
    // Text after the video starts beyond every position used.
    let max = l.positions.iter().flatten().copied().max().unwrap();
    assert_eq!(l.next_position, max + 1);
    // Bad pixel buffers are errors, not panics.
    let broken = PromptImage {
        width: 4,
        height: 4,
        rgb: Arc::from(vec![0u8; 5]),
    };
    assert!(m.layout(&prompt(1, "x", vec![broken])).is_err());
}

#[test]
fn each_patch_feature_comes_from_its_own_pixels_with_either_stem() {
    // A 64 × 48 image at patch 8: an 8 × 6 patch grid, 4 × 3 merged tokens. Change
    // the centre pixels of one patch: with the linear stem only that patch's
    // feature moves; with the convolutional one (receptive field 15 px) it moves
    // most, and patches two or more away do not move at all — so the features are
    // in 2 × 2 merge order, not scrambled.
    for stem in [PatchStem::Linear, PatchStem::Conv] {
        let m = Vlm::new(
            VlmConfig {
                patch_stem: stem,
                ..tiny()
            },
            3,
            Device::Cpu,
        )
        .unwrap();
        let base = Tensor::zeros([1, 3, 48, 64], (Kind::Float, Device::Cpu));
        let (pr, pc) = (3i64, 5i64);
        let bumped = base.copy();
        let _ = bumped
            .narrow(2, 8 * pr + 3, 2)
            .narrow(3, 8 * pc + 3, 2)
            .fill_(1.0);
        let delta = (m.stem.forward(&bumped, 8) - m.stem.forward(&base, 8))
            .abs()
            .sum_dim_intlist(&[2i64][..], false, Kind::Float)
            .squeeze_dim(0);
        let delta: Vec<f32> = Vec::<f32>::try_from(&delta).unwrap();
        assert_eq!(delta.len(), 48, "{stem:?}");
        // Merge order: merged token (r, c) of the 4-wide grid, then (dr, dc).
        let at = |i: usize| {
            let (t, k) = (i / 4, i % 4);
            ((t / 4 * 2 + k / 2) as i64, (t % 4 * 2 + k % 2) as i64)
        };
        let top = (0..48)
            .max_by(|&a, &b| delta[a].total_cmp(&delta[b]))
            .unwrap();
        assert_eq!(at(top), (pr, pc), "{stem:?}: {delta:?}");
        for (i, d) in delta.iter().enumerate() {
            let (r, c) = at(i);
            let far = (r - pr).abs().max((c - pc).abs());
            if far >= 2 || (stem == PatchStem::Linear && far >= 1) {
                assert_eq!(*d, 0.0, "{stem:?}: patch {r},{c} moved");
            }
        }
    }
}

#[test]
fn a_conv_stem_needs_a_power_of_two_patch() {
    let err = Vlm::new(
        VlmConfig {
            patch_stem: PatchStem::Conv,
            patch_size: 6,
            max_image_side: 96,
            ..tiny()
        },
        1,
        Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("model.patch_size") && err.contains("patch_stem"),
        "{err}"
    );
    for p in [2, 4, 8, 16] {
        let c = VlmConfig {
            patch_stem: PatchStem::Conv,
            patch_size: p,
            max_image_side: 64,
            ..tiny()
        };
        assert!(Vlm::new(c, 1, Device::Cpu).is_ok(), "patch {p}");
    }
}

#[test]
fn rope_scores_depend_only_on_relative_position() {
    let hd = 32;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let q: Vec<f32> = (0..hd).map(|_| rng.random::<f32>() - 0.5).collect();
    let k: Vec<f32> = (0..hd).map(|_| rng.random::<f32>() - 0.5).collect();
    let q = Tensor::from_slice(&q).view([1, 1, 1, hd]);
    let k = Tensor::from_slice(&k).view([1, 1, 1, hd]);
    let score = |sections: [i64; 3], a: [i64; 3], b: [i64; 3]| -> f64 {
        let pa = Tensor::from_slice(&a).view([1, 1, 3]);
        let pb = Tensor::from_slice(&b).view([1, 1, 3]);
        let (ca, sa) = rope_tables(&pa, sections, hd, 10_000.0);
        let (cb, sb) = rope_tables(&pb, sections, hd, 10_000.0);
        let qa = apply_rope(&q, &ca.unsqueeze(1), &sa.unsqueeze(1));
        let kb = apply_rope(&k, &cb.unsqueeze(1), &sb.unsqueeze(1));
        (qa * kb).sum(Kind::Double).double_value(&[])
    };
    for sections in [mrope_sections(hd), rope2d_sections(hd)] {
        let base = score(sections, [3, 5, 9], [1, 2, 4]);
        for shift in [[1, 1, 1], [7, -2, 30], [100, 100, 0]] {
            let a = [3 + shift[0], 5 + shift[1], 9 + shift[2]];
            let b = [1 + shift[0], 2 + shift[1], 4 + shift[2]];
            let s = score(sections, a, b);
            assert!(
                (s - base).abs() < 1e-4,
                "{sections:?} {shift:?}: {s} vs {base}"
            );
        }
        // And a different relative offset changes the score.
        let moved = score(sections, [3, 5, 9], [1, 2, 5]);
        assert!(
            (moved - base).abs() > 1e-6,
            "{sections:?}: {moved} vs {base}"
        );
    }
    // Rotation keeps norms.
    let p = Tensor::from_slice(&[4i64, 8, 15]).view([1, 1, 3]);
    let (c, s) = rope_tables(&p, mrope_sections(hd), hd, 10_000.0);
    let r = apply_rope(&q, &c.unsqueeze(1), &s.unsqueeze(1));
    let n0 = q.square().sum(Kind::Double).double_value(&[]);
    let n1 = r.square().sum(Kind::Double).double_value(&[]);
    assert!((n0 - n1).abs() < 1e-5);
}

fn examples() -> Vec<LmExample> {
    vec![
        LmExample {
            prompt: prompt(1, "Count the squares.", vec![image(32, 48, 1)]),
            response: "<think>two rows</think><answer><|begin_of_box|>4<|end_of_box|></answer>"
                .into(),
            train_prompt: false,
            weight: 0.5,
        },
        LmExample {
            prompt: prompt(2, "Read the text.", vec![image(64, 16, 2)]),
            response: "<answer>OK</answer>".into(),
            train_prompt: true,
            weight: 1.0,
        },
        LmExample {
            prompt: prompt(3, "No image here, just text.", vec![]),
            response: "fine".into(),
            train_prompt: false,
            weight: 2.0,
        },
        LmExample {
            prompt: prompt(4, "A clip.", vec![image(32, 32, 3), image(32, 32, 4)]),
            response: "<answer>moved</answer>".into(),
            train_prompt: false,
            weight: 1.0,
        },
    ]
}

#[test]
fn a_packed_batch_loss_is_the_sum_of_separate_losses() {
    let m = Vlm::new(tiny(), 3, Device::Cpu).unwrap();
    let ex = examples();
    let packed = m.lm_loss(&ex, 512).unwrap();
    let seqs = m.lm_sequences(&ex).unwrap();
    let rows = super::train::pack_rows(&seqs, 512).unwrap();
    // Everything fits in one row: the test really packs.
    assert_eq!(rows.rows.len(), 1);
    let separate: f64 = ex
        .iter()
        .map(|e| {
            m.lm_loss(std::slice::from_ref(e), 512)
                .unwrap()
                .double_value(&[])
        })
        .sum();
    let packed = packed.double_value(&[]);
    assert!(
        (packed - separate).abs() < 1e-5,
        "packed {packed} vs separate {separate}"
    );
    // The gradients agree too.
    let grad_of = |loss: Tensor| -> Vec<f64> {
        AdamW::zero_grad(&m);
        loss.backward();
        m.named_parameters()
            .iter()
            .map(|(_, p)| p.grad().square().sum(Kind::Double).double_value(&[]))
            .collect()
    };
    let g_packed = grad_of(m.lm_loss(&ex, 512).unwrap());
    AdamW::zero_grad(&m);
    for e in &ex {
        m.lm_loss(std::slice::from_ref(e), 512).unwrap().backward();
    }
    let g_sep: Vec<f64> = m
        .named_parameters()
        .iter()
        .map(|(_, p)| p.grad().square().sum(Kind::Double).double_value(&[]))
        .collect();
    for (a, b) in g_packed.iter().zip(&g_sep) {
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1e-6), "{a} vs {b}");
    }
    // A too-long sequence is a clear error.
    let err = m.lm_loss(&ex, 20).unwrap_err().to_string();
    assert!(err.contains("max_seq_len"), "{err}");
}

#[test]
fn grpo_gradients_push_good_responses_up_and_bad_ones_down() {
    let p = tiny_policy(9);
    let pr = prompt(1, "2+2?", vec![image(32, 32, 5)]);
    let good = p.model.tokenizer.encode("<answer>4</answer>");
    let bad = p.model.tokenizer.encode("<answer>5</answer>");
    let old_good = p.logprobs(&pr, &good).unwrap();
    let old_bad = p.logprobs(&pr, &bad).unwrap();
    let seq = |tokens: &Vec<u32>, old: &Vec<f32>, advantage: f32| GrpoSequence {
        prompt: pr.clone(),
        tokens: tokens.clone(),
        old_logprobs: old.clone(),
        loss_mask: vec![true; tokens.len()],
        advantage,
    };
    let adv = crate::grpo_advantages(&[1.0, 0.0]);
    let batch = vec![seq(&good, &old_good, adv[0]), seq(&bad, &old_bad, adv[1])];
    let policy = p;
    // Plain SGD direction: the loss gradient, one small step by hand.
    let loss = policy
        .model
        .grpo_loss(&batch, &GrpoConfig::default(), 1.0, 512)
        .unwrap();
    // At ratio 1 the loss is −mean advantage = 0 for a normalised group.
    assert!(loss.double_value(&[]).abs() < 1e-6);
    AdamW::zero_grad(&policy.model);
    loss.backward();
    tch::no_grad(|| {
        for (_, mut w) in policy.model.named_parameters() {
            let g = w.grad();
            if g.defined() {
                let _ = w.g_sub_(&(g * 0.5));
            }
        }
    });
    let new_good: f32 = policy.logprobs(&pr, &good).unwrap().iter().sum();
    let new_bad: f32 = policy.logprobs(&pr, &bad).unwrap().iter().sum();
    assert!(
        new_good > old_good.iter().sum::<f32>(),
        "good response not pushed up"
    );
    assert!(
        new_bad < old_bad.iter().sum::<f32>(),
        "bad response not pushed down"
    );

    // Clip-higher: a token whose ratio is already above 1 + ε_high gets no gradient
    // from a positive advantage; below 1 − ε_low none from a negative one.
    let policy = tiny_policy(9);
    let lp = policy.logprobs(&pr, &good).unwrap();
    let zero_grad_with = |old_shift: f32, advantage: f32| -> bool {
        let old: Vec<f32> = lp.iter().map(|l| l - old_shift).collect();
        let b = vec![seq(&good, &old, advantage)];
        let loss = policy
            .model
            .grpo_loss(&b, &GrpoConfig::default(), 1.0, 512)
            .unwrap();
        AdamW::zero_grad(&policy.model);
        loss.backward();
        policy
            .model
            .named_parameters()
            .iter()
            .all(|(_, p)| !p.grad().defined() || p.grad().abs().max().double_value(&[]) == 0.0)
    };
    // ratio = e^0.3 ≈ 1.35 > 1.28: clipped for A > 0, live for A < 0.
    assert!(zero_grad_with(0.3, 1.0));
    assert!(!zero_grad_with(0.3, -1.0));
    // ratio = e^0.25 ≈ 1.28 − just inside 1 + 0.28: still live for A > 0 (clip-higher
    // leaves room that symmetric 0.2 clipping would not).
    assert!(!zero_grad_with(0.24, 1.0));
    // ratio = e^−0.3 ≈ 0.74 < 0.8: clipped for A < 0, live for A > 0.
    assert!(zero_grad_with(-0.3, -1.0));
    assert!(!zero_grad_with(-0.3, 1.0));
}

#[test]
fn seeded_generation_is_deterministic_and_the_cache_changes_nothing() {
    let policy = tiny_policy(11);
    let m = &policy.model;
    let pr = prompt(1, "Describe.", vec![image(48, 32, 8)]);
    let o = GenerateOptions {
        group_size: 4,
        seed: 42,
        max_new_tokens: 24,
        thinking_budget: None,
        ..GenerateOptions::default()
    };
    let a = m.generate(&pr, &o).unwrap();
    let b = m.generate(&pr, &o).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 4);
    // Different responses in a group (an untrained model samples broadly).
    assert!(a.iter().any(|g| g.token_ids != a[0].token_ids));
    let c = m.generate(&pr, &GenerateOptions { seed: 43, ..o }).unwrap();
    assert_ne!(a, c);
    // Response i does not depend on the group size (log-probs agree to rounding:
    // a batch of one takes other matmul kernels).
    let one = m
        .generate(&pr, &GenerateOptions { group_size: 1, ..o })
        .unwrap();
    assert_eq!(one[0].token_ids, a[0].token_ids);
    for (p, q) in one[0].logprobs.iter().zip(&a[0].logprobs) {
        assert!((p - q).abs() < 1e-4);
    }
    // Without the cache the same tokens come out, with the same log-probs.
    let nc = m
        .generate(
            &pr,
            &GenerateOptions {
                use_cache: false,
                ..o
            },
        )
        .unwrap();
    for (x, y) in a.iter().zip(&nc) {
        assert_eq!(x.token_ids, y.token_ids);
        for (p, q) in x.logprobs.iter().zip(&y.logprobs) {
            assert!((p - q).abs() < 1e-4);
        }
    }
    // Log-probs are those of a full forward pass.
    let full = policy.logprobs(&pr, &a[1].token_ids).unwrap();
    for (p, q) in full.iter().zip(&a[1].logprobs) {
        assert!((p - q).abs() < 1e-4, "{p} vs {q}");
    }
    // Bad sampling settings are errors.
    assert!(policy
        .model
        .generate(&pr, &GenerateOptions { top_p: 0.0, ..o })
        .is_err());
}

#[test]
fn the_fused_cpu_step_gives_the_tokens_and_log_probs_of_libtorch_operators() {
    // The default sizes and odd ones (head_dim 20, widths not multiples of the SIMD
    // lanes, a group of 7: the 4-row blocks and their remainder).
    let odd = VlmConfig {
        dim: 60,
        heads: 3,
        mlp_hidden: 100,
        ..tiny()
    };
    for (config, seed) in [(tiny(), 21), (odd, 22)] {
        let m = Vlm::new(config, seed, Device::Cpu).unwrap();
        let pr = prompt(2, "Count the shapes.", vec![image(40, 56, 3)]);
        let o = GenerateOptions {
            group_size: 7,
            seed: 9,
            max_new_tokens: 90,
            thinking_budget: Some(40),
            ..GenerateOptions::default()
        };
        let fused = m.generate(&pr, &o).unwrap();
        let ops = m
            .generate(
                &pr,
                &GenerateOptions {
                    fused_cpu: false,
                    ..o
                },
            )
            .unwrap();
        assert_eq!(fused.len(), 7);
        // Rows left the batch at different steps (end of text), and force answering
        // fired in others: both paths handle a shrinking batch.
        let lengths: Vec<usize> = fused.iter().map(|g| g.token_ids.len()).collect();
        assert!(lengths.iter().any(|&l| l < 90), "{lengths:?}");
        assert!(lengths.contains(&90), "{lengths:?}");
        assert!(fused.iter().any(|g| g.force_answered));
        for (x, y) in fused.iter().zip(&ops) {
            assert_eq!(x.token_ids, y.token_ids);
            assert_eq!(x.loss_mask, y.loss_mask);
            assert_eq!(x.force_answered, y.force_answered);
            assert_eq!(x.text, y.text);
            for (p, q) in x.logprobs.iter().zip(&y.logprobs) {
                assert!((p - q).abs() < 1e-4, "{p} vs {q}");
            }
        }
        // Greedy decoding agrees too.
        let greedy = GenerateOptions {
            temperature: 0.0,
            group_size: 2,
            ..o
        };
        let a = m.generate(&pr, &greedy).unwrap();
        let b = m
            .generate(
                &pr,
                &GenerateOptions {
                    fused_cpu: false,
                    ..greedy
                },
            )
            .unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.token_ids, y.token_ids);
        }
    }
}

#[test]
fn a_fused_step_with_bad_inputs_is_an_error_not_a_panic() {
    use super::fused::{FusedDecoder, FusedState, StepInput};
    let m = Vlm::new(tiny(), 3, Device::Cpu).unwrap();
    let w = FusedDecoder::new(&m).unwrap();
    let mut cache = m.new_cache(1, 4);
    for c in cache.iter_mut() {
        c.len = 4;
    }
    let mut state = FusedState::new(&w, &cache, 2, 3).unwrap();
    let hd = (tiny().dim / tiny().heads) as usize;
    let table = vec![1.0f32; hd];
    let ok = StepInput {
        rows: &[0, 1],
        tokens: &[5, 6],
        step: 0,
        cos: &table,
        sin: &table,
    };
    assert_eq!(state.step(&w, ok).unwrap().len(), 2 * w.vocab());
    let vocab = w.vocab() as u32;
    for bad in [
        StepInput {
            rows: &[0, 2],
            ..ok
        },
        StepInput { tokens: &[5], ..ok },
        StepInput {
            tokens: &[5, vocab],
            ..ok
        },
        StepInput { step: 3, ..ok },
        StepInput {
            cos: &table[1..],
            ..ok
        },
    ] {
        assert!(state.step(&w, bad).is_err());
    }
}

#[test]
fn force_answering_triggers_at_the_budget_and_is_masked() {
    let m = Vlm::new(tiny(), 12, Device::Cpu).unwrap();
    let t = &m.tokenizer;
    let (end_think, answer) = (t.special(Special::EndThink), t.special(Special::Answer));
    let pr = prompt(1, "Think.", vec![]);
    let o = GenerateOptions {
        group_size: 6,
        seed: 1,
        max_new_tokens: 30,
        thinking_budget: Some(10),
        temperature: 1.0,
        ..GenerateOptions::default()
    };
    let out = m.generate(&pr, &o).unwrap();
    let mut forced = 0;
    for g in &out {
        let close = g.token_ids.iter().position(|&x| x == end_think);
        if g.force_answered {
            forced += 1;
            // Exactly at the budget: 10 sampled tokens, then </think><answer>.
            assert_eq!(close, Some(10), "{:?}", g.token_ids);
            assert_eq!(g.token_ids[11], answer);
            assert_eq!(&g.loss_mask[10..12], &[false, false]);
            assert!(g.loss_mask[..10].iter().all(|&b| b));
            assert!(g.text.contains("</think><answer>"));
        } else {
            // Closed (or ended) on its own before the budget.
            let ended = g
                .token_ids
                .iter()
                .position(|&x| x == t.special(Special::EndOfText));
            assert!(
                close.is_some_and(|c| c < 10) || ended.is_some_and(|e| e < 10),
                "{:?}",
                g.token_ids
            );
            assert!(g.loss_mask.iter().all(|&b| b));
        }
        assert!(g.token_ids.len() <= 30);
    }
    assert!(
        forced >= 4,
        "an untrained model should rarely close thinking in 10 tokens"
    );
    // The inserted tokens take no part in the GRPO loss.
    let p = tiny_policy(12);
    let g = p.model.generate(&pr, &o).unwrap();
    let f = g.iter().find(|g| g.force_answered).unwrap();
    let seqs = p
        .model
        .grpo_sequences(
            &[GrpoSequence {
                prompt: pr.clone(),
                tokens: f.token_ids.clone(),
                old_logprobs: f.logprobs.clone(),
                loss_mask: f.loss_mask.clone(),
                advantage: 1.0,
            }],
            Aggregation::PerSample,
        )
        .unwrap();
    let offset = seqs[0].layout.ids.len();
    assert_eq!(seqs[0].weight[offset + 10], 0.0);
    assert_eq!(seqs[0].weight[offset + 11], 0.0);
    let trained = f.loss_mask.iter().filter(|&&b| b).count() as f32;
    assert!((seqs[0].weight[offset] - 1.0 / trained).abs() < 1e-7);
}

#[test]
fn weights_and_state_round_trip_exactly() {
    let mut a = tiny_policy(21);
    let b = tiny_policy(22);
    let pr = prompt(1, "x", vec![image(32, 32, 1)]);
    let ex = vec![LmExample {
        prompt: pr.clone(),
        response: "<answer>y</answer>".into(),
        train_prompt: false,
        weight: 1.0,
    }];
    a.train_lm(&ex).unwrap();
    let w = a.export_weights().unwrap();
    let mut b = b;
    b.import_weights(&w).unwrap();
    assert_eq!(b.version(), 1);
    for ((n1, t1), (n2, t2)) in a
        .model
        .named_parameters()
        .iter()
        .zip(b.model.named_parameters())
    {
        assert_eq!(n1, &n2);
        assert!(t1.equal(&t2), "{n1}");
    }
    // Saved state (with the optimiser) continues bit-identically.
    let state = a.save_state().unwrap();
    let mut c = tiny_policy(99);
    c.load_state(&state).unwrap();
    let sa = a.train_lm(&ex).unwrap();
    let sc = c.train_lm(&ex).unwrap();
    assert_eq!(sa.loss.to_bits(), sc.loss.to_bits());
    for ((_, t1), (_, t2)) in a
        .model
        .named_parameters()
        .iter()
        .zip(c.model.named_parameters())
    {
        assert!(t1.equal(&t2));
    }
    // Weights alone do not carry the optimiser: a policy given only the weights
    // takes a different next step than one given the whole state.
    let mut d = tiny_policy(99);
    d.import_weights(&a.export_weights().unwrap()).unwrap();
    let mut f = tiny_policy(99);
    f.load_state(&a.save_state().unwrap()).unwrap();
    d.train_lm(&ex).unwrap();
    f.train_lm(&ex).unwrap();
    assert!(d
        .model
        .named_parameters()
        .iter()
        .zip(f.model.named_parameters())
        .any(|((_, x), (_, y))| !x.equal(&y)));
    // Checkpoint directory round trip.
    let dir = tempfile_dir();
    a.save_checkpoint(&dir).unwrap();
    let e = TchPolicy::load_checkpoint(&dir, Some("cpu")).unwrap();
    assert_eq!(e.version(), a.version());
    for ((_, t1), (_, t2)) in a
        .model
        .named_parameters()
        .iter()
        .zip(e.model.named_parameters())
    {
        assert!(t1.equal(&t2));
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Garbage and foreign weights are errors that change nothing.
    let before = d.export_weights().unwrap();
    assert!(d
        .import_weights(&Weights {
            version: 3,
            bytes: Arc::new(vec![1, 2, 3])
        })
        .is_err());
    let other = TchPolicy::new(
        TchConfig {
            model: VlmConfig { dim: 32, ..tiny() },
            device: "cpu".into(),
            ..TchConfig::default()
        },
        1,
    )
    .unwrap();
    let err = d
        .import_weights(&other.export_weights().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("another model configuration"), "{err}");
    assert_eq!(d.export_weights().unwrap().bytes, before.bytes);
}

fn tempfile_dir() -> std::path::PathBuf {
    let mut p = std::env::temp_dir();
    p.push(format!(
        "rlcs-vlm-test-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    p
}

#[test]
fn fresh_models_depend_only_on_the_seed() {
    let a = Vlm::new(tiny(), 5, Device::Cpu).unwrap();
    let b = Vlm::new(tiny(), 5, Device::Cpu).unwrap();
    let c = Vlm::new(tiny(), 6, Device::Cpu).unwrap();
    let pa = a.named_parameters();
    assert!(pa
        .iter()
        .zip(b.named_parameters())
        .all(|((_, x), (_, y))| x.equal(&y)));
    assert!(pa
        .iter()
        .zip(c.named_parameters())
        .any(|((_, x), (_, y))| !x.equal(&y)));
    // The default sizes are "a few million parameters".
    let d = Vlm::new(VlmConfig::default(), 1, Device::Cpu).unwrap();
    let n = d.parameter_count();
    assert!((2_000_000..10_000_000).contains(&n), "{n}");
    // Bad sizes name the field.
    let err = Vlm::new(VlmConfig { heads: 3, ..tiny() }, 1, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.dim"), "{err}");
}

#[test]
fn the_model_memorises_32_image_question_answer_triples() {
    let mut p = tiny_policy(31);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(77);
    let letters = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let triples: Vec<(Prompt, String)> = (0..32)
        .map(|i| {
            let answer: String = (0..3)
                .map(|_| letters[rng.random_range(0..letters.len())] as char)
                .collect();
            (
                prompt(i, "What is the code?", vec![image(32, 32, 1000 + i)]),
                answer,
            )
        })
        .collect();
    let examples: Vec<LmExample> = triples
        .iter()
        .map(|(pr, a)| LmExample {
            prompt: pr.clone(),
            response: format!("<answer><|begin_of_box|>{a}<|end_of_box|></answer>"),
            train_prompt: false,
            weight: 1.0 / 32.0,
        })
        .collect();
    let greedy = GenerateOptions {
        group_size: 1,
        temperature: 0.0,
        max_new_tokens: 16,
        thinking_budget: None,
        ..GenerateOptions::default()
    };
    let correct = |p: &TchPolicy| {
        triples
            .iter()
            .filter(|(pr, a)| {
                let g = p.model.generate(pr, &greedy).unwrap();
                g[0].text == format!("<answer><|begin_of_box|>{a}<|end_of_box|></answer>")
            })
            .count()
    };
    assert!(correct(&p) == 0);
    let mut steps = 0;
    let mut last = 0;
    while steps < 200 {
        let s = p.train_lm(&examples).unwrap();
        steps += 1;
        if steps % 25 == 0 {
            last = correct(&p);
            if last == 32 {
                break;
            }
        }
        assert!(s.loss.is_finite());
    }
    eprintln!("memorised {last} of 32 in {steps} steps");
    assert_eq!(last, 32, "memorised {last} of 32 in {steps} steps");
}

#[test]
fn the_policy_trait_generates_and_takes_grpo_steps() {
    let mut p = tiny_policy(41);
    let pr = prompt(1, "Answer.", vec![image(32, 32, 3)]);
    let params = GenerationParams {
        group_size: 4,
        temperature: 1.0,
        top_p: 1.0,
        seed: 5,
    };
    let rollouts = p.generate(&pr, &params).unwrap();
    assert_eq!(rollouts.len(), 4);
    assert!(rollouts
        .iter()
        .all(|r| r.policy_version == 0 && r.token_ids.len() == r.logprobs.len()));
    let group = TrainGroup {
        prompt: pr.clone(),
        rewards: vec![1.0, 0.0, 0.0, 1.0],
        rollouts: rollouts.clone(),
    };
    let s = p.train_step(std::slice::from_ref(&group)).unwrap();
    assert_eq!(
        (s.policy_version, s.groups, s.groups_with_signal),
        (1, 1, 1)
    );
    assert_eq!(p.version(), 1);
    let ragged = TrainGroup {
        rewards: vec![1.0],
        ..group
    };
    assert!(matches!(
        p.train_step(&[ragged]),
        Err(ModelError::RaggedGroup { .. })
    ));
    // Rollouts without tokens (another policy's text) are scored on-policy.
    let mut r = rollouts[0].clone();
    r.token_ids.clear();
    r.logprobs.clear();
    r.loss_mask.clear();
    r.response = "<answer>x</answer>".into();
    let g = TrainGroup {
        prompt: pr,
        rewards: vec![1.0, 0.0],
        rollouts: vec![r.clone(), r],
    };
    p.train_step(&[g]).unwrap();
}

#[test]
fn mini_batches_split_whole_groups_in_order_into_near_equal_chunks() {
    use crate::vlm::policy::mini_batches;
    let groups = |n: usize| (0..n).map(|i| vec![i, 100 + i]).collect::<Vec<_>>();
    let sizes = |n: usize, k: usize| {
        mini_batches(groups(n), k)
            .iter()
            .map(|c| c.len() / 2)
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(12, 4), vec![3, 3, 3, 3]);
    assert_eq!(sizes(5, 3), vec![2, 2, 1]);
    assert_eq!(sizes(7, 1), vec![7]);
    assert_eq!(sizes(3, 8), vec![1, 1, 1]);
    assert_eq!(sizes(0, 4), vec![0]);
    // Whole groups, in order.
    let flat: Vec<usize> = mini_batches(groups(5), 3).concat();
    assert_eq!(flat, vec![0, 100, 1, 101, 2, 102, 3, 103, 4, 104]);
    assert_eq!(mini_batches(groups(5), 3)[2], vec![4, 104]);
}

#[test]
fn grpo_mini_batches_take_one_optimiser_step_per_mini_batch() {
    let with = |k: usize| {
        let mut p = tiny_policy(43);
        p.config.train.grpo.mini_batches = k;
        p
    };
    let mut sampler = with(1);
    let params = GenerationParams {
        group_size: 4,
        temperature: 1.0,
        top_p: 1.0,
        seed: 9,
    };
    let groups: Vec<TrainGroup> = (0..3)
        .map(|i| {
            let pr = prompt(10 + i, "Answer.", vec![image(32, 32, 20 + i)]);
            TrainGroup {
                rollouts: sampler.generate(&pr, &params).unwrap(),
                prompt: pr,
                rewards: vec![1.0, 0.0, 0.0, 1.0],
            }
        })
        .collect();
    // Three mini-batches in one iteration = three one-group steps in a row.
    let mut split = with(3);
    let s = split.train_step(&groups).unwrap();
    assert_eq!(
        (s.policy_version, s.groups, s.groups_with_signal),
        (3, 3, 3)
    );
    let mut stepwise = with(1);
    for g in &groups {
        stepwise.train_step(std::slice::from_ref(g)).unwrap();
    }
    assert_eq!(stepwise.version(), 3);
    // Parameters compared tensor by tensor (the weight files also carry each
    // policy's config, which differs in `mini_batches`).
    let same = |a: &TchPolicy, b: &TchPolicy| {
        a.model
            .named_parameters()
            .iter()
            .zip(b.model.named_parameters())
            .all(|((na, ta), (nb, tb))| *na == nb && ta.equal(&tb))
    };
    assert!(same(&split, &stepwise));
    // One step over all three differs.
    let mut whole = with(1);
    whole.train_step(&groups).unwrap();
    assert_eq!(whole.version(), 1);
    assert!(!same(&whole, &split));
    // A ragged group anywhere fails the iteration before any step is taken.
    let mut bad = groups.clone();
    bad[2].rewards.pop();
    let mut p = with(3);
    assert!(matches!(
        p.train_step(&bad),
        Err(ModelError::RaggedGroup { .. })
    ));
    assert_eq!(p.version(), 0);
}
