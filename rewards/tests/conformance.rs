//! The shared conformance suite (`rlcs_rewards::conformance`) run against every
//! built-in verifier, plus a property test feeding each one arbitrary text.

use proptest::prelude::*;
use rlcs_rewards::{conformance, Registry, Verifier};

fn golds(name: &str) -> &'static [&'static str] {
    conformance::builtin_golds(name)
        .unwrap_or_else(|| panic!("no golds for verifier `{name}`: add them to builtin_golds"))
}

fn all() -> Vec<(String, std::sync::Arc<dyn Verifier>)> {
    Registry::builtin().distinct()
}

#[test]
fn every_builtin_verifier_conforms() {
    let mut report = Vec::new();
    for (_, v) in all() {
        let violations = conformance::check(v.as_ref(), golds(v.name()));
        report.extend(violations.iter().map(|x| x.to_string()));
    }
    assert!(
        report.is_empty(),
        "{} violations:\n{}",
        report.len(),
        report.join("\n")
    );
}

/// Every verifier judges `text` as the answer and as the gold without breaking the
/// score contract.
fn judge_everywhere(text: &str, gold_pick: usize) -> Result<(), TestCaseError> {
    for (_, v) in all() {
        let gs = golds(v.name());
        let gold = gs[gold_pick % gs.len()];
        for j in [v.judge(text, gold, None), v.judge(gold, text, None)] {
            prop_assert!(
                (0.0..=1.0).contains(&j.score),
                "{}: score {}",
                v.name(),
                j.score
            );
            prop_assert_eq!(j.correct, j.score >= 1.0);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_text_never_breaks_a_verifier(answer in any::<String>(), gold_pick in 0usize..8) {
        judge_everywhere(&answer, gold_pick)?;
    }

    #[test]
    fn latex_like_text_never_breaks_a_verifier(
        parts in prop::collection::vec(prop_oneof![
            Just("\\frac{"), Just("}"), Just("{"), Just("\\sqrt"), Just("^"), Just("("),
            Just(")"), Just("["), Just("]"), Just(","), Just("="), Just("\\pm"), Just("x"),
            Just("1"), Just("0"), Just("."), Just("e"), Just("%"), Just("\\cup"),
            Just("\\infty"), Just("\\text{"), Just("cm"), Just("!"), Just("-"), Just("/"),
            Just("\\begin{pmatrix}"), Just("\\end{pmatrix}"), Just("&"), Just("\\\\"),
        ], 0..40),
        gold_pick in 0usize..8,
    ) {
        judge_everywhere(&parts.concat(), gold_pick)?;
    }
}

/// The external-process path meets the same contract: the documented Python example
/// verifier behind the JSON-lines pool.
#[test]
fn the_external_example_verifier_conforms() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/verifiers/exact_match.py"
    );
    let config = rlcs_rewards::external::ExternalConfig::new(&["python3", script]);
    let v = rlcs_rewards::external::ExternalVerifier::start("exact", config).expect("starts");
    let violations = conformance::check(&v, &["12", "Paris", "-3.5"]);
    let report: Vec<String> = violations.iter().map(|x| x.to_string()).collect();
    assert!(report.is_empty(), "{}", report.join("\n"));
    assert_eq!(v.stats().failed, 0, "{:?}", v.stats());
}
