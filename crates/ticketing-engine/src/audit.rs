//! The audit: every decision in plain words, for `msp-ticketd why`, `GET /api/decisions` and
//! the UI's Activity page.
//!
//! The engine records a [`Decision`] for every event it decides and for every change of a
//! status condition's decision (a new ticket, a close, a new reason not to ticket), in the same
//! transaction as the ledger transitions (see [`crate::store::Commit::decisions`]). The words
//! are written at decision time, when the names they use (account, rule row, PSA) are at hand;
//! what became of a planned ticket since is read from the ledger at question time
//! ([`describe`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use ticketing_core::decide::SkipReason;
use ticketing_core::ledger::{Ledger, LedgerEntry, TicketState};
use ticketing_core::model::{Product, TenantId};
use ticketing_core::ports::Account;
use ticketing_core::rules::RowId;
use ticketing_core::ticket::TicketKey;

use crate::store::{Decision, DecisionQuery, Outcome, Store, StoreError};

/// The names a reason is explained with.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    /// The PSA, as users call it ("Autotask", "ConnectWise").
    pub psa: &'a str,
    /// The PSA's accounts (for an account's name).
    pub accounts: &'a [Account],
}

/// The rule row in words: "Kaspersky Security Center Warning events", "Kaspersky Endpoint
/// Security Cloud Critical status \"Databases are outdated\"".
pub fn row_words(row: &RowId) -> String {
    match row {
        RowId::Event(p, class) => format!("{} {class} events", p.display_name()),
        RowId::Status(p, level, d) => format!("{} {level} status \"{}\"", p.display_name(), d.text()),
    }
}

/// Why nothing was ticketed, in words ("not ticketed: the Kaspersky Security Center Warning
/// events rule is off").
pub fn explain(reason: &SkipReason, row: Option<&RowId>, tenant: &TenantId, names: Names<'_>) -> String {
    match reason {
        SkipReason::RuleOff => match row {
            Some(row) => format!("not ticketed: the {} rule is off", row_words(row)),
            None => "not ticketed: no rule covers this kind of event".to_owned(),
        },
        SkipReason::Stale { lifetime_days } => format!(
            "not ticketed: the event is older than the rule's lifetime of {lifetime_days} day{}",
            if *lifetime_days == 1 { "" } else { "s" }
        ),
        SkipReason::TenantUnmapped => {
            format!(
                "not ticketed: tenant {tenant} is not mapped to a {} account (held: ticketed once it is mapped, within the rule's lifetime)",
                names.psa
            )
        }
        SkipReason::AccountInactive { account } => match names.accounts.iter().find(|a| a.id == *account) {
            Some(a) => format!("not ticketed: account {} is inactive in {}", a.name, names.psa),
            None => format!("not ticketed: {} has no account {account}", names.psa),
        },
        SkipReason::AlreadyTicketed => "not ticketed again: this problem already has its ticket".to_owned(),
        SkipReason::RuleInvalid { errors } => {
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            format!("not ticketed: the rule does not resolve against {}'s picklists ({})", names.psa, all.join("; "))
        }
        SkipReason::Maintenance { window } => {
            format!("not ticketed: maintenance window \"{window}\" was open")
        }
        SkipReason::Pending { since, until } => format!(
            "not ticketed yet: active since {}; ticketed at {} if it still applies then (the row's creation delay)",
            since.format("%Y-%m-%d %H:%M:%S UTC"),
            until.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        #[allow(unreachable_patterns)] // reasons added to the core later still get words
        other => format!("not ticketed: {other}"),
    }
}

/// What a key's ticket is now, in words ("ticketed as T20261201.0004, open").
pub fn ticket_words(entry: Option<&LedgerEntry>) -> String {
    let Some(entry) = entry else { return "no ticket in the ledger (pruned, or never made)".to_owned() };
    let number = |t: &Option<ticketing_core::ticket::TicketRef>| {
        t.as_ref().map_or_else(String::new, |t| match &t.number {
            Some(n) => format!(" {n}"),
            None => format!(" ticket {}", t.id),
        })
    };
    match &entry.state {
        TicketState::Planned { .. } => "ticketed: the ticket is being created".to_owned(),
        TicketState::Open { ticket, .. } => format!("ticketed as{}, open", number(&Some(ticket.clone()))),
        TicketState::Closing { ticket, .. } => format!("ticketed as{}, being closed", number(&Some(ticket.clone()))),
        TicketState::Closed { ticket, .. } => format!("ticketed as{}, closed", number(ticket)),
        TicketState::Failed { reason, .. } => format!("the PSA refused the ticket: {reason}"),
        TicketState::Dropped { reason } => format!("not ticketed: dropped ({reason})"),
        TicketState::Stormed { storm, .. } => format!("in the storm ticket of {}", storm.canonical()),
        #[allow(unreachable_patterns)] // states added to the core later
        other => format!("ticketed; now {}", other.name()),
    }
}

/// One decision as `why` prints it and the Activity page shows it: when, what, the decision in
/// words, what became of the ticket since (for a ticketed one), and the rules revision.
pub fn describe(d: &Decision, entry: Option<&LedgerEntry>) -> String {
    let subject = match (&d.event_id, &d.device_name, &d.device) {
        (Some(e), Some(name), _) => format!("event {e} on {name}"),
        (Some(e), None, _) => format!("event {e}"),
        (None, Some(name), _) | (None, None, Some(name)) => format!("computer {name}"),
        (None, None, None) => format!("tenant {}", d.tenant),
    };
    let now = match d.outcome {
        Outcome::Ticketed | Outcome::Closed | Outcome::Noted | Outcome::Stormed => {
            format!(" — {}", ticket_words(entry))
        }
        Outcome::Skipped => String::new(),
    };
    format!(
        "{} {} ({}, tenant {}): {}{now} [rules revision {}]",
        d.at.format("%Y-%m-%d %H:%M:%S UTC"),
        subject,
        d.product.display_name(),
        d.tenant,
        d.detail,
        d.revision
    )
}

/// The ledger entries of the decisions' keys, by canonical key (one pass over the ledger).
pub fn entries_of<'a>(decisions: &[Decision], ledger: &'a Ledger) -> HashMap<String, &'a LedgerEntry> {
    let wanted: HashSet<&str> = decisions.iter().map(|d| d.key.as_str()).collect();
    ledger
        .entries()
        .filter_map(|e| {
            let key = e.key.canonical();
            wanted.contains(key.as_str()).then_some((key, e))
        })
        .collect()
}

/// A decision about one event, or one status condition, at `at`.
#[allow(clippy::too_many_arguments)] // one constructor the engine calls in two places
pub fn decision(
    at: DateTime<Utc>,
    product: Product,
    key: &TicketKey,
    event_id: Option<&str>,
    device: Option<(&str, &str)>,
    outcome: Outcome,
    reason: Option<&SkipReason>,
    detail: String,
    revision: u64,
) -> Decision {
    Decision {
        at,
        product,
        tenant: key.tenant().clone(),
        event_id: event_id.map(str::to_owned),
        device: device.map(|(id, _)| id.to_owned()),
        device_name: device.map(|(_, name)| name.to_owned()),
        key: key.canonical(),
        outcome,
        reason: reason.map(|r| r.label().to_owned()),
        detail,
        revision,
    }
}

/// A decision with its words, as the API and the Activity page return it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explained {
    /// The record.
    #[serde(flatten)]
    pub decision: Decision,
    /// What became of its ticket since, for a ticketed or closed one ("ticketed as
    /// T20261201.0004, open").
    pub ticket: Option<String>,
    /// The whole line, as `why` prints it.
    pub words: String,
}

/// The decisions `query` asks for, each with its words and its ticket's state now.
pub fn query(store: &dyn Store, query: &DecisionQuery) -> Result<Vec<Explained>, StoreError> {
    let decisions = store.decisions(query)?;
    let ledger =
        if decisions.iter().any(|d| d.outcome != Outcome::Skipped) { store.load_ledger()? } else { Ledger::default() };
    let entries = entries_of(&decisions, &ledger);
    Ok(decisions
        .into_iter()
        .map(|d| {
            let entry = entries.get(&d.key).copied();
            let ticket = (d.outcome != Outcome::Skipped).then(|| ticket_words(entry));
            let words = describe(&d, entry);
            Explained { decision: d, ticket, words }
        })
        .collect())
}

/// What `msp-ticketd why` asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// One event, by its id at the source.
    Event(String),
    /// One computer (by id or name) of one tenant.
    Device {
        /// The tenant.
        tenant: String,
        /// The computer's id or name.
        device: String,
    },
}

/// The answer to `why`: one line per decision, newest first, or one line saying that nothing
/// was recorded and what that means.
pub fn why(store: &dyn Store, question: &Question) -> Result<Vec<String>, StoreError> {
    let q = match question {
        Question::Event(id) => DecisionQuery { event_id: Some(id.clone()), limit: 50, ..DecisionQuery::default() },
        Question::Device { tenant, device } => DecisionQuery {
            tenant: Some(tenant.clone()),
            device: Some(device.clone()),
            limit: 50,
            ..DecisionQuery::default()
        },
    };
    let found = query(store, &q)?;
    if found.is_empty() {
        return Ok(vec![match question {
            Question::Event(id) => format!(
                "no decision about event {id} in the history window: it was not read yet, is older than the history kept (polling.history_days), or has another id"
            ),
            Question::Device { tenant, device } => format!(
                "no decision about computer {device} of tenant {tenant} in the history window: it had no events and reported no problem with an enabled status rule"
            ),
        }]);
    }
    Ok(found.into_iter().map(|e| e.words).collect())
}
