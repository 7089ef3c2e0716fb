//! The `video` domain (being written).
