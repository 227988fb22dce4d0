//! Users and the admin listener in whole daemons against the lab (issue 28): a UI session made
//! on one instance taken by the other and surviving a failover to it (two daemons on one store:
//! the PostgreSQL database named by `MSP_TEST_POSTGRES` when set, else a shared SQLite file);
//! the TLS listener served with a certificate made at test time and re-read on `SIGHUP`
//! ([`Running::hangup`], what the signal runs) with a new one; a non-loopback plain listener
//! refused at start; the `users` and `changes` commands, and `check`, never printing a secret.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result};
use msp_ticketd::demo::{ADMIN_TOKEN, Lab};
use msp_ticketd::service::{self, Running, StartOptions};
use reqwest::StatusCode;
use serde_json::Value;
use support::eventually;

const LEASE_SECS: u64 = 3;
const PASSWORD: &str = "otto-has-a-long-password";

/// A fresh PostgreSQL database, or the lab's SQLite file.
fn store_section(lab: &Lab) -> Result<String> {
    match std::env::var("MSP_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => {
            let db = format!("msp_access_ha_{}", std::process::id());
            let out = Command::new("psql").arg(&url).args(["-c", &format!("CREATE DATABASE {db}")]).output()?;
            anyhow::ensure!(out.status.success(), "creating {db}: {}", String::from_utf8_lossy(&out.stderr));
            let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b).to_owned();
            Ok(format!("[store]\nurl = \"{base}/{db}\"\n"))
        }
        _ => {
            assert!(std::env::var("MSP_REQUIRE_POSTGRES").as_deref() != Ok("1"), "MSP_TEST_POSTGRES is not set");
            Ok(format!("[store]\npath = {:?}\n", lab.store_path().display().to_string()))
        }
    }
}

fn with_store(lab: &Lab, store: &str, admin: &str) -> String {
    let base = lab.config_toml("", admin);
    let start = base.find("[store]").expect("store section");
    let end = start + base[start..].find("\n\n").expect("end of store section");
    format!("{}{store}{}", &base[..start], &base[end..])
}

fn parse(toml: &str) -> Result<msp_ticketd::config::Config> {
    msp_ticketd::config::Config::parse(toml, "access.toml").map_err(|e| anyhow::anyhow!("{e}"))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// `msp-ticketd ARGS` with the password on standard input; its output.
fn cli(args: &[&str], stdin: &str) -> Result<std::process::Output> {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_msp-ticketd"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().context("stdin")?.write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "msp-ticketd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(out)
}

async fn role_of(http: &reqwest::Client, running: &Running) -> Option<String> {
    let addr = running.admin_addr?;
    let r = http.get(format!("http://{addr}/api/status")).bearer_auth(ADMIN_TOKEN).send().await.ok()?;
    r.json::<Value>().await.ok()?["role"].as_str().map(str::to_owned)
}

fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("page has a CSRF field") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_on_one_instance_survives_a_failover_to_the_other() -> Result<()> {
    let lab = Lab::start().await?;
    let store = store_section(&lab)?;
    let ha = |name: &str| {
        format!("\n[ha]\ninstance = \"{name}\"\nlease_secs = {LEASE_SECS}\nrenew_secs = 1\ntakeover_secs = 1\n")
    };
    let toml_a = with_store(&lab, &store, "127.0.0.1:0") + &ha("a");
    let toml_b = with_store(&lab, &store, "127.0.0.1:0") + &ha("b");
    // The user, added with the CLI (password on standard input) before either starts.
    let file = write(&lab.dir, "a.toml", &toml_a)?;
    let file = file.to_str().context("path")?;
    cli(&["users", "--config", file, "add", "otto", "--role", "operator", "--password-file", "-"], PASSWORD)?;
    let tick = Duration::from_millis(100);
    let a = service::start_with(&parse(&toml_a)?, StartOptions::every(tick)).await?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    eventually(LEASE_SECS * 10, "a leads", || async {
        Ok((role_of(&http, &a).await.as_deref() == Some("leader")).then_some(()))
    })
    .await?;
    let b = service::start_with(&parse(&toml_b)?, StartOptions::every(tick)).await?;
    eventually(LEASE_SECS * 10, "b stands by", || async {
        Ok((role_of(&http, &b).await.as_deref() == Some("standby")).then_some(()))
    })
    .await?;

    // Logged in on a.
    let base_a = format!("http://{}", a.admin_addr.context("a's listener")?);
    let base_b = format!("http://{}", b.admin_addr.context("b's listener")?);
    let login =
        http.post(format!("{base_a}/ui/login")).form(&[("user", "otto"), ("password", PASSWORD)]).send().await?;
    assert_eq!(login.status(), StatusCode::SEE_OTHER, "otto logs in on a");
    let cookie = login.headers()["set-cookie"].to_str()?.split(';').next().context("cookie")?.to_owned();
    let page = |base: String| {
        let (http, cookie) = (http.clone(), cookie.clone());
        async move {
            let r = http.get(format!("{base}/ui/activity")).header("cookie", cookie).send().await?;
            Ok::<_, anyhow::Error>((r.status(), r.text().await?))
        }
    };
    assert_eq!(page(base_b.clone()).await?.0, StatusCode::OK, "b knows a's session: it is in the store");
    // a dies without giving the lease up; b takes over once it runs out, and the session goes
    // on there, CSRF token and all.
    a.kill().await;
    eventually(LEASE_SECS * 10, "b takes over", || async {
        Ok((role_of(&http, &b).await.as_deref() == Some("leader")).then_some(()))
    })
    .await?;
    let (code, html) = page(base_b.clone()).await?;
    assert_eq!(code, StatusCode::OK, "the session survived the failover");
    assert!(html.contains("otto (operator)"));
    let form = [("csrf", csrf_of(&html)), ("section", "general".to_owned())];
    let r = http.post(format!("{base_b}/ui/reset")).header("cookie", &cookie).form(&form).send().await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "a form with the session's CSRF token is taken on b");
    let changes: Value =
        http.get(format!("{base_b}/api/changes")).bearer_auth(ADMIN_TOKEN).send().await?.json().await?;
    assert_eq!(changes["changes"][0]["actor"], "otto", "{changes}");
    assert_eq!(changes["changes"][0]["kind"], "rules_reset");
    b.stop().await?;
    // The CLI's change log names the CLI user for the user it added.
    let out = cli(&["changes", "--config", file], "")?;
    let text = String::from_utf8(out.stdout)?;
    assert!(text.lines().any(|l| l.contains("\"user_add\"") && l.contains("\"cli:")), "{text}");
    assert!(!text.contains(PASSWORD) && !text.contains("argon2"), "no secret in `changes`");
    Ok(())
}

/// A CA and a certificate for `localhost` signed by it, as PEM: (ca, cert, key).
fn certificate(name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(rcgen::DnType::CommonName, format!("test CA {name}"));
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

async fn https_status(ca: &str, addr: std::net::SocketAddr) -> Result<StatusCode> {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes())?)
        .resolve("localhost", addr)
        .build()?;
    Ok(client.get(format!("https://localhost:{}/api/me", addr.port())).bearer_auth(ADMIN_TOKEN).send().await?.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tls_listener_serves_a_certificate_made_now_and_re_reads_it_on_sighup() -> Result<()> {
    let lab = Lab::start().await?;
    let (ca1, cert1, key1) = certificate("one");
    let cert = write(&lab.dir, "admin.crt", &cert1)?;
    let key = write(&lab.dir, "admin.key", &key1)?;
    let toml = lab.config_toml("", "127.0.0.1:0").replace(
        "[polling]",
        &format!("tls_cert = {:?}\ntls_key = {:?}\n\n[polling]", cert.display().to_string(), key.display().to_string()),
    );
    let path = write(&lab.dir, "tls.toml", &toml)?;
    let options = StartOptions { config_path: Some(path), ..StartOptions::every(Duration::from_millis(100)) };
    let running = service::start_with(&parse(&toml)?, options).await?;
    let addr = running.admin_addr.context("listener")?;
    assert_eq!(https_status(&ca1, addr).await?, StatusCode::OK, "served with the first certificate");
    let plain = reqwest::get(format!("http://{addr}/healthz")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "no plain HTTP on the TLS listener");
    // A new certificate in the same files, then what SIGHUP does.
    let (ca2, cert2, key2) = certificate("two");
    let cert2_again = cert2.clone();
    std::fs::write(&cert, cert2)?;
    std::fs::write(&key, key2)?;
    running.hangup().await;
    assert_eq!(https_status(&ca2, addr).await?, StatusCode::OK, "served with the new certificate");
    assert!(https_status(&ca1, addr).await.is_err(), "the first certificate is no longer served");
    // A broken file keeps the certificate in use.
    std::fs::write(&cert, "not a certificate")?;
    running.hangup().await;
    assert_eq!(https_status(&ca2, addr).await?, StatusCode::OK, "still the last good certificate");
    // (The broken file also made that reload's configuration check fail: nothing was reloaded.)
    // With the file good again, POST /api/reload over TLS is recorded too, naming the token.
    std::fs::write(&cert, &cert2_again)?;
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca2.as_bytes())?)
        .resolve("localhost", addr)
        .build()?;
    let url = format!("https://localhost:{}/api/reload", addr.port());
    let reload = client.post(url).bearer_auth(ADMIN_TOKEN).send().await?;
    assert_eq!(reload.status(), StatusCode::OK);
    let access = running.shared.store.access().context("access")?;
    let changes = access.changes(&Default::default())?;
    let reloads: Vec<&str> =
        changes.iter().filter(|c| c.kind == msp_ticketd::store::ChangeKind::Reload).map(|c| c.actor.as_str()).collect();
    assert_eq!(reloads, ["admin.token", "SIGHUP"], "newest first: {changes:?}");
    running.stop().await
}

#[tokio::test]
async fn a_non_loopback_plain_listener_is_refused_at_start() -> Result<()> {
    let lab = Lab::start().await?;
    let mut config = parse(&lab.config_toml("", "127.0.0.1:0"))?;
    config.admin.listen = "0.0.0.0:0".parse()?;
    let err = match service::start(&config, Duration::from_millis(100), None).await {
        Ok(_) => anyhow::bail!("a plain listener on 0.0.0.0 started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("not a loopback address") && err.contains("admin.allow_plain_http"), "{err}");
    let toml = lab.config_toml("", "0.0.0.0:0");
    let report =
        msp_ticketd::check::check(&write(&lab.dir, "plain.toml", &toml)?, &msp_ticketd::check::Options::new(true))
            .await;
    assert!(report.has_errors(), "check refuses it too");
    assert!(report.render().contains("admin.listen"), "{}", report.render());
    // Allowed behind a TLS proxy, with a warning.
    let mut allowed = config.clone();
    allowed.admin.allow_plain_http = true;
    assert!(msp_ticketd::listener::plain_refusal(&allowed.admin).is_none());
    assert!(msp_ticketd::listener::plain_refusal(&config.admin).is_some());
    Ok(())
}

#[tokio::test]
async fn the_users_commands_never_print_a_secret() -> Result<()> {
    let lab = Lab::start().await?;
    let toml = lab.config_toml("", "127.0.0.1:0");
    let file = write(&lab.dir, "users.toml", &toml)?;
    let f = file.to_str().context("path")?;
    cli(&["users", "--config", f, "add", "ada", "--role", "admin", "--password-file", "-"], PASSWORD)?;
    let refused = Command::new(env!("CARGO_BIN_EXE_msp-ticketd"))
        .args(["users", "--config", f, "add", "bob", "--role", "root", "--password-file", "/dev/null"])
        .output()?;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("viewer, operator or admin"), "the role is named");
    let short = write(&lab.dir, "short", "short-pw\n")?;
    let weak = Command::new(env!("CARGO_BIN_EXE_msp-ticketd"))
        .args(["users", "--config", f, "add", "bob", "--role", "viewer", "--password-file"])
        .arg(&short)
        .output()?;
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password: is 8 characters long"));
    let token =
        String::from_utf8(cli(&["users", "--config", f, "token", "create", "ada", "--label", "ci"], "")?.stdout)?;
    let token = token.trim().to_owned();
    assert!(token.starts_with("mspt_"), "the token is printed once: {token}");
    let mut printed = String::new();
    for args in [
        vec!["users", "--config", f, "list"],
        vec!["users", "--config", f, "token", "list"],
        vec!["users", "--config", f, "set-role", "ada", "operator"],
        vec!["changes", "--config", f],
    ] {
        let out = cli(&args, "")?;
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    let check = Command::new(env!("CARGO_BIN_EXE_msp-ticketd")).args(["check", "--offline", "--config", f]).output()?;
    printed.push_str(&String::from_utf8_lossy(&check.stdout));
    assert!(printed.contains("ada\tadmin") && printed.contains("operator role"), "{printed}");
    for secret in [PASSWORD, token.as_str(), ADMIN_TOKEN, "$argon2"] {
        assert!(!printed.contains(secret), "a secret appears in the CLI's output");
    }
    let id = token.split('_').nth(1).context("token id")?;
    cli(&["users", "--config", f, "token", "revoke", id], "")?;
    cli(&["users", "--config", f, "remove", "ada"], "")?;
    let listed = String::from_utf8(cli(&["users", "--config", f, "list"], "")?.stdout)?;
    assert!(listed.trim().is_empty(), "{listed}");
    Ok(())
}
