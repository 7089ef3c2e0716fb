//! Judge verifier: an OpenAI-compatible chat endpoint (or several) decides.
