//! The HTTP client: request pipeline (root → same-origin check → concurrency cap → auth headers
//! → send → classify → retry) and the calls built on it.
//!
//! ```text
//!  call ─> root() ──> same-origin check ──> semaphore ──> Basic auth + clientId + Accept ──> HTTP
//!            │ companyinfo discovery (once)                                           │
//!            └────────────────────────────── retry policy <── classify(status, body) <┘
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LINK, RETRY_AFTER};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{debug, warn};
use url::Url;

use crate::catalog::CatalogCache;
use crate::conditions::Condition;
use crate::config::{ApiRoot, ClientBuilder, ClientConfig, Credentials, PagingMode, api_host_for};
use crate::error::{Error, ErrorClass, Outcome, api_error, keep_body};
use crate::models::{
    Board, BoardItem, BoardStatus, BoardSubType, BoardType, Company, CompanyInfo, CompanyStatus, Identified, PatchOp,
    Priority, Reference, ServiceNote, Source, Ticket,
};
use crate::retry::{Classify as _, Idempotency, RetryAction, parse_retry_after};

/// ConnectWise's largest `pageSize`.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A ConnectWise PSA REST client. Cheap to clone (clones share the root, the concurrency cap and
/// the catalog cache).
///
/// ```no_run
/// # async fn run() -> Result<(), connectwise_client::Error> {
/// use connectwise_client::{ConnectWiseClient, Credentials};
/// let client = ConnectWiseClient::builder(Credentials::new("mycompany", "PUBLICKEY", "PRIVATEKEY"))
///     .site("na.myconnectwise.net")
///     .build()?; // discovers the codebase on first use
/// let boards = client.boards().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConnectWiseClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    auth: HeaderMap,
    root: tokio::sync::OnceCell<Url>,
    permits: tokio::sync::Semaphore,
    catalog: CatalogCache,
}

impl std::fmt::Debug for ConnectWiseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the config's private key prints as ***; the header map is left out entirely
        f.debug_struct("ConnectWiseClient").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// The result of a ticket create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTicket {
    /// The ticket as ConnectWise answered (or as found by `externalXRef`).
    pub ticket: Ticket,
    /// Whether an ambiguous failure led to finding a ticket that had in fact been created.
    pub found_existing: bool,
}

/// What a list call asks for besides paging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `conditions=`.
    pub conditions: Option<Condition>,
    /// `fields=` (partial answers).
    pub fields: Vec<String>,
    /// Stop after this many rows (one page of at most this size).
    pub limit: Option<u32>,
}

impl ListQuery {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// Rows matching `c`.
    pub fn matching(c: Condition) -> Self {
        Self { conditions: Some(c), ..Self::default() }
    }

    /// Only these fields.
    #[must_use]
    pub fn fields<S: Into<String>>(mut self, f: impl IntoIterator<Item = S>) -> Self {
        self.fields = f.into_iter().map(Into::into).collect();
        self
    }

    /// At most `n` rows.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n.max(1));
        self
    }
}

/// `Authorization: Basic base64("{company}+{public}:{private}")` (a pure function; the value is
/// marked sensitive so it never shows in reqwest's debug output).
pub fn basic_auth_value(c: &Credentials) -> Result<HeaderValue, Error> {
    let raw = format!("{}+{}:{}", c.company_id, c.public_key, c.private_key.expose());
    let encoded = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
    let mut v = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|_| Error::InvalidRequest("credentials do not fit an http header".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

fn auth_headers(c: &Credentials) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    map.insert(AUTHORIZATION, basic_auth_value(c)?);
    let client_id = HeaderValue::from_str(&c.client_id)
        .map_err(|_| Error::InvalidRequest("clientId contains characters not allowed in an http header".into()))?;
    map.insert(HeaderName::from_static("clientid"), client_id);
    Ok(map)
}

fn decode<T: DeserializeOwned>(status: u16, body: &str) -> Result<T, Error> {
    serde_json::from_str(body).map_err(|e| Error::Decode { status, message: e.to_string(), body: keep_body(body) })
}

/// The `rel="next"` target of an RFC 5988 `Link` header (a pure function).
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let target = target.strip_prefix('<')?.strip_suffix('>')?;
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
        });
        is_next.then(|| target.to_owned())
    })
}

/// Whether two URLs share scheme, host and port (credentials only ever go to the configured API).
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl ConnectWiseClient {
    /// Starts a builder.
    pub fn builder(credentials: Credentials) -> ClientBuilder {
        ClientBuilder::new(credentials)
    }

    pub(crate) fn from_config(config: ClientConfig) -> Result<Self, Error> {
        let auth = auth_headers(&config.credentials)?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("msp-ticketing-connectwise-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::InvalidRequest(format!("http client: {e}")))?;
        let root = tokio::sync::OnceCell::new();
        if let ApiRoot::BaseUrl(u) = &config.root {
            let _ = root.set(u.clone());
        }
        let permits = tokio::sync::Semaphore::new(config.max_concurrency.max(1));
        let catalog = CatalogCache::new(config.catalog_ttl);
        Ok(Self { inner: Arc::new(Inner { http, config, auth, root, permits, catalog }) })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    pub(crate) fn catalog_cache(&self) -> &CatalogCache {
        &self.inner.catalog
    }

    // ---------------------------------------------------------------- discovery

    /// `GET {site}/login/companyinfo/{company}` without credentials (retried on transient
    /// failures). With a base URL the site is the base URL's origin.
    pub async fn company_info(&self) -> Result<CompanyInfo, Error> {
        let site = match &self.inner.config.root {
            ApiRoot::Discover { site, .. } => site.clone(),
            ApiRoot::BaseUrl(u) => {
                let mut s = u.clone();
                s.set_path("/");
                s
            }
        };
        let mut url = site.clone();
        url.path_segments_mut().map_err(|()| Error::InvalidRequest("site cannot be a base".into()))?.clear().extend([
            "login",
            "companyinfo",
            &self.inner.config.credentials.company_id,
        ]);
        let mut attempt = 1;
        loop {
            let result = async {
                let resp = self
                    .inner
                    .http
                    .get(url.clone())
                    .header(ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(|e| Error::from_reqwest(&e))?;
                let status = resp.status().as_u16();
                let retry_after = retry_after_of(resp.headers());
                let body = resp.text().await.map_err(|e| Error::from_reqwest(&e))?;
                if (200..300).contains(&status) {
                    match decode::<Option<CompanyInfo>>(status, &body)? {
                        Some(info) => Ok(info),
                        // ConnectWise answers `null` for an unknown company [I]
                        None => Err(api_error(404, r#"{"code":"NotFound","message":"unknown company"}"#, None)),
                    }
                } else {
                    Err(api_error(status, &body, retry_after))
                }
            }
            .await;
            match result {
                Ok(i) => return Ok(i),
                Err(e) => {
                    match self.inner.config.retry.classify(&e, attempt, Idempotency::Idempotent, rand::random()) {
                        RetryAction::Retry(d) => tokio::time::sleep(d).await,
                        _ => return Err(e),
                    }
                }
            }
            attempt += 1;
        }
    }

    /// The API root in use (`…/{codebase}apis/3.0/`), discovering it once when needed.
    pub async fn root(&self) -> Result<Url, Error> {
        let root = self
            .inner
            .root
            .get_or_try_init(|| async {
                let ApiRoot::Discover { site, api_host } = &self.inner.config.root else {
                    unreachable!("a base url is set at construction")
                };
                let info = self.company_info().await?;
                let codebase =
                    info.codebase.as_deref().map(str::trim).filter(|c| !c.is_empty()).ok_or_else(|| Error::Decode {
                        status: 200,
                        message: "companyinfo without Codebase".into(),
                        body: format!("{info:?}"),
                    })?;
                let codebase = codebase.trim_matches('/');
                if codebase.contains(['?', '#', '\\']) || codebase.split('/').any(|s| s == "..") {
                    return Err(Error::Decode {
                        status: 200,
                        message: format!("unusable Codebase {codebase:?}"),
                        body: String::new(),
                    });
                }
                let site_host = site.host_str().unwrap_or_default();
                let host = match api_host {
                    Some(h) => h.clone(),
                    None => api_host_for(site_host),
                };
                let mut root = site.clone();
                root.set_host(Some(&host)).map_err(|e| Error::InvalidRequest(format!("bad api host {host:?}: {e}")))?;
                if host != site_host {
                    // a different host: the site's explicit port does not carry over
                    let _ = root.set_port(None);
                }
                root.set_path(&format!("/{codebase}/apis/3.0/"));
                debug!(codebase, root = %root, "connectwise codebase discovered");
                Ok::<Url, Error>(root)
            })
            .await?;
        Ok(root.clone())
    }

    async fn url(&self, path: &str, params: &[(&str, String)]) -> Result<Url, Error> {
        let root = self.root().await?;
        let mut url = root.join(path.trim_start_matches('/')).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        if !params.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    // ---------------------------------------------------------------- pipeline

    /// One attempt: same-origin check, semaphore, headers, send, classify.
    async fn dispatch(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        forward_only: bool,
    ) -> Result<Answer, Error> {
        let inner = &*self.inner;
        let root = self.root().await?;
        if !same_origin(&root, url) {
            return Err(Error::HostNotAllowed { url: url.to_string() });
        }
        let _permit = inner.permits.acquire().await.map_err(|_| Error::InvalidRequest("client closed".into()))?;
        let accept = format!("application/vnd.connectwise.com+json; version={}", inner.config.api_version);
        let mut req = inner
            .http
            .request(method.clone(), url.clone())
            .headers(inner.auth.clone())
            .header(ACCEPT, accept)
            .header(CONTENT_TYPE, "application/json");
        if forward_only {
            req = req.header("pagination-type", "forward-only");
        }
        if let Some(b) = body {
            req = req.body(b.to_vec());
        }
        let resp = req.send().await.map_err(|e| Error::from_reqwest(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.map_err(|e| Error::from_reqwest(&e))?;
        if (200..300).contains(&status) {
            Ok(Answer { status, headers, body: text })
        } else {
            let err = api_error(status, &text, retry_after_of(&headers));
            debug!(%method, path = url.path(), error = %err, "connectwise request failed");
            Err(err)
        }
    }

    /// Sends with retries according to the policy (`Verifiable` is treated like
    /// `NonIdempotent` here; verified creates go through [`Self::create_ticket`]).
    async fn execute(
        &self,
        method: Method,
        url: &Url,
        body: Option<&[u8]>,
        idempotency: Idempotency,
        forward_only: bool,
    ) -> Result<Answer, Error> {
        let mut attempt = 1;
        loop {
            match self.dispatch(&method, url, body, forward_only).await {
                Ok(ok) => return Ok(ok),
                Err(e) => match self.inner.config.retry.classify(&e, attempt, idempotency, rand::random()) {
                    RetryAction::Retry(d) => {
                        debug!(attempt, delay_ms = d.as_millis() as u64, error = %e, "retrying connectwise request");
                        tokio::time::sleep(d).await;
                    }
                    RetryAction::VerifyThenRetry(_) | RetryAction::NoRetry => return Err(e),
                },
            }
            attempt += 1;
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let url = self.url(path, &[]).await?;
        let a = self.execute(Method::GET, &url, None, Idempotency::Idempotent, false).await?;
        decode(a.status, &a.body)
    }

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        idempotency: Idempotency,
    ) -> Result<T, Error> {
        let url = self.url(path, &[]).await?;
        let bytes = serde_json::to_vec(body).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let a = self.execute(method, &url, Some(&bytes), idempotency, false).await?;
        decode(a.status, &a.body)
    }

    // ---------------------------------------------------------------- lists

    /// Every row of `GET {path}` matching `query`, page after page (per [`ClientConfig::paging`]).
    ///
    /// The `Link` header's `rel="next"` is followed when the server sends one (only to the same
    /// origin); without any `Link` header a full page means "ask for more" (`page+1`, or
    /// `pageId=<largest id>` forward-only). Conditions longer than
    /// [`ClientConfig::max_condition_len`] go in the body of `POST {path}/search` (numbered).
    pub async fn list<T: DeserializeOwned + Identified>(&self, path: &str, query: &ListQuery) -> Result<Vec<T>, Error> {
        let cfg = &self.inner.config;
        let conditions = query.conditions.as_ref().map(Condition::build).transpose()?;
        let page_size = query.limit.map_or(cfg.page_size, |l| l.min(cfg.page_size)).clamp(1, MAX_PAGE_SIZE);
        let search = conditions.as_ref().is_some_and(|c| c.len() > cfg.max_condition_len);
        let forward_only = cfg.paging == PagingMode::ForwardOnly && !search;
        let mut params: Vec<(&str, String)> = vec![("pageSize", page_size.to_string())];
        if !forward_only {
            params.push(("page", "1".into()));
        }
        if !query.fields.is_empty() {
            params.push(("fields", query.fields.join(",")));
        }
        let (method, body, base) = if search {
            let body = serde_json::to_vec(&json!({"conditions": conditions}))
                .map_err(|e| Error::InvalidRequest(e.to_string()))?;
            (Method::POST, Some(body), self.url(&format!("{path}/search"), &params).await?)
        } else {
            if let Some(c) = &conditions {
                params.push(("conditions", c.clone()));
            }
            (Method::GET, None, self.url(path, &params).await?)
        };
        let mut url = base.clone();
        let mut out: Vec<T> = Vec::new();
        let mut page_no = 1u32;
        for _ in 0..cfg.max_pages {
            let a = self.execute(method.clone(), &url, body.as_deref(), Idempotency::Idempotent, forward_only).await?;
            let rows: Vec<T> = decode(a.status, &a.body)?;
            let full = rows.len() as u64 >= u64::from(page_size);
            let last_id = rows.iter().filter_map(Identified::row_id).max();
            out.extend(rows);
            if query.limit.is_some_and(|l| out.len() as u64 >= u64::from(l)) {
                out.truncate(query.limit.unwrap_or(u32::MAX) as usize);
                return Ok(out);
            }
            let link = a.headers.get(LINK).and_then(|v| v.to_str().ok());
            let next = match link {
                Some(l) => match next_link(l) {
                    Some(n) => Some(Url::parse(&n).or_else(|_| url.join(&n)).map_err(|e| Error::Decode {
                        status: a.status,
                        message: format!("bad Link next url: {e}"),
                        body: keep_body(&n),
                    })?),
                    None => None,
                },
                None if !full => None,
                None if forward_only => {
                    let Some(last) = last_id else {
                        return Err(Error::Decode {
                            status: a.status,
                            message: "rows carry no id; forward-only paging needs it".into(),
                            body: String::new(),
                        });
                    };
                    let mut n = base.clone();
                    n.query_pairs_mut().append_pair("pageId", &last.to_string());
                    Some(n)
                }
                None => {
                    page_no += 1;
                    let mut n = base.clone();
                    let pairs: Vec<(String, String)> = n
                        .query_pairs()
                        .map(|(k, v)| {
                            if k == "page" {
                                (k.into_owned(), page_no.to_string())
                            } else {
                                (k.into_owned(), v.into_owned())
                            }
                        })
                        .collect();
                    n.query_pairs_mut().clear().extend_pairs(pairs);
                    Some(n)
                }
            };
            match next {
                Some(n) => url = n,
                None => return Ok(out),
            }
        }
        Err(Error::InvalidRequest(format!("list of {path} did not finish within {} pages", cfg.max_pages)))
    }

    // ---------------------------------------------------------------- tickets

    /// `GET /service/tickets/{id}`; `None` on 404.
    pub async fn get_ticket(&self, id: i64) -> Result<Option<Ticket>, Error> {
        match self.get::<Ticket>(&format!("service/tickets/{id}")).await {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.class() == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The ticket whose `externalXRef` equals `key` (`conditions=externalXRef="<key>"`; the match
    /// is re-checked exactly, the server compares case-insensitively).
    pub async fn find_ticket_by_xref(&self, key: &str) -> Result<Option<Ticket>, Error> {
        let q = ListQuery::matching(Condition::eq("externalXRef", key)).limit(25);
        let rows: Vec<Ticket> = self.list("service/tickets", &q).await?;
        Ok(rows.into_iter().filter(|t| t.external_x_ref.as_deref() == Some(key)).min_by_key(|t| t.id))
    }

    /// `POST /service/tickets` → 201 with the record.
    ///
    /// With an `externalXRef` the create is *verifiable*: after an ambiguous failure (timeout,
    /// connection lost, 5xx, unreadable answer) the ticket is looked up by `externalXRef` and
    /// returned if it exists; only when it does not is the create sent again. Without one, an
    /// ambiguous failure is returned as is (never retried blindly). Throttled and not-sent
    /// failures are retried in both cases.
    pub async fn create_ticket(&self, ticket: &Ticket) -> Result<CreatedTicket, Error> {
        if ticket.id.is_some() {
            return Err(Error::InvalidRequest("a ticket to create must not carry an id".into()));
        }
        let url = self.url("service/tickets", &[]).await?;
        let bytes = serde_json::to_vec(ticket).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let key = ticket.external_x_ref.clone();
        let idempotency = if key.is_some() { Idempotency::Verifiable } else { Idempotency::NonIdempotent };
        let mut attempt = 1;
        loop {
            let err = match self.dispatch(&Method::POST, &url, Some(&bytes), false).await {
                Ok(a) => match decode::<Ticket>(a.status, &a.body) {
                    Ok(t) if t.id.is_some() => return Ok(CreatedTicket { ticket: t, found_existing: false }),
                    Ok(_) => Error::Decode {
                        status: a.status,
                        message: "created ticket without id".into(),
                        body: keep_body(&a.body),
                    },
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if let (Outcome::Unknown, Some(key)) = (err.outcome(), key.as_deref()) {
                warn!(idempotency_key = %key, attempt, error = %err, "ambiguous ticket create; looking it up by externalXRef");
                match self.find_ticket_by_xref(key).await {
                    Ok(Some(found)) => return Ok(CreatedTicket { ticket: found, found_existing: true }),
                    Ok(None) => {}
                    Err(lookup) => {
                        // cannot tell whether it landed: give the ambiguous error back
                        warn!(idempotency_key = %key, error = %lookup, "lookup after ambiguous create failed");
                        return Err(err);
                    }
                }
            }
            match self.inner.config.retry.classify(&err, attempt, idempotency, rand::random()) {
                RetryAction::Retry(d) | RetryAction::VerifyThenRetry(d) => tokio::time::sleep(d).await,
                RetryAction::NoRetry => return Err(err),
            }
            attempt += 1;
        }
    }

    /// `PATCH /service/tickets/{id}` with a JSON Patch array → the ticket as answered. Only
    /// top-level paths are accepted here: a sub-path (`company/identifier`) can answer 200 without
    /// changing anything.
    pub async fn patch_ticket(&self, id: i64, ops: &[PatchOp]) -> Result<Ticket, Error> {
        if ops.is_empty() {
            return Err(Error::InvalidRequest("an empty patch".into()));
        }
        if let Some(op) = ops.iter().find(|o| o.path.trim_start_matches('/').contains('/')) {
            return Err(Error::InvalidRequest(format!(
                "patch path {:?} is a sub-path; replace the whole value instead",
                op.path
            )));
        }
        self.send_json(Method::PATCH, &format!("service/tickets/{id}"), ops, Idempotency::Idempotent).await
    }

    /// Sets a ticket's status (`[{"op":"replace","path":"status","value":{"id":N}}]`) and checks
    /// the answer: a 200 whose ticket does not show status `N` is [`Error::NotApplied`].
    pub async fn set_ticket_status(&self, id: i64, status: i64) -> Result<Ticket, Error> {
        let t = self.patch_ticket(id, &[PatchOp::replace("status", json!({"id": status}))]).await?;
        let got = t.status.as_ref().and_then(|s| s.id);
        if got != Some(status) {
            return Err(Error::NotApplied {
                what: format!("ticket {id} status"),
                detail: format!("the answer shows status {got:?}, not {status}"),
            });
        }
        Ok(t)
    }

    /// `GET /service/tickets/{id}/notes` matching `conditions`.
    pub async fn ticket_notes(&self, ticket_id: i64, query: &ListQuery) -> Result<Vec<ServiceNote>, Error> {
        self.list(&format!("service/tickets/{ticket_id}/notes"), query).await
    }

    /// `POST /service/tickets/{id}/notes` → the note. Never retried after an ambiguous failure
    /// (the sink looks the note up by its marker instead).
    pub async fn add_ticket_note(&self, ticket_id: i64, note: &ServiceNote) -> Result<ServiceNote, Error> {
        self.send_json(Method::POST, &format!("service/tickets/{ticket_id}/notes"), note, Idempotency::NonIdempotent)
            .await
    }

    // ---------------------------------------------------------------- picklists and companies

    /// `GET /service/boards`.
    pub async fn boards(&self) -> Result<Vec<Board>, Error> {
        self.list("service/boards", &ListQuery::all().fields(["id", "name", "inactiveFlag"])).await
    }

    /// `GET /service/boards/{id}/statuses`.
    pub async fn board_statuses(&self, board: i64) -> Result<Vec<BoardStatus>, Error> {
        self.list(&format!("service/boards/{board}/statuses"), &ListQuery::all()).await
    }

    /// `GET /service/boards/{id}/types`.
    pub async fn board_types(&self, board: i64) -> Result<Vec<BoardType>, Error> {
        self.list(&format!("service/boards/{board}/types"), &ListQuery::all()).await
    }

    /// `GET /service/boards/{id}/subtypes`.
    pub async fn board_subtypes(&self, board: i64) -> Result<Vec<BoardSubType>, Error> {
        self.list(&format!("service/boards/{board}/subtypes"), &ListQuery::all()).await
    }

    /// `GET /service/boards/{id}/items`.
    pub async fn board_items(&self, board: i64) -> Result<Vec<BoardItem>, Error> {
        self.list(&format!("service/boards/{board}/items"), &ListQuery::all()).await
    }

    /// `GET /service/priorities`.
    pub async fn priorities(&self) -> Result<Vec<Priority>, Error> {
        self.list("service/priorities", &ListQuery::all()).await
    }

    /// `GET /service/sources`.
    pub async fn sources(&self) -> Result<Vec<Source>, Error> {
        self.list("service/sources", &ListQuery::all()).await
    }

    /// `GET /company/companies` (`id`, `identifier`, `name`, `status`, `deletedFlag`).
    pub async fn companies(&self) -> Result<Vec<Company>, Error> {
        self.list("company/companies", &ListQuery::all().fields(["id", "identifier", "name", "status", "deletedFlag"]))
            .await
    }

    /// `GET /company/companies/statuses`.
    pub async fn company_statuses(&self) -> Result<Vec<CompanyStatus>, Error> {
        self.list("company/companies/statuses", &ListQuery::all()).await
    }

    /// The catalog, cached for [`ClientConfig::catalog_ttl`].
    pub async fn board_catalog(&self) -> Result<Arc<crate::catalog::BoardCatalog>, Error> {
        self.catalog_cache().get(self, false).await
    }

    /// Re-reads the catalog now.
    pub async fn refresh_board_catalog(&self) -> Result<Arc<crate::catalog::BoardCatalog>, Error> {
        self.catalog_cache().get(self, true).await
    }
}

/// A reference to `id` (helper for building tickets).
pub fn reference(id: i64) -> Reference {
    Reference::id(id)
}

fn retry_after_of(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, SystemTime::now()))
}
