//! What a fresh cluster already holds: the system namespaces and the
//! `default/kubernetes` Service on the first address of the service range.

use serde_json::json;

use crate::{
    api::{Ctx, Query, write},
    store::State,
};

/// Creates the objects every cluster starts with.
pub fn seed(st: &mut State, port: u16) {
    let Some(ns_type) = st.registry.find("", "v1", "namespaces") else {
        return;
    };
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let ctx = Ctx {
            rt: ns_type.clone(),
            namespace: None,
            name: None,
            subresource: None,
            query: Query::default(),
            user_agent: "kube-apiserver".into(),
        };
        let _ = write::create(
            st,
            &ctx,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        );
    }
    let Some(svc_type) = st.registry.find("", "v1", "services") else {
        return;
    };
    let ctx = Ctx {
        rt: svc_type,
        namespace: Some("default".into()),
        name: None,
        subresource: None,
        query: Query::default(),
        user_agent: "kube-apiserver".into(),
    };
    // The real server reserves the first address of the range for itself;
    // dynamic allocation would pick a random one.
    let first_ip = st.alloc.first_ip();
    let _ = write::create(
        st,
        &ctx,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": first_ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}
        }),
    );
}
