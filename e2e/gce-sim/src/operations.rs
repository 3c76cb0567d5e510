//! Operations: every mutation answers with an `Operation` that goes
//! PENDING -> RUNNING -> DONE over the configured delay, served at the
//! zonal, regional or global operations path of the mutated resource.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    links,
    store::{Moment, State, timestamp},
};

/// A failure an operation reports when it ends (the mutation was not applied).
#[derive(Debug, Clone)]
pub struct OperationFailure {
    /// Error code, upper snake case (`QUOTA_EXCEEDED`, `MEMBER_ALREADY_EXISTS`, ...).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// `httpErrorStatusCode` of the finished operation.
    pub http_status: u16,
}

/// One stored operation.
#[derive(Debug, Clone)]
pub struct OperationRecord {
    /// Operation name.
    pub name: String,
    /// Scope path (`projects/p/global`, `projects/p/regions/r`, `projects/p/zones/z`).
    pub scope: String,
    /// `insert`, `delete`, `patch`, `setLabels`, ...
    pub operation_type: String,
    /// Relative path of the target resource.
    pub target: String,
    /// Id of the target resource.
    pub target_id: u64,
    /// Operation id.
    pub id: u64,
    /// When it was inserted.
    pub inserted: Moment,
    /// Set when the operation ends in failure.
    pub failure: Option<OperationFailure>,
}

/// Where an operation stands at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, not started.
    Pending,
    /// Started.
    Running,
    /// Finished (successfully or not).
    Done,
}

impl OperationRecord {
    /// Phase and progress percent after `elapsed` with the given total delay.
    pub fn phase(&self, delay: Duration) -> (Phase, u64) {
        let elapsed = self.inserted.instant.elapsed();
        if elapsed >= delay {
            return (Phase::Done, 100);
        }
        let percent = (elapsed.as_millis() * 100 / delay.as_millis().max(1)) as u64;
        if elapsed < delay / 3 {
            (Phase::Pending, 0)
        } else {
            (Phase::Running, percent.min(99))
        }
    }

    /// The remaining time until DONE.
    pub fn remaining(&self, delay: Duration) -> Duration {
        delay.saturating_sub(self.inserted.instant.elapsed())
    }

    /// The `compute#operation` JSON, links under `base`.
    pub fn render(&self, delay: Duration, base: &str) -> Value {
        let (phase, progress) = self.phase(delay);
        let status = match phase {
            Phase::Pending => "PENDING",
            Phase::Running => "RUNNING",
            Phase::Done => "DONE",
        };
        let rel = format!("{}/operations/{}", self.scope, self.name);
        let mut op = json!({
            "kind": "compute#operation",
            "id": self.id.to_string(),
            "name": self.name,
            "operationType": self.operation_type,
            "targetLink": links::stored(&self.target),
            "targetId": self.target_id.to_string(),
            "status": status,
            "user": "gce-sim@example.com",
            "progress": progress,
            "insertTime": timestamp(self.inserted.wall),
            "selfLink": links::stored(&rel),
        });
        let start = self.inserted.wall + delay / 3;
        let end = self.inserted.wall + delay;
        if phase != Phase::Pending {
            op["startTime"] = json!(timestamp(start));
        }
        if phase == Phase::Done {
            op["endTime"] = json!(timestamp(end));
            if let Some(failure) = &self.failure {
                op["error"] =
                    json!({"errors": [{"code": failure.code, "message": failure.message}]});
                op["httpErrorStatusCode"] = json!(failure.http_status);
                op["httpErrorMessage"] = json!(http_reason(failure.http_status));
            }
        }
        // The scope field: `zone` or `region` link, nothing for global.
        let mut parts = self.scope.splitn(4, '/');
        let _ = (parts.next(), parts.next());
        match parts.next() {
            Some("zones") => op["zone"] = links::stored(&self.scope),
            Some("regions") => op["region"] = links::stored(&self.scope),
            _ => {}
        }
        links::render(&mut op, base);
        op
    }
}

fn http_reason(status: u16) -> &'static str {
    match status {
        400 => "BAD REQUEST",
        403 => "FORBIDDEN",
        404 => "NOT FOUND",
        409 => "CONFLICT",
        412 => "PRECONDITION FAILED",
        429 => "TOO MANY REQUESTS",
        503 => "SERVICE UNAVAILABLE",
        _ => "INTERNAL SERVER ERROR",
    }
}

/// Records a new operation for a mutation of `target` and returns its path.
pub fn record(
    state: &mut State,
    scope: &str,
    operation_type: &str,
    target: &str,
    target_id: u64,
    failure: Option<OperationFailure>,
) -> String {
    let id = state.id();
    let inserted = Moment::now();
    let name = format!(
        "operation-{}-{:x}",
        inserted.wall.as_millisecond(),
        id & 0xffff_ffff
    );
    let rel = format!("{scope}/operations/{name}");
    state.operations.insert(
        rel.clone(),
        OperationRecord {
            name,
            scope: scope.to_owned(),
            operation_type: operation_type.to_owned(),
            target: target.to_owned(),
            target_id,
            id,
            inserted,
            failure,
        },
    );
    rel
}
