//! Halo's picklists and the core's flat [`Catalog`] made from them.
//!
//! | Core field | Halo source |
//! |---|---|
//! | `Queue` | `GET /api/Team` (`inactive` teams flagged inactive); tickets carry `team` (the name) and `team_id` |
//! | `NewStatus`, `ClosedStatus` | `GET /api/Status`; tickets carry `status_id` |
//! | `Priority` | `GET /api/Priority`, one entry per `priorityid` (the first name wins; a setting keeps one SLA's); tickets carry `priority_id` |
//! | `IssueType` | `GET /api/TicketType`; tickets carry `tickettype_id` |
//! | `TicketSource`, `WorkType`, `SubIssueType` | none: Halo has no field this client fills for them (the lists stay empty) |

use std::sync::Arc;
use std::time::{Duration, Instant};

use ticketing_core::catalog::{Catalog, PicklistValue};
use ticketing_core::model::PsaId;

use crate::client::HaloClient;
use crate::error::Error;
use crate::models::{Named, Priority};

/// Everything the sink needs to resolve ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HaloCatalog {
    /// Teams.
    pub teams: Vec<Named>,
    /// Statuses.
    pub statuses: Vec<Named>,
    /// Ticket types.
    pub ticket_types: Vec<Named>,
    /// Priorities of every SLA.
    pub priorities: Vec<Priority>,
}

fn values(rows: &[Named]) -> Vec<PicklistValue> {
    rows.iter()
        .filter_map(|r| {
            Some(PicklistValue {
                id: PsaId(r.id?),
                label: r.name.clone()?,
                active: !r.inactive.unwrap_or(false),
                parent: None,
            })
        })
        .collect()
}

impl HaloCatalog {
    /// A team by id.
    pub fn team(&self, id: i64) -> Option<&Named> {
        self.teams.iter().find(|t| t.id == Some(id))
    }

    /// The core's flat catalog (see the module documentation). With `sla`, only that SLA's
    /// priorities are offered.
    pub fn to_catalog(&self, sla: Option<i64>) -> Catalog {
        let mut priorities: Vec<PicklistValue> = Vec::new();
        for p in &self.priorities {
            if sla.is_some_and(|s| p.slaid != Some(s)) || p.ishidden.unwrap_or(false) {
                continue;
            }
            let (Some(id), Some(name)) = (p.priorityid, p.name.as_deref()) else { continue };
            if !priorities.iter().any(|v| v.id.0 == id) {
                priorities.push(PicklistValue::new(id, name.to_owned()));
            }
        }
        Catalog {
            statuses: values(&self.statuses),
            priorities,
            queues: values(&self.teams),
            sources: Vec::new(),
            work_types: Vec::new(),
            issue_types: values(&self.ticket_types),
            sub_issue_types: Vec::new(),
        }
    }
}

/// Reads the whole catalog.
pub async fn fetch_catalog(client: &HaloClient) -> Result<HaloCatalog, Error> {
    let (teams, statuses, ticket_types, priorities) =
        futures::try_join!(client.teams(), client.statuses(), client.ticket_types(), client.priorities())?;
    Ok(HaloCatalog { teams, statuses, ticket_types, priorities })
}

/// A TTL cache around the catalog; one fetch at a time (single flight).
#[derive(Debug)]
pub(crate) struct CatalogCache {
    ttl: Duration,
    state: tokio::sync::Mutex<Option<(Arc<HaloCatalog>, Instant)>>,
}

impl CatalogCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, state: tokio::sync::Mutex::new(None) }
    }

    pub(crate) async fn get(&self, client: &HaloClient, force: bool) -> Result<Arc<HaloCatalog>, Error> {
        let mut state = self.state.lock().await;
        if !force
            && let Some((catalog, at)) = state.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(catalog));
        }
        let catalog = Arc::new(fetch_catalog(client).await?);
        *state = Some((Arc::clone(&catalog), Instant::now()));
        Ok(catalog)
    }
}
