//! The `ocr` domain (being written).
