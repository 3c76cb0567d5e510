//! GCP suite: `gantry controller` as a process against the API emulator and
//! the Compute Engine emulator (`gce-sim`), through the real Compute Engine
//! client the provider is built on. Scenarios: a Service's lifecycle (create,
//! ports, nodes across two zones, class switch, delete) with the API economy
//! figures; faults (`429`, `503`) on a share of calls; the controller killed
//! mid-creation; and the seed article's Ingress.

mod crash;
mod faults;
mod ingress;
mod lifecycle;
mod support;
