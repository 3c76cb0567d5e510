//! Typed annotation parsing: one parser per supported annotation.

/// An annotation whose value does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: invalid value {value:?}: {reason}")]
pub struct AnnotationError {
    /// The annotation key.
    pub key: String,
    /// The value as given (truncated for display).
    pub value: String,
    /// Why it is rejected.
    pub reason: String,
}
