//! The Ticketing tab in headless Chromium, driven through chromedriver's W3C WebDriver HTTP API
//! with plain JSON calls, against a real daemon (`demo::Lab` + `service::start`).
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`.ci/install-chromium`). Without them the
//! test is skipped, unless `MSP_REQUIRE_BROWSER=1`, which makes it fail. With
//! `MSP_UI_SCREENSHOTS=<dir>` it also writes a screenshot of each section into that directory
//! (how docs/ui-*.png were made).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use daemon::config::Config;
use daemon::demo::{ADMIN_TOKEN, Lab};
use daemon::service;
use serde_json::{Value, json};
use ticketing_core::rules::{RowId, Section};
use tokio::time::Instant;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver, killed (and reaped) when dropped.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

async fn start_driver(http: &reqwest::Client) -> Result<Driver> {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting chromedriver")?;
    let driver = Driver { child, base: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(r) = http.get(format!("{}/status", driver.base)).send().await {
            let v: Value = r.json().await.unwrap_or_default();
            if v["value"]["ready"].as_bool() == Some(true) {
                return Ok(driver);
            }
        }
        if Instant::now() > deadline {
            bail!("chromedriver did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One WebDriver session.
struct Browser {
    http: reqwest::Client,
    session: String,
    profile: PathBuf,
}

impl Browser {
    async fn open(http: &reqwest::Client, driver: &Driver, profile: &Path) -> Result<Self> {
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,800", "--disable-background-networking", "--disable-component-update",
                         "--no-first-run", "--disable-sync", format!("--user-data-dir={}", profile.display())]
            }
        }}});
        let v: Value = http.post(format!("{}/session", driver.base)).json(&caps).send().await?.json().await?;
        let id = v["value"]["sessionId"].as_str().with_context(|| format!("no session: {v}"))?;
        Ok(Self { http: http.clone(), session: format!("{}/session/{id}", driver.base), profile: profile.to_owned() })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await?.json().await?;
        if v["value"].get("error").is_some() {
            bail!("webdriver {method} {path}: {}", v["value"]);
        }
        Ok(v["value"].clone())
    }

    async fn goto(&self, url: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await.map(|_| ())
    }

    async fn find(&self, css: &str) -> Result<String> {
        let v =
            self.call(reqwest::Method::POST, "/element", Some(json!({ "using": "css selector", "value": css }))).await;
        let v = v.with_context(|| format!("finding {css}"))?;
        Ok(v[ELEMENT].as_str().with_context(|| format!("element id of {css} in {v}"))?.to_owned())
    }

    async fn click(&self, css: &str) -> Result<()> {
        let el = self.find(css).await?;
        self.call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await.map(|_| ())
    }

    /// Clicks something that loads a new page (a submit button, a link) and waits until the old
    /// page is gone, so the next lookups see the new one.
    async fn navigate_by(&self, css: &str) -> Result<()> {
        let old = self.find("html").await?;
        self.click(css).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v: Value = self.http.get(format!("{}/element/{old}/name", self.session)).send().await?.json().await?;
            if v["value"]["error"].as_str() == Some("stale element reference") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("clicking {css} did not load a new page");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let el = self.find(css).await?;
        self.call(reqwest::Method::POST, &format!("/element/{el}/clear"), Some(json!({}))).await?;
        self.call(reqwest::Method::POST, &format!("/element/{el}/value"), Some(json!({ "text": text }))).await?;
        Ok(())
    }

    async fn text(&self, css: &str) -> Result<String> {
        let el = self.find(css).await?;
        Ok(self
            .call(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    async fn property(&self, css: &str, name: &str) -> Result<Value> {
        let el = self.find(css).await?;
        self.call(reqwest::Method::GET, &format!("/element/{el}/property/{name}"), None).await
    }

    async fn selected(&self, css: &str) -> Result<bool> {
        let el = self.find(css).await?;
        Ok(self.call(reqwest::Method::GET, &format!("/element/{el}/selected"), None).await?.as_bool() == Some(true))
    }

    async fn choose(&self, select_css: &str, value: &str) -> Result<()> {
        self.click(&format!("{select_css} option[value=\"{value}\"]")).await
    }

    async fn screenshot(&self, path: &Path) -> Result<()> {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().context("screenshot data")?)?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn browser_installed() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

async fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn id(prefix: &str, row: &str) -> String {
    format!("#{prefix}-{}", row.replace('/', "-"))
}

const CRIT: &str = "security_center/event/critical";
const WARN: &str = "security_center/event/warning";
const FAIL: &str = "security_center/event/functional_failure";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticketing_tab_in_headless_chromium() -> Result<()> {
    if !browser_installed() {
        if std::env::var("MSP_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("MSP_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing: run .ci/install-chromium");
        }
        println!("browser tests skipped: chromium/chromedriver not installed (run .ci/install-chromium)");
        return Ok(());
    }
    let shots = std::env::var_os("MSP_UI_SCREENSHOTS").map(PathBuf::from);

    // A real daemon against the lab, with the guide's defaults and a fast catalog refresh.
    let lab = Lab::start().await?;
    let toml = lab.config_toml("", "127.0.0.1:0").replace("catalog_secs = 30", "catalog_secs = 1");
    assert!(toml.contains("catalog_secs = 1"));
    let config = Config::parse(&toml, "ui-browser.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let running = service::start(&config, Duration::from_millis(100), None).await?;
    let shared = running.shared.clone();
    let base = format!("http://{}", running.admin_addr.context("admin listener")?);
    wait_for("the PSA catalog", 20, || shared.catalog().is_some()).await?;
    // One critical virus event an hour ago at Acme: the history the preview replays.
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "acme-pc-01", chrono::Duration::hours(1), "Trojan found")
        .await?;
    wait_for("the event in the store", 20, || {
        shared.store.events_since(chrono::Utc::now() - chrono::Duration::days(1)).map(|e| e.len()).unwrap_or(0) >= 1
    })
    .await?;

    let http = reqwest::Client::new();
    let driver = start_driver(&http).await?;
    let profile = lab.dir.join("chromium-profile");
    let browser = Browser::open(&http, &driver, &profile).await?;
    let result = scenario(&browser, &lab, &running, &base, shots.as_deref()).await;
    browser.close().await;
    drop(driver);
    running.stop().await?;
    result
}

async fn scenario(b: &Browser, lab: &Lab, running: &service::Running, base: &str, shots: Option<&Path>) -> Result<()> {
    let shared = &running.shared;
    let sc = format!("{base}/ui/section?s=events/security_center");

    // Login required, then the login form.
    b.goto(&format!("{base}/ui")).await?;
    b.type_into("#token", ADMIN_TOKEN).await?;
    b.navigate_by("form.login button[type=submit]").await?;
    assert_eq!(b.text("#section-title").await?, "General");

    // Every section opens from its URL, with one row per severity / event type / description.
    for section in Section::all() {
        b.goto(&format!("{base}/ui/section?s={section}")).await?;
        assert_eq!(b.text("#section-title").await?, section.title());
        for row in section.rows() {
            let r = row.to_string();
            assert_eq!(b.text(&format!("{} th", id("row", &r))).await?, row.label(), "{section}");
        }
        if let Some(dir) = shots {
            b.screenshot(&dir.join(format!("ui-{}.png", section.to_string().replace('/', "-")))).await?;
        }
    }
    // The navigation links to every section.
    b.goto(&format!("{base}/ui/section?s=general")).await?;
    b.navigate_by("nav a[href=\"/ui/section?s=statuses/endpoint_cloud/warning\"]").await?;
    assert_eq!(b.text("#section-title").await?, "statuses/endpoint_cloud/warning".parse::<Section>()?.title());

    // Toggle a rule: the draft changes (and so does the preview), the saved rules do not.
    b.goto(&sc).await?;
    assert_eq!(b.text("#preview-count").await?, "0", "every rule is off by default");
    b.click(&id("enabled", CRIT)).await?;
    b.navigate_by("#apply").await?;
    assert!(b.text("#flash-ok").await?.contains("Draft updated"));
    assert!(b.selected(&id("enabled", CRIT)).await?);
    assert_eq!(b.text("#preview-count").await?, "1", "the draft would have ticketed the virus event");
    assert!(b.text("#preview-result").await?.contains("the saved rules: 0"));
    assert!(b.text("nav").await?.contains("(unsaved)"));
    assert!(!shared.rules().saved.rule(&CRIT.parse::<RowId>()?).unwrap().enabled);

    // Select three rows and Edit them at once: priority High, due 6 hours, sub-issue type Malware.
    for row in [CRIT, WARN, FAIL] {
        b.click(&id("select", row)).await?;
    }
    b.click("#edit-open").await?;
    b.choose("#b_enabled", "on").await?;
    b.choose("#b_priority", "=High").await?;
    b.type_into("#b_due", "6").await?;
    b.choose("#b_issue_type", "=Software").await?;
    b.choose("#b_sub_issue_type", "=Email").await?;
    b.navigate_by("#bulk-apply").await?;
    assert!(b.text("#flash-ok").await?.contains("Applied to 3 row(s)"));

    // Save, reload: the saved values are shown.
    b.navigate_by("#save").await?;
    assert!(b.text("#flash-ok").await?.contains("Saved"));
    b.goto(&sc).await?;
    assert_eq!(b.text("#section-state").await?, "The draft equals the saved rules.");
    for row in [CRIT, WARN, FAIL] {
        assert!(b.selected(&id("enabled", row)).await?, "{row}");
        assert_eq!(b.property(&id("priority", row), "value").await?, "High", "{row}");
        assert_eq!(b.property(&id("due", row), "value").await?, "6", "{row}");
        assert_eq!(b.property(&id("queue", row), "value").await?, "Monitoring Alert", "{row} kept its queue");
        assert!(b.text(&id("details", row)).await?.contains("Software / Email"));
    }
    let saved = shared.rules().saved.clone();
    assert_eq!(saved.rule(&WARN.parse::<RowId>()?).unwrap().priority.as_deref(), Some("High"));

    // Cancel a change.
    b.click(&id("enabled", WARN)).await?;
    b.navigate_by("#apply").await?;
    assert!(!b.selected(&id("enabled", WARN)).await?);
    b.navigate_by("#cancel").await?;
    assert!(b.text("#flash-ok").await?.contains("cancelled"));
    assert!(b.selected(&id("enabled", WARN)).await?, "back to the saved value");

    // Reset to defaults: into the draft only.
    b.navigate_by("#reset").await?;
    assert!(b.text("#flash-ok").await?.contains("Defaults"));
    for row in [CRIT, WARN, FAIL] {
        assert!(!b.selected(&id("enabled", row)).await?, "{row}");
        assert_eq!(b.property(&id("due", row), "value").await?, "12");
    }
    assert_eq!(b.property(&id("priority", CRIT), "value").await?, "Critical");
    assert_eq!(b.property(&id("priority", WARN), "value").await?, "Medium");
    assert_eq!(b.text("#preview-count").await?, "0");
    assert!(shared.rules().saved.rule(&CRIT.parse::<RowId>()?).unwrap().enabled, "reset does not save");

    // Switch the critical row on (default priority Critical), then delete "Critical" in the PSA.
    b.click(&id("enabled", CRIT)).await?;
    b.navigate_by("#apply").await?;
    assert_eq!(b.text("#preview-count").await?, "1");
    lab.control(
        &lab.autotask,
        reqwest::Method::POST,
        "/_sim/picklist",
        json!({ "field": "priority", "value": "4", "remove": true }),
    )
    .await?;
    wait_for("the catalog refresh", 20, || {
        shared.catalog().is_some_and(|c| !c.priorities.iter().any(|p| p.label == "Critical"))
    })
    .await?;
    b.goto(&sc).await?;
    assert_eq!(b.property(&id("priority", CRIT), "value").await?, "", "a deleted priority shows as blank");
    assert!(b.text(&id("problems", CRIT)).await?.contains("Priority"));
    assert!(b.text("#problems").await?.contains("priority"));
    assert_eq!(b.text("#preview-count").await?, "0", "the draft can no longer ticket it");
    b.navigate_by("#save").await?;
    let refusal = b.text("#flash-error").await?;
    assert!(refusal.contains("Save refused"), "{refusal}");
    assert!(refusal.contains("row \"Critical\"") && refusal.contains("priority"), "{refusal}");
    assert_eq!(shared.rules().saved, saved, "nothing saved");
    if let Some(dir) = shots {
        b.screenshot(&dir.join("ui-save-refused.png")).await?;
    }

    // Pick another priority: the save goes through.
    b.choose(&id("priority", CRIT), "High").await?;
    b.navigate_by("#save").await?;
    assert!(b.text("#flash-ok").await?.contains("Saved"));
    assert_eq!(shared.rules().saved.rule(&CRIT.parse::<RowId>()?).unwrap().priority.as_deref(), Some("High"));
    Ok(())
}
