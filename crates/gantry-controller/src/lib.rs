//! Gantry's controller: watches Services and Ingresses and gives each of
//! Gantry's a load balancer through the provider of its class.
//!
//! The pipeline, one module per step:
//! [`watch`] -> [`translate`] -> [`apply`] (plan/ensure/delete) -> [`report`]
//! (status, conditions, Events), driven by [`reconcile`] per object, with
//! [`finalize`] (cleanup), [`migrate`] (class changes) and [`gc`] (orphans)
//! around it, [`classes`] (class status) and [`secrets`] (the Secrets
//! Ingresses reference, read narrowly), and [`leader`], [`metrics`] and
//! [`server`] for operation.

pub mod apply;
pub mod backoff;
pub mod classes;
pub mod cli;
pub mod conditions;
pub mod context;
pub mod crd;
pub mod error;
pub mod finalize;
pub mod gc;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod migrate;
pub mod plan;
pub mod providers;
pub mod reconcile;
pub mod report;
pub mod runner;
pub mod secrets;
pub mod server;
pub mod status;
pub mod target;
pub mod translate;
pub mod watch;

pub use context::{ControllerConfig, FINALIZER};
pub use error::Error;
pub use providers::{BuiltinFactory, ProviderFactory, StaticFactory};
pub use runner::{GantryController, run_controller};
