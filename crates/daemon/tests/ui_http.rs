//! The Ticketing tab over plain HTTP (no browser): login required, CSRF refused, escaping, and
//! the form flows (inline edit, Edit window, save refused with the field named, cancel, reset),
//! words instead of codes, the grouped left pane, the Edit dialog's markup, the status preview,
//! the PSA banner with Save refused while the catalog is stale, the failing-source banner, the
//! Activity page (newest first, filters, a bad filter named) and the Mapping page (accounts,
//! problems, last reads, open tickets), the bar linking the pages, and no snake_case code or row
//! id in any page's text.

use std::sync::Arc;

use msp_ticketd::admin::AdminState;
use msp_ticketd::engine::{EngineWriters, Shared};
use msp_ticketd::store::SqliteStore;
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
    /// What the engine would publish (the catalog, accounts, mapping), written by the tests.
    writers: EngineWriters,
    http: reqwest::Client,
}

async fn start(catalog: Catalog) -> Ui {
    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    let (shared, writers) = Shared::new(store, RuleBook::new(RuleSet::default()));
    writers.engine.catalog.publish(Some(catalog));
    let state =
        AdminState { shared: shared.clone(), token: Secret::new(TOKEN), reloader: None, access: Default::default() };
    let app = msp_ticketd::admin::router(state.clone()).merge(msp_ticketd::ui::router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    Ui { base: format!("http://{addr}"), shared, writers: writers.engine, http }
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

/// The page's text as a reader sees it: tags dropped, a few entities decoded.
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
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
    assert!(html.contains("1 problem (Save changes is refused until it is fixed)"), "{html}");
    assert!(html.contains("Queue is blank, but it is required"));
    ui.post(Some(&cookie), "/ui/save", &[("csrf", &csrf), sec]).await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(html.contains("Save refused: 1 problem in"), "{html}");
    assert_eq!(visible(&html).matches("Queue is blank").count(), 1, "the problem is shown once: {html}");
    assert!(visible(&html).contains("Event severity \u{201c}Warning\u{201d}: Queue is blank"), "{html}");
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

/// Internal spellings that must not reach the reader.
const CODES: [&str; 9] = [
    "security_center",
    "endpoint_cloud",
    "office365/",
    "new_status",
    "closed_status",
    "ticket_source",
    "rule_off",
    "tenant_unmapped",
    "account_inactive",
];

fn assert_words(html: &str) {
    let text = visible(html);
    for code in CODES {
        assert!(!text.contains(code), "{code:?} in the page's text: {text}");
    }
}

#[tokio::test]
async fn words_not_codes_and_each_problem_once() {
    let ui = start(Catalog::example()).await;
    let cookie = ui.session().await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=general").await;
    let csrf = csrf_of(&html);
    for label in ["Ticket source", "New ticket status", "Closed ticket status"] {
        assert!(html.contains(&format!(">{label}</label>")), "{label}");
    }
    // Blank the new ticket status: the problem is named as the field is labelled, once.
    ui.post(Some(&cookie), "/ui/save", &[("csrf", &csrf), ("section", "general"), ("general.new_status", "")]).await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=general").await;
    assert!(html.contains("Save refused: 1 problem in General"), "{html}");
    assert_eq!(visible(&html).matches("New ticket status is blank, but it is required").count(), 1, "{html}");
    assert!(html.contains(r#"aria-invalid="true" aria-describedby="problem-0""#), "the field points at its problem");
    assert_words(&html);

    // Every section page: no internal ids, no codes, in its text.
    for section in ticketing_core::rules::Section::all() {
        let (status, html) = ui.page(&cookie, &format!("/ui/section?s={section}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_words(&html);
    }

    // A status row's problems, named by the description's text.
    let row = "security_center/status/critical/databases_out_of_date";
    let known: RowId = row.parse().unwrap_or_else(|_| {
        ticketing_core::rules::Section::Statuses(
            ticketing_core::model::Product::SecurityCenter,
            ticketing_core::model::StatusLevel::Critical,
        )
        .rows()[0]
            .clone()
    });
    let r = known.to_string();
    let q = format!("queue.{r}");
    let on = format!("enabled.{r}");
    let sec = known.section().to_string();
    ui.post(Some(&cookie), "/ui/save", &[("csrf", &csrf), ("section", &sec), ("row", &r), (&on, "on"), (&q, "")]).await;
    let (_, html) = ui.page(&cookie, &format!("/ui/section?s={sec}")).await;
    let text = visible(&html);
    assert!(text.contains(&format!("Status description \u{201c}{}\u{201d}: Queue is blank", known.label())), "{text}");
    assert_eq!(text.matches("Queue is blank").count(), 1, "{text}");
    assert_words(&html);
    // An out-of-range due time is refused in words.
    let due = format!("due.{r}");
    ui.post(Some(&cookie), "/ui/rows", &[("csrf", &csrf), ("section", &sec), ("row", &r), (&on, "on"), (&due, "0")])
        .await;
    let (_, html) = ui.page(&cookie, &format!("/ui/section?s={sec}")).await;
    assert!(html.contains("Due, hours must be a whole number from 1 to 8760"), "{html}");
    assert_words(&html);
}

#[tokio::test]
async fn left_pane_grouped_under_product_names() {
    let ui = start(Catalog::example()).await;
    let cookie = ui.session().await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/endpoint_cloud").await;
    // The left pane of sections (the bar of pages above it is another nav).
    let start = html.find(r#"<nav id="nav""#).unwrap();
    let nav = &html[start..start + html[start..].find("</nav>").unwrap()];
    let order = [
        ">General</a>",
        "Kaspersky Security Center</span>",
        r#"s=events/security_center">Events</a>"#,
        "Computer status</span>",
        r#"s=statuses/security_center/critical">Critical</a>"#,
        r#"s=statuses/security_center/warning">Warning</a>"#,
        "Kaspersky Endpoint Security Cloud</span>",
        r#"s=events/endpoint_cloud" aria-current="page">Events</a>"#,
        r#"s=statuses/endpoint_cloud/critical">Critical</a>"#,
        r#"s=statuses/endpoint_cloud/warning">Warning</a>"#,
        "Kaspersky Security for Microsoft Office 365</span>",
        r#"s=events/office365">Events</a>"#,
    ];
    let mut at = 0;
    for item in order {
        let found = nav[at..].find(item).unwrap_or_else(|| panic!("{item} after {at} in {nav}"));
        at += found + item.len();
    }
    assert_eq!(nav.matches("Computer status").count(), 2, "Office 365 has no computer statuses");
    assert!(html.contains(r#"id="nav-toggle""#) && html.contains(r#"aria-controls="nav""#), "the pane folds");
}

#[tokio::test]
async fn edit_dialog_above_the_table_and_save_takes_the_inline_edits() {
    let ui = start(Catalog::example()).await;
    let cookie = ui.session().await;
    for (section, title, lifetime) in [
        ("events/security_center", "Ticketing settings for events", true),
        ("events/office365", "Ticketing settings for events", false),
        ("statuses/endpoint_cloud/warning", "Ticketing settings for computer status change", false),
    ] {
        let (_, html) = ui.page(&cookie, &format!("/ui/section?s={section}")).await;
        let edit = html.find(r#"<button type="button" id="edit-open""#).expect("an Edit button");
        assert!(edit < html.find(r#"id="rules-table""#).unwrap(), "{section}: Edit is above the table");
        assert!(html.contains(r#"<dialog class="edit-window" id="edit-dialog""#), "{section}");
        assert!(html.contains(&format!(r#"<h2 id="edit-title">{title}</h2>"#)), "{section}");
        for field in ["b_enabled", "b_queue", "b_priority", "b_due", "b_work_type", "b_issue_type", "b_sub_issue_type"]
        {
            assert!(html.contains(&format!(r#"id="{field}""#)), "{section}: {field}");
        }
        assert_eq!(html.contains(r#"id="b_lifetime""#), lifetime, "{section}: lifetime where it applies");
        assert!(html.contains(">On / Off</label>") && html.contains(">Issue subtype</label>"));
        assert!(!html.contains("Apply edits to draft"), "{section}: no separate apply button");
        assert!(html.contains(r#"<form id="rules-form" method="post" action="/ui/save">"#));
        // The no-JS fallback shows the dialog's fields in the page.
        assert!(html.contains(r#"<noscript><link rel="stylesheet" href="/ui/assets/nojs.css?v="#), "{section}");
    }
    let resp = ui.http.get(format!("{}/ui/assets/nojs.css", ui.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("dialog.edit-window{display:block"));

    // Save changes: the page's inline edits and the save, in one request.
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    let csrf = csrf_of(&html);
    let revision = html.split(r#"name="revision" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let resp = ui
        .post(
            Some(&cookie),
            "/ui/save",
            &[
                ("csrf", &csrf),
                ("section", "events/security_center"),
                ("revision", &revision),
                ("row", CRIT),
                (&format!("enabled.{CRIT}"), "on"),
                (&format!("due.{CRIT}"), "9"),
                ("row", WARN),
                (&format!("due.{WARN}"), "12"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(ui.saved_rule(CRIT).enabled);
    assert_eq!(ui.saved_rule(CRIT).due_hours, 9);
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(html.contains("Saved: your edits (1 change(s)) are in the draft"), "{html}");
    assert!(html.contains("The draft equals the saved rules."));
}

#[tokio::test]
async fn status_preview_counts_status_descriptions() {
    let ui = start(Catalog::example()).await;
    let cookie = ui.session().await;
    let sec = "statuses/security_center/critical";
    let (_, html) = ui.page(&cookie, &format!("/ui/section?s={sec}")).await;
    let n = ticketing_core::rules::Section::Statuses(
        ticketing_core::model::Product::SecurityCenter,
        ticketing_core::model::StatusLevel::Critical,
    )
    .rows();
    let total = format!(r#"<strong id="preview-count">0</strong> of the {} status descriptions"#, n.len());
    assert!(html.contains(&total), "{html}");
    assert!(!html.contains("events were seen") && !html.contains("event was seen"), "no event count");
    assert!(html.contains("latest status snapshots"), "says what it cannot count");
    assert!(html.contains("No computer has an open status ticket now."));
    let csrf = csrf_of(&html);
    let r = n[0].to_string();
    ui.post(
        Some(&cookie),
        "/ui/rows",
        &[("csrf", &csrf), ("section", sec), ("row", &r), (&format!("enabled.{r}"), "on")],
    )
    .await;
    let (_, html) = ui.page(&cookie, &format!("/ui/section?s={sec}")).await;
    assert!(html.contains(r#"<strong id="preview-count">1</strong>"#), "{html}");
    assert!(html.contains("(the saved rules: 0)"));
}

#[tokio::test]
async fn psa_unreachable_banner_and_save_refused_while_the_catalog_is_stale() {
    let ui = start(Catalog::example()).await;
    let cookie = ui.session().await;
    let sc = "/ui/section?s=events/security_center";
    let (_, html) = ui.page(&cookie, sc).await;
    assert!(!html.contains(r#"id="psa-banner""#), "no banner while nothing failed");
    let csrf = csrf_of(&html);

    // The catalog refresh fails (as the engine counts it): the PSA is unreachable.
    ui.shared.psa_answered("catalog", Err(ticketing_core::ports::PortErrorKind::Transient));
    ui.shared.psa_answered("accounts", Err(ticketing_core::ports::PortErrorKind::Transient));
    let (_, html) = ui.page(&cookie, sc).await;
    let text = visible(&html);
    assert!(html.contains(r#"id="psa-banner""#), "{html}");
    assert!(text.contains("The PSA is unreachable"), "{text}");
    assert!(text.contains("Save changes is refused until the PSA answers again"), "{text}");
    let on = format!("enabled.{CRIT}");
    let form = [("csrf", csrf.as_str()), ("section", "events/security_center"), ("row", CRIT), (on.as_str(), "on")];
    let resp = ui.post(Some(&cookie), "/ui/save", &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(!ui.saved_rule(CRIT).enabled, "not saved against a stale catalog");
    assert!(ui.draft_rule(CRIT).enabled, "the edit is kept in the draft");
    let (_, html) = ui.page(&cookie, sc).await;
    assert!(visible(&html).contains("Not saved: The PSA is unreachable"), "{html}");
    assert!(visible(&html).contains("Your edits are kept in the draft"), "{html}");

    // Creates answered by the PSA, but the catalog has not been read since: still stale.
    ui.shared.psa_answered("create", Ok(()));
    let (_, html) = ui.page(&cookie, sc).await;
    assert!(visible(&html).contains("The PSA catalog is stale"), "{html}");
    ui.post(Some(&cookie), "/ui/save", &form).await;
    assert!(!ui.saved_rule(CRIT).enabled);

    // The catalog is read again: the banner goes, and the save goes through.
    ui.shared.psa_answered("catalog", Ok(()));
    let (_, html) = ui.page(&cookie, sc).await;
    assert!(!html.contains(r#"id="psa-banner""#), "{html}");
    ui.post(Some(&cookie), "/ui/save", &form).await;
    assert!(ui.saved_rule(CRIT).enabled);
}

#[tokio::test]
async fn without_a_catalog_the_banner_says_so_and_save_waits() {
    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    let (shared, writers) = Shared::new(store, RuleBook::new(RuleSet::default()));
    let state =
        AdminState { shared: shared.clone(), token: Secret::new(TOKEN), reloader: None, access: Default::default() };
    let app = msp_ticketd::ui::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let ui = Ui {
        base: format!("http://{addr}"),
        shared,
        writers: writers.engine,
        http: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(),
    };
    let cookie = ui.session().await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(visible(&html).contains("The PSA catalog has not been read yet."), "{html}");
    let csrf = csrf_of(&html);
    ui.post(Some(&cookie), "/ui/save", &[("csrf", &csrf), ("section", "events/security_center")]).await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(visible(&html).contains("Not saved: The PSA catalog has not been read yet."), "{html}");
}

#[tokio::test]
async fn a_failing_source_shows_a_banner_naming_it() {
    let ui = start(Catalog::example()).await;
    // Two failed reads and no success since: the source is failing.
    ui.shared.source_failed("ksc-lab", "connection refused");
    ui.shared.source_failed("ksc-lab", "connection refused");
    let cookie = ui.session().await;
    let sc = "/ui/section?s=events/security_center";
    let (_, html) = ui.page(&cookie, sc).await;
    let text = visible(&html);
    assert!(html.contains(r#"<div class="banner error" role="alert" id="source-banner">"#), "{html}");
    assert!(text.contains("The source \u{201c}ksc-lab\u{201d} is failing"), "{text}");
    assert!(text.contains("2 call(s) to a source failed"), "{text}");
    assert!(!html.contains(r#"id="psa-banner""#), "the PSA is fine: {html}");
    // A failing source does not block Save changes (the PSA's lists are what a save is checked
    // against).
    let csrf = csrf_of(&html);
    let on = format!("enabled.{CRIT}");
    ui.post(
        Some(&cookie),
        "/ui/save",
        &[("csrf", &csrf), ("section", "events/security_center"), ("row", CRIT), (&on, "on")],
    )
    .await;
    assert!(ui.saved_rule(CRIT).enabled);
    // Every section page shows it, and a UI whose sources never failed shows none.
    let (_, html) = ui.page(&cookie, "/ui/section?s=general").await;
    assert!(html.contains(r#"id="source-banner""#));
    let quiet = start(Catalog::example()).await;
    let cookie = quiet.session().await;
    let (_, html) = quiet.page(&cookie, sc).await;
    assert!(!html.contains(r#"id="source-banner""#), "{html}");
}

/// Words of a page's text that look like an internal code: a snake_case reason or field code
/// (`rule_off`, `new_status`) or a row or section id (`security_center/event/critical`).
fn codes_in(text: &str) -> Vec<String> {
    let lower_around = |w: &str, i: usize| {
        let b = w.as_bytes();
        i > 0 && i + 1 < b.len() && b[i - 1].is_ascii_lowercase() && b[i + 1].is_ascii_lowercase()
    };
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "_/.-".contains(c)))
        .filter(|w| {
            let snake = w.char_indices().any(|(i, c)| c == '_' && lower_around(w, i));
            let id = w.contains('/')
                && ["event", "events", "status", "statuses"].iter().any(|k| w.split('/').any(|p| p == *k))
                && w.split('/').count() >= 2;
            snake || id
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_code_scan_catches_codes_and_row_ids() {
    assert_eq!(codes_in("Not ticketed: rule_off (x)"), ["rule_off"]);
    assert_eq!(codes_in("Row security_center/event/critical: 1"), ["security_center/event/critical"]);
    assert_eq!(codes_in("see events/office365 now"), ["events/office365"]);
    assert!(codes_in("Kaspersky Security Center: Events / Critical, admin.token, 1/2").is_empty());
}

#[tokio::test]
async fn no_page_shows_a_code_or_a_row_id() {
    let ui = start(Catalog::example()).await;
    ui.shared.psa_answered("catalog", Err(ticketing_core::ports::PortErrorKind::Transient));
    ui.shared.source_failed("ksc-lab", "connection refused");
    let (_, login) = ui.page("", "/ui/login").await;
    let refused = ui.login("wrong").await.text().await.unwrap();
    let cookie = ui.session().await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=general").await;
    let csrf = csrf_of(&html);
    // Problems and messages on the pages: a blank required field, a row with a blank queue, an
    // out-of-range value.
    ui.post(Some(&cookie), "/ui/rows", &[("csrf", &csrf), ("section", "general"), ("general.new_status", "")]).await;
    let (q, on, due) = (format!("queue.{CRIT}"), format!("enabled.{CRIT}"), format!("due.{WARN}"));
    let form = [("csrf", csrf.as_str()), ("section", "events/security_center"), ("row", CRIT), (&on, "on"), (&q, "")];
    ui.post(Some(&cookie), "/ui/rows", &form).await;
    ui.post(
        Some(&cookie),
        "/ui/rows",
        &[("csrf", &csrf), ("section", "events/security_center"), ("row", WARN), (&due, "0")],
    )
    .await;
    // The lifecycle settings (issue 20) on the pages too: a status row's delay and reopen
    // window, the priority switch, a maintenance window with a problem and one refused form.
    let (a, _) = warning_rows();
    let (d, r, o) = (format!("delay.{a}"), format!("reopen.{a}"), format!("enabled.{a}"));
    let sec = "statuses/security_center/warning";
    ui.post(
        Some(&cookie),
        "/ui/rows",
        &[
            ("csrf", &csrf),
            ("section", sec),
            ("row", &a),
            (&o, "on"),
            (&d, "15"),
            (&r, "24"),
            ("follows_shown", "1"),
            ("follows", "on"),
        ],
    )
    .await;
    ui.post(Some(&cookie), "/ui/rows", &[("csrf", &csrf), ("section", sec), ("row", &a), (&o, "on"), (&r, "99999")])
        .await;
    let (_, refused_reopen) = ui.page(&cookie, &format!("/ui/section?s={sec}")).await;
    assert!(visible(&refused_reopen).contains("Reopen within (hours) must be a whole number"), "{refused_reopen}");
    let mut draft = ui.shared.rules.with(|b| b.draft.clone());
    draft.maintenance = vec![ticketing_core::maintenance::MaintenanceWindow {
        id: "nightly".into(),
        tenant: ticketing_core::model::TenantId::new("ksc:lab/vs:1"),
        device: Some("srv-*".into()),
        schedule: ticketing_core::maintenance::Schedule::Recurring {
            weekdays: vec![chrono::Weekday::Mon, chrono::Weekday::Fri],
            start: chrono::NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            duration_minutes: 0,
            time_zone: "Nowhere/Else".into(),
            nth_of_month: Some(7),
        },
    }];
    msp_ticketd::rules_ops::put_draft(&ui.shared, draft, None).unwrap();
    let refused_window = ui
        .post(
            Some(&cookie),
            "/ui/maintenance/add",
            &[("csrf", &csrf), ("section", "general"), ("w_name", "nightly"), ("w_kind", "recurring"), ("w_tz", "x")],
        )
        .await
        .text()
        .await
        .unwrap();
    let (_, unknown) = ui.page(&cookie, "/ui/section?s=nowhere").await;
    // The Activity and Mapping pages with data whose codes must not show: skip reasons, product
    // codes in source names, a filter by product code.
    record_decisions(&ui);
    ui.writers.mapping.publish(vec![
        mapped("ksc:lab/vs:1", "Acme Lab", Some((7, "Acme Corp", true)), None),
        mapped("kbh:initech", "Initech", None, Some("not mapped: no tickets")),
    ]);
    let secs = std::time::Duration::from_secs(60);
    ui.shared.health.set_sources([
        ("kbh/endpoint_cloud/events".to_owned(), secs),
        ("kbh/endpoint_cloud/statuses".to_owned(), secs),
        ("ksc:lab/events".to_owned(), secs),
    ]);
    ui.shared.health.source_read("kbh/endpoint_cloud/events", Ok(()), chrono::Utc::now());
    // The configured sources replace the list: the failing one is one of them now.
    ui.shared.source_failed("ksc:lab/events", "connection refused");
    let mut pages = vec![
        ("login".to_owned(), login),
        ("refused login".to_owned(), refused),
        ("unknown".to_owned(), unknown),
        ("refused window".to_owned(), refused_window),
        ("refused reopen".to_owned(), refused_reopen),
    ];
    for path in [
        "/ui/activity",
        "/ui/activity?product=endpoint_cloud&outcome=ticketed",
        "/ui/activity?since=nope",
        "/ui/mapping",
    ] {
        let (_, html) = ui.page(&cookie, path).await;
        assert!(html.contains(r#"id="tabs""#), "{path}");
        pages.push((path.to_owned(), html));
    }
    assert!(
        visible(&pages.iter().find(|(p, _)| p == "/ui/mapping").unwrap().1)
            .contains("Business Hub: Endpoint Security Cloud events")
    );
    for section in ticketing_core::rules::Section::all() {
        let (status, html) = ui.page(&cookie, &format!("/ui/section?s={section}")).await;
        assert_eq!(status, StatusCode::OK);
        pages.push((section.to_string(), html));
    }
    let sc = &pages.iter().find(|(s, _)| s == "events/security_center").unwrap().1;
    assert!(visible(sc).contains("Queue is blank"), "the row's problem is shown");
    assert!(sc.contains(r#"id="psa-banner""#) && sc.contains(r#"id="source-banner""#));
    let general = visible(&pages.iter().find(|(s, _)| s == "general").unwrap().1);
    assert!(general.contains("Maintenance window \u{201c}nightly\u{201d}"), "{general}");
    let warning = visible(&pages.iter().find(|(s, _)| s == sec).unwrap().1);
    assert!(warning.contains("a ticket only once the problem has lasted 15 minutes"), "{warning}");
    for (name, html) in &pages {
        let text = visible(html);
        assert!(codes_in(&text).is_empty(), "{name}: {:?} in the page's text: {text}", codes_in(&text));
    }
}

// --- Activity and Mapping -------------------------------------------------------------------

fn decision(
    minutes_ago: i64,
    product: ticketing_core::model::Product,
    tenant: &str,
    outcome: msp_ticketd::store::Outcome,
    detail: &str,
) -> msp_ticketd::store::Decision {
    msp_ticketd::store::Decision {
        at: chrono::Utc::now() - chrono::Duration::minutes(minutes_ago),
        product,
        tenant: ticketing_core::model::TenantId::new(tenant),
        event_id: Some(format!("ev{minutes_ago}")),
        device: Some(format!("dev{minutes_ago}")),
        device_name: Some(format!("pc-{minutes_ago}")),
        key: format!("k{minutes_ago}"),
        outcome,
        reason: (outcome == msp_ticketd::store::Outcome::Skipped).then(|| "rule_off".to_owned()),
        detail: detail.to_owned(),
        revision: 3,
    }
}

/// Three decisions at two tenants: an hour ago (skipped), 30 minutes ago (ticketed, another
/// product), 5 minutes ago (skipped).
fn record_decisions(ui: &Ui) {
    use msp_ticketd::store::Outcome::{Skipped, Ticketed};
    use ticketing_core::model::Product::{EndpointCloud, SecurityCenter};
    let decisions = [
        decision(
            60,
            SecurityCenter,
            "ksc:lab/vs:1",
            Skipped,
            "not ticketed: the Kaspersky Security Center Warning events rule is off",
        ),
        decision(30, EndpointCloud, "kbh:acme", Ticketed, "ticketed"),
        decision(
            5,
            SecurityCenter,
            "ksc:lab/vs:1",
            Skipped,
            "not ticketed: the event is older than the rule's lifetime of 7 days",
        ),
    ];
    ui.shared
        .store
        .commit(&msp_ticketd::store::Commit { decisions: &decisions, ..msp_ticketd::store::Commit::default() })
        .expect("decisions recorded");
}

fn mapped(
    tenant: &str,
    name: &str,
    account: Option<(i64, &str, bool)>,
    problem: Option<&str>,
) -> msp_ticketd::engine::MappedTenant {
    msp_ticketd::engine::MappedTenant {
        tenant: tenant.to_owned(),
        tenant_name: Some(name.to_owned()),
        account_id: account.map(|a| ticketing_core::model::PsaId(a.0)),
        account_name: account.map(|a| a.1.to_owned()),
        active: account.map(|a| a.2),
        problem: problem.map(str::to_owned),
        source: account.map(|_| ticketing_core::mapping::MappingSource::File),
    }
}

/// The order of the table's rows, by the computer names the test decisions carry.
fn rows_in(html: &str) -> Vec<String> {
    let text = visible(html);
    let mut found: Vec<(usize, String)> = ["pc-60", "pc-30", "pc-5 "]
        .iter()
        .filter_map(|n| text.find(&format!("Computer {n}")).map(|at| (at, n.trim().to_owned())))
        .collect();
    found.sort();
    found.into_iter().map(|(_, n)| n).collect()
}

#[tokio::test]
async fn activity_and_mapping_require_login_and_link_every_page() {
    let ui = start(Catalog::example()).await;
    for path in ["/ui/activity", "/ui/activity?outcome=skipped", "/ui/mapping"] {
        let resp = ui.http.get(format!("{}{path}", ui.base)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(resp.headers()["location"], "/ui/login", "{path}");
        let resp =
            ui.http.get(format!("{}{path}", ui.base)).header("cookie", "msp_ui_session=forged").send().await.unwrap();
        assert_eq!(resp.headers()["location"], "/ui/login", "{path} with a forged session");
    }
    let cookie = ui.session().await;
    for (path, current) in
        [("/ui/section?s=general", "tab-rules"), ("/ui/activity", "tab-activity"), ("/ui/mapping", "tab-mapping")]
    {
        let (status, html) = ui.page(&cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains(r#"<nav class="tabs" id="tabs" aria-label="Pages">"#), "{path}: {html}");
        for (href, text) in
            [("/ui/section?s=general", "Ticketing rules"), ("/ui/activity", "Activity"), ("/ui/mapping", "Mapping")]
        {
            assert!(html.contains(&format!(r#"href="{href}""#)) && visible(&html).contains(text), "{path}: {text}");
        }
        assert!(html.contains(&format!(r#"id="{current}" aria-current="page""#)), "{path}: {html}");
        // The left pane of sections belongs to the rules pages only.
        assert_eq!(html.contains(r#"id="nav""#), current == "tab-rules", "{path}");
    }
}

#[tokio::test]
async fn activity_lists_decisions_newest_first_and_filters_them() {
    let ui = start(Catalog::example()).await;
    ui.writers.mapping.publish(vec![mapped("ksc:lab/vs:1", "Acme Lab", Some((7, "Acme Corp", true)), None)]);
    let cookie = ui.session().await;
    let (status, html) = ui.page(&cookie, "/ui/activity").await;
    assert_eq!(status, StatusCode::OK);
    assert!(visible(&html).contains("No decision recorded yet"), "{html}");

    record_decisions(&ui);
    let (_, html) = ui.page(&cookie, "/ui/activity").await;
    let text = visible(&html);
    assert_eq!(rows_in(&html), ["pc-5", "pc-30", "pc-60"], "newest first: {text}");
    assert!(text.contains("3 decisions, newest first."), "{text}");
    // Product, tenant by name (with its id), outcome and reason in words, the ticket now, the
    // rules revision.
    for words in [
        "Kaspersky Security Center",
        "Kaspersky Endpoint Security Cloud",
        "Acme Lab",
        "Not ticketed",
        "Not ticketed: the Kaspersky Security Center Warning events rule is off",
        "No ticket in the ledger (pruned, or never made)",
        "Event ev30",
        "Rules revision",
    ] {
        assert!(text.contains(words), "{words:?} in {text}");
    }
    assert!(html.contains(r#"<option value="ksc:lab/vs:1">Acme Lab (ksc:lab/vs:1)</option>"#), "{html}");

    // Each filter narrows, and the form shows it chosen.
    let (_, html) = ui.page(&cookie, "/ui/activity?tenant=kbh%3Aacme").await;
    assert_eq!(rows_in(&html), ["pc-30"]);
    assert!(html.contains(r#"<option value="kbh:acme" selected>kbh:acme</option>"#), "{html}");
    assert!(visible(&html).contains("1 decision matches these filters."));
    let (_, html) = ui.page(&cookie, "/ui/activity?product=security_center").await;
    assert_eq!(rows_in(&html), ["pc-5", "pc-60"]);
    assert!(html.contains(r#"<option value="security_center" selected>"#), "{html}");
    let (_, html) = ui.page(&cookie, "/ui/activity?outcome=ticketed").await;
    assert_eq!(rows_in(&html), ["pc-30"]);
    let since = (chrono::Utc::now() - chrono::Duration::minutes(45)).format("%Y-%m-%d %H:%M").to_string();
    let (_, html) = ui.page(&cookie, &format!("/ui/activity?since={}", since.replace(' ', "+"))).await;
    assert_eq!(rows_in(&html), ["pc-5", "pc-30"], "since {since}");
    assert!(html.contains(&format!(r#"value="{since}""#)), "the since is echoed: {html}");
    let (_, html) =
        ui.page(&cookie, "/ui/activity?tenant=ksc%3Alab%2Fvs%3A1&product=security_center&outcome=skipped&since=").await;
    assert_eq!(rows_in(&html), ["pc-5", "pc-60"]);
    let (_, html) = ui.page(&cookie, "/ui/activity?tenant=nobody").await;
    assert!(visible(&html).contains("No decision matches these filters."), "{html}");
}

#[tokio::test]
async fn a_bad_activity_filter_names_the_field() {
    let ui = start(Catalog::example()).await;
    record_decisions(&ui);
    let cookie = ui.session().await;
    for (query, words) in [
        ("since=yesterday", "Since: \u{201c}yesterday\u{201d} is not a date and time"),
        ("since=2026-13-45", "Since: \u{201c}2026-13-45\u{201d}"),
        ("product=antivirus", "Product: there is no product \u{201c}antivirus\u{201d}"),
        ("outcome=maybe", "Outcome: \u{201c}maybe\u{201d} is not an outcome"),
    ] {
        let (status, html) = ui.page(&cookie, &format!("/ui/activity?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let text = visible(&html);
        assert!(html.contains(r#"id="filter-error""#) && text.contains(words), "{query}: {text}");
        assert!(rows_in(&html).is_empty(), "{query}: no table");
        assert!(html.contains(r#"id="activity-filters""#), "{query}: the form is still there");
    }
    // Every bad field at once, each named.
    let (_, html) = ui.page(&cookie, "/ui/activity?since=x&product=y&outcome=z").await;
    let text = visible(&html);
    assert!(text.contains("Since:") && text.contains("Product:") && text.contains("Outcome:"), "{text}");
    // An unknown parameter is ignored, not an error.
    let (status, _) = ui.page(&cookie, "/ui/activity?colour=blue").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn tenant_names_with_html_are_escaped_on_activity_and_mapping() {
    let ui = start(Catalog::example()).await;
    let evil = "<script>alert(1)</script> & \"Co\"";
    ui.writers.mapping.publish(vec![
        mapped("ksc:lab/vs:1", evil, Some((7, "<b>Acme</b> Corp", true)), Some("<i>account</i> is odd")),
        mapped("<img src=x>", "<img src=y>", None, Some("not mapped: no tickets")),
    ]);
    record_decisions(&ui);
    let decisions = [decision(
        1,
        ticketing_core::model::Product::SecurityCenter,
        "<img src=x>",
        msp_ticketd::store::Outcome::Skipped,
        "not ticketed: <u>x</u>",
    )];
    ui.shared
        .store
        .commit(&msp_ticketd::store::Commit { decisions: &decisions, ..msp_ticketd::store::Commit::default() })
        .unwrap();
    let cookie = ui.session().await;
    for path in ["/ui/activity", "/ui/mapping", "/ui/activity?tenant=%3Cimg+src%3Dx%3E"] {
        let (status, html) = ui.page(&cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        for raw in ["<script>", "<img", "<b>", "<i>", "<u>"] {
            assert!(!html.contains(raw), "{path}: {raw} unescaped: {html}");
        }
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"), "{path}: {html}");
        assert!(html.contains("&lt;img src=x&gt;"), "{path}: {html}");
    }
    let (_, html) = ui.page(&cookie, "/ui/mapping").await;
    assert!(
        html.contains("&lt;b&gt;Acme&lt;/b&gt; Corp") && html.contains("&lt;i&gt;account&lt;/i&gt; is odd"),
        "{html}"
    );
    let (_, html) = ui.page(&cookie, "/ui/activity").await;
    assert!(html.contains("Not ticketed: &lt;u&gt;x&lt;/u&gt;"), "{html}");
}

#[tokio::test]
async fn mapping_shows_accounts_active_problems_last_reads_and_open_tickets() {
    let ui = start(Catalog::example()).await;
    let cookie = ui.session().await;
    let (_, html) = ui.page(&cookie, "/ui/mapping").await;
    let text = visible(&html);
    assert!(text.contains("No tenant is mapped or listed yet"), "{text}");
    assert!(text.contains("No source is configured"), "{text}");

    ui.writers.mapping.publish(vec![
        mapped("ksc:lab/vs:1", "Acme Lab", Some((7, "Acme Corp", true)), None),
        mapped("ksc:lab/vs:2", "Globex", Some((8, "Globex Inc", false)), Some("account is inactive: no tickets")),
        mapped("kbh:initech", "Initech", None, Some("not mapped: no tickets")),
    ]);
    let at = chrono::Utc::now() - chrono::Duration::minutes(3);
    let secs = std::time::Duration::from_secs(60);
    ui.shared.health.set_sources([
        ("ksc:lab/events".to_owned(), secs),
        ("ksc:lab/statuses".to_owned(), secs),
        ("kbh/endpoint_cloud/events".to_owned(), secs),
    ]);
    ui.shared.health.source_read("ksc:lab/events", Ok(()), at);
    ui.shared.health.source_read("ksc:lab/statuses", Ok(()), at);
    // The events source has read Acme Lab: its cursor for that tenant is stored.
    let key = msp_ticketd::store::CursorKey {
        source: "ksc:lab/events".to_owned(),
        tenant: ticketing_core::model::TenantId::new("ksc:lab/vs:1"),
    };
    let cursor = ticketing_core::ports::Cursor("42".to_owned());
    ui.shared
        .store
        .commit(&msp_ticketd::store::Commit { cursors: vec![(&key, &cursor)], ..msp_ticketd::store::Commit::default() })
        .unwrap();

    let (status, html) = ui.page(&cookie, "/ui/mapping").await;
    assert_eq!(status, StatusCode::OK);
    let row = |tenant: &str| {
        let start = html.find(&format!(r#"data-tenant="{tenant}""#)).unwrap_or_else(|| panic!("{tenant}: {html}"));
        visible(&html[start..start + html[start..].find("</tr>").unwrap()])
    };
    let acme = row("ksc:lab/vs:1");
    for words in [
        "Acme Lab",
        "Acme Corp",
        "id 7",
        "Active",
        "None",
        "Security Center \u{201c}lab\u{201d}: events",
        "3 min ago",
        "0",
    ] {
        assert!(acme.contains(words), "{words:?} in {acme}");
    }
    assert!(!acme.contains("computer statuses"), "a status source keeps no cursor: {acme}");
    let globex = row("ksc:lab/vs:2");
    assert!(globex.contains("Inactive: no tickets") && globex.contains("Account is inactive"), "{globex}");
    assert!(globex.contains("No event source has read it yet"), "{globex}");
    let initech = row("kbh:initech");
    assert!(initech.contains("No account") && initech.contains("Not mapped: no tickets"), "{initech}");
    // Every source, in words, with its last successful read.
    let start = html.find(r#"id="sources-table""#).expect("sources table");
    let sources = visible(&html[start..]);
    assert!(sources.contains("Security Center \u{201c}lab\u{201d}: computer statuses"), "{sources}");
    let hub = &sources[sources.find("Business Hub: Endpoint Security Cloud events").expect("the hub's source")..];
    assert!(
        hub.trim_start_matches("Business Hub: Endpoint Security Cloud events")
            .trim_start()
            .starts_with("No successful read yet"),
        "{sources}"
    );
    assert!(visible(&html).contains("Which tenants a computer status source lists is not recorded"));
}

// --- Ticket lifecycle settings (issue 20) ---------------------------------------------------

/// The first two rows of Security Center's Warning status section.
fn warning_rows() -> (String, String) {
    let rows = ticketing_core::rules::Section::Statuses(
        ticketing_core::model::Product::SecurityCenter,
        ticketing_core::model::StatusLevel::Warning,
    )
    .rows();
    (rows[0].to_string(), rows[1].to_string())
}

fn follows(set: &RuleSet) -> bool {
    set.priority_follows_severity.contains(&ticketing_core::model::Product::SecurityCenter)
}

#[tokio::test]
async fn status_rows_edit_delay_and_reopen_inline_and_in_the_edit_window_and_the_priority_switch() {
    let ui = start(Catalog::example()).await;
    let cookie = ui.session().await;
    let sec = "statuses/security_center/warning";
    let page = format!("/ui/section?s={sec}");
    let (_, html) = ui.page(&cookie, &page).await;
    let csrf = csrf_of(&html);
    let (a, b) = warning_rows();
    for text in ["Create ticket after (minutes)", "Reopen within (hours)", "0: at once", "blank: off"] {
        assert!(html.contains(text), "{text}");
    }
    assert!(
        html.contains(r#"id="follows-switch""#) && html.contains("Raise priority when the computer becomes Critical")
    );
    assert!(
        html.contains(r#"id="b_delay""#) && html.contains(r#"id="b_reopen""#) && html.contains(r#"id="b_reopen_off""#)
    );
    let (_, events) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(!events.contains("Create ticket after") && !events.contains("follows-switch"), "status sections only");

    // Save changes with the row's delay and reopen window and the switch, in one request.
    let (on, delay, reopen) = (format!("enabled.{a}"), format!("delay.{a}"), format!("reopen.{a}"));
    let resp = ui
        .post(
            Some(&cookie),
            "/ui/save",
            &[
                ("csrf", &csrf),
                ("section", sec),
                ("row", &a),
                (&on, "on"),
                (&delay, "10"),
                (&reopen, "24"),
                ("follows_shown", "1"),
                ("follows", "on"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let saved = ui.saved_rule(&a);
    assert_eq!((saved.create_delay_minutes, saved.reopen_hours), (10, Some(24)));
    assert!(follows(&ui.shared.rules().saved), "the switch is saved with the section");
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(html.contains("Saved:"), "{html}");
    assert!(html.contains(&format!(r#"name="delay.{a}" id="delay-{}" value="10""#, a.replace('/', "-"))), "{html}");
    let text = visible(&html);
    assert!(text.contains("a ticket only once the problem has lasted 10 minutes"), "{text}");
    assert!(text.contains("a problem back within 24 hours of the integration closing its ticket reopens that ticket"));
    assert!(text.contains("Raise priority when the computer becomes Critical:  on"), "{text}");
    assert!(text.contains("the preview cannot replay them"), "says what it cannot simulate: {text}");
    // The product's other status section shows the same switch, on.
    let (_, critical) = ui.page(&cookie, "/ui/section?s=statuses/security_center/critical").await;
    assert!(critical.contains(r#"name="follows" value="on" data-inline checked"#), "{critical}");
    let (_, cloud) = ui.page(&cookie, "/ui/section?s=statuses/endpoint_cloud/warning").await;
    assert!(!cloud.contains(r#"name="follows" value="on" data-inline checked"#), "per product");

    // Blank reopen turns it off; a delay out of range is refused in words, nothing applied.
    ui.post(Some(&cookie), "/ui/save", &[("csrf", &csrf), ("section", sec), ("row", &a), (&on, "on"), (&reopen, "")])
        .await;
    assert_eq!(ui.saved_rule(&a).reopen_hours, None);
    assert!(follows(&ui.shared.rules().saved), "a form without the switch leaves it alone");
    ui.post(
        Some(&cookie),
        "/ui/rows",
        &[("csrf", &csrf), ("section", sec), ("row", &a), (&on, "on"), (&delay, "99999")],
    )
    .await;
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(html.contains("Create ticket after (minutes) must be a whole number from 0 to 10080"), "{html}");
    assert_eq!(ui.draft_rule(&a).create_delay_minutes, 10);
    assert_words(&html);

    // The Edit window: both fields on two rows; then reopening off; both at once is refused.
    let bulk = |extra: Vec<(&'static str, &'static str)>| {
        let mut form =
            vec![("csrf", csrf.clone()), ("section", sec.to_owned()), ("select", a.clone()), ("select", b.clone())];
        form.extend(extra.into_iter().map(|(k, v)| (k, v.to_owned())));
        form
    };
    let post = |form: Vec<(&'static str, String)>| {
        let ui = &ui;
        let cookie = cookie.clone();
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ui.post(Some(&cookie), "/ui/bulk-edit", &pairs).await
        }
    };
    assert_eq!(post(bulk(vec![("b_delay", "5"), ("b_reopen", "12")])).await.status(), StatusCode::SEE_OTHER);
    for row in [&a, &b] {
        let r = ui.draft_rule(row);
        assert_eq!((r.create_delay_minutes, r.reopen_hours), (5, Some(12)), "{row}");
    }
    post(bulk(vec![("b_reopen_off", "on")])).await;
    assert_eq!(ui.draft_rule(&b).reopen_hours, None);
    assert_eq!(ui.draft_rule(&b).create_delay_minutes, 5, "kept");
    post(bulk(vec![("b_reopen_off", "on"), ("b_reopen", "3")])).await;
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(
        visible(&html).contains("give a number of hours or tick \u{201c}Turn reopening off\u{201d}, not both"),
        "{html}"
    );
    post(bulk(vec![("b_delay", "20000")])).await;
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(html.contains("Create ticket after (minutes) must be a whole number from 0 to 10080"), "{html}");
    assert_eq!(ui.draft_rule(&a).create_delay_minutes, 5);

    // The switch off in the draft, then Cancel changes puts the saved "on" back.
    ui.post(Some(&cookie), "/ui/rows", &[("csrf", &csrf), ("section", sec), ("follows_shown", "1")]).await;
    assert!(!follows(&ui.shared.rules().draft) && follows(&ui.shared.rules().saved));
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(html.contains("(unsaved)"));
    ui.post(Some(&cookie), "/ui/cancel", &[("csrf", &csrf), ("section", sec)]).await;
    assert!(follows(&ui.shared.rules().draft));
    assert_eq!(ui.draft_rule(&a).create_delay_minutes, 10, "cancel restores the saved delay");
    // Reset: the guide's defaults (no delay, no reopen, switch off) into the draft.
    ui.post(Some(&cookie), "/ui/reset", &[("csrf", &csrf), ("section", sec)]).await;
    assert!(!follows(&ui.shared.rules().draft));
    assert_eq!(ui.draft_rule(&a).create_delay_minutes, 0);
}

fn acme() -> msp_ticketd::engine::MappedTenant {
    mapped("ksc:lab/vs:1", "Acme Lab", Some((7, "Acme Corp", true)), None)
}

fn window_form<'a>(csrf: &'a str, fields: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![("csrf", csrf), ("section", "general")];
    form.extend_from_slice(fields);
    form
}

#[tokio::test]
async fn maintenance_windows_added_listed_removed_and_an_invalid_one_refused_next_to_its_field() {
    let ui = start(Catalog::example()).await;
    ui.writers.mapping.publish(vec![acme()]);
    let cookie = ui.session().await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=general").await;
    let csrf = csrf_of(&html);
    assert!(html.contains(r#"<h2 id="maintenance-h">Maintenance windows</h2>"#));
    assert!(html.contains("No maintenance window."));
    assert!(html.contains(r#"<option value="ksc:lab/vs:1">Acme Lab (ksc:lab/vs:1)</option>"#), "{html}");

    // A recurring window: every 2nd Tuesday, 22:00 Berlin time, 2 hours.
    let recurring = [
        ("w_name", "patch-night"),
        ("w_tenant", "ksc:lab/vs:1"),
        ("w_kind", "recurring"),
        ("w_days", "Tue"),
        ("w_nth", "2"),
        ("w_time", "22:00"),
        ("w_duration", "120"),
        ("w_tz", "Europe/Berlin"),
    ];
    let resp = ui.post(Some(&cookie), "/ui/maintenance/add", &window_form(&csrf, &recurring)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let draft = ui.shared.rules.with(|b| b.draft.maintenance.clone());
    assert_eq!(draft.len(), 1);
    assert_eq!(draft[0].id, "patch-night");
    assert!(ui.shared.rules().saved.maintenance.is_empty(), "into the draft only");
    let (_, html) = ui.page(&cookie, "/ui/section?s=general").await;
    let text = visible(&html);
    assert!(text.contains("Maintenance window \u{201c}patch-night\u{201d} added to the draft"), "{text}");
    assert!(text.contains("The 2nd Tuesday of each month at 22:00 (Europe/Berlin), for 2 hours"), "{text}");
    assert!(text.contains("Acme Lab (ksc:lab/vs:1)"));
    assert!(html.contains("(unsaved)"));

    // Refused: an unknown time zone (the rules' check), next to its field, the fields kept.
    let mut bad = recurring;
    bad[0] = ("w_name", "mars");
    bad[7] = ("w_tz", "Mars/Olympus");
    let resp = ui.post(Some(&cookie), "/ui/maintenance/add", &window_form(&csrf, &bad)).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    let tz_error =
        html.split(r#"<span class="field-error" id="w-error-tz">"#).nth(1).expect("an error at the time zone");
    assert!(tz_error.starts_with("Unknown time zone \u{201c}Mars/Olympus\u{201d}"), "{tz_error}");
    assert!(html.contains(r#"value="Mars/Olympus""#) && html.contains(r#"aria-describedby="w-error-tz""#));
    assert!(html.contains("The maintenance window was not added"));
    assert_words(&html);
    assert!(codes_in(&visible(&html)).is_empty(), "{:?}", codes_in(&visible(&html)));
    // Refused by the form itself: a one-off that ends before it starts, a zero duration, no
    // weekday, a name taken.
    let once_backwards = [
        ("w_name", "move"),
        ("w_tenant", "ksc:lab/vs:1"),
        ("w_kind", "once"),
        ("w_start", "2026-11-17T22:00"),
        ("w_end", "2026-11-17T21:00"),
    ];
    let html =
        ui.post(Some(&cookie), "/ui/maintenance/add", &window_form(&csrf, &once_backwards)).await.text().await.unwrap();
    assert!(html.contains(r#"id="w-error-end">The end must be after the start."#), "{html}");
    let zero = [("w_tenant", "ksc:lab/vs:1"), ("w_kind", "recurring"), ("w_time", "01:00"), ("w_duration", "0")];
    let html = ui.post(Some(&cookie), "/ui/maintenance/add", &window_form(&csrf, &zero)).await.text().await.unwrap();
    assert!(html.contains(r#"id="w-error-duration">Duration must be a whole number of minutes from 1 to 10080"#));
    assert!(html.contains(r#"id="w-error-days">Tick at least one weekday."#), "{html}");
    let html =
        ui.post(Some(&cookie), "/ui/maintenance/add", &window_form(&csrf, &recurring)).await.text().await.unwrap();
    assert!(html.contains(r#"id="w-error-name">Another window has the same name."#), "{html}");
    assert_eq!(ui.shared.rules().draft.maintenance.len(), 1, "nothing refused reached the draft");

    // A one-off window open now, for the server computers only; its name made up.
    let now = chrono::Utc::now();
    let (from, to) = (
        (now - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M").to_string(),
        (now + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M").to_string(),
    );
    let once =
        [("w_tenant", "ksc:lab/vs:1"), ("w_device", "srv-*"), ("w_kind", "once"), ("w_start", &from), ("w_end", &to)];
    assert_eq!(
        ui.post(Some(&cookie), "/ui/maintenance/add", &window_form(&csrf, &once)).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, html) = ui.page(&cookie, "/ui/section?s=general").await;
    let text = visible(&html);
    assert!(
        text.contains("window-2") && text.contains("names matching  srv-*") && text.contains("(open now)"),
        "{text}"
    );
    assert!(codes_in(&text).is_empty(), "{:?}", codes_in(&text));

    // Save changes saves them with the general settings; Remove takes one out of the draft.
    ui.post(Some(&cookie), "/ui/save", &[("csrf", &csrf), ("section", "general")]).await;
    assert_eq!(ui.shared.rules().saved.maintenance.len(), 2);
    let resp =
        ui.post(Some(&cookie), "/ui/maintenance/remove", &window_form(&csrf, &[("remove", "patch-night")])).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(ui.shared.rules().draft.maintenance.len(), 1);
    assert_eq!(ui.shared.rules().saved.maintenance.len(), 2, "removed from the draft only");
    let (_, html) = ui.page(&cookie, "/ui/section?s=general").await;
    assert!(visible(&html).contains("Maintenance window \u{201c}patch-night\u{201d} removed from the draft"));
    ui.post(Some(&cookie), "/ui/cancel", &[("csrf", &csrf), ("section", "general")]).await;
    assert_eq!(ui.shared.rules().draft.maintenance.len(), 2, "cancel puts it back");
    ui.post(Some(&cookie), "/ui/maintenance/remove", &window_form(&csrf, &[("remove", "patch-night")])).await;
    ui.post(Some(&cookie), "/ui/save", &[("csrf", &csrf), ("section", "general")]).await;
    assert_eq!(ui.shared.rules().saved.maintenance.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(), ["window-2"]);

    // A window the API put into the draft with a problem: listed with it, in words, and Save
    // is refused naming it.
    let mut windows = ui.shared.rules.with(|b| b.draft.maintenance.clone());
    let mut odd = windows[0].clone();
    odd.id = "odd".into();
    odd.schedule = ticketing_core::maintenance::Schedule::Recurring {
        weekdays: vec![chrono::Weekday::Mon],
        start: chrono::NaiveTime::from_hms_opt(1, 0, 0).unwrap(),
        duration_minutes: 0,
        time_zone: "UTC".into(),
        nth_of_month: Some(9),
    };
    windows.push(odd);
    let mut draft = ui.shared.rules.with(|b| b.draft.clone());
    draft.maintenance = windows;
    msp_ticketd::rules_ops::put_draft(&ui.shared, draft, None).unwrap();
    ui.post(Some(&cookie), "/ui/save", &[("csrf", &csrf), ("section", "general")]).await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=general").await;
    let text = visible(&html);
    assert!(text.contains("Save refused: 2 problems in General"), "{text}");
    assert!(
        text.contains("Maintenance window \u{201c}odd\u{201d}: the duration in minutes must be between 1 and 10080"),
        "{text}"
    );
    assert!(text.contains("the weekday of the month must be between 1 and 5"), "{text}");
    assert!(codes_in(&text).is_empty(), "{:?}", codes_in(&text));
    assert_words(&html);
}

fn virus_event(tenant: &str, device: &str, minutes_ago: i64) -> ticketing_core::model::Event {
    use ticketing_core::model::*;
    Event {
        source_id: SourceEventId::new(format!("ev-{device}-{minutes_ago}")),
        tenant: TenantId::new(tenant),
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

#[tokio::test]
async fn the_preview_names_the_maintenance_window_that_held_events_back() {
    let ui = start(Catalog::example()).await;
    ui.writers.mapping.publish(vec![acme()]);
    ui.writers.accounts.publish(vec![ticketing_core::ports::Account {
        id: ticketing_core::model::PsaId(7),
        name: "Acme Corp".into(),
        active: true,
    }]);
    let events = [virus_event("ksc:lab/vs:1", "srv-1", 30), virus_event("ksc:lab/vs:1", "pc-1", 20)];
    let at = chrono::Utc::now() - chrono::Duration::minutes(10);
    ui.shared
        .store
        .commit(&msp_ticketd::store::Commit { events: &events, at: Some(at), ..Default::default() })
        .unwrap();
    let cookie = ui.session().await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    let csrf = csrf_of(&html);
    ui.post(
        Some(&cookie),
        "/ui/rows",
        &[("csrf", &csrf), ("section", "events/security_center"), ("row", CRIT), (&format!("enabled.{CRIT}"), "on")],
    )
    .await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(html.contains(r#"<strong id="preview-count">2</strong>"#), "{html}");

    // The servers' window, open over both events: the server's event is held back, by name.
    let now = chrono::Utc::now();
    let (from, to) = (
        (now - chrono::Duration::hours(2)).format("%Y-%m-%dT%H:%M").to_string(),
        (now + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M").to_string(),
    );
    let once = [
        ("w_name", "server-patching"),
        ("w_tenant", "ksc:lab/vs:1"),
        ("w_device", "srv-*"),
        ("w_kind", "once"),
        ("w_start", &from),
        ("w_end", &to),
    ];
    ui.post(Some(&cookie), "/ui/maintenance/add", &window_form(&csrf, &once)).await;
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    let text = visible(&html);
    assert!(html.contains(r#"<strong id="preview-count">1</strong>"#), "{html}");
    assert!(text.contains("1 event: a maintenance window of the draft covered their customer or computer"), "{text}");
    assert!(text.contains("maintenance window \u{201c}server-patching\u{201d}: 1 event"), "{text}");
    assert!(text.contains("including the draft's maintenance windows"), "{text}");
    assert!(codes_in(&text).is_empty(), "{:?}", codes_in(&text));

    // The admin API's preview says the same, and lists the status rows' settings.
    let (a, _) = warning_rows();
    msp_ticketd::rules_ops::bulk_edit(
        &ui.shared,
        &[a.parse().unwrap()],
        &ticketing_core::edit::RulePatch { enabled: Some(true), create_delay_minutes: Some(15), ..Default::default() },
        None,
    )
    .unwrap();
    let p: serde_json::Value = ui
        .http
        .get(format!("{}/api/rules/preview?days=1", ui.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["would_create"], 1, "{p}");
    assert_eq!(p["maintenance"]["server-patching"], 1, "{p}");
    assert_eq!(p["skipped"]["maintenance"], 1, "{p}");
    assert_eq!(p["status_rows"][0]["row"], a.as_str(), "{p}");
    assert_eq!(p["status_rows"][0]["create_delay_minutes"], 15, "{p}");
    assert!(p["limits"][1].as_str().unwrap().contains("computer statuses are not replayed"), "{p}");
}

// --- Recurrence notes and ticket text (issue 20) --------------------------------------------

const O365: &str = "office365/event/malware_detected";

/// A page's text without its code, textarea and sample description parts: template field
/// names (`product_short`, `{{ device.name }}`), the key line and a sample ticket's description
/// (the event's own type code, as the guide's text writes it) are what one types or what a
/// ticket carries, shown as such on purpose; everything around them must be words.
fn words_outside_code(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    loop {
        let next = ["<code", "<textarea", "<pre"].iter().filter_map(|t| rest.find(t).map(|i| (i, *t))).min();
        let Some((i, tag)) = next else { break };
        out.push_str(&rest[..i]);
        let close = match tag {
            "<code" => "</code>",
            "<pre" => "</pre>",
            _ => "</textarea>",
        };
        let end = rest[i..].find(close).map_or(rest.len(), |e| i + e + close.len());
        out.push(' ');
        rest = &rest[end..];
    }
    out.push_str(rest);
    visible(&out)
}

fn assert_no_codes_outside_code(name: &str, html: &str) {
    let text = words_outside_code(html);
    assert!(codes_in(&text).is_empty(), "{name}: {:?} in the page's text: {text}", codes_in(&text));
    for code in CODES {
        assert!(!text.contains(code), "{name}: {code:?} in the page's text: {text}");
    }
}

/// A virus event at Acme on `device`, `minutes_ago`, with its own id.
fn virus_event_id(id: &str, device: &str, minutes_ago: i64) -> ticketing_core::model::Event {
    let mut e = virus_event("ksc:lab/vs:1", device, minutes_ago);
    e.source_id = ticketing_core::model::SourceEventId::new(id);
    e
}

fn map_acme(ui: &Ui) {
    ui.writers.mapping.publish(vec![acme()]);
    ui.writers.accounts.publish(vec![ticketing_core::ports::Account {
        id: ticketing_core::model::PsaId(7),
        name: "Acme Corp".into(),
        active: true,
    }]);
}

#[tokio::test]
async fn event_rows_note_recurrences_inline_and_in_the_edit_window_and_the_preview_counts_the_notes() {
    let ui = start(Catalog::example()).await;
    map_acme(&ui);
    // The same virus twice on pc-1, once on pc-2: with a recurrence window, the second on pc-1
    // is noted on pc-1's ticket.
    let events = [virus_event_id("a", "pc-1", 50), virus_event_id("b", "pc-2", 40), virus_event_id("c", "pc-1", 30)];
    let at = chrono::Utc::now() - chrono::Duration::minutes(10);
    ui.shared
        .store
        .commit(&msp_ticketd::store::Commit { events: &events, at: Some(at), ..Default::default() })
        .unwrap();
    let cookie = ui.session().await;
    let sec = "events/security_center";
    let page = format!("/ui/section?s={sec}");
    let (_, html) = ui.page(&cookie, &page).await;
    let csrf = csrf_of(&html);
    for text in ["Note recurrences within (hours)", "blank: off", r#"id="b_recur""#, r#"id="b_recur_off""#] {
        assert!(html.contains(text), "{text}");
    }
    assert!(html.contains(&format!(r#"name="recur.{CRIT}""#)), "inline, per row");
    assert!(visible(&html).contains("Every ticketed event here gets its own ticket (no row notes recurrences)."));
    let (_, cloud) = ui.page(&cookie, "/ui/section?s=events/endpoint_cloud").await;
    assert!(cloud.contains("Note recurrences within (hours)") && cloud.contains(r#"id="b_recur""#));
    for other in ["events/office365", "statuses/security_center/warning"] {
        let (_, html) = ui.page(&cookie, &format!("/ui/section?s={other}")).await;
        assert!(!html.contains("Note recurrences") && !html.contains("b_recur"), "not on {other}");
    }

    // Save changes with the row on and a 24-hour window, in one request.
    let (on, recur) = (format!("enabled.{CRIT}"), format!("recur.{CRIT}"));
    let resp = ui
        .post(
            Some(&cookie),
            "/ui/save",
            &[("csrf", &csrf), ("section", sec), ("row", CRIT), (&on, "on"), (&recur, "24")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(ui.saved_rule(CRIT).recurrence_hours, Some(24));
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(html.contains(&format!(r#"name="recur.{CRIT}" id="recur-{}" value="24""#, CRIT.replace('/', "-"))));
    let text = visible(&html);
    assert!(
        text.contains("\u{201c}Critical\u{201d}: an event of the same type on the same computer within 24 hours"),
        "{text}"
    );
    // The preview: two tickets (pc-1, pc-2) and one recurrence noted on pc-1's, counted apart.
    assert!(html.contains(r#"<strong id="preview-count">2</strong>"#), "{html}");
    assert!(html.contains(r#"<strong id="preview-notes">1</strong>"#), "{html}");
    assert!(text.contains("recurrence(s) on an open ticket instead of a new one"), "{text}");
    assert!(text.contains("1 event: noted on an open ticket: the same event on the same computer again"), "{text}");
    assert!(text.contains("Noted on an open ticket"), "the per-row column: {text}");
    assert!(codes_in(&text).is_empty(), "{:?}", codes_in(&text));
    assert_words(&html);
    let p: serde_json::Value = ui
        .http
        .get(format!("{}/api/rules/preview?days=1", ui.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((p["would_create"].as_u64(), p["recurrence_notes"].as_u64()), (Some(2), Some(1)), "{p}");
    assert_eq!(p["notes_by_row"][CRIT], 1, "{p}");
    assert_eq!(p["skipped"]["recurrence_note"], 1, "{p}");
    assert_eq!(p["recurrence_rows"][0]["recurrence_hours"], 24, "{p}");

    // Blank turns it off; out of range is refused in words, nothing applied.
    ui.post(Some(&cookie), "/ui/rows", &[("csrf", &csrf), ("section", sec), ("row", CRIT), (&on, "on"), (&recur, "")])
        .await;
    assert_eq!(ui.draft_rule(CRIT).recurrence_hours, None);
    ui.post(
        Some(&cookie),
        "/ui/rows",
        &[("csrf", &csrf), ("section", sec), ("row", CRIT), (&on, "on"), (&recur, "9999")],
    )
    .await;
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(html.contains("Note recurrences within (hours) must be a whole number from 1 to 2160"), "{html}");
    assert_eq!(ui.draft_rule(CRIT).recurrence_hours, None);
    assert_words(&html);

    // The Edit window: a window on two rows; then off with the tick box; both at once refused.
    let bulk = |extra: &[(&'static str, &'static str)]| {
        let mut form = vec![("csrf", csrf.clone()), ("section", sec.to_owned())];
        form.extend([CRIT, WARN].map(|r| ("select", r.to_owned())));
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        form
    };
    let post = |form: Vec<(&'static str, String)>, section: &'static str| {
        let ui = &ui;
        let cookie = cookie.clone();
        async move {
            let mut pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            for p in pairs.iter_mut().filter(|(k, _)| *k == "section") {
                p.1 = section;
            }
            ui.post(Some(&cookie), "/ui/bulk-edit", &pairs).await
        }
    };
    assert_eq!(post(bulk(&[("b_recur", "12")]), sec).await.status(), StatusCode::SEE_OTHER);
    assert_eq!((ui.draft_rule(CRIT).recurrence_hours, ui.draft_rule(WARN).recurrence_hours), (Some(12), Some(12)));
    post(bulk(&[("b_recur_off", "on")]), sec).await;
    assert_eq!(ui.draft_rule(WARN).recurrence_hours, None);
    post(bulk(&[("b_recur_off", "on"), ("b_recur", "3")]), sec).await;
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(
        visible(&html).contains(
            "Note recurrences within (hours): give a number of hours or tick \u{201c}Turn recurrence notes off\u{201d}, not both"
        ),
        "{html}"
    );
    post(bulk(&[("b_recur", "5000")]), sec).await;
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(html.contains("Note recurrences within (hours) must be a whole number from 1 to 2160"), "{html}");
    assert_eq!(ui.draft_rule(CRIT).recurrence_hours, None);
    assert_words(&html);
    // Office 365 rows take none: a forged Edit window is refused, nothing changes.
    let forged = vec![
        ("csrf", csrf.clone()),
        ("section", "events/office365".to_owned()),
        ("select", O365.to_owned()),
        ("b_recur", "5".to_owned()),
    ];
    post(forged, "events/office365").await;
    assert_eq!(ui.draft_rule(O365).recurrence_hours, None);
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/office365").await;
    assert!(html.contains("The edit was not applied"), "{html}");
}

fn text_form<'a>(
    csrf: &'a str,
    row: &'a str,
    revision: &'a str,
    title: &'a str,
    description: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("section", "events/security_center"),
        ("revision", revision),
        ("row", row),
        ("t_title", title),
        ("t_description", description),
    ]
}

/// The text of the element with `id` (up to its closing tag).
fn element_text(html: &str, id: &str) -> String {
    let start = html.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("no #{id} in {html}"));
    let from = start + html[start..].find('>').unwrap() + 1;
    let to = from + html[from..].find("</").unwrap();
    visible(&html[from..to])
}

#[tokio::test]
async fn ticket_text_editor_previews_refuses_an_unknown_field_with_its_position_and_restores_the_default() {
    use ticketing_core::catalog::Field;
    use ticketing_core::template::default_template;
    let ui = start(Catalog::example()).await;
    map_acme(&ui);
    let cookie = ui.session().await;
    let row: RowId = CRIT.parse().unwrap();
    let (_, section) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    let csrf = csrf_of(&section);
    // Every table links each row's editor; the link says whether the row has its own text.
    let link = format!(r#"href="/ui/text?row={CRIT}" id="text-{}""#, CRIT.replace('/', "-"));
    assert!(section.contains(&link), "{section}");
    assert!(visible(&section).contains("Ticket text  for Critical : default"), "{}", visible(&section));
    for s in ticketing_core::rules::Section::all().into_iter().filter(|s| *s != ticketing_core::rules::Section::General)
    {
        let (_, html) = ui.page(&cookie, &format!("/ui/section?s={s}")).await;
        let first = s.rows()[0].to_string();
        assert!(html.contains(&format!(r#"href="/ui/text?row={first}""#)), "{s}");
    }

    // The editor: both fields prefilled with the default text, the row's fields, the sample.
    let (status, html) = ui.page(&cookie, &format!("/ui/text?row={CRIT}")).await;
    assert_eq!(status, StatusCode::OK);
    let revision = ui.shared.rules.revision().to_string();
    let escaped = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    assert!(html.contains(&escaped(default_template(&row, Field::TitleTemplate))), "{html}");
    assert!(html.contains(&escaped(default_template(&row, Field::DescriptionTemplate))), "{html}");
    for name in ["product_short", "device.name", "device.id", "mailbox", "occurred_at"] {
        assert!(html.contains(&format!("<code>{name}</code>")), "{name}");
    }
    let (title, description) = ticketing_core::decide::preview_texts(&row, &row.default_rule()).unwrap();
    assert_eq!(element_text(&html, "sample-title").trim(), title);
    let key = description.lines().last().unwrap();
    assert!(key.starts_with("msp-ticketing key: "));
    assert_eq!(element_text(&html, "sample-key"), key, "the key line shown apart");
    assert!(!element_text(&html, "sample-description").contains("msp-ticketing key"));
    assert!(visible(&html).contains("Key line, always added last"));
    assert!(visible(&html).contains("The draft uses the default title and description for this row."));
    assert!(!html.contains(r#"id="text-pending""#), "the page shows the draft's text");
    assert_no_codes_outside_code("editor", &html);
    // A status row's editor lists the status fields; an Office 365 row's its own default title.
    let status_row = ticketing_core::rules::Section::Statuses(
        ticketing_core::model::Product::SecurityCenter,
        ticketing_core::model::StatusLevel::Critical,
    )
    .rows()[0]
        .clone();
    let (_, html) = ui.page(&cookie, &format!("/ui/text?row={status_row}")).await;
    assert!(html.contains("<code>computer_status</code>") && !html.contains("<code>mailbox</code>"));
    assert!(html.contains(&escaped(default_template(&status_row, Field::TitleTemplate))));
    assert_no_codes_outside_code("status editor", &html);
    let o365: RowId = O365.parse().unwrap();
    let (_, html) = ui.page(&cookie, &format!("/ui/text?row={O365}")).await;
    assert!(html.contains(&escaped(default_template(&o365, Field::TitleTemplate))));
    assert_no_codes_outside_code("Office 365 editor", &html);
    let (status, _) = ui.page(&cookie, "/ui/text?row=nowhere/event/x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Preview renders the typed text; nothing changes.
    let desc = default_template(&row, Field::DescriptionTemplate);
    let custom = "{{ device.name }}: {{ what }} ({{ severity }})";
    let resp = ui.post(Some(&cookie), "/ui/text/preview", &text_form(&csrf, CRIT, &revision, custom, desc)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert_eq!(element_text(&html, "sample-title").trim(), "ACME-PC-01: Malicious object detected (Critical)");
    assert!(html.contains(&escaped(custom)), "the typed text is kept");
    assert_eq!(ui.draft_rule(CRIT).title_template, None, "a preview changes nothing");
    assert!(visible(&html).contains("The text on this page is not in the draft yet"), "{html}");

    // An unknown field: refused next to its field, with line and column, the text kept.
    let bad_title = "{{ devce.name }}: {{ what }}";
    let bad_desc = "First line\nSecond {{ text }}\nThird {{ event_typo }}";
    let resp =
        ui.post(Some(&cookie), "/ui/text/preview", &text_form(&csrf, CRIT, &revision, bad_title, bad_desc)).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert_eq!(
        element_text(&html, "t-error-title"),
        "Line 1, column 4: \u{201c}devce.name\u{201d} is not a field of this row (see the fields of this row)"
    );
    assert!(element_text(&html, "t-error-description").starts_with("Line 3, column 10: \u{201c}event_typo\u{201d}"));
    assert!(html.contains(r#"aria-invalid="true" aria-describedby="t-error-title""#), "{html}");
    assert!(html.contains(&escaped(bad_title)) && html.contains(r#"id="sample-none""#));
    let resp = ui.post(Some(&cookie), "/ui/text/apply", &text_form(&csrf, CRIT, &revision, bad_title, desc)).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(visible(&html).contains("The ticket text was not put into the draft"), "{html}");
    assert_eq!(ui.draft_rule(CRIT).title_template, None, "nothing refused reached the draft");
    // The typed problem is the user's own text, in code: the words around it are words.
    let text = words_outside_code(&html.replace("devce.name", "x"));
    assert!(codes_in(&text).is_empty(), "{:?}: {text}", codes_in(&text));

    // Put into the draft: the title only (the description was left at the default text).
    let resp = ui.post(Some(&cookie), "/ui/text/apply", &text_form(&csrf, CRIT, &revision, custom, desc)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/ui/section?s=events/security_center");
    let draft = ui.draft_rule(CRIT);
    assert_eq!((draft.title_template.as_deref(), draft.description_template.as_deref()), (Some(custom), None));
    assert_eq!(ui.saved_rule(CRIT).title_template, None, "into the draft only");
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(visible(&html).contains("Ticket text of \u{201c}Critical\u{201d} put into the draft"), "{html}");
    assert!(visible(&html).contains("Ticket text  for Critical : custom"), "{html}");
    assert!(html.contains("(unsaved)"));
    // Save changes saves it with the section (the row on): the preview shows its sample ticket.
    let on = format!("enabled.{CRIT}");
    ui.post(
        Some(&cookie),
        "/ui/save",
        &[("csrf", &csrf), ("section", "events/security_center"), ("row", CRIT), (&on, "on")],
    )
    .await;
    assert_eq!(ui.saved_rule(CRIT).title_template.as_deref(), Some(custom));
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    let samples = element_text(&html, "preview-texts");
    assert!(samples.contains("Sample tickets of the rows with their own text"), "{samples}");
    let sample = html.split(r#"id="preview-texts""#).nth(1).unwrap();
    assert!(sample.contains("ACME-PC-01: Malicious object detected (Critical)"), "{sample}");
    assert!(visible(sample).contains("its own title, the default description"));
    assert_no_codes_outside_code("section with a sample ticket", &html);
    let p: serde_json::Value = ui
        .http
        .get(format!("{}/api/rules/preview?days=1", ui.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["texts"][0]["row"], CRIT, "{p}");
    assert_eq!(p["texts"][0]["title"], "ACME-PC-01: Malicious object detected (Critical)", "{p}");
    assert!(p["texts"][0]["description"].as_str().unwrap().ends_with(key), "{p}");
    assert_eq!(
        (p["texts"][0]["custom_title"].as_bool(), p["texts"][0]["custom_description"].as_bool()),
        (Some(true), Some(false))
    );
    let (_, html) = ui.page(&cookie, &format!("/ui/text?row={CRIT}")).await;
    assert!(html.contains(&escaped(custom)), "the editor shows the row's own title");
    assert!(
        visible(&html)
            .contains("The draft has this row's own title and the default description. The saved rules use the same.")
    );

    // A page from before another writer's change: 409, nothing applied, the text kept.
    let revision = ui.shared.rules.revision();
    msp_ticketd::rules_ops::cancel(&ui.shared, ticketing_core::rules::Section::General, None).unwrap();
    let old = revision.to_string();
    let resp = ui.post(Some(&cookie), "/ui/text/apply", &text_form(&csrf, CRIT, &old, "{{ what }}", desc)).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let html = resp.text().await.unwrap();
    assert!(visible(&html).contains("Changed elsewhere"), "{html}");
    assert!(html.contains(">{{ what }}</textarea>"), "{html}");
    assert_eq!(ui.draft_rule(CRIT).title_template.as_deref(), Some(custom));
    // Without the session's CSRF token: refused.
    let mut forged = text_form("nope", CRIT, &old, "{{ what }}", desc);
    forged[0] = ("csrf", "nope");
    assert_eq!(ui.post(Some(&cookie), "/ui/text/apply", &forged).await.status(), StatusCode::FORBIDDEN);

    // Use the default text: the template out of the draft; Save changes saves that.
    let revision = ui.shared.rules.revision().to_string();
    let resp = ui.post(Some(&cookie), "/ui/text/default", &text_form(&csrf, CRIT, &revision, custom, desc)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(ui.draft_rule(CRIT).title_template, None);
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(visible(&html).contains("\u{201c}Critical\u{201d} is back to the default ticket text in the draft"));
    let (_, html) = ui.page(&cookie, &format!("/ui/text?row={CRIT}")).await;
    assert!(html.contains(&escaped(default_template(&row, Field::TitleTemplate))), "the default text again");
    assert!(visible(&html).contains("Not saved yet"), "{html}");
    ui.post(Some(&cookie), "/ui/save", &[("csrf", &csrf), ("section", "events/security_center")]).await;
    assert_eq!(ui.saved_rule(CRIT).title_template, None);
    let (_, html) = ui.page(&cookie, "/ui/section?s=events/security_center").await;
    assert!(!html.contains(r#"id="preview-texts""#), "no sample ticket without a template");
}

// --- Editing the mapping, the unmapped banner, the Setup page (issue 26) -------------------

const ACME: &str = "ksc:lab/vs:1";
const CLINIC: &str = "ksc:lab/vs:3";
const NORTHWIND: &str = "ksc:lab/vs:4";
const ZETA: &str = "ksc:lab/vs:5";
const UMBRELLA: &str = "ksc:lab/vs:6";

/// The directory the leading engine would store: Acme Lab (a file entry), and four unmapped
/// tenants: two with an exact active account, one whose only alike account is inactive, one
/// with no alike account.
fn directory(ui: &Ui) {
    use msp_ticketd::documents::{Directory, ListedTenant, save_directory};
    use ticketing_core::model::{PsaId, Tenant, TenantId};
    use ticketing_core::ports::Account;
    let listed = |id: &str, name: &str| ListedTenant {
        tenant: Tenant { id: TenantId::new(id), name: name.to_owned() },
        source: "ksc:lab/events".to_owned(),
    };
    let account = |id: i64, name: &str, active: bool| Account { id: PsaId(id), name: name.to_owned(), active };
    let directory = Directory {
        tenants: vec![
            listed(ACME, "Acme Lab"),
            listed(CLINIC, "Walk-in Clinic"),
            listed(NORTHWIND, "Northwind Traders"),
            listed(ZETA, "Zeta Labs"),
            listed(UMBRELLA, "Umbrella Health"),
        ],
        accounts: vec![
            account(7, "Acme Corp", true),
            account(30, "Walk-in Clinic", true),
            account(40, "Northwind Traders", true),
            account(50, "Zeta Labs", false),
            account(60, "Qwerty Holdings", true),
        ],
        at: None,
    };
    save_directory(&*ui.shared.store, &directory).expect("directory stored");
    ui.writers.mapping.publish(vec![mapped(ACME, "Acme Lab", Some((7, "Acme Corp", true)), None)]);
}

fn stored_mapping(ui: &Ui) -> std::collections::BTreeMap<String, i64> {
    let set = msp_ticketd::documents::load_mapping(&*ui.shared.store).expect("mapping");
    set.entries.into_iter().map(|(t, a)| (t.to_string(), a.0)).collect()
}

fn revision_of(html: &str) -> String {
    let key = r#"name="revision" value=""#;
    let start = html.find(key).expect("page has a revision field") + key.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn tenant_row(html: &str, tenant: &str) -> String {
    let start = html.find(&format!(r#"data-tenant="{tenant}""#)).unwrap_or_else(|| panic!("{tenant}: {html}"));
    html[start..start + html[start..].find("</tr>").unwrap()].to_owned()
}

fn banner_count(html: &str) -> Option<String> {
    let start = html.find(r#"id="unmapped-banner""#)?;
    let start = start + html[start..].find('>').unwrap() + 1;
    let text = visible(&html[start..start + html[start..].find("</div>").unwrap()]);
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[tokio::test]
async fn mapping_page_maps_a_suggestion_and_any_account_unmaps_and_refuses_file_entries_and_stale_revisions() {
    let ui = start(Catalog::example()).await;
    directory(&ui);
    let cookie = ui.session().await;
    let (status, html) = ui.page(&cookie, "/ui/mapping").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&html);
    let rev = revision_of(&html);
    // The file entry: marked, no Unmap, no Map.
    let acme = tenant_row(&html, ACME);
    assert!(visible(&acme).contains("From the file") && visible(&acme).contains("from the file"), "{acme}");
    assert!(!acme.contains("Unmap") && !acme.contains(r#"action="/ui/mapping/set""#), "{acme}");
    // An unmapped tenant: its suggestion with the score and a Map button, and the search box.
    let clinic = tenant_row(&html, CLINIC);
    assert!(clinic.contains(r#"<span class="suggestion">Walk-in Clinic <span class="score">100 %</span>"#), "{clinic}");
    assert!(clinic.contains(r#"name="account" value="30""#) && clinic.contains(r#"class="map""#), "{clinic}");
    assert!(clinic.contains(r#"list="accounts-list""#) && clinic.contains(&format!(r#"name="csrf" value="{csrf}""#)));
    assert!(visible(&tenant_row(&html, ZETA)).contains("inactive"), "the inactive account is marked");
    assert!(html.contains(r#"<option value="Qwerty Holdings (id 60)">"#), "every account is in the search list");

    // Map from the suggestion: the store has it, the page says so.
    let form = [("csrf", csrf.as_str()), ("revision", rev.as_str()), ("tenant", CLINIC), ("account", "30")];
    let resp = ui.post(Some(&cookie), "/ui/mapping/set", &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(stored_mapping(&ui).get(CLINIC), Some(&30));
    let (_, html) = ui.page(&cookie, "/ui/mapping").await;
    assert!(
        visible(&html).contains("\u{201c}Walk-in Clinic\u{201d} is mapped to \u{201c}Walk-in Clinic\u{201d} (id 30).")
    );
    let clinic = tenant_row(&html, CLINIC);
    assert!(clinic.contains("Unmap") && visible(&clinic).contains("id 30"), "{clinic}");

    // The old revision is stale now: 409, the page with the message, nothing changed.
    let form = [("csrf", csrf.as_str()), ("revision", rev.as_str()), ("tenant", NORTHWIND), ("account", "40")];
    let resp = ui.post(Some(&cookie), "/ui/mapping/set", &form).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let text = visible(&resp.text().await.unwrap());
    assert!(text.contains("Changed elsewhere") && text.contains("reload"), "{text}");
    assert!(!stored_mapping(&ui).contains_key(NORTHWIND));

    // Any account through the search box, as the list offers it.
    let rev = revision_of(&html);
    let form = [
        ("csrf", csrf.as_str()),
        ("revision", rev.as_str()),
        ("tenant", NORTHWIND),
        ("account_search", "Qwerty Holdings (id 60)"),
    ];
    assert_eq!(ui.post(Some(&cookie), "/ui/mapping/set", &form).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(stored_mapping(&ui).get(NORTHWIND), Some(&60));

    // A forged POST for the file entry: 409 naming the file, nothing stored.
    let (_, html) = ui.page(&cookie, "/ui/mapping").await;
    let rev = revision_of(&html);
    for (path, form) in [
        (
            "/ui/mapping/set",
            vec![("csrf", csrf.as_str()), ("revision", rev.as_str()), ("tenant", ACME), ("account", "30")],
        ),
        ("/ui/mapping/unset", vec![("csrf", csrf.as_str()), ("revision", rev.as_str()), ("tenant", ACME)]),
    ] {
        let resp = ui.post(Some(&cookie), path, &form).await;
        assert_eq!(resp.status(), StatusCode::CONFLICT, "{path}");
        let text = visible(&resp.text().await.unwrap());
        assert!(text.contains(&format!("Tenant {ACME} is mapped in the configuration file")), "{path}: {text}");
    }
    assert!(!stored_mapping(&ui).contains_key(ACME));

    // Unmap: gone from the store; without the CSRF token: refused.
    let form = [("revision", rev.as_str()), ("tenant", CLINIC)];
    assert_eq!(ui.post(Some(&cookie), "/ui/mapping/unset", &form).await.status(), StatusCode::FORBIDDEN);
    let form = [("csrf", csrf.as_str()), ("revision", rev.as_str()), ("tenant", CLINIC)];
    assert_eq!(ui.post(Some(&cookie), "/ui/mapping/unset", &form).await.status(), StatusCode::SEE_OTHER);
    assert!(!stored_mapping(&ui).contains_key(CLINIC));
    let (_, html) = ui.page(&cookie, "/ui/mapping").await;
    assert!(tenant_row(&html, CLINIC).contains(r#"name="account" value="30""#), "suggested again");
}

#[tokio::test]
async fn accept_all_confirms_exactly_the_qualifying_tenants_then_maps_them_and_the_banner_counts_down() {
    let ui = start(Catalog::example()).await;
    let cookie = ui.session().await;
    let (_, html) = ui.page(&cookie, "/ui/activity").await;
    assert_eq!(banner_count(&html), None, "no directory yet: no banner");
    directory(&ui);
    for path in ["/ui/activity", "/ui/section?s=general", "/ui/setup", "/ui/mapping"] {
        let (_, html) = ui.page(&cookie, path).await;
        let banner = banner_count(&html).unwrap_or_else(|| panic!("{path}: no banner"));
        assert!(banner.starts_with("4 tenants are not mapped"), "{path}: {banner}");
        assert!(html.contains(r#"href="/ui/mapping" id="unmapped-link""#), "{path}");
    }
    let (_, html) = ui.page(&cookie, "/ui/mapping").await;
    assert!(visible(&html).contains("2 tenants have an active, unambiguous suggestion of 90 % or more"));

    // The confirmation lists exactly the active exact matches: not the inactive account, not
    // the tenant without an alike account; nothing is mapped yet.
    let (status, html) = ui.page(&cookie, "/ui/mapping/accept").await;
    assert_eq!(status, StatusCode::OK);
    let table = &html[html.find(r#"id="accept-table""#).expect("the list")..];
    let listed: Vec<&str> = [ACME, CLINIC, NORTHWIND, ZETA, UMBRELLA]
        .into_iter()
        .filter(|t| table.contains(&format!(r#"data-tenant="{t}""#)))
        .collect();
    assert_eq!(listed, vec![CLINIC, NORTHWIND]);
    assert!(visible(table).contains("Northwind Traders") && visible(table).contains("100 %"));
    assert!(stored_mapping(&ui).is_empty());

    // A confirmation that no longer matches what would be mapped: 409, nothing mapped.
    let csrf = csrf_of(&html);
    let rev = revision_of(&html);
    let form = [("csrf", csrf.as_str()), ("revision", rev.as_str()), ("tenant", CLINIC)];
    let resp = ui.post(Some(&cookie), "/ui/mapping/accept", &form).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert!(visible(&resp.text().await.unwrap()).contains("The suggestions changed since you reviewed them"));
    assert!(stored_mapping(&ui).is_empty());

    let form = [("csrf", csrf.as_str()), ("revision", rev.as_str()), ("tenant", CLINIC), ("tenant", NORTHWIND)];
    assert_eq!(ui.post(Some(&cookie), "/ui/mapping/accept", &form).await.status(), StatusCode::SEE_OTHER);
    let stored = stored_mapping(&ui);
    assert_eq!(stored.into_iter().collect::<Vec<_>>(), vec![(CLINIC.to_owned(), 30), (NORTHWIND.to_owned(), 40)]);
    let (_, html) = ui.page(&cookie, "/ui/activity").await;
    assert!(banner_count(&html).unwrap().starts_with("2 tenants are not mapped"), "{html}");
    // The same confirmation again: the revision moved on, 409.
    let resp = ui.post(Some(&cookie), "/ui/mapping/accept", &form).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);

    // The rest by hand; then no banner anywhere.
    for (tenant, account) in [(ZETA, "50"), (UMBRELLA, "Qwerty Holdings")] {
        let (_, html) = ui.page(&cookie, "/ui/mapping").await;
        let rev = revision_of(&html);
        let form =
            [("csrf", csrf.as_str()), ("revision", rev.as_str()), ("tenant", tenant), ("account_search", account)];
        assert_eq!(ui.post(Some(&cookie), "/ui/mapping/set", &form).await.status(), StatusCode::SEE_OTHER, "{tenant}");
    }
    for path in ["/ui/activity", "/ui/mapping", "/ui/setup"] {
        let (_, html) = ui.page(&cookie, path).await;
        assert_eq!(banner_count(&html), None, "{path}");
    }
    let (_, html) = ui.page(&cookie, "/ui/mapping").await;
    assert!(!html.contains(r#"id="accept-all""#), "nothing left to accept");
}

#[tokio::test]
async fn setup_page_shows_the_psa_sources_mapping_and_rules_with_where_each_is_fixed() {
    let ui = start(Catalog::example()).await;
    // Not logged in: the login, which then lands on the Setup page.
    let resp = ui.http.get(format!("{}/ui/setup", ui.base)).send().await.unwrap();
    assert_eq!(resp.headers()["location"], "/ui/login?next=setup");
    let (_, login) = (StatusCode::OK, ui.http.get(format!("{}/ui/login?next=setup", ui.base)).send().await.unwrap());
    assert!(login.text().await.unwrap().contains(r#"name="next" value="setup""#));
    let resp = ui.post(None, "/ui/login", &[("token", TOKEN), ("next", "setup")]).await;
    assert_eq!(resp.headers()["location"], "/ui/setup");
    let resp = ui.post(None, "/ui/login", &[("token", TOKEN), ("next", "https://evil.example/")]).await;
    assert_eq!(resp.headers()["location"], "/ui/section?s=general", "only known pages");

    directory(&ui);
    let secs = std::time::Duration::from_secs(60);
    ui.shared.health.set_sources([("ksc:lab/events".to_owned(), secs), ("kbh/endpoint_cloud/events".to_owned(), secs)]);
    ui.shared.health.source_read("ksc:lab/events", Ok(()), chrono::Utc::now());
    ui.shared.source_failed("kbh/endpoint_cloud/events", "connection refused");
    let cookie = ui.session().await;
    let (status, html) = ui.page(&cookie, "/ui/setup").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"id="tab-setup" aria-current="page""#), "in the bar: {html}");
    let text = visible(&html);
    let on = ui.shared.rules().saved.rows.values().filter(|r| r.enabled).count();
    let rules = match on {
        0 => "None: no ticket is made until a rule row is on and saved.".to_owned(),
        1 => "1 rule row is on (saved).".to_owned(),
        n => format!("{n} rule rows are on (saved)."),
    };
    for words in [
        "Tenants mapped to PSA accounts",
        "1 mapped, 4 not mapped",
        "The Mapping page",
        rules.as_str(),
        "The Ticketing rules",
        "Security Center \u{201c}lab\u{201d}: events",
        "Reached: last successful read",
        "Business Hub: Endpoint Security Cloud events",
        "Not reached: 1 failed read(s)",
        "The Business Hub settings",
        "Check now",
    ] {
        assert!(text.contains(words), "{words:?} in {text}");
    }
    assert!(html.contains(r#"href="/ui/mapping" id="setup-mapping-link""#));
    assert!(codes_in(&text).is_empty(), "{:?}", codes_in(&text));
    assert!(!html.contains(TOKEN), "no secret in the page");
}

/// Alert storms on the rules pages (issue #27): threshold and window inline per row, the Edit
/// window's storm fields (on, off, both refused, the note interval), errors in words, and the
/// preview counting storm tickets and notes from the stored events.
#[tokio::test]
async fn storm_settings_inline_and_in_the_edit_window_and_the_preview_counts_storms() {
    let ui = start(Catalog::example()).await;
    map_acme(&ui);
    // Twelve viruses on twelve computers within minutes.
    let events: Vec<_> = (0..12).map(|i| virus_event_id(&format!("s{i}"), &format!("pc-{i}"), 50 - i)).collect();
    let at = chrono::Utc::now() - chrono::Duration::minutes(10);
    ui.shared
        .store
        .commit(&msp_ticketd::store::Commit { events: &events, at: Some(at), ..Default::default() })
        .unwrap();
    let cookie = ui.session().await;
    let sec = "events/security_center";
    let page = format!("/ui/section?s={sec}");
    let (_, html) = ui.page(&cookie, &page).await;
    let csrf = csrf_of(&html);
    for text in
        ["Storm after (tickets)", r#"id="b_storm""#, r#"id="b_stormwin""#, r#"id="b_storm_off""#, r#"id="b_outbreak""#]
    {
        assert!(html.contains(text), "{text}");
    }
    assert!(html.contains(&format!(r#"name="storm.{CRIT}""#)) && html.contains(&format!(r#"name="stormwin.{CRIT}""#)));
    let (_, o365) = ui.page(&cookie, "/ui/section?s=events/office365").await;
    assert!(!o365.contains("Storm after"), "no storms for Office 365 rows");
    let (_, status) = ui.page(&cookie, "/ui/section?s=statuses/security_center/warning").await;
    assert!(
        status.contains("Storm after (tickets)") && !status.contains("b_outbreak"),
        "status rows take storms, not the outbreak"
    );

    // Saved inline: row on, 10 tickets within 30 minutes.
    let (on, storm, win) = (format!("enabled.{CRIT}"), format!("storm.{CRIT}"), format!("stormwin.{CRIT}"));
    let resp = ui
        .post(
            Some(&cookie),
            "/ui/save",
            &[("csrf", &csrf), ("section", sec), ("row", CRIT), (&on, "on"), (&storm, "10"), (&win, "30")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let saved = ui.saved_rule(CRIT);
    assert_eq!((saved.storm_threshold, saved.storm_window_minutes), (Some(10), Some(30)));
    // The preview: 10 tickets and a storm ticket; two events into the storm, one note.
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(html.contains(r#"<strong id="preview-count">11</strong>"#), "{html}");
    assert!(html.contains(r#"<strong id="preview-storm-events">2</strong>"#), "{html}");
    assert!(html.contains(r#"<strong id="preview-storm-tickets">1</strong>"#), "{html}");
    assert!(html.contains(r#"<strong id="preview-storm-notes">1</strong>"#), "{html}");
    assert!(visible(&html).contains("added to their row's storm ticket"), "{}", visible(&html));
    assert_words(&html);

    // A threshold without its window, and out of range: refused in words naming the row.
    ui.post(
        Some(&cookie),
        "/ui/rows",
        &[("csrf", &csrf), ("section", sec), ("row", CRIT), (&on, "on"), (&storm, "1"), (&win, "30")],
    )
    .await;
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(html.contains("Storm after (tickets) must be a whole number from 2 to 10000"), "{html}");
    assert_eq!(ui.draft_rule(CRIT).storm_threshold, Some(10));
    ui.post(
        Some(&cookie),
        "/ui/rows",
        &[("csrf", &csrf), ("section", sec), ("row", CRIT), (&on, "on"), (&storm, "10"), (&win, "")],
    )
    .await;
    assert_eq!(ui.draft_rule(CRIT).storm_window_minutes, Some(30), "a threshold without a window is refused");

    // The Edit window: storms on two rows with a note interval; off; both at once refused.
    let bulk = |extra: &[(&'static str, &'static str)]| {
        let mut form: Vec<(&str, String)> = vec![("csrf", csrf.clone()), ("section", sec.to_owned())];
        form.extend([CRIT, WARN].map(|r| ("select", r.to_owned())));
        form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        form
    };
    let post = |form: Vec<(&'static str, String)>| {
        let ui = &ui;
        let cookie = cookie.clone();
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ui.post(Some(&cookie), "/ui/bulk-edit", &pairs).await
        }
    };
    post(bulk(&[("b_storm", "20"), ("b_stormwin", "15"), ("b_stormnote", "2")])).await;
    let w = ui.draft_rule(WARN);
    assert_eq!((w.storm_threshold, w.storm_window_minutes, w.storm_note_minutes), (Some(20), Some(15), Some(2)));
    post(bulk(&[("b_storm_off", "on"), ("b_storm", "3")])).await;
    let (_, html) = ui.page(&cookie, &page).await;
    assert!(visible(&html).contains("give the numbers or tick \u{201c}Turn storms off\u{201d}, not both"), "{html}");
    post(bulk(&[("b_storm_off", "on")])).await;
    assert_eq!((ui.draft_rule(WARN).storm_threshold, ui.draft_rule(CRIT).storm_window_minutes), (None, None));
    assert_words(&html);
}
