//! The `ocr` verifier (placeholder until implemented).

use crate::{Judgement, Tolerance, Verifier};

/// The `ocr` verifier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OcrVerifier;

impl Verifier for OcrVerifier {
    fn name(&self) -> &str {
        "ocr"
    }

    fn judge(&self, answer: &str, gold: &str, _tolerance: Option<Tolerance>) -> Judgement {
        Judgement::exact(answer.trim() == gold.trim(), answer, gold)
    }
}
