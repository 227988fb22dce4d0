//! The Security Center simulator driven over HTTP with reqwest: sessions, errors, virtual
//! servers, event iterators, host accessors, group masks and the control API.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use simulators::common::SimHandle;
use simulators::ksc::{self, Config};

struct Client {
    http: reqwest::Client,
    base: String,
}

struct Answer {
    status: u16,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not json: {}", self.text))
    }
}

fn kscbasic(user: &str, pass: &str) -> String {
    format!("KSCBasic user=\"{}\", pass=\"{}\", domain=\"\", internal=\"1\"", B64.encode(user), B64.encode(pass))
}

impl Client {
    fn new(h: &SimHandle) -> Self {
        Self { http: reqwest::Client::new(), base: h.base_url().to_owned() }
    }

    async fn send(&self, method: &str, headers: &[(&str, String)], body: Value) -> Answer {
        let mut req = self.http.post(format!("{}/api/v1.0/{method}", self.base)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        Answer { status, text: resp.text().await.unwrap() }
    }

    async fn login_as(&self, user: &str, pass: &str, vserver: &str) -> Answer {
        self.send(
            "Session.StartSession",
            &[("Authorization", kscbasic(user, pass)), ("X-KSC-VServer", B64.encode(vserver))],
            json!({}),
        )
        .await
    }

    async fn login(&self, vserver: &str) -> String {
        let a = self.login_as("ksc-admin", "ksc-secret", vserver).await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json()["PxgRetVal"].as_str().unwrap().to_owned()
    }

    async fn call(&self, session: &str, method: &str, body: Value) -> Answer {
        self.send(method, &[("X-KSC-Session", session.to_owned())], body).await
    }

    async fn ok(&self, session: &str, method: &str, body: Value) -> Value {
        let a = self.call(session, method, body).await;
        assert_eq!(a.status, 200, "{method}: {}", a.text);
        a.json()
    }

    async fn control(&self, verb: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let resp = self.http.request(verb, format!("{}{path}", self.base)).json(&body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn event(&self, vserver: i64, severity: &str, at: &str, host: &str) -> i64 {
        let (s, v) = self
            .control(
                reqwest::Method::POST,
                "/_sim/events",
                json!({"vserver": vserver, "severity": severity, "event_type": "GNRL_EV_VIRUS_FOUND",
                       "host": host, "occurred_at": at, "text": format!("{severity} on {host}")}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["id"].as_i64().unwrap()
    }

    async fn host(&self, vserver: i64, host: &str, body: Value) -> Value {
        let (s, v) = self.control(reqwest::Method::PUT, &format!("/_sim/hosts/{vserver}/{host}"), body).await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

async fn sim() -> (SimHandle, Client) {
    let h = ksc::start("127.0.0.1:0".parse().unwrap(), Config::default()).await.unwrap();
    let c = Client::new(&h);
    (h, c)
}

fn pxg_error(a: &Answer) -> Value {
    assert_eq!(a.status, 500, "{}", a.text);
    a.json()["PxgError"].clone()
}

#[tokio::test]
async fn binary_prints_its_address_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksc-sim"))
        .args(["--listen", "127.0.0.1:0", "--user", "alice", "--password", "pw", "--session-idle-secs", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let c = Client { http: reqwest::Client::new(), base: url };
    assert_eq!(c.login_as("alice", "pw", "").await.status, 200);
    assert_eq!(c.login_as("ksc-admin", "ksc-secret", "").await.status, 401);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn sessions_bad_credentials_and_expiry() {
    let (_h, c) = sim().await;
    let bad = c.login_as("ksc-admin", "wrong", "").await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.text, "Authentication failed");
    let none = c.send("Session.StartSession", &[], json!({})).await;
    assert_eq!(none.status, 401);
    assert_eq!(c.login_as("ksc-admin", "ksc-secret", "no such vserver").await.status, 401);

    let s = c.login("").await;
    assert_eq!(c.ok(&s, "Session.Ping", json!({})).await, json!({}));
    assert_eq!(c.call("bogus", "Session.Ping", json!({})).await.status, 403);
    assert_eq!(c.send("Session.Ping", &[], json!({})).await.status, 403);

    // Idle expiry on the simulated clock: just under 1800 s is still fine, more is not.
    c.control(reqwest::Method::POST, "/_sim/clock", json!({"advance_secs": 1799})).await;
    assert_eq!(c.call(&s, "Session.Ping", json!({})).await.status, 200);
    c.control(reqwest::Method::POST, "/_sim/clock", json!({"advance_secs": 1801})).await;
    let expired = c.call(&s, "Session.Ping", json!({})).await;
    assert_eq!(expired.status, 403);
    assert_eq!(expired.text, "Forbidden");

    let s = c.login("").await;
    assert_eq!(c.ok(&s, "Session.EndSession", json!({})).await, json!({}));
    assert_eq!(c.call(&s, "Session.Ping", json!({})).await.status, 403);

    let s = c.login("").await;
    let unknown = pxg_error(&c.call(&s, "Foo.Bar", json!({})).await);
    assert!(unknown["message"].as_str().unwrap().contains("Foo.Bar"));
    assert_eq!(unknown["module"], "KLSTD");
}

#[tokio::test]
async fn virtual_servers_scope_sessions() {
    let (_h, c) = sim().await;
    let (s, v) = c.control(reqwest::Method::POST, "/_sim/vservers", json!({"id": 3, "name": "Customer A"})).await;
    assert_eq!(s, 200, "{v}");
    c.control(reqwest::Method::POST, "/_sim/vservers", json!({"id": 4, "name": "Customer B"})).await;
    assert_eq!(c.control(reqwest::Method::POST, "/_sim/vservers", json!({"id": 5, "name": "Customer A"})).await.0, 409);

    let main = c.login("").await;
    let list = c.ok(&main, "VServers.GetVServers", json!({"lParentGroup": -1})).await;
    let items = list["PxgRetVal"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["type"], "params");
    assert_eq!(items[0]["value"]["KLVSRV_ID"], 3);
    assert_eq!(items[0]["value"]["KLVSRV_DN"], "Customer A");
    assert_eq!(items[0]["value"]["KLVSRV_CREATED"]["type"], "datetime");
    let info = c
        .ok(&main, "VServers.GetVServerInfo", json!({"lVServer": 4, "pFields2Return": ["KLVSRV_ID", "KLVSRV_DN"]}))
        .await;
    assert_eq!(info, json!({"PxgRetVal": {"KLVSRV_ID": 4, "KLVSRV_DN": "Customer B"}}));
    assert_eq!(pxg_error(&c.call(&main, "VServers.GetVServerInfo", json!({"lVServer": 9})).await)["code"], 1184);

    c.event(3, "critical", "2024-05-01T10:00:00Z", "pc-a").await;
    c.event(0, "warning", "2024-05-01T10:00:00Z", "srv").await;
    let count = |session: String| {
        let c = &c;
        async move {
            let it = c
                .ok(
                    &session,
                    "EventProcessingFactory.CreateEventProcessing2",
                    json!({"pFilter": {}, "lifetimeSec": 60}),
                )
                .await["strIteratorId"]
                .as_str()
                .unwrap()
                .to_owned();
            c.ok(&session, "EventProcessing.GetRecordCount", json!({"strIteratorId": it})).await["PxgRetVal"].clone()
        }
    };
    assert_eq!(count(main.clone()).await, 1);
    let a = c.login("Customer A").await;
    assert_eq!(count(a.clone()).await, 1);
    assert_eq!(count(c.login("Customer B").await).await, 0);
    assert_eq!(c.call(&a, "VServers.GetVServers", json!({"lParentGroup": -1})).await.status, 500);
}

#[tokio::test]
async fn event_iterator_filters_orders_pages_and_expires() {
    let (_h, c) = sim().await;
    let late = c.event(0, "info", "2024-05-01T10:00:05Z", "pc-1").await;
    let early = c.event(0, "critical", "2024-05-01T09:00:00Z", "pc-1").await;
    let same1 = c.event(0, "functional_failure", "2024-05-01T10:00:00Z", "pc-2").await;
    let same2 = c.event(0, "warning", "2024-05-01T10:00:00Z", "pc-3").await;
    c.host(0, "pc-2", json!({"name": "PC Two", "descriptions": []})).await;
    let after_host = c.event(0, "critical", "2024-05-01T11:00:00Z", "pc-2").await;
    assert_eq!((late, early, same1, same2, after_host), (1, 2, 3, 4, 5));

    let s = c.login("").await;
    let order = |n: &str| json!({"type": "params", "value": {"Name": n, "Asc": true}});
    let create = c
        .ok(
            &s,
            "EventProcessingFactory.CreateEventProcessing2",
            json!({
                "pFilter": {"KLEVP_EVENT_RISE_TIME_LEAST": {"type": "datetime", "value": "2024-05-01T10:00:00Z"}},
                "vecFieldsToReturn": ["event_db_id", "rise_time", "GNRL_EA_SEVERITY", "hostname", "hostdn", "event_type_display_name"],
                "vecFieldsToOrder": [order("rise_time"), order("event_db_id")],
                "lifetimeSec": 30,
            }),
        )
        .await;
    assert_eq!(create.as_object().unwrap().len(), 1, "only the out-param: {create}");
    let it = create["strIteratorId"].as_str().unwrap().to_owned();
    assert_eq!(c.ok(&s, "EventProcessing.GetRecordCount", json!({"strIteratorId": it})).await["PxgRetVal"], 4);
    let range = |start: i64, end: i64| {
        let (c, s, it) = (&c, s.clone(), it.clone());
        async move {
            let v = c
                .ok(&s, "EventProcessing.GetRecordRange", json!({"strIteratorId": it, "nStart": start, "nEnd": end}))
                .await;
            v["pParamsEvents"]["KLEVP_EVENT_RANGE_ARRAY"].as_array().unwrap().clone()
        }
    };
    let p1 = range(0, 2).await;
    let p2 = range(2, 4).await;
    let p3 = range(4, 6).await;
    assert_eq!(p1.len(), 2);
    assert_eq!(p2.len(), 2);
    assert!(p3.is_empty(), "nEnd is exclusive and the set has 4 records");
    let ids: Vec<i64> = p1.iter().chain(&p2).map(|r| r["value"]["event_db_id"]["value"].as_i64().unwrap()).collect();
    assert_eq!(ids, [same1, same2, late, after_host]);
    let first = &p1[0];
    assert_eq!(first["type"], "params");
    assert_eq!(first["value"]["event_db_id"]["type"], "long");
    assert_eq!(first["value"]["rise_time"], json!({"type": "datetime", "value": "2024-05-01T10:00:00Z"}));
    assert_eq!(first["value"]["GNRL_EA_SEVERITY"], 3);
    assert_eq!(first["value"]["event_type_display_name"], "Malicious object detected");
    assert!(first["value"].get("GNRL_EA_DESCRIPTION").is_none(), "only the fields asked for");
    assert_eq!(p2[1]["value"]["hostdn"], "PC Two");
    assert_eq!(p2[0]["value"]["GNRL_EA_SEVERITY"], 1);

    // Released: gone.
    assert_eq!(c.ok(&s, "EventProcessing.ReleaseIterator", json!({"strIteratorId": it})).await, json!({}));
    assert_eq!(
        pxg_error(&c.call(&s, "EventProcessing.GetRecordCount", json!({"strIteratorId": it})).await)["code"],
        1184
    );

    // Idle expiry after lifetimeSec.
    let it = c.ok(&s, "EventProcessingFactory.CreateEventProcessing2", json!({"pFilter": {}, "lifetimeSec": 30})).await
        ["strIteratorId"]
        .as_str()
        .unwrap()
        .to_owned();
    c.control(reqwest::Method::POST, "/_sim/clock", json!({"advance_secs": 31})).await;
    let gone =
        c.call(&s, "EventProcessing.GetRecordRange", json!({"strIteratorId": it, "nStart": 0, "nEnd": 10})).await;
    assert_eq!(pxg_error(&gone)["code"], 1184);

    // Another session cannot use it; bad filters are errors.
    let it = c.ok(&s, "EventProcessingFactory.CreateEventProcessing2", json!({})).await["strIteratorId"].clone();
    let other = c.login("").await;
    assert_eq!(c.call(&other, "EventProcessing.GetRecordCount", json!({"strIteratorId": it})).await.status, 500);
    let bad =
        c.call(&s, "EventProcessingFactory.CreateEventProcessing2", json!({"pFilter": {"EVP_FTX_QUERY": "x"}})).await;
    assert!(pxg_error(&bad)["message"].as_str().unwrap().contains("EVP_FTX_QUERY"));
    assert_eq!(
        c.control(reqwest::Method::POST, "/_sim/events", json!({"vserver": 0, "severity": "fatal", "event_type": "x"}))
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn hosts_are_found_chunked_and_released() {
    let (_h, c) = sim().await;
    for i in 0..5 {
        c.host(0, &format!("guid-{i}"), json!({"name": format!("pc-{i}"), "descriptions": []})).await;
    }
    let v = c
        .host(0, "guid-crit", json!({"name": "crit", "descriptions": ["license_expired", "databases_out_of_date"]}))
        .await;
    assert_eq!(v["status_id"], 1, "Critical by the default masks");
    let v = c.host(0, "guid-warn", json!({"descriptions": ["databases_out_of_date", "unknown:25"]})).await;
    assert_eq!((v["status_id"].as_i64(), v["mask"].as_i64()), (Some(2), Some(0x80 | 1 << 25)));
    let v = c.host(0, "guid-forced", json!({"status": "critical", "descriptions": []})).await;
    assert_eq!(v["status_id"], 1);
    assert_eq!(c.control(reqwest::Method::PUT, "/_sim/hosts/0/x", json!({"descriptions": ["nope"]})).await.0, 400);
    assert_eq!(c.control(reqwest::Method::PUT, "/_sim/hosts/9/x", json!({"descriptions": []})).await.0, 404);
    c.control(reqwest::Method::POST, "/_sim/vservers", json!({"id": 2, "name": "Other"})).await;
    c.host(2, "guid-elsewhere", json!({"descriptions": []})).await;

    let s = c.login("").await;
    let fields = [
        "KLHST_WKS_HOSTNAME",
        "KLHST_WKS_DN",
        "KLHST_WKS_STATUS_ID",
        "KLHST_WKS_STATUS_MASK",
        "KLHST_WKS_GROUPID",
        "KLHST_WKS_LAST_VISIBLE",
    ];
    let find = |filter: &str| {
        json!({"wstrFilter": filter, "vecFieldsToReturn": fields, "vecFieldsToOrder": [],
               "pParams": {"KLSRVH_SLAVE_REC_DEPTH": 0, "KLGRP_FIND_FROM_CUR_VS_ONLY": true}, "lMaxLifeTime": 600})
    };
    let found = c.ok(&s, "HostGroup.FindHosts", find("(KLHST_WKS_HOSTNAME=\"*\")")).await;
    assert_eq!(found["PxgRetVal"], 8, "only the current virtual server");
    let acc = found["strAccessor"].as_str().unwrap().to_owned();
    assert_eq!(c.ok(&s, "ChunkAccessor.GetItemsCount", json!({"strAccessor": acc})).await["PxgRetVal"], 8);
    let mut rows = Vec::new();
    for start in [0, 3, 6] {
        let v =
            c.ok(&s, "ChunkAccessor.GetItemsChunk", json!({"strAccessor": acc, "nStart": start, "nCount": 3})).await;
        let items = v["pChunk"]["KLCSP_ITERATOR_ARRAY"].as_array().unwrap().clone();
        assert_eq!(v["PxgRetVal"].as_u64(), Some(items.len() as u64));
        rows.extend(items);
    }
    assert_eq!(rows.len(), 8);
    let crit = rows.iter().find(|r| r["value"]["KLHST_WKS_HOSTNAME"] == "guid-crit").unwrap();
    assert_eq!(crit["value"]["KLHST_WKS_DN"], "crit");
    assert_eq!(crit["value"]["KLHST_WKS_STATUS_MASK"], 0x280);
    assert_eq!(crit["value"]["KLHST_WKS_GROUPID"], 0);
    assert_eq!(crit["value"]["KLHST_WKS_LAST_VISIBLE"]["type"], "datetime");
    assert!(crit["value"].get("KLHST_WKS_STATUS").is_none(), "only the fields asked for");
    let warn = rows.iter().find(|r| r["value"]["KLHST_WKS_HOSTNAME"] == "guid-warn").unwrap();
    assert_eq!(warn["value"]["KLHST_WKS_DN"], "guid-warn");
    assert_eq!(c.ok(&s, "ChunkAccessor.Release", json!({"strAccessor": acc})).await, json!({}));
    assert_eq!(c.call(&s, "ChunkAccessor.GetItemsCount", json!({"strAccessor": acc})).await.status, 500);

    let found = c.ok(&s, "HostGroup.FindHosts", find("(&(KLHST_WKS_STATUS_ID<>0)(!(KLHST_WKS_DN=\"crit\")))")).await;
    assert_eq!(found["PxgRetVal"], 2);
    let bad = c.call(&s, "HostGroup.FindHosts", find("(KLHST_WKS_OS_NAME=\"Windows*\")")).await;
    assert!(pxg_error(&bad)["message"].as_str().unwrap().contains("unsupported filter"));
    let mut too_long = find("");
    too_long["lMaxLifeTime"] = json!(7201);
    assert_eq!(c.call(&s, "HostGroup.FindHosts", too_long).await.status, 500);

    // Group masks: defaults, then changed through the control API.
    let attrs = json!({"nGroupId": 0, "pArrAttributes": ["KLSRV_HSTSTAT_CRITICAL", "KLSRV_HSTSTAT_WARNING"]});
    let info = c.ok(&s, "HostGroup.GetGroupInfoEx", attrs.clone()).await;
    let (crit_mask, warn_mask) = ksc::default_masks();
    assert_eq!(info["PxgRetVal"]["KLSRV_HSTSTAT_CRITICAL"]["type"], "params");
    assert_eq!(info["PxgRetVal"]["KLSRV_HSTSTAT_CRITICAL"]["value"]["KLSRV_HSTSTAT_MASK"], crit_mask);
    assert_eq!(info["PxgRetVal"]["KLSRV_HSTSTAT_WARNING"]["value"]["KLSRV_HSTSTAT_MASK"], warn_mask);
    assert_eq!(info["PxgRetVal"].as_object().unwrap().len(), 2);
    c.control(
        reqwest::Method::POST,
        "/_sim/vservers",
        json!({"id": 0, "critical": ["databases_out_of_date"], "warning": ["license_expired"]}),
    )
    .await;
    let info = c.ok(&s, "HostGroup.GetGroupInfoEx", attrs).await;
    assert_eq!(info["PxgRetVal"]["KLSRV_HSTSTAT_CRITICAL"]["value"]["KLSRV_HSTSTAT_MASK"], 0x80);
    assert_eq!(info["PxgRetVal"]["KLSRV_HSTSTAT_WARNING"]["value"]["KLSRV_HSTSTAT_MASK"], 0x200);
    let v = c.host(0, "guid-lic", json!({"descriptions": ["license_expired"]})).await;
    assert_eq!(v["status_id"], 2, "status follows the changed masks");
    let other_group = c.call(&s, "HostGroup.GetGroupInfoEx", json!({"nGroupId": 1002})).await;
    assert_eq!(pxg_error(&other_group)["code"], 1184, "group of another virtual server");

    assert_eq!(c.control(reqwest::Method::DELETE, "/_sim/hosts/0/guid-lic", json!(null)).await.0, 200);
    assert_eq!(c.control(reqwest::Method::DELETE, "/_sim/hosts/0/guid-lic", json!(null)).await.0, 404);
}

#[tokio::test]
async fn journal_faults_and_reset() {
    let (_h, c) = sim().await;
    let s = c.login("").await;
    c.control(
        reqwest::Method::POST,
        "/_sim/faults",
        json!({"path_regex": "Session\\.Ping", "status": 503, "body": "busy", "count": 1}),
    )
    .await;
    let busy = c.call(&s, "Session.Ping", json!({})).await;
    assert_eq!((busy.status, busy.text.as_str()), (503, "busy"));
    assert_eq!(c.call(&s, "Session.Ping", json!({})).await.status, 200);
    let journal = c.http.get(format!("{}/_sim/requests?detail=true", c.base)).send().await.unwrap();
    let journal: Value = journal.json().await.unwrap();
    let paths: Vec<&str> = journal.as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/api/v1.0/Session.StartSession", "/api/v1.0/Session.Ping", "/api/v1.0/Session.Ping"]);
    assert_eq!(journal[1]["status"], 503);
    assert_eq!(journal[2]["headers"]["x-ksc-session"], s.as_str());

    c.event(0, "info", "2024-05-01T10:00:00Z", "h").await;
    c.control(reqwest::Method::POST, "/_sim/vservers", json!({"id": 1, "name": "gone after reset"})).await;
    c.control(reqwest::Method::POST, "/_sim/reset", json!(null)).await;
    assert_eq!(c.call(&s, "Session.Ping", json!({})).await.status, 403, "sessions are reset too");
    let s = c.login("").await;
    assert_eq!(c.ok(&s, "VServers.GetVServers", json!({"lParentGroup": -1})).await, json!({"PxgRetVal": []}));
    assert_eq!(c.event(0, "info", "2024-05-01T10:00:00Z", "h").await, 1, "ids start again");
}

// ---------------------------------------------------------------------------------------------
// Fidelity facts (`ksc-api.md` §9, §10): one test each
// ---------------------------------------------------------------------------------------------

impl Client {
    async fn seed(&self, body: Value) -> (u16, Value) {
        self.control(reqwest::Method::POST, "/_sim/events", body).await
    }

    /// Every record of the session's events, ordered by `event_db_id`.
    async fn records(&self, session: &str) -> Vec<Value> {
        let it = self
            .ok(
                session,
                "EventProcessingFactory.CreateEventProcessing2",
                json!({"pFilter": {}, "vecFieldsToOrder": [{"type": "params", "value": {"Name": "event_db_id", "Asc": true}}],
                       "lifetimeSec": 60}),
            )
            .await["strIteratorId"]
            .as_str()
            .unwrap()
            .to_owned();
        let v = self
            .ok(session, "EventProcessing.GetRecordRange", json!({"strIteratorId": it, "nStart": 0, "nEnd": 1000}))
            .await;
        self.ok(session, "EventProcessing.ReleaseIterator", json!({"strIteratorId": it})).await;
        v["pParamsEvents"]["KLEVP_EVENT_RANGE_ARRAY"].as_array().unwrap().iter().map(|r| r["value"].clone()).collect()
    }
}

fn seed_body(severity: Value) -> Value {
    json!({"vserver": 0, "severity": severity, "event_type": "GNRL_EV_VIRUS_FOUND", "host": "h1"})
}

#[tokio::test]
async fn login_path_sets_a_session_cookie_that_authenticates_calls() {
    let (h, c) = sim().await;
    c.control(reqwest::Method::POST, "/_sim/vservers", json!({"id": 3, "name": "Tenant C"})).await;
    c.host(3, "g-1", json!({"name": "pc-1", "descriptions": []})).await;
    c.event(3, "warning", "2024-05-01T10:00:00Z", "g-1").await;
    let url = |m: &str| format!("{}/api/v1.0/{m}", h.base_url());
    for internal in ["0", "1"] {
        let jar = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let auth = format!(
            "KSCBasic user=\"{}\", pass=\"{}\", domain=\"\", internal=\"{internal}\"",
            B64.encode("ksc-admin"),
            B64.encode("ksc-secret")
        );
        // Empty body, as the vendor's Python client sends it.
        let r = jar
            .post(url("login"))
            .header("Authorization", &auth)
            .header("X-KSC-VServer", B64.encode("Tenant C"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
        assert!(cookie.starts_with(&format!("{}=", ksc::SESSION_COOKIE)), "{cookie}");
        // The cookie alone authenticates, scoped to the virtual server chosen at login.
        let hosts = jar
            .post(url("HostGroup.FindHosts"))
            .json(&json!({"wstrFilter": "", "vecFieldsToReturn": ["KLHST_WKS_DN"], "lMaxLifeTime": 60}))
            .send()
            .await
            .unwrap();
        assert_eq!(hosts.status(), 200);
        assert_eq!(hosts.json::<Value>().await.unwrap()["PxgRetVal"], 1);
        let it = jar
            .post(url("EventProcessingFactory.CreateEventProcessing2"))
            .json(&json!({"pFilter": {}, "lifetimeSec": 60}))
            .send()
            .await
            .unwrap();
        assert_eq!(it.status(), 200);
        let id = it.json::<Value>().await.unwrap()["strIteratorId"].as_str().unwrap().to_owned();
        let n =
            jar.post(url("EventProcessing.GetRecordCount")).json(&json!({"strIteratorId": id})).send().await.unwrap();
        assert_eq!(n.json::<Value>().await.unwrap()["PxgRetVal"], 1);
    }
    // Bad credentials: 401; no session: 403.
    let jar = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let bad = jar.post(url("login")).header("Authorization", kscbasic("ksc-admin", "nope")).send().await.unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(jar.post(url("Session.Ping")).json(&json!({})).send().await.unwrap().status(), 403);
    // A one-time KSCT token (Session.CreateToken) logs in once.
    let s = c.login("").await;
    let t = c.ok(&s, "Session.CreateToken", json!({})).await["PxgRetVal"].as_str().unwrap().to_owned();
    let r = jar.post(url("login")).header("Authorization", format!("KSCT {t}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(jar.post(url("Session.Ping")).json(&json!({})).send().await.unwrap().status(), 200);
    let again =
        reqwest::Client::new().post(url("login")).header("Authorization", format!("KSCT {t}")).send().await.unwrap();
    assert_eq!(again.status(), 401, "a token is usable once");
    // The cookie session expires after the same idle time as X-KSC-Session ones: 403.
    c.control(reqwest::Method::POST, "/_sim/clock", json!({"advance_secs": ksc::DEFAULT_SESSION_IDLE_SECS + 1})).await;
    assert_eq!(jar.post(url("Session.Ping")).json(&json!({})).send().await.unwrap().status(), 403);
    // internal must be 0 or 1.
    let odd =
        format!("KSCBasic user=\"{}\", pass=\"{}\", internal=\"2\"", B64.encode("ksc-admin"), B64.encode("ksc-secret"));
    assert_eq!(
        reqwest::Client::new().post(url("login")).header("Authorization", odd).send().await.unwrap().status(),
        401
    );
}

#[tokio::test]
async fn severities_are_0_to_4_by_name_or_number() {
    let (_h, c) = sim().await;
    for (given, want) in
        [(json!("invalid"), 0), (json!("info"), 1), (json!("warning"), 2), (json!(3), 3), (json!("critical"), 4)]
    {
        let (s, v) = c.seed(seed_body(given.clone())).await;
        assert_eq!(s, 200, "{given}: {v}");
        let _ = want;
    }
    for bad in [json!(5), json!(-1), json!("fatal")] {
        assert_eq!(c.seed(seed_body(bad.clone())).await.0, 400, "{bad}");
    }
    let s = c.login("").await;
    let got: Vec<i64> = c.records(&s).await.iter().map(|r| r["GNRL_EA_SEVERITY"].as_i64().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn event_text_limits_are_enforced_on_seeding() {
    let (_h, c) = sim().await;
    let with = |k: &str, v: Value| {
        let mut b = seed_body(json!("info"));
        b[k] = v;
        b
    };
    assert_eq!(c.seed(with("display_name", json!("d".repeat(100)))).await.0, 200);
    assert_eq!(c.seed(with("text", json!("é".repeat(1000)))).await.0, 200, "characters, not bytes");
    assert_eq!(c.seed(with("params", json!(["p".repeat(512), "q"]))).await.0, 200);
    for (body, field) in [
        (with("display_name", json!("d".repeat(101))), "event_type_display_name"),
        (with("text", json!("t".repeat(1001))), "GNRL_EA_DESCRIPTION"),
        (with("params", json!(["ok", "p".repeat(513)])), "GNRL_EA_PARAM_2"),
    ] {
        let (s, v) = c.seed(body).await;
        assert_eq!(s, 400);
        assert!(v["error"].as_str().unwrap().contains(field), "{v}");
    }
    let s = c.login("").await;
    let recs = c.records(&s).await;
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[2]["GNRL_EA_PARAM_1"].as_str().unwrap().len(), 512);
    assert_eq!(recs[2]["GNRL_EA_PARAM_2"], "q");
}

#[tokio::test]
async fn event_db_id_is_64_bit_seedable_and_follows_arrival_order() {
    let (_h, c) = sim().await;
    let first = c.event(0, "info", "2024-05-01T10:00:00Z", "h").await;
    let big = (1_i64 << 32) + 5;
    let mut b = seed_body(json!("info"));
    b["event_db_id"] = json!(big);
    assert_eq!(c.seed(b.clone()).await.1["id"], big);
    // Next arrival: the next id, although it happened long before.
    let late = c.event(0, "info", "2020-01-01T00:00:00Z", "h").await;
    assert_eq!(late, big + 1);
    b["event_db_id"] = json!(first);
    assert_eq!(c.seed(b).await.0, 400, "an id at or below the last is refused");
    let s = c.login("").await;
    let ids: Vec<Value> = c.records(&s).await.iter().map(|r| r["event_db_id"].clone()).collect();
    assert_eq!(
        ids,
        [
            json!({"type": "long", "value": first}),
            json!({"type": "long", "value": big}),
            json!({"type": "long", "value": big + 1})
        ]
    );
}

#[tokio::test]
async fn get_record_range_refuses_65536_records_or_more() {
    let (_h, c) = sim().await;
    c.event(0, "info", "2024-05-01T10:00:00Z", "h").await;
    let s = c.login("").await;
    let it = c.ok(&s, "EventProcessingFactory.CreateEventProcessing2", json!({"pFilter": {}, "lifetimeSec": 60})).await
        ["strIteratorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let ok = c
        .ok(&s, "EventProcessing.GetRecordRange", json!({"strIteratorId": it, "nStart": 10, "nEnd": 10 + 65535}))
        .await;
    assert!(ok["pParamsEvents"]["KLEVP_EVENT_RANGE_ARRAY"].as_array().unwrap().is_empty());
    let a =
        c.call(&s, "EventProcessing.GetRecordRange", json!({"strIteratorId": it, "nStart": 0, "nEnd": 65536})).await;
    let e = pxg_error(&a);
    assert!(e["message"].as_str().unwrap().contains("65536"), "{e}");
}

#[tokio::test]
async fn null_fields_are_left_out_of_event_records() {
    let (_h, c) = sim().await;
    let (s, _) = c.seed(json!({"vserver": 0, "severity": "info", "event_type": "KLPRCI_TaskState"})).await;
    assert_eq!(s, 200);
    c.seed(json!({"vserver": 0, "severity": "info", "event_type": "X", "host": "g", "text": "t", "task": "Update"}))
        .await;
    let session = c.login("").await;
    let recs = c.records(&session).await;
    for absent in ["hostname", "hostdn", "GNRL_EA_DESCRIPTION", "task_display_name", "GNRL_EA_PARAM_1"] {
        assert!(recs[0].get(absent).is_none(), "{absent} in {}", recs[0]);
    }
    assert_eq!((recs[1]["hostname"].as_str(), recs[1]["task_display_name"].as_str()), (Some("g"), Some("Update")));
}

async fn host_row(c: &Client, host: &str) -> Value {
    let s = c.login("").await;
    let fields = ["KLHST_WKS_HOSTNAME", "KLHST_WKS_STATUS", "KLHST_WKS_STATUS_MASK", "KLHST_WKS_RTP_STATE"];
    let acc = c
        .ok(
            &s,
            "HostGroup.FindHosts",
            json!({"wstrFilter": format!("(KLHST_WKS_HOSTNAME=\"{host}\")"),
            "vecFieldsToReturn": fields, "lMaxLifeTime": 60}),
        )
        .await["strAccessor"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = c.ok(&s, "ChunkAccessor.GetItemsChunk", json!({"strAccessor": acc, "nStart": 0, "nCount": 10})).await;
    v["pChunk"]["KLCSP_ITERATOR_ARRAY"][0]["value"].clone()
}

#[tokio::test]
async fn wks_status_bits_and_antivirus_not_needed() {
    let (_h, c) = sim().await;
    c.host(0, "plain", json!({"descriptions": []})).await;
    assert_eq!(host_row(&c, "plain").await["KLHST_WKS_STATUS"], ksc::wks_status::DEFAULT);
    assert_eq!(ksc::wks_status::DEFAULT, 29);
    // 0x200: antivirus not needed; such a computer never reports "not installed" (bit 5).
    let v = c
        .host(
            0,
            "appliance",
            json!({"antivirus_not_needed": true,
            "descriptions": ["security_application_not_installed", "restart_required"]}),
        )
        .await;
    assert_eq!(v["mask"], 1 << 11, "{v}");
    let row = host_row(&c, "appliance").await;
    assert_eq!(row["KLHST_WKS_STATUS"].as_i64().unwrap() & 0x200, 0x200);
    assert_eq!(row["KLHST_WKS_STATUS_MASK"], 1 << 11);
    let v = c.host(0, "raw", json!({"wks_status": 0x1 | 0x2 | 0x40 | 0x80 | 0x100 | 0x200, "descriptions": ["security_application_not_installed"]})).await;
    assert_eq!((v["wks_status"].as_i64(), v["mask"].as_i64()), (Some(0x3C3), Some(0)));
}

#[tokio::test]
async fn rtp_state_takes_0_to_9() {
    let (_h, c) = sim().await;
    for (i, name) in ksc::RTP_STATES.iter().enumerate() {
        c.host(0, &format!("n{i}"), json!({"rtp_state": name})).await;
        assert_eq!(host_row(&c, &format!("n{i}")).await["KLHST_WKS_RTP_STATE"], i);
    }
    c.host(0, "num", json!({"rtp_state": 9})).await;
    assert_eq!(host_row(&c, "num").await["KLHST_WKS_RTP_STATE"], 9);
    for bad in [json!(10), json!(-1), json!("sleeping")] {
        let (s, _) = c.control(reqwest::Method::PUT, "/_sim/hosts/0/bad", json!({"rtp_state": bad})).await;
        assert_eq!(s, 400, "{bad}");
    }
}

#[tokio::test]
async fn unknown_mask_bits_are_kept_and_counted() {
    let (_h, c) = sim().await;
    let v = c.host(0, "odd", json!({"descriptions": ["restart_required", "unknown:23", "unknown:40"]})).await;
    assert_eq!(v["unknown_bits"], 2);
    let row = host_row(&c, "odd").await;
    assert_eq!(row["KLHST_WKS_STATUS_MASK"], json!({"type": "long", "value": (1u64 << 40) | (1 << 23) | (1 << 11)}));
}

#[tokio::test]
async fn tls_serves_a_self_signed_certificate_ca_true_or_false() {
    for ca in [true, false] {
        let opts = ksc::TlsOptions { ca, ..ksc::TlsOptions::default() };
        let (h, cert) = ksc::start_tls("127.0.0.1:0".parse().unwrap(), Config::default(), &opts).await.unwrap();
        assert!(h.base_url().starts_with("https://127.0.0.1:"), "{}", h.base_url());
        assert_eq!(cert.sha256, pinned_tls::format_fingerprint(&pinned_tls::sha256(&cert.der)));
        let pins = pinned_tls::pins_from_pem(cert.pem.as_bytes()).unwrap();
        let http =
            pinned_tls::reqwest_builder(&pinned_tls::Options { pins, ..Default::default() }).unwrap().build().unwrap();
        let c = Client { http, base: h.base_url().to_owned() };
        let s = c.login("").await;
        c.ok(&s, "Session.Ping", json!({})).await;
        // Plain HTTP to the TLS port gets no answer.
        let plain = h.base_url().replacen("https://", "http://", 1);
        assert!(reqwest::Client::new().post(format!("{plain}/api/v1.0/Session.Ping")).send().await.is_err());
    }
}

#[tokio::test]
async fn binary_with_tls_prints_the_certificate_path_and_fingerprint() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksc-sim"))
        .args(["--listen", "127.0.0.1:0", "--tls", "--tls-ca-false", "--journal", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = [String::new(), String::new(), String::new()];
    for l in &mut lines {
        out.read_line(l).unwrap();
    }
    let url = lines[0].trim().strip_prefix("listening on ").unwrap().to_owned();
    let path = lines[1].trim().strip_prefix("certificate ").unwrap().to_owned();
    let fp = lines[2].trim().strip_prefix("sha256 ").unwrap().to_owned();
    assert!(url.starts_with("https://"), "{url}");
    let pem = std::fs::read(&path).unwrap();
    let der = pinned_tls::certs_from_pem(&pem).unwrap().remove(0);
    assert_eq!(pinned_tls::format_fingerprint(&pinned_tls::sha256(&der)), fp);
    let pin = pinned_tls::Pin::Sha256(pinned_tls::parse_fingerprint(&fp).unwrap());
    let http = pinned_tls::reqwest_builder(&pinned_tls::Options { pins: vec![pin], ..Default::default() })
        .unwrap()
        .build()
        .unwrap();
    let c = Client { http, base: url.clone() };
    let s = c.login("").await;
    c.ok(&s, "Session.Ping", json!({})).await;
    // --journal 1: only the newest request is kept.
    let journal: Value = c.http.get(format!("{url}/_sim/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(journal.as_array().unwrap().len(), 1, "{journal}");
    assert_eq!(journal[0]["path"], "/api/v1.0/Session.Ping");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(path);
}
