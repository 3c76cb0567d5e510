//! Translation: Kubernetes objects -> [`crate::DesiredLoadBalancer`].
