//! Error classification against a fake endpoint: throttling and 5xx are
//! transient, validation errors are permanent, and a call that never gets
//! an answer ends at the deadline.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use aws_config::{BehaviorVersion, Region, retry::RetryConfig};
use aws_sdk_ec2::config::Credentials;
use gantry_aws::AwsProvider;
use gantry_model::{
    LoadBalancer, ProviderError, class::AwsSettings, desired::Protocol, provider::ErrorClass,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// What the fake endpoint answers to every request.
#[derive(Clone, Copy)]
enum Answer {
    Error(u16, &'static str),
    Silence,
}

/// Serve `answer` on a loopback port; returns the endpoint and a request count.
async fn fake(answer: Answer) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                // Read the head and the body the content-length announces.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                match answer {
                    Answer::Silence => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Answer::Error(status, code) => {
                        let body = format!(
                            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>fake {code}</Message></Error><RequestId>r1</RequestId></ErrorResponse>"
                        );
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

async fn provider(endpoint: &str, timeout: Duration) -> AwsProvider {
    AwsProvider::with_loader(
        common::CLASS,
        common::CLUSTER,
        AwsSettings {
            region: Some(common::REGION.into()),
            endpoint: Some(endpoint.into()),
            subnets: vec!["subnet-0123abcd".into()],
            ..AwsSettings::default()
        },
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(common::REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(10)),
            ),
        timeout,
    )
    .await
    .expect("provider")
}

fn desired() -> gantry_model::DesiredLoadBalancer {
    common::service(
        &common::owner("web", "uid-f"),
        &[(80, Protocol::Tcp, 30080)],
        vec![],
    )
}

#[tokio::test]
async fn throttling_and_server_errors_are_transient_and_retried() {
    for (status, code) in [
        (400, "Throttling"),
        (500, "InternalFailure"),
        (503, "ServiceUnavailable"),
    ] {
        let (endpoint, count) = fake(Answer::Error(status, code)).await;
        let p = provider(&endpoint, Duration::from_secs(20)).await;
        let err = p.plan(&desired()).await.expect_err("fake endpoint fails");
        assert!(
            matches!(
                err,
                ProviderError::Transient {
                    operation: "DescribeLoadBalancers",
                    ..
                }
            ),
            "{status} {code}: {err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Transient);
        assert_eq!(
            count.load(Ordering::SeqCst),
            2,
            "{code}: the SDK retried once"
        );
    }
}

#[tokio::test]
async fn a_dependency_still_held_is_transient() {
    // EC2's answer while a deleted balancer's interfaces still hold its
    // security group: the controller's replay of the delete finishes it.
    let (endpoint, _) = fake(Answer::Error(400, "DependencyViolation")).await;
    let p = provider(&endpoint, Duration::from_secs(20)).await;
    let err = p.plan(&desired()).await.expect_err("fake endpoint fails");
    assert_eq!(err.class(), ErrorClass::Transient, "{err:?}");
}

#[tokio::test]
async fn validation_errors_are_permanent_and_not_retried() {
    let (endpoint, count) = fake(Answer::Error(400, "ValidationError")).await;
    let p = provider(&endpoint, Duration::from_secs(20)).await;
    match p.plan(&desired()).await {
        Err(ProviderError::Rejected { operation, message }) => {
            assert_eq!(operation, "DescribeLoadBalancers");
            assert!(message.starts_with("ValidationError"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_call_without_answer_ends_at_the_deadline() {
    let (endpoint, _) = fake(Answer::Silence).await;
    let p = provider(&endpoint, Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    match p.ensure(&desired()).await {
        Err(ProviderError::Timeout { operation, seconds }) => {
            assert_eq!((operation, seconds), ("DescribeLoadBalancers", 1));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let counts = p.calls().lock().counts().clone();
    assert_eq!(
        counts.get(&("DescribeLoadBalancers", gantry_aws::Outcome::Timeout)),
        Some(&1)
    );
}

#[tokio::test]
async fn calls_are_exported_by_operation_and_outcome() {
    let (endpoint, _) = fake(Answer::Error(400, "ValidationError")).await;
    let p = provider(&endpoint, Duration::from_secs(20)).await;
    let metrics = gantry_aws::CallMetrics::default();
    metrics.track(&p);
    p.plan(&desired()).await.expect_err("fake endpoint fails");
    let mut registry = prometheus_client::registry::Registry::with_prefix("gantry");
    metrics.register(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("encode");
    assert!(
        out.contains(
            "gantry_aws_api_calls_total{operation=\"DescribeLoadBalancers\",outcome=\"error\"} 1"
        ),
        "{out}"
    );
}
