//! Node registration, heartbeats, adding nodes and removal on shutdown.

mod common;

use std::{net::Ipv4Addr, time::Duration};

use common::{eventually, options, start};
use gantry_devcluster::{DevClusterOptions, SimNode};
use k8s_openapi::api::core::v1::Node;
use kube::{Api, api::ListParams};

fn condition(node: &Node, kind: &str) -> Option<(String, String)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| {
            (
                c.status.clone(),
                c.last_heartbeat_time
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
            )
        })
}

#[tokio::test]
async fn three_nodes_register_ready_with_addresses() {
    let h = start(DevClusterOptions {
        zone: Some("zone-a".into()),
        ..options(1)
    })
    .await;
    let expected: Vec<SimNode> = (1..=3)
        .map(|i| SimNode {
            name: format!("node-{i}"),
            address: Ipv4Addr::new(127, 77, 1, i),
        })
        .collect();
    assert_eq!(h.dev.nodes(), expected);

    let api: Api<Node> = Api::all(h.client.clone());
    let nodes = api
        .list(&ListParams::default())
        .await
        .expect("list nodes")
        .items;
    assert_eq!(nodes.len(), 3);
    for want in &expected {
        let node = nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(want.name.as_str()))
            .expect("node registered");
        let addresses = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.clone())
            .expect("addresses");
        let internal = addresses
            .iter()
            .find(|a| a.type_ == "InternalIP")
            .expect("InternalIP");
        assert_eq!(internal.address, want.address.to_string());
        let hostname = addresses
            .iter()
            .find(|a| a.type_ == "Hostname")
            .expect("Hostname");
        assert_eq!(hostname.address, want.name);
        assert_eq!(
            condition(node, "Ready").map(|c| c.0).as_deref(),
            Some("True")
        );
        let spec = node.spec.as_ref().expect("spec");
        assert_eq!(
            spec.provider_id.as_deref(),
            Some(format!("gantry-dev://{}", want.name).as_str())
        );
        let labels = node.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], want.name);
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["topology.kubernetes.io/zone"], "zone-a");
    }

    let added = h.dev.add_node().await.expect("add node");
    assert_eq!(
        added,
        SimNode {
            name: "node-4".into(),
            address: Ipv4Addr::new(127, 77, 1, 4)
        }
    );
    let node4 = api.get("node-4").await.expect("node-4 registered");
    assert_eq!(
        condition(&node4, "Ready").map(|c| c.0).as_deref(),
        Some("True")
    );

    h.dev.shutdown().await;
    let left = api
        .list(&ListParams::default())
        .await
        .expect("list nodes")
        .items;
    assert!(
        left.is_empty(),
        "shutdown removes the Node objects: {left:?}"
    );
}

#[tokio::test]
async fn heartbeat_refreshes_the_ready_condition() {
    let h = start(DevClusterOptions {
        heartbeat_interval: Duration::from_millis(300),
        ..options(2)
    })
    .await;
    let api: Api<Node> = Api::all(h.client.clone());
    let first = api.get("node-1").await.expect("node-1");
    let (_, first_beat) = condition(&first, "Ready").expect("Ready");
    let first_rv = first.metadata.resource_version.clone().expect("rv");
    // Heartbeat times have one-second precision, so a new value shows within ~1.3s.
    let later = eventually("a newer heartbeat", || {
        let api = api.clone();
        let first_beat = first_beat.clone();
        async move {
            let node = api.get("node-1").await.ok()?;
            let (status, beat) = condition(&node, "Ready")?;
            (beat != first_beat && status == "True").then_some(node)
        }
    })
    .await;
    assert_ne!(
        later.metadata.resource_version.as_deref(),
        Some(first_rv.as_str())
    );
}
