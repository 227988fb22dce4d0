//! Credentials and client configuration (builder).

use std::time::Duration;

use ticketing_core::retry::RetryPolicy;
use ticketing_core::secret::Secret;
use url::Url;

use crate::error::Error;

/// The scope asked for by default (halopsa-api.md, verified: `scope=all`).
pub const DEFAULT_SCOPE: &str = "all";

/// Requests per window the client allows itself by default (halopsa-api.md, modelled: Halo
/// publishes no limit; one public client assumes 500 requests per 3 minutes).
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit { requests: 500, window: Duration::from_secs(180) };

/// An API application's client credentials (Halo: Configuration → Integrations → Halo API, a
/// "Client ID and Secret (Services)" application). `Debug` shows the client id and tenant; the
/// secret is a [`Secret`] and prints `***`.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The application's client id.
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: Secret,
    /// The tenant of a hosted instance (`?tenant=NAME` on the token request); `None` on
    /// premises.
    pub tenant: Option<String>,
    /// The scope asked for ([`DEFAULT_SCOPE`]).
    pub scope: String,
}

impl Credentials {
    /// Credentials with scope `all` and no tenant.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            tenant: None,
            scope: DEFAULT_SCOPE.to_owned(),
        }
    }

    /// Sets the tenant of a hosted instance.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into()).filter(|t: &String| !t.trim().is_empty());
        self
    }

    /// Sets the scope (space-separated, as OAuth2 spells it).
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }
}

/// A client-side request budget: at most `requests` requests (token requests included) in any
/// `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per window (at least 1).
    pub requests: u32,
    /// The sliding window.
    pub window: Duration,
}

/// Resolved configuration (see [`ClientBuilder`]).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Credentials.
    pub credentials: Credentials,
    /// The resource server root, ending in `/api/`.
    pub api_root: Url,
    /// The token endpoint (`{auth}/token`, with `?tenant=` when one is set).
    pub token_url: Url,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Concurrent requests.
    pub max_concurrency: usize,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Client-side request budget (`None`: unlimited).
    pub rate_limit: Option<RateLimit>,
    /// Rows per page of list calls (`page_size`).
    pub page_size: u32,
    /// Safety net against runaway paging.
    pub max_pages: usize,
    /// How long the catalog is cached.
    pub catalog_ttl: Duration,
    /// A token is renewed this long before its `expires_in` passes.
    pub token_refresh_margin: Duration,
}

/// Builds a [`crate::HaloClient`].
#[derive(Debug)]
pub struct ClientBuilder {
    credentials: Credentials,
    base_url: Option<String>,
    auth_url: Option<String>,
    api_url: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    max_concurrency: usize,
    retry: RetryPolicy,
    rate_limit: Option<RateLimit>,
    page_size: u32,
    max_pages: usize,
    catalog_ttl: Duration,
    token_refresh_margin: Duration,
}

impl ClientBuilder {
    pub(crate) fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            base_url: None,
            auth_url: None,
            api_url: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            max_concurrency: 4,
            retry: RetryPolicy::standard(Duration::from_secs(180)),
            rate_limit: Some(DEFAULT_RATE_LIMIT),
            page_size: 100,
            max_pages: 10_000,
            catalog_ttl: Duration::from_secs(15 * 60),
            token_refresh_margin: Duration::from_secs(60),
        }
    }

    /// The instance's URL (`https://example.halopsa.com`): the resource server is `{base}/api`,
    /// the authorisation server `{base}/auth`. `https://` is assumed without a scheme.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The authorisation server, when it is not `{base}/auth` (Halo shows it under
    /// Configuration → Integrations → Halo API); the token endpoint is `{auth_url}/token`.
    pub fn auth_url(mut self, url: impl Into<String>) -> Self {
        self.auth_url = Some(url.into());
        self
    }

    /// The resource server, when it is not `{base}/api`.
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(url.into());
        self
    }

    /// Whole-request timeout (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connect timeout (default 15 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Concurrent requests (default 4, at least 1).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Retry policy (default: 4 attempts, a `Retry-After` waited out up to 3 minutes).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The client-side request budget (default [`DEFAULT_RATE_LIMIT`]); `None` turns it off.
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Rows per page (default 100, clamped to 1..=1000).
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = n.clamp(1, 1000);
        self
    }

    /// Most pages one list may follow (default 10,000).
    pub fn max_pages(mut self, n: usize) -> Self {
        self.max_pages = n.max(1);
        self
    }

    /// Catalog cache TTL (default 15 min).
    pub fn catalog_ttl(mut self, ttl: Duration) -> Self {
        self.catalog_ttl = ttl;
        self
    }

    /// How long before expiry a token is renewed (default 60 s; at most half its lifetime).
    pub fn token_refresh_margin(mut self, margin: Duration) -> Self {
        self.token_refresh_margin = margin;
        self
    }

    /// Validates and builds the client. Errors name the setting.
    pub fn build(self) -> Result<crate::HaloClient, Error> {
        let c = &self.credentials;
        if c.client_id.trim().is_empty() {
            return Err(Error::InvalidRequest("client_id is empty (expected the API application's client id)".into()));
        }
        if c.client_secret.is_empty() {
            return Err(Error::InvalidRequest("client_secret is empty".into()));
        }
        if c.scope.trim().is_empty() {
            return Err(Error::InvalidRequest("scope is empty (expected \"all\" or a list of scopes)".into()));
        }
        if let Some(r) = self.rate_limit
            && (r.requests == 0 || r.window.is_zero())
        {
            return Err(Error::InvalidRequest("rate_limit needs at least one request in a non-empty window".into()));
        }
        let base = self.base_url.as_deref().map(|b| root_url("base_url", b).map(instance_root)).transpose()?;
        let api_root = match (&self.api_url, &base) {
            (Some(a), _) => root_url("api_url", a)?,
            (None, Some(b)) => join_dir(b, "api"),
            (None, None) => {
                return Err(Error::InvalidRequest("base_url is missing (expected the instance's url)".into()));
            }
        };
        let auth_root = match (&self.auth_url, &base) {
            (Some(a), _) => root_url("auth_url", a)?,
            (None, Some(b)) => join_dir(b, "auth"),
            (None, None) => {
                return Err(Error::InvalidRequest("base_url is missing (expected the instance's url)".into()));
            }
        };
        let mut token_url = join_dir(&auth_root, "token");
        let path = token_url.path().trim_end_matches('/').to_owned();
        token_url.set_path(&path);
        if let Some(t) = &c.tenant {
            token_url.query_pairs_mut().append_pair("tenant", t.trim());
        }
        let config = ClientConfig {
            credentials: self.credentials,
            api_root,
            token_url,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            max_concurrency: self.max_concurrency,
            retry: self.retry,
            rate_limit: self.rate_limit,
            page_size: self.page_size,
            max_pages: self.max_pages,
            catalog_ttl: self.catalog_ttl,
            token_refresh_margin: self.token_refresh_margin,
        };
        crate::client::HaloClient::from_config(config)
    }
}

/// Parses a root URL for setting `what`: a scheme is assumed (`https://`), credentials, query
/// and fragment are refused or dropped; the path ends in `/`.
pub fn root_url(what: &str, raw: &str) -> Result<Url, Error> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("https://{raw}") };
    let mut url = Url::parse(&with_scheme).map_err(|e| Error::InvalidRequest(format!("{what} {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::InvalidRequest(format!("{what} {raw:?}: expected http(s) with a host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::InvalidRequest(format!("{what} must not carry credentials")));
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

/// `{root}{segment}/`.
fn join_dir(root: &Url, segment: &str) -> Url {
    let mut url = root.clone();
    url.set_path(&format!("{}/{segment}/", root.path().trim_end_matches('/')));
    url
}

/// The instance root for a base URL: a trailing `/api` (the resource server pasted as the
/// base) is dropped, so `{base}/api` and `{base}/auth` come out right either way.
fn instance_root(mut url: Url) -> Url {
    let trimmed = url.path().trim_end_matches('/').to_owned();
    if let Some(stripped) = trimmed.strip_suffix("/api").or_else(|| trimmed.strip_suffix("/API")) {
        url.set_path(&format!("{stripped}/"));
    }
    url
}
