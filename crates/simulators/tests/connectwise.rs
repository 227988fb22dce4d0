//! The ConnectWise simulator driven over HTTP (design note `connectwise-api.md`).

use base64::Engine as _;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use simulators::common::SimHandle;
use simulators::connectwise::{self, Config};

const ACME: i64 = 19300;

struct Sim {
    h: SimHandle,
    c: Client,
}

fn basic(user: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user))
}

impl Sim {
    async fn start() -> Self {
        let h = connectwise::start("127.0.0.1:0".parse().unwrap(), Config::default()).await.unwrap();
        Self { h, c: Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v4_6_release/apis/3.0/{path}", self.h.base_url())
    }

    fn authed(&self, m: Method, url: &str) -> reqwest::RequestBuilder {
        self.c
            .request(m, url)
            .header("Authorization", basic("simcompany+simpublic:simprivate"))
            .header("clientId", "test-client")
            .header("Accept", "application/vnd.connectwise.com+json; version=2025.1")
    }

    async fn call(&self, m: Method, path: &str, body: Option<Value>) -> (StatusCode, Value, Option<String>) {
        let mut r = self.authed(m, &self.url(path));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let link = resp.headers().get("link").map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }, link)
    }

    async fn create(&self, summary: &str, xref: &str) -> Value {
        let (s, t, _) = self
            .call(
                Method::POST,
                "service/tickets",
                Some(json!({"summary": summary, "company": {"id": ACME}, "board": {"id": 1}, "externalXRef": xref,
                    "initialDescription": "first line\nmsp-ticketing key: x"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        t
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let r = self.c.post(format!("{}/_sim/{path}", self.h.base_url())).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200, "control {path}");
        r.json().await.unwrap()
    }
}

#[tokio::test]
async fn companyinfo_answers_the_codebase_without_credentials() {
    let sim = Sim::start().await;
    let v: Value = sim
        .c
        .get(format!("{}/login/companyinfo/SIMCOMPANY", sim.h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["Codebase"], "v4_6_release/");
    assert_eq!(v["IsCloud"], "False");
    let unknown = sim.c.get(format!("{}/login/companyinfo/other", sim.h.base_url())).send().await.unwrap();
    assert_eq!(unknown.text().await.unwrap(), "null");
}

#[tokio::test]
async fn auth_needs_basic_credentials_and_a_client_id() {
    let sim = Sim::start().await;
    let r = sim.c.get(sim.url("service/boards")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = sim
        .c
        .get(sim.url("service/boards"))
        .header("Authorization", basic("simcompany+simpublic:wrong"))
        .header("clientId", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = sim
        .c
        .get(sim.url("service/boards"))
        .header("Authorization", basic("simcompany+simpublic:simprivate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("clientId"), "{body}");
    let (s, boards, _) = sim.call(Method::GET, "service/boards", None).await;
    assert_eq!(s, 200);
    assert_eq!(boards.as_array().unwrap().len(), 3);
    // paths are case-insensitive, an unknown codebase is not served
    let (s, _, _) = sim.call(Method::GET, "Service/Boards/1/Statuses", None).await;
    assert_eq!(s, 200);
    let r =
        sim.authed(Method::GET, &format!("{}/v2017_3/apis/3.0/service/boards", sim.h.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn create_validates_summary_company_and_board_fields() {
    let sim = Sim::start().await;
    let long = "x".repeat(101);
    for (body, field) in [
        (json!({"summary": long, "company": {"id": ACME}}), "summary"),
        (json!({"summary": "ok"}), "company"),
        (json!({"summary": "ok", "company": {"id": 19302}}), "company"),
        (json!({"summary": "ok", "company": {"id": ACME}, "board": {"id": 1}, "status": {"id": 20}}), "status"),
        (json!({"summary": "ok", "company": {"id": ACME}, "board": {"id": 1}, "type": {"id": 200}}), "type"),
        (
            json!({"summary": "ok", "company": {"id": ACME}, "board": {"id": 1}, "type": {"id": 100}, "subType": {"id": 111}}),
            "subType",
        ),
        (json!({"summary": "ok", "company": {"id": ACME}, "externalXRef": "k".repeat(101)}), "externalXRef"),
        (json!({"summary": "ok", "company": {"id": ACME}, "board": {"id": 3}}), "board"),
    ] {
        let (s, v, _) = sim.call(Method::POST, "service/tickets", Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v["errors"][0]["field"], field, "{v}");
    }
    let t = sim.create(&"y".repeat(100), "kmsp-1").await;
    assert_eq!(t["status"]["id"], 10, "the board's default status");
    assert_eq!(t["closedFlag"], false);
    assert!(t.get("initialDescription").is_none(), "write only");
    let notes: Value =
        sim.c.get(format!("{}/_sim/notes", sim.h.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(notes[0]["detailDescriptionFlag"], true);
    assert_eq!(notes[0]["ticketId"], t["id"]);
}

#[tokio::test]
async fn conditions_filter_and_unsupported_ones_answer_400() {
    let sim = Sim::start().await;
    sim.create("one", "kmsp-a").await;
    sim.create("two", "kmsp-b").await;
    sim.create("three", "other").await;
    let q = |c: &str| {
        format!("service/tickets?conditions={}", url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>())
    };
    let (s, v, _) = sim.call(Method::GET, &q(r#"externalXRef = "KMSP-A""#), None).await;
    assert_eq!((s, v.as_array().unwrap().len()), (StatusCode::OK, 1));
    let (_, v, _) = sim.call(Method::GET, &q(r#"externalXRef like "kmsp-%" AND closedFlag = False"#), None).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v, _) = sim.call(Method::GET, &q("id in (5001,5003)"), None).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    for bad in ["nosuchfield = 1", "id ~ 3", r#"summary = "open"#, "closedFlag = \"yes\""] {
        let (s, v, _) = sim.call(Method::GET, &q(bad), None).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (s, v, _) = sim.call(Method::POST, "service/tickets/search", Some(json!({"conditions": "id >= 5002"}))).await;
    assert_eq!((s, v.as_array().unwrap().len()), (StatusCode::OK, 2));
    let (_, v, _) = sim.call(Method::GET, "service/tickets/count?conditions=id%20%3E%205001", None).await;
    assert_eq!(v["count"], 2);
}

#[tokio::test]
async fn numbered_and_forward_only_paging_with_link_headers() {
    let sim = Sim::start().await;
    for i in 0..5 {
        sim.create(&format!("t{i}"), &format!("kmsp-{i}")).await;
    }
    let (_, v, link) = sim.call(Method::GET, "service/tickets?page=1&pageSize=2&fields=id,summary", None).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0].as_object().unwrap().len(), 2, "fields= answers partial rows");
    let link = link.unwrap();
    assert!(link.contains("rel=\"next\"") && link.contains("page=2") && link.contains("rel=\"last\""), "{link}");
    let (_, v, link) = sim.call(Method::GET, "service/tickets?page=3&pageSize=2", None).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(!link.unwrap().contains("rel=\"next\""));

    let fo = |url: String| sim.authed(Method::GET, &url).header("pagination-type", "forward-only");
    let r = fo(sim.url("service/tickets?pageSize=2")).send().await.unwrap();
    let next = r.headers()["link"].to_str().unwrap().to_owned();
    assert!(next.contains("pageId=5002"), "{next}");
    let mut ids: Vec<i64> = r.json::<Vec<Value>>().await.unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    let mut url = next.split(['<', '>']).nth(1).unwrap().to_owned();
    loop {
        let r = fo(url.clone()).send().await.unwrap();
        let link = r.headers().get("link").map(|v| v.to_str().unwrap().to_owned());
        ids.extend(r.json::<Vec<Value>>().await.unwrap().iter().map(|t| t["id"].as_i64().unwrap()));
        match link {
            Some(l) => url = l.split(['<', '>']).nth(1).unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!(ids, vec![5001, 5002, 5003, 5004, 5005]);
    let r = fo(sim.url("service/tickets?orderBy=id%20desc")).send().await.unwrap();
    assert_eq!(r.status(), 400, "no orderBy forward-only");
}

#[tokio::test]
async fn json_patch_closes_and_a_sub_path_is_a_false_200() {
    let sim = Sim::start().await;
    let t = sim.create("close me", "kmsp-c").await;
    let id = t["id"].as_i64().unwrap();
    let path = format!("service/tickets/{id}");
    let (s, _, _) = sim.call(Method::PATCH, &path, Some(json!({"status": {"id": 12}}))).await;
    assert_eq!(s, 400, "not a JSON Patch array");
    let (s, v, _) = sim.call(Method::PATCH, &path, Some(json!([{"op":"replace","path":"status/id","value":12}]))).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"]["id"], 10, "false 200: nothing changed");
    let (s, _, _) =
        sim.call(Method::PATCH, &path, Some(json!([{"op":"replace","path":"status","value":{"id":22}}]))).await;
    assert_eq!(s, 400, "a status of another board");
    let (s, v, _) =
        sim.call(Method::PATCH, &path, Some(json!([{"op":"replace","path":"status","value":{"id":12}}]))).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"]["id"], 12);
    assert_eq!(v["closedFlag"], true);
    assert!(v["closedDate"].is_string());
}

/// The ticket lifecycle's updates: reopen a closed ticket, raise priority and due in one
/// array, repeat it; an invalid operation applies none of the array.
#[tokio::test]
async fn json_patch_reopens_and_updates_priority_and_required_date() {
    let sim = Sim::start().await;
    let t = sim.create("reopen me", "kmsp-r").await;
    let id = t["id"].as_i64().unwrap();
    let path = format!("service/tickets/{id}");
    let replace = |p: &str, v: Value| json!({"op":"replace","path":p,"value":v});
    let (s, v, _) = sim.call(Method::PATCH, &path, Some(json!([replace("status", json!({"id":12}))]))).await;
    assert_eq!((s.as_u16(), v["closedFlag"].clone()), (200, json!(true)));

    let (s, v, _) = sim.call(Method::PATCH, &path, Some(json!([replace("status", json!({"id":10}))]))).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"]["id"], 10);
    assert_eq!(
        (v["closedFlag"].clone(), v["closedDate"].clone(), v["closedBy"].clone()),
        (json!(false), Value::Null, Value::Null)
    );

    let ops = json!([replace("priority", json!({"id":1})), replace("requiredDate", json!("2030-01-15T21:00:00Z"))]);
    for _ in 0..2 {
        let (s, v, _) = sim.call(Method::PATCH, &path, Some(ops.clone())).await;
        assert_eq!(s, 200);
        assert_eq!(v["priority"], json!({"id":1,"name":"Critical"}));
        assert_eq!(v["requiredDate"], "2030-01-15T21:00:00Z");
        assert_eq!(v["status"]["id"], 10);
    }

    // refusals in the create's error shape; the valid first op of a refused array is not applied
    let bad = json!([replace("priority", json!({"id":4})), replace("requiredDate", json!("tomorrow"))]);
    let (s, v, _) = sim.call(Method::PATCH, &path, Some(bad)).await;
    assert_eq!(
        (s.as_u16(), v["code"].clone(), v["errors"][0]["field"].clone()),
        (400, json!("InvalidObject"), json!("requiredDate"))
    );
    let (s, v, _) = sim.call(Method::PATCH, &path, Some(json!([replace("priority", json!({"id":99}))]))).await;
    assert_eq!((s.as_u16(), v["errors"][0]["field"].clone()), (400, json!("priority")));
    let (s, _, _) = sim.call(Method::PATCH, &path, Some(json!([replace("closedFlag", json!(false))]))).await;
    assert_eq!(s, 400, "an unknown or read-only path");
    let (s, v, _) =
        sim.call(Method::PATCH, "service/tickets/987654", Some(json!([replace("priority", json!({"id":1}))]))).await;
    assert_eq!((s.as_u16(), v["code"].clone()), (404, json!("NotFound")));
    let (_, v, _) = sim.call(Method::GET, &path, None).await;
    assert_eq!(v["priority"]["id"], 1, "nothing of a refused array applied");
}

#[tokio::test]
async fn notes_need_text_and_a_kind() {
    let sim = Sim::start().await;
    let t = sim.create("noted", "kmsp-n").await;
    let path = format!("service/tickets/{}/notes", t["id"]);
    let (s, _, _) = sim.call(Method::POST, &path, Some(json!({"text": "x"}))).await;
    assert_eq!(s, 400);
    let (s, n, _) = sim
        .call(Method::POST, &path, Some(json!({"text": "closed\n[kmsp-n/close]", "internalAnalysisFlag": true})))
        .await;
    assert_eq!(s, 201, "{n}");
    let q = format!(
        "{path}?conditions={}",
        url::form_urlencoded::byte_serialize(br#"text contains "[kmsp-n/close]""#).collect::<String>()
    );
    let (_, v, _) = sim.call(Method::GET, &q, None).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (s, _, _) = sim.call(Method::GET, "service/tickets/99999/notes", None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn control_api_throttle_lost_answers_technician_and_companies() {
    let sim = Sim::start().await;
    sim.control("throttle", json!({"count": 2, "retry_after_secs": 7})).await;
    for _ in 0..2 {
        let r = sim.authed(Method::GET, &sim.url("service/boards")).send().await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"], "ConnectWiseAPI");
    }
    let (s, _, _) = sim.call(Method::GET, "service/boards", None).await;
    assert_eq!(s, 200);

    sim.control("lose_answers", json!({"method": "POST", "path_regex": "tickets$", "status": 504})).await;
    let r = sim
        .authed(Method::POST, &sim.url("service/tickets"))
        .json(&json!({"summary": "lost", "company": {"id": ACME}, "externalXRef": "kmsp-lost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let all: Value =
        sim.c.get(format!("{}/_sim/tickets", sim.h.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(all[0]["externalXRef"], "kmsp-lost", "processed although the answer was lost");

    let id = all[0]["id"].as_i64().unwrap();
    let v = sim.control(&format!("tickets/{id}/status"), json!({"status": 12})).await;
    assert_eq!(v["closedFlag"], true);
    assert_eq!(v["closedBy"], "technician");

    sim.control("companies", json!({"id": ACME, "status": "Inactive"})).await;
    let (_, c, _) = sim.call(Method::GET, &format!("company/companies/{ACME}"), None).await;
    assert_eq!(c["status"]["name"], "Inactive");

    let r = sim.c.delete(format!("{}/_sim/tickets/{id}", sim.h.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (s, _, _) = sim.call(Method::GET, &format!("service/tickets/{id}"), None).await;
    assert_eq!(s, 404);
    sim.c.post(format!("{}/_sim/reset", sim.h.base_url())).send().await.unwrap();
    let (_, c, _) = sim.call(Method::GET, &format!("company/companies/{ACME}"), None).await;
    assert_eq!(c["status"]["name"], "Active");
}
