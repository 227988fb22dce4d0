//! The HTTP client: request pipeline (rate limit → concurrency cap → token → send → one token
//! refresh on 401 → classify → retry) and the calls built on it.
//!
//! ```text
//!  call ─> budget (N per window) ─> semaphore ─> bearer token ──> HTTP ──> 401? renew once, resend
//!                                     │ POST {auth}/token (cached, renewed before expiry)   │
//!                                     └──────────────── retry policy <── classify(status) <┘
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use ticketing_core::retry::{Failure, Idempotency, RetryAction, parse_retry_after};
use ticketing_core::secret::Secret;
use tokio::time::Instant;
use tracing::{debug, warn};
use url::Url;

use crate::catalog::CatalogCache;
use crate::config::{ClientBuilder, ClientConfig, Credentials, RateLimit};
use crate::error::{Error, ErrorClass, Outcome, api_error, keep_body};
use crate::models::{Action, Client, Named, Priority, Ticket};

/// A HaloPSA REST client. Cheap to clone (clones share the token, the budget, the concurrency
/// cap and the catalog cache).
///
/// ```no_run
/// # async fn run() -> Result<(), halopsa_client::Error> {
/// use halopsa_client::{Credentials, HaloClient};
/// let client = HaloClient::builder(Credentials::new("CLIENT-ID", "CLIENT-SECRET").tenant("example"))
///     .base_url("https://example.halopsa.com")
///     .build()?;
/// let teams = client.teams().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HaloClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    token: tokio::sync::Mutex<Option<Token>>,
    budget: Option<Budget>,
    permits: tokio::sync::Semaphore,
    catalog: CatalogCache,
}

impl std::fmt::Debug for HaloClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the config's secret prints as ***; the token is left out entirely
        f.debug_struct("HaloClient").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// A cached access token.
struct Token {
    value: Secret,
    renew_at: Instant,
}

/// The token endpoint's answer. Not `Debug`: it holds the token.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Secret,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
}

/// The sliding-window request budget ([`RateLimit`]).
struct Budget {
    limit: RateLimit,
    starts: Mutex<VecDeque<Instant>>,
}

impl Budget {
    /// Waits until one more request fits the window, then counts it.
    async fn acquire(&self) {
        loop {
            let wait = {
                let mut starts = self.starts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                while starts.front().is_some_and(|t| now.duration_since(*t) >= self.limit.window) {
                    starts.pop_front();
                }
                if starts.len() < self.limit.requests as usize {
                    starts.push_back(now);
                    return;
                }
                starts.front().map_or(Duration::ZERO, |t| self.limit.window.saturating_sub(now.duration_since(*t)))
            };
            debug!(wait_ms = wait.as_millis() as u64, "halopsa request budget spent; waiting");
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    fn used(&self) -> usize {
        let starts = self.starts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        starts.iter().filter(|t| now.duration_since(**t) < self.limit.window).count()
    }
}

/// The result of a ticket create.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedTicket {
    /// The ticket as Halo answered (or as found by its key).
    pub ticket: Ticket,
    /// Whether an ambiguous failure led to finding a ticket that had in fact been created.
    pub found_existing: bool,
}

/// A success answer.
struct Answer {
    status: u16,
    body: String,
}

fn decode<T: DeserializeOwned>(status: u16, call: &str, body: &str) -> Result<T, Error> {
    serde_json::from_str(body).map_err(|e| Error::Decode {
        status,
        call: call.to_owned(),
        message: e.to_string(),
        body: keep_body(body),
    })
}

/// The rows of a list answer: a bare array, or the array under `key` of an object
/// (`{"record_count":N,"tickets":[…]}`), or (for `key` `None`) the object's first array.
fn rows_of(value: Value, key: Option<&str>) -> Option<(Vec<Value>, Option<u64>)> {
    match value {
        Value::Array(a) => Some((a, None)),
        Value::Object(mut o) => {
            let count = o.get("record_count").and_then(Value::as_u64);
            let name = match key {
                Some(k) => o.keys().find(|x| x.eq_ignore_ascii_case(k)).cloned(),
                None => o.iter().find(|(_, v)| v.is_array()).map(|(k, _)| k.clone()),
            }?;
            match o.remove(&name) {
                Some(Value::Array(a)) => Some((a, count)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn retry_after_of(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// How one failure counts for the retry policy.
fn failure(err: &Error) -> Failure {
    match err.class() {
        // a throttled request was refused, not processed: safe to send again, even a create
        ErrorClass::RateLimited => Failure::Throttled { retry_after: err.retry_after() },
        ErrorClass::Transient | ErrorClass::Server => {
            Failure::Transient { retry_after: err.retry_after(), outcome: err.outcome() }
        }
        _ => Failure::Final,
    }
}

/// The lifetime in `expires_in` (seconds, a number or a numeric string), 3600 when absent.
fn lifetime(v: Option<&Value>) -> Duration {
    let secs = match v {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Duration::from_secs(secs.unwrap_or(3600).max(1))
}

impl HaloClient {
    /// Starts a builder.
    pub fn builder(credentials: Credentials) -> ClientBuilder {
        ClientBuilder::new(credentials)
    }

    pub(crate) fn from_config(config: ClientConfig) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("msp-ticketing-halopsa-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::InvalidRequest(format!("http client: {e}")))?;
        let permits = tokio::sync::Semaphore::new(config.max_concurrency.max(1));
        let catalog = CatalogCache::new(config.catalog_ttl);
        let budget = config.rate_limit.map(|limit| Budget { limit, starts: Mutex::new(VecDeque::new()) });
        Ok(Self {
            inner: Arc::new(Inner { http, config, token: tokio::sync::Mutex::new(None), budget, permits, catalog }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    pub(crate) fn catalog_cache(&self) -> &CatalogCache {
        &self.inner.catalog
    }

    /// Requests counted in the current budget window (`None` without a budget).
    pub fn budget_used(&self) -> Option<usize> {
        self.inner.budget.as_ref().map(Budget::used)
    }

    // ---------------------------------------------------------------- token

    /// `POST {auth}/token` with `grant_type=client_credentials`, `client_id`, `client_secret` and
    /// `scope` (form-encoded), retried on transient failures.
    async fn fetch_token(&self) -> Result<Token, Error> {
        let cfg = &self.inner.config;
        let c = &cfg.credentials;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &c.client_id)
            .append_pair("client_secret", c.client_secret.expose())
            .append_pair("scope", &c.scope)
            .finish();
        let call = format!("POST {}", cfg.token_url.path());
        let mut attempt = 1;
        loop {
            let result = async {
                if let Some(b) = &self.inner.budget {
                    b.acquire().await;
                }
                let resp = self
                    .inner
                    .http
                    .post(cfg.token_url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(ACCEPT, "application/json")
                    .body(form.clone())
                    .send()
                    .await
                    .map_err(|e| Error::from_reqwest(&e))?;
                let status = resp.status().as_u16();
                let retry_after = retry_after_of(resp.headers());
                let body = resp.text().await.map_err(|e| Error::from_reqwest(&e))?;
                if !(200..300).contains(&status) {
                    return Err(api_error(status, &call, &body, retry_after));
                }
                // the body holds the token: never kept in an error
                let answer: TokenAnswer = serde_json::from_str(&body).map_err(|e| Error::Decode {
                    status,
                    call: call.clone(),
                    message: format!("token answer: {}", e.to_string().split(" at line").next().unwrap_or("invalid")),
                    body: String::new(),
                })?;
                if answer.access_token.is_empty() {
                    return Err(Error::Decode {
                        status,
                        call: call.clone(),
                        message: "token answer: access_token is empty".into(),
                        body: String::new(),
                    });
                }
                if let Some(t) = answer.token_type.as_deref().filter(|t| !t.eq_ignore_ascii_case("bearer")) {
                    warn!(token_type = t, "halopsa token is not a bearer token; sending it as one");
                }
                let life = lifetime(answer.expires_in.as_ref());
                let margin = cfg.token_refresh_margin.min(life / 2);
                Ok(Token { value: answer.access_token, renew_at: Instant::now() + life - margin })
            }
            .await;
            match result {
                Ok(t) => return Ok(t),
                Err(e) => match cfg.retry.decide(failure(&e), attempt, Idempotency::Idempotent, rand::random()) {
                    RetryAction::Retry(d) | RetryAction::VerifyThenRetry(d) => tokio::time::sleep(d).await,
                    RetryAction::NoRetry => return Err(e),
                },
            }
            attempt += 1;
        }
    }

    /// The current token, fetched (one caller at a time) when there is none or it is due for
    /// renewal. `stale` is the token a 401 was answered to: it is dropped, once.
    async fn token(&self, stale: Option<&Secret>) -> Result<Secret, Error> {
        let mut slot = self.inner.token.lock().await;
        if let (Some(s), Some(t)) = (stale, slot.as_ref())
            && t.value == *s
        {
            *slot = None;
        }
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.renew_at
        {
            return Ok(t.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        debug!("halopsa access token obtained");
        Ok(value)
    }

    // ---------------------------------------------------------------- pipeline

    fn url(&self, path: &str, params: &[(&str, String)]) -> Result<Url, Error> {
        let mut url = self
            .inner
            .config
            .api_root
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::InvalidRequest(format!("path {path:?}: {e}")))?;
        if !params.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// One attempt: budget, semaphore, token, send; a 401 renews the token and sends once more.
    async fn dispatch(&self, method: &Method, url: &Url, body: Option<&[u8]>) -> Result<Answer, Error> {
        let inner = &*self.inner;
        let call = format!("{method} {}", url.path());
        let _permit = inner.permits.acquire().await.map_err(|_| Error::InvalidRequest("client closed".into()))?;
        let mut stale: Option<Secret> = None;
        loop {
            let token = self.token(stale.as_ref()).await?;
            if let Some(b) = &inner.budget {
                b.acquire().await;
            }
            let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| Error::InvalidRequest("the access token does not fit an http header".into()))?;
            bearer.set_sensitive(true);
            let mut req = inner
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, bearer)
                .header(ACCEPT, "application/json");
            if let Some(b) = body {
                req = req.header(CONTENT_TYPE, "application/json").body(b.to_vec());
            }
            let resp = req.send().await.map_err(|e| Error::from_reqwest(&e))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let text = resp.text().await.map_err(|e| Error::from_reqwest(&e))?;
            if status == 401 && stale.is_none() {
                debug!(%call, "halopsa answered 401; renewing the token once");
                stale = Some(token);
                continue;
            }
            if (200..300).contains(&status) {
                return Ok(Answer { status, body: text });
            }
            let err = api_error(status, &call, &text, retry_after_of(&headers));
            debug!(error = %err, "halopsa request failed");
            return Err(err);
        }
    }

    /// Sends with retries according to the policy (a `Verifiable` request is treated like a
    /// `NonIdempotent` one here; verified creates go through [`Self::create_ticket`]).
    async fn execute(
        &self,
        method: Method,
        url: &Url,
        body: Option<&[u8]>,
        idempotency: Idempotency,
    ) -> Result<Answer, Error> {
        let mut attempt = 1;
        loop {
            match self.dispatch(&method, url, body).await {
                Ok(ok) => return Ok(ok),
                Err(e) => match self.inner.config.retry.decide(failure(&e), attempt, idempotency, rand::random()) {
                    RetryAction::Retry(d) => {
                        debug!(attempt, delay_ms = d.as_millis() as u64, error = %e, "retrying halopsa request");
                        tokio::time::sleep(d).await;
                    }
                    RetryAction::VerifyThenRetry(_) | RetryAction::NoRetry => return Err(e),
                },
            }
            attempt += 1;
        }
    }

    async fn get_value(&self, path: &str, params: &[(&str, String)]) -> Result<(u16, String, Value), Error> {
        let url = self.url(path, params)?;
        let a = self.execute(Method::GET, &url, None, Idempotency::Idempotent).await?;
        let call = format!("GET {}", url.path());
        let v = decode::<Value>(a.status, &call, &a.body)?;
        Ok((a.status, call, v))
    }

    /// Every row of a picklist (`GET {path}`): a bare array or an object holding one.
    async fn picklist<T: DeserializeOwned>(&self, path: &str, params: &[(&str, String)]) -> Result<Vec<T>, Error> {
        let (status, call, v) = self.get_value(path, params).await?;
        let (rows, _) = rows_of(v, None).ok_or_else(|| Error::Decode {
            status,
            call: call.clone(),
            message: "expected a list".into(),
            body: String::new(),
        })?;
        rows.into_iter().map(|r| serde_json::from_value(r).map_err(|e| self.row_error(status, &call, &e))).collect()
    }

    fn row_error(&self, status: u16, call: &str, e: &serde_json::Error) -> Error {
        Error::Decode { status, call: call.to_owned(), message: format!("a row: {e}"), body: String::new() }
    }

    /// Every row of a paged list: `pageinate=true&page_size=N&page_no=P` plus `params`, answers
    /// `{"record_count":N,"<key>":[…]}`; stops at a short page or once `record_count` rows came.
    pub async fn list_paged<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<T>, Error> {
        let cfg = &self.inner.config;
        let mut out: Vec<T> = Vec::new();
        for page in 1..=cfg.max_pages {
            let mut p: Vec<(&str, String)> = vec![
                ("pageinate", "true".into()),
                ("page_size", cfg.page_size.to_string()),
                ("page_no", page.to_string()),
            ];
            p.extend(params.iter().cloned());
            let (status, call, v) = self.get_value(path, &p).await?;
            let (rows, count) = rows_of(v, Some(key)).ok_or_else(|| Error::Decode {
                status,
                call: call.clone(),
                message: format!("expected {{\"record_count\", \"{key}\": [...]}}"),
                body: String::new(),
            })?;
            let n = rows.len();
            for r in rows {
                out.push(serde_json::from_value(r).map_err(|e| self.row_error(status, &call, &e))?);
            }
            let done = n < cfg.page_size as usize || count.is_some_and(|c| out.len() as u64 >= c) || n == 0;
            if done {
                return Ok(out);
            }
        }
        Err(Error::InvalidRequest(format!("list of {path} did not finish within {} pages", cfg.max_pages)))
    }

    // ---------------------------------------------------------------- tickets

    /// `GET /api/Tickets/{id}`; `None` on 404.
    pub async fn get_ticket(&self, id: i64) -> Result<Option<Ticket>, Error> {
        let url = self.url(&format!("Tickets/{id}"), &[("includedetails", "true".into())])?;
        match self.execute(Method::GET, &url, None, Idempotency::Idempotent).await {
            Ok(a) => decode(a.status, &format!("GET {}", url.path()), &a.body).map(Some),
            Err(e) if e.class() == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/Tickets?search=…&includedetails=true` (one page of `count` rows at most).
    pub async fn search_tickets(&self, search: &str, count: u32) -> Result<Vec<Ticket>, Error> {
        let params = [("search", search.to_owned()), ("includedetails", "true".into()), ("count", count.to_string())];
        let (status, call, v) = self.get_value("Tickets", &params).await?;
        let (rows, _) = rows_of(v, Some("tickets")).ok_or_else(|| Error::Decode {
            status,
            call: call.clone(),
            message: "expected {\"record_count\", \"tickets\": [...]}".into(),
            body: String::new(),
        })?;
        rows.into_iter().map(|r| serde_json::from_value(r).map_err(|e| self.row_error(status, &call, &e))).collect()
    }

    /// The ticket carrying idempotency key `key`: searched with `search=key`, then checked
    /// exactly (the reference line of `details`, or the custom field `custom_field` when set);
    /// rows the search answered without details are read one by one.
    pub async fn find_ticket_by_key(&self, key: &str, custom_field: Option<&str>) -> Result<Option<Ticket>, Error> {
        let rows = self.search_tickets(key, 50).await?;
        let carries = |t: &Ticket| {
            custom_field.and_then(|f| t.custom_field(f)).as_deref() == Some(key)
                || t.details.as_deref().and_then(crate::text::ref_of).as_deref() == Some(key)
        };
        let mut hits: Vec<Ticket> = Vec::new();
        for t in rows {
            if carries(&t) {
                hits.push(t);
            } else if t.details.is_none()
                && let Some(id) = t.id
                && let Some(full) = self.get_ticket(id).await?
                && carries(&full)
            {
                hits.push(full);
            }
        }
        Ok(hits.into_iter().filter(|t| t.id.is_some()).min_by_key(|t| t.id))
    }

    /// `POST /api/Tickets` with a one-element array → the ticket answered (one object, or a
    /// list whose first element is taken).
    async fn post_ticket(&self, ticket: &Ticket, idempotency: Idempotency) -> Result<Ticket, Error> {
        let url = self.url("Tickets", &[])?;
        let bytes = serde_json::to_vec(&[ticket]).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let a = self.execute(Method::POST, &url, Some(&bytes), idempotency).await?;
        decode_one(a.status, &format!("POST {}", url.path()), &a.body)
    }

    /// Creates a ticket (`POST /api/Tickets`, no `id`).
    ///
    /// The create is *verifiable* by `key`: after an ambiguous failure (timeout, connection
    /// lost, 5xx, unreadable answer) the ticket is looked up ([`Self::find_ticket_by_key`]) and
    /// returned if it exists; only when it does not is the create sent again. Throttled and
    /// not-sent failures are retried as they are.
    pub async fn create_ticket(
        &self,
        ticket: &Ticket,
        key: &str,
        custom_field: Option<&str>,
    ) -> Result<CreatedTicket, Error> {
        if ticket.id.is_some() {
            return Err(Error::InvalidRequest("a ticket to create must not carry an id".into()));
        }
        let url = self.url("Tickets", &[])?;
        let call = format!("POST {}", url.path());
        let bytes = serde_json::to_vec(&[ticket]).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let mut attempt = 1;
        loop {
            let err = match self.dispatch(&Method::POST, &url, Some(&bytes)).await {
                Ok(a) => match decode_one::<Ticket>(a.status, &call, &a.body) {
                    Ok(t) if t.id.is_some() => return Ok(CreatedTicket { ticket: t, found_existing: false }),
                    Ok(_) => Error::Decode {
                        status: a.status,
                        call: call.clone(),
                        message: "created ticket without id".into(),
                        body: keep_body(&a.body),
                    },
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if err.outcome() == Outcome::Unknown {
                warn!(idempotency_key = %key, attempt, error = %err, "ambiguous halopsa ticket create; looking it up");
                match self.find_ticket_by_key(key, custom_field).await {
                    Ok(Some(found)) => return Ok(CreatedTicket { ticket: found, found_existing: true }),
                    Ok(None) => {}
                    Err(lookup) => {
                        warn!(idempotency_key = %key, error = %lookup, "lookup after ambiguous create failed");
                        return Err(err);
                    }
                }
            }
            match self.inner.config.retry.decide(failure(&err), attempt, Idempotency::Verifiable, rand::random()) {
                RetryAction::Retry(d) | RetryAction::VerifyThenRetry(d) => tokio::time::sleep(d).await,
                RetryAction::NoRetry => return Err(err),
            }
            attempt += 1;
        }
    }

    /// Updates a ticket (`POST /api/Tickets` with `id` and the fields to change) → the ticket
    /// as answered. It sets absolute values, so it is retried like a read.
    pub async fn update_ticket(&self, update: &Ticket) -> Result<Ticket, Error> {
        if update.id.is_none() {
            return Err(Error::InvalidRequest("an update needs the ticket's id".into()));
        }
        self.post_ticket(update, Idempotency::Idempotent).await
    }

    // ---------------------------------------------------------------- actions

    /// `GET /api/Actions?ticket_id=N` → `{"actions":[…]}`.
    pub async fn actions(&self, ticket_id: i64) -> Result<Vec<Action>, Error> {
        let (status, call, v) = self.get_value("Actions", &[("ticket_id", ticket_id.to_string())]).await?;
        let (rows, _) = rows_of(v, Some("actions")).ok_or_else(|| Error::Decode {
            status,
            call: call.clone(),
            message: "expected {\"record_count\", \"actions\": [...]}".into(),
            body: String::new(),
        })?;
        rows.into_iter().map(|r| serde_json::from_value(r).map_err(|e| self.row_error(status, &call, &e))).collect()
    }

    /// `POST /api/Actions` with a one-element array. Never retried after an ambiguous failure
    /// (the sink looks the note up by its marker instead).
    pub async fn add_action(&self, action: &Action) -> Result<Action, Error> {
        let url = self.url("Actions", &[])?;
        let bytes = serde_json::to_vec(&[action]).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let a = self.execute(Method::POST, &url, Some(&bytes), Idempotency::NonIdempotent).await?;
        decode_one(a.status, &format!("POST {}", url.path()), &a.body)
    }

    // ---------------------------------------------------------------- customers and picklists

    /// `GET /api/Client?includeinactive=true`, every page.
    pub async fn clients(&self) -> Result<Vec<Client>, Error> {
        self.list_paged("Client", "clients", &[("includeinactive", "true".into())]).await
    }

    /// `GET /api/Team?includeinactive=true`.
    pub async fn teams(&self) -> Result<Vec<Named>, Error> {
        self.picklist("Team", &[("includeinactive", "true".into())]).await
    }

    /// `GET /api/Status`.
    pub async fn statuses(&self) -> Result<Vec<Named>, Error> {
        self.picklist("Status", &[]).await
    }

    /// `GET /api/TicketType?includeinactive=true`.
    pub async fn ticket_types(&self) -> Result<Vec<Named>, Error> {
        self.picklist("TicketType", &[("includeinactive", "true".into())]).await
    }

    /// `GET /api/Priority`.
    pub async fn priorities(&self) -> Result<Vec<Priority>, Error> {
        self.picklist("Priority", &[]).await
    }

    /// The catalog, cached for [`ClientConfig::catalog_ttl`].
    pub async fn halo_catalog(&self) -> Result<Arc<crate::catalog::HaloCatalog>, Error> {
        self.catalog_cache().get(self, false).await
    }

    /// Re-reads the catalog now.
    pub async fn refresh_halo_catalog(&self) -> Result<Arc<crate::catalog::HaloCatalog>, Error> {
        self.catalog_cache().get(self, true).await
    }
}

/// One record of an answer to a one-element array: the object, or the first of a list.
fn decode_one<T: DeserializeOwned>(status: u16, call: &str, body: &str) -> Result<T, Error> {
    match decode::<Value>(status, call, body)? {
        Value::Array(mut a) if !a.is_empty() => {
            let first = a.swap_remove(0);
            serde_json::from_value(first).map_err(|e| Error::Decode {
                status,
                call: call.to_owned(),
                message: e.to_string(),
                body: keep_body(body),
            })
        }
        v @ Value::Object(_) => serde_json::from_value(v).map_err(|e| Error::Decode {
            status,
            call: call.to_owned(),
            message: e.to_string(),
            body: keep_body(body),
        }),
        _ => Err(Error::Decode {
            status,
            call: call.to_owned(),
            message: "expected the record (an object or a one-element list)".into(),
            body: keep_body(body),
        }),
    }
}
