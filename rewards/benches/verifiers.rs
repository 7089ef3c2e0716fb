//! Criterion benches: extraction and every built-in verifier on typical answers,
//! plus the slowest adversarial inputs. `cargo bench -p rlcs-rewards`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rlcs_rewards::{extract, ExtractMode, Registry};

fn glm(answer: &str) -> String {
    format!("<think>Let me work it out step by step.</think><answer>The answer is <|begin_of_box|>{answer}<|end_of_box|>.</answer>")
}

/// (verifier, gold, answer) for typical right and wrong answers.
const CASES: &[(&str, &str, &str)] = &[
    ("math", "42", "42"),
    ("math", "\\frac{3}{4}", "0.75"),
    ("math", "2\\sqrt{2}", "\\sqrt{8}"),
    ("math", "x^2+2x+1", "(x+1)^2"),
    ("math", "(2,\\infty)", "x>2"),
    ("math", "\\{1,2,3\\}", "\\{3,2,1\\}"),
    ("physics", "5 m", "500 cm"),
    ("chart", "123.4", "124"),
    (
        "ocr",
        "The quick brown fox jumps over the lazy dog",
        "The quick brown fox jumps over the lazy dog",
    ),
    ("counting", "7", "7"),
    ("choice", "B", "(B) the second option"),
    (
        "grounding",
        "[[10,20,300,400],[500,500,700,650]]",
        "[[12,22,298,405],[505,498,690,640]]",
    ),
    (
        "gui",
        r#"{"action":"click","box":[100,100,200,200]}"#,
        r#"{"action":"click","point":[150,150]}"#,
    ),
];

fn bench_extract(c: &mut Criterion) {
    let response = glm("\\frac{1}{2}");
    let mut g = c.benchmark_group("extract");
    for mode in ExtractMode::ALL {
        g.bench_function(mode.name(), |b| {
            b.iter(|| extract(black_box(&response), mode))
        });
    }
    g.finish();
}

fn bench_verifiers(c: &mut Criterion) {
    let registry = Registry::builtin();
    let mut g = c.benchmark_group("verify");
    for (name, gold, answer) in CASES {
        let Ok(v) = registry.get(name) else { continue };
        let response = glm(answer);
        g.bench_function(format!("{name}: {answer}"), |b| {
            b.iter(|| v.verify(black_box(&response), black_box(gold)))
        });
    }
    g.finish();
}

fn bench_adversarial(c: &mut Criterion) {
    let registry = Registry::builtin();
    let mut g = c.benchmark_group("adversarial");
    g.sample_size(10);
    let inputs = [
        ("1 MB answer", "9".repeat(1 << 20)),
        (
            "100k nested braces",
            "{".repeat(100_000) + &"}".repeat(100_000),
        ),
        ("power tower", "10^{10^{10^{10}}}".to_string()),
        ("huge factorial", "1000000!".to_string()),
    ];
    for name in ["math", "ocr", "grounding", "gui"] {
        let Ok(v) = registry.get(name) else { continue };
        for (label, answer) in &inputs {
            g.bench_function(format!("{name}: {label}"), |b| {
                b.iter(|| v.judge(black_box(answer), "42", None))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_extract, bench_verifiers, bench_adversarial);
criterion_main!(benches);
