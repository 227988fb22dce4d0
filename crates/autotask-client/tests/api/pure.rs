//! Pure functions: retry policy table, Retry-After, query builder, pacing, URLs, dates, catalog.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use autotask_client::error::{ApiError, classify_response, parse_error_messages};
use autotask_client::models::{Page, Ticket, lenient_datetime};
use autotask_client::query::{Filter, Op, Query};
use autotask_client::retry::parse_retry_after;
use autotask_client::throttle::entity_of_path;
use autotask_client::zone::{HostPolicy, endpoint, is_autotask_zone_host, normalise_root};
use autotask_client::{Classify as _, Error, ErrorClass, Idempotency, Pacing, RetryAction, RetryPolicy};
use serde_json::json;

fn api(status: u16, class: ErrorClass, retry_after: Option<Duration>) -> Error {
    Error::Api(ApiError { status, class, messages: vec![], body: String::new(), retry_after })
}

#[test]
fn retry_policy_table() {
    let p = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1000),
        max_retry_after: Duration::from_secs(60),
    };
    use Idempotency::*;
    use RetryAction::*;
    let ms = Duration::from_millis;
    // (error, attempt, idempotency, jitter, expected)
    let table: Vec<(Error, u32, Idempotency, f64, RetryAction)> = vec![
        (api(429, ErrorClass::RateLimited, None), 1, Idempotent, 1.0, Retry(ms(100))),
        (api(429, ErrorClass::RateLimited, None), 2, Idempotent, 1.0, Retry(ms(200))),
        (api(429, ErrorClass::RateLimited, None), 3, Idempotent, 0.0, Retry(ms(200))),
        (api(429, ErrorClass::RateLimited, None), 4, Idempotent, 1.0, NoRetry),
        (
            api(429, ErrorClass::RateLimited, Some(Duration::from_secs(7))),
            1,
            Idempotent,
            0.3,
            Retry(Duration::from_secs(7)),
        ),
        (api(429, ErrorClass::RateLimited, Some(Duration::from_secs(61))), 1, Idempotent, 0.3, NoRetry),
        (api(429, ErrorClass::RateLimited, None), 1, NonIdempotent, 1.0, Retry(ms(100))),
        (api(429, ErrorClass::ThreadLimited, None), 1, Verifiable, 1.0, Retry(ms(100))),
        (api(500, ErrorClass::ThreadLimited, None), 2, NonIdempotent, 1.0, Retry(ms(200))),
        (api(503, ErrorClass::Transient, None), 1, Idempotent, 1.0, Retry(ms(100))),
        (api(503, ErrorClass::Transient, None), 1, Verifiable, 1.0, VerifyThenRetry(ms(100))),
        (api(503, ErrorClass::Transient, None), 1, NonIdempotent, 1.0, NoRetry),
        (Error::Timeout("t".into()), 1, Idempotent, 1.0, Retry(ms(100))),
        (Error::Timeout("t".into()), 1, Verifiable, 1.0, VerifyThenRetry(ms(100))),
        (Error::Timeout("t".into()), 1, NonIdempotent, 1.0, NoRetry),
        (Error::Dispatch("reset".into()), 1, Verifiable, 1.0, VerifyThenRetry(ms(100))),
        (Error::Connect("refused".into()), 1, NonIdempotent, 1.0, Retry(ms(100))),
        (Error::Connect("refused".into()), 8, Idempotent, 1.0, NoRetry),
        (api(500, ErrorClass::Validation, None), 1, Idempotent, 1.0, NoRetry),
        (api(500, ErrorClass::Server, None), 1, Idempotent, 1.0, NoRetry),
        (api(401, ErrorClass::Auth, None), 1, Idempotent, 1.0, NoRetry),
        (api(404, ErrorClass::NotFound, None), 1, Idempotent, 1.0, NoRetry),
        (Error::BudgetExhausted { used: 10, limit: 10, retry_after: Some(ms(5)) }, 1, Idempotent, 1.0, NoRetry),
        (Error::InvalidRequest("x".into()), 1, Idempotent, 1.0, NoRetry),
    ];
    for (i, (err, attempt, idem, jitter, expected)) in table.into_iter().enumerate() {
        assert_eq!(p.classify(&err, attempt, idem, jitter), expected, "row {i}: {err:?} attempt {attempt} {idem:?}");
    }
}

#[test]
fn backoff_grows_caps_and_jitters_within_half_to_full() {
    let p = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1000),
        max_retry_after: Duration::from_secs(1),
    };
    let full: Vec<u128> = (1..=6).map(|a| p.backoff(a, 1.0).as_millis()).collect();
    assert_eq!(full, vec![100, 200, 400, 800, 1000, 1000]);
    assert_eq!(p.backoff(3, 0.0), Duration::from_millis(200));
    assert_eq!(p.backoff(3, 0.5), Duration::from_millis(300));
    assert_eq!(p.backoff(u32::MAX, 1.0), Duration::from_millis(1000));
}

#[test]
fn retry_after_seconds_and_http_date() {
    let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
    assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
    assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("soon", now), None);
    assert!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", SystemTime::now()).is_some());
}

#[test]
fn all_thirteen_operators_serialise() {
    let spelled: Vec<&str> = Op::ALL.iter().map(|o| o.as_str()).collect();
    assert_eq!(
        spelled,
        [
            "eq",
            "noteq",
            "gt",
            "gte",
            "lt",
            "lte",
            "beginsWith",
            "endsWith",
            "contains",
            "exist",
            "notExist",
            "in",
            "notIn"
        ]
    );
    let q = Query::new()
        .filter(Filter::eq("companyID", 175))
        .filter(Filter::noteq("status", 5))
        .filter(Filter::gt("id", 1))
        .filter(Filter::gte("id", 0))
        .filter(Filter::lt("id", 9))
        .filter(Filter::lte("id", 8))
        .filter(Filter::begins_with("title", "Back"))
        .filter(Filter::ends_with("title", "up"))
        .filter(Filter::contains("title", "ck"))
        .filter(Filter::exist("assignedResourceID"))
        .filter(Filter::not_exist("completedDate"))
        .filter(Filter::is_in("priority", [1, 2]))
        .filter(Filter::not_in("queueID", [5]));
    let v = serde_json::to_value(q.build().unwrap()).unwrap();
    assert_eq!(v["filter"].as_array().unwrap().len(), 13);
    assert_eq!(v["filter"][9], json!({"op":"exist","field":"assignedResourceID"}));
    assert_eq!(v["filter"][11], json!({"op":"in","field":"priority","value":[1,2]}));
    assert_eq!(v["filter"][12], json!({"op":"notIn","field":"queueID","value":[5]}));
}

#[test]
fn nested_groups_udf_include_fields_and_max_records() {
    let q = Query::new()
        .filter(Filter::eq("companyID", 175))
        .filter(Filter::or([
            Filter::eq("priority", 1),
            Filter::and([Filter::eq("queueID", 29683482), Filter::exist("assignedResourceID")]),
        ]))
        .filter(Filter::contains("My UDF Name", "ABC").udf())
        .include_fields(["id", "title", "status"])
        .max_records(50);
    assert_eq!(
        serde_json::to_value(q.build().unwrap()).unwrap(),
        json!({
          "MaxRecords": 50,
          "IncludeFields": ["id", "title", "status"],
          "filter": [
            {"op": "eq", "field": "companyID", "value": 175},
            {"op": "or", "items": [
                {"op": "eq", "field": "priority", "value": 1},
                {"op": "and", "items": [
                    {"op": "eq", "field": "queueID", "value": 29683482},
                    {"op": "exist", "field": "assignedResourceID"}
                ]}
            ]},
            {"op": "contains", "field": "My UDF Name", "udf": true, "value": "ABC"}
          ]
        })
    );
}

#[test]
fn query_guards() {
    let two_udfs = Query::new().filter(Filter::eq("A", "1").udf()).filter(Filter::or([Filter::eq("B", "2").udf()]));
    assert!(matches!(two_udfs.build(), Err(Error::InvalidRequest(m)) if m.contains("one user-defined field")));
    assert!(Query::new().build().is_err(), "empty filter is never sent");
    assert!(Query::all().max_records(0).build().is_err());
    assert!(Query::all().max_records(501).build().is_err());
    assert!(Query::all().max_records(500).build().is_ok());
    assert!(Query::new().filter(Filter::cond(Op::In, "x", 1)).build().is_err());
    assert!(Query::new().filter(Filter::cond(Op::Exist, "x", 1)).build().is_err());
    assert!(Query::new().filter(Filter::or([])).build().is_err());
    assert!(Query::new().filter(Filter::eq("x", serde_json::Value::Null)).build().is_err());
}

#[test]
fn pacing_thresholds() {
    let p = Pacing { at_half: Duration::from_millis(10), at_three_quarters: Duration::from_millis(50) };
    assert_eq!(p.delay(0, 10_000), Duration::ZERO);
    assert_eq!(p.delay(4_999, 10_000), Duration::ZERO);
    assert_eq!(p.delay(5_000, 10_000), Duration::from_millis(10));
    assert_eq!(p.delay(7_499, 10_000), Duration::from_millis(10));
    assert_eq!(p.delay(7_500, 10_000), Duration::from_millis(50));
    assert_eq!(p.delay(1, 0), Duration::ZERO);
}

#[test]
fn url_normalisation_and_host_policy() {
    let cases = [
        ("https://webservices5.autotask.net/ATServicesRest/", "https://webservices5.autotask.net/ATServicesRest"),
        ("https://webservices5.autotask.net/atservicesrest", "https://webservices5.autotask.net/atservicesrest"),
        ("https://webservices5.autotask.net/ATServicesRest/V1.0/", "https://webservices5.autotask.net/ATServicesRest"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/ATServicesRest"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/ATServicesRest"),
    ];
    for (raw, want) in cases {
        assert_eq!(normalise_root(raw).unwrap().as_str(), want, "{raw}");
    }
    assert!(normalise_root("ftp://x").is_err());
    let root = normalise_root("http://127.0.0.1:8080").unwrap();
    assert_eq!(endpoint(&root, "Tickets/5").unwrap().as_str(), "http://127.0.0.1:8080/ATServicesRest/V1.0/Tickets/5");
    for host in [
        "webservices.autotask.net",
        "webservices2.autotask.net",
        "webservices26.autotask.net",
        "prde.autotask.net",
        "pres.autotask.net",
    ] {
        assert!(is_autotask_zone_host(host), "{host}");
    }
    for host in [
        "webservicesX.autotask.net",
        "evil.net",
        "webservices2.autotask.net.evil.net",
        "autotask.net",
        "ww5.autotask.net",
    ] {
        assert!(!is_autotask_zone_host(host), "{host}");
    }
    let p = HostPolicy::default();
    assert!(p.allows(&"https://webservices5.autotask.net/x".parse().unwrap()));
    assert!(!p.allows(&"http://webservices5.autotask.net/x".parse().unwrap()), "credentials only over https");
    assert!(!p.allows(&"http://127.0.0.1/x".parse().unwrap()));
    let p = HostPolicy { autotask_zones: true, extra_hosts: vec!["127.0.0.1".into()] };
    assert!(p.allows(&"http://127.0.0.1:9/x".parse().unwrap()));
}

#[test]
fn entity_buckets() {
    assert_eq!(entity_of_path("/ATServicesRest/V1.0/Tickets/123/Notes"), "tickets");
    assert_eq!(entity_of_path("/atservicesrest/v1.0/Tickets/entityInformation/fields"), "tickets");
    assert_eq!(entity_of_path("/ATServicesRest/V1.0/Companies/query/next"), "companies");
    assert_eq!(entity_of_path("/ATServicesRest/V1.0/ThresholdInformation"), "thresholdinformation");
}

#[test]
fn error_body_parsing() {
    assert_eq!(parse_error_messages(r#"{"errors":["a","b"]}"#), ["a", "b"]);
    assert_eq!(parse_error_messages(r#"{"errors":[{"message":"m"}]}"#), ["m"]);
    assert_eq!(
        parse_error_messages(r#"{"Message":"The requested resource does not support http method 'GET'."}"#),
        ["The requested resource does not support http method 'GET'."]
    );
    assert!(parse_error_messages("").is_empty());
    assert_eq!(parse_error_messages("Bad Gateway"), ["Bad Gateway"]);
    assert_eq!(classify_response(500, &["Bad Gateway".to_owned()], false), ErrorClass::Server);
    // a 500 with errors[] is a refusal only when its text says so
    assert_eq!(classify_response(500, &["x".to_owned()], true), ErrorClass::Server);
    assert_eq!(
        classify_response(500, &["title is required.; on record number [0].".to_owned()], true),
        ErrorClass::Validation
    );
    assert_eq!(classify_response(500, &["title is required.".to_owned()], false), ErrorClass::Server);
    assert_eq!(classify_response(400, &["x".to_owned()], true), ErrorClass::Validation);
    assert_eq!(classify_response(403, &["thread threshold exceeded".to_owned()], true), ErrorClass::ThreadLimited);
}

#[test]
fn dates_written_as_utc_z_and_read_leniently() {
    let t = Ticket { due_date_time: lenient_datetime::parse("2030-01-15T17:00:00"), ..Ticket::default() };
    assert_eq!(serde_json::to_value(&t).unwrap(), json!({"dueDateTime":"2030-01-15T17:00:00Z"}));
    for raw in
        ["2030-01-15T17:00:00Z", "2030-01-15T18:00:00+01:00", "2030-01-15T17:00:00.0000000", "2030-01-15T17:00:00.000Z"]
    {
        assert_eq!(lenient_datetime::parse(raw).unwrap().to_rfc3339(), "2030-01-15T17:00:00+00:00", "{raw}");
    }
    let page: Page<Ticket> = serde_json::from_value(json!({"items":[{"id":1,"dueDateTime":null,"createDate":"",
        "lastActivityDate":"2020-10-05T10:59:57.537","unknownField":[1,2],"userDefinedFields":[{"name":"X","value":null}]}],
        "pageDetails":{"count":1,"requestCount":500,"prevPageUrl":null,"nextPageUrl":null}}))
    .unwrap();
    let t = &page.items[0];
    assert_eq!(t.due_date_time, None);
    assert_eq!(t.create_date, None);
    assert!(t.last_activity_date.is_some());
    assert_eq!(t.extra["unknownField"], json!([1, 2]), "unknown fields are kept");
    assert_eq!(t.user_defined_fields.as_ref().unwrap()[0].name, "X");
    // kept fields go back out unchanged
    assert_eq!(serde_json::to_value(t).unwrap()["unknownField"], json!([1, 2]));
}
