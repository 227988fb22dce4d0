//! ConnectWise's picklists, board by board, and the core's flat [`Catalog`] made from them.
//!
//! On ConnectWise, statuses, types, subtypes and items belong to a **board**; the core's catalog
//! is flat (one list per field). The mapping (documented in `docs/protocols/connectwise.md`):
//!
//! | Core field | ConnectWise source |
//! |---|---|
//! | `Queue` | `GET /service/boards` (inactive boards flagged inactive) |
//! | `NewStatus`, `ClosedStatus` | `GET /service/boards/{id}/statuses` of every board, one entry per label |
//! | `Priority` | `GET /service/priorities` |
//! | `TicketSource` | `GET /service/sources` (empty when the endpoint is refused) |
//! | `IssueType` | `GET /service/boards/{id}/types`, one entry per label |
//! | `SubIssueType` | `GET /service/boards/{id}/subtypes`, one entry per (label, parent type label); parent from `typeAssociationIds` (none: every type of the board) |
//! | `WorkType` | `GET /service/boards/{id}/items`, one entry per label |
//!
//! Labels are merged across boards: the entry's id is the first board's (in board order), and it
//! is active if the label is active on any board. The sink **retargets** ids to the ticket's own
//! board by label before it sends them ([`BoardCatalog::retarget`]), so a rule's "New" status,
//! "Security" type or "Remote Support" item lands on the board the rule names.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ticketing_core::catalog::{Catalog, PicklistValue};
use ticketing_core::model::PsaId;
use tracing::warn;

use crate::client::ConnectWiseClient;
use crate::error::{Error, ErrorClass};
use crate::models::{Board, BoardItem, BoardStatus, BoardSubType, BoardType, Priority, Source};

/// One board and what belongs to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BoardEntry {
    /// The board.
    pub board: Board,
    /// Its statuses.
    pub statuses: Vec<BoardStatus>,
    /// Its types.
    pub types: Vec<BoardType>,
    /// Its subtypes.
    pub subtypes: Vec<BoardSubType>,
    /// Its items.
    pub items: Vec<BoardItem>,
}

/// Which board-scoped list an id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoardList {
    /// Statuses.
    Status,
    /// Types.
    Type,
    /// Subtypes.
    SubType,
    /// Items.
    Item,
}

/// Everything the sink needs to resolve and retarget ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BoardCatalog {
    /// Boards in the server's order.
    pub boards: Vec<BoardEntry>,
    /// Priorities.
    pub priorities: Vec<Priority>,
    /// Sources.
    pub sources: Vec<Source>,
}

fn merge(out: &mut Vec<PicklistValue>, id: i64, label: &str, active: bool, parent: Option<i64>) {
    if let Some(v) = out.iter_mut().find(|v| v.label.eq_ignore_ascii_case(label) && v.parent.map(|p| p.0) == parent) {
        v.active |= active;
        return;
    }
    out.push(PicklistValue { id: PsaId(id), label: label.to_owned(), active, parent: parent.map(PsaId) });
}

impl BoardCatalog {
    /// A board by id.
    pub fn board(&self, id: i64) -> Option<&BoardEntry> {
        self.boards.iter().find(|b| b.board.id == id)
    }

    fn labels(entry: &BoardEntry, list: BoardList) -> Vec<(i64, &str, bool)> {
        match list {
            BoardList::Status => entry.statuses.iter().map(|s| (s.id, s.name.as_str(), !s.inactive)).collect(),
            BoardList::Type => entry.types.iter().map(|s| (s.id, s.name.as_str(), !s.inactive_flag)).collect(),
            BoardList::SubType => entry.subtypes.iter().map(|s| (s.id, s.name.as_str(), !s.inactive_flag)).collect(),
            BoardList::Item => entry.items.iter().map(|s| (s.id, s.name.as_str(), !s.inactive_flag)).collect(),
        }
    }

    /// The label of an id of `list` on any board.
    pub fn label(&self, list: BoardList, id: i64) -> Option<&str> {
        self.boards.iter().find_map(|b| Self::labels(b, list).into_iter().find(|(i, _, _)| *i == id).map(|(_, l, _)| l))
    }

    /// The id to send for `id` on `board`: `id` itself when it belongs to the board, else the
    /// board's active value with the same label (case-insensitive), else `None`.
    pub fn retarget(&self, list: BoardList, id: i64, board: i64) -> Option<i64> {
        let entry = self.board(board)?;
        let values = Self::labels(entry, list);
        if values.iter().any(|(i, _, _)| *i == id) {
            return Some(id);
        }
        let label = self.label(list, id)?;
        values.iter().find(|(_, l, active)| *active && l.eq_ignore_ascii_case(label)).map(|(i, _, _)| *i)
    }

    /// The closed status to set on a ticket of `board` when `wanted` was asked for: `wanted` if it
    /// is a closed status of the board, else the board's active closed status with `wanted`'s
    /// label, else the board's first active closed status.
    pub fn closed_status_for(&self, wanted: i64, board: i64) -> Option<i64> {
        let entry = self.board(board)?;
        let closed = || entry.statuses.iter().filter(|s| s.closed_status && !s.inactive);
        if entry.statuses.iter().any(|s| s.id == wanted && s.closed_status) {
            return Some(wanted);
        }
        if let Some(label) = self.label(BoardList::Status, wanted)
            && let Some(s) = closed().find(|s| s.name.eq_ignore_ascii_case(label))
        {
            return Some(s.id);
        }
        closed().next().map(|s| s.id)
    }

    /// Whether `status` is a closed status (of any board).
    pub fn is_closed_status(&self, status: i64) -> bool {
        self.boards.iter().flat_map(|b| &b.statuses).any(|s| s.id == status && s.closed_status)
    }

    /// The catalog's id for a status id: the first status (in board order) with the same label,
    /// so that a status read from any board compares equal to the catalog's entry.
    pub fn canonical_status(&self, status: i64) -> i64 {
        let Some(label) = self.label(BoardList::Status, status) else { return status };
        self.boards
            .iter()
            .flat_map(|b| &b.statuses)
            .find(|s| s.name.eq_ignore_ascii_case(label))
            .map_or(status, |s| s.id)
    }

    /// The core's flat catalog (see the module documentation for the mapping).
    pub fn to_catalog(&self) -> Catalog {
        let mut c = Catalog::default();
        for b in &self.boards {
            merge(&mut c.queues, b.board.id, &b.board.name, !b.board.inactive_flag, None);
        }
        for b in &self.boards {
            for s in &b.statuses {
                merge(&mut c.statuses, s.id, &s.name, !s.inactive && !b.board.inactive_flag, None);
            }
            for t in &b.types {
                merge(&mut c.issue_types, t.id, &t.name, !t.inactive_flag, None);
            }
            for i in &b.items {
                merge(&mut c.work_types, i.id, &i.name, !i.inactive_flag, None);
            }
        }
        // parents are the merged type ids, so a sub-issue type's parent is the issue type the core
        // resolves the type's label to
        for b in &self.boards {
            for s in &b.subtypes {
                let parents: Vec<&BoardType> = if s.type_association_ids.is_empty() {
                    b.types.iter().collect()
                } else {
                    b.types.iter().filter(|t| s.type_association_ids.contains(&t.id)).collect()
                };
                let mut seen = HashSet::new();
                for t in parents {
                    let Some(parent) =
                        c.issue_types.iter().find(|v| v.label.eq_ignore_ascii_case(&t.name)).map(|v| v.id.0)
                    else {
                        continue;
                    };
                    if seen.insert(parent) {
                        merge(&mut c.sub_issue_types, s.id, &s.name, !s.inactive_flag, Some(parent));
                    }
                }
            }
        }
        c.priorities = self.priorities.iter().map(|p| PicklistValue::new(p.id, p.name.clone())).collect();
        c.sources = self.sources.iter().map(|s| PicklistValue::new(s.id, s.name.clone())).collect();
        c
    }
}

/// Reads the whole board catalog (boards, then each board's four lists, then priorities and
/// sources). Sources are optional: a 403/404 there gives an empty list.
pub async fn fetch_board_catalog(client: &ConnectWiseClient) -> Result<BoardCatalog, Error> {
    let boards = client.boards().await?;
    let mut entries = Vec::with_capacity(boards.len());
    for board in boards {
        let id = board.id;
        let (statuses, types, subtypes, items) = futures::try_join!(
            client.board_statuses(id),
            client.board_types(id),
            client.board_subtypes(id),
            client.board_items(id),
        )?;
        entries.push(BoardEntry { board, statuses, types, subtypes, items });
    }
    let priorities = client.priorities().await?;
    let sources = match client.sources().await {
        Ok(s) => s,
        Err(e) if matches!(e.class(), ErrorClass::NotFound | ErrorClass::Forbidden) => {
            warn!(error = %e, "connectwise ticket sources not readable; the catalog has none");
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    Ok(BoardCatalog { boards: entries, priorities, sources })
}

/// A TTL cache around the board catalog; one fetch at a time (single flight).
#[derive(Debug)]
pub(crate) struct CatalogCache {
    ttl: Duration,
    state: tokio::sync::Mutex<Option<(Arc<BoardCatalog>, Instant)>>,
}

impl CatalogCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, state: tokio::sync::Mutex::new(None) }
    }

    pub(crate) async fn get(&self, client: &ConnectWiseClient, force: bool) -> Result<Arc<BoardCatalog>, Error> {
        let mut state = self.state.lock().await;
        if !force
            && let Some((catalog, at)) = state.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(catalog));
        }
        let catalog = Arc::new(fetch_board_catalog(client).await?);
        *state = Some((Arc::clone(&catalog), Instant::now()));
        Ok(catalog)
    }
}
