//! The `counting` domain (being written).
