//! Credentials and client configuration (builder).

use std::time::Duration;

use ticketing_core::secret::Secret;
use url::Url;

use crate::error::Error;
use crate::retry::RetryPolicy;

/// The API version pinned in `Accept` (connectwise-api.md, verified:
/// `application/vnd.connectwise.com+json; version=2025.1`).
pub const DEFAULT_API_VERSION: &str = "2025.1";

/// The codebase used when discovery is skipped and the base URL has no path (connectwise-api.md:
/// `v4_6_release/` works as a generic codebase).
pub const DEFAULT_CODEBASE: &str = "v4_6_release/";

/// The project's default `clientId` (an integration id, not a customer secret; operators may
/// register their own at developer.connectwise.com and override it).
pub const DEFAULT_CLIENT_ID: &str = "6c9f3b2a-7d41-4e0b-9a58-2f1c7e4d8b90";

/// API member credentials. `Debug` shows the company id and public key only; the private key is
/// a [`Secret`] and prints `***`.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The company id used at login (`Authorization: Basic base64("{company}+{public}:{private}")`).
    pub company_id: String,
    /// The API member's public key.
    pub public_key: String,
    /// The API member's private key.
    pub private_key: Secret,
    /// The integration's `clientId` header.
    pub client_id: String,
}

impl Credentials {
    /// Credentials with the project's default `clientId`.
    pub fn new(company_id: impl Into<String>, public_key: impl Into<String>, private_key: impl Into<Secret>) -> Self {
        Self {
            company_id: company_id.into(),
            public_key: public_key.into(),
            private_key: private_key.into(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
        }
    }

    /// Overrides the `clientId`.
    #[must_use]
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRoot {
    /// Discover the codebase at `{site}/login/companyinfo/{company}` (no credentials), then send
    /// to `{api host}/{codebase}apis/3.0/`.
    Discover {
        /// The site (`https://na.myconnectwise.net`).
        site: Url,
        /// The API host to use instead of the one derived from the answer.
        api_host: Option<String>,
    },
    /// Use this API root directly (`…/apis/3.0/`): simulators, on-premises, pinned codebases.
    BaseUrl(Url),
}

/// How multi-page lists are followed (connectwise-api.md, verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PagingMode {
    /// `pagination-type: forward-only` with `pageId` (acts as `id > pageId`, no `orderBy`): does
    /// not skip or repeat rows when records are created while paging. The default.
    #[default]
    ForwardOnly,
    /// `page=N&pageSize=S` following the `Link` header's `rel="next"`.
    Numbered,
}

/// Resolved configuration (see [`ClientBuilder`]).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Credentials.
    pub credentials: Credentials,
    /// API root.
    pub root: ApiRoot,
    /// The version in `Accept`.
    pub api_version: String,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Concurrent requests (all endpoints).
    pub max_concurrency: usize,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Paging mode.
    pub paging: PagingMode,
    /// Rows per page (1..=1000).
    pub page_size: u32,
    /// Safety net against runaway paging.
    pub max_pages: usize,
    /// How long the catalog is cached.
    pub catalog_ttl: Duration,
    /// Conditions longer than this go through `POST …/search` instead of the query string
    /// (connectwise-api.md: keep URLs under ~2,000 characters).
    pub max_condition_len: usize,
}

/// Builds a [`crate::ConnectWiseClient`].
#[derive(Debug)]
pub struct ClientBuilder {
    config: ClientConfig,
    base_url: Option<String>,
    site: Option<String>,
    api_host: Option<String>,
}

impl ClientBuilder {
    pub(crate) fn new(credentials: Credentials) -> Self {
        Self {
            config: ClientConfig {
                credentials,
                // replaced in build()
                root: ApiRoot::BaseUrl(Url::parse("https://invalid.invalid/").unwrap_or_else(|_| unreachable!())),
                api_version: DEFAULT_API_VERSION.to_owned(),
                timeout: Duration::from_secs(60),
                connect_timeout: Duration::from_secs(15),
                max_concurrency: 4,
                retry: crate::retry::default_policy(),
                paging: PagingMode::default(),
                page_size: 500,
                max_pages: 10_000,
                catalog_ttl: Duration::from_secs(15 * 60),
                max_condition_len: 1500,
            },
            base_url: None,
            site: None,
            api_host: None,
        }
    }

    /// The ConnectWise site to discover the codebase from (`na.myconnectwise.net`,
    /// `https://eu.myconnectwise.net`, an on-premises host). `https://` is assumed without a scheme.
    pub fn site(mut self, site: impl Into<String>) -> Self {
        self.site = Some(site.into());
        self
    }

    /// The API host after discovery (default: `api-{region}.myconnectwise.net` for cloud sites,
    /// `api-staging.connectwisedev.com` for staging, else the site's host).
    pub fn api_host(mut self, host: impl Into<String>) -> Self {
        self.api_host = Some(host.into());
        self
    }

    /// Skips discovery. A URL without a path gets `/v4_6_release/apis/3.0/`; one ending in
    /// `apis/3.0` is used as is; any other path gets `apis/3.0/` appended (it is the codebase).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The API version in `Accept` (default [`DEFAULT_API_VERSION`]).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.config.api_version = version.into();
        self
    }

    /// Whole-request timeout (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// Connect timeout (default 15 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Concurrent requests (default 4, at least 1).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.config.max_concurrency = n.max(1);
        self
    }

    /// Retry policy.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Paging mode (default forward-only).
    pub fn paging(mut self, mode: PagingMode) -> Self {
        self.config.paging = mode;
        self
    }

    /// Rows per page (default 500, clamped to 1..=1000).
    pub fn page_size(mut self, n: u32) -> Self {
        self.config.page_size = n.clamp(1, crate::client::MAX_PAGE_SIZE);
        self
    }

    /// Most pages one list may follow (default 10,000).
    pub fn max_pages(mut self, n: usize) -> Self {
        self.config.max_pages = n.max(1);
        self
    }

    /// Catalog cache TTL (default 15 min).
    pub fn catalog_ttl(mut self, ttl: Duration) -> Self {
        self.config.catalog_ttl = ttl;
        self
    }

    /// Conditions longer than this are sent with `POST …/search` (default 1500 characters).
    pub fn max_condition_len(mut self, n: usize) -> Self {
        self.config.max_condition_len = n;
        self
    }

    /// Validates and builds the client.
    pub fn build(mut self) -> Result<crate::ConnectWiseClient, Error> {
        let c = &self.config.credentials;
        if c.company_id.trim().is_empty() || c.public_key.trim().is_empty() || c.private_key.is_empty() {
            return Err(Error::InvalidRequest("company id, public key and private key are required".into()));
        }
        if c.client_id.trim().is_empty() {
            return Err(Error::InvalidRequest("clientId is required".into()));
        }
        if c.company_id.contains(['+', ':']) || c.public_key.contains(':') {
            return Err(Error::InvalidRequest(
                "company id and public key cannot contain ':' (or '+' in the company)".into(),
            ));
        }
        self.config.root = match (&self.base_url, &self.site) {
            (Some(base), _) => ApiRoot::BaseUrl(normalise_base(base)?),
            (None, Some(site)) => ApiRoot::Discover { site: normalise_site(site)?, api_host: self.api_host.clone() },
            (None, None) => return Err(Error::InvalidRequest("a site or a base url is required".into())),
        };
        crate::client::ConnectWiseClient::from_config(self.config)
    }
}

fn parse_with_scheme(raw: &str) -> Result<Url, Error> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") { raw.to_owned() } else { format!("https://{raw}") };
    let url = Url::parse(&with_scheme).map_err(|e| Error::InvalidRequest(format!("bad url {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::InvalidRequest(format!("bad url {raw:?}: http(s) with a host expected")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::InvalidRequest("urls must not carry credentials".into()));
    }
    Ok(url)
}

/// The site root (`https://host[:port]/`).
pub fn normalise_site(raw: &str) -> Result<Url, Error> {
    let mut url = parse_with_scheme(raw)?;
    url.set_path("/");
    url.set_query(None);
    Ok(url)
}

/// An API root ending in `/apis/3.0/` (see [`ClientBuilder::base_url`]).
pub fn normalise_base(raw: &str) -> Result<Url, Error> {
    let mut url = parse_with_scheme(raw)?;
    url.set_query(None);
    let path = url.path().trim_matches('/').to_owned();
    let path = if path.is_empty() {
        format!("/{DEFAULT_CODEBASE}apis/3.0/")
    } else if path.to_ascii_lowercase().ends_with("apis/3.0") {
        format!("/{path}/")
    } else {
        format!("/{path}/apis/3.0/")
    };
    url.set_path(&path);
    Ok(url)
}

/// The API host for a site host (a pure function): `na.myconnectwise.net` →
/// `api-na.myconnectwise.net`, `staging.connectwisedev.com` → `api-staging.connectwisedev.com`,
/// an `api-…` host or anything else (on-premises, loopback) stays as it is.
pub fn api_host_for(site_host: &str) -> String {
    let h = site_host.to_ascii_lowercase();
    if h.starts_with("api-") {
        return h;
    }
    for cloud in [".myconnectwise.net", ".connectwisedev.com"] {
        if let Some(region) = h.strip_suffix(cloud)
            && !region.is_empty()
            && !region.contains('.')
        {
            return format!("api-{region}{cloud}");
        }
    }
    h
}
