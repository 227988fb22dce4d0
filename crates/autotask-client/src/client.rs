//! The HTTP client: request pipeline (zone → allow-list → throttle → auth headers → send →
//! classify → retry) and the entity calls built on it.
//!
//! ```text
//!  call ─> root() ──> allow-list ──> entity semaphore ──> budget (pace / refuse) ──> HTTP
//!            │ zone cache / discovery                                               │
//!            └──────────────────────────── retry policy <── classify(status, body) <┘
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};
use url::Url;

use crate::catalog::CatalogCache;
use crate::config::{ClientBuilder, ClientConfig, Credentials, PagingMode, ZoneSource};
use crate::error::{Error, ErrorClass, Outcome, api_error, keep_body};
use crate::models::{
    BillingCode, Company, ConfigurationItem, Entity, FieldsEnvelope, ItemEnvelope, ItemId, Page, QueryCount,
    ThresholdInformation, Ticket, TicketNote, ZoneInformation,
};
use crate::query::{Filter, Query, QueryBody};
use crate::retry::{Classify as _, Idempotency, RetryAction, parse_retry_after};
use crate::throttle::{BudgetUsage, EntityLimiter, RequestBudget, Take, entity_of_path};
use crate::zone::{ZoneCache, endpoint, normalise_root, zone_lookup_url};

/// An Autotask REST client. Cheap to clone (clones share throttles, budget and caches).
///
/// Construct with [`AutotaskClient::builder`]:
///
/// ```no_run
/// # async fn run() -> Result<(), autotask_client::Error> {
/// use autotask_client::{AutotaskClient, Credentials};
/// let client = AutotaskClient::builder(Credentials::new("api@example.com", "secret", "INTEGRATIONCODE"))
///     .build()?; // discovers the zone on first use
/// let companies = client.companies().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AutotaskClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    auth: HeaderMap,
    limiter: EntityLimiter,
    budget: Arc<RequestBudget>,
    zones: Arc<ZoneCache>,
    zone_lock: tokio::sync::Mutex<()>,
    pub(crate) catalog: CatalogCache,
}

impl std::fmt::Debug for AutotaskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // config's credentials print their secrets as ***; the header map is left out entirely
        f.debug_struct("AutotaskClient").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// The result of a ticket create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTicket {
    /// The ticket id.
    pub id: i64,
    /// The ticket number, when it came for free (an existing ticket found by `externalID`).
    pub ticket_number: Option<String>,
    /// Whether an ambiguous failure led to finding a ticket that had in fact been created.
    pub found_existing: bool,
}

fn header(name: &'static str, value: &str, what: &str) -> Result<(HeaderName, HeaderValue), Error> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| Error::InvalidRequest(format!("{what} contains characters not allowed in an http header")))?;
    v.set_sensitive(true);
    Ok((HeaderName::from_static(name), v))
}

fn auth_headers(c: &Credentials) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (name, value) in [
        header("apiintegrationcode", c.integration_code.expose(), "integration code")?,
        header("username", &c.username, "username")?,
        header("secret", c.secret.expose(), "secret")?,
    ] {
        map.insert(name, value);
    }
    if let Some(id) = c.impersonation_resource_id {
        map.insert(HeaderName::from_static("impersonationresourceid"), HeaderValue::from(id));
    }
    Ok(map)
}

fn decode<T: DeserializeOwned>(status: u16, body: &str) -> Result<T, Error> {
    serde_json::from_str(body).map_err(|e| Error::Decode { status, message: e.to_string(), body: keep_body(body) })
}

/// Serialises a ticket for `POST /Tickets` (the wire body; used by the benchmark too).
pub fn ticket_body(ticket: &Ticket) -> Vec<u8> {
    serde_json::to_vec(ticket).unwrap_or_default()
}

/// Parses a query page of tickets (the wire parse; used by the benchmark too).
pub fn parse_ticket_page(body: &str) -> Result<Page<Ticket>, Error> {
    decode(200, body)
}

impl AutotaskClient {
    /// Starts a builder.
    pub fn builder(credentials: Credentials) -> ClientBuilder {
        ClientBuilder::new(credentials)
    }

    pub(crate) fn from_config(
        config: ClientConfig,
        budget: Arc<RequestBudget>,
        zones: Arc<ZoneCache>,
    ) -> Result<Self, Error> {
        let auth = auth_headers(&config.credentials)?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("msp-ticketing-autotask-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::InvalidRequest(format!("http client: {e}")))?;
        let limiter = EntityLimiter::new(config.max_concurrency_per_entity);
        let catalog = CatalogCache::new(config.catalog_ttl);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                auth,
                limiter,
                budget,
                zones,
                zone_lock: tokio::sync::Mutex::new(()),
                catalog,
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Hourly budget usage (for metrics).
    pub fn budget_usage(&self) -> BudgetUsage {
        self.inner.budget.usage()
    }

    /// The shared budget (to hand to another client of the same database).
    pub fn budget(&self) -> Arc<RequestBudget> {
        Arc::clone(&self.inner.budget)
    }

    /// The zone cache (to hand to another client of the same user).
    pub fn zone_cache(&self) -> Arc<ZoneCache> {
        Arc::clone(&self.inner.zones)
    }

    /// Concurrent requests allowed per entity endpoint.
    pub fn max_concurrency_per_entity(&self) -> usize {
        self.inner.limiter.permits()
    }

    pub(crate) fn catalog_cache(&self) -> &CatalogCache {
        &self.inner.catalog
    }

    // ---------------------------------------------------------------- zone

    /// `GET {discovery}/v1.0/zoneInformation?user=…` without credentials (retried on
    /// transient failures). Only meaningful when the client discovers its zone.
    pub async fn zone_information(&self) -> Result<ZoneInformation, Error> {
        let discovery = match &self.inner.config.zone {
            ZoneSource::Discover(u) => u.clone(),
            ZoneSource::BaseUrl(u) => u.clone(),
        };
        let url = zone_lookup_url(&discovery, &self.inner.config.credentials.username)?;
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
                    decode(status, &body)
                } else {
                    Err(api_error(status, &body, retry_after))
                }
            }
            .await;
            match result {
                Ok(z) => return Ok(z),
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

    /// The REST root in use (`…/ATServicesRest`), discovering and caching it when needed.
    pub async fn root(&self) -> Result<Url, Error> {
        let cfg = &self.inner.config;
        let discovery = match &cfg.zone {
            ZoneSource::BaseUrl(u) => return Ok(u.clone()),
            ZoneSource::Discover(d) => d,
        };
        let user = &cfg.credentials.username;
        if let Some(u) = self.inner.zones.get(discovery, user, cfg.zone_cache_ttl) {
            return Ok(u);
        }
        let _guard = self.inner.zone_lock.lock().await;
        if let Some(u) = self.inner.zones.get(discovery, user, cfg.zone_cache_ttl) {
            return Ok(u);
        }
        let info = self.zone_information().await?;
        let Some(raw) = info.url.as_deref() else {
            return Err(Error::Decode {
                status: 200,
                message: "zoneInformation without url".into(),
                body: format!("{info:?}"),
            });
        };
        let root = normalise_root(raw)?;
        cfg.hosts.check(&root)?;
        debug!(zone = info.zone_name.as_deref().unwrap_or(""), root = %root, "autotask zone discovered");
        self.inner.zones.insert(discovery, user, root.clone());
        Ok(root)
    }

    async fn url(&self, path: &str) -> Result<Url, Error> {
        endpoint(&self.root().await?, path)
    }

    // ---------------------------------------------------------------- pipeline

    /// One attempt: allow-list, semaphore, budget, headers, send, classify. Returns status and
    /// body of a 2xx answer.
    async fn dispatch(&self, method: &Method, url: &Url, body: Option<&[u8]>) -> Result<(u16, String), Error> {
        let inner = &*self.inner;
        inner.config.hosts.check(url)?;
        let entity = entity_of_path(url.path());
        let _permit = inner.limiter.acquire(&entity).await;
        match inner.budget.take(&inner.config.pacing) {
            Take::Go(delay) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
            Take::Exhausted { used, limit, retry_after } => {
                return Err(Error::BudgetExhausted { used, limit, retry_after: Some(retry_after) });
            }
        }
        let mut req = inner
            .http
            .request(method.clone(), url.clone())
            .headers(inner.auth.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json");
        if let Some(b) = body {
            req = req.body(b.to_vec());
        }
        let resp = req.send().await.map_err(|e| Error::from_reqwest(&e))?;
        let status = resp.status().as_u16();
        let retry_after = retry_after_of(resp.headers());
        let text = resp.text().await.map_err(|e| Error::from_reqwest(&e))?;
        if (200..300).contains(&status) {
            Ok((status, text))
        } else {
            let err = api_error(status, &text, retry_after);
            debug!(%method, entity, error = %err, "autotask request failed");
            if err.class() == ErrorClass::Auth
                && let ZoneSource::Discover(discovery) = &inner.config.zone
            {
                // a wrong (stale) zone answers 401: rediscover on the next call
                inner.zones.remove(discovery, &inner.config.credentials.username);
            }
            Err(err)
        }
    }

    /// Re-reads `ThresholdInformation` into the budget when due (single flight).
    async fn maybe_sync_budget(&self) {
        let Some(every) = self.inner.config.threshold_refresh else { return };
        if !self.inner.budget.claim_sync(every) {
            return;
        }
        match self.fetch_threshold().await {
            Ok(t) => self.apply_threshold(&t),
            Err(e) => {
                warn!(error = %e, "autotask ThresholdInformation refresh failed");
                self.inner.budget.sync_failed();
            }
        }
    }

    fn apply_threshold(&self, t: &ThresholdInformation) {
        if let (Some(limit), Some(used)) = (t.external_request_threshold, t.current_timeframe_request_count) {
            let window = t.request_threshold_timeframe.map(|m| Duration::from_secs(m * 60));
            self.inner.budget.sync(limit, used, window);
        } else {
            self.inner.budget.sync_failed();
        }
    }

    async fn fetch_threshold(&self) -> Result<ThresholdInformation, Error> {
        let url = self.url("ThresholdInformation").await?;
        let (status, body) = self.dispatch(&Method::GET, &url, None).await?;
        decode(status, &body)
    }

    /// `GET /V1.0/ThresholdInformation`; also re-synchronises the budget.
    pub async fn threshold_information(&self) -> Result<ThresholdInformation, Error> {
        let t = self.fetch_threshold().await?;
        self.apply_threshold(&t);
        Ok(t)
    }

    /// Sends with retries according to the policy. `Verifiable` is treated like
    /// `NonIdempotent` here; verified creates go through [`Self::create_ticket`].
    async fn execute(
        &self,
        method: Method,
        url: &Url,
        body: Option<&[u8]>,
        idempotency: Idempotency,
    ) -> Result<(u16, String), Error> {
        let mut attempt = 1;
        loop {
            self.maybe_sync_budget().await;
            match self.dispatch(&method, url, body).await {
                Ok(ok) => return Ok(ok),
                Err(e) => match self.inner.config.retry.classify(&e, attempt, idempotency, rand::random()) {
                    RetryAction::Retry(d) => {
                        debug!(attempt, delay_ms = d.as_millis() as u64, error = %e, "retrying autotask request");
                        tokio::time::sleep(d).await;
                    }
                    RetryAction::VerifyThenRetry(_) | RetryAction::NoRetry => return Err(e),
                },
            }
            attempt += 1;
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let url = self.url(path).await?;
        let (status, body) = self.execute(Method::GET, &url, None, Idempotency::Idempotent).await?;
        decode(status, &body)
    }

    async fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        idempotency: Idempotency,
    ) -> Result<T, Error> {
        let url = self.url(path).await?;
        let bytes = serde_json::to_vec(body).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let (status, text) = self.execute(method, &url, Some(&bytes), idempotency).await?;
        decode(status, &text)
    }

    // ---------------------------------------------------------------- queries

    /// One page of `POST /V1.0/{E}/query`.
    pub async fn query_page<T: Entity>(&self, query: Query) -> Result<Page<T>, Error> {
        let body = query.build()?;
        self.send_json(Method::POST, &format!("{}/query", T::PATH), &body, Idempotency::Idempotent).await
    }

    /// `POST /V1.0/{E}/query/count`.
    pub async fn count<T: Entity>(&self, query: Query) -> Result<u64, Error> {
        let body = query.build()?;
        let c: QueryCount =
            self.send_json(Method::POST, &format!("{}/query/count", T::PATH), &body, Idempotency::Idempotent).await?;
        Ok(c.query_count)
    }

    /// Every row matching `query`, page after page, as a stream (paging per
    /// [`ClientConfig::paging`]).
    pub fn query_stream<T: Entity>(&self, query: Query) -> BoxStream<'static, Result<T, Error>> {
        let client = self.clone();
        let mut body = match query.build() {
            Ok(b) => b,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        body.ensure_id();
        let mode = self.inner.config.paging;
        let max_pages = self.inner.config.max_pages;
        enum State {
            Start,
            AfterId(i64),
            Next(String),
            Done,
        }
        let pages = stream::try_unfold((State::Start, 0usize), move |(state, n)| {
            let client = client.clone();
            let body = body.clone();
            async move {
                if matches!(state, State::Done) {
                    return Ok(None);
                }
                if n >= max_pages {
                    return Err(Error::InvalidRequest(format!("query did not finish within {max_pages} pages")));
                }
                let page: Page<T> = match &state {
                    State::Start => client.post_query(&body, None).await?,
                    State::AfterId(last) => client.post_query(&body.and_also(Filter::gt("id", *last)), None).await?,
                    State::Next(url) => client.post_query(&body, Some(url)).await?,
                    State::Done => unreachable!(),
                };
                let next = match mode {
                    PagingMode::IdKeyset => {
                        if page.items.is_empty() || (page.items.len() as u64) < u64::from(body.page_size()) {
                            State::Done
                        } else {
                            let last = page.items.iter().filter_map(Entity::id).max().ok_or_else(|| Error::Decode {
                                status: 200,
                                message: "query rows carry no id; keyset paging needs it".into(),
                                body: String::new(),
                            })?;
                            State::AfterId(last)
                        }
                    }
                    PagingMode::NextPageUrl => match page.page_details.as_ref().and_then(|d| d.next_page_url.clone()) {
                        Some(url) if !url.is_empty() && !page.items.is_empty() => State::Next(url),
                        _ => State::Done,
                    },
                };
                Ok(Some((page.items, (next, n + 1))))
            }
        });
        pages.map_ok(|items| stream::iter(items.into_iter().map(Ok))).try_flatten().boxed()
    }

    /// Every row matching `query`, collected.
    pub async fn query_all<T: Entity>(&self, query: Query) -> Result<Vec<T>, Error> {
        self.query_stream(query).try_collect().await
    }

    async fn post_query<T: Entity>(&self, body: &QueryBody, next: Option<&str>) -> Result<Page<T>, Error> {
        let url = match next {
            Some(raw) => Url::parse(raw).map_err(|e| Error::Decode {
                status: 200,
                message: format!("bad nextPageUrl: {e}"),
                body: keep_body(raw),
            })?,
            None => self.url(&format!("{}/query", T::PATH)).await?,
        };
        // dispatch() checks the allow-list before any credential is attached
        let (status, text) = self.execute(Method::POST, &url, Some(&body.to_bytes()), Idempotency::Idempotent).await?;
        decode(status, &text)
    }

    // ---------------------------------------------------------------- tickets

    /// `GET /V1.0/Tickets/{id}`; `None` on 404 or `{"item":null}`.
    pub async fn get_ticket(&self, id: i64) -> Result<Option<Ticket>, Error> {
        self.get_item(&format!("Tickets/{id}")).await
    }

    async fn get_item<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, Error> {
        match self.get::<ItemEnvelope<T>>(path).await {
            Ok(env) => Ok(env.item),
            Err(e) if e.class() == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The ticket whose `externalID` equals `external_id`
    /// (`{"filter":[{"op":"eq","field":"externalID","value":…}],"MaxRecords":1}`).
    pub async fn find_ticket_by_external_id(&self, external_id: &str) -> Result<Option<Ticket>, Error> {
        let q = Query::new().filter(Filter::eq("externalID", external_id)).max_records(1);
        let page: Page<Ticket> = self.query_page(q).await?;
        // the server compares case-insensitively; the key is exact
        Ok(page.items.into_iter().find(|t| t.external_id.as_deref().is_none_or(|x| x == external_id)))
    }

    /// `POST /V1.0/Tickets` → `itemId`.
    ///
    /// With an `externalID` the create is *verifiable*: after an ambiguous failure (timeout,
    /// connection lost, 5xx, unreadable answer) the ticket is looked up by `externalID` and
    /// returned if it exists; only when it does not is the create sent again. Without one, an
    /// ambiguous failure is returned as is (never retried blindly). Throttled and
    /// not-sent failures are retried in both cases.
    pub async fn create_ticket(&self, ticket: &Ticket) -> Result<CreatedTicket, Error> {
        if ticket.id.is_some() {
            return Err(Error::InvalidRequest("a ticket to create must not carry an id".into()));
        }
        let url = self.url("Tickets").await?;
        let bytes = ticket_body(ticket);
        let external = ticket.external_id.clone();
        let idempotency = if external.is_some() { Idempotency::Verifiable } else { Idempotency::NonIdempotent };
        let mut attempt = 1;
        loop {
            self.maybe_sync_budget().await;
            let err = match self.dispatch(&Method::POST, &url, Some(&bytes)).await {
                Ok((status, body)) => match decode::<ItemId>(status, &body) {
                    Ok(id) => return Ok(CreatedTicket { id: id.item_id, ticket_number: None, found_existing: false }),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if let (Outcome::Unknown, Some(key)) = (err.outcome(), external.as_deref()) {
                warn!(idempotency_key = %key, attempt, error = %err, "ambiguous ticket create; looking it up by externalID");
                match self.find_ticket_by_external_id(key).await {
                    Ok(Some(found)) => {
                        if let Some(id) = found.id {
                            return Ok(CreatedTicket { id, ticket_number: found.ticket_number, found_existing: true });
                        }
                    }
                    Ok(None) => {}
                    // cannot tell whether it landed: give the ambiguous error back
                    Err(lookup) => {
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

    /// `PATCH /V1.0/Tickets` with the given fields (`id` required) → `itemId`.
    pub async fn update_ticket(&self, patch: &Ticket) -> Result<i64, Error> {
        if patch.id.is_none() {
            return Err(Error::InvalidRequest("a ticket patch needs an id".into()));
        }
        let r: ItemId = self.send_json(Method::PATCH, "Tickets", patch, Idempotency::Idempotent).await?;
        Ok(r.item_id)
    }

    /// `PATCH /V1.0/Tickets {"id":…,"status":…}`.
    pub async fn set_ticket_status(&self, id: i64, status: i64) -> Result<i64, Error> {
        self.update_ticket(&Ticket { id: Some(id), status: Some(status), ..Ticket::default() }).await
    }

    /// `POST /V1.0/Tickets/{id}/Notes` → `itemId`. `ticketID` is filled in. Never retried after
    /// an ambiguous failure (a note cannot be looked up reliably).
    pub async fn create_ticket_note(&self, ticket_id: i64, note: &TicketNote) -> Result<i64, Error> {
        let mut note = note.clone();
        note.ticket_id = Some(ticket_id);
        note.id = None;
        let r: ItemId = self
            .send_json(Method::POST, &format!("Tickets/{ticket_id}/Notes"), &note, Idempotency::NonIdempotent)
            .await?;
        Ok(r.item_id)
    }

    /// `GET /V1.0/Tickets/entityInformation/fields`.
    pub async fn ticket_fields(&self) -> Result<FieldsEnvelope, Error> {
        self.get("Tickets/entityInformation/fields").await
    }

    /// `GET /V1.0/{path}/entityInformation/fields` for any entity (`TicketNotes`, …).
    pub async fn entity_fields(&self, entity: &str) -> Result<FieldsEnvelope, Error> {
        self.get(&format!("{entity}/entityInformation/fields")).await
    }

    // ---------------------------------------------------------------- other entities

    /// Every company (`id`, `companyName`, `isActive`), paged.
    pub async fn companies(&self) -> Result<Vec<Company>, Error> {
        self.query_all(Query::all().include_fields(["id", "companyName", "isActive"])).await
    }

    /// `GET /V1.0/Companies/{id}`.
    pub async fn get_company(&self, id: i64) -> Result<Option<Company>, Error> {
        self.get_item(&format!("Companies/{id}")).await
    }

    /// Active work types: BillingCodes with `useType == 1` and `isActive == true`.
    pub async fn work_types(&self) -> Result<Vec<BillingCode>, Error> {
        self.query_all(Query::new().filter(Filter::eq("useType", 1)).filter(Filter::eq("isActive", true))).await
    }

    /// The configuration item named `reference_title` within `company_id`.
    pub async fn find_configuration_item(
        &self,
        company_id: i64,
        reference_title: &str,
    ) -> Result<Option<ConfigurationItem>, Error> {
        let q = Query::new()
            .filter(Filter::eq("companyID", company_id))
            .filter(Filter::eq("referenceTitle", reference_title))
            .max_records(1);
        let page: Page<ConfigurationItem> = self.query_page(q).await?;
        Ok(page.items.into_iter().next())
    }

    /// The catalog (picklists and work types), cached for [`ClientConfig::catalog_ttl`].
    pub async fn catalog(&self) -> Result<ticketing_core::catalog::Catalog, Error> {
        self.catalog_cache().get(self, false).await
    }

    /// Re-reads the catalog now.
    pub async fn refresh_catalog(&self) -> Result<ticketing_core::catalog::Catalog, Error> {
        self.catalog_cache().get(self, true).await
    }
}

fn retry_after_of(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, SystemTime::now()))
}
