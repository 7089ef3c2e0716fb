//! The `gui` verifier (placeholder until implemented).

use crate::{Judgement, Tolerance, Verifier};

/// The `gui` verifier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuiVerifier;

impl Verifier for GuiVerifier {
    fn name(&self) -> &str {
        "gui"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        Judgement::exact(answer.trim() == gold.trim(), answer, gold)
    }
}
