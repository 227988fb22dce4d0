//! The Ticketing tab over plain HTTP (no browser): login required, CSRF refused, escaping, and
//! the form flows (inline edit, Edit window, save refused with the field named, cancel, reset).

use std::sync::Arc;

use daemon::admin::AdminState;
use daemon::engine::Shared;
use daemon::store::SqliteStore;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use ticketing_core::catalog::{Catalog, PicklistValue};
use ticketing_core::edit::RuleBook;
use ticketing_core::rules::{RowId, RuleSet};
use ticketing_core::secret::Secret;

const TOKEN: &str = "ui-test-token";

struct Ui {
    base: String,
    shared: Arc<Shared>,
    http: reqwest::Client,
}

async fn start(catalog: Catalog) -> Ui {
    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    let shared = Shared::new(store, RuleBook::new(RuleSet::default()));
    *shared.catalog.write().unwrap() = Some(catalog);
    let state = AdminState { shared: shared.clone(), token: Secret::new(TOKEN) };
    let app = daemon::admin::router(state.clone()).merge(daemon::ui::router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    Ui { base: format!("http://{addr}"), shared, http }
}

impl Ui {
    async fn login(&self, token: &str) -> reqwest::Response {
        self.http.post(format!("{}/ui/login", self.base)).form(&[("token", token)]).send().await.unwrap()
    }

    /// Logs in; returns the Cookie header value.
    async fn session(&self) -> String {
        let resp = self.login(TOKEN).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        set.split(';').next().unwrap().to_owned()
    }

    async fn page(&self, cookie: &str, path: &str) -> (StatusCode, String) {
        let resp = self.http.get(format!("{}{path}", self.base)).header("cookie", cookie).send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn post(&self, cookie: Option<&str>, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    fn draft_rule(&self, row: &str) -> ticketing_core::rules::Rule {
        self.shared.rules().draft.rule(&row.parse::<RowId>().unwrap()).unwrap().clone()
    }

    fn saved_rule(&self, row: &str) -> ticketing_core::rules::Rule {
        self.shared.rules().saved.rule(&row.parse::<RowId>().unwrap()).unwrap().clone()
    }
}

fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("page has a CSRF field") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_owned()
}

const CRIT: &str = "security_center/event/critical";
const WARN: &str = "security_center/event/warning";
const FAIL: &str = "security_center/event/functional_failure";

#[tokio::test]
async fn pages_and_posts_require_login() {
    let ui = start(Catalog::example()).await;
    for path in ["/", "/ui", "/ui/section?s=events/security_center"] {
        let resp = ui.http.get(format!("{}{path}", ui.base)).send().await.unwrap();
        assert!(resp.status().is_redirection(), "{path}: {}", resp.status());
        let to = resp.headers()["location"].to_str().unwrap();
        assert!(to == "/ui/login" || to == "/ui", "{path} redirects to {to}");
    }
    let resp = ui
        .post(
            None,
            "/ui/rows",
            &[("section", "events/security_center"), ("row", CRIT), (&format!("enabled.{CRIT}"), "on")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = ui.post(Some("msp_ui_session=forged"), "/ui/save", &[("section", "general"), ("csrf", "x")]).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(!ui.draft_rule(CRIT).enabled);
    // The admin API is unchanged: still bearer-only.
    let resp = ui.http.get(format!("{}/api/rules", ui.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(ui.http.get(format!("{}/healthz", ui.base)).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn login_sets_a_random_http_only_strict_cookie_not_the_token() {
    let ui = start(Catalog::example()).await;
    let bad = ui.login("wrong").await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(bad.headers().get("set-cookie").is_none());
    assert!(bad.text().await.unwrap().contains("not the admin token"));

    let resp = ui.login(TOKEN).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(!set.contains(TOKEN), "the token must not be in the cookie: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let other = ui.session().await;
    assert_ne!(cookie, other, "each login gets its own session id");

    let (status, html) = ui.page(&cookie, "/ui/section?s=general").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Log out"));
    let csrf = csrf_of(&html);
    let resp = ui.post(Some(&cookie), "/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = ui.http.get(format!("{}/ui/section?s=general", ui.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.headers()["location"], "/ui/login", "the session ended with the logout");
}

#[tokio::test]
async fn state_changing_posts_without_the_sessions_csrf_token_are_refused() {
    let ui = start(Catalog::example()).await;
    let cookie = ui.session().await;
    let other = ui.session().await;
    let (_, other_html) = ui.page(&other, "/ui/section?s=general").await;
    let foreign = csrf_of(&other_html);
    let toggle = format!("enabled.{CRIT}");
    for csrf in [None, Some(""), Some("0000"), Some(foreign.as_str())] {
        let mut form = vec![("section", "events/security_center"), ("row", CRIT), (toggle.as_str(), "on")];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        for path in ["/ui/rows", "/ui/bulk-edit", "/ui/save", "/ui/cancel", "/ui/reset", "/ui/general", "/ui/logout"] {
            let resp = ui.post(Some(&cookie), path, &form).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path} with csrf {csrf:?}");
            assert!(resp.text().await.unwrap().contains("CSRF"));
        }
    }
    assert!(!ui.draft_rule(CRIT).enabled, "nothing changed");

    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    let csrf = csrf_of(&html);
    let resp = ui
        .post(
            Some(&cookie),
            "/ui/rows",
            &[("csrf", &csrf), ("section", "events/security_center"), ("row", CRIT), (&toggle, "on")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(ui.draft_rule(CRIT).enabled, "with the right token the toggle reaches the draft");
    assert!(!ui.saved_rule(CRIT).enabled, "but not the saved rules");
}

#[tokio::test]
async fn psa_labels_and_messages_are_escaped() {
    let evil = r#"<script>alert("q")</script>"#;
    let mut catalog = Catalog::example();
    catalog.queues.push(PicklistValue::new(66, evil));
    catalog.issue_types.push(PicklistValue::new(67, "<img src=x onerror=alert(1)>"));
    let ui = start(catalog).await;
    let cookie = ui.session().await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    let csrf = csrf_of(&html);
    let resp = ui
        .post(
            Some(&cookie),
            "/ui/bulk-edit",
            &[
                ("csrf", &csrf),
                ("section", "events/security_center"),
                ("select", CRIT),
                ("b_queue", &format!("={evil}")),
                ("b_enabled", "on"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(ui.draft_rule(CRIT).queue.as_deref(), Some(evil));
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(!html.contains(evil), "raw label in the page");
    assert!(!html.contains("<img src=x"), "raw issue type in the page");
    assert!(html.contains("&lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // An unknown section named in the URL is echoed escaped too.
    let (status, html) = ui.page(&cookie, "/ui/section?s=%3Cb%3Ex").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("&lt;b&gt;x") && !html.contains("<b>x"));
}

#[tokio::test]
async fn edit_window_save_refusal_cancel_and_reset() {
    let ui = start(Catalog::example()).await;
    let cookie = ui.session().await;
    let (status, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&html);
    let sec = ("section", "events/security_center");

    // One patch to three rows; fields left at "keep" stay as they were.
    let resp = ui
        .post(
            Some(&cookie),
            "/ui/bulk-edit",
            &[
                ("csrf", &csrf),
                sec,
                ("select", CRIT),
                ("select", WARN),
                ("select", FAIL),
                ("b_enabled", "on"),
                ("b_priority", "=High"),
                ("b_due", "6"),
                ("b_queue", ""),
                ("b_issue_type", "=Security"),
                ("b_sub_issue_type", "=Malware"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    for row in [CRIT, WARN, FAIL] {
        let r = ui.draft_rule(row);
        assert!(r.enabled);
        assert_eq!(r.priority.as_deref(), Some("High"));
        assert_eq!(r.due_hours, 6);
        assert_eq!(r.queue.as_deref(), Some("Monitoring Alert"), "kept");
        assert_eq!(r.sub_issue_type.as_deref(), Some("Malware"));
    }
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(html.contains("Applied to 3 row(s)"));
    assert!(html.contains("(unsaved)"));

    // Clear the queue of one enabled row: flagged on the page, and Save refused naming it.
    let resp =
        ui.post(Some(&cookie), "/ui/bulk-edit", &[("csrf", &csrf), sec, ("select", WARN), ("b_queue", "!clear")]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(html.contains("Problems in this draft"));
    assert!(html.contains("Queue is blank but required"));
    ui.post(Some(&cookie), "/ui/save", &[("csrf", &csrf), sec]).await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(html.contains("Save refused: 1 problem(s)"), "{html}");
    assert!(html.contains("queue is blank but required"));
    assert!(!ui.saved_rule(CRIT).enabled, "nothing saved");

    // Inline edit fixes it; Save makes it the saved rules.
    let q = format!("queue.{WARN}");
    ui.post(
        Some(&cookie),
        "/ui/save",
        &[("csrf", &csrf), sec, ("row", WARN), (&q, "Client Portal"), (&format!("enabled.{WARN}"), "on")],
    )
    .await;
    assert_eq!(ui.saved_rule(WARN).queue.as_deref(), Some("Client Portal"));
    assert!(ui.saved_rule(CRIT).enabled);
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(html.contains("Saved:"), "{html}");

    // Cancel returns to the saved values; reset puts defaults into the draft only.
    let toggle_off = [("csrf", csrf.as_str()), sec, ("row", CRIT)];
    ui.post(Some(&cookie), "/ui/rows", &toggle_off).await;
    assert!(!ui.draft_rule(CRIT).enabled);
    ui.post(Some(&cookie), "/ui/cancel", &[("csrf", &csrf), sec]).await;
    assert!(ui.draft_rule(CRIT).enabled);
    ui.post(Some(&cookie), "/ui/reset", &[("csrf", &csrf), sec]).await;
    assert!(!ui.draft_rule(CRIT).enabled);
    assert_eq!(ui.draft_rule(CRIT).priority.as_deref(), Some("Critical"));
    assert!(ui.saved_rule(CRIT).enabled, "reset does not save");

    // General settings: inline edit + save.
    let (_, html) = ui.page(&cookie, "/ui/section?s=general").await;
    assert!(html.contains(r#"<option value="New" selected>"#));
    ui.post(
        Some(&cookie),
        "/ui/save",
        &[("csrf", &csrf), ("section", "general"), ("general.new_status", "In Progress")],
    )
    .await;
    assert_eq!(ui.shared.rules().saved.general.new_status.as_deref(), Some("In Progress"));
}
