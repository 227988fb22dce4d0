//! [`KscSource`]: the port implementations ([`EventSource`], [`StatusSource`]) over a
//! [`KscClient`].

use std::collections::HashMap;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::json;
use ticketing_core::model::{Product, StatusSnapshot, Tenant, TenantId};
use ticketing_core::ports::{Cursor, EventBatch, EventSource, PortError, StatusSource};
use tokio::sync::RwLock;

use crate::client::{KscClient, malformed};
use crate::config::KscConfig;
use crate::error::KscError;
use crate::events::{PollOptions, poll};
use crate::hosts::{find_hosts, into_host_status};
use crate::known::KnownHosts;
use crate::masks::MaskStore;
use crate::subscription::{Step, Subscriptions};
use crate::tenant::{MAIN_SERVER, parse_tenant_id, tenant_id};
use crate::value::Value;

/// A virtual server as `VServers.GetVServers` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VServer {
    /// `KLVSRV_ID`.
    pub id: i64,
    /// `KLVSRV_DN`: display name, also the `X-KSC-VServer` login scope.
    pub name: String,
    /// `KLVSRV_UID`, when given.
    pub uid: Option<String>,
    /// `KLVSRV_ENABLED`, when given.
    pub enabled: Option<bool>,
}

/// Security Center as a source of events and computer statuses, one tenant per virtual
/// server (and the main server, when configured).
///
/// ```no_run
/// # async fn demo() -> Result<(), ksc_adapter::KscError> {
/// use std::sync::Arc;
/// use ksc_adapter::{KscConfig, KscSource};
/// use ticketing_core::ports::{EventSource, StatusSource};
/// use ticketing_core::secret::Secret;
///
/// let config = KscConfig::new("https://ksc.example.net:13299", "ksc-admin", Secret::new("..."));
/// let ksc = Arc::new(KscSource::new(config)?);
/// let events: Arc<dyn EventSource> = ksc.clone();
/// let statuses: Arc<dyn StatusSource> = ksc.clone();
/// // ... the daemon polls, then on shutdown:
/// ksc.logout_all().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct KscSource {
    client: KscClient,
    config: KscConfig,
    /// Virtual-server id → display name, refreshed when an id is not known.
    names: RwLock<HashMap<i64, String>>,
    /// Group masks across snapshots ([`KscConfig::group_masks_ttl`]).
    masks: MaskStore,
    /// Event subscriptions per virtual server ([`KscConfig::events_subscription`]).
    subscriptions: Subscriptions,
    /// Hosts last read as not OK, per virtual server ([`KscConfig::host_search`]).
    known: KnownHosts,
}

impl KscSource {
    /// Builds the source; makes no request.
    pub fn new(config: KscConfig) -> Result<Self, KscError> {
        Ok(Self {
            client: KscClient::new(&config)?,
            masks: MaskStore::new(config.group_masks_ttl),
            subscriptions: Subscriptions::default(),
            known: KnownHosts::default(),
            config,
            names: RwLock::new(HashMap::new()),
        })
    }

    /// The underlying client.
    pub fn client(&self) -> &KscClient {
        &self.client
    }

    /// The configuration in use.
    pub fn config(&self) -> &KscConfig {
        &self.config
    }

    /// `VServers.GetVServers {"lParentGroup": -1}` on the main server.
    pub async fn virtual_servers(&self) -> Result<Vec<VServer>, KscError> {
        const METHOD: &str = "VServers.GetVServers";
        let reply = self.client.call("", METHOD, &json!({"lParentGroup": -1})).await?;
        let list = match reply.retval(METHOD)? {
            Value::Null => &[][..],
            v => v.as_array().ok_or_else(|| malformed(METHOD, "PxgRetVal is not an array"))?,
        };
        let mut out = Vec::with_capacity(list.len());
        for item in list {
            let p = item.as_params().ok_or_else(|| malformed(METHOD, "item is not a container"))?;
            let id =
                p.get("KLVSRV_ID").and_then(Value::as_i64).ok_or_else(|| malformed(METHOD, "KLVSRV_ID missing"))?;
            let name = p
                .get("KLVSRV_DN")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed(METHOD, format!("KLVSRV_DN of {id} missing")))?
                .to_owned();
            out.push(VServer {
                id,
                name,
                uid: p.get("KLVSRV_UID").and_then(Value::as_str).map(str::to_owned),
                enabled: p.get("KLVSRV_ENABLED").and_then(Value::as_bool),
            });
        }
        *self.names.write().await = out.iter().map(|v| (v.id, v.name.clone())).collect();
        Ok(out)
    }

    /// The tenants: the main server (when configured) and every virtual server.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, KscError> {
        let label = &self.config.server_label;
        let mut tenants = Vec::new();
        if self.config.include_main_server {
            tenants.push(Tenant { id: tenant_id(label, MAIN_SERVER), name: format!("{label} (main server)") });
        }
        for vs in self.virtual_servers().await? {
            tenants.push(Tenant { id: tenant_id(label, vs.id), name: vs.name });
        }
        Ok(tenants)
    }

    /// The login scope (`X-KSC-VServer` display name) of a tenant.
    pub async fn vserver_name(&self, tenant: &TenantId) -> Result<String, KscError> {
        let Some((label, id)) = parse_tenant_id(tenant) else {
            return Err(KscError::UnknownTenant(tenant.to_string()));
        };
        if label != self.config.server_label {
            return Err(KscError::UnknownTenant(tenant.to_string()));
        }
        if id == MAIN_SERVER {
            return Ok(String::new());
        }
        if let Some(name) = self.names.read().await.get(&id) {
            return Ok(name.clone());
        }
        self.virtual_servers()
            .await?
            .into_iter()
            .find(|v| v.id == id)
            .map(|v| v.name)
            .ok_or_else(|| KscError::UnknownTenant(tenant.to_string()))
    }

    /// Events of a tenant after `cursor`, at most `limit` (see [`EventSource::poll_events`]).
    pub async fn events(
        &self,
        tenant: &TenantId,
        cursor: Option<&Cursor>,
        limit: usize,
        window_start: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<EventBatch, KscError> {
        let vserver = self.vserver_name(tenant).await?;
        let initial_since = self
            .config
            .initial_lookback
            .map(|back| chrono::Utc::now() - chrono::Duration::from_std(back).unwrap_or(chrono::Duration::zero()));
        let opts = PollOptions {
            page_size: self.config.event_page_size,
            overlap: self.config.event_overlap,
            initial_since,
            window_start,
            lifetime: self.config.event_iterator_lifetime,
            severities: &self.config.severities,
        };
        if !self.config.events_subscription {
            return poll(&self.client, &vserver, tenant, cursor, limit, &opts).await;
        }
        let subs = &self.subscriptions;
        let caller = cursor.cloned().unwrap_or_else(|| Cursor(String::new()));
        let step = subs.step(&vserver, &caller, Instant::now(), self.config.events_rescan);
        let scan = match step {
            Step::Idle => false,
            Step::Scan => true,
            Step::Retrieve => match subs.retrieve(&self.client, &vserver).await {
                Ok(queued) => queued,
                Err(_) => {
                    self.resubscribe(&vserver).await;
                    true
                }
            },
            Step::Subscribe => {
                self.resubscribe(&vserver).await;
                true
            }
        };
        if !scan {
            return Ok(EventBatch { events: Vec::new(), malformed: Vec::new(), next: caller, more: false });
        }
        let started = Instant::now();
        let batch = poll(&self.client, &vserver, tenant, cursor, limit, &opts).await?;
        subs.scanned(&vserver, started, &batch);
        Ok(batch)
    }

    /// Makes the event subscription of a virtual server again (before the scan that catches
    /// up). When the server refuses, the poll goes on as a plain scan and the next one tries
    /// again.
    async fn resubscribe(&self, vserver: &str) {
        self.subscriptions.forget(vserver);
        if let Err(e) =
            self.subscriptions.subscribe(&self.client, vserver, &self.config.events_subscription_event).await
        {
            tracing::warn!(vserver, error = %e, "security center event subscription refused; scanning by cursor");
        }
    }

    /// The status snapshot of a tenant (see [`StatusSource::snapshot`]): every host that is
    /// not OK, and with [`HostSearch::Problems`](crate::HostSearch::Problems) the OK ones only
    /// in the first snapshot or when they were read as not OK lately (see [`crate::known`]).
    pub async fn statuses(&self, tenant: &TenantId) -> Result<StatusSnapshot, KscError> {
        let vserver = self.vserver_name(tenant).await?;
        let c = &self.config;
        let search = self.known.search(&vserver, c.host_search, &c.host_filter);
        let hosts =
            find_hosts(&self.client, &vserver, &search.filter, c.host_chunk_size, c.host_accessor_lifetime).await?;
        let mut masks = self.masks.for_snapshot(&self.client, &vserver, c.level_source);
        let mut devices = Vec::with_capacity(hosts.len());
        let mut unknown_descriptions = 0;
        for host in hosts {
            let group = if host.status == ticketing_core::model::ComputerStatus::Ok { None } else { host.group_id };
            let m = masks.get(group).await?;
            let (status, unknown) = into_host_status(host, m, &c.level_overrides);
            unknown_descriptions += unknown;
            devices.push(status);
        }
        self.known.settle(&vserver, &search, &mut devices);
        Ok(StatusSnapshot {
            tenant: tenant.clone(),
            product: Product::SecurityCenter,
            devices,
            issues: Vec::new(),
            unknown_descriptions,
        })
    }

    /// Ends every open session (`Session.EndSession`); call on shutdown.
    pub async fn logout_all(&self) -> Result<(), KscError> {
        self.client.logout_all().await
    }
}

#[async_trait]
impl EventSource for KscSource {
    fn product(&self) -> Product {
        Product::SecurityCenter
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, PortError> {
        Ok(self.list_tenants().await?)
    }

    async fn poll_events(
        &self,
        tenant: &TenantId,
        cursor: Option<&Cursor>,
        limit: usize,
        window_start: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<EventBatch, PortError> {
        Ok(self.events(tenant, cursor, limit, window_start).await?)
    }
}

#[async_trait]
impl StatusSource for KscSource {
    fn product(&self) -> Product {
        Product::SecurityCenter
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, PortError> {
        Ok(self.list_tenants().await?)
    }

    async fn snapshot(&self, tenant: &TenantId) -> Result<StatusSnapshot, PortError> {
        Ok(self.statuses(tenant).await?)
    }
}
