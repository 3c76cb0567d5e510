//! Smoke suite: the real `kubectl` and `helm` binaries against the Kubernetes
//! API emulator running as its own process, over HTTPS as a real cluster
//! would serve them.

mod helm;
mod kubectl;
mod server;

// Shared by the suite's modules through `use super::*`.
#[allow(unused_imports)]
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use gantry_e2e::{Cluster, ok, testdata, tools_dir, wait_for};
use serde_json::Value;

pub(crate) fn json(out: String) -> Value {
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}
