//! Conformance suite run against every built-in domain: determinism, stable ids,
//! image bounds, templates that score 1 with the domain's own verifier and wrong
//! answers that score less, pools, and no panic on odd difficulties.

use std::collections::HashSet;

use rlcs_domains::{build_pool, content_id, domain_by_name, PoolSpec, BUILTIN_DOMAINS};
use rlcs_rewards::Registry;

const DIFFICULTIES: [f32; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];

#[test]
fn every_domain_is_registered_under_its_own_name_with_a_known_verifier() {
    let reg = Registry::builtin();
    for name in BUILTIN_DOMAINS {
        let d = domain_by_name(name).unwrap();
        assert_eq!(d.name(), *name);
        assert!(reg.get(d.verifier()).is_ok(), "{name}: {}", d.verifier());
    }
    for name in [
        "stem",
        "counting",
        "ocr",
        "chart",
        "grounding",
        "gui",
        "video",
    ] {
        assert!(BUILTIN_DOMAINS.contains(&name), "{name} is not registered");
    }
}

/// Images per sample: none for text arithmetic, 2–8 frames for video, else one.
fn frames(name: &str) -> std::ops::RangeInclusive<usize> {
    match name {
        "arithmetic" => 0..=0,
        "video" => 2..=8,
        _ => 1..=1,
    }
}

#[test]
fn samples_are_deterministic_with_content_ids() {
    for name in BUILTIN_DOMAINS {
        let d = domain_by_name(name).unwrap();
        for diff in DIFFICULTIES {
            for seed in [7, 11] {
                let a = d.generate(seed, diff);
                assert_eq!(a, d.generate(seed, diff), "{name} seed {seed}");
                assert_eq!(a.id, content_id(&a.domain, &a.prompt, &a.images), "{name}");
                assert_eq!(a.domain, *name);
                assert_eq!(a.gold, a.answer.gold(), "{name}");
                assert!(!a.prompt.trim().is_empty(), "{name}");
            }
        }
        let ids: HashSet<_> = (0..200u64).map(|s| d.generate(s, 0.5).id).collect();
        assert!(ids.len() >= 195, "{name}: {} distinct of 200", ids.len());
        // Odd difficulties are clamped (non-finite reads as 0), never a panic.
        assert_eq!(d.generate(3, f32::NAN), d.generate(3, 0.0), "{name}");
        assert_eq!(
            d.generate(3, 7.0).images,
            d.generate(3, 1.0).images,
            "{name}"
        );
        assert_eq!(
            d.generate(3, -1.0).images,
            d.generate(3, 0.0).images,
            "{name}"
        );
        for x in [f32::INFINITY, f32::NEG_INFINITY, 1e-30, 0.999_999] {
            for seed in [0, 1, u64::MAX] {
                let s = d.generate(seed, x);
                assert!((0.0..=1.0).contains(&s.difficulty), "{name}: {x}");
                assert!(frames(name).contains(&s.images.len()), "{name}: {x}");
            }
        }
    }
}

#[test]
fn images_stay_within_bounds_and_vary_in_shape() {
    for name in BUILTIN_DOMAINS {
        let d = domain_by_name(name).unwrap();
        let mut shapes = HashSet::new();
        for diff in [0.0, 0.5, 1.0] {
            for seed in 0..200u64 {
                let s = d.generate(seed, diff);
                assert!(
                    frames(name).contains(&s.images.len()),
                    "{name}: {} images",
                    s.images.len()
                );
                let Some(first) = s.images.first() else {
                    continue;
                };
                for img in &s.images {
                    assert!(
                        (32..=96).contains(&img.width) && (32..=96).contains(&img.height),
                        "{name}: {}x{}",
                        img.width,
                        img.height
                    );
                    assert_eq!(img.rgb.len(), (img.width * img.height * 3) as usize);
                    // Frames of one sample share their size.
                    assert_eq!((img.width, img.height), (first.width, first.height));
                }
                shapes.insert((first.width, first.height));
            }
        }
        if *name != "arithmetic" {
            assert!(
                shapes.iter().any(|(w, h)| w != h),
                "{name}: only square images"
            );
        }
    }
}

#[test]
fn templates_score_one_and_wrong_answers_score_less() {
    let reg = Registry::builtin();
    for name in BUILTIN_DOMAINS {
        let d = domain_by_name(name).unwrap();
        let v = reg.get(d.verifier()).unwrap();
        for seed in 0..200u64 {
            let s = d.generate(seed, (seed % 21) as f32 / 20.0);
            let verdict = v.verify(&s.template, &s.gold);
            assert_eq!(
                verdict.reward, 1.0,
                "{name} seed {seed}: {} vs {}: {:?}",
                s.template, s.gold, verdict.reason
            );
            let right = format!("<|begin_of_box|>{}<|end_of_box|>", s.answer.response());
            assert!(s.template.contains(&right), "{name}: {}", s.template);
            for k in 0..5 {
                let wrong = d.perturb(&s, k);
                let response = s
                    .template
                    .replace(&right, &format!("<|begin_of_box|>{wrong}<|end_of_box|>"));
                let r = v.verify(&response, &s.gold).reward;
                assert!(r < 1.0, "{name} seed {seed}: `{wrong}` scored {r}");
            }
        }
    }
}

#[test]
fn pools_build_for_every_domain_and_odd_difficulties_do_not_panic() {
    for name in BUILTIN_DOMAINS {
        let d = domain_by_name(name).unwrap();
        let spec = PoolSpec {
            train: 60,
            eval: 20,
            difficulty_min: 0.0,
            difficulty_max: 1.0,
        };
        let a = build_pool(d.as_ref(), &spec, 5).unwrap();
        let b = build_pool(d.as_ref(), &spec, 5).unwrap();
        assert_eq!(a.train, b.train, "{name}");
        let ids: HashSet<_> = a.train.iter().chain(&a.eval).map(|s| s.id).collect();
        assert_eq!(ids.len(), 80, "{name}");
    }
}
