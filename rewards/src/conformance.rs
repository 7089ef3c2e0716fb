//! The conformance suite every verifier passes (placeholder until implemented).
