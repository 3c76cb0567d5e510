//! The provider's call door against the emulator through the real
//! `google-cloud-compute-v1` client: endpoint, anonymous credentials,
//! paging, retries on throttling and waiting for Operations.

mod common;

use std::time::Duration;

use gantry_gcp::{Outcome, api::request_id};
use google_cloud_compute_v1::model::{Address, AddressList};

#[tokio::test]
async fn calls_reach_the_emulator_retry_throttling_and_wait_for_operations() {
    let sim = common::sim(Duration::from_millis(50)).await;
    let p = common::provider(&sim, "gcp", false).await;
    let api = p.api();

    sim.faults().fail_next("/addresses", 429, 2);
    let id = request_id();
    api.mutate("addresses.insert", || {
        api.clients
            .addresses
            .insert()
            .set_project(common::PROJECT)
            .set_region(common::REGION)
            .set_request_id(id.clone())
            .set_body(Address::new().set_name("a-one"))
            .send()
    })
    .await
    .expect("insert converges after two 429s");

    let all = api
        .list_all::<AddressList, _, _>("addresses.list", |token| {
            api.clients
                .addresses
                .list()
                .set_project(common::PROJECT)
                .set_region(common::REGION)
                .set_page_token(token)
                .send()
        })
        .await
        .expect("list");
    assert_eq!(
        all.iter()
            .filter_map(|a| a.name.as_deref())
            .collect::<Vec<_>>(),
        ["a-one"]
    );
    assert!(all[0].address.is_some(), "the emulator allocated an IP");

    let missing = api
        .call("addresses.get", || {
            api.clients
                .addresses
                .get()
                .set_project(common::PROJECT)
                .set_region(common::REGION)
                .set_address("nope")
                .send()
        })
        .await
        .expect_err("absent");
    assert!(missing.is_not_found(), "{missing:?}");
    assert_eq!(missing.reason(), Some("notFound"));

    let (errors, oks, writes) = {
        let log = p.calls();
        let log = log.lock();
        (
            log.counts()
                .get(&("addresses.insert", Outcome::Error))
                .copied(),
            log.counts()
                .get(&("addresses.insert", Outcome::Ok))
                .copied(),
            log.writes(),
        )
    };
    assert_eq!(errors, Some(2));
    assert_eq!(oks, Some(1));
    assert_eq!(writes, 3);
    let inserts = sim
        .resources()
        .iter()
        .filter(|r| r["kind"] == "compute#address")
        .count();
    assert_eq!(inserts, 1, "no duplicate from the retries");
    sim.shutdown().await;
}
