//! Tests of the shared simulator machinery (journal, faults, clock, reset, handle).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};
use simulators::common::{SimCore, start_router};

async fn start() -> (simulators::common::SimHandle, Arc<AtomicUsize>) {
    let resets = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&resets);
    let api = Router::new()
        .route("/api/hello", get(|| async { "hello" }))
        .route("/api/echo", post(|body: String| async move { body }));
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let h = start_router(listen, api, SimCore::new(), move || {
        r.fetch_add(1, Ordering::SeqCst);
    })
    .await
    .unwrap();
    (h, resets)
}

#[tokio::test]
async fn base_url_and_journal() {
    let (h, _) = start().await;
    assert!(h.base_url().starts_with("http://127.0.0.1:"));
    assert!(!h.base_url().ends_with('/'));
    assert_eq!(h.base_url(), format!("http://127.0.0.1:{}", h.addr().port()));
    let c = reqwest::Client::new();
    let r = c.get(format!("{}/api/hello", h.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello");
    let r = c.post(format!("{}/api/echo", h.base_url())).header("X-Test", "yes").body("payload").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "payload");
    let r = c.get(format!("{}/nope", h.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 404);

    let j: Vec<Value> = c.get(format!("{}/_sim/requests", h.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(j.len(), 3, "{j:?}");
    assert_eq!(j[0]["method"], "GET");
    assert_eq!(j[0]["path"], "/api/hello");
    assert_eq!(j[0]["status"], 200);
    assert!(j[0]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(j[1]["method"], "POST");
    assert!(j[1].get("body").is_none());
    assert_eq!(j[2]["status"], 404);

    let d: Vec<Value> =
        c.get(format!("{}/_sim/requests?detail=true", h.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(d[1]["body"], "payload");
    assert_eq!(d[1]["headers"]["x-test"], "yes");

    let entries = h.requests();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1].header("X-TEST"), Some("yes"));
    assert_eq!(&entries[1].body[..], b"payload");
    h.shutdown().await;
}

#[tokio::test]
async fn faults_apply_count_times_and_match_method() {
    let (h, _) = start().await;
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/_sim/faults", h.base_url()))
        .json(&json!({"method":"get","path_regex":"^/api/hel+o$","status":503,
                      "body":{"errors":["busy"]},"count":2,"headers":{"Retry-After":"7"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // a POST does not match the GET fault
    let r = c.post(format!("{}/api/echo", h.base_url())).body("x").send().await.unwrap();
    assert_eq!(r.status(), 200);
    for _ in 0..2 {
        let r = c.get(format!("{}/api/hello", h.base_url())).send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "7");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b, json!({"errors":["busy"]}));
    }
    let r = c.get(format!("{}/api/hello", h.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // plain-text body, no method
    c.post(format!("{}/_sim/faults", h.base_url()))
        .json(&json!({"path_regex":"echo","status":502,"body":"bad gateway"}))
        .send()
        .await
        .unwrap();
    let r = c.post(format!("{}/api/echo", h.base_url())).body("x").send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.text().await.unwrap(), "bad gateway");

    // delay only: served normally, journaled with the real status
    c.post(format!("{}/_sim/faults", h.base_url()))
        .json(&json!({"path_regex":"hello","delay_ms":30}))
        .send()
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let r = c.get(format!("{}/api/hello", h.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(30));

    // bad regex rejected
    let r = c
        .post(format!("{}/_sim/faults", h.base_url()))
        .json(&json!({"path_regex":"(","status":500}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // /_sim/ routes are never faulted nor journaled
    c.post(format!("{}/_sim/faults", h.base_url())).json(&json!({"status":500})).send().await.unwrap();
    let r = c.get(format!("{}/_sim/requests", h.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let j: Vec<Value> = r.json().await.unwrap();
    let statuses: Vec<u64> = j.iter().map(|e| e["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![200, 503, 503, 200, 502, 200]);
    let r = c.delete(format!("{}/_sim/faults", h.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(format!("{}/api/hello", h.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn reset_and_clock() {
    let (h, resets) = start().await;
    let c = reqwest::Client::new();
    c.get(format!("{}/api/hello", h.base_url())).send().await.unwrap();
    let r: Value = c
        .post(format!("{}/_sim/clock", h.base_url()))
        .json(&json!({"advance_secs": 3600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["offset_secs"], 3600);
    let now = h.core().unwrap().clock.now();
    assert!(now - chrono::Utc::now() > chrono::Duration::seconds(3590));

    let r = c.post(format!("{}/_sim/reset", h.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(resets.load(Ordering::SeqCst), 1);
    assert!(h.requests().is_empty());
    assert_eq!(h.core().unwrap().clock.offset().num_seconds(), 0);
}

#[tokio::test]
async fn drop_stops_server() {
    let (h, _) = start().await;
    let url = format!("{}/api/hello", h.base_url());
    drop(h);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let r = reqwest::Client::new().get(url).send().await;
    assert!(r.is_err());
}

#[tokio::test]
async fn journal_keeps_only_the_newest_entries() {
    let (h, _) = start().await;
    let journal = &h.core().unwrap().journal;
    assert_eq!(journal.limit(), simulators::common::DEFAULT_JOURNAL_LIMIT);
    journal.set_limit(3);
    let http = reqwest::Client::new();
    for i in 0..5 {
        http.post(format!("{}/api/echo", h.base_url())).body(format!("{i}")).send().await.unwrap();
    }
    let bodies: Vec<String> = h.requests().iter().map(|e| String::from_utf8_lossy(&e.body).into_owned()).collect();
    assert_eq!(bodies, ["2", "3", "4"]);
    assert!(h.requests().iter().all(|e| e.status == 200), "statuses still land on the kept entries");
    assert_eq!(journal.dropped(), 2);
    journal.set_limit(0);
    http.get(format!("{}/api/hello", h.base_url())).send().await.unwrap();
    assert!(journal.is_empty(), "0 = journal off");
    // A bounded journal without a limit set explicitly still has the default bound.
    assert_eq!(simulators::common::Journal::with_limit(2).limit(), 2);
}

/// Every simulator binary honours the journal bound from `SIM_JOURNAL` (and `ksc-sim` also
/// takes `--journal N`).
#[tokio::test]
async fn every_binary_bounds_its_journal() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    let binaries = [
        (env!("CARGO_BIN_EXE_autotask-sim"), vec![]),
        (env!("CARGO_BIN_EXE_kbh-sim"), vec![]),
        (env!("CARGO_BIN_EXE_ksc-sim"), vec![]),
        (env!("CARGO_BIN_EXE_ksc-sim"), vec!["--journal", "2"]),
        (env!("CARGO_BIN_EXE_autotask-sim"), vec!["--journal", "2"]),
        (env!("CARGO_BIN_EXE_kbh-sim"), vec!["--journal", "2"]),
    ];
    for (bin, extra) in binaries {
        let flag = !extra.is_empty();
        let mut cmd = Command::new(bin);
        cmd.args(["--listen", "127.0.0.1:0"]).args(&extra).stdout(Stdio::piped());
        if !flag {
            cmd.env("SIM_JOURNAL", "2");
        } else {
            cmd.env("SIM_JOURNAL", "100");
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("listening on ").unwrap().to_owned();
        let http = reqwest::Client::new();
        for i in 0..5 {
            let _ = http.get(format!("{url}/journal-probe-{i}")).send().await.unwrap();
        }
        let journal: Value = http.get(format!("{url}/_sim/requests")).send().await.unwrap().json().await.unwrap();
        let paths: Vec<&str> = journal.as_array().unwrap().iter().filter_map(|e| e["path"].as_str()).collect();
        assert_eq!(paths, ["/journal-probe-3", "/journal-probe-4"], "{bin} {extra:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
