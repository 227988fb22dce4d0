//! Concurrency caps, the hourly budget and its refresh.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use autotask_client::{Error, ErrorClass, RequestBudget};
use futures::future::join_all;
use serde_json::json;
use wiremock::{MockServer, ResponseTemplate};

use crate::common::{api, builder_for, counting_server};

#[tokio::test]
async fn fifty_parallel_calls_never_exceed_the_entity_cap() {
    let (base, counters) = counting_server(Duration::from_millis(15), r#"{"item":{"id":1,"status":1}}"#).await;
    let c = builder_for(&base).build().unwrap();
    assert_eq!(c.max_concurrency_per_entity(), 2);
    let calls = (0..50).map(|i| {
        let c = c.clone();
        async move { c.get_ticket(i).await }
    });
    let results = join_all(calls).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Some(_)))));
    assert_eq!(counters.total.load(Ordering::SeqCst), 50);
    let max = counters.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 2, "cap exceeded: {max} in flight");
    assert_eq!(max, 2, "the cap is used, not serialised to 1");
}

#[tokio::test]
async fn the_cap_is_per_entity_and_never_above_three() {
    let (base, counters) = counting_server(Duration::from_millis(15), r#"{"item":{"id":1,"status":1}}"#).await;
    let c = builder_for(&base).max_concurrency_per_entity(10).build().unwrap();
    assert_eq!(c.max_concurrency_per_entity(), 3, "clamped to Autotask's thread limit");
    let tickets = (0..30).map(|i| {
        let c = c.clone();
        async move { c.get_ticket(i).await.map(|_| ()) }
    });
    let companies = (0..30).map(|i| {
        let c = c.clone();
        async move { c.get_company(i).await.map(|_| ()) }
    });
    let (a, b) = tokio::join!(join_all(tickets), join_all(companies));
    assert!(a.iter().chain(b.iter()).all(Result::is_ok));
    let max = counters.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 6, "two entities x 3: {max}");
    assert!(max > 3, "different entities run side by side: {max}");
}

#[tokio::test]
async fn exhausted_budget_refuses_without_sending() {
    let server = MockServer::start().await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":{"id":1}})))
        .expect(3)
        .mount(&server)
        .await;
    let budget = Arc::new(RequestBudget::new(3));
    let c = builder_for(&server.uri()).shared_budget(Arc::clone(&budget)).build().unwrap();
    let other = builder_for(&server.uri()).shared_budget(Arc::clone(&budget)).build().unwrap();
    c.get_ticket(1).await.unwrap();
    other.get_ticket(1).await.unwrap();
    c.get_ticket(1).await.unwrap();
    assert_eq!((c.budget_usage().used, c.budget_usage().limit), (3, 3));
    let err = other.get_ticket(1).await.unwrap_err();
    assert!(matches!(err, Error::BudgetExhausted { used: 3, limit: 3, .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::RateLimited);
    assert!(err.retry_after().is_some());
}

#[tokio::test]
async fn threshold_information_refreshes_budget_once_per_interval() {
    let server = MockServer::start().await;
    api("GET", "ThresholdInformation")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"externalRequestThreshold":10000,"requestThresholdTimeframe":60,
                    "currentTimeframeRequestCount":5000}))
                .set_delay(Duration::from_millis(50)),
        )
        .expect(1)
        .mount(&server)
        .await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":{"id":1}})))
        .expect(20)
        .mount(&server)
        .await;
    let c = builder_for(&server.uri()).threshold_refresh(Some(Duration::from_secs(300))).build().unwrap();
    let calls = (0..20).map(|_| {
        let c = c.clone();
        async move { c.get_ticket(1).await }
    });
    assert!(join_all(calls).await.iter().all(Result::is_ok));
    let usage = c.budget_usage();
    // the server's 5,000 plus our own requests after the sync
    let server_used = usage.server_used.unwrap();
    assert!((5000..=5020).contains(&server_used), "{usage:?}");
    assert_eq!(usage.used, 21, "ours: the threshold call and the 20 GETs");
    assert_eq!((usage.limit, usage.server_limit), (10000, Some(10000)));
}

/// The budget's window slides: a slot frees up one window after the request that used it, and
/// the refusal says how long that is.
#[tokio::test]
async fn budget_window_slides_and_refusal_says_when() {
    let server = MockServer::start().await;
    api("GET", "Tickets/1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":{"id":1}})))
        .mount(&server)
        .await;
    let budget = Arc::new(RequestBudget::with_window(3, Duration::from_millis(400)));
    let c = builder_for(&server.uri()).shared_budget(Arc::clone(&budget)).build().unwrap();
    for _ in 0..3 {
        c.get_ticket(1).await.unwrap();
    }
    let err = c.get_ticket(1).await.unwrap_err();
    let wait = err.retry_after().unwrap();
    assert!(wait > Duration::ZERO && wait <= Duration::from_millis(400), "{wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    c.get_ticket(1).await.unwrap();
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
    let u = c.budget_usage();
    assert_eq!((u.configured_limit, u.server_limit, u.server_used), (3, None, None), "{u:?}");
}
