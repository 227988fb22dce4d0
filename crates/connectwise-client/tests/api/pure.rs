//! Pure functions: conditions, Link parsing, hosts, auth header, retry decisions, error
//! classification, summaries, and that secrets never print.

use std::time::{Duration, SystemTime};

use chrono::{TimeZone, Utc};
use connectwise_client::conditions::{Condition, quote};
use connectwise_client::config::{api_host_for, normalise_base};
use connectwise_client::error::{api_error, classify_response, parse_error_body};
use connectwise_client::retry::parse_retry_after;
use connectwise_client::sink::{closed_among_condition, owned_tickets_condition, summary_for};
use connectwise_client::{
    Classify as _, ConnectWiseClient, ConnectWiseSettings, Credentials, Error, ErrorClass, Idempotency, RetryAction,
    RetryPolicy, basic_auth_value, next_link,
};
use ticketing_core::ports::{PortError, PortErrorKind};

#[test]
fn conditions_quote_escape_and_group() {
    let cases = [
        (Condition::eq("externalXRef", "kmsp-1"), r#"externalXRef = "kmsp-1""#),
        (Condition::eq("summary", r#"say "hi" \ bye"#), r#"summary = "say \"hi\" \\ bye""#),
        (Condition::eq("closedFlag", true), "closedFlag = True"),
        (Condition::ne("board/id", 3), "board/id != 3"),
        (
            Condition::ge("closedDate", Utc.with_ymd_and_hms(2016, 8, 20, 18, 4, 26).unwrap()),
            "closedDate >= [2016-08-20T18:04:26Z]",
        ),
        (Condition::is_in("id", [1, 2, 3]), "id in (1,2,3)"),
        (Condition::not_in("id", [4]), "id not in (4)"),
        (Condition::contains("text", "[m/close]"), r#"text contains "[m/close]""#),
        (
            Condition::eq("a", 1).and(Condition::or([
                Condition::eq("b", 2),
                Condition::all([Condition::eq("c", 3), Condition::eq("d", 4)]),
            ])),
            "a = 1 AND (b = 2 OR (c = 3 AND d = 4))",
        ),
    ];
    for (c, want) in cases {
        assert_eq!(c.build().unwrap(), want);
    }
    assert_eq!(
        owned_tickets_condition("kmsp-", Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap()).build().unwrap(),
        r#"externalXRef like "kmsp-%" AND (closedFlag = False OR closedDate >= [2024-01-02T03:04:05Z])"#
    );
    assert_eq!(closed_among_condition(&[7, 8]).build().unwrap(), "id in (7,8)");
}

#[test]
fn conditions_refuse_what_would_be_misread() {
    for c in [
        Condition::eq("summary", "two\nlines"),
        Condition::eq("bad field", 1),
        Condition::eq("x;drop", 1),
        Condition::eq("", 1),
        Condition::is_in("id", Vec::<i64>::new()),
        Condition::all([]),
    ] {
        assert!(matches!(c.build(), Err(Error::InvalidRequest(_))), "{c:?}");
    }
    assert_eq!(quote("").unwrap(), r#""""#);
}

#[test]
fn link_header_next_is_found_and_ends_without_it() {
    let h = r#"<https://api-na.myconnectwise.net/v4_6_release/apis/3.0/service/tickets?page=2&pageSize=25>; rel="next", <https://x/y?page=9>; rel="last""#;
    assert_eq!(
        next_link(h).unwrap(),
        "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/service/tickets?page=2&pageSize=25"
    );
    assert_eq!(next_link(r#"<https://x/y?page=1>; rel="first", <https://x/y?page=1>; rel="prev""#), None);
    assert_eq!(next_link(""), None);
}

#[test]
fn hosts_and_base_urls() {
    assert_eq!(api_host_for("na.myconnectwise.net"), "api-na.myconnectwise.net");
    assert_eq!(api_host_for("EU.myconnectwise.net"), "api-eu.myconnectwise.net");
    assert_eq!(api_host_for("staging.connectwisedev.com"), "api-staging.connectwisedev.com");
    assert_eq!(api_host_for("api-au.myconnectwise.net"), "api-au.myconnectwise.net");
    assert_eq!(api_host_for("cw.example.com"), "cw.example.com");
    assert_eq!(normalise_base("http://127.0.0.1:9").unwrap().as_str(), "http://127.0.0.1:9/v4_6_release/apis/3.0/");
    assert_eq!(normalise_base("cw.example.com/v2017_3").unwrap().as_str(), "https://cw.example.com/v2017_3/apis/3.0/");
    assert_eq!(normalise_base("https://h/v4_6_release/apis/3.0").unwrap().as_str(), "https://h/v4_6_release/apis/3.0/");
    assert!(normalise_base("https://user:pw@h/").is_err());
    assert!(normalise_base("ftp://h/").is_err());
}

#[test]
fn basic_auth_is_company_plus_public_colon_private() {
    let v = basic_auth_value(&Credentials::new("acme", "PUB", "PRIV")).unwrap();
    // base64("acme+PUB:PRIV")
    assert_eq!(v.to_str().unwrap(), "Basic YWNtZStQVUI6UFJJVg==");
    assert!(v.is_sensitive());
}

#[test]
fn retry_decisions() {
    let p = RetryPolicy::fast();
    let throttled =
        api_error(429, r#"{"error":"ConnectWiseAPI","message":"Too many requests."}"#, Some(Duration::from_secs(2)));
    assert_eq!(p.classify(&throttled, 1, Idempotency::Verifiable, 0.0), RetryAction::Retry(Duration::from_secs(2)));
    let long = api_error(429, "", Some(Duration::from_secs(30)));
    assert_eq!(p.classify(&long, 1, Idempotency::Idempotent, 0.0), RetryAction::NoRetry);
    let bare500 = api_error(500, r#"{"code":"UnexpectedServerError","message":"boom"}"#, None);
    assert!(matches!(p.classify(&bare500, 1, Idempotency::Idempotent, 0.0), RetryAction::Retry(_)));
    assert!(matches!(p.classify(&bare500, 1, Idempotency::Verifiable, 0.0), RetryAction::VerifyThenRetry(_)));
    assert_eq!(p.classify(&bare500, 1, Idempotency::NonIdempotent, 0.0), RetryAction::NoRetry);
    assert_eq!(p.classify(&bare500, 4, Idempotency::Idempotent, 0.0), RetryAction::NoRetry);
    let refused = Error::Connect("refused".into());
    assert!(matches!(p.classify(&refused, 1, Idempotency::NonIdempotent, 0.0), RetryAction::Retry(_)));
    for status in [400, 401, 403, 404, 409] {
        assert_eq!(p.classify(&api_error(status, "", None), 1, Idempotency::Idempotent, 0.0), RetryAction::NoRetry);
    }
    assert_eq!(parse_retry_after("30", SystemTime::now()), Some(Duration::from_secs(30)));
    assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
    let d = RetryPolicy {
        max_attempts: 9,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_retry_after: Duration::ZERO,
    };
    assert_eq!(d.backoff(1, 1.0), Duration::from_millis(100));
    assert_eq!(d.backoff(3, 1.0), Duration::from_millis(400));
    assert_eq!(d.backoff(9, 0.0), Duration::from_millis(500));
}

#[test]
fn errors_classify_into_port_kinds() {
    let body = r#"{"code":"InvalidObject","message":"ticket object is invalid","errors":[{"code":"InvalidField","message":"The summary field must be a string with a maximum length of 100.","resource":"ticket","field":"summary"}]}"#;
    let parsed = parse_error_body(body);
    assert_eq!(parsed.code.as_deref(), Some("InvalidObject"));
    assert!(parsed.messages[1].starts_with("summary: The summary field"));
    assert_eq!(classify_response(500, &parsed), ErrorClass::Validation, "a 500 with field errors is a refusal");
    let cases = [
        (400, body, PortErrorKind::Invalid),
        (401, "", PortErrorKind::Auth),
        (403, "", PortErrorKind::Auth),
        (404, r#"{"code":"NotFound","message":"Ticket not found"}"#, PortErrorKind::NotFound),
        (409, "", PortErrorKind::Transient),
        (429, "", PortErrorKind::RateLimited),
        (500, r#"{"code":"UnexpectedServerError","message":"x"}"#, PortErrorKind::Transient),
        (502, "<html>bad gateway</html>", PortErrorKind::Transient),
        (503, "", PortErrorKind::Transient),
    ];
    for (status, body, kind) in cases {
        assert_eq!(PortError::from(&api_error(status, body, None)).kind, kind, "{status}");
    }
    assert_eq!(PortError::from(&Error::Timeout("t".into())).kind, PortErrorKind::Transient);
    let not_applied = Error::NotApplied { what: "ticket 1 status".into(), detail: "still 10".into() };
    assert_eq!(PortError::from(&not_applied).kind, PortErrorKind::Other);
    assert_eq!(
        api_error(400, body, None).to_string(),
        "connectwise answered http 400 (Validation): ticket object is invalid | summary: The summary field must be a string with a maximum length of 100."
    );
}

#[test]
fn summaries_are_cut_to_100_characters() {
    assert_eq!(summary_for("short"), "short");
    let long = "é".repeat(150);
    let s = summary_for(&long);
    assert_eq!(s.chars().count(), 100);
    assert!(s.ends_with(" […]"));
}

#[test]
fn secrets_never_print() {
    let secret = "PRIVATE-KEY-9f8e7d6c";
    let creds = Credentials::new("acme", "PUB", secret);
    assert!(!format!("{creds:?}").contains(secret));
    let client = ConnectWiseClient::builder(creds).base_url("http://127.0.0.1:9").build().unwrap();
    assert!(!format!("{client:?}").contains(secret));
    assert!(!format!("{:?}", client.config()).contains(secret));
    let settings: ConnectWiseSettings = serde_json::from_value(serde_json::json!({
        "base_url": "http://127.0.0.1:9", "company_id": "acme", "public_key": "PUB", "private_key": secret
    }))
    .unwrap();
    assert!(!format!("{settings:?}").contains(secret));
    // the Authorization header holds the key only base64-encoded and marked sensitive
    let v = basic_auth_value(&Credentials::new("acme", "PUB", secret)).unwrap();
    assert!(format!("{v:?}").contains("Sensitive"), "{v:?}");
    let bad = ConnectWiseClient::builder(Credentials::new("acme", "PUB", "")).base_url("http://h").build();
    assert!(matches!(bad, Err(Error::InvalidRequest(_))));
    assert!(connectwise_client::connect(&settings).is_ok());
}
