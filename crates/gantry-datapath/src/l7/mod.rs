//! HTTP(S) listeners: routing, TLS termination, the hyper server and the
//! forwarding client.

pub(crate) mod build;
pub(crate) mod forward;
pub(crate) mod pool;
pub(crate) mod routes;
pub(crate) mod server;
pub(crate) mod tls;
