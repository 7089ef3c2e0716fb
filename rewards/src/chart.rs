//! The `chart` verifier (placeholder until implemented).

use crate::{Judgement, Tolerance, Verifier};

/// The `chart` verifier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartVerifier;

impl Verifier for ChartVerifier {
    fn name(&self) -> &str {
        "chart"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        Judgement::exact(answer.trim() == gold.trim(), answer, gold)
    }
}
