//! Typed annotation parsing (filled in with the translation step).
