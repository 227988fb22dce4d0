//! The `/login` session cookie and plain HTTP (issue #29): a cookie-jar client that logs in to
//! `ksc-sim` without `--tls` must get its cookie back on the next call. A cookie marked
//! `Secure` is never sent over `http://` (except to `localhost`, which cookie stores treat as
//! secure), so the simulator leaves `Secure` off without TLS and keeps it with TLS.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use simulators::ksc::{self, Config};

fn kscbasic() -> String {
    format!(
        "KSCBasic user=\"{}\", pass=\"{}\", domain=\"\", internal=\"1\"",
        B64.encode(ksc::DEFAULT_USER),
        B64.encode(ksc::DEFAULT_PASSWORD)
    )
}

#[tokio::test]
async fn plain_http_login_cookie_comes_back_from_a_cookie_jar() {
    let h = ksc::start("127.0.0.1:0".parse().unwrap(), Config::default()).await.unwrap();
    // A host name that is not `localhost`: the jar applies the `Secure` rule as it would to a
    // server on the network.
    let jar = reqwest::Client::builder().cookie_store(true).resolve("ksc-sim.test", h.addr()).build().unwrap();
    let base = format!("http://ksc-sim.test:{}/api/v1.0", h.addr().port());
    let login = jar.post(format!("{base}/login")).header("Authorization", kscbasic()).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.starts_with(&format!("{}=", ksc::SESSION_COOKIE)), "{cookie}");
    // Every call after /login is authenticated by the cookie alone.
    let ping = jar.post(format!("{base}/Session.Ping")).json(&json!({})).send().await.unwrap();
    assert_eq!(ping.status(), 200, "the jar did not send the session cookie back over plain HTTP");
    assert!(!cookie.to_ascii_lowercase().contains("secure"), "plain HTTP: no Secure attribute: {cookie}");
    let vs = jar.post(format!("{base}/VServers.GetVServers")).json(&json!({"lParentGroup": -1})).send().await.unwrap();
    assert_eq!(vs.status(), 200);
    assert!(vs.json::<Value>().await.unwrap()["PxgRetVal"].is_array());
}

#[tokio::test]
async fn tls_login_cookie_keeps_secure() {
    let (h, cert) =
        ksc::start_tls("127.0.0.1:0".parse().unwrap(), Config::default(), &ksc::TlsOptions::default()).await.unwrap();
    let pins = pinned_tls::pins_from_pem(cert.pem.as_bytes()).unwrap();
    let http = pinned_tls::reqwest_builder(&pinned_tls::Options { pins, ..Default::default() })
        .unwrap()
        .cookie_store(true)
        .build()
        .unwrap();
    let base = format!("{}/api/v1.0", h.base_url());
    let login = http.post(format!("{base}/login")).header("Authorization", kscbasic()).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.contains("; Secure"), "HTTPS: the cookie stays Secure: {cookie}");
    let ping = http.post(format!("{base}/Session.Ping")).json(&json!({})).send().await.unwrap();
    assert_eq!(ping.status(), 200);
}
