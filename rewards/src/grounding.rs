//! The `grounding` verifier (placeholder until implemented).

use crate::{Judgement, Tolerance, Verifier};

/// The `grounding` verifier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroundingVerifier;

impl Verifier for GroundingVerifier {
    fn name(&self) -> &str {
        "grounding"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        Judgement::exact(answer.trim() == gold.trim(), answer, gold)
    }
}
