//! `msp-ticketd check`: every problem of the configuration at once, then the live services.

use std::path::Path;

use ticketing_core::model::TenantId;

use crate::config::{Config, ConfigErrors, ConfigProblem};
use crate::store::{SqliteStore, Store};
use crate::wiring;

/// `msp-ticketd check`: every problem with the file, the rules against the live PSA catalog,
/// the mapping against the live accounts, and each source's reachability — all at once.
pub async fn check(path: &Path) -> Vec<ConfigProblem> {
    let file = path.display().to_string();
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(ConfigErrors(problems)) => return problems,
    };
    let mut problems = Vec::new();
    let mut push =
        |key: &str, reason: String| problems.push(ConfigProblem { file: file.clone(), key: key.to_owned(), reason });
    let wired = match wiring::wire(&config) {
        Ok(w) => w,
        Err(e) => {
            push("(adapters)", format!("{e:#}"));
            return problems;
        }
    };
    let rules = match SqliteStore::open(&config.store.path).ok().and_then(|s| s.rulebook().ok().flatten()) {
        Some((book, _)) => book.saved,
        None => config.rules.to_rule_set(),
    };
    match wired.sink.catalog().await {
        Ok(catalog) => {
            for e in rules.validate(&catalog) {
                let key = match &e.row {
                    Some(row) => format!("rules.rows.\"{row}\".{}", e.field),
                    None => format!("rules.general.{}", e.field),
                };
                push(&key, e.to_string());
            }
        }
        Err(e) => push("autotask", format!("cannot read the ticket catalog: {e}")),
    }
    let accounts = match wired.sink.accounts().await {
        Ok(a) => a,
        Err(e) => {
            push("autotask", format!("cannot read accounts: {e}"));
            Vec::new()
        }
    };
    let mut listed: Vec<TenantId> = Vec::new();
    for s in &wired.events {
        match s.source.tenants().await {
            Ok(t) => listed.extend(t.into_iter().map(|t| t.id)),
            Err(e) => push(&s.name, format!("cannot reach the source: {e}")),
        }
    }
    for s in &wired.statuses {
        if let Err(e) = s.source.tenants().await {
            push(&s.name, format!("cannot reach the source: {e}"));
        }
    }
    for (i, m) in config.mapping.iter().enumerate() {
        let key = format!("mapping[{i}]");
        if !accounts.is_empty() {
            match m.account_in(&accounts) {
                None => push(&key, "no such account in the PSA".to_owned()),
                Some(a) if !a.active => {
                    push(&key, format!("account {} ({}) is inactive: it gets no tickets", a.name, a.id))
                }
                Some(_) => {}
            }
        }
        if !listed.is_empty() && !listed.iter().any(|t| t.as_str() == m.tenant) {
            push(&key, format!("no source lists tenant {:?}", m.tenant));
        }
    }
    wired.shutdown().await;
    problems
}
