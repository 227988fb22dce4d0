//! The adapter against the real Security Center simulator (`simulators::ksc`) over HTTP.

use std::time::Duration;

use ksc_adapter::{KscConfig, KscSource, RetryPolicy, tenant_id};
use serde_json::{Value, json};
use simulators::common::SimHandle;
use simulators::ksc;
use ticketing_core::model::{ComputerStatus, EventClass, Severity, StatusLevel};
use ticketing_core::ports::{Cursor, EventSource, StatusSource};
use ticketing_core::secret::Secret;

async fn sim() -> SimHandle {
    ksc::start("127.0.0.1:0".parse().unwrap(), ksc::Config::default()).await.unwrap()
}

fn adapter(sim: &SimHandle) -> KscSource {
    let mut c = KscConfig::new(sim.base_url(), ksc::DEFAULT_USER, Secret::new(ksc::DEFAULT_PASSWORD));
    c.server_label = "lab".into();
    c.retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
    };
    c.event_page_size = 2;
    c.event_overlap = Duration::from_secs(60);
    KscSource::new(c).unwrap()
}

async fn control(sim: &SimHandle, verb: reqwest::Method, path: &str, body: Value) -> Value {
    let resp =
        reqwest::Client::new().request(verb, format!("{}{path}", sim.base_url())).json(&body).send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn event(sim: &SimHandle, vserver: i64, severity: &str, at: &str) -> String {
    let v = control(
        sim,
        reqwest::Method::POST,
        "/_sim/events",
        json!({"vserver": vserver, "severity": severity, "event_type": "GNRL_EV_VIRUS_FOUND", "host": "guid-pc1",
               "occurred_at": at, "text": format!("{severity} at {at}")}),
    )
    .await;
    v["id"].as_i64().unwrap().to_string()
}

#[tokio::test]
async fn events_come_out_in_order_exactly_once_across_polls_and_restarts() {
    let sim = sim().await;
    control(&sim, reqwest::Method::POST, "/_sim/vservers", json!({"id": 1, "name": "Customer A"})).await;
    control(&sim, reqwest::Method::PUT, "/_sim/hosts/1/guid-pc1", json!({"name": "PC-1", "descriptions": []})).await;
    // Noise on another tenant.
    event(&sim, 0, "critical", "2024-05-01T10:00:00Z").await;
    let e1 = event(&sim, 1, "critical", "2024-05-01T10:00:00Z").await;
    let e2 = event(&sim, 1, "functional_failure", "2024-05-01T10:00:01Z").await;
    let e3 = event(&sim, 1, "warning", "2024-05-01T10:00:01Z").await;
    let e4 = event(&sim, 1, "info", "2024-05-01T10:00:02Z").await;

    let ksc = adapter(&sim);
    let tenants = EventSource::tenants(&ksc).await.unwrap();
    assert_eq!(
        tenants.iter().map(|t| (t.id.as_str(), t.name.as_str())).collect::<Vec<_>>(),
        [("ksc:lab/vs:0", "lab (main server)"), ("ksc:lab/vs:1", "Customer A")]
    );
    let tenant = tenant_id("lab", 1);
    let b1 = ksc.poll_events(&tenant, None, 3, None).await.unwrap();
    assert!(b1.more);
    let b2 = ksc.poll_events(&tenant, Some(&b1.next), 3, None).await.unwrap();
    assert!(!b2.more);
    let all: Vec<_> = b1.events.iter().chain(&b2.events).collect();
    assert_eq!(all.iter().map(|e| e.source_id.as_str()).collect::<Vec<_>>(), [&e1, &e2, &e3, &e4]);
    assert_eq!(
        all.iter().map(|e| e.class).collect::<Vec<_>>(),
        [Severity::Critical, Severity::FunctionalFailure, Severity::Warning, Severity::Info].map(EventClass::Severity)
    );
    assert_eq!(all[0].device.as_ref().unwrap().name, "PC-1");
    assert_eq!(all[0].device.as_ref().unwrap().id.as_str(), "guid-pc1");
    assert_eq!(all[0].display_name, "Malicious object detected");
    assert_eq!(all[1].text, "functional_failure at 2024-05-01T10:00:01Z");
    assert!(b1.malformed.is_empty() && b2.malformed.is_empty());

    // Nothing new: nothing again.
    let idle = ksc.poll_events(&tenant, Some(&b2.next), 10, None).await.unwrap();
    assert!(idle.events.is_empty());

    // The daemon persisted b2.next as a string; a new process picks it up.
    let persisted = b2.next.0.clone();
    ksc.logout_all().await.unwrap();
    drop(ksc);
    // New events: one at the cursor's instant, one late inside the overlap window, two later.
    let e5 = event(&sim, 1, "warning", "2024-05-01T10:00:02Z").await;
    let e6 = event(&sim, 1, "critical", "2024-05-01T10:00:01Z").await;
    let e7 = event(&sim, 1, "info", "2024-05-01T10:05:00Z").await;
    let e8 = event(&sim, 1, "functional_failure", "2024-05-01T10:05:00Z").await;
    let restarted = adapter(&sim);
    let b3 = restarted.poll_events(&tenant, Some(&Cursor(persisted)), 100, None).await.unwrap();
    // Arrival (event_db_id) order, whatever the rise times; every event exactly once overall.
    assert_eq!(b3.events.iter().map(|e| e.source_id.as_str()).collect::<Vec<_>>(), [&e5, &e6, &e7, &e8]);
    let b4 = restarted.poll_events(&tenant, Some(&b3.next), 100, None).await.unwrap();
    assert!(b4.events.is_empty(), "{:?}", b4.events);
    assert!(!b4.more);

    // The journal shows every iterator released.
    let journal: Vec<Value> =
        sim.requests().iter().filter_map(|e| Some(json!({"path": e.path, "body": e.json()?}))).collect();
    let created = journal.iter().filter(|e| e["path"].as_str().unwrap().ends_with("CreateEventProcessing2")).count();
    let released = journal.iter().filter(|e| e["path"].as_str().unwrap().ends_with("ReleaseIterator")).count();
    assert_eq!(created, 5);
    assert_eq!(released, 5);
    assert!(journal.iter().any(|e| e["path"].as_str().unwrap().ends_with("Session.EndSession")));
}

#[tokio::test]
async fn status_snapshot_with_descriptions_and_group_levels() {
    let sim = sim().await;
    // Customer B's group makes "Databases are out of date" Critical (its default is Warning).
    control(
        &sim,
        reqwest::Method::POST,
        "/_sim/vservers",
        json!({"id": 2, "name": "Customer B", "critical": ["databases_out_of_date", "license_expired"],
               "warning": ["many_viruses_detected", "restart_required"]}),
    )
    .await;
    let put = |host: &str, body: Value| {
        let path = format!("/_sim/hosts/2/{host}");
        let sim = &sim;
        async move { control(sim, reqwest::Method::PUT, &path, body).await }
    };
    put("g-ok", json!({"name": "ok-pc", "descriptions": []})).await;
    put("g-db", json!({"name": "db-pc", "descriptions": ["databases_out_of_date", "many_viruses_detected"]})).await;
    put("g-rb", json!({"name": "rb-pc", "descriptions": ["restart_required", "unknown:23"]})).await;
    for i in 0..7 {
        put(&format!("g-more-{i}"), json!({"descriptions": []})).await;
    }
    control(&sim, reqwest::Method::PUT, "/_sim/hosts/0/g-main", json!({"descriptions": ["license_expired"]})).await;

    let mut ksc = adapter(&sim);
    let mut config = ksc.config().clone();
    config.host_chunk_size = 4;
    ksc = KscSource::new(config).unwrap();
    let snap = ksc.snapshot(&tenant_id("lab", 2)).await.unwrap();
    assert_eq!(snap.devices.len(), 10, "every host of the virtual server, across chunks");
    assert_eq!(snap.unknown_descriptions, 1);
    let dev = |n: &str| snap.devices.iter().find(|d| d.device.name == n).unwrap();
    assert_eq!(dev("ok-pc").status, ComputerStatus::Ok);
    let db = dev("db-pc");
    assert_eq!(db.device.id.as_str(), "g-db");
    assert_eq!(db.status, ComputerStatus::Critical);
    let got: Vec<(String, StatusLevel)> = db.active.iter().map(|a| (a.description.code(), a.level)).collect();
    assert_eq!(
        got,
        [
            ("many_viruses_detected".into(), StatusLevel::Warning),
            ("databases_out_of_date".into(), StatusLevel::Critical)
        ]
    );
    let rb = dev("rb-pc");
    assert_eq!(rb.status, ComputerStatus::Warning);
    let got: Vec<String> = rb.active.iter().map(|a| a.description.code()).collect();
    assert_eq!(got, ["restart_required", "unknown:23"]);
    assert_eq!(rb.active[1].description.info(), None);

    let main = ksc.snapshot(&tenant_id("lab", 0)).await.unwrap();
    assert_eq!(main.devices.len(), 1);
    assert_eq!(main.devices[0].active[0].level, StatusLevel::Critical);

    // Accessors all released; group info read once per group.
    let paths: Vec<String> = sim.requests().into_iter().map(|e| e.path).collect();
    let n = |m: &str| paths.iter().filter(|p| p.ends_with(m)).count();
    assert_eq!(n("HostGroup.FindHosts"), 2);
    assert_eq!(n("ChunkAccessor.Release"), 2);
    assert_eq!(n("ChunkAccessor.GetItemsChunk"), 4);
    assert_eq!(n("HostGroup.GetGroupInfoEx"), 2);
}

#[tokio::test]
async fn an_expired_session_is_replaced_transparently() {
    let sim = sim().await;
    let ksc = adapter(&sim);
    ksc.client().ping("").await.unwrap();
    control(&sim, reqwest::Method::POST, "/_sim/clock", json!({"advance_secs": 1900})).await;
    let snap = ksc.snapshot(&tenant_id("lab", 0)).await.unwrap();
    assert!(snap.devices.is_empty());
    let statuses: Vec<(String, u16)> =
        sim.requests().into_iter().map(|e| (e.path.trim_start_matches("/api/v1.0/").to_owned(), e.status)).collect();
    assert_eq!(
        &statuses[..4],
        [
            ("Session.StartSession".to_owned(), 200),
            ("Session.Ping".to_owned(), 200),
            ("HostGroup.FindHosts".to_owned(), 403),
            ("Session.StartSession".to_owned(), 200),
        ]
    );
    // Bad credentials against the simulator: an Auth port error.
    let c = KscConfig::new(sim.base_url(), "ksc-admin", Secret::new("wrong"));
    let err = KscSource::new(c).unwrap().snapshot(&tenant_id("main", 0)).await.unwrap_err();
    assert_eq!(err.kind, ticketing_core::ports::PortErrorKind::Auth);
}

fn ago(hours: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(hours)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn ids(batch: &ticketing_core::ports::EventBatch) -> Vec<&str> {
    batch.events.iter().map(|e| e.source_id.as_str()).collect()
}

/// Regression: the cursor was the last `rise_time` minus 60 s, so an event that reached the
/// server late (an offline laptop delivering with its original time) was never read.
#[tokio::test]
async fn late_arriving_events_are_read_after_the_cursor_and_never_twice() {
    let sim = sim().await;
    let ksc = adapter(&sim);
    let tenant = tenant_id("lab", 0);
    let window = || Some(chrono::Utc::now() - chrono::Duration::hours(24));
    let a = event(&sim, 0, "critical", &ago(0)).await;
    let first = ksc.poll_events(&tenant, None, 100, window()).await.unwrap();
    assert_eq!(ids(&first), [&a]);

    // Arrive now, happened earlier: 1 h, 23 h and 25 h ago.
    let b = event(&sim, 0, "warning", &ago(1)).await;
    let c = event(&sim, 0, "info", &ago(23)).await;
    let _d = event(&sim, 0, "critical", &ago(25)).await;
    let second = ksc.poll_events(&tenant, Some(&first.next), 100, window()).await.unwrap();
    assert_eq!(ids(&second), [&b, &c], "late events inside the window, in arrival order; D is outside");
    assert!(!second.more);

    // Polling again, and from a new process with the stored cursor, returns nothing twice.
    let again = ksc.poll_events(&tenant, Some(&second.next), 100, window()).await.unwrap();
    assert!(again.events.is_empty(), "{:?}", ids(&again));
    let stored = Cursor(second.next.0.clone());
    drop(ksc);
    let restarted = adapter(&sim);
    let after_restart = restarted.poll_events(&tenant, Some(&stored), 100, window()).await.unwrap();
    assert!(after_restart.events.is_empty(), "{:?}", ids(&after_restart));
    let e = event(&sim, 0, "info", &ago(2)).await;
    let last = restarted.poll_events(&tenant, Some(&after_restart.next), 100, window()).await.unwrap();
    assert_eq!(ids(&last), [&e]);
    assert_eq!(last.next.0, format!("dbid:{e}"), "self-describing high-water mark");
}

fn at(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A cursor stored by the earlier adapter (`{"v":1,"rise_time":..,"seen":[..]}`) is read once
/// by time (old instant minus the overlap, seen ids dropped), then replaced by a `dbid:` mark.
#[tokio::test]
async fn an_old_form_cursor_returns_exactly_the_unread_events_then_a_dbid_cursor() {
    let sim = sim().await;
    let tenant = tenant_id("lab", 0);
    let t = chrono::Utc::now() - chrono::Duration::hours(2);
    let s = chrono::Duration::seconds;
    let e1 = event(&sim, 0, "info", &at(t)).await;
    let e2 = event(&sim, 0, "info", &at(t + s(1))).await;
    // What the old adapter stored after handing on e1 and e2 (overlap 60 s).
    let old = Cursor(
        json!({"v": 1, "rise_time": at(t + s(1)),
               "seen": [{"id": e1.parse::<i64>().unwrap(), "at": at(t)}, {"id": e2.parse::<i64>().unwrap(), "at": at(t + s(1))}]})
        .to_string(),
    );
    let e3 = event(&sim, 0, "warning", &at(t + s(1))).await;
    let e4 = event(&sim, 0, "critical", &at(t - s(30))).await; // late, inside the old overlap
    let e5 = event(&sim, 0, "info", &at(t + s(300))).await;
    let ksc = adapter(&sim);
    let window = Some(chrono::Utc::now() - chrono::Duration::hours(24));
    let batch = ksc.poll_events(&tenant, Some(&old), 100, window).await.unwrap();
    let mut got = ids(&batch);
    got.sort_by_key(|id| id.parse::<i64>().unwrap());
    assert_eq!(got, [&e3, &e4, &e5], "exactly the unread events");
    assert_eq!(batch.next.0, format!("dbid:{e5}"));
    let idle = ksc.poll_events(&tenant, Some(&batch.next), 100, window).await.unwrap();
    assert!(idle.events.is_empty(), "{:?}", ids(&idle));
    let e6 = event(&sim, 0, "info", &at(t - s(3600))).await;
    let next = ksc.poll_events(&tenant, Some(&idle.next), 100, window).await.unwrap();
    assert_eq!(ids(&next), [&e6]);
}

/// The read per poll is the new events plus a few one-record probes, not the whole window.
#[tokio::test]
async fn a_poll_reads_the_new_events_and_a_few_probes_not_the_window() {
    let sim = sim().await;
    let tenant = tenant_id("lab", 0);
    let now = chrono::Utc::now();
    for i in 0..200 {
        event(&sim, 0, "info", &at(now - chrono::Duration::seconds(i))).await;
    }
    let mut c = adapter(&sim).config().clone();
    c.event_page_size = 50;
    let ksc = KscSource::new(c).unwrap();
    let window = Some(now - chrono::Duration::hours(24));
    let mut cursor = None;
    let mut total = 0;
    loop {
        let b = ksc.poll_events(&tenant, cursor.as_ref(), 70, window).await.unwrap();
        total += b.events.len();
        cursor = Some(b.next);
        if !b.more {
            break;
        }
    }
    assert_eq!(total, 200);
    let read = |sim: &SimHandle, from: usize| -> (usize, i64) {
        let ranges: Vec<Value> = sim.requests()[from..]
            .iter()
            .filter(|e| e.path.ends_with("GetRecordRange"))
            .filter_map(|e| e.json())
            .collect();
        let records = ranges.iter().map(|b| b["nEnd"].as_i64().unwrap() - b["nStart"].as_i64().unwrap()).sum();
        (ranges.len(), records)
    };
    // Idle: one probe of the newest record.
    let before = sim.requests().len();
    let idle = ksc.poll_events(&tenant, cursor.as_ref(), 70, window).await.unwrap();
    assert!(idle.events.is_empty());
    assert_eq!(read(&sim, before), (1, 1));
    // Three new events: probes (newest, oldest, binary search ≤ 8) plus one page of 3.
    let news = [
        event(&sim, 0, "info", &at(now)).await,
        event(&sim, 0, "info", &at(now)).await,
        event(&sim, 0, "info", &at(now)).await,
    ];
    let before = sim.requests().len();
    let b = ksc.poll_events(&tenant, Some(&idle.next), 70, window).await.unwrap();
    assert_eq!(ids(&b), news.iter().map(String::as_str).collect::<Vec<_>>());
    let (calls, records) = read(&sim, before);
    assert!(calls <= 11 && records <= 13, "{calls} range calls reading {records} records");
}

// ---------------------------------------------------------------------------------------------
// TLS against `ksc-sim --tls`
// ---------------------------------------------------------------------------------------------

async fn tls_sim(ca: bool, hostnames: &[&str]) -> (SimHandle, ksc::SimCert) {
    let mut opts = ksc::TlsOptions { ca, ..ksc::TlsOptions::default() };
    if !hostnames.is_empty() {
        opts.hostnames = hostnames.iter().map(|h| (*h).to_owned()).collect();
    }
    ksc::start_tls("127.0.0.1:0".parse().unwrap(), ksc::Config::default(), &opts).await.unwrap()
}

fn pem_file(cert: &ksc::SimCert, name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("ksc-adapter-{}-{name}.pem", std::process::id()));
    std::fs::write(&path, &cert.pem).unwrap();
    path
}

fn tls_adapter(sim: &SimHandle, tweak: impl FnOnce(&mut KscConfig)) -> KscSource {
    let mut c = KscConfig::new(sim.base_url(), ksc::DEFAULT_USER, Secret::new(ksc::DEFAULT_PASSWORD));
    c.retry = RetryPolicy::NONE;
    tweak(&mut c);
    KscSource::new(c).unwrap()
}

#[tokio::test]
async fn a_ca_true_server_certificate_pinned_by_ca_file_is_accepted() {
    let (sim, cert) = tls_sim(true, &[]).await;
    let path = pem_file(&cert, "ca-true");
    let ksc = tls_adapter(&sim, |c| c.tls = ksc_adapter::TlsVerification::CaFile(path.clone()));
    ksc.client().ping("").await.unwrap();
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_ca_false_server_certificate_given_as_ca_file_is_accepted() {
    let (sim, cert) = tls_sim(false, &[]).await;
    let path = pem_file(&cert, "ca-false");
    let ksc = tls_adapter(&sim, |c| c.tls = ksc_adapter::TlsVerification::CaFile(path.clone()));
    ksc.client().ping("").await.unwrap();
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_server_certificate_pinned_by_sha256_is_accepted_and_a_wrong_pin_refused() {
    let (sim, cert) = tls_sim(true, &[]).await;
    let lower = cert.sha256.to_lowercase().replace(':', "");
    tls_adapter(&sim, |c| c.cert_sha256 = Some(lower)).client().ping("").await.unwrap();
    tls_adapter(&sim, |c| c.cert_sha256 = Some(cert.sha256.clone())).client().ping("").await.unwrap();
    let wrong = "00".repeat(32);
    let err = tls_adapter(&sim, |c| c.cert_sha256 = Some(wrong)).client().ping("").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not pinned") && text.contains(&cert.sha256), "{text}");
    assert!(matches!(err, ksc_adapter::KscError::Tls { .. }) && !err.is_transient(), "{err:?}");
    let port: ticketing_core::ports::PortError = err.into();
    assert_eq!(port.kind, ticketing_core::ports::PortErrorKind::Other);
    // Without any pin the self-signed certificate is not trusted at all.
    assert!(tls_adapter(&sim, |_| {}).client().ping("").await.is_err());
    // A malformed fingerprint is a configuration error at build time.
    let mut c = KscConfig::new(sim.base_url(), "u", Secret::new("p"));
    c.cert_sha256 = Some("AB:CD".into());
    assert!(matches!(KscSource::new(c), Err(ksc_adapter::KscError::Config(m)) if m.contains("fingerprint")));
}

#[tokio::test]
async fn a_host_name_mismatch_is_refused_unless_accept_invalid_hostnames() {
    let (sim, cert) = tls_sim(true, &["ksc.example.invalid"]).await;
    let path = pem_file(&cert, "mismatch");
    let err = tls_adapter(&sim, |c| c.tls = ksc_adapter::TlsVerification::CaFile(path.clone()))
        .client()
        .ping("")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
    assert_eq!(err.class(), ksc_adapter::ErrorClass::Tls);
    let err = tls_adapter(&sim, |c| c.cert_sha256 = Some(cert.sha256.clone())).client().ping("").await.unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
    let lax = tls_adapter(&sim, |c| {
        c.tls = ksc_adapter::TlsVerification::CaFile(path.clone());
        c.accept_invalid_hostnames = true;
    });
    lax.client().ping("").await.unwrap();
    let lax =
        tls_adapter(&sim, |c| *c = c.clone().with_cert_sha256(cert.sha256.clone()).with_accept_invalid_hostnames(true));
    lax.client().ping("").await.unwrap();
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn request_and_connect_timeouts_are_configurable() {
    let sim = sim().await;
    control(
        &sim,
        reqwest::Method::POST,
        "/_sim/faults",
        json!({"path_regex": "Session.StartSession", "delay_ms": 3000, "count": 1}),
    )
    .await;
    let mut c = KscConfig::new(sim.base_url(), ksc::DEFAULT_USER, Secret::new(ksc::DEFAULT_PASSWORD))
        .with_request_timeout(Duration::from_millis(300))
        .with_connect_timeout(Duration::from_millis(300));
    c.retry = RetryPolicy::NONE;
    let started = std::time::Instant::now();
    let err = KscSource::new(c).unwrap().client().ping("").await.unwrap_err();
    assert!(matches!(err, ksc_adapter::KscError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

    // A server that takes the TCP connection but never answers the TLS handshake.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let mut c = KscConfig::new(url, "u", Secret::new("p"))
        .with_connect_timeout(Duration::from_millis(300))
        .with_request_timeout(Duration::from_secs(30));
    c.retry = RetryPolicy::NONE;
    let started = std::time::Instant::now();
    let err = KscSource::new(c).unwrap().client().ping("").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}: {err}", started.elapsed());
    assert_eq!(err.class(), ksc_adapter::ErrorClass::Transient, "{err:?}");
    drop(silent);
}

// ---------------------------------------------------------------------------------------------
// Simulator facts the adapter depends on (`ksc-api.md` §10)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_severity_0_record_is_reported_malformed_by_id_and_the_mark_moves_past_it() {
    let sim = sim().await;
    let tenant = tenant_id("lab", 0);
    let ok1 = event(&sim, 0, "info", &ago(0)).await;
    let bad = control(
        &sim,
        reqwest::Method::POST,
        "/_sim/events",
        json!({"vserver": 0, "severity": "invalid", "event_type": "X", "host": "guid-pc1"}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let ok2 = event(&sim, 0, "warning", &ago(0)).await;
    let b = adapter(&sim).poll_events(&tenant, None, 10, None).await.unwrap();
    assert_eq!(ids(&b), [&ok1, &ok2]);
    assert_eq!(b.malformed.len(), 1);
    assert_eq!(b.malformed[0].id, bad);
    assert!(b.malformed[0].reason.contains("GNRL_EA_SEVERITY 0"), "{}", b.malformed[0].reason);
    assert_eq!(b.next.0, format!("dbid:{ok2}"));
}

#[tokio::test]
async fn event_db_ids_above_32_bits_survive_into_events_and_the_cursor() {
    let sim = sim().await;
    let tenant = tenant_id("lab", 0);
    let big = (1_i64 << 33) + 7;
    control(
        &sim,
        reqwest::Method::POST,
        "/_sim/events",
        json!({"vserver": 0, "severity": "critical", "event_type": "X", "event_db_id": big}),
    )
    .await;
    let ksc = adapter(&sim);
    let b = ksc.poll_events(&tenant, None, 10, None).await.unwrap();
    assert_eq!(ids(&b), [big.to_string()]);
    assert_eq!(b.next.0, format!("dbid:{big}"));
    let next = event(&sim, 0, "info", &ago(0)).await;
    assert_eq!(next, (big + 1).to_string());
    let b = ksc.poll_events(&tenant, Some(&b.next), 10, None).await.unwrap();
    assert_eq!(ids(&b), [&next]);
}

#[tokio::test]
async fn records_with_null_fields_left_out_convert_and_pages_stay_under_65536() {
    let sim = sim().await;
    let tenant = tenant_id("lab", 0);
    control(&sim, reqwest::Method::POST, "/_sim/events", json!({"vserver": 0, "severity": "info", "event_type": "X"}))
        .await;
    let mut c = adapter(&sim).config().clone();
    c.event_page_size = 1_000_000; // clamped to events::MAX_PAGE; the server refuses >= 65536
    // An old-form cursor: its read pages without knowing the count, so the clamp matters.
    let old = Cursor(json!({"v": 1, "rise_time": ago(1), "seen": []}).to_string());
    let b = KscSource::new(c).unwrap().poll_events(&tenant, Some(&old), 10, None).await.unwrap();
    assert!(b.malformed.is_empty(), "{:?}", b.malformed);
    assert_eq!(b.events.len(), 1);
    assert_eq!((b.events[0].device.as_ref(), b.events[0].text.as_str()), (None, ""));
    let widest = sim
        .requests()
        .iter()
        .filter(|e| e.path.ends_with("GetRecordRange"))
        .filter_map(|e| e.json())
        .map(|b| b["nEnd"].as_i64().unwrap() - b["nStart"].as_i64().unwrap())
        .max()
        .unwrap();
    assert_eq!(widest, ksc_adapter::events::MAX_PAGE as i64);
}

/// The mark's position is found for every possible mark, ids with gaps included.
#[tokio::test]
async fn every_mark_resumes_exactly_after_itself() {
    let sim = sim().await;
    let tenant = tenant_id("lab", 0);
    let mut all = Vec::new();
    for i in 0..23_i64 {
        let mut body = json!({"vserver": 0, "severity": "info", "event_type": "X", "occurred_at": ago(i % 5)});
        if i == 11 {
            body["event_db_id"] = json!(1_i64 << 35); // a gap, and above 32 bits
        }
        all.push(control(&sim, reqwest::Method::POST, "/_sim/events", body).await["id"].as_i64().unwrap());
    }
    let ksc = adapter(&sim);
    let window = Some(chrono::Utc::now() - chrono::Duration::hours(24));
    let mut marks: Vec<i64> = all.clone();
    marks.extend([0, all[10] + 1, (1_i64 << 35) - 1, i64::MAX]);
    for mark in marks {
        let b = ksc.poll_events(&tenant, Some(&Cursor(format!("dbid:{mark}"))), 1000, window).await.unwrap();
        let want: Vec<String> = all.iter().filter(|id| **id > mark).map(ToString::to_string).collect();
        assert_eq!(ids(&b), want.iter().map(String::as_str).collect::<Vec<_>>(), "mark {mark}");
        let next = if want.is_empty() { format!("dbid:{mark}") } else { format!("dbid:{}", want.last().unwrap()) };
        assert_eq!(b.next.0, next, "mark {mark}");
    }
}
