//! Pagination over 1,200 rows in both modes, and the allow-list on `nextPageUrl`.

use std::sync::Mutex;

use autotask_client::models::Company;
use autotask_client::{ClientBuilder, Error, Filter, PagingMode, Query};
use futures::StreamExt;
use serde_json::{Value, json};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

use crate::common::{api, builder_for};

const ROWS: i64 = 1200;

fn row(id: i64) -> Value {
    json!({"id": id, "companyName": format!("Company {id}"), "isActive": id % 7 != 0, "userDefinedFields": []})
}

/// Serves ids 1..=1200 honouring a trailing `{"op":"gt","field":"id","value":N}` filter.
struct Keyset {
    bodies: Mutex<Vec<Value>>,
}

impl Respond for Keyset {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        self.bodies.lock().unwrap().push(body.clone());
        let after = body["filter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["op"] == "gt" && f["field"] == "id")
            .map_or(0, |f| f["value"].as_i64().unwrap());
        let size = body["MaxRecords"].as_i64().unwrap_or(500);
        let items: Vec<Value> = ((after + 1)..=ROWS).take(size as usize).map(row).collect();
        ResponseTemplate::new(200).set_body_json(json!({"items": items, "pageDetails": {"count": items.len(),
            "requestCount": size, "prevPageUrl": null, "nextPageUrl": null}}))
    }
}

#[tokio::test]
async fn keyset_paging_over_1200_rows() {
    let server = MockServer::start().await;
    let responder = std::sync::Arc::new(Keyset { bodies: Mutex::new(Vec::new()) });
    api("POST", "Companies/query").respond_with(ArcResponder(responder.clone())).expect(3).mount(&server).await;
    let c = builder_for(&server.uri()).build().unwrap();
    let all = c.companies().await.unwrap();
    assert_eq!(all.len(), 1200);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(all.last().unwrap().id, Some(1200));
    let bodies = responder.bodies.lock().unwrap();
    assert_eq!(
        bodies[0],
        json!({"filter":[{"op":"gte","field":"id","value":0}],"IncludeFields":["id","companyName","isActive"]})
    );
    assert_eq!(
        bodies[1],
        json!({"filter":[{"op":"gte","field":"id","value":0},{"op":"gt","field":"id","value":500}],
        "IncludeFields":["id","companyName","isActive"]})
    );
    assert_eq!(bodies[2]["filter"][1]["value"], 1000);
}

#[tokio::test]
async fn keyset_paging_as_stream_with_small_pages() {
    let server = MockServer::start().await;
    let responder = std::sync::Arc::new(Keyset { bodies: Mutex::new(Vec::new()) });
    // 1200 rows / 400 per page = 3 full pages, then an empty one ends the stream
    api("POST", "Companies/query").respond_with(ArcResponder(responder.clone())).expect(4).mount(&server).await;
    let c = builder_for(&server.uri()).build().unwrap();
    let stream = c.query_stream::<Company>(Query::all().max_records(400));
    let rows: Vec<_> = stream.collect().await;
    assert_eq!(rows.len(), 1200);
    assert!(rows.iter().all(Result::is_ok));
}

struct ArcResponder<R>(std::sync::Arc<R>);
impl<R: Respond> Respond for ArcResponder<R> {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.0.respond(req)
    }
}

/// Serves pages via `nextPageUrl` (`/Companies/query/next?paging=N`), checking the body is the
/// same on every POST.
struct NextUrl {
    base: String,
    first_body: Mutex<Option<Value>>,
    same_body: Mutex<bool>,
}

impl Respond for NextUrl {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let mut first = self.first_body.lock().unwrap();
        match first.as_ref() {
            None => *first = Some(body),
            Some(b) => *self.same_body.lock().unwrap() &= *b == body,
        }
        let page: i64 = req.url.query_pairs().find(|(k, _)| k == "paging").map_or(0, |(_, v)| v.parse().unwrap());
        let start = page * 500 + 1;
        let items: Vec<Value> = (start..=ROWS).take(500).map(row).collect();
        let next = if start + 500 <= ROWS {
            Value::String(format!("{}/ATServicesRest/V1.0/Companies/query/next?paging={}", self.base, page + 1))
        } else {
            Value::Null
        };
        ResponseTemplate::new(200).set_body_json(json!({"items": items, "pageDetails": {"count": items.len(),
            "requestCount": 500, "prevPageUrl": null, "nextPageUrl": next}}))
    }
}

#[tokio::test]
async fn next_page_url_paging_reposts_the_same_body() {
    let server = MockServer::start().await;
    let responder =
        std::sync::Arc::new(NextUrl { base: server.uri(), first_body: Mutex::new(None), same_body: Mutex::new(true) });
    api("POST", "Companies/query").respond_with(ArcResponder(responder.clone())).expect(1).mount(&server).await;
    api("POST", "Companies/query/next").respond_with(ArcResponder(responder.clone())).expect(2).mount(&server).await;
    let c: ClientBuilder = builder_for(&server.uri()).paging(PagingMode::NextPageUrl);
    let c = c.build().unwrap();
    let q = Query::new().filter(Filter::eq("isActive", true));
    let all: Vec<Company> = c.query_all(q).await.unwrap();
    assert_eq!(all.len(), 1200);
    assert!(*responder.same_body.lock().unwrap(), "every page POSTs the original body");
    assert_eq!(
        responder.first_body.lock().unwrap().clone().unwrap(),
        json!({"filter":[{"op":"eq","field":"isActive","value":true}]})
    );
}

#[tokio::test]
async fn next_page_url_on_foreign_host_is_refused() {
    let server = MockServer::start().await;
    api("POST", "Companies/query")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items":[row(1)],"pageDetails":{"count":1,
            "requestCount":500,"prevPageUrl":null,
            "nextPageUrl":"https://evil.example.com/ATServicesRest/V1.0/Companies/query/next?paging=x"}})))
        .expect(1)
        .mount(&server)
        .await;
    let c = builder_for(&server.uri()).paging(PagingMode::NextPageUrl).build().unwrap();
    let err = c.query_all::<Company>(Query::all()).await.unwrap_err();
    assert!(matches!(err, Error::HostNotAllowed { .. }), "{err:?}");
}
