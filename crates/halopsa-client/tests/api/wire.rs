//! The wire against wiremock: the token request, renewal before expiry and on a 401, the
//! request budget, 429 with `Retry-After`, exactly-once creates, secrets kept out of errors.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use halopsa_client::{
    Credentials, ErrorClass, HaloClient, HaloSettings, HaloSink, RateLimit, RetryPolicy, SinkOptions,
};
use serde_json::json;
use ticketing_core::model::PsaId;
use ticketing_core::ports::{PortErrorKind, TicketSink};
use ticketing_core::ticket::{IdempotencyKey, TicketDraft, Urgency};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "s3cr3t-value-9f8e";

fn builder(server: &MockServer) -> halopsa_client::ClientBuilder {
    HaloClient::builder(Credentials::new("cid", SECRET).tenant("acme"))
        .base_url(server.uri())
        .retry(RetryPolicy::fast())
        .timeout(Duration::from_secs(5))
}

async fn token(server: &MockServer, value: &str, expires_in: u64, times: u64) {
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .and(query_param("tenant", "acme"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=cid"))
        .and(body_string_contains(format!("client_secret={SECRET}")))
        .and(body_string_contains("scope=all"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": value, "token_type": "Bearer", "expires_in": expires_in})),
        )
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
}

fn teams_ok(server_token: &str) -> Mock {
    Mock::given(method("GET"))
        .and(path("/api/Team"))
        .and(header("authorization", format!("Bearer {server_token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 1, "name": "Alerts", "inactive": false}])))
}

#[tokio::test]
async fn the_token_request_is_a_tenant_form_and_the_token_is_reused() {
    let server = MockServer::start().await;
    token(&server, "tok-1", 3600, 1).await;
    teams_ok("tok-1").expect(2).mount(&server).await;
    let c = builder(&server).build().unwrap();
    assert_eq!(c.teams().await.unwrap()[0].name.as_deref(), Some("Alerts"));
    c.teams().await.unwrap();
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    let server = MockServer::start().await;
    // 2 s of life with a 60 s margin: renewed after half its life, so every call here renews
    token(&server, "tok-1", 2, 2).await;
    teams_ok("tok-1").expect(2).mount(&server).await;
    let c = builder(&server).token_refresh_margin(Duration::from_secs(60)).build().unwrap();
    c.teams().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.teams().await.unwrap();
}

#[tokio::test]
async fn a_401_renews_the_token_once_and_a_second_401_is_auth() {
    let server = MockServer::start().await;
    token(&server, "tok-1", 3600, 3).await;
    Mock::given(method("GET"))
        .and(path("/api/Team"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_token"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    teams_ok("tok-1").up_to_n_times(1).mount(&server).await;
    let c = builder(&server).build().unwrap();
    c.teams().await.expect("the second attempt, with a new token, succeeds");
    Mock::given(method("GET"))
        .and(path("/api/Status"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_token"})))
        .expect(2)
        .mount(&server)
        .await;
    let err = c.statuses().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");
}

#[tokio::test]
async fn a_refused_client_is_auth_and_the_secret_never_shows() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "invalid_client", "error_description": "bad client"})),
        )
        .mount(&server)
        .await;
    let c = builder(&server).build().unwrap();
    let err = c.teams().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    let text = format!("{err} {err:?} {c:?}");
    assert!(text.contains("invalid_client") && text.contains("/auth/token"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    let s = HaloSettings::new(server.uri(), "cid", SECRET);
    assert!(!format!("{s:?}").contains(SECRET));
    let sink = HaloSink::new(c, SinkOptions::default());
    let port = sink.accounts().await.unwrap_err();
    assert_eq!(port.kind, PortErrorKind::Auth);
    assert!(!format!("{port:?}").contains(SECRET) && !format!("{sink:?}").contains(SECRET));
}

#[tokio::test]
async fn a_token_answer_that_does_not_parse_keeps_no_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"access_token": 42, "secret": "tok-zzz"}"#))
        .mount(&server)
        .await;
    let err = builder(&server).build().unwrap().teams().await.unwrap_err();
    assert!(!format!("{err:?}").contains("tok-zzz"), "{err:?}");
}

#[tokio::test]
async fn a_429_waits_out_retry_after_and_a_long_one_is_returned_with_it() {
    let server = MockServer::start().await;
    token(&server, "tok-1", 3600, 1).await;
    Mock::given(method("GET"))
        .and(path("/api/Team"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    teams_ok("tok-1").mount(&server).await;
    let c = builder(&server).build().unwrap();
    let t0 = std::time::Instant::now();
    c.teams().await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(900), "Retry-After was waited out");
    Mock::given(method("GET"))
        .and(path("/api/Status"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .mount(&server)
        .await;
    let err = c.statuses().await.unwrap_err();
    assert_eq!((err.class(), err.retry_after()), (ErrorClass::RateLimited, Some(Duration::from_secs(120))));
}

#[tokio::test]
async fn the_request_budget_spaces_requests_out() {
    let server = MockServer::start().await;
    token(&server, "tok-1", 3600, 1).await;
    teams_ok("tok-1").mount(&server).await;
    let c =
        builder(&server).rate_limit(Some(RateLimit { requests: 3, window: Duration::from_secs(1) })).build().unwrap();
    let t0 = std::time::Instant::now();
    for _ in 0..4 {
        c.teams().await.unwrap();
    }
    // token + 2 calls fit the first window; the 3rd and 4th wait for it to slide
    assert!(t0.elapsed() >= Duration::from_millis(900), "{:?}", t0.elapsed());
    assert_eq!(c.budget_used(), Some(2));
}

fn draft(key: &str) -> TicketDraft {
    TicketDraft {
        account: PsaId(12),
        title: "Virus".into(),
        description: "found\nmsp-ticketing key: event|x".into(),
        status: PsaId(1),
        priority: PsaId(3),
        queue: PsaId(1),
        due: Utc.with_ymd_and_hms(2030, 1, 15, 17, 0, 0).unwrap(),
        due_hours: None,
        expires_at: None,
        row: None,
        source: None,
        work_type: None,
        issue_type: None,
        sub_issue_type: None,
        idempotency_key: IdempotencyKey(key.into()),
        device_name: None,
        urgency: Urgency::Normal,
    }
}

#[tokio::test]
async fn an_ambiguous_create_is_looked_up_by_its_key_and_not_sent_again() {
    let server = MockServer::start().await;
    token(&server, "tok-1", 3600, 1).await;
    teams_ok("tok-1").mount(&server).await;
    for p in ["/api/Status", "/api/TicketType", "/api/Priority"] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/api/Tickets"))
        .and(body_string_contains(r#""fixbydate":"2030-01-15T17:00:00Z""#))
        .and(body_string_contains(r#""team":"Alerts""#))
        .and(body_string_contains("msp-ticketing ref: kmsp-k1"))
        .respond_with(ResponseTemplate::new(504))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/Tickets"))
        .and(query_param("search", "kmsp-k1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"record_count": 2, "tickets": [
            {"id": 7, "details": "other<br>msp-ticketing ref: kmsp-k10", "status_id": 1},
            {"id": 8, "details": "found<br>msp-ticketing ref: kmsp-k1", "status_id": 1}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = HaloSink::new(builder(&server).build().unwrap(), SinkOptions::default());
    let t = sink.create_ticket(&draft("kmsp-k1")).await.unwrap();
    assert_eq!(t.id, PsaId(8), "the exact key, not the longer one");
}

#[tokio::test]
async fn settings_errors_name_the_field() {
    let mut s = HaloSettings::new("https://x.halopsa.com", "cid", SECRET);
    s.due_field = Some("fix by".into());
    assert!(s.sink_options().unwrap_err().to_string().contains("due_field"));
    let err = HaloClient::builder(Credentials::new("", SECRET)).base_url("x").build().unwrap_err();
    assert!(err.to_string().contains("client_id"), "{err}");
    let c = HaloClient::builder(Credentials::new("cid", SECRET).tenant("t"))
        .base_url("https://x.halopsa.com/api")
        .build()
        .unwrap();
    assert_eq!(c.config().api_root.as_str(), "https://x.halopsa.com/api/");
    assert_eq!(c.config().token_url.as_str(), "https://x.halopsa.com/auth/token?tenant=t");
}
