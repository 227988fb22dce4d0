//! The Business Hub simulator driven over HTTP with reqwest: the `kbh-sim` binary, auth, paging,
//! limits, control calls, and the raise/resolve cycle of an Office 365 issue.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use simulators::common::SimHandle;
use simulators::kbh::{self, Config};

const TOKEN: &str = "sim-token";

async fn start(config: Config) -> SimHandle {
    kbh::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap()
}

struct Api {
    http: Client,
    base: String,
}

impl Api {
    fn new(sim: &SimHandle) -> Self {
        Self { http: Client::new(), base: sim.base_url().to_owned() }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body, headers)
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, body, _) = self.get(path, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self.http.request(method, format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        let status = resp.status();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.send(reqwest::Method::POST, path, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn company(&self, id: &str, products: &[&str]) {
        self.post("/_sim/companies", json!({"id": id, "name": format!("Company {id}"), "products": products})).await;
    }
}

fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

#[tokio::test]
async fn binary_prints_its_address_and_serves_the_api() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kbh-sim"))
        .args(["--listen", "127.0.0.1:0", "--token", "bin-token", "--seed"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening on ").expect(&line).to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let http = Client::new();
    let resp = http.get(format!("{base}/api/v1/companies")).bearer_auth("bin-token").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let ids: Vec<&str> = body["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["c-7f3a", "c-91b2"]);
    assert_eq!(body["next_cursor"], Value::Null);
    // the default token is not accepted when another one is configured
    let resp = http.get(format!("{base}/api/v1/companies")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn authentication_failures_and_login() {
    let sim = start(Config::default()).await;
    let api = Api::new(&sim);

    let (status, body, _) = api.get("/api/v1/companies", None).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body, _) = api.get("/api/v1/companies", Some("wrong")).await;
    assert_error(status, &body, 401, "unauthorized");

    let (status, body) =
        api.send(reqwest::Method::POST, "/api/v1/auth/token", json!({"email":"msp@sim.local","password":"nope"})).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = api.send(reqwest::Method::POST, "/api/v1/auth/token", json!({"user":"x"})).await;
    assert_error(status, &body, 400, "bad_request");

    let login = api.post("/api/v1/auth/token", json!({"email":"msp@sim.local","password":"sim-password"})).await;
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 3600);
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, _, _) = api.get("/api/v1/companies", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);

    // expiry on the simulated clock
    api.post("/_sim/clock", json!({"advance_secs": 3601})).await;
    let (status, body, _) = api.get("/api/v1/companies", Some(&token)).await;
    assert_error(status, &body, 401, "unauthorized");
    assert_eq!(body["error"]["message"], "token expired");
    // the static token does not expire
    let (status, _, _) = api.get("/api/v1/companies", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);

    // explicit expiry
    let login = api.post("/api/v1/auth/token", json!({"email":"msp@sim.local","password":"sim-password"})).await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api.get("/api/v1/companies", Some(&token)).await.0, StatusCode::OK);
    assert_eq!(api.post("/_sim/auth/expire", json!({})).await["expired"], 2);
    assert_eq!(api.get("/api/v1/companies", Some(&token)).await.0, StatusCode::UNAUTHORIZED);

    // unknown endpoints answer the error body too
    let (status, body, _) = api.get("/api/v1/nothing", Some(TOKEN)).await;
    assert_error(status, &body, 404, "not_found");
}

#[tokio::test]
async fn paging_with_limit_and_cursor() {
    let sim = start(Config::default()).await;
    let api = Api::new(&sim);
    for i in 0..7 {
        api.company(&format!("c-{i}"), &["kes_cloud"]).await;
    }
    let mut ids = Vec::new();
    let mut path = "/api/v1/companies?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let body = api.ok(&path).await;
        pages += 1;
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        ids.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/companies?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(ids, (0..7).map(|i| format!("c-{i}")).collect::<Vec<_>>());
    assert_eq!(api.ok("/api/v1/companies").await["items"].as_array().unwrap().len(), 7);

    for bad in ["limit=0", "limit=501", "limit=x", "cursor=zzz"] {
        let (status, body, _) = api.get(&format!("/api/v1/companies?{bad}"), Some(TOKEN)).await;
        assert_error(status, &body, 400, "bad_request");
    }
    assert_eq!(api.ok("/api/v1/companies?limit=500").await["next_cursor"], Value::Null);
}

#[tokio::test]
async fn events_are_ordered_by_seq_and_page_with_after_seq() {
    let sim = start(Config::default()).await;
    let api = Api::new(&sim);
    api.company("c-1", &["kes_cloud", "ksmo365"]).await;
    api.company("c-2", &["ksmo365"]).await;
    api.put_device("c-1", "d-01", json!({"name":"PC-01","descriptions":[]})).await;
    let mut seqs = Vec::new();
    for (i, severity) in ["critical", "functional_failure", "warning", "info", "critical"].iter().enumerate() {
        let r = api
            .post(
                "/_sim/events",
                json!({"company":"c-1","product":"kes_cloud","severity":severity,"device":"d-01",
                       "occurred_at":"2026-11-20T09:10:11Z","text":format!("event {i}")}),
            )
            .await;
        seqs.push(r["seq"].as_u64().unwrap());
        assert_eq!(r["id"], format!("e-{}", r["seq"]));
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    let page = api.ok("/api/v1/companies/c-1/events?after_seq=0&limit=2").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let e = &items[0];
    assert_eq!(e["seq"], seqs[0]);
    assert_eq!(e["severity"], "Critical");
    assert_eq!(e["event_type"], "GNRL_EV_VIRUS_FOUND");
    assert_eq!(e["display_name"], "Malicious object detected");
    assert_eq!(e["device_id"], "d-01");
    assert_eq!(e["device_name"], "PC-01");
    assert_eq!(e["occurred_at"], "2026-11-20T09:10:11.000Z");
    assert_eq!(e["description"], "event 0");
    assert_eq!(items[1]["severity"], "FunctionalFailure");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();

    // cursor and after_seq both continue after the page
    let by_cursor = api.ok(&format!("/api/v1/companies/c-1/events?limit=2&cursor={cursor}")).await;
    let by_seq = api.ok(&format!("/api/v1/companies/c-1/events?after_seq={}&limit=2", seqs[1])).await;
    assert_eq!(by_cursor["items"], by_seq["items"]);
    assert_eq!(by_seq["items"][0]["severity"], "Warning");
    assert_eq!(by_seq["items"][1]["severity"], "Info");
    let last = api.ok(&format!("/api/v1/companies/c-1/events?after_seq={}", seqs[3])).await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert_eq!(last["next_cursor"], Value::Null);
    let none = api.ok(&format!("/api/v1/companies/c-1/events?after_seq={}", seqs[4])).await;
    assert_eq!(none["items"], json!([]));

    // Office 365 events
    let r = api
        .post(
            "/_sim/events",
            json!({"company":"c-1","product":"ksmo365","event_type":"malware_detected","mailbox":"ceo@acme.example","text":"EICAR"}),
        )
        .await;
    let o365 = api.ok("/api/v1/companies/c-1/o365/events?after_seq=0").await;
    let m = &o365["items"][0];
    assert_eq!(m["id"], r["id"]);
    assert_eq!(m["event_type"], "malware_detected");
    assert_eq!(m["display_name"], "Malware detected");
    assert_eq!(m["mailbox"], "ceo@acme.example");
    assert_eq!(m["description"], "EICAR");

    // errors
    let (status, body, _) = api.get("/api/v1/companies/c-1/events?after_seq=-1", Some(TOKEN)).await;
    assert_error(status, &body, 400, "bad_request");
    let (status, body, _) = api.get("/api/v1/companies/c-9/events", Some(TOKEN)).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body, _) = api.get("/api/v1/companies/c-2/events", Some(TOKEN)).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = api
        .send(reqwest::Method::POST, "/_sim/events", json!({"company":"c-1","product":"kes_cloud","severity":"dire"}))
        .await;
    assert_error(status, &body, 400, "bad_request");
}

/// An event that occurred `age_secs` before now but is posted (arrives) now.
async fn post_aged_event(api: &Api, company: &str, product: &str, age_secs: i64) -> (String, u64) {
    let occurred_at = chrono::Utc::now() - chrono::Duration::seconds(age_secs);
    let r = api
        .post(
            "/_sim/events",
            json!({"company":company,"product":product,"severity":"critical","event_type":"malware_detected",
                   "occurred_at":occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
        )
        .await;
    (r["id"].as_str().unwrap().to_owned(), r["seq"].as_u64().unwrap())
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn events_are_stored_in_arrival_order_whatever_their_event_time() {
    let sim = start(Config::default()).await;
    let api = Api::new(&sim);
    api.company("c-1", &["kes_cloud", "ksmo365"]).await;
    for list in ["events", "o365/events"] {
        let product = if list == "events" { "kes_cloud" } else { "ksmo365" };
        let (now_id, now_seq) = post_aged_event(&api, "c-1", product, 0).await;
        // an offline device delivers an event that happened 23 h ago: it arrives later, so it
        // gets the higher seq and sorts after the earlier arrival
        let (late_id, late_seq) = post_aged_event(&api, "c-1", product, 23 * 3600).await;
        assert!(late_seq > now_seq);
        let page = api.ok(&format!("/api/v1/companies/c-1/{list}?after_seq={}", now_seq - 1)).await;
        assert_eq!(ids(&page), [now_id, late_id.clone()]);
        let after = api.ok(&format!("/api/v1/companies/c-1/{list}?after_seq={now_seq}")).await;
        assert_eq!(ids(&after), [late_id]);
    }
}

#[tokio::test]
async fn occurred_after_leaves_out_events_that_happened_earlier() {
    let sim = start(Config::default()).await;
    let api = Api::new(&sim);
    api.company("c-1", &["kes_cloud", "ksmo365"]).await;
    for list in ["events", "o365/events"] {
        let product = if list == "events" { "kes_cloud" } else { "ksmo365" };
        let mut inside = Vec::new();
        let mut first_seq = None;
        for age_h in [48, 1, 25, 23, 0] {
            let (id, seq) = post_aged_event(&api, "c-1", product, age_h * 3600).await;
            first_seq.get_or_insert(seq);
            if age_h < 24 {
                inside.push(id);
            }
        }
        let window =
            (chrono::Utc::now() - chrono::Duration::hours(24)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let after = first_seq.unwrap() - 1;
        let page = api.ok(&format!("/api/v1/companies/c-1/{list}?after_seq={after}&occurred_after={window}")).await;
        assert_eq!(ids(&page), inside, "{list}");
        // paging continues over the filtered list
        let first =
            api.ok(&format!("/api/v1/companies/c-1/{list}?after_seq={after}&occurred_after={window}&limit=2")).await;
        assert_eq!(ids(&first), inside[..2]);
        let cursor = first["next_cursor"].as_str().unwrap();
        let rest =
            api.ok(&format!("/api/v1/companies/c-1/{list}?cursor={cursor}&occurred_after={window}&limit=2")).await;
        assert_eq!(ids(&rest), inside[2..]);
        assert_eq!(rest["next_cursor"], Value::Null);
    }
    let (status, body, _) = api.get("/api/v1/companies/c-1/events?occurred_after=yesterday", Some(TOKEN)).await;
    assert_error(status, &body, 400, "bad_request");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_per_token() {
    let sim = start(Config { requests_per_minute: 3, ..Config::default() }).await;
    let api = Api::new(&sim);
    for _ in 0..3 {
        assert_eq!(api.get("/api/v1/companies", Some(TOKEN)).await.0, StatusCode::OK);
    }
    let (status, body, headers) = api.get("/api/v1/companies", Some(TOKEN)).await;
    assert_error(status, &body, 429, "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    // another token has its own budget
    let login = api.post("/api/v1/auth/token", json!({"email":"msp@sim.local","password":"sim-password"})).await;
    let other = login["access_token"].as_str().unwrap().to_owned();
    assert_eq!(api.get("/api/v1/companies", Some(&other)).await.0, StatusCode::OK);

    // a minute later the budget is back
    api.post("/_sim/clock", json!({"advance_secs": 61})).await;
    assert_eq!(api.get("/api/v1/companies", Some(TOKEN)).await.0, StatusCode::OK);
}

impl Api {
    async fn put_device(&self, company: &str, device: &str, body: Value) -> Value {
        let (status, body) = self.send(reqwest::Method::PUT, &format!("/_sim/devices/{company}/{device}"), body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

#[tokio::test]
async fn device_control_and_status_following_descriptions() {
    let sim = start(Config::default()).await;
    let api = Api::new(&sim);
    api.company("c-1", &["kes_cloud"]).await;
    api.put_device(
        "c-1",
        "d-01",
        json!({"name":"ACME-PC-01","descriptions":["databases_out_of_date","many_viruses_detected"]}),
    )
    .await;
    api.put_device(
        "c-1",
        "d-02",
        json!({"name":"ACME-PC-02","os":"macOS","descriptions":["license_expired",
               {"code":"cosmic_rays","text":"Cosmic rays detected","status":"Warning"}, "new_thing"]}),
    )
    .await;
    api.put_device("c-1", "d-03", json!({"name":"ACME-PC-03"})).await;

    let devices = api.ok("/api/v1/companies/c-1/devices").await;
    let items = devices["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["status"], "Warning");
    assert_eq!(
        items[0]["status_descriptions"],
        json!([{"code":"databases_out_of_date","text":"Databases are out of date","status":"Warning"},
               {"code":"many_viruses_detected","text":"Many viruses detected","status":"Warning"}])
    );
    assert_eq!(items[0]["os"], "Windows 11");
    assert!(items[0]["last_seen"].as_str().unwrap().ends_with('Z'));
    assert_eq!(items[1]["status"], "Critical");
    assert_eq!(items[1]["os"], "macOS");
    assert_eq!(items[1]["status_descriptions"][0]["status"], "Critical");
    assert_eq!(items[1]["status_descriptions"][1]["text"], "Cosmic rays detected");
    assert_eq!(items[1]["status_descriptions"][2], json!({"code":"new_thing","text":"new_thing","status":"Warning"}));
    assert_eq!(items[2]["status"], "OK");
    assert_eq!(items[2]["status_descriptions"], json!([]));

    // clearing one description; deleting a device
    api.put_device("c-1", "d-01", json!({"descriptions":["many_viruses_detected"]})).await;
    let (status, _) = api.send(reqwest::Method::DELETE, "/_sim/devices/c-1/d-03", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let items = api.ok("/api/v1/companies/c-1/devices?limit=1").await;
    assert_eq!(items["items"][0]["name"], "ACME-PC-01");
    assert_eq!(items["items"][0]["status_descriptions"].as_array().unwrap().len(), 1);
    let page2 = api
        .ok(&format!("/api/v1/companies/c-1/devices?limit=1&cursor={}", items["next_cursor"].as_str().unwrap()))
        .await;
    assert_eq!(page2["items"][0]["id"], "d-02");
    assert_eq!(page2["next_cursor"], Value::Null);

    let (status, body) = api.send(reqwest::Method::PUT, "/_sim/devices/c-9/d-01", json!({})).await;
    assert_error(status, &body, 404, "not_found");
}

#[tokio::test]
async fn journal_faults_and_reset() {
    let sim = start(Config::default()).await;
    let api = Api::new(&sim);
    api.company("c-1", &["kes_cloud"]).await;
    api.post(
        "/_sim/faults",
        json!({"path_regex":"/devices$","status":503,
        "body":{"error":{"code":"unavailable","message":"maintenance"}},"count":1}),
    )
    .await;
    let (status, body, _) = api.get("/api/v1/companies/c-1/devices", Some(TOKEN)).await;
    assert_error(status, &body, 503, "unavailable");
    assert_eq!(api.get("/api/v1/companies/c-1/devices", Some(TOKEN)).await.0, StatusCode::OK);

    let journal: Value = Client::new()
        .get(format!("{}/_sim/requests?detail=true", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = journal.as_array().unwrap();
    // control calls are not journaled
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["method"], "GET");
    assert_eq!(entries[0]["path"], "/api/v1/companies/c-1/devices");
    assert_eq!(entries[0]["status"], 503);
    assert_eq!(entries[1]["status"], 200);
    assert_eq!(entries[1]["headers"]["authorization"], format!("Bearer {TOKEN}"));

    api.post("/_sim/reset", json!({})).await;
    assert_eq!(api.ok("/api/v1/companies").await["items"], json!([]));
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn reset_returns_to_the_seeded_demo() {
    let sim = start(Config { seed_demo: true, ..Config::default() }).await;
    let api = Api::new(&sim);
    let before = api.ok("/api/v1/companies/c-7f3a/events").await;
    assert_eq!(before["items"].as_array().unwrap().len(), 1);
    api.company("c-extra", &[]).await;
    api.post("/_sim/reset", json!({})).await;
    assert_eq!(api.ok("/api/v1/companies").await["items"].as_array().unwrap().len(), 2);
    let after = api.ok("/api/v1/companies/c-7f3a/events").await;
    assert_eq!(after["items"][0]["id"], before["items"][0]["id"]);
    assert_eq!(api.ok("/api/v1/companies/c-7f3a/devices").await["items"][0]["status"], "Warning");
}

#[tokio::test]
async fn issue_raise_and_resolve() {
    let sim = start(Config::default()).await;
    let api = Api::new(&sim);
    api.company("c-1", &["ksmo365"]).await;
    let raised = api
        .post(
            "/_sim/o365/issues",
            json!({"company":"c-1","type":"mailboxes_protection_not_provided","active":true,
                   "message":"The application cannot connect to Exchange Online."}),
        )
        .await;
    assert_eq!(raised["active"], true);
    let event_seq = raised["event"]["seq"].as_u64().unwrap();

    let issues = api.ok("/api/v1/companies/c-1/o365/issues").await;
    let issue = &issues["items"][0];
    assert_eq!(issue["type"], "mailboxes_protection_not_provided");
    assert_eq!(issue["active"], true);
    assert!(issue["since"].as_str().unwrap().ends_with('Z'));
    assert_eq!(issue["resolved_at"], Value::Null);
    assert_eq!(issue["message"], "The application cannot connect to Exchange Online.");

    // the raise appears once in o365/events
    let events = api.ok("/api/v1/companies/c-1/o365/events").await;
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["seq"], event_seq);
    assert_eq!(items[0]["event_type"], "mailboxes_protection_not_provided");
    assert_eq!(items[0]["display_name"], "Mailboxes protection is not provided");
    assert_eq!(items[0]["description"], "The application cannot connect to Exchange Online.");

    // raising a standing issue again records no second event
    let again =
        api.post("/_sim/o365/issues", json!({"company":"c-1","type":"mailboxes_protection_not_provided"})).await;
    assert_eq!(again["event"], Value::Null);
    assert_eq!(api.ok("/api/v1/companies/c-1/o365/events").await["items"].as_array().unwrap().len(), 1);

    // resolve, with the synonym
    let resolved = api
        .post("/_sim/o365/issues", json!({"company":"c-1","type":"mailboxes_protection_not_provided","resolved":true}))
        .await;
    assert_eq!(resolved["active"], false);
    let issue = &api.ok("/api/v1/companies/c-1/o365/issues").await["items"][0];
    assert_eq!(issue["active"], false);
    assert!(issue["resolved_at"].as_str().unwrap().ends_with('Z'));

    // a new raise is a new event
    let raised = api
        .post("/_sim/o365/issues", json!({"company":"c-1","type":"mailboxes_protection_not_provided","active":true}))
        .await;
    assert!(raised["event"]["seq"].as_u64().unwrap() > event_seq);
    let issue = &api.ok("/api/v1/companies/c-1/o365/issues").await["items"][0];
    assert_eq!(issue["active"], true);
    assert_eq!(issue["resolved_at"], Value::Null);
    assert_eq!(api.ok("/api/v1/companies/c-1/o365/events").await["items"].as_array().unwrap().len(), 2);

    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/_sim/o365/issues",
            json!({"company":"c-1","type":"license_issue","active":true,"resolved":true}),
        )
        .await;
    assert_error(status, &body, 400, "bad_request");
    let (status, body) =
        api.send(reqwest::Method::POST, "/_sim/o365/issues", json!({"company":"c-404","type":"license_issue"})).await;
    assert_error(status, &body, 404, "not_found");
    // resolving what was never raised is an error, not a phantom issue
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/_sim/o365/issues",
            json!({"company":"c-1","type":"license_issue","active":false}),
        )
        .await;
    assert_error(status, &body, 404, "not_found");
    assert_eq!(api.ok("/api/v1/companies/c-1/o365/issues").await["items"].as_array().unwrap().len(), 1);
}
