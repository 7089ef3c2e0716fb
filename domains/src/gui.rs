//! The `gui` domain (being written).
