//! `msp-ticketd users …` and `msp-ticketd changes` (issue 28), against the store while the
//! daemon runs (every instance reads users from the store, so a change applies at once), and
//! the change log's record of the other CLI commands that change things ([`Tracker`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use msp_ticketd::access::changes::{Revisions, record_in, revisions};
use msp_ticketd::access::users;
use msp_ticketd::access::{AccessStore, Actor, ChangeKind, ChangeQuery, Role};
use msp_ticketd::config::Config;
use msp_ticketd::service;
use msp_ticketd::store::Store;
use ticketing_core::secret::Secret;

#[derive(Subcommand)]
pub(crate) enum UsersAction {
    /// Add a user: `users add alice --role operator` (the password from a prompt, or the first
    /// line of `--password-file`).
    Add {
        /// The login name.
        name: String,
        /// `viewer`, `operator` or `admin`.
        #[arg(long)]
        role: Role,
        /// Read the password from this file (`-`: standard input) instead of a prompt.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Every user with its role (never a password or hash).
    List,
    /// Remove a user; its sessions and API tokens end.
    Remove {
        /// The login name.
        name: String,
    },
    /// Change a user's role (its sessions and tokens act with the new one at once).
    SetRole {
        /// The login name.
        name: String,
        /// `viewer`, `operator` or `admin`.
        role: Role,
    },
    /// Set a new password; every session of the user ends (log out everywhere).
    ResetPassword {
        /// The login name.
        name: String,
        /// Read the password from this file (`-`: standard input) instead of a prompt.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// API tokens for automation.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand)]
pub(crate) enum TokenAction {
    /// Make a token for NAME (it acts with NAME's role); printed once, stored hashed.
    Create {
        /// The user.
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revoke a token by its id (as `token list` shows it): refused (401) from then on.
    Revoke {
        /// The token's id.
        id: String,
    },
    /// Every token: id, user, label, made, last used (never the token).
    List,
}

fn access(store: &Arc<dyn Store>) -> Result<&dyn AccessStore> {
    store.access().context("this store keeps no users")
}

fn password(name: &str, file: Option<&PathBuf>) -> Result<Secret> {
    let text = match file {
        Some(f) if f.as_os_str() == "-" => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
            line
        }
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("--password-file {}", f.display()))?,
        None => {
            let first = rpassword::prompt_password(format!("Password for {name}: ")).context("reading the password")?;
            let again = rpassword::prompt_password("Again: ").context("reading the password")?;
            if first != again {
                bail!("password: the two entries differ");
            }
            first
        }
    };
    Ok(Secret::new(text.lines().next().unwrap_or_default().to_owned()))
}

/// `msp-ticketd users …`.
pub(crate) fn users(config: &Config, action: UsersAction) -> Result<ExitCode> {
    let (store, _) = service::open_store(config)?;
    let a = access(&store)?;
    let actor = Actor::cli();
    let now = chrono::Utc::now();
    match action {
        UsersAction::Add { name, role, password_file } => {
            let p = password(&name, password_file.as_ref())?;
            users::add(a, &actor, &name, role, &p, now)?;
            println!("added {name} ({role})");
        }
        UsersAction::List => {
            for u in users::list(a, now)? {
                let locked = u.locked_until.map(|t| format!("\tlocked until {t}")).unwrap_or_default();
                println!("{}\t{}\tpassword set {}{locked}", u.name, u.role, u.password_changed_at);
            }
        }
        UsersAction::Remove { name } => {
            users::remove(a, &actor, &name, now)?;
            println!("removed {name}; its sessions and tokens ended");
        }
        UsersAction::SetRole { name, role } => {
            users::set_role(a, &actor, &name, role, now)?;
            println!("{name} now has the {role} role");
        }
        UsersAction::ResetPassword { name, password_file } => {
            let p = password(&name, password_file.as_ref())?;
            users::reset_password(a, &actor, &name, &p, now)?;
            println!("new password for {name}; every session of {name} ended");
        }
        UsersAction::Token { action: TokenAction::Create { name, label } } => {
            let t = users::create_token(a, &actor, &name, &label, now)?;
            eprintln!("API token {} for {name}; shown this once (send it as `Authorization: Bearer …`):", t.id);
            println!("{}", t.token.expose());
        }
        UsersAction::Token { action: TokenAction::Revoke { id } } => {
            users::revoke_token(a, &actor, &id, now)?;
            println!("revoked API token {id}");
        }
        UsersAction::Token { action: TokenAction::List } => {
            for t in users::tokens(a)? {
                let used = t.last_used_at.map_or_else(|| "never used".to_owned(), |u| format!("last used {u}"));
                println!("{}\t{}\t{}\tmade {}\t{used}", t.id, t.user, t.label, t.created_at);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `msp-ticketd changes`: the change log, newest first, one JSON object a line.
pub(crate) fn changes(config: &Config, limit: usize, since: Option<&str>) -> Result<ExitCode> {
    let (store, _) = service::open_store(config)?;
    let since = since
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&chrono::Utc))
                .with_context(|| format!("--since: `{t}` is not an RFC 3339 time"))
        })
        .transpose()?;
    for c in access(&store)?.changes(&ChangeQuery { since, limit })? {
        println!("{}", serde_json::to_string(&c)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Records a CLI command's change in the change log: the revisions before, then after.
pub(crate) struct Tracker {
    store: Arc<dyn Store>,
    before: Revisions,
}

impl Tracker {
    /// Notes the revisions before the command (`None` when the store cannot be opened: the
    /// command itself will say why).
    pub(crate) fn start(config: &Config) -> Option<Self> {
        let (store, _) = service::open_store(config).ok()?;
        let before = revisions(store.as_ref());
        Some(Self { store, before })
    }

    /// Records `kind` when the command moved its revision (or, for one without, succeeded).
    pub(crate) fn finish(self, kind: Option<ChangeKind>, section: Option<String>, ok: bool) {
        let Some(kind) = kind.filter(|_| ok) else { return };
        let after = revisions(self.store.as_ref());
        let moved = match kind {
            ChangeKind::Mapping => after.mapping != self.before.mapping,
            ChangeKind::LedgerRetry | ChangeKind::Reload => true,
            _ => after.rules != self.before.rules,
        };
        if moved {
            record_in(self.store.as_ref(), &Actor::cli(), kind, section, self.before, "command line".to_owned());
        }
    }
}
