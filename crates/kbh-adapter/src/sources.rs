//! The port implementations: [`EventSource`] and [`StatusSource`] for both Business Hub products.
//!
//! ```text
//!                       ┌─ KbhEventSource::endpoint_cloud ── /companies/{id}/events
//!   KbhClient (shared) ─┼─ KbhEventSource::office365 ─────── /companies/{id}/o365/events
//!                       ├─ KbhStatusSource::endpoint_cloud ─ /companies/{id}/devices
//!                       └─ KbhStatusSource::office365 ────── /companies/{id}/o365/issues
//! ```
//!
//! The event cursor is the decimal `seq` of the last event handled (`"0"`: before the first).
//! `seq` is the service's **arrival order** (assigned when Business Hub stores the event), never
//! the event's own time: a device that was offline delivers its events hours later with their
//! original `occurred_at`, and they still arrive after the cursor (the Security Center adapter
//! once lost such events with a time cursor, `ksc-api.md` §9). The read of a poll is bounded by
//! the cursor (`after_seq`: only new arrivals, one page of at most `limit`) and by
//! `window_start` (`occurred_after`: an event that occurred before it can never become a ticket,
//! so a first poll does not page through old history). Left-out events still move the cursor.
//!
//! The sources keep no position of their own: the daemon stores [`EventBatch::next`] once it
//! has durably handled the batch, and passes it back.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ticketing_core::model::{Product, StatusSnapshot, Tenant, TenantId};
use ticketing_core::ports::{Cursor, EventBatch, EventSource, PortError, StatusSource};

use crate::client::KbhClient;
use crate::error::KbhError;
use crate::tenant::CompanyId;

/// The outcome of one company in a poll of every company: one company's failure never stops
/// the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantResult<T> {
    /// Which company.
    pub tenant: Tenant,
    /// Its result.
    pub result: Result<T, PortError>,
}

/// Reads an event cursor made by this crate (`None`: from the beginning).
pub fn cursor_seq(cursor: Option<&Cursor>) -> Result<u64, KbhError> {
    match cursor {
        None => Ok(0),
        Some(c) => c.0.trim().parse::<u64>().map_err(|_| KbhError::Cursor(c.0.clone())),
    }
}

/// The cursor that stands after event `seq`.
pub fn seq_cursor(seq: u64) -> Cursor {
    Cursor(seq.to_string())
}

async fn tenants_with(client: &KbhClient, product: Product) -> Result<Vec<Tenant>, PortError> {
    let companies = client.companies().await?;
    Ok(companies.iter().filter(|c| c.has(product)).map(|c| c.tenant()).collect())
}

/// Events of one Business Hub product (Endpoint Security Cloud or Office 365), per company.
#[derive(Debug, Clone)]
pub struct KbhEventSource {
    client: KbhClient,
    product: Product,
}

impl KbhEventSource {
    /// Endpoint Security Cloud events (`/api/v1/companies/{id}/events`).
    pub fn endpoint_cloud(client: KbhClient) -> Self {
        Self { client, product: Product::EndpointCloud }
    }

    /// Security for Office 365 events (`/api/v1/companies/{id}/o365/events`).
    pub fn office365(client: KbhClient) -> Self {
        Self { client, product: Product::Office365 }
    }

    /// The shared client.
    pub fn client(&self) -> &KbhClient {
        &self.client
    }

    /// Polls every company that has this product, each from its own cursor in `cursors`
    /// (missing: from the beginning). Fails only if the company list cannot be read.
    pub async fn poll_all(
        &self,
        cursors: &HashMap<TenantId, Cursor>,
        limit: usize,
        window_start: Option<DateTime<Utc>>,
    ) -> Result<Vec<TenantResult<EventBatch>>, PortError> {
        let tenants = self.tenants().await?;
        let mut out = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let result = self.poll_events(&tenant.id, cursors.get(&tenant.id), limit, window_start).await;
            if let Err(e) = &result {
                tracing::warn!(tenant = %tenant.id, product = %self.product.code(), error = %e, "business hub event poll failed");
            }
            out.push(TenantResult { tenant, result });
        }
        Ok(out)
    }
}

#[async_trait]
impl EventSource for KbhEventSource {
    fn product(&self) -> Product {
        self.product
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, PortError> {
        tenants_with(&self.client, self.product).await
    }

    async fn poll_events(
        &self,
        tenant: &TenantId,
        cursor: Option<&Cursor>,
        limit: usize,
        window_start: Option<DateTime<Utc>>,
    ) -> Result<EventBatch, PortError> {
        let company = CompanyId::from_tenant(tenant)?;
        let after = cursor_seq(cursor)?;
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let page = match self.product {
            Product::Office365 => self.client.o365_events(&company, after, limit, window_start).await?,
            _ => self.client.events(&company, after, limit, window_start).await?,
        };
        Ok(EventBatch {
            events: page.events,
            malformed: page.malformed,
            next: seq_cursor(page.last_seq.unwrap_or(after).max(after)),
            more: page.more,
        })
    }
}

/// Conditions of one Business Hub product per company: device statuses (Endpoint Security
/// Cloud) or the resolvable issues (Office 365, `devices` empty).
#[derive(Debug, Clone)]
pub struct KbhStatusSource {
    client: KbhClient,
    product: Product,
}

impl KbhStatusSource {
    /// Endpoint Security Cloud device statuses (`/api/v1/companies/{id}/devices`).
    pub fn endpoint_cloud(client: KbhClient) -> Self {
        Self { client, product: Product::EndpointCloud }
    }

    /// Office 365 issue states, the resolved signal (`/api/v1/companies/{id}/o365/issues`).
    pub fn office365(client: KbhClient) -> Self {
        Self { client, product: Product::Office365 }
    }

    /// The shared client.
    pub fn client(&self) -> &KbhClient {
        &self.client
    }

    /// Snapshots every company that has this product. Fails only if the company list cannot be
    /// read.
    pub async fn snapshot_all(&self) -> Result<Vec<TenantResult<StatusSnapshot>>, PortError> {
        let tenants = self.tenants().await?;
        let mut out = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let result = self.snapshot(&tenant.id).await;
            if let Err(e) = &result {
                tracing::warn!(tenant = %tenant.id, product = %self.product.code(), error = %e, "business hub snapshot failed");
            }
            out.push(TenantResult { tenant, result });
        }
        Ok(out)
    }
}

#[async_trait]
impl StatusSource for KbhStatusSource {
    fn product(&self) -> Product {
        self.product
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, PortError> {
        tenants_with(&self.client, self.product).await
    }

    /// A complete snapshot. An unreadable device record fails the snapshot (leaving it out
    /// would close its tickets).
    async fn snapshot(&self, tenant: &TenantId) -> Result<StatusSnapshot, PortError> {
        let company = CompanyId::from_tenant(tenant)?;
        match self.product {
            Product::Office365 => {
                let list = self.client.o365_issues(&company).await?;
                Ok(StatusSnapshot {
                    tenant: tenant.clone(),
                    product: Product::Office365,
                    devices: Vec::new(),
                    issues: list.issues,
                    unknown_descriptions: 0,
                })
            }
            _ => {
                let list = self.client.devices(&company).await?;
                if let Some(bad) = list.malformed.first() {
                    return Err(
                        KbhError::Malformed { what: "device", id: bad.id.clone(), reason: bad.reason.clone() }.into()
                    );
                }
                Ok(StatusSnapshot {
                    tenant: tenant.clone(),
                    product: Product::EndpointCloud,
                    devices: list.devices.into_iter().map(|d| d.status).collect(),
                    issues: Vec::new(),
                    unknown_descriptions: list.unknown_descriptions,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors() {
        assert_eq!(cursor_seq(None).unwrap(), 0);
        assert_eq!(cursor_seq(Some(&seq_cursor(1043))).unwrap(), 1043);
        assert!(matches!(cursor_seq(Some(&Cursor("abc".into()))), Err(KbhError::Cursor(_))));
        assert!(matches!(cursor_seq(Some(&Cursor("-1".into()))), Err(KbhError::Cursor(_))));
    }
}
