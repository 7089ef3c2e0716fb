//! The `choice` verifier (placeholder until implemented).

use crate::{Judgement, Tolerance, Verifier};

/// The `choice` verifier.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ChoiceVerifier;

impl Verifier for ChoiceVerifier {
    fn name(&self) -> &str {
        "choice"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        Judgement::exact(answer.trim() == gold.trim(), answer, gold)
    }
}
