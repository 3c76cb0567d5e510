//! Passthrough listeners: TCP streams and UDP sessions relayed to node ports.

pub(crate) mod tcp;
pub(crate) mod udp;
