//! Invariant 5: no secret appears in any log line, error message or API response. The daemon
//! runs a scenario with failures (a wrong Business Hub token, PSA errors) with every log level
//! on, and everything it wrote and answered is scanned for every credential it holds.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use msp_ticketd::demo::{ADMIN_TOKEN, Lab};
use msp_ticketd::service;
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_errors_or_api_responses() -> anyhow::Result<()> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber)?;

    let lab = Lab::start().await?;
    let rules = "[rules.rows.\"security_center/event/critical\"]\nenabled = true\n";
    // A wrong Business Hub token: every Business Hub call fails with 401.
    let toml = lab
        .config_toml(rules, "127.0.0.1:0")
        .replace("token = { value = \"sim-token\" }", "token = { value = \"wrong-kbh-token-123\" }");
    let config = msp_ticketd::config::Config::parse(&toml, "secrets.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    // The PSA fails a few ticket calls with its own error bodies.
    lab.autotask_fault(
        Some("POST"),
        "(?i)/V1.0/Tickets",
        500,
        json!({ "errors": ["IntegrationCode is invalid."] }),
        1,
        0,
    )
    .await?;
    lab.autotask_fault(Some("POST"), "(?i)/V1.0/Tickets", 503, json!({ "errors": ["busy"] }), 2, 0).await?;
    let running = service::start(&config, Duration::from_millis(100), None).await?;
    lab.ksc_event(1, "critical", "GNRL_EV_VIRUS_FOUND", "pc-1", chrono::Duration::minutes(5), "virus").await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while lab.tickets().await?.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the ticket never came");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let addr = running.admin_addr.expect("admin listener");
    let http = reqwest::Client::new();
    let mut answers = String::new();
    // Users (issue 28): one added, logged in with its password and refused with a wrong one, an
    // API token made and used; none of the password, the token, the session id or the hash may
    // show anywhere.
    let access = running.shared.store.access().expect("the store keeps users");
    let actor = msp_ticketd::access::Actor::Cli("secrets-test".into());
    let user_password = ticketing_core::secret::Secret::new("user-password-s3cret-42");
    msp_ticketd::access::users::add(
        access,
        &actor,
        "otto",
        msp_ticketd::access::Role::Operator,
        &user_password,
        chrono::Utc::now(),
    )?;
    let hash = access.user("otto")?.expect("added").password_hash.expose().to_owned();
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let login = no_redirect
        .post(format!("http://{addr}/ui/login"))
        .form(&[("user", "otto"), ("password", user_password.expose())])
        .send()
        .await?;
    let session =
        login.headers()["set-cookie"].to_str()?.split(';').next().unwrap().split('=').nth(1).unwrap().to_owned();
    let wrong = no_redirect
        .post(format!("http://{addr}/ui/login"))
        .form(&[("user", "otto"), ("password", "wrong-pw-s3cret-77")])
        .send()
        .await?;
    answers.push_str(&wrong.text().await?);
    let made: serde_json::Value = http
        .post(format!("http://{addr}/api/tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "user": "otto", "label": "ci" }))
        .send()
        .await?
        .json()
        .await?;
    let user_token = made["token"].as_str().expect("the token, shown once").to_owned();
    for path in ["/api/me", "/api/changes", "/api/users", "/api/tokens"] {
        let r = http.get(format!("http://{addr}{path}")).bearer_auth(&user_token).send().await?;
        answers.push_str(&r.text().await?);
        let r = http.get(format!("http://{addr}{path}")).bearer_auth(ADMIN_TOKEN).send().await?;
        answers.push_str(&r.text().await?);
    }
    let r = no_redirect
        .get(format!("http://{addr}/ui/activity"))
        .header("cookie", format!("msp_ui_session={session}"))
        .send()
        .await?;
    answers.push_str(&r.text().await?);
    answers.push_str(&format!("{:?}", access.users()?));
    for path in ["/api/rules", "/api/mapping", "/api/ledger", "/api/transitions", "/metrics", "/api/rules/preview"] {
        let r = http.get(format!("http://{addr}{path}")).bearer_auth(ADMIN_TOKEN).send().await?;
        answers.push_str(&r.text().await?);
    }
    let refused = http.get(format!("http://{addr}/api/rules")).bearer_auth("guess").send().await?;
    answers.push_str(&refused.text().await?);
    // An error the CLI would print.
    let bad =
        toml.replace("secret = { value = \"sim-secret\" }", "secret = { env = \"MSP_TEST_UNSET_SECRET_VARIABLE\" }");
    if let Err(e) = msp_ticketd::config::Config::parse(&bad, "bad.toml") {
        answers.push_str(&e.to_string());
    }
    answers.push_str(&format!("{config:?}"));
    running.stop().await?;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone())?;
    assert!(logs.contains("ticket created"), "the scenario ran and was logged");
    if std::env::var_os("MSP_SHOW_LOG").is_some() {
        eprintln!(
            "{}",
            logs.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect::<Vec<_>>().join("\n")
        );
    }
    assert!(logs.contains("401 unauthorized"), "the failing source was logged");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for secret in [
        "sim-secret".to_owned(),
        "SIMINTEGRATIONCODE000000000".to_owned(),
        "ksc-secret".to_owned(),
        b64("ksc-secret"),
        "wrong-kbh-token-123".to_owned(),
        ADMIN_TOKEN.to_owned(),
        user_password.expose().to_owned(),
        "wrong-pw-s3cret-77".to_owned(),
        user_token.clone(),
        session.clone(),
        hash.clone(),
    ] {
        assert!(!logs.contains(&secret), "a secret appears in the logs");
        assert!(!answers.contains(&secret), "a secret appears in an answer or error");
    }
    Ok(())
}
