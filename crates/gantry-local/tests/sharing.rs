//! Shared addresses: owners with the same key share one address when their
//! ports stay apart, across restarts too.

mod common;

use common::{Env, ip, svc};
use gantry_model::{LoadBalancer, ProviderError};

#[tokio::test]
async fn same_key_and_disjoint_ports_share_one_address() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/30"]);
    let dns = p
        .ensure(&svc("dns-tcp").shared("dns").tcp(&[53]).0)
        .await
        .expect("tcp");
    // A restarted provider learns the key from the published object.
    let p = env.provider(&["192.0.2.0/30"]);
    let web = p
        .ensure(&svc("web").shared("dns").tcp(&[80, 443]).0)
        .await
        .expect("web");
    assert_eq!(dns.ingress[0].ip, web.ingress[0].ip);
    assert_eq!(
        env.all_addresses().await,
        [ip("192.0.2.1"), ip("192.0.2.1")]
    );

    // Without the key, or with another key, the address is not shared.
    let other = p
        .ensure(&svc("other").shared("x").tcp(&[8080]).0)
        .await
        .expect("other");
    assert_eq!(other.ingress[0].ip, Some(ip("192.0.2.2")));

    // Deleting one sharer keeps the address with the other.
    p.delete(svc("dns-tcp").owner()).await.expect("delete");
    let again = p
        .ensure(&svc("web").shared("dns").tcp(&[80, 443]).0)
        .await
        .expect("web");
    assert_eq!(again.ingress[0].ip, Some(ip("192.0.2.1")));
}

#[tokio::test]
async fn colliding_ports_are_rejected_naming_them() {
    let env = Env::start().await;
    let p = env.provider(&["192.0.2.0/29"]);
    p.ensure(&svc("a").shared("k").tcp(&[80, 443]).0)
        .await
        .expect("a");
    let err = p
        .ensure(&svc("b").shared("k").tcp(&[443, 8443]).0)
        .await
        .expect_err("collision");
    assert!(matches!(err, ProviderError::Rejected { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("ports 443/TCP collide with default/a"),
        "{err}"
    );
    assert_eq!(env.objects().await.len(), 1, "nothing written for b");

    // A sharer that later adds a clashing port is refused too, and its
    // published object keeps serving the old ports.
    p.ensure(&svc("c").shared("k").tcp(&[8080]).0)
        .await
        .expect("c shares");
    let err = p
        .ensure(&svc("c").shared("k").tcp(&[80, 8080]).0)
        .await
        .expect_err("c clashes");
    assert!(err.to_string().contains("ports 80/TCP"), "{err}");
    let c = env.llbs().get(&svc("c").object_name()).await.expect("c");
    assert_eq!(c.spec.l4.len(), 1);
}
