//! The `grounding` domain (being written).
