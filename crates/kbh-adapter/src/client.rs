//! The HTTP client: authentication, paging, retries, and one typed method per Business Hub call.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use ticketing_core::model::{DeviceStatus, Event, IssueState};
use ticketing_core::ports::MalformedRecord;
use ticketing_core::secret::Secret;
use tokio::sync::Mutex;

use crate::api::{self, Resource};
use crate::config::{KbhAuth, KbhConfig, RetryAction, RetryPolicy};
use crate::convert;
use crate::error::{KbhError, from_reqwest};
use crate::tenant::{Company, CompanyId};

/// A login token is renewed this long before the server says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// How much of a non-JSON error body is kept in an error message.
const RAW_BODY_EXCERPT: usize = 200;

/// A Business Hub client for one MSP account.
///
/// Cheap to clone (the clones share one connection pool and one login token), so one client
/// serves the Endpoint Security Cloud and the Office 365 sources ([`crate::KbhEventSource`], [`crate::KbhStatusSource`]).
///
/// Every call is per company, so one company's failure never affects another's. Reads are
/// repeated on throttling and transient failures according to the [`RetryPolicy`]; with e-mail
/// and password login, a 401 makes the client log in again once and repeat the call.
#[derive(Clone)]
pub struct KbhClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    auth: KbhAuth,
    retry: RetryPolicy,
    page_size: u32,
    /// The current login token (login auth only). The lock also makes concurrent callers wait
    /// for one login instead of each logging in.
    token: Mutex<Option<LoginToken>>,
}

struct LoginToken {
    token: Secret,
    renew_at: Option<Instant>,
}

impl fmt::Debug for KbhClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KbhClient")
            .field("base", &self.inner.base.as_str())
            .field("auth", &self.inner.auth)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// One page of events of one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPage {
    /// Events in `seq` order, converted to the core model.
    pub events: Vec<Event>,
    /// Records that could not be converted, with their ids; skipped.
    pub malformed: Vec<MalformedRecord>,
    /// The highest `seq` in the page, skipped and left-out records included (`None` for an
    /// empty page or when no `seq` could be read).
    pub last_seq: Option<u64>,
    /// Events left out because they occurred before the window start (a server that ignored
    /// `occurred_after`); the cursor still moves past them.
    pub before_window: u64,
    /// Whether the server has more events after this page (`next_cursor` was set).
    pub more: bool,
}

/// An Endpoint Security Cloud device with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Status and active descriptions, in the core model.
    pub status: DeviceStatus,
    /// Operating system, as reported.
    pub os: Option<String>,
    /// When the device last reported.
    pub last_seen: Option<DateTime<Utc>>,
    /// Descriptions whose code is not in the catalogue (kept in `status.active` by their text).
    pub unknown_descriptions: u64,
}

/// Every device of one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList {
    /// Devices in server order.
    pub devices: Vec<DeviceRecord>,
    /// Records that could not be read (the list is then not complete).
    pub malformed: Vec<MalformedRecord>,
    /// Sum of [`DeviceRecord::unknown_descriptions`].
    pub unknown_descriptions: u64,
}

/// The Office 365 issues of one company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueList {
    /// One state per resolvable type that has an issue record (active wins over resolved, then
    /// the latest).
    pub issues: Vec<IssueState>,
    /// Issue types that were ignored: known but not resolvable, or unknown to this crate.
    pub ignored: Vec<String>,
}

impl KbhClient {
    /// Builds the client (HTTP pool, TLS roots with the optional extra CA, timeouts). Sends
    /// nothing.
    pub fn new(config: KbhConfig) -> Result<Self, KbhError> {
        if config.connect_timeout.is_zero() || config.request_timeout.is_zero() {
            return Err(KbhError::Config(format!(
                "connect timeout {:?} and request timeout {:?} must both be above zero",
                config.connect_timeout, config.request_timeout
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, reqwest::header::HeaderValue::from_static("application/json"));
        let builder = tls_builder(&config)?
            .user_agent(config.user_agent.clone())
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .https_only(config.base_url.scheme() == "https");
        let http = builder.build().map_err(|e| KbhError::Config(format!("http client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: config.base_url,
                auth: config.auth,
                retry: config.retry,
                page_size: config.page_size.clamp(1, api::MAX_LIMIT),
                token: Mutex::new(None),
            }),
        })
    }

    /// The configured base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// Checks the credentials: logs in (login auth) or reads the first page of companies
    /// (token auth). Useful for a `check` command.
    pub async fn check(&self) -> Result<(), KbhError> {
        match &self.inner.auth {
            KbhAuth::Login { .. } => {
                *self.inner.token.lock().await = None;
                self.bearer().await.map(drop)
            }
            KbhAuth::Token(_) => {
                let url = api::resource_url(&self.inner.base, Resource::Companies, "");
                self.get_json::<api::PageDto>(&url, &[("limit", "1".to_owned())]).await.map(drop)
            }
        }
    }

    /// Every company (all pages of `GET /api/v1/companies`).
    pub async fn companies(&self) -> Result<Vec<Company>, KbhError> {
        let url = api::resource_url(&self.inner.base, Resource::Companies, "");
        let items = self.get_all(&url).await?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let id = convert::record_id(&v, i);
                serde_json::from_value::<api::CompanyDto>(v).map(Company::from_dto).map_err(|e| KbhError::Malformed {
                    what: "company",
                    id,
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Every Endpoint Security Cloud device of a company with its status (all pages of
    /// `GET /api/v1/companies/{id}/devices`). A record that cannot be read lands in
    /// [`DeviceList::malformed`].
    pub async fn devices(&self, company: &CompanyId) -> Result<DeviceList, KbhError> {
        let url = api::resource_url(&self.inner.base, Resource::Devices, company.as_str());
        let items = self.get_all(&url).await?;
        let mut list = DeviceList { devices: Vec::new(), malformed: Vec::new(), unknown_descriptions: 0 };
        for (i, v) in items.into_iter().enumerate() {
            match convert::device(v, i) {
                Ok(d) => {
                    list.unknown_descriptions += d.unknown_descriptions;
                    list.devices.push(d);
                }
                Err(m) => list.malformed.push(m),
            }
        }
        Ok(list)
    }

    /// One page of Endpoint Security Cloud events that arrived after `after_seq`
    /// (`GET /api/v1/companies/{id}/events?after_seq=&limit=[&occurred_after=]`), `limit`
    /// clamped to 1..=500.
    ///
    /// `seq` is the service's arrival order, so an event a device delivers late (with its
    /// original, old `occurred_at`) still comes after `after_seq`. With `occurred_after`, events
    /// that occurred before it are left out (asked of the server, and dropped here too in case
    /// the server ignores the parameter).
    pub async fn events(
        &self,
        company: &CompanyId,
        after_seq: u64,
        limit: u32,
        occurred_after: Option<DateTime<Utc>>,
    ) -> Result<EventPage, KbhError> {
        self.event_page(company, Resource::Events, after_seq, limit, occurred_after).await
    }

    /// One page of Security for Office 365 events that arrived after `after_seq`
    /// (`GET /api/v1/companies/{id}/o365/events?after_seq=&limit=[&occurred_after=]`); see
    /// [`KbhClient::events`].
    pub async fn o365_events(
        &self,
        company: &CompanyId,
        after_seq: u64,
        limit: u32,
        occurred_after: Option<DateTime<Utc>>,
    ) -> Result<EventPage, KbhError> {
        self.event_page(company, Resource::O365Events, after_seq, limit, occurred_after).await
    }

    /// The Office 365 issues of a company (all pages of `GET /api/v1/companies/{id}/o365/issues`).
    /// The list must be complete, so an unreadable record is an error.
    pub async fn o365_issues(&self, company: &CompanyId) -> Result<IssueList, KbhError> {
        let url = api::resource_url(&self.inner.base, Resource::O365Issues, company.as_str());
        let items = self.get_all(&url).await?;
        convert::issues(items)
    }

    async fn event_page(
        &self,
        company: &CompanyId,
        resource: Resource,
        after_seq: u64,
        limit: u32,
        occurred_after: Option<DateTime<Utc>>,
    ) -> Result<EventPage, KbhError> {
        let url = api::resource_url(&self.inner.base, resource, company.as_str());
        let mut query =
            vec![("after_seq", after_seq.to_string()), ("limit", limit.clamp(1, api::MAX_LIMIT).to_string())];
        if let Some(t) = occurred_after {
            query.push(("occurred_after", api::fmt_time(t)));
        }
        let page: api::PageDto = self.get_json(&url, &query).await?;
        let tenant = company.tenant_id();
        Ok(convert::event_page(&tenant, resource, after_seq, occurred_after, page))
    }

    /// Follows `next_cursor` to the end; any failed page fails the whole list.
    async fn get_all(&self, url: &Url) -> Result<Vec<serde_json::Value>, KbhError> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", self.inner.page_size.to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let page: api::PageDto = self.get_json(url, &query).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if !next.is_empty() => {
                    if !seen.insert(next.clone()) {
                        return Err(KbhError::Decode {
                            status: 200,
                            message: format!("next_cursor {next:?} repeats (paging loop)"),
                        });
                    }
                    cursor = Some(next);
                }
                _ => return Ok(items),
            }
        }
    }

    /// A GET with bearer auth, re-login on 401 (login auth, once) and retries.
    async fn get_json<T: DeserializeOwned>(&self, url: &Url, query: &[(&str, String)]) -> Result<T, KbhError> {
        let mut attempt = 0;
        let mut relogged = false;
        loop {
            let token = self.bearer().await?;
            let request = self
                .inner
                .http
                .get(url.clone())
                .query(query)
                .header(AUTHORIZATION, format!("Bearer {}", token.expose()));
            match self.send(request).await {
                Ok(body) => return decode(&body),
                Err(err) if err.status() == Some(401) && self.is_login() && !relogged => {
                    tracing::debug!(url = %url, "business hub token rejected, logging in again");
                    self.forget_token(&token).await;
                    relogged = true;
                }
                Err(err) => {
                    self.pause(&err, attempt, url).await?;
                    attempt += 1;
                }
            }
        }
    }

    /// Waits as the policy says, or hands the error back.
    async fn pause(&self, err: &KbhError, attempt: u32, url: &Url) -> Result<(), KbhError> {
        match self.inner.retry.decide(err, attempt, rand::random::<f64>()) {
            RetryAction::Wait(d) => {
                tracing::debug!(url = %url, attempt, wait_ms = d.as_millis() as u64, error = %err, "retrying business hub call");
                tokio::time::sleep(d).await;
                Ok(())
            }
            RetryAction::GiveUp => Err(err.clone()),
        }
    }

    fn is_login(&self) -> bool {
        matches!(self.inner.auth, KbhAuth::Login { .. })
    }

    /// Sends one request; a non-2xx answer becomes [`KbhError::Api`].
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), KbhError> {
        let response = request.send().await.map_err(|e| from_reqwest(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(|e| from_reqwest(&e))?;
        if status.is_success() {
            Ok((status.as_u16(), body.to_vec()))
        } else {
            Err(api_error(status, &body, retry_after))
        }
    }

    /// The bearer token to use now.
    async fn bearer(&self) -> Result<Secret, KbhError> {
        let (email, password) = match &self.inner.auth {
            KbhAuth::Token(t) => return Ok(t.clone()),
            KbhAuth::Login { email, password } => (email, password),
        };
        let mut slot = self.inner.token.lock().await;
        if let Some(t) = slot.as_ref() {
            if t.renew_at.is_none_or(|at| Instant::now() < at) {
                return Ok(t.token.clone());
            }
        }
        let fresh = self.login(email, password).await?;
        let token = fresh.token.clone();
        *slot = Some(fresh);
        Ok(token)
    }

    /// Drops the cached login token if it is still the one that was rejected.
    async fn forget_token(&self, rejected: &Secret) {
        let mut slot = self.inner.token.lock().await;
        if slot.as_ref().is_some_and(|t| &t.token == rejected) {
            *slot = None;
        }
    }

    /// `POST /api/v1/auth/token`, repeated on throttling and transient failures.
    async fn login(&self, email: &str, password: &Secret) -> Result<LoginToken, KbhError> {
        let url = api::endpoint(&self.inner.base, &api::AUTH_TOKEN_PATH);
        let mut attempt = 0;
        loop {
            let body = api::LoginRequestDto { email, password: password.expose() };
            let request = self.inner.http.post(url.clone()).json(&body);
            match self.send(request).await {
                Ok(answer) => {
                    let dto: api::LoginResponseDto = decode(&answer)?;
                    if dto.access_token.is_empty() {
                        return Err(KbhError::Decode { status: answer.0, message: "empty access_token".into() });
                    }
                    if let Some(kind) = dto.token_type.as_deref() {
                        if !kind.eq_ignore_ascii_case("bearer") {
                            return Err(KbhError::Decode {
                                status: answer.0,
                                message: format!("token_type {kind:?} is not Bearer"),
                            });
                        }
                    }
                    // renew a little early, but never sooner than half the lifetime
                    let renew_at = dto.expires_in.map(|s| {
                        let life = Duration::from_secs(s);
                        Instant::now() + life.saturating_sub(EXPIRY_MARGIN.min(life / 2))
                    });
                    tracing::debug!(expires_in = dto.expires_in, "logged in to business hub");
                    return Ok(LoginToken { token: Secret::new(dto.access_token), renew_at });
                }
                Err(err) => {
                    self.pause(&err, attempt, &url).await?;
                    attempt += 1;
                }
            }
        }
    }
}

/// The HTTP client builder with the configured TLS verification.
///
/// Without TLS options: reqwest's own verification against the built-in web roots. With any
/// option: [`pinned_tls`], so that the pinned certificate is accepted as the server's own even
/// when it is a `CA:TRUE` self-signed certificate (which plain WebPKI refuses as
/// `CaUsedAsEndEntity`):
/// - `ca_pem` alone: its certificates are pins, and also extra roots next to the web roots;
/// - `cert_sha256` (with or without `ca_pem`): pins only, nothing else is accepted;
/// - `accept_invalid_hostnames`: no host-name check, for pins and roots alike.
fn tls_builder(config: &KbhConfig) -> Result<reqwest::ClientBuilder, KbhError> {
    if config.ca_pem.is_none() && config.cert_sha256.is_none() && !config.accept_invalid_hostnames {
        return Ok(reqwest::Client::builder());
    }
    let mut pins = Vec::new();
    let mut extra_roots = Vec::new();
    if let Some(pem) = &config.ca_pem {
        let certs = pinned_tls::certs_from_pem(pem).map_err(|e| KbhError::Config(format!("ca certificate: {e}")))?;
        pins.extend(certs.iter().cloned().map(pinned_tls::Pin::Certificate));
        extra_roots = certs;
    }
    let fallback_roots = match &config.cert_sha256 {
        Some(text) => {
            let fp = pinned_tls::parse_fingerprint(text).map_err(|e| KbhError::Config(format!("cert_sha256: {e}")))?;
            pins.push(pinned_tls::Pin::Sha256(fp));
            None
        }
        None => Some(extra_roots),
    };
    if config.accept_invalid_hostnames {
        tracing::warn!(url = %config.base_url, "business hub: host names of the server certificate are not checked (accept_invalid_hostnames)");
    }
    let options =
        pinned_tls::Options { pins, accept_invalid_hostnames: config.accept_invalid_hostnames, fallback_roots };
    pinned_tls::reqwest_builder(&options).map_err(|e| KbhError::Config(format!("tls: {e}")))
}

/// Parses a success body. Serde's messages quote no input beyond a token's worth, and our
/// bodies carry no credentials except the login answer, whose errors name only fields.
fn decode<T: DeserializeOwned>((status, body): &(u16, Vec<u8>)) -> Result<T, KbhError> {
    serde_json::from_slice(body).map_err(|e| KbhError::Decode { status: *status, message: e.to_string() })
}

/// Builds [`KbhError::Api`] from an error answer, keeping the server's own code and message.
fn api_error(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> KbhError {
    match serde_json::from_slice::<api::ErrorBodyDto>(body) {
        Ok(e) => KbhError::Api { status: status.as_u16(), code: e.error.code, message: e.error.message, retry_after },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let mut excerpt: String = text.chars().take(RAW_BODY_EXCERPT).collect();
            if excerpt.is_empty() {
                excerpt = status.canonical_reason().unwrap_or("no body").to_owned();
            }
            KbhError::Api { status: status.as_u16(), code: "unknown".into(), message: excerpt, retry_after }
        }
    }
}
