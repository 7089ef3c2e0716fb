//! The `counting` verifier (placeholder until implemented).

use crate::{Judgement, Tolerance, Verifier};

/// The `counting` verifier.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CountingVerifier;

impl Verifier for CountingVerifier {
    fn name(&self) -> &str {
        "counting"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        Judgement::exact(answer.trim() == gold.trim(), answer, gold)
    }
}
