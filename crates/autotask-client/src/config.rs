//! Credentials and client configuration (builder).

use std::sync::Arc;
use std::time::Duration;

use ticketing_core::secret::Secret;
use url::Url;

use crate::error::Error;
use crate::retry::RetryPolicy;
use crate::throttle::{DEFAULT_CONCURRENCY_PER_ENTITY, DEFAULT_HOURLY_BUDGET, Pacing, RequestBudget};
use crate::zone::{DEFAULT_DISCOVERY_URL, HostPolicy, ZoneCache, normalise_root};

/// API-user credentials. `Debug` shows the username only; the secret and the integration code
/// are [`Secret`]s and print `***`.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The API-only user's username (email-shaped).
    pub username: String,
    /// That user's secret (`Secret` header).
    pub secret: Secret,
    /// The API tracking identifier (`ApiIntegrationCode` header).
    pub integration_code: Secret,
    /// Optional `ImpersonationResourceId`.
    pub impersonation_resource_id: Option<i64>,
}

impl Credentials {
    /// Credentials without impersonation.
    pub fn new(username: impl Into<String>, secret: impl Into<Secret>, integration_code: impl Into<Secret>) -> Self {
        Self {
            username: username.into(),
            secret: secret.into(),
            integration_code: integration_code.into(),
            impersonation_resource_id: None,
        }
    }

    /// Acts as another resource (`ImpersonationResourceId`).
    pub fn impersonate(mut self, resource_id: i64) -> Self {
        self.impersonation_resource_id = Some(resource_id);
        self
    }
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSource {
    /// Discover the zone from this discovery root (default `https://webservices.autotask.net/atservicesrest`).
    Discover(Url),
    /// Use this REST root directly (simulators, tests, pinned zones).
    BaseUrl(Url),
}

/// How multi-page queries are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PagingMode {
    /// Re-query with `id > last id` (robust and resumable; the default).
    #[default]
    IdKeyset,
    /// POST the same body to each `nextPageUrl`.
    NextPageUrl,
}

/// Resolved configuration (see [`ClientBuilder`]).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Credentials.
    pub credentials: Credentials,
    /// Zone source.
    pub zone: ZoneSource,
    /// Hosts allowed to receive credentials.
    pub hosts: HostPolicy,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Concurrent requests per entity endpoint (clamped to 1..=3).
    pub max_concurrency_per_entity: usize,
    /// Pacing as the budget fills.
    pub pacing: Pacing,
    /// How often the budget is re-synchronised from `ThresholdInformation` (`None`: never).
    pub threshold_refresh: Option<Duration>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Paging mode.
    pub paging: PagingMode,
    /// How long a discovered zone is trusted.
    pub zone_cache_ttl: Duration,
    /// How long the catalog is cached.
    pub catalog_ttl: Duration,
    /// Safety net against runaway paging.
    pub max_pages: usize,
}

/// Builds an [`crate::AutotaskClient`].
#[derive(Debug)]
pub struct ClientBuilder {
    config: ClientConfig,
    base_url: Option<String>,
    discovery_url: Option<String>,
    hourly_budget: u64,
    budget: Option<Arc<RequestBudget>>,
    zones: Option<Arc<ZoneCache>>,
}

impl ClientBuilder {
    pub(crate) fn new(credentials: Credentials) -> Self {
        Self {
            config: ClientConfig {
                credentials,
                // replaced in build()
                zone: ZoneSource::BaseUrl(Url::parse("https://invalid.invalid").unwrap_or_else(|_| unreachable!())),
                hosts: HostPolicy::default(),
                timeout: Duration::from_secs(120),
                connect_timeout: Duration::from_secs(15),
                max_concurrency_per_entity: DEFAULT_CONCURRENCY_PER_ENTITY,
                pacing: Pacing::default(),
                threshold_refresh: Some(Duration::from_secs(300)),
                retry: crate::retry::default_policy(),
                paging: PagingMode::default(),
                zone_cache_ttl: Duration::from_secs(24 * 3600),
                catalog_ttl: Duration::from_secs(15 * 60),
                max_pages: 10_000,
            },
            base_url: None,
            discovery_url: None,
            hourly_budget: DEFAULT_HOURLY_BUDGET,
            budget: None,
            zones: None,
        }
    }

    /// Skips discovery: requests go to `{url}/V1.0/…`; a URL without a path gets
    /// `/ATServicesRest` (`http://127.0.0.1:PORT` → `http://127.0.0.1:PORT/ATServicesRest/V1.0/…`).
    /// Its host is added to the allow-list.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Discovers the zone from this root instead of Autotask's
    /// [`crate::zone::DEFAULT_DISCOVERY_URL`]
    /// (`https://webservices.autotask.net/atservicesrest`; the lookup is
    /// `GET {root}/v1.0/zoneInformation?user=…`). Takes a `&str`, `String` or [`Url`]; a URL
    /// without a path gets `/ATServicesRest`, a trailing `/v1.0` is dropped. The host of an
    /// explicitly configured discovery URL is trusted like a [`Self::base_url`]: a zone answer
    /// pointing back at it (a simulator, a proxy) receives credentials; any other host must
    /// still be an Autotask zone or on the allow-list.
    pub fn discovery_url(mut self, url: impl AsRef<str>) -> Self {
        self.discovery_url = Some(url.as_ref().to_owned());
        self
    }

    /// Allows credentials to go to this exact host (any scheme).
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.config.hosts.extra_hosts.push(host.into());
        self
    }

    /// Whole-request timeout (default 120 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Connect timeout (default 15 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Concurrent requests per entity endpoint (default 2, clamped to 1..=3).
    pub fn max_concurrency_per_entity(mut self, n: usize) -> Self {
        self.config.max_concurrency_per_entity = n;
        self
    }

    /// Hourly budget for a budget this client creates (default 10,000).
    pub fn hourly_budget(mut self, limit: u64) -> Self {
        self.hourly_budget = limit;
        self
    }

    /// Shares a budget with other clients of the same Autotask database.
    pub fn shared_budget(mut self, budget: Arc<RequestBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Shares a zone cache with other clients of the same user (default: the client's own;
    /// clones of a client always share theirs).
    pub fn zone_cache(mut self, cache: Arc<ZoneCache>) -> Self {
        self.zones = Some(cache);
        self
    }

    /// Pacing delays (default 100 ms from 50 %, 500 ms from 75 %).
    pub fn pacing(mut self, pacing: Pacing) -> Self {
        self.config.pacing = pacing;
        self
    }

    /// How often to re-read `ThresholdInformation` (default 5 min; `None`: never).
    pub fn threshold_refresh(mut self, every: Option<Duration>) -> Self {
        self.config.threshold_refresh = every;
        self
    }

    /// Retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Paging mode (default `id > last`).
    pub fn paging(mut self, mode: PagingMode) -> Self {
        self.config.paging = mode;
        self
    }

    /// Zone cache TTL (default 24 h).
    pub fn zone_cache_ttl(mut self, ttl: Duration) -> Self {
        self.config.zone_cache_ttl = ttl;
        self
    }

    /// Catalog cache TTL (default 15 min).
    pub fn catalog_ttl(mut self, ttl: Duration) -> Self {
        self.config.catalog_ttl = ttl;
        self
    }

    /// Most pages one query may follow (default 10,000).
    pub fn max_pages(mut self, n: usize) -> Self {
        self.config.max_pages = n.max(1);
        self
    }

    /// Validates and builds the client.
    pub fn build(mut self) -> Result<crate::AutotaskClient, Error> {
        let c = &self.config.credentials;
        if c.username.trim().is_empty() || c.secret.is_empty() || c.integration_code.is_empty() {
            return Err(Error::InvalidRequest("username, secret and integration code are required".into()));
        }
        self.config.zone = if let Some(base) = &self.base_url {
            let root = normalise_root(base)?;
            if let Some(host) = root.host_str() {
                self.config.hosts.extra_hosts.push(host.to_owned());
            }
            ZoneSource::BaseUrl(root)
        } else {
            let url = match &self.discovery_url {
                Some(raw) => {
                    let url = normalise_root(raw)
                        .map_err(|e| Error::InvalidRequest(format!("bad discovery url {raw:?}: {e}")))?;
                    // configured by the operator, like a base URL: trusted
                    if let Some(host) = url.host_str() {
                        self.config.hosts.extra_hosts.push(host.to_owned());
                    }
                    url
                }
                None => Url::parse(DEFAULT_DISCOVERY_URL).unwrap_or_else(|_| unreachable!("constant url parses")),
            };
            ZoneSource::Discover(url)
        };
        self.config.max_concurrency_per_entity =
            self.config.max_concurrency_per_entity.clamp(1, crate::throttle::MAX_CONCURRENCY_PER_ENTITY);
        let budget = self.budget.unwrap_or_else(|| Arc::new(RequestBudget::new(self.hourly_budget)));
        let zones = self.zones.unwrap_or_default();
        crate::client::AutotaskClient::from_config(self.config, budget, zones)
    }
}
