//! The HTTP layer: one `POST /api/v1.0/Class.Method` per call, sessions per virtual server,
//! the response envelope, retries.
//!
//! ```text
//!  call(vserver, method, body)
//!    ├─ session for vserver? ── no ──> Session.StartSession (KSCBasic + X-KSC-VServer)
//!    ├─ POST method with X-KSC-Session
//!    ├─ 401/403 ──> forget the session, start a new one, send once more
//!    ├─ PxgError in the body (any status) ──> KscError::Api
//!    └─ transient failure (connect, timeout, 5xx, 503) ──> backoff, retry (read calls only)
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value as Json, json};
use ticketing_core::secret::Secret;
use tokio::sync::Mutex;

use crate::config::{KscConfig, RetryPolicy, TlsVerification};
use crate::error::{KscError, PxgError, truncate_body};
use crate::value::{Params, Value, parse_params};

/// Header carrying the session id on every call.
pub const SESSION_HEADER: &str = "X-KSC-Session";
/// Header choosing the virtual server at `Session.StartSession` (base64 of its display name).
pub const VSERVER_HEADER: &str = "X-KSC-VServer";

/// A successful call's envelope: `{"PxgRetVal": ..., <out params>}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The method's return value, absent for `void` methods.
    pub retval: Option<Value>,
    /// Every other top-level member: the method's out-parameters.
    pub out: Params,
}

impl Reply {
    /// Parses a body that is known to carry no `PxgError`.
    pub fn from_json(method: &str, body: &Json) -> Result<Self, KscError> {
        let Json::Object(map) = body else {
            return Err(malformed(method, "the answer is not a JSON object"));
        };
        let mut out = parse_params(map).map_err(|e| malformed(method, e.to_string()))?;
        let retval = out.remove("PxgRetVal");
        Ok(Self { retval, out })
    }

    /// The return value, required.
    pub fn retval(&self, method: &str) -> Result<&Value, KscError> {
        self.retval.as_ref().ok_or_else(|| malformed(method, "PxgRetVal missing"))
    }

    /// An out-parameter, required.
    pub fn out(&self, method: &str, name: &str) -> Result<&Value, KscError> {
        self.out.get(name).ok_or_else(|| malformed(method, format!("{name} missing")))
    }
}

pub(crate) fn malformed(method: &str, detail: impl Into<String>) -> KscError {
    KscError::Malformed { method: method.to_owned(), detail: detail.into() }
}

/// Parses any answer: `PxgError` whatever the status, then the status, then the envelope.
pub fn parse_response(method: &str, status: u16, body: &str) -> Result<Reply, KscError> {
    let json: Option<Json> = serde_json::from_str(body).ok();
    if let Some(err) = json.as_ref().and_then(|j| j.get("PxgError")) {
        let error: PxgError = serde_json::from_value(err.clone())
            .unwrap_or_else(|_| PxgError { message: truncate_body(&err.to_string()), ..PxgError::default() });
        return Err(KscError::Api { method: method.to_owned(), status, error: Box::new(error) });
    }
    if status != 200 {
        return Err(KscError::Http { method: method.to_owned(), status, body: truncate_body(body) });
    }
    match json {
        Some(j) => Reply::from_json(method, &j),
        None => Err(malformed(method, format!("not JSON: {}", truncate_body(body)))),
    }
}

/// A Security Center Open API client: holds one session per virtual server and reuses it.
///
/// Sessions are started lazily on the first call for a virtual server and ended by
/// [`KscClient::logout_all`]. Cheap to share behind an `Arc`; calls may run concurrently.
pub struct KscClient {
    http: reqwest::Client,
    api_base: String,
    user: String,
    password: Secret,
    retry: RetryPolicy,
    /// Virtual-server display name ("" = main server) → its session slot.
    sessions: std::sync::Mutex<HashMap<String, Slot>>,
    /// Each method's URL, parsed once (a handful of methods, called 10,000s of times a pass).
    urls: std::sync::Mutex<HashMap<String, reqwest::Url>>,
}

/// One virtual server's session: `None` until a login succeeds. A login holds only its own
/// server's slot, so 10,000 servers log in side by side (up to the read concurrency), and two
/// reads of one server (its events and its statuses) share one login.
type Slot = Arc<Mutex<Option<String>>>;

impl std::fmt::Debug for KscClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KscClient")
            .field("api_base", &self.api_base)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

enum Attempt<T> {
    Done(Result<T, KscError>),
    SessionGone(u16),
}

/// Reads one answer (HTTP status and body) into a result; [`parse_response`] for [`Reply`].
pub(crate) trait ParseAnswer<T>: Fn(&str, u16, &str) -> Result<T, KscError> {}
impl<T, F: Fn(&str, u16, &str) -> Result<T, KscError>> ParseAnswer<T> for F {}

impl KscClient {
    /// Builds the client (HTTP client, TLS settings); makes no request.
    pub fn new(config: &KscConfig) -> Result<Self, KscError> {
        let mut base = config.base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(KscError::Config(format!("base url {base:?} must start with http:// or https://")));
        }
        base.push_str("/api/v1.0/");
        let mut builder = tls_builder(config)?.timeout(config.request_timeout).connect_timeout(config.connect_timeout);
        if matches!(config.tls, TlsVerification::Disabled) {
            tracing::warn!(
                url = %config.base_url,
                "TLS certificate verification of Security Center is DISABLED by configuration"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        // The Open API answers every call itself; a redirect is not followed (it would carry
        // the session header to wherever it points) but answered as the HTTP error it is.
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| KscError::Config(format!("http client: {e}")))?;
        Ok(Self {
            http,
            api_base: base,
            user: config.user.clone(),
            password: config.password.clone(),
            retry: config.retry,
            sessions: std::sync::Mutex::new(HashMap::new()),
            urls: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The `Authorization` header value of `Session.StartSession`.
    fn basic_auth(&self) -> Result<HeaderValue, KscError> {
        let value = format!(
            "KSCBasic user=\"{}\", pass=\"{}\", domain=\"\", internal=\"1\"",
            B64.encode(self.user.as_bytes()),
            B64.encode(self.password.expose().as_bytes()),
        );
        let mut header = HeaderValue::from_str(&value)
            .map_err(|_| KscError::Config("user name is not a valid header value".to_owned()))?;
        header.set_sensitive(true);
        Ok(header)
    }

    async fn send(
        &self,
        method: &str,
        body: &Json,
        headers: &[(&str, HeaderValue)],
    ) -> Result<(u16, String), KscError> {
        let mut req = self.http.post(self.url(method)?).json(body);
        for (name, value) in headers {
            req = req.header(*name, value.clone());
        }
        let resp = req.send().await.map_err(|e| transport_error(method, &e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| transport_error(method, &e))?;
        Ok((status, text))
    }

    /// The URL of `method`, parsed on its first call.
    fn url(&self, method: &str) -> Result<reqwest::Url, KscError> {
        let mut urls = self.urls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(url) = urls.get(method) {
            return Ok(url.clone());
        }
        let url = reqwest::Url::parse(&format!("{}{method}", self.api_base))
            .map_err(|e| KscError::Config(format!("base url {:?} with {method}: {e}", self.api_base)))?;
        urls.insert(method.to_owned(), url.clone());
        Ok(url)
    }

    /// `Session.StartSession` for a virtual server (`""` = main server); returns the session id.
    pub async fn start_session(&self, vserver: &str) -> Result<String, KscError> {
        const METHOD: &str = "Session.StartSession";
        let vs = HeaderValue::from_str(&B64.encode(vserver.as_bytes()))
            .map_err(|_| KscError::Config("bad virtual server name".to_owned()))?;
        let (status, body) = self
            .send(METHOD, &json!({}), &[(AUTHORIZATION.as_str(), self.basic_auth()?), (VSERVER_HEADER, vs)])
            .await?;
        if status == StatusCode::UNAUTHORIZED.as_u16() || status == StatusCode::FORBIDDEN.as_u16() {
            return Err(KscError::Auth { status, body: truncate_body(&body) });
        }
        let reply = parse_response(METHOD, status, &body)?;
        match reply.retval(METHOD)?.as_str() {
            Some(id) if !id.is_empty() => {
                tracing::debug!(vserver, "security center session started");
                Ok(id.to_owned())
            }
            _ => Err(malformed(METHOD, "PxgRetVal is not a session id")),
        }
    }

    /// The slot of a virtual server (created empty on first use).
    fn slot(&self, vserver: &str) -> Slot {
        let mut sessions = self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.entry(vserver.to_owned()).or_default().clone()
    }

    async fn session(&self, vserver: &str) -> Result<String, KscError> {
        let slot = self.slot(vserver);
        let mut session = slot.lock().await;
        if let Some(id) = session.as_ref() {
            return Ok(id.clone());
        }
        let id = self.start_session(vserver).await?;
        *session = Some(id.clone());
        Ok(id)
    }

    async fn forget_session(&self, vserver: &str, id: &str) {
        let slot = self.slot(vserver);
        let mut session = slot.lock().await;
        if session.as_deref() == Some(id) {
            *session = None;
        }
    }

    async fn attempt<T>(
        &self,
        vserver: &str,
        method: &str,
        body: &Json,
        parse: &impl ParseAnswer<T>,
    ) -> Result<Attempt<T>, KscError> {
        let session = self.session(vserver).await?;
        let header = HeaderValue::from_str(&session)
            .map_err(|_| malformed("Session.StartSession", "session id is not a header value"))?;
        let (status, text) = self.send(method, body, &[(SESSION_HEADER, header)]).await?;
        if status == 401 || status == 403 {
            self.forget_session(vserver, &session).await;
            return Ok(Attempt::SessionGone(status));
        }
        Ok(Attempt::Done(parse(method, status, &text)))
    }

    /// One call without transient retries; a lost session is replaced once.
    async fn call_once<T>(
        &self,
        vserver: &str,
        method: &str,
        body: &Json,
        parse: &impl ParseAnswer<T>,
    ) -> Result<T, KscError> {
        match self.attempt(vserver, method, body, parse).await? {
            Attempt::Done(r) => r,
            Attempt::SessionGone(status) => {
                tracing::info!(vserver, method, status, "security center session gone, starting a new one");
                match self.attempt(vserver, method, body, parse).await? {
                    Attempt::Done(r) => r,
                    Attempt::SessionGone(status) => Err(KscError::SessionExpired { method: method.to_owned(), status }),
                }
            }
        }
    }

    /// Calls a read method (`Class.Method`) in the context of a virtual server, retrying
    /// transient failures per the [`RetryPolicy`].
    pub async fn call(&self, vserver: &str, method: &str, body: &Json) -> Result<Reply, KscError> {
        self.call_with(vserver, method, body, &parse_response).await
    }

    /// [`KscClient::call`] with the answer read by `parse` instead of into a [`Reply`] (the
    /// host chunks, read straight into their records). `parse` sees every answer that is not
    /// a lost session; the retries follow the error it returns, as for `call`.
    pub(crate) async fn call_with<T>(
        &self,
        vserver: &str,
        method: &str,
        body: &Json,
        parse: &impl ParseAnswer<T>,
    ) -> Result<T, KscError> {
        let mut attempt = 1;
        loop {
            match self.call_once(vserver, method, body, parse).await {
                Err(e) if e.is_transient() && attempt < self.retry.max_attempts => {
                    let wait = jitter(self.retry.backoff(attempt));
                    tracing::warn!(method, attempt, error = %e, ?wait, "transient security center failure, retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Calls a method that must not be repeated blindly: no transient retries.
    pub async fn call_no_retry(&self, vserver: &str, method: &str, body: &Json) -> Result<Reply, KscError> {
        self.call_once(vserver, method, body, &parse_response).await
    }

    /// `Session.Ping`: checks (and, through the re-login rule, restores) the session of a
    /// virtual server.
    pub async fn ping(&self, vserver: &str) -> Result<(), KscError> {
        self.call(vserver, "Session.Ping", &json!({})).await.map(|_| ())
    }

    /// `Session.EndSession` for every open session. Every session is ended even when one
    /// fails; the first failure is returned.
    pub async fn logout_all(&self) -> Result<(), KscError> {
        let slots: Vec<(String, Slot)> =
            self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain().collect();
        let mut sessions = Vec::with_capacity(slots.len());
        for (vserver, slot) in slots {
            if let Some(id) = slot.lock().await.take() {
                sessions.push((vserver, id));
            }
        }
        let mut first = None;
        for (vserver, id) in sessions {
            const METHOD: &str = "Session.EndSession";
            let Ok(header) = HeaderValue::from_str(&id) else {
                continue;
            };
            let result = match self.send(METHOD, &json!({}), &[(SESSION_HEADER, header)]).await {
                Ok((status, body)) => parse_response(METHOD, status, &body).map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::warn!(vserver, error = %e, "ending security center session failed");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// How many sessions are open (for diagnostics and tests).
    pub async fn open_sessions(&self) -> usize {
        let slots: Vec<Slot> =
            self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned().collect();
        let mut open = 0;
        for slot in slots {
            open += usize::from(slot.lock().await.is_some());
        }
        open
    }
}

/// The HTTP client builder with the certificate checks of `config` (`ksc-api.md` §9 TLS):
///
/// - `System`, no `cert_sha256`, hostnames checked: reqwest's own rustls with the web roots;
/// - `CaFile`/`CaPem`: the file's certificates are pinned as the server's own (whether
///   `CA:TRUE` or not) and also trusted as roots;
/// - `cert_sha256`: that fingerprint is pinned too;
/// - `accept_invalid_hostnames`: host names are not checked (a warning is logged);
/// - `Disabled`: nothing is checked (the caller adds `danger_accept_invalid_certs`).
fn tls_builder(config: &KscConfig) -> Result<reqwest::ClientBuilder, KscError> {
    let pem = match &config.tls {
        TlsVerification::System | TlsVerification::Disabled => None,
        TlsVerification::CaFile(path) => Some(
            std::fs::read(path)
                .map_err(|e| KscError::Config(format!("cannot read CA file {}: {e}", path.display())))?,
        ),
        TlsVerification::CaPem(bytes) => Some(bytes.clone()),
    };
    if matches!(config.tls, TlsVerification::Disabled) {
        return Ok(reqwest::Client::builder().use_rustls_tls());
    }
    let mut options =
        pinned_tls::Options { accept_invalid_hostnames: config.accept_invalid_hostnames, ..Default::default() };
    if let Some(pem) = pem {
        let certs = pinned_tls::certs_from_pem(&pem).map_err(|e| KscError::Config(format!("CA file: {e}")))?;
        options.pins.extend(certs.iter().cloned().map(pinned_tls::Pin::Certificate));
        options.fallback_roots = Some(certs);
    }
    if let Some(fp) = &config.cert_sha256 {
        let fp = pinned_tls::parse_fingerprint(fp).map_err(|e| KscError::Config(format!("cert_sha256: {e}")))?;
        options.pins.push(pinned_tls::Pin::Sha256(fp));
    }
    if config.accept_invalid_hostnames {
        tracing::warn!(
            url = %config.base_url,
            "host name check of the Security Center certificate is OFF (accept_invalid_hostnames)"
        );
        if options.fallback_roots.is_none() && options.pins.is_empty() {
            // Web roots, without the name check.
            options.fallback_roots = Some(Vec::new());
        }
    }
    if options.pins.is_empty() && options.fallback_roots.is_none() {
        return Ok(reqwest::Client::builder().use_rustls_tls());
    }
    pinned_tls::reqwest_builder(&options).map_err(|e| KscError::Config(format!("tls: {e}")))
}

fn jitter(d: Duration) -> Duration {
    if d.is_zero() {
        return d;
    }
    d.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

fn transport_error(method: &str, e: &reqwest::Error) -> KscError {
    if e.is_timeout() {
        return KscError::Timeout { method: method.to_owned() };
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    if message.contains("invalid peer certificate") || message.contains(pinned_tls::UNPINNED) {
        return KscError::Tls { method: method.to_owned(), message };
    }
    KscError::Connect { method: method.to_owned(), message }
}
