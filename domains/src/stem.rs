//! The `stem` domain (being written).
