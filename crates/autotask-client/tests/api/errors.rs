//! Error classes parsed from the bodies in the notes, and the no-secrets guarantee.

use std::time::Duration;

use autotask_client::{AutotaskSink, Error, ErrorClass, Outcome, SinkOptions};
use serde_json::json;
use ticketing_core::ports::{PortError, PortErrorKind, TicketSink};
use wiremock::{MockServer, ResponseTemplate};

use crate::common::{CODE, SECRET, api, builder_for, client, credentials};

/// (status, body, class, port kind, outcome)
fn cases() -> Vec<(u16, &'static str, ErrorClass, PortErrorKind, Outcome)> {
    vec![
        (
            401,
            r#"{"Message":"Authorization has been denied for this request."}"#,
            ErrorClass::Auth,
            PortErrorKind::Auth,
            Outcome::Rejected,
        ),
        (
            500,
            r#"{"errors":["IntegrationCode is invalid."]}"#,
            ErrorClass::Auth,
            PortErrorKind::Auth,
            Outcome::Rejected,
        ),
        (403, "", ErrorClass::Forbidden, PortErrorKind::Auth, Outcome::Rejected),
        (404, "", ErrorClass::NotFound, PortErrorKind::NotFound, Outcome::Rejected),
        (
            405,
            r#"{"Message":"The requested resource does not support http method 'GET'."}"#,
            ErrorClass::MethodNotAllowed,
            PortErrorKind::Invalid,
            Outcome::Rejected,
        ),
        (
            500,
            r#"{"errors":["dueDateTime is required.; on record number [0]."]}"#,
            ErrorClass::Validation,
            PortErrorKind::Invalid,
            Outcome::Rejected,
        ),
        (
            500,
            r#"{"errors":["Value does not reference an existing entity for taskType . "]}"#,
            ErrorClass::Validation,
            PortErrorKind::Invalid,
            Outcome::Rejected,
        ),
        (
            500,
            r#"{"errors":[{"message":"Reference value on field: contactID of type: Contact does not exist or is invalid."}]}"#,
            ErrorClass::Validation,
            PortErrorKind::Invalid,
            Outcome::Rejected,
        ),
        (
            429,
            r#"{"errors":["Request threshold exceeded."]}"#,
            ErrorClass::RateLimited,
            PortErrorKind::RateLimited,
            Outcome::Rejected,
        ),
        (
            429,
            r#"{"errors":["Thread threshold exceeded: max 3 concurrent requests per endpoint for this integration."]}"#,
            ErrorClass::ThreadLimited,
            PortErrorKind::RateLimited,
            Outcome::Rejected,
        ),
        (
            500,
            r#"{"errors":["Itgenatr005: The API thread threshold of 3 threads has been exceeded."]}"#,
            ErrorClass::ThreadLimited,
            PortErrorKind::RateLimited,
            Outcome::Rejected,
        ),
        (502, "<html>Bad Gateway</html>", ErrorClass::Transient, PortErrorKind::Transient, Outcome::Unknown),
        (503, "", ErrorClass::Transient, PortErrorKind::Transient, Outcome::Unknown),
        (504, "", ErrorClass::Transient, PortErrorKind::Transient, Outcome::Unknown),
        (500, "", ErrorClass::Server, PortErrorKind::Transient, Outcome::Unknown),
        // a 500 with errors[] that is not a validation refusal (an unexpected server fault)
        (
            500,
            r#"{"errors":["An unexpected error has occurred. Please contact support."]}"#,
            ErrorClass::Server,
            PortErrorKind::Transient,
            Outcome::Unknown,
        ),
        (
            500,
            r#"{"errors":["Timeout expired.  The timeout period elapsed prior to completion of the operation."]}"#,
            ErrorClass::Server,
            PortErrorKind::Transient,
            Outcome::Unknown,
        ),
        (
            500,
            r#"{"errors":["When assigning a Resource, you must assign both a assignedResourceID and assignedResourceRoleID."]}"#,
            ErrorClass::Validation,
            PortErrorKind::Invalid,
            Outcome::Rejected,
        ),
        (
            500,
            r#"{"errors":["title exceeds the maximum length of 255."]}"#,
            ErrorClass::Validation,
            PortErrorKind::Invalid,
            Outcome::Rejected,
        ),
        (
            400,
            r#"{"errors":["Something the server did not like."]}"#,
            ErrorClass::Validation,
            PortErrorKind::Invalid,
            Outcome::Rejected,
        ),
        (418, "", ErrorClass::Other, PortErrorKind::Other, Outcome::Rejected),
    ]
}

#[tokio::test]
async fn every_error_class_from_real_bodies() {
    for (i, (status, body, class, kind, outcome)) in cases().into_iter().enumerate() {
        let server = MockServer::start().await;
        api("PATCH", "Tickets").respond_with(ResponseTemplate::new(status).set_body_string(body)).mount(&server).await;
        // one attempt only: this test is about classification, not retries
        let c = builder_for(&server.uri())
            .retry(autotask_client::RetryPolicy { max_attempts: 1, ..autotask_client::RetryPolicy::fast() })
            .build()
            .unwrap();
        let err = c.set_ticket_status(1, 5).await.unwrap_err();
        assert_eq!(err.class(), class, "case {i}: {status} {body}");
        assert_eq!(err.status(), Some(status), "case {i}");
        assert_eq!(err.outcome(), outcome, "case {i}");
        let Error::Api(api_err) = &err else { panic!("case {i}: not an api error: {err:?}") };
        assert_eq!(api_err.body, body, "case {i}: raw body kept");
        if body.starts_with('{') {
            assert_eq!(api_err.messages.len(), 1, "case {i}");
            assert!(err.to_string().contains(&api_err.messages[0]), "case {i}: display keeps the server's message");
        }
        assert_eq!(PortError::from(&err).kind, kind, "case {i}");
    }
}

#[tokio::test]
async fn item_null_and_404_are_not_errors_for_get() {
    let server = MockServer::start().await;
    api("GET", "Companies/77").respond_with(ResponseTemplate::new(404)).mount(&server).await;
    api("GET", "Companies/78")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"item":null})))
        .mount(&server)
        .await;
    let c = client(&server);
    assert_eq!(c.get_company(77).await.unwrap(), None);
    assert_eq!(c.get_company(78).await.unwrap(), None);
}

#[tokio::test]
async fn unreadable_success_is_a_decode_error_that_may_have_happened() {
    let server = MockServer::start().await;
    api("PATCH", "Tickets").respond_with(ResponseTemplate::new(200).set_body_string("<html>")).mount(&server).await;
    let err = client(&server).set_ticket_status(1, 5).await.unwrap_err();
    assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");
    assert_eq!(err.outcome(), Outcome::Unknown);
    assert_eq!(PortError::from(&err).kind, PortErrorKind::Transient);
}

#[tokio::test]
async fn no_secret_or_integration_code_in_debug_display_or_errors() {
    let server = MockServer::start().await;
    api("GET", "Tickets/1")
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"Message":"Authorization has been denied for this request."})),
        )
        .mount(&server)
        .await;
    api("GET", "Tickets/2")
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"item":{"id":2}})).set_delay(Duration::from_secs(2)),
        )
        .mount(&server)
        .await;
    api("GET", "Tickets/3").respond_with(ResponseTemplate::new(200).set_body_string("not json")).mount(&server).await;
    let c = builder_for(&server.uri()).timeout(Duration::from_millis(200)).build().unwrap();
    let sink = AutotaskSink::new(c.clone(), SinkOptions::default());

    let mut texts =
        vec![format!("{:?}", credentials()), format!("{:?}", c), format!("{:?}", c.config()), format!("{:?}", sink)];
    for id in [1, 2, 3] {
        let err = c.get_ticket(id).await.unwrap_err();
        texts.push(format!("{err}"));
        texts.push(format!("{err:?}"));
        let port = PortError::from(&err);
        texts.push(format!("{port}"));
        texts.push(format!("{port:?}"));
    }
    let port = sink.ticket(ticketing_core::model::PsaId(1)).await.unwrap_err();
    assert_eq!(port.kind, PortErrorKind::Auth);
    texts.push(port.message);
    for t in &texts {
        assert!(!t.contains(SECRET), "secret leaked: {t}");
        assert!(!t.contains(CODE), "integration code leaked: {t}");
    }
    assert!(texts[0].contains("***"));
    assert!(texts.iter().any(|t| t.contains("timed out")), "{texts:#?}");
}
