//! The guide's rule editing as operations on the daemon's shared state: every front end (the
//! `rules` CLI, the admin API, the web UI) calls these, so each behaves the same way and every
//! change is persisted before it is acknowledged.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use ticketing_core::catalog::{Catalog, Field};
use ticketing_core::decide::{Context, EventDecision, SkipReason, decide_event};
use ticketing_core::edit::{GeneralPatch, RuleBook, RulePatch};
use ticketing_core::ledger::{Ledger, Transition};
use ticketing_core::maintenance::MaintenanceWindow;
use ticketing_core::model::{Product, PsaId, StatusLevel, TenantId};
use ticketing_core::ports::Account;
use ticketing_core::rules::{Problem, RowId, RuleSet, Section, ValidationError};

use tracing::info;

use crate::engine::Shared;
use crate::store::{Store, StoreError};

/// Why a rule operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The change does not fit (bad patch, unknown row).
    #[error("{0}")]
    Invalid(String),
    /// Save refused: every problem, naming product, row and field.
    #[error("cannot save {section}: {} problem(s)", problems.len())]
    Refused {
        /// Section.
        section: Section,
        /// Problems.
        problems: Vec<ValidationError>,
    },
    /// A change refused before it reached the draft, with every problem (an invalid
    /// maintenance window, priority-follows-severity for a product without statuses).
    #[error("{what}: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Problems {
        /// What was refused ("maintenance windows").
        what: String,
        /// Problems.
        problems: Vec<ValidationError>,
    },
    /// The PSA catalog has not been read yet, so values cannot be checked.
    #[error("the PSA catalog is not loaded yet; try again shortly")]
    NoCatalog,
    /// Another writer (the CLI, the API, the UI, another daemon) saved a newer revision than
    /// the one this change was based on: reload, then edit again.
    #[error("{section}: the rules changed elsewhere (now revision {revision}); reload and try again")]
    Conflict {
        /// The section the refused change was for.
        section: String,
        /// The stored revision.
        revision: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

use ticketing_engine::rules::UpdateError;
pub use ticketing_engine::rules::sync_from_store;

/// Applies `change` to a copy of the rule book and stores the copy with a compare-and-swap on
/// the revision (see [`ticketing_engine::rules::RuleState::update`]); only then is it the book
/// in memory. `expected` is the revision the writer last saw (the UI's page, an API client's
/// `If-Match`, the CLI's `--revision`).
fn update(
    shared: &Shared,
    section: &str,
    expected: Option<u64>,
    change: impl FnOnce(&mut RuleBook) -> Result<(), OpError>,
) -> Result<u64, OpError> {
    match shared.rules.update(&*shared.store, expected, change) {
        Ok(updated) => {
            if updated.saved_changed {
                info!(section, revision = updated.revision, "rules saved");
            }
            Ok(updated.revision)
        }
        Err(UpdateError::Refused(e)) => Err(e),
        Err(UpdateError::Conflict { current }) => {
            Err(OpError::Conflict { section: section.to_owned(), revision: current })
        }
        Err(UpdateError::Store(e)) => Err(e.into()),
    }
}

/// Applies one patch to several rows of the draft.
pub fn bulk_edit(shared: &Shared, rows: &[RowId], patch: &RulePatch, expected: Option<u64>) -> Result<u64, OpError> {
    let section = rows.first().map_or_else(|| "rules".to_owned(), |r| r.section().to_string());
    update(shared, &section, expected, |next| next.bulk_edit(rows, patch).map_err(|e| OpError::Invalid(e.to_string())))
}

/// Edits the draft's general settings.
pub fn edit_general(shared: &Shared, patch: &GeneralPatch, expected: Option<u64>) -> Result<u64, OpError> {
    update(shared, &Section::General.to_string(), expected, |next| {
        next.edit_general(patch);
        Ok(())
    })
}

/// Replaces the whole draft.
pub fn put_draft(shared: &Shared, draft: RuleSet, expected: Option<u64>) -> Result<u64, OpError> {
    update(shared, "draft", expected, |next| {
        next.draft = draft.complete();
        Ok(())
    })
}

/// Every problem of a list of maintenance windows (blank or repeated ids, an end before the
/// start, an unknown time zone, ...), as the save of General would find them.
pub fn window_problems(windows: &[MaintenanceWindow]) -> Vec<ValidationError> {
    let only_windows = RuleSet { maintenance: windows.to_vec(), ..RuleSet::default() };
    // The windows' checks need no catalog; the other problems an empty one causes are dropped.
    only_windows.validate(&Catalog::default()).into_iter().filter(|e| e.field == Field::Maintenance).collect()
}

fn refuse_windows(windows: &[MaintenanceWindow]) -> Result<(), OpError> {
    let problems = window_problems(windows);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(OpError::Problems { what: "maintenance windows".to_owned(), problems })
    }
}

/// Replaces the draft's maintenance windows (saved with General). A list with an invalid
/// window is refused whole, with every problem, and changes nothing.
pub fn set_maintenance(
    shared: &Shared,
    windows: Vec<MaintenanceWindow>,
    expected: Option<u64>,
) -> Result<u64, OpError> {
    refuse_windows(&windows)?;
    update(shared, &Section::General.to_string(), expected, |next| {
        next.set_maintenance(windows);
        Ok(())
    })
}

/// Adds one maintenance window to the draft's list (refused when it is invalid or its id is
/// taken).
pub fn add_window(shared: &Shared, window: MaintenanceWindow, expected: Option<u64>) -> Result<u64, OpError> {
    update(shared, &Section::General.to_string(), expected, |next| {
        let mut windows = next.draft.maintenance.clone();
        windows.push(window);
        refuse_windows(&windows)?;
        next.set_maintenance(windows);
        Ok(())
    })
}

/// Removes the draft's maintenance window `id`.
pub fn remove_window(shared: &Shared, id: &str, expected: Option<u64>) -> Result<u64, OpError> {
    update(shared, &Section::General.to_string(), expected, |next| {
        let mut windows = next.draft.maintenance.clone();
        let before = windows.len();
        windows.retain(|w| w.id != id);
        if windows.len() == before {
            return Err(OpError::Invalid(format!("there is no maintenance window \"{id}\" in the draft")));
        }
        next.set_maintenance(windows);
        Ok(())
    })
}

/// Turns priority-follows-severity on or off for `product` in the draft (saved with either of
/// its status sections). Refused for a product without computer statuses (Office 365).
pub fn set_priority_follows_severity(
    shared: &Shared,
    product: Product,
    on: bool,
    expected: Option<u64>,
) -> Result<u64, OpError> {
    if !product.has_statuses() {
        return Err(OpError::Problems {
            what: format!("priority follows severity for {product}"),
            problems: vec![ValidationError {
                row: None,
                field: Field::PriorityFollowsSeverity,
                problem: Problem::NotApplicable,
            }],
        });
    }
    update(shared, &Section::Statuses(product, StatusLevel::Critical).to_string(), expected, |next| {
        next.set_priority_follows_severity(product, on);
        Ok(())
    })
}

/// "Save changes" for a section: validated against the live catalog, then made active.
pub fn save(shared: &Shared, section: Section, expected: Option<u64>) -> Result<u64, OpError> {
    let catalog = shared.catalog().ok_or(OpError::NoCatalog)?;
    save_with(shared, section, &catalog, expected)
}

/// [`save`] against a given catalog (the CLI reads it from the PSA itself).
pub fn save_with(shared: &Shared, section: Section, catalog: &Catalog, expected: Option<u64>) -> Result<u64, OpError> {
    update(shared, &section.to_string(), expected, |next| {
        next.save(section, catalog).map_err(|e| OpError::Refused { section, problems: e.errors })
    })
}

/// "Cancel changes" for a section.
pub fn cancel(shared: &Shared, section: Section, expected: Option<u64>) -> Result<u64, OpError> {
    update(shared, &section.to_string(), expected, |next| {
        next.cancel(section);
        Ok(())
    })
}

/// "Reset to defaults" for a section (into the draft).
pub fn reset(shared: &Shared, section: Section, expected: Option<u64>) -> Result<u64, OpError> {
    update(shared, &section.to_string(), expected, |next| {
        next.reset(section);
        Ok(())
    })
}

/// What a rule set would have ticketed over a window of the stored event history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// Days looked back.
    pub days: u32,
    /// Events in the window.
    pub events: usize,
    /// Tickets the rule set would have created.
    pub would_create: usize,
    /// Of those, per rule row.
    pub by_row: BTreeMap<String, usize>,
    /// Events it would not have ticketed, per reason (`recurrence_note`: noted on an open
    /// ticket instead, also counted in `recurrence_notes`).
    pub skipped: BTreeMap<String, usize>,
    /// Events that recurred (same type, same computer) within their row's recurrence window of
    /// the event a ticket of the replay was made for: a note on that ticket, not a ticket.
    pub recurrence_notes: usize,
    /// Of those, per rule row.
    pub notes_by_row: BTreeMap<String, usize>,
    /// The enabled event rows with a recurrence window: their settings.
    pub recurrence_rows: Vec<RecurrenceRowNote>,
    /// Alert storms: storm tickets the replay would have opened (also in `would_create` and
    /// `by_row`).
    pub storm_tickets: usize,
    /// Events that would have gone to a storm ticket instead of a ticket of their own (the
    /// opening one included; also in `skipped` as `storm`).
    pub stormed: usize,
    /// Storm notes the replay would have added (batched by each row's note interval, the last
    /// batch as of now).
    pub storm_notes: usize,
    /// The enabled rows with a title or description template: the sample ticket each would
    /// write ([`row_texts`]).
    pub texts: Vec<RowTexts>,
    /// Of the events not ticketed because a maintenance window covered them (when the event
    /// occurred or when it was seen), how many per window id.
    pub maintenance: BTreeMap<String, usize>,
    /// The enabled status rows that wait before creating or reopen a recent ticket: their
    /// settings, not a replay (status tickets come from live snapshots, which are not stored).
    pub status_rows: Vec<StatusRowNote>,
    /// Products whose open status tickets take the Critical row's priority when a computer's
    /// problem becomes Critical.
    pub priority_follows_severity: Vec<Product>,
    /// What the preview does not simulate.
    pub limits: Vec<String>,
}

/// One enabled status row's lifecycle settings, as the preview reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRowNote {
    /// The row.
    pub row: RowId,
    /// Minutes a description must stay active before its ticket (0: at once).
    pub create_delay_minutes: u32,
    /// Hours after an automatic close within which a returning problem reopens the ticket.
    pub reopen_hours: Option<u32>,
}

/// One enabled event row's recurrence window, as the preview reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecurrenceRowNote {
    /// The row.
    pub row: RowId,
    /// Hours within which the same event type on the same computer is noted on the open ticket.
    pub recurrence_hours: u32,
}

/// One row's sample ticket with its templates, as [`ticketing_core::decide::preview_texts`]
/// renders it: the texts the decisions would write for a typical event or status problem of
/// the row. A template the draft holds unchecked (put in whole, not through an edit) that does
/// not render has its problems instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowTexts {
    /// The row.
    pub row: RowId,
    /// Whether the row has its own title template (else the guide's title).
    pub custom_title: bool,
    /// Whether the row has its own description template (else the guide's description).
    pub custom_description: bool,
    /// The sample ticket's title.
    pub title: Option<String>,
    /// The sample ticket's description, its key line last.
    pub description: Option<String>,
    /// Why the templates do not render (then no title or description).
    pub problems: Vec<ValidationError>,
}

fn is_set(t: Option<&str>) -> bool {
    t.is_some_and(|t| !t.trim().is_empty())
}

/// The sample tickets of the enabled rows of `rules` that have a title or description template.
pub fn row_texts(rules: &RuleSet) -> Vec<RowTexts> {
    rules
        .rows
        .iter()
        .filter(|(_, rule)| {
            rule.enabled && (is_set(rule.title_template.as_deref()) || is_set(rule.description_template.as_deref()))
        })
        .map(|(row, rule)| {
            let (title, description, problems) = match ticketing_core::decide::preview_texts(row, rule) {
                Ok((t, d)) => (Some(t), Some(d), Vec::new()),
                Err(problems) => (None, None, problems),
            };
            RowTexts {
                row: row.clone(),
                custom_title: is_set(rule.title_template.as_deref()),
                custom_description: is_set(rule.description_template.as_deref()),
                title,
                description,
                problems,
            }
        })
        .collect()
}

/// What [`preview`] cannot tell, said with every preview.
pub const PREVIEW_LIMITS: [&str; 4] = [
    "events are replayed from the stored history, each decided as of the time it was seen, against the draft's maintenance windows",
    "computer statuses are not replayed (their snapshots are not stored): the creation delay, the reopen window and priority follows severity are listed as set, and open status tickets are counted from the ledger",
    "a recurrence is noted only on a ticket the replay itself made: tickets opened before the window, and tickets a technician closed meanwhile, are not known to it",
    "alert storms count only the tickets the replay itself made, events decided as of when they were seen; the last batch of storm notes is counted as if it were noted now",
];

/// Replays the last `days` of stored events through `rules`, each decided as of the time it
/// was seen, against a scratch ledger: no PSA call, no change to anything.
pub fn preview(
    store: &dyn Store,
    rules: &RuleSet,
    catalog: &Catalog,
    mapping: &[(TenantId, PsaId)],
    accounts: &[Account],
    days: u32,
    now: DateTime<Utc>,
) -> Result<Preview, StoreError> {
    let events = store.events_since(now - Duration::days(i64::from(days)))?;
    let ctx = Context::new(rules, catalog, mapping.iter().cloned(), accounts.iter().cloned());
    let mut ledger = Ledger::new();
    let mut out = Preview { days, events: events.len(), ..Preview::default() };
    let storm_work = |ledger: &mut Ledger, at: DateTime<Utc>, out: &mut Preview| {
        for t in ticketing_core::storm::due(ledger, at, ctx.closed_status()) {
            if matches!(t, Transition::StormNoteQueued { .. }) {
                out.storm_notes += 1;
            }
            let _ = ledger.apply(&t, at);
        }
    };
    for seen in &events {
        storm_work(&mut ledger, seen.seen_at, &mut out);
        match decide_event(&seen.event, &ctx, &ledger, seen.seen_at) {
            EventDecision::Storm(st) => {
                out.stormed += 1;
                *out.skipped.entry("storm".to_owned()).or_default() += 1;
                for t in st.transitions() {
                    let _ = ledger.apply(&t, seen.seen_at);
                }
            }
            EventDecision::OpenStorm(open) => {
                out.stormed += 1;
                out.storm_tickets += 1;
                out.would_create += 1;
                *out.skipped.entry("storm".to_owned()).or_default() += 1;
                *out.by_row.entry(RowId::Event(seen.event.product, seen.event.class).to_string()).or_default() += 1;
                for t in open.transitions() {
                    let _ = ledger.apply(&t, seen.seen_at);
                }
            }
            EventDecision::Create(c) => {
                out.would_create += 1;
                *out.by_row.entry(RowId::Event(seen.event.product, seen.event.class).to_string()).or_default() += 1;
                let _ = ledger.apply(&c.transition(), seen.seen_at);
            }
            EventDecision::Note(n) => {
                out.recurrence_notes += 1;
                *out.notes_by_row.entry(RowId::Event(seen.event.product, seen.event.class).to_string()).or_default() +=
                    1;
                *out.skipped.entry("recurrence_note".to_owned()).or_default() += 1;
                let _ = ledger.apply(&n.transition(), seen.seen_at);
            }
            EventDecision::Skip { reason, .. } => {
                if let SkipReason::Maintenance { window } = &reason {
                    *out.maintenance.entry(window.clone()).or_default() += 1;
                }
                *out.skipped.entry(reason.label().to_owned()).or_default() += 1;
            }
        }
    }
    // The batches still pending are noted by now (the scratch ledger's storm tickets never
    // open, which notes need only for delivery, not for being queued).
    let mut at = now.max(events.last().map_or(now, |e| e.seen_at));
    for _ in 0..100 {
        if ledger.live_storms().next().is_none() {
            break;
        }
        at += Duration::days(1);
        storm_work(&mut ledger, at, &mut out);
    }
    out.status_rows = rules
        .rows
        .iter()
        .filter(|(row, rule)| {
            row.is_status() && rule.enabled && (rule.create_delay_minutes > 0 || rule.reopen_hours.is_some())
        })
        .map(|(row, rule)| StatusRowNote {
            row: row.clone(),
            create_delay_minutes: rule.create_delay_minutes,
            reopen_hours: rule.reopen_hours,
        })
        .collect();
    out.recurrence_rows = rules
        .rows
        .iter()
        .filter(|(row, rule)| row.has_recurrence() && rule.enabled)
        .filter_map(|(row, rule)| {
            rule.recurrence_hours.map(|h| RecurrenceRowNote { row: row.clone(), recurrence_hours: h })
        })
        .collect();
    out.texts = row_texts(rules);
    out.priority_follows_severity = rules.priority_follows_severity.iter().copied().collect();
    out.limits = PREVIEW_LIMITS.iter().map(|s| (*s).to_owned()).collect();
    Ok(out)
}

/// [`preview`] of the current draft with the daemon's catalog, mapping and accounts.
pub fn preview_draft(shared: &Shared, days: u32) -> Result<Preview, OpError> {
    let catalog = shared.catalog().ok_or(OpError::NoCatalog)?;
    let draft = shared.rules.with(|b| b.draft.clone());
    let mapping: Vec<(TenantId, PsaId)> =
        shared.mapping().into_iter().filter_map(|m| m.account_id.map(|a| (TenantId::new(m.tenant), a))).collect();
    Ok(preview(shared.store.as_ref(), &draft, &catalog, &mapping, &shared.accounts(), days, Utc::now())?)
}
