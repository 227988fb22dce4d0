//! `msp-ticketd mapping …`: the tenant mapping edited against the store while the daemon runs
//! (it takes a change within one tick), with the same compare-and-swap as the API and the UI.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use msp_ticketd::config::Config;
use msp_ticketd::mapping_ops::{self, FileMapping, MappingOpError, MappingView};
use msp_ticketd::service;
use ticketing_core::mapping::MappingSource;
use ticketing_core::model::{PsaId, TenantId};

#[derive(Subcommand)]
pub(crate) enum MappingAction {
    /// Every tenant: its account and where the mapping comes from (`file`, `store`), or
    /// `unmapped` with its best suggestion.
    List,
    /// The suggestions of every unmapped tenant (of one, with TENANT), best first.
    Suggest {
        /// One tenant.
        tenant: Option<String>,
    },
    /// Map TENANT to the PSA account ACCOUNT_ID.
    Set {
        /// The tenant id (`ksc:main/vs:3`, `kbh:c-7f3a`).
        tenant: String,
        /// The PSA account id.
        account_id: i64,
    },
    /// Unmap TENANT (only tenants mapped in the product; file entries are changed in the file).
    Unset {
        /// The tenant id.
        tenant: String,
    },
    /// Map every unmapped tenant whose best suggestion scores at least S (an active account,
    /// unambiguous); prints what it mapped.
    Accept {
        /// The lowest score accepted, 0..1 (0.9: 90 %).
        #[arg(long)]
        min_score: f64,
    },
}

/// Whether the action changes the mapping (for the change log).
pub(crate) fn changes(action: &MappingAction) -> bool {
    matches!(action, MappingAction::Set { .. } | MappingAction::Unset { .. } | MappingAction::Accept { .. })
}

fn print_view(view: &MappingView, suggestions_of: Option<&str>, all_suggestions: bool) {
    println!("revision {}", view.revision);
    for row in &view.tenants {
        if suggestions_of.is_some_and(|t| t != row.tenant.as_str()) {
            continue;
        }
        let name = row.tenant_name.as_deref().unwrap_or("(not listed by a source)");
        match (&row.account, row.source) {
            (Some(a), Some(source)) => {
                let from = match source {
                    MappingSource::File => "file",
                    MappingSource::Store => "store",
                };
                let inactive = if a.active { "" } else { " (inactive)" };
                println!("{}\t{name}\t-> {} {}{inactive}\t[{from}]", row.tenant, a.account_id, a.account_name);
            }
            _ => {
                let best = row.suggestions.first().map_or_else(
                    || "no suggestion".to_owned(),
                    |s| format!("suggested {} {} ({:.0} %)", s.account_id, s.account_name, s.score * 100.0),
                );
                println!("{}\t{name}\tunmapped\t{best}", row.tenant);
                if all_suggestions {
                    for s in &row.suggestions {
                        let inactive = if s.active { "" } else { ", inactive" };
                        println!("\t{:.0} %\t{} {}{inactive}", s.score * 100.0, s.account_id, s.account_name);
                    }
                }
            }
        }
    }
    println!("{} tenant(s) unmapped", view.unmapped);
}

/// Runs a `mapping` action; exit code 3 for a stale `--revision` (as `rules`), 1 for a refusal.
pub(crate) fn run(
    path: &std::path::Path,
    config: &Config,
    action: MappingAction,
    revision: Option<u64>,
) -> Result<ExitCode> {
    let (store, _) = service::open_store(config)?;
    let directory = msp_ticketd::documents::load_directory(&*store)?;
    let file = FileMapping::from_config(&path.display().to_string(), &config.mapping, &directory.accounts);
    let result = match action {
        MappingAction::List => mapping_ops::view(&*store, &file).map(|v| print_view(&v, None, false)),
        MappingAction::Suggest { tenant } => {
            mapping_ops::view(&*store, &file).map(|v| print_view(&v, tenant.as_deref(), true))
        }
        MappingAction::Set { tenant, account_id } => {
            mapping_ops::set(&*store, &file, &TenantId::new(tenant.clone()), PsaId(account_id), revision)
                .map(|r| println!("mapped {tenant} to {account_id} (revision {r})"))
        }
        MappingAction::Unset { tenant } => mapping_ops::unset(&*store, &file, &TenantId::new(tenant.clone()), revision)
            .map(|r| println!("unmapped {tenant} (revision {r})")),
        MappingAction::Accept { min_score } => {
            mapping_ops::accept(&*store, &file, min_score, revision).map(|(r, mapped)| {
                for m in &mapped {
                    println!("mapped {} to {} {} ({:.0} %)", m.tenant, m.account_id, m.account_name, m.score * 100.0);
                }
                println!("{} tenant(s) mapped (revision {r})", mapped.len());
            })
        }
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ MappingOpError::Conflict { .. }) => {
            eprintln!("{e}");
            Ok(ExitCode::from(3))
        }
        Err(MappingOpError::Store(e)) => Err(e.into()),
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
