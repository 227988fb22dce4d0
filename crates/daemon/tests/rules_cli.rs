//! The ticket lifecycle settings (issue 20) from the CLI and the admin API: a status row's
//! creation delay and reopen window through `rules set` / `POST /api/rules/bulk-edit`, an event
//! row's recurrence window and ticket text through `rules set` / `rules bulk-edit` (an unknown
//! template field refused with its line and column, exit 1), the maintenance windows (`rules
//! maintenance list|add|remove|set`, `GET|PUT|POST /api/rules/maintenance`, `DELETE
//! /api/rules/maintenance/{id}`) and the priority-follows-severity switches (`rules
//! priority-follows-severity PRODUCT on|off`, `POST /api/rules/priority-follows-severity`), each
//! a compare-and-swap on the rules revision: a stale `--revision` exits 3, a stale `If-Match` is
//! 409; an invalid window is refused with its problem (exit 1, 422); `rules preview` counts
//! recurrence notes apart and shows the sample ticket of a row with a template.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use msp_ticketd::admin::AdminState;
use msp_ticketd::engine::Shared;
use msp_ticketd::store::SqliteStore;
use reqwest::StatusCode;
use serde_json::{Value, json};
use ticketing_core::catalog::Catalog;
use ticketing_core::edit::RuleBook;
use ticketing_core::model::{Product, StatusLevel};
use ticketing_core::rules::{RuleSet, Section};
use ticketing_core::secret::Secret;

/// A fresh directory of this test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("msp-ticketd-rules-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A configuration whose store is in `dir` (the rules subcommands that do not save need no
/// PSA: nothing listens at its address).
fn config(dir: &Path) -> PathBuf {
    let text = format!(
        r#"
[store]
path = "{store}"

[admin]

[autotask]
username = "api@sim.local"
base_url = "http://127.0.0.1:9/atservicesrest"
secret = {{ value = "s" }}
integration_code = {{ value = "c" }}

[[security_center]]
name = "main"
url = "https://127.0.0.1:9"
user = "u"
password = {{ value = "p" }}
timeout_secs = 2

[[mapping]]
tenant = "ksc:main/vs:1"
account_id = 1
"#,
        store = dir.join("state.sqlite").display()
    );
    let path = dir.join("msp-ticketd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `msp-ticketd rules --config FILE ARGS…`: (exit code, stdout, stderr).
fn rules(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_msp-ticketd"))
        .arg("rules")
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the msp-ticketd binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(config: &Path, args: &[&str]) -> String {
    let (code, out, err) = rules(config, args);
    assert_eq!(code, 0, "rules {args:?}: {out}{err}");
    out
}

/// The revision `rules show` reports.
fn revision(config: &Path) -> u64 {
    let out = ok(config, &["show", "general"]);
    out.lines().next().and_then(|l| l.strip_prefix("revision ")).and_then(|r| r.parse().ok()).expect("a revision")
}

fn warning_row() -> String {
    Section::Statuses(Product::SecurityCenter, StatusLevel::Warning).rows()[0].to_string()
}

const PATCH_NIGHT: &str = r#"{"id":"patch-night","tenant":"ksc:main/vs:1","schedule":{"kind":"recurring","weekdays":["Tue"],"start":"22:00:00","duration_minutes":120,"time_zone":"Europe/Berlin","nth_of_month":2}}"#;

#[test]
fn rules_set_edits_a_status_rows_delay_and_reopen_window() {
    let dir = temp_dir("set");
    let cfg = config(&dir);
    let row = warning_row();
    let r0 = revision(&cfg);
    let out =
        ok(&cfg, &["--revision", &r0.to_string(), "set", &row, r#"{"create_delay_minutes":10,"reopen_hours":24}"#]);
    assert!(out.contains(&format!("draft updated (revision {})", r0 + 1)), "{out}");
    let out = ok(&cfg, &["show", "statuses/security_center/warning"]);
    let draft = out.lines().find(|l| l.contains("draft:") && l.contains("create_delay_minutes")).unwrap_or_default();
    assert!(draft.contains(r#""create_delay_minutes":10"#) && draft.contains(r#""reopen_hours":24"#), "{out}");
    assert!(out.contains("priority follows severity: saved off, draft off"), "{out}");
    // null turns the reopen window off, 0 the delay.
    ok(&cfg, &["set", &row, r#"{"create_delay_minutes":0,"reopen_hours":null}"#]);
    let out = ok(&cfg, &["show", "statuses/security_center/warning"]);
    assert!(!out.contains("create_delay_minutes") && !out.contains("reopen_hours"), "back to the guide: {out}");
    // Refused where it does not apply, or out of range: exit 1, the field named, nothing changed.
    let (code, _, err) = rules(&cfg, &["set", "security_center/event/critical", r#"{"reopen_hours":5}"#]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("reopen_hours does not apply to this row"), "{err}");
    let (code, _, err) = rules(&cfg, &["set", &row, r#"{"create_delay_minutes":99999}"#]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("create_delay_minutes must be between 0 and 10080"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rules_set_edits_an_event_rows_recurrence_window_and_ticket_text_and_refuses_an_unknown_field() {
    let dir = temp_dir("recurrence");
    let cfg = config(&dir);
    let row = "security_center/event/critical";
    let title = "{{ device.name }}: {{ what }} ({{ severity }})";
    let patch = json!({ "recurrence_hours": 24, "title_template": title }).to_string();
    let out = ok(&cfg, &["set", row, &patch]);
    assert!(out.contains("draft updated"), "{out}");
    let out = ok(&cfg, &["show", "events/security_center"]);
    let draft = out.lines().find(|l| l.contains("draft:") && l.contains("recurrence_hours")).unwrap_or_default();
    let rule: Value = serde_json::from_str(draft.trim().trim_start_matches("draft: ")).expect("the draft row as JSON");
    assert_eq!((rule["recurrence_hours"].as_u64(), rule["title_template"].as_str()), (Some(24), Some(title)), "{out}");
    // An unknown field: refused with its line and column, exit 1, nothing changed.
    let r = revision(&cfg);
    let bad = json!({ "title_template": "Virus\n  {{ devce.name }}" }).to_string();
    let (code, _, err) = rules(&cfg, &["set", row, &bad]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("title_template line 2, column 6: unknown field `devce.name`"), "{err}");
    let (code, _, err) = rules(
        &cfg,
        &["bulk-edit", "--patch", r#"{"description_template":"{% if %}"}"#, row, "security_center/event/warning"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("description_template line 1, column"), "{err}");
    assert_eq!(revision(&cfg), r, "nothing written");
    // Not on an Office 365 row; out of range.
    let (code, _, err) = rules(&cfg, &["set", "office365/event/malware_detected", r#"{"recurrence_hours":5}"#]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("recurrence_hours does not apply to this row"), "{err}");
    let (code, _, err) = rules(&cfg, &["set", row, r#"{"recurrence_hours":0}"#]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("recurrence_hours must be between 1 and 2160"), "{err}");
    // null clears both: back to the guide.
    ok(&cfg, &["set", row, r#"{"recurrence_hours":null,"title_template":null}"#]);
    let out = ok(&cfg, &["show", "events/security_center"]);
    assert!(!out.contains("recurrence_hours") && !out.contains("title_template"), "back to the guide: {out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rules_maintenance_and_priority_follows_severity_with_revision_checks() {
    let dir = temp_dir("maintenance");
    let cfg = config(&dir);
    let out = ok(&cfg, &["maintenance", "list"]);
    let r0 = revision(&cfg);
    assert!(out.contains(&format!("revision {r0}")) && out.contains("draft: 0 window(s)"), "{out}");
    let (stale, r1) = (r0.to_string(), (r0 + 1).to_string());
    let out = ok(&cfg, &["--revision", &stale, "maintenance", "add", PATCH_NIGHT]);
    assert!(out.contains(&format!("draft updated (revision {r1})")), "{out}");
    let out = ok(&cfg, &["maintenance", "list"]);
    assert!(out.contains("saved: 0 window(s)") && out.contains("draft: 1 window(s)"), "{out}");
    assert!(out.contains(r#""id":"patch-night""#) && out.contains(r#""nth_of_month":2"#), "{out}");

    // Refused: an unknown time zone, a taken id; exit 1 with the problem, nothing changed.
    let bad = PATCH_NIGHT.replace("patch-night", "mars").replace("Europe/Berlin", "Mars/Olympus");
    let (code, _, err) = rules(&cfg, &["maintenance", "add", &bad]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(r#"unknown time zone "Mars/Olympus""#) && err.contains("nothing changed"), "{err}");
    let (code, _, err) = rules(&cfg, &["maintenance", "add", PATCH_NIGHT]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("another window has the same id"), "{err}");
    // A stale --revision: exit 3, "changed elsewhere", nothing removed.
    let (code, _, err) = rules(&cfg, &["--revision", &stale, "maintenance", "remove", "patch-night"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains(&format!("changed elsewhere (now revision {r1})")), "{err}");
    assert!(ok(&cfg, &["maintenance", "list"]).contains("draft: 1 window(s)"));

    // set FILE replaces the list; remove takes one out.
    let file = dir.join("windows.json");
    let once = r#"{"id":"move","tenant":"ksc:main/vs:1","device":"srv-*","schedule":{"kind":"once","start":"2026-11-17T22:00:00Z","end":"2026-11-18T02:00:00Z"}}"#;
    std::fs::write(&file, format!("[{PATCH_NIGHT},{once}]")).unwrap();
    ok(&cfg, &["--revision", &r1, "maintenance", "set", file.to_str().unwrap()]);
    assert!(ok(&cfg, &["maintenance", "list"]).contains("draft: 2 window(s)"));
    ok(&cfg, &["maintenance", "remove", "patch-night"]);
    let out = ok(&cfg, &["maintenance", "list"]);
    assert!(out.contains("draft: 1 window(s)") && out.contains(r#""id":"move""#), "{out}");
    let (code, _, err) = rules(&cfg, &["maintenance", "remove", "nope"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(r#"no maintenance window "nope""#), "{err}");
    let out = ok(&cfg, &["show", "general"]);
    assert!(out.contains("maintenance windows draft:") && out.contains("(draft differs from saved)"), "{out}");

    // The priority switch, per product; Office 365 has no statuses: refused.
    ok(&cfg, &["priority-follows-severity", "security_center", "on"]);
    let out = ok(&cfg, &["show", "statuses/security_center/critical"]);
    assert!(out.contains("priority follows severity: saved off, draft on"), "{out}");
    assert!(ok(&cfg, &["show", "statuses/endpoint_cloud/critical"]).contains("saved off, draft off"));
    let (code, _, err) = rules(&cfg, &["priority-follows-severity", "office365", "on"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("priority_follows_severity does not apply"), "{err}");
    let (code, _, err) = rules(&cfg, &["--revision", &r1, "priority-follows-severity", "security_center", "off"]);
    assert_eq!(code, 3, "{err}");
    ok(&cfg, &["priority-follows-severity", "security_center", "off"]);
    assert!(ok(&cfg, &["show", "statuses/security_center/critical"]).contains("saved off, draft off"));
    let _ = std::fs::remove_dir_all(&dir);
}

// --- The admin API ---------------------------------------------------------------------------

const TOKEN: &str = "rules-api-token";

struct Api {
    base: String,
    shared: Arc<Shared>,
    http: reqwest::Client,
}

async fn api() -> Api {
    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    let (shared, writers) = Shared::new(store, RuleBook::new(RuleSet::default()));
    writers.engine.catalog.publish(Some(Catalog::example()));
    let app = msp_ticketd::admin::router(AdminState {
        shared: shared.clone(),
        token: Secret::new(TOKEN),
        reloader: None,
        access: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Api { base: format!("http://{addr}"), shared, http: reqwest::Client::new() }
}

impl Api {
    /// (status, ETag revision, body).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<u64>,
    ) -> (StatusCode, Option<u64>, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(r) = if_match {
            req = req.header("If-Match", format!("\"{r}\""));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let etag =
            resp.headers().get("etag").and_then(|v| v.to_str().ok()).and_then(|v| v.trim_matches('"').parse().ok());
        let text = resp.text().await.unwrap();
        (status, etag, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn window(id: &str, tz: &str) -> Value {
    json!({ "id": id, "tenant": "ksc:main/vs:1", "schedule": { "kind": "recurring", "weekdays": ["Sat", "Sun"],
            "start": "01:00:00", "duration_minutes": 240, "time_zone": tz } })
}

#[tokio::test]
async fn api_edits_windows_and_switches_on_the_draft_with_if_match_and_refuses_with_problems() {
    use reqwest::Method;
    let api = api().await;
    let (status, etag, body) = api.call(Method::GET, "/api/rules/maintenance", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let r0 = etag.expect("an ETag");
    assert_eq!(body["draft"], json!([]));

    // PUT the list with the current revision: 204 and the next revision.
    let list = json!([window("weekend", "Europe/Berlin")]);
    let (status, etag, _) = api.call(Method::PUT, "/api/rules/maintenance", Some(list.clone()), Some(r0)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r1 = etag.unwrap();
    assert!(r1 > r0);
    // The same PUT with the stale revision: 409 with the current one; nothing changed.
    let (status, etag, body) = api.call(Method::PUT, "/api/rules/maintenance", Some(json!([])), Some(r0)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!((etag, body["revision"].as_u64()), (Some(r1), Some(r1)));
    assert!(body["error"].as_str().unwrap().contains("changed elsewhere"), "{body}");
    assert_eq!(api.shared.rules().draft.maintenance.len(), 1);

    // An invalid window: 422 with the problem, in the other rule routes' shape.
    let (status, _, body) =
        api.call(Method::PUT, "/api/rules/maintenance", Some(json!([window("x", "Mars/Olympus")])), Some(r1)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["problems"][0]["field"], "maintenance");
    assert_eq!(body["problems"][0]["problem"]["problem"], "invalid_window");
    assert_eq!(body["problems"][0]["problem"]["window"], "x");
    assert!(body["messages"][0].as_str().unwrap().contains("unknown time zone"), "{body}");
    let (status, _, body) =
        api.call(Method::POST, "/api/rules/maintenance", Some(window("weekend", "UTC")), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a taken id: {body}");

    // POST adds one, DELETE removes one; an unknown id is 400.
    let (status, etag, _) =
        api.call(Method::POST, "/api/rules/maintenance", Some(window("nights", "UTC")), Some(r1)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r2 = etag.unwrap();
    let (status, _, _) = api.call(Method::DELETE, "/api/rules/maintenance/weekend", None, Some(r1)).await;
    assert_eq!(status, StatusCode::CONFLICT, "stale");
    let (status, etag, _) = api.call(Method::DELETE, "/api/rules/maintenance/weekend", None, Some(r2)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r3 = etag.unwrap();
    let (status, _, body) = api.call(Method::DELETE, "/api/rules/maintenance/weekend", None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, _, body) = api.call(Method::GET, "/api/rules/maintenance", None, None).await;
    assert_eq!(body["draft"][0]["id"], "nights");
    assert_eq!(body["saved"], json!([]), "the draft only");
    // Saved with General.
    let (status, _, _) =
        api.call(Method::POST, "/api/rules/save", Some(json!({ "section": "general" })), Some(r3)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(api.shared.rules().saved.maintenance.len(), 1);

    // The priority switch: on with the current revision; stale is 409; Office 365 is 422.
    let (_, etag, body) = api.call(Method::GET, "/api/rules/priority-follows-severity", None, None).await;
    assert_eq!(body["draft"], json!([]));
    let r4 = etag.unwrap();
    let on = json!({ "product": "security_center", "on": true });
    let (status, etag, _) =
        api.call(Method::POST, "/api/rules/priority-follows-severity", Some(on.clone()), Some(r4)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let r5 = etag.unwrap();
    let (status, _, _) = api.call(Method::POST, "/api/rules/priority-follows-severity", Some(on), Some(r4)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, body) = api
        .call(
            Method::POST,
            "/api/rules/priority-follows-severity",
            Some(json!({ "product": "office365", "on": true })),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["problems"][0]["problem"]["problem"], "not_applicable");
    let (_, _, body) = api.call(Method::GET, "/api/rules/priority-follows-severity", None, None).await;
    assert_eq!((body["draft"].clone(), body["saved"].clone()), (json!(["security_center"]), json!([])));
    // Saved with either of the product's status sections.
    let sec = json!({ "section": "statuses/security_center/warning" });
    let (status, _, body) = api.call(Method::POST, "/api/rules/save", Some(sec), Some(r5)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(api.shared.rules().saved.priority_follows_severity.contains(&Product::SecurityCenter));

    // Row fields through the bulk edit: delay and reopen on two status rows; null turns off.
    let rows = Section::Statuses(Product::EndpointCloud, StatusLevel::Critical).rows();
    let ids: Vec<String> = rows[..2].iter().map(ToString::to_string).collect();
    let patch = json!({ "rows": ids, "patch": { "create_delay_minutes": 30, "reopen_hours": 48 } });
    let (status, _, _) = api.call(Method::POST, "/api/rules/bulk-edit", Some(patch), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, _, all) = api.call(Method::GET, "/api/rules", None, None).await;
    assert_eq!(all["draft"]["rows"][&ids[1]]["create_delay_minutes"], 30);
    assert_eq!(all["draft"]["rows"][&ids[1]]["reopen_hours"], 48);
    let off = json!({ "rows": [ids[1].clone()], "patch": { "reopen_hours": null } });
    api.call(Method::POST, "/api/rules/bulk-edit", Some(off), None).await;
    let (_, _, all) = api.call(Method::GET, "/api/rules", None, None).await;
    assert!(all["draft"]["rows"][&ids[1]].get("reopen_hours").is_none(), "{}", all["draft"]["rows"][&ids[1]]);
    let wrong = json!({ "rows": ["security_center/event/critical"], "patch": { "create_delay_minutes": 5 } });
    let (status, _, body) = api.call(Method::POST, "/api/rules/bulk-edit", Some(wrong), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("create_delay_minutes does not apply"), "{body}");
    // An event row's recurrence window and title the same way; an unknown field refused, 400.
    let crit = "security_center/event/critical";
    let patch = json!({ "rows": [crit], "patch": { "recurrence_hours": 12, "title_template": "{{ what }}" } });
    let (status, _, body) = api.call(Method::POST, "/api/rules/bulk-edit", Some(patch), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, _, all) = api.call(Method::GET, "/api/rules", None, None).await;
    assert_eq!(all["draft"]["rows"][crit]["recurrence_hours"], 12);
    assert_eq!(all["draft"]["rows"][crit]["title_template"], "{{ what }}");
    let wrong = json!({ "rows": [crit], "patch": { "title_template": "{{ devce.name }}" } });
    let (status, _, body) = api.call(Method::POST, "/api/rules/bulk-edit", Some(wrong), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("title_template line 1, column 4: unknown field `devce.name`"), "{body}");
    let (_, _, all) = api.call(Method::GET, "/api/rules", None, None).await;
    assert_eq!(all["draft"]["rows"][crit]["title_template"], "{{ what }}", "nothing changed");
}

// --- `rules preview` against the lab's PSA -------------------------------------------------

fn virus(device: &str, minutes_ago: i64) -> ticketing_core::model::Event {
    use ticketing_core::model::*;
    Event {
        source_id: SourceEventId::new(format!("ev-{device}")),
        tenant: TenantId::new("ksc:demo/vs:1"),
        product: Product::SecurityCenter,
        class: EventClass::Severity(Severity::Critical),
        occurred_at: chrono::Utc::now() - chrono::Duration::minutes(minutes_ago),
        device: Some(Device { id: DeviceId::new(device), name: device.to_owned() }),
        mailbox: None,
        event_type: "GNRL_EV_VIRUS_FOUND".into(),
        display_name: "Malicious object detected".into(),
        text: "Trojan found".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_preview_names_the_maintenance_window_and_lists_the_status_settings() -> anyhow::Result<()> {
    let lab = msp_ticketd::demo::Lab::start().await?;
    let toml = lab.config_toml("[rules.rows.\"security_center/event/critical\"]\nenabled = true\n", "127.0.0.1:0");
    let cfg = lab.dir.join("msp-ticketd.toml");
    std::fs::write(&cfg, &toml)?;
    let config = msp_ticketd::config::Config::parse(&toml, "preview.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    {
        // Two stored events at the lab's customer: a server's and a PC's.
        let (store, _) = msp_ticketd::service::open_store(&config)?;
        let events = [virus("srv-db", 30), virus("pc-7", 20)];
        let at = chrono::Utc::now() - chrono::Duration::minutes(10);
        store.commit(&msp_ticketd::store::Commit { events: &events, at: Some(at), ..Default::default() })?;
    }
    let preview = |cfg: &Path| -> anyhow::Result<Value> {
        let out = ok(cfg, &["preview", "--days", "1"]);
        Ok(serde_json::from_str(&out)?)
    };
    let p = preview(&cfg)?;
    assert_eq!(p["would_create"], 2, "{p}");
    // A window over the servers, open now: the server's event is held back, by the window's id.
    let now = chrono::Utc::now();
    let window = json!({ "id": "server-patching", "tenant": "ksc:demo/vs:1", "device": "srv-*",
        "schedule": { "kind": "once", "start": now - chrono::Duration::hours(2), "end": now + chrono::Duration::hours(1) } });
    ok(&cfg, &["maintenance", "add", &window.to_string()]);
    ok(&cfg, &["set", &warning_row(), r#"{"enabled":true,"create_delay_minutes":10}"#]);
    let p = preview(&cfg)?;
    assert_eq!(p["would_create"], 1, "{p}");
    assert_eq!(p["maintenance"]["server-patching"], 1, "{p}");
    assert_eq!(p["status_rows"][0]["create_delay_minutes"], 10, "{p}");
    assert!(p["limits"].as_array().is_some_and(|l| l.len() == 4), "{p}");
    // A recurrence window and a title on the critical row: the PC's virus again a few minutes
    // later is noted on its ticket, counted apart; the row's sample ticket is in the preview.
    {
        let (store, _) = msp_ticketd::service::open_store(&config)?;
        let mut again = virus("pc-7", 15);
        again.source_id = ticketing_core::model::SourceEventId::new("ev-pc-7-again");
        let at = chrono::Utc::now() - chrono::Duration::minutes(5);
        store.commit(&msp_ticketd::store::Commit { events: &[again], at: Some(at), ..Default::default() })?;
    }
    let title = "{{ device.name }}: {{ what }}";
    let patch = json!({ "recurrence_hours": 24, "title_template": title }).to_string();
    ok(&cfg, &["set", "security_center/event/critical", &patch]);
    let p = preview(&cfg)?;
    assert_eq!((p["would_create"].as_u64(), p["recurrence_notes"].as_u64()), (Some(1), Some(1)), "{p}");
    assert_eq!(p["skipped"]["recurrence_note"], 1, "{p}");
    assert_eq!(p["recurrence_rows"][0]["recurrence_hours"], 24, "{p}");
    let texts = &p["texts"][0];
    assert_eq!(texts["row"], "security_center/event/critical", "{p}");
    assert_eq!(texts["title"], "ACME-PC-01: Malicious object detected", "{p}");
    assert!(texts["description"].as_str().is_some_and(|d| d.contains("\n\nmsp-ticketing key: ")), "{p}");
    Ok(())
}
