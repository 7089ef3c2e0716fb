//! The `chart` domain (being written).
