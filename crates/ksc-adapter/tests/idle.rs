//! Issue #29 against `ksc-sim`: the Security Center calls of an idle pass, the group-mask cache
//! and its bound, and events by subscription (arrival, a lost subscription caught up by
//! cursor with nothing lost and nothing twice). Calls are counted by the simulator
//! (`GET /_sim/calls`). Waits follow the configured periods and lifetimes, never a guess.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ksc_adapter::{HostSearch, KscConfig, KscSource, RetryPolicy, tenant_id};
use serde_json::{Value, json};
use simulators::common::SimHandle;
use simulators::ksc;
use ticketing_core::model::{ComputerStatus, StatusLevel, StatusSnapshot, TenantId};
use ticketing_core::ports::{Cursor, EventSource, StatusSource};
use ticketing_core::secret::Secret;

async fn sim_with(period: Duration) -> SimHandle {
    let config = ksc::Config { con_events_period: period, ..ksc::Config::default() };
    ksc::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap()
}

fn config(sim: &SimHandle) -> KscConfig {
    let mut c = KscConfig::new(sim.base_url(), ksc::DEFAULT_USER, Secret::new(ksc::DEFAULT_PASSWORD));
    c.server_label = "lab".into();
    c.include_main_server = false;
    c.retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
    };
    c
}

async fn control(sim: &SimHandle, verb: reqwest::Method, path: &str, body: Value) -> Value {
    let resp =
        reqwest::Client::new().request(verb, format!("{}{path}", sim.base_url())).json(&body).send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn calls(sim: &SimHandle) -> BTreeMap<String, u64> {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/_sim/calls", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

/// The calls made between two counts, by method (methods with no calls left out).
fn since(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(m, n)| (m.clone(), n - before.get(m).copied().unwrap_or(0))).filter(|(_, n)| *n > 0).collect()
}

async fn vserver(sim: &SimHandle, id: i64, critical: &[&str], warning: &[&str]) {
    control(
        sim,
        reqwest::Method::POST,
        "/_sim/vservers",
        json!({"id": id, "name": format!("Tenant {id}"), "critical": critical, "warning": warning}),
    )
    .await;
}

async fn host(sim: &SimHandle, vs: i64, name: &str, descriptions: &[&str]) {
    control(sim, reqwest::Method::PUT, &format!("/_sim/hosts/{vs}/{name}"), json!({"descriptions": descriptions}))
        .await;
}

async fn event(sim: &SimHandle, vs: i64) -> String {
    let v = control(
        sim,
        reqwest::Method::POST,
        "/_sim/events",
        json!({"vserver": vs, "severity": "critical", "event_type": "GNRL_EV_VIRUS_FOUND", "host": "pc"}),
    )
    .await;
    v["id"].as_i64().unwrap().to_string()
}

fn level_of(snap: &StatusSnapshot, device: &str) -> StatusLevel {
    let d = snap.devices.iter().find(|d| d.device.id.as_str() == device).unwrap();
    d.active[0].level
}

const TENANTS: i64 = 4;

#[tokio::test]
async fn an_idle_pass_makes_at_most_three_calls_per_tenant() {
    let sim = sim_with(Duration::from_secs(3600)).await;
    for vs in 1..=TENANTS {
        vserver(&sim, vs, &[], &["databases_out_of_date"]).await;
        host(&sim, vs, &format!("ok-{vs}"), &[]).await;
        host(&sim, vs, &format!("bad-{vs}"), &["databases_out_of_date"]).await;
        event(&sim, vs).await;
    }
    let mut c = config(&sim);
    c.events_subscription = true;
    let ksc = KscSource::new(c).unwrap();
    let tenants: Vec<TenantId> = (1..=TENANTS).map(|vs| tenant_id("lab", vs)).collect();
    // The first pass: logins, the group masks, the subscriptions and the first event scans.
    assert_eq!(EventSource::tenants(&ksc).await.unwrap().len(), TENANTS as usize);
    let mut cursors = Vec::new();
    for t in &tenants {
        ksc.snapshot(t).await.unwrap();
        let b = ksc.poll_events(t, None, 100, None).await.unwrap();
        assert_eq!(b.events.len(), 1);
        cursors.push(b.next);
    }
    // An idle status pass: FindHosts, one chunk, Release. No login, no group masks. Only the
    // host with a problem is read.
    let before = calls(&sim).await;
    for t in &tenants {
        let snap = ksc.snapshot(t).await.unwrap();
        let read: Vec<&str> = snap.devices.iter().map(|d| d.device.name.as_str()).collect();
        assert!(read.len() == 1 && read[0].starts_with("bad-"), "{read:?}");
    }
    let pass = since(&before, &calls(&sim).await);
    let n = TENANTS as u64;
    assert_eq!(
        pass,
        BTreeMap::from([
            ("ChunkAccessor.GetItemsChunk".to_owned(), n),
            ("ChunkAccessor.Release".to_owned(), n),
            ("HostGroup.FindHosts".to_owned(), n)
        ]),
        "an idle status pass"
    );
    assert!(pass.values().sum::<u64>() <= 3 * n);
    // An idle event poll by subscription, within the server's period (an hour here): no call.
    let before = calls(&sim).await;
    for (t, cursor) in tenants.iter().zip(&cursors) {
        let b = ksc.poll_events(t, Some(cursor), 100, None).await.unwrap();
        assert!(b.events.is_empty());
        assert_eq!(&b.next, cursor);
    }
    assert_eq!(since(&before, &calls(&sim).await), BTreeMap::new(), "idle event polls within the period");
}

/// The names and statuses a snapshot lists, sorted.
fn listed(snap: &StatusSnapshot) -> Vec<(String, ComputerStatus)> {
    let mut v: Vec<_> = snap.devices.iter().map(|d| (d.device.name.clone(), d.status)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[tokio::test]
async fn a_pass_reads_only_hosts_with_problems_and_names_one_that_turned_ok() {
    let sim = sim_with(Duration::from_secs(3600)).await;
    vserver(&sim, 1, &[], &["databases_out_of_date"]).await;
    for i in 0..25 {
        host(&sim, 1, &format!("ok-{i:02}"), &[]).await;
    }
    host(&sim, 1, "bad", &["databases_out_of_date"]).await;
    let mut c = config(&sim);
    c.host_chunk_size = 10;
    let ksc = KscSource::new(c).unwrap();
    let t = tenant_id("lab", 1);
    // The first snapshot since start reads every host (26: three chunks).
    let before = calls(&sim).await;
    let first = ksc.snapshot(&t).await.unwrap();
    assert_eq!(first.devices.len(), 26);
    assert_eq!(since(&before, &calls(&sim).await)["ChunkAccessor.GetItemsChunk"], 3);
    // Then only the host that is not OK: one chunk, one host.
    let before = calls(&sim).await;
    let snap = ksc.snapshot(&t).await.unwrap();
    assert_eq!(listed(&snap), [("bad".to_owned(), ComputerStatus::Warning)]);
    assert_eq!(since(&before, &calls(&sim).await)["ChunkAccessor.GetItemsChunk"], 1);
    // It turns OK: the search finds nothing (no chunk is read), and the host is listed as OK
    // under its name, for LISTED_OK (3) snapshots, then no more.
    host(&sim, 1, "bad", &[]).await;
    for _ in 0..3 {
        let before = calls(&sim).await;
        let snap = ksc.snapshot(&t).await.unwrap();
        assert_eq!(listed(&snap), [("bad".to_owned(), ComputerStatus::Ok)]);
        assert_eq!(
            since(&before, &calls(&sim).await),
            BTreeMap::from([("ChunkAccessor.Release".to_owned(), 1), ("HostGroup.FindHosts".to_owned(), 1)])
        );
    }
    assert!(ksc.snapshot(&t).await.unwrap().devices.is_empty());
}

#[tokio::test]
async fn host_search_all_reads_every_host_in_every_snapshot() {
    let sim = sim_with(Duration::from_secs(3600)).await;
    vserver(&sim, 1, &[], &["databases_out_of_date"]).await;
    host(&sim, 1, "ok", &[]).await;
    host(&sim, 1, "bad", &["databases_out_of_date"]).await;
    let mut c = config(&sim);
    c.host_search = HostSearch::All;
    let ksc = KscSource::new(c).unwrap();
    let t = tenant_id("lab", 1);
    for _ in 0..2 {
        let snap = ksc.snapshot(&t).await.unwrap();
        assert_eq!(listed(&snap), [("bad".to_owned(), ComputerStatus::Warning), ("ok".to_owned(), ComputerStatus::Ok)]);
    }
}

#[tokio::test]
async fn an_idle_event_poll_by_subscription_is_one_retrieve() {
    let period = Duration::from_millis(200);
    let sim = sim_with(period).await;
    vserver(&sim, 1, &[], &[]).await;
    let mut c = config(&sim);
    c.events_subscription = true;
    let ksc = KscSource::new(c).unwrap();
    let t = tenant_id("lab", 1);
    let first = ksc.poll_events(&t, None, 100, None).await.unwrap();
    // Once the period is over, a poll is one Retrieve.
    tokio::time::sleep(period).await;
    let before = calls(&sim).await;
    let b = ksc.poll_events(&t, Some(&first.next), 100, None).await.unwrap();
    assert!(b.events.is_empty());
    assert_eq!(since(&before, &calls(&sim).await), BTreeMap::from([("ConEvents.Retrieve".to_owned(), 1)]));
}

#[tokio::test]
async fn group_masks_are_cached_per_virtual_server_within_the_ttl() {
    let sim = sim_with(Duration::from_secs(1)).await;
    vserver(&sim, 1, &["databases_out_of_date"], &[]).await;
    vserver(&sim, 2, &[], &["databases_out_of_date"]).await;
    host(&sim, 1, "pc-1", &["databases_out_of_date"]).await;
    host(&sim, 2, "pc-2", &["databases_out_of_date"]).await;
    let mut c = config(&sim);
    c.group_masks_ttl = Duration::from_secs(3600);
    let ksc = KscSource::new(c).unwrap();
    let (t1, t2) = (tenant_id("lab", 1), tenant_id("lab", 2));
    assert_eq!(level_of(&ksc.snapshot(&t1).await.unwrap(), "pc-1"), StatusLevel::Critical);
    assert_eq!(level_of(&ksc.snapshot(&t2).await.unwrap(), "pc-2"), StatusLevel::Warning, "per virtual server");
    // Tenant 1's level changes on the server; within the TTL the cached masks still apply.
    vserver(&sim, 1, &[], &["databases_out_of_date"]).await;
    let before = calls(&sim).await;
    assert_eq!(level_of(&ksc.snapshot(&t1).await.unwrap(), "pc-1"), StatusLevel::Critical);
    assert!(!since(&before, &calls(&sim).await).contains_key("HostGroup.GetGroupInfoEx"));
    // TTL zero: every snapshot reads the masks, so the change shows at once.
    let mut c = config(&sim);
    c.group_masks_ttl = Duration::ZERO;
    let fresh = KscSource::new(c).unwrap();
    assert_eq!(level_of(&fresh.snapshot(&t1).await.unwrap(), "pc-1"), StatusLevel::Warning);
    assert_eq!(level_of(&fresh.snapshot(&t1).await.unwrap(), "pc-1"), StatusLevel::Warning);
    assert_eq!(calls(&sim).await["HostGroup.GetGroupInfoEx"], 2 + 2);
}

#[tokio::test]
async fn a_level_change_is_seen_once_the_ttl_is_over() {
    let sim = sim_with(Duration::from_secs(1)).await;
    vserver(&sim, 1, &["databases_out_of_date"], &[]).await;
    host(&sim, 1, "pc-1", &["databases_out_of_date"]).await;
    let ttl = Duration::from_millis(300);
    let mut c = config(&sim);
    c.group_masks_ttl = ttl;
    let ksc = KscSource::new(c).unwrap();
    let t = tenant_id("lab", 1);
    assert_eq!(level_of(&ksc.snapshot(&t).await.unwrap(), "pc-1"), StatusLevel::Critical);
    // Taken after the snapshot: the adapter read the masks before this instant.
    let read = Instant::now();
    vserver(&sim, 1, &[], &["databases_out_of_date"]).await;
    // The bound: a snapshot that starts a TTL after the masks were read reads them again.
    tokio::time::sleep(ttl.saturating_sub(read.elapsed())).await;
    assert_eq!(level_of(&ksc.snapshot(&t).await.unwrap(), "pc-1"), StatusLevel::Warning);
    assert_eq!(calls(&sim).await["HostGroup.GetGroupInfoEx"], 2);
}

/// Polls `tenant` from `cursor` until `want` events are handed on in all, waiting the
/// server's polling period between polls (at most 50 periods).
async fn poll_until(
    ksc: &KscSource,
    tenant: &TenantId,
    cursor: &mut Cursor,
    period: Duration,
    want: usize,
    got: &mut Vec<String>,
) {
    for _ in 0..50 {
        if got.len() >= want {
            break;
        }
        tokio::time::sleep(period).await;
        let b = ksc.poll_events(tenant, Some(cursor), 100, None).await.unwrap();
        got.extend(b.events.iter().map(|e| e.source_id.as_str().to_owned()));
        *cursor = b.next;
    }
}

#[tokio::test]
async fn events_arrive_by_subscription_and_a_lost_one_catches_up_by_cursor() {
    let period = Duration::from_millis(100);
    let sim = sim_with(period).await;
    vserver(&sim, 1, &[], &[]).await;
    vserver(&sim, 2, &[], &[]).await;
    let mut c = config(&sim);
    c.events_subscription = true;
    let ksc = KscSource::new(c).unwrap();
    let t = tenant_id("lab", 1);
    let mut seeded = vec![event(&sim, 1).await];
    let first = ksc.poll_events(&t, None, 100, None).await.unwrap();
    let mut got: Vec<String> = first.events.iter().map(|e| e.source_id.as_str().to_owned()).collect();
    let mut cursor = first.next;
    assert_eq!(calls(&sim).await["ConEvents.Subscribe"], 1);
    // New events: the queue says so, the scan hands them on.
    seeded.push(event(&sim, 1).await);
    event(&sim, 2).await; // another tenant's
    seeded.push(event(&sim, 1).await);
    poll_until(&ksc, &t, &mut cursor, period, seeded.len(), &mut got).await;
    assert_eq!(got, seeded);
    assert!(calls(&sim).await["ConEvents.Retrieve"] >= 1);
    // The server loses every subscription; events stored meanwhile are caught up by cursor.
    control(&sim, reqwest::Method::POST, "/_sim/subscriptions/drop", json!({})).await;
    seeded.push(event(&sim, 1).await);
    seeded.push(event(&sim, 1).await);
    poll_until(&ksc, &t, &mut cursor, period, seeded.len(), &mut got).await;
    assert_eq!(got, seeded, "nothing lost, nothing twice");
    assert_eq!(calls(&sim).await["ConEvents.Subscribe"], 2, "subscribed again");
    // The session expires (and its subscription with it): the client logs in again, the
    // subscription is made again, the cursor catches up.
    seeded.push(event(&sim, 1).await);
    control(&sim, reqwest::Method::POST, "/_sim/clock", json!({"advance_secs": ksc::DEFAULT_SESSION_IDLE_SECS + 1}))
        .await;
    seeded.push(event(&sim, 1).await);
    poll_until(&ksc, &t, &mut cursor, period, seeded.len(), &mut got).await;
    assert_eq!(got, seeded, "nothing lost, nothing twice");
    assert_eq!(calls(&sim).await["ConEvents.Subscribe"], 3);
    // The main server's (names) and Tenant 1's, then Tenant 1's again.
    assert_eq!(calls(&sim).await["Session.StartSession"], 3);
    // Quiet again: polls hand back the same cursor and nothing else.
    for _ in 0..3 {
        tokio::time::sleep(period).await;
        let b = ksc.poll_events(&t, Some(&cursor), 100, None).await.unwrap();
        assert!(b.events.is_empty());
        assert_eq!(b.next, cursor);
    }
}

#[tokio::test]
async fn a_caller_cursor_other_than_the_last_scans_again() {
    // The engine did not keep the last batch (a failed commit): it polls with the older cursor
    // and must get the same events again, subscription or not.
    let period = Duration::from_secs(3600);
    let sim = sim_with(period).await;
    vserver(&sim, 1, &[], &[]).await;
    let mut c = config(&sim);
    c.events_subscription = true;
    let ksc = KscSource::new(c).unwrap();
    let t = tenant_id("lab", 1);
    let a = event(&sim, 1).await;
    let start = ksc.poll_events(&t, None, 100, None).await.unwrap();
    assert_eq!(start.events.len(), 1);
    let b = event(&sim, 1).await;
    // Rescan bound: with a cursor the scan returned, the queue is asked; here the period is an
    // hour, so the poll is idle and the event waits for the next scan.
    let idle = ksc.poll_events(&t, Some(&start.next), 100, None).await.unwrap();
    assert!(idle.events.is_empty());
    // Another cursor (from before the first scan): a scan, and both events.
    let again = ksc.poll_events(&t, Some(&Cursor(String::new())), 100, None).await.unwrap();
    assert_eq!(again.events.iter().map(|e| e.source_id.as_str()).collect::<Vec<_>>(), [a.as_str(), b.as_str()]);
}

#[tokio::test]
async fn a_quiet_subscription_still_scans_every_rescan_interval() {
    let sim = sim_with(Duration::from_secs(3600)).await;
    vserver(&sim, 1, &[], &[]).await;
    let rescan = Duration::from_millis(200);
    let mut c = config(&sim);
    c.events_subscription = true;
    c.events_rescan = rescan;
    let ksc = KscSource::new(c).unwrap();
    let t = tenant_id("lab", 1);
    let start = ksc.poll_events(&t, None, 100, None).await.unwrap();
    let scanned = Instant::now();
    // Stored, but (an hour's period) the queue is not asked: only the rescan finds it.
    let a = event(&sim, 1).await;
    tokio::time::sleep(rescan.saturating_sub(scanned.elapsed())).await;
    let b = ksc.poll_events(&t, Some(&start.next), 100, None).await.unwrap();
    assert_eq!(b.events.iter().map(|e| e.source_id.as_str()).collect::<Vec<_>>(), [a.as_str()]);
}

#[tokio::test]
async fn a_refused_subscription_falls_back_to_the_scan_and_is_asked_again_after_the_rescan_interval() {
    let sim = sim_with(Duration::from_millis(100)).await;
    vserver(&sim, 1, &[], &[]).await;
    let mut c = config(&sim);
    c.events_subscription = true;
    c.events_subscription_event = String::new(); // ksc-sim refuses an empty wstrEvent
    c.events_rescan = Duration::from_secs(3600);
    let ksc = KscSource::new(c).unwrap();
    let t = tenant_id("lab", 1);
    let mut cursor = ksc.poll_events(&t, None, 100, None).await.unwrap().next;
    let mut got = Vec::new();
    let mut seeded = Vec::new();
    for _ in 0..3 {
        seeded.push(event(&sim, 1).await);
        let b = ksc.poll_events(&t, Some(&cursor), 100, None).await.unwrap();
        got.extend(b.events.iter().map(|e| e.source_id.as_str().to_owned()));
        cursor = b.next;
    }
    assert_eq!(got, seeded, "every poll scanned");
    assert_eq!(calls(&sim).await["ConEvents.Subscribe"], 1, "not asked again within the rescan interval");
}
