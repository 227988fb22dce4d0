//! `msp-ticketd`: the reference daemon of msp-ticketing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod mapping_cli;
mod users_cli;

use anyhow::{Context as _, Result};
use clap::{CommandFactory as _, Parser, Subcommand};
use msp_ticketd::config::Config;
use msp_ticketd::engine::Shared;
use msp_ticketd::rules_ops;
use msp_ticketd::service;
use ticketing_core::edit::{GeneralPatch, RulePatch};
use ticketing_core::rules::{RowId, Section};

/// The daemon's allocator: mimalloc. Under glibc's malloc a polling pass over 10,000 tenants
/// spent a fifth of its CPU in the allocator (bins consolidated across the worker threads:
/// `unlink_chunk`, `malloc_consolidate`); the library crates leave the choice to the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kaspersky events and computer statuses in, Autotask tickets out.
#[derive(Parser)]
#[command(name = "msp-ticketd", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service until SIGINT/SIGTERM.
    Run {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Check the file, the rules against the live PSA catalog, the mapping and every source;
    /// print every problem at once (`FILE:LINE:COL: key: reason`, or one JSON object each when
    /// the file sets `logging.format = "json"`); exit 1 if there is any error.
    Check {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Check the file alone: no network, no store.
        #[arg(long)]
        offline: bool,
    },
    /// The main job with no setup: simulators in-process, real daemon, a short scenario.
    #[cfg(feature = "demo")]
    Demo {
        /// Leave everything running (admin API and UI open) after the scenario.
        #[arg(long)]
        keep_running: bool,
        /// The PSA simulator the demo's tickets go to.
        #[arg(long, value_enum, default_value_t = msp_ticketd::demo::Psa::Autotask)]
        psa: msp_ticketd::demo::Psa,
    },
    /// Not in this build (no `demo` feature, so no simulators): says how to get it, exit 2.
    #[cfg(not(feature = "demo"))]
    #[command(hide = true, disable_help_flag = true)]
    Demo {
        /// Whatever the full build's `demo` takes.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// Edit ticketing rules the way the guide's Ticketing tab does.
    Rules {
        /// The configuration file (for the store's location and the PSA connection).
        #[arg(long)]
        config: PathBuf,
        /// The rules revision this change is based on (from `rules show`); if the store holds
        /// a newer one, the change is refused with exit code 3 instead of applied.
        #[arg(long)]
        revision: Option<u64>,
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Map tenants to PSA accounts (the entries edited in the product; `[[mapping]]` in the
    /// file stays authoritative for its tenants), with suggestions by name.
    Mapping {
        /// The configuration file (for the store's location and the file's entries).
        #[arg(long)]
        config: PathBuf,
        /// The mapping revision this change is based on (from `mapping list`); if the store
        /// holds a newer one, the change is refused with exit code 3.
        #[arg(long)]
        revision: Option<u64>,
        #[command(subcommand)]
        action: mapping_cli::MappingAction,
    },
    /// Look at the ticket ledger and act on it (retry refused creates).
    Ledger {
        /// The configuration file (for the store's location).
        #[arg(long)]
        config: PathBuf,
        #[command(subcommand)]
        action: LedgerAction,
    },
    /// Users of the admin API and the web UI, with their roles and API tokens.
    Users {
        /// The configuration file (for the store's location).
        #[arg(long)]
        config: PathBuf,
        #[command(subcommand)]
        action: users_cli::UsersAction,
    },
    /// Who changed what: the change log, newest first, one JSON object a line.
    Changes {
        /// The configuration file (for the store's location).
        #[arg(long)]
        config: PathBuf,
        /// At most this many (default 200).
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// Only changes at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
    /// Why was (or wasn't) this ticketed? `why EVENT_ID` for an event, `why TENANT DEVICE` for a
    /// computer (by id or name): every decision recorded in the history window, newest first,
    /// in plain words, with the ticket's state now and the rules revision that decided.
    Why {
        /// The configuration file (for the store's location).
        #[arg(long)]
        config: PathBuf,
        /// EVENT_ID, or TENANT DEVICE.
        #[arg(required = true, num_args = 1..=2, value_names = ["EVENT_ID | TENANT", "DEVICE"])]
        subject: Vec<String>,
    },
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell) to stdout;
    /// packagers install it (the Debian package does).
    #[command(hide = true)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout; with `--dir`, write one page per subcommand
    /// there (msp-ticketd.1, msp-ticketd-run.1, ...).
    #[command(hide = true)]
    Man {
        /// Where to write every page instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LedgerAction {
    /// List ledger entries, optionally of one state (`failed` shows the PSA's reason).
    List {
        /// `planned`, `open`, `closing`, `closed`, `failed` or `dropped`.
        #[arg(long)]
        state: Option<String>,
    },
    /// Re-plan a create the PSA refused, once its rule is fixed (the running daemon picks the
    /// request up on its next tick).
    Retry {
        /// The entry's ticket key (as `list` shows it) or idempotency key.
        key: Option<String>,
        /// Every failed entry.
        #[arg(long, conflicts_with = "key")]
        all_failed: bool,
    },
}

#[derive(Subcommand)]
enum RulesAction {
    /// Show the saved and draft rules of a section (or all).
    Show {
        /// `general`, `events/security_center`, `statuses/endpoint_cloud/warning`, ...
        section: Option<Section>,
    },
    /// Change one row of the draft: `rules set security_center/event/critical '{"enabled":true}'`.
    Set {
        /// The row.
        row: RowId,
        /// A JSON patch (fields left out stay as they are; null clears).
        patch: String,
    },
    /// Apply one patch to several rows of the draft.
    BulkEdit {
        /// A JSON patch.
        #[arg(long)]
        patch: String,
        /// The rows.
        #[arg(required = true)]
        rows: Vec<RowId>,
    },
    /// Change the draft's general settings with a JSON patch.
    General {
        /// A JSON patch (`{"closed_status":"Complete"}`).
        patch: String,
    },
    /// Save the draft of a section (validated against the live PSA catalog).
    Save {
        /// The section.
        section: Section,
    },
    /// Put the last saved values of a section back into the draft.
    Cancel {
        /// The section.
        section: Section,
    },
    /// Put the guide's defaults of a section into the draft.
    Reset {
        /// The section.
        section: Section,
    },
    /// The draft's maintenance windows (saved with `rules save general`).
    Maintenance {
        #[command(subcommand)]
        action: MaintenanceAction,
    },
    /// Turn "raise priority when the computer becomes Critical" on or off for a product's
    /// status tickets in the draft (saved with either of its status sections).
    PriorityFollowsSeverity {
        /// `security_center` or `endpoint_cloud`.
        product: String,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// What the draft would have ticketed over the last N days of stored events (no PSA call
    /// except reading the catalog and accounts).
    Preview {
        /// Days of history.
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum MaintenanceAction {
    /// Print the saved and draft windows, one JSON object a line.
    List,
    /// Add one window to the draft: `add '{"id":"patch-night","tenant":"ksc:main/vs:1",
    /// "schedule":{"kind":"recurring","weekdays":["Tue"],"start":"22:00:00",
    /// "duration_minutes":120,"time_zone":"Europe/Berlin","nth_of_month":2}}'`.
    Add {
        /// The window as JSON.
        window: String,
    },
    /// Remove the draft's window with this id.
    Remove {
        /// The window's id.
        id: String,
    },
    /// Replace the draft's windows with the JSON list in FILE (`-`: standard input).
    Set {
        /// The file.
        file: PathBuf,
    },
}

fn init_logging(format: &str, filter: &str) -> msp_ticketd::logging::FilterReload {
    msp_ticketd::logging::init(format, filter)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run { config: path } => {
            let config = load(&path)?;
            let filter = init_logging(&config.logging.format, &config.logging.filter);
            service::run(path, config, filter).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, offline } => {
            init_logging("human", "warn");
            let report = msp_ticketd::check::check(&config, &msp_ticketd::check::Options::new(offline)).await;
            print!("{}", report.render());
            Ok(if report.has_errors() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        #[cfg(feature = "demo")]
        Command::Demo { keep_running, psa } => {
            init_logging("human", "warn");
            msp_ticketd::demo::run(keep_running, psa).await?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(not(feature = "demo"))]
        Command::Demo { args: _ } => {
            eprintln!(
                "msp-ticketd demo: not in this build (built without the `demo` feature, so without \
                 the simulators it runs against).\n\
                 Use the default build, which has it: `cargo run -p msp-ticketd -- demo` in the source \
                 tree, or install it with `cargo install --path crates/daemon --features demo`."
            );
            Ok(ExitCode::from(2))
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "msp-ticketd", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir: None } => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .with_context(|| format!("writing into {}", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Users { config, action } => {
            let config = load(&config)?;
            init_logging("human", "warn");
            users_cli::users(&config, action)
        }
        Command::Changes { config, limit, since } => {
            let config = load(&config)?;
            users_cli::changes(&config, limit, since.as_deref())
        }
        Command::Mapping { config: path, revision, action } => {
            let config = load(&path)?;
            init_logging("human", "warn");
            let tracker = users_cli::Tracker::start(&config);
            let kind = mapping_cli::changes(&action).then_some(msp_ticketd::access::ChangeKind::Mapping);
            let r = mapping_cli::run(&path, &config, action, revision);
            if let Some(t) = tracker {
                t.finish(kind, None, matches!(r, Ok(ExitCode::SUCCESS)));
            }
            r
        }
        Command::Rules { config, revision, action } => {
            let config = load(&config)?;
            init_logging("human", "warn");
            let tracker = users_cli::Tracker::start(&config);
            let (kind, section) = rules_change(&action);
            let r = rules(&config, action, revision).await;
            if let Some(t) = tracker {
                t.finish(kind, section, matches!(r, Ok(ExitCode::SUCCESS)));
            }
            match r {
                Err(e) => match e.downcast_ref::<rules_ops::OpError>() {
                    Some(conflict @ rules_ops::OpError::Conflict { .. }) => {
                        eprintln!("{conflict}");
                        Ok(ExitCode::from(3))
                    }
                    Some(rules_ops::OpError::Problems { what, problems }) => {
                        for p in problems {
                            eprintln!("{p}");
                        }
                        eprintln!("{what} refused: {} problem(s); nothing changed", problems.len());
                        Ok(ExitCode::FAILURE)
                    }
                    _ => Err(e),
                },
                ok => ok,
            }
        }
        Command::Why { config, subject } => {
            let config = load(&config)?;
            let (store, _) = service::open_store(&config)?;
            let question = match subject.as_slice() {
                [event] => msp_ticketd::audit::Question::Event(event.clone()),
                [tenant, device] => {
                    msp_ticketd::audit::Question::Device { tenant: tenant.clone(), device: device.clone() }
                }
                _ => anyhow::bail!("why: give EVENT_ID, or TENANT DEVICE"),
            };
            for line in msp_ticketd::audit::why(store.as_ref(), &question)? {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ledger { config, action } => {
            let config = load(&config)?;
            init_logging("human", "warn");
            let tracker = users_cli::Tracker::start(&config);
            let kind =
                matches!(action, LedgerAction::Retry { .. }).then_some(msp_ticketd::access::ChangeKind::LedgerRetry);
            let r = ledger(&config, action);
            if let Some(t) = tracker {
                t.finish(kind, None, matches!(r, Ok(ExitCode::SUCCESS)));
            }
            r
        }
    }
}

fn ledger(config: &Config, action: LedgerAction) -> Result<ExitCode> {
    let (store, _) = service::open_store(config)?;
    match action {
        LedgerAction::List { state } => {
            let ledger = store.load_ledger()?;
            for e in msp_ticketd::ledger_ops::entries(&ledger, state.as_deref()) {
                println!("{}", serde_json::to_string(e)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        LedgerAction::Retry { key, all_failed } => {
            let target = match (key, all_failed) {
                (Some(k), false) => msp_ticketd::ledger_ops::Retry::Key(k),
                (None, true) => msp_ticketd::ledger_ops::Retry::AllFailed,
                _ => anyhow::bail!("give a KEY or --all-failed"),
            };
            let n = msp_ticketd::ledger_ops::request_retry(store.as_ref(), &target)?;
            println!("retry requested for {n} failed ticket(s); the running daemon re-plans them on its next tick");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What a `rules` command changes, for the change log (`None`: it only reads).
fn rules_change(action: &RulesAction) -> (Option<msp_ticketd::access::ChangeKind>, Option<String>) {
    use msp_ticketd::access::ChangeKind as K;
    match action {
        RulesAction::Show { .. } | RulesAction::Preview { .. } => (None, None),
        RulesAction::Maintenance { action: MaintenanceAction::List } => (None, None),
        RulesAction::Maintenance { .. } => (Some(K::Maintenance), Some(Section::General.to_string())),
        RulesAction::Save { section } => (Some(K::RulesSave), Some(section.to_string())),
        RulesAction::Cancel { section } => (Some(K::RulesCancel), Some(section.to_string())),
        RulesAction::Reset { section } => (Some(K::RulesReset), Some(section.to_string())),
        RulesAction::Set { row, .. } => (Some(K::RulesDraft), Some(row.to_string())),
        _ => (Some(K::RulesDraft), None),
    }
}

fn load(path: &Path) -> Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `msp-ticketd rules …`: the same operations as the admin API and the UI, on the store
/// directly (a running daemon picks a save up within one tick). Every write is a
/// compare-and-swap on the rules revision.
async fn rules(config: &Config, action: RulesAction, expected: Option<u64>) -> Result<ExitCode> {
    let (store, book) = service::open_store(config)?;
    let (shared, _writers) = Shared::new(store, book);
    let wrote = |revision: u64| println!("draft updated (revision {revision})");
    let parse_patch = |s: &str| serde_json::from_str::<RulePatch>(s).context("the patch");
    match action {
        RulesAction::Show { section } => {
            let (book, revision) = shared.rules.snapshot();
            println!("revision {revision}");
            let sections = section.map_or_else(Section::all, |s| vec![s]);
            for s in sections {
                let dirty = if book.is_dirty(s) { "  (draft differs from saved)" } else { "" };
                println!("[{s}] {}{dirty}", s.title());
                if s == Section::General {
                    println!("  saved: {}", serde_json::to_string(&book.saved.general)?);
                    println!("  draft: {}", serde_json::to_string(&book.draft.general)?);
                    println!("  maintenance windows saved: {}", serde_json::to_string(&book.saved.maintenance)?);
                    if book.draft.maintenance != book.saved.maintenance {
                        println!("  maintenance windows draft: {}", serde_json::to_string(&book.draft.maintenance)?);
                    }
                }
                if let Section::Statuses(p, _) = s {
                    let on = |set: &ticketing_core::rules::RuleSet| {
                        if set.priority_follows_severity.contains(&p) { "on" } else { "off" }
                    };
                    println!("  priority follows severity: saved {}, draft {}", on(&book.saved), on(&book.draft));
                }
                for row in s.rows() {
                    let saved = book.saved.rule(&row).map(serde_json::to_string).transpose()?.unwrap_or_default();
                    let draft = book.draft.rule(&row).map(serde_json::to_string).transpose()?.unwrap_or_default();
                    println!("  {row}  {}", row.label());
                    println!("    saved: {saved}");
                    if draft != saved {
                        println!("    draft: {draft}");
                    }
                }
            }
        }
        RulesAction::Set { row, patch } => {
            wrote(rules_ops::bulk_edit(&shared, &[row], &parse_patch(&patch)?, expected)?)
        }
        RulesAction::BulkEdit { patch, rows } => {
            wrote(rules_ops::bulk_edit(&shared, &rows, &parse_patch(&patch)?, expected)?)
        }
        RulesAction::General { patch } => {
            let p: GeneralPatch = serde_json::from_str(&patch).context("the patch")?;
            wrote(rules_ops::edit_general(&shared, &p, expected)?);
        }
        RulesAction::Save { section } => {
            let wired = msp_ticketd::wiring::wire(config)?;
            let catalog = wired.sink.catalog().await.context("reading the PSA catalog")?;
            match rules_ops::save_with(&shared, section, &catalog, expected) {
                Ok(revision) => println!("saved {section} (revision {revision})"),
                Err(rules_ops::OpError::Refused { problems, .. }) => {
                    for p in &problems {
                        println!("{p}");
                    }
                    println!("not saved: {} problem(s)", problems.len());
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e.into()),
            }
        }
        RulesAction::Maintenance { action } => match action {
            MaintenanceAction::List => {
                let (book, revision) = shared.rules.snapshot();
                println!("revision {revision}");
                for (which, windows) in [("saved", &book.saved.maintenance), ("draft", &book.draft.maintenance)] {
                    println!("{which}: {} window(s)", windows.len());
                    for w in windows {
                        println!("  {}", serde_json::to_string(w)?);
                    }
                }
                for p in rules_ops::window_problems(&book.draft.maintenance) {
                    println!("problem: {p}");
                }
            }
            MaintenanceAction::Add { window } => {
                let w = serde_json::from_str(&window).context("the window")?;
                wrote(rules_ops::add_window(&shared, w, expected)?);
            }
            MaintenanceAction::Remove { id } => wrote(rules_ops::remove_window(&shared, &id, expected)?),
            MaintenanceAction::Set { file } => {
                let text = if file.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin()).context("reading standard input")?
                } else {
                    std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?
                };
                let windows = serde_json::from_str(&text).context("the windows (a JSON list)")?;
                wrote(rules_ops::set_maintenance(&shared, windows, expected)?);
            }
        },
        RulesAction::PriorityFollowsSeverity { product, state } => {
            let p = ticketing_core::model::Product::from_code(&product)
                .with_context(|| format!("unknown product `{product}` (expected security_center or endpoint_cloud)"))?;
            wrote(rules_ops::set_priority_follows_severity(&shared, p, state == "on", expected)?);
        }
        RulesAction::Cancel { section } => wrote(rules_ops::cancel(&shared, section, expected)?),
        RulesAction::Reset { section } => wrote(rules_ops::reset(&shared, section, expected)?),
        RulesAction::Preview { days } => {
            let wired = msp_ticketd::wiring::wire(config)?;
            let catalog = wired.sink.catalog().await.context("reading the PSA catalog")?;
            let accounts = wired.sink.accounts().await.context("reading the PSA accounts")?;
            let mapping: Vec<_> = config
                .mapping
                .iter()
                .filter_map(|m| {
                    let account = m.account_in(&accounts)?;
                    Some((ticketing_core::model::TenantId::new(m.tenant.clone()), account.id))
                })
                .collect();
            let draft = shared.rules.with(|b| b.draft.clone());
            let p = rules_ops::preview(
                shared.store.as_ref(),
                &draft,
                &catalog,
                &mapping,
                &accounts,
                days,
                chrono::Utc::now(),
            )?;
            println!("{}", serde_json::to_string_pretty(&p)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
