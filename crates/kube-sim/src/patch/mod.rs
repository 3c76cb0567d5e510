//! Patch kinds the API server accepts: JSON merge patch (RFC 7386), JSON
//! patch (RFC 6902), strategic merge patch, and server-side apply (with
//! `managedFields` bookkeeping in [`managed`]).

pub mod fields;
pub mod json;
pub mod lists;
pub mod managed;
pub mod strategic;

use serde_json::Value;

use crate::error::ApiError;

/// The patch type named by the request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// Parses a `Content-Type` header value.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchKind::Apply)
            }
            _ => None,
        }
    }
}

/// Parses a patch body as JSON, or YAML for apply patches.
pub fn parse_body(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    let parsed = if kind == PatchKind::Apply {
        serde_json::from_slice(body)
            .or_else(|_| serde_yaml::from_slice::<Value>(body).map_err(|e| e.to_string()))
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

/// Applies a merge, JSON or strategic patch to a copy of `current`.
pub fn apply_simple(kind: PatchKind, current: &Value, patch: &Value) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: patch must be a JSON object",
                ));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchKind::Json => json::apply(&mut doc, patch)?,
        PatchKind::Strategic => strategic::apply(&mut doc, patch)?,
        PatchKind::Apply => {
            return Err(ApiError::internal(
                "apply patches go through server-side apply",
            ));
        }
    }
    Ok(doc)
}
