//! `ConEvents.Subscribe` / `Retrieve` / `UnSubscribe` in `ksc-sim` (issue #29): a queue per
//! subscription, subscriptions owned by their session, `STDE_UNAVAIL` when polled faster than
//! the period, `STDE_NOTFOUND` without a subscription; and the per-method call counter.
//! Time moves on the simulated clock (`/_sim/clock`), so nothing here sleeps.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use simulators::common::SimHandle;
use simulators::ksc::{self, Config};

struct Sim {
    h: SimHandle,
    http: reqwest::Client,
}

impl Sim {
    async fn start() -> Self {
        let h = ksc::start("127.0.0.1:0".parse().unwrap(), Config::default()).await.unwrap();
        let s = Self { h, http: reqwest::Client::new() };
        s.control("/_sim/vservers", json!({"id": 1, "name": "Tenant A"})).await;
        s.control("/_sim/vservers", json!({"id": 2, "name": "Tenant B"})).await;
        s
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let r = self.http.post(format!("{}{path}", self.h.base_url())).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}");
        r.json().await.unwrap()
    }

    async fn login(&self, vserver: &str) -> String {
        let auth = format!(
            "KSCBasic user=\"{}\", pass=\"{}\", domain=\"\", internal=\"1\"",
            B64.encode(ksc::DEFAULT_USER),
            B64.encode(ksc::DEFAULT_PASSWORD)
        );
        let (status, v) = self
            .send(
                None,
                "Session.StartSession",
                json!({}),
                &[("Authorization", auth), ("X-KSC-VServer", B64.encode(vserver))],
            )
            .await;
        assert_eq!(status, 200);
        v["PxgRetVal"].as_str().unwrap().to_owned()
    }

    async fn send(&self, session: Option<&str>, method: &str, body: Value, headers: &[(&str, String)]) -> (u16, Value) {
        let mut req = self.http.post(format!("{}/api/v1.0/{method}", self.h.base_url())).json(&body);
        if let Some(s) = session {
            req = req.header("X-KSC-Session", s);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn call(&self, session: &str, method: &str, body: Value) -> (u16, Value) {
        self.send(Some(session), method, body, &[]).await
    }

    async fn advance(&self, ms: i64) {
        // The clock moves in whole seconds.
        let secs = (ms + 999) / 1000;
        self.control("/_sim/clock", json!({"advance_secs": secs})).await;
    }

    async fn event(&self, vserver: i64, event_type: &str) -> i64 {
        let v = self
            .control(
                "/_sim/events",
                json!({"vserver": vserver, "severity": "critical", "event_type": event_type, "host": "h1"}),
            )
            .await;
        v["id"].as_i64().unwrap()
    }
}

fn message(v: &Value) -> String {
    v["PxgError"]["message"].as_str().unwrap_or_default().to_owned()
}

fn queued_ids(v: &Value) -> Vec<i64> {
    v["pEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e = &e["value"];
            assert!(e["KLSRV_CON_EVENT_BIRTH_TIME"]["type"] == "datetime", "{e}");
            assert!(e["KLSRV_CON_EVENT_LIFE_TIME"].is_i64(), "{e}");
            e["KLSRV_CON_EVENT_PARAMS"]["value"]["event_db_id"]["value"].as_i64().unwrap()
        })
        .collect()
}

#[tokio::test]
async fn subscribe_then_retrieve_queues_the_sessions_events_at_the_period() {
    let sim = Sim::start().await;
    let a = sim.login("Tenant A").await;
    let (status, sub) = sim.call(&a, "ConEvents.Subscribe", json!({"wstrEvent": "*", "pFilter": {}})).await;
    assert_eq!(status, 200, "{sub}");
    let period = sub["nPeriod"].as_i64().unwrap();
    assert_eq!(period, ksc::DEFAULT_CON_EVENTS_PERIOD_MS as i64);
    assert!(sub["PxgRetVal"].as_i64().unwrap() > 0);
    // Sooner than the period after Subscribe: STDE_UNAVAIL.
    let (status, early) = sim.call(&a, "ConEvents.Retrieve", json!({})).await;
    assert_eq!(status, 500);
    assert!(message(&early).starts_with("STDE_UNAVAIL"), "{early}");
    let mine = [sim.event(1, "GNRL_EV_VIRUS_FOUND").await, sim.event(1, "KLPRCI_TaskState").await];
    sim.event(2, "GNRL_EV_VIRUS_FOUND").await; // another virtual server's
    sim.advance(period).await;
    let (status, got) = sim.call(&a, "ConEvents.Retrieve", json!({})).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(queued_ids(&got), mine);
    assert_eq!(got["PxgRetVal"], false, "nothing more queued");
    assert_eq!(got["nPeriod"], period);
    // Polled again at once: too soon again; after the period: an empty queue.
    assert!(message(&sim.call(&a, "ConEvents.Retrieve", json!({})).await.1).starts_with("STDE_UNAVAIL"));
    sim.advance(period).await;
    assert_eq!(queued_ids(&sim.call(&a, "ConEvents.Retrieve", json!({})).await.1), Vec::<i64>::new());
}

#[tokio::test]
async fn an_event_type_subscription_and_batches() {
    let sim = Sim::start().await;
    let a = sim.login("Tenant A").await;
    sim.call(&a, "ConEvents.Subscribe", json!({"wstrEvent": "GNRL_EV_VIRUS_FOUND"})).await;
    let mut want = Vec::new();
    for _ in 0..ksc::RETRIEVE_BATCH + 5 {
        want.push(sim.event(1, "GNRL_EV_VIRUS_FOUND").await);
        sim.event(1, "OTHER").await;
    }
    sim.advance(1000).await;
    let (_, first) = sim.call(&a, "ConEvents.Retrieve", json!({})).await;
    assert_eq!(first["PxgRetVal"], true, "more queued");
    sim.advance(1000).await;
    let (_, second) = sim.call(&a, "ConEvents.Retrieve", json!({})).await;
    assert_eq!(second["PxgRetVal"], false);
    let got: Vec<i64> = queued_ids(&first).into_iter().chain(queued_ids(&second)).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn subscriptions_belong_to_their_session_and_can_be_lost() {
    let sim = Sim::start().await;
    let a = sim.login("Tenant A").await;
    let other = sim.login("Tenant A").await;
    // No subscription in this session: STDE_NOTFOUND.
    let (status, none) = sim.call(&other, "ConEvents.Retrieve", json!({})).await;
    assert_eq!(status, 500);
    assert!(message(&none).starts_with("STDE_NOTFOUND"), "{none}");
    let (_, sub) = sim.call(&a, "ConEvents.Subscribe", json!({"wstrEvent": "*"})).await;
    let id = sub["PxgRetVal"].as_i64().unwrap();
    // Another session can neither read nor cancel it.
    assert!(message(&sim.call(&other, "ConEvents.Retrieve", json!({})).await.1).starts_with("STDE_NOTFOUND"));
    assert!(
        message(&sim.call(&other, "ConEvents.UnSubscribe", json!({"nSubsId": id})).await.1)
            .starts_with("STDE_NOTFOUND")
    );
    // Unsupported filters are refused, not ignored.
    let (status, bad) =
        sim.call(&a, "ConEvents.Subscribe", json!({"wstrEvent": "*", "pFilter": {"hostname": "x"}})).await;
    assert_eq!(status, 500, "{bad}");
    // The control route drops every subscription (a server restart); the session stays.
    assert_eq!(sim.control("/_sim/subscriptions/drop", json!({})).await["dropped"], 1);
    sim.advance(1000).await;
    assert!(message(&sim.call(&a, "ConEvents.Retrieve", json!({})).await.1).starts_with("STDE_NOTFOUND"));
    assert_eq!(sim.call(&a, "Session.Ping", json!({})).await.0, 200);
    // Ending the session drops its subscriptions too.
    let (_, sub) = sim.call(&a, "ConEvents.Subscribe", json!({"wstrEvent": "*"})).await;
    assert_eq!(sim.call(&a, "ConEvents.UnSubscribe", json!({"nSubsId": sub["PxgRetVal"]})).await.0, 200);
    sim.call(&a, "ConEvents.Subscribe", json!({"wstrEvent": "*"})).await;
    sim.call(&a, "Session.EndSession", json!({})).await;
    assert_eq!(sim.control("/_sim/subscriptions/drop", json!({})).await["dropped"], 0);
    // At most MAX_SUBSCRIPTIONS a session.
    let b = sim.login("Tenant B").await;
    for _ in 0..ksc::MAX_SUBSCRIPTIONS {
        assert_eq!(sim.call(&b, "ConEvents.Subscribe", json!({"wstrEvent": "*"})).await.0, 200);
    }
    assert!(
        message(&sim.call(&b, "ConEvents.Subscribe", json!({"wstrEvent": "*"})).await.1).starts_with("STDE_TOOBIG")
    );
}

#[tokio::test]
async fn calls_are_counted_by_method() {
    let sim = Sim::start().await;
    let a = sim.login("Tenant A").await;
    sim.call(&a, "Session.Ping", json!({})).await;
    sim.call(&a, "Session.Ping", json!({})).await;
    let calls: Value =
        sim.http.get(format!("{}/_sim/calls", sim.h.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls, json!({"Session.Ping": 2, "Session.StartSession": 1}));
    sim.control("/_sim/reset", json!({})).await;
    let calls: Value =
        sim.http.get(format!("{}/_sim/calls", sim.h.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls, json!({}));
}
