//! Who may do what (issue 28): users with a role, logins with lockout, browser sessions and API
//! tokens kept in the store, and the change log. The HTTP side (which route needs which role,
//! rate limits) is the `gate` module; this one is the operations, shared by the admin API, the
//! UI and the CLI.
//!
//! - [`credentials`]: Argon2id password hashes, random ids, SHA-256 digests of tokens;
//! - [`users`]: add, remove, change role, reset password, API tokens; each recorded;
//! - [`login`]: password logins, the lockout, refusals that do not tell whether a user exists;
//! - [`sessions`]: browser sessions in the store (so they survive a failover), idle expiry;
//! - [`changes`]: the change log.
//!
//! Time comes from the [`Clock`] in [`AccessSettings`], so tests move it instead of sleeping.

pub mod changes;
pub mod credentials;
pub mod login;
pub mod sessions;
pub mod users;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

pub use crate::store::{AccessStore, Change, ChangeKind, ChangeQuery, LockoutPolicy, Role};

/// Where the time comes from.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    /// A clock that stands still until moved (tests): the clock and its hand.
    pub fn manual(start: DateTime<Utc>) -> (Self, Arc<Mutex<DateTime<Utc>>>) {
        let hand = Arc::new(Mutex::new(start));
        let read = hand.clone();
        (Self(Arc::new(move || *read.lock().unwrap_or_else(std::sync::PoisonError::into_inner))), hand)
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// How sessions and logins behave (from `[admin]`).
#[derive(Debug, Clone)]
pub struct AccessSettings {
    /// A session unused this long ends (`admin.session_idle_minutes`).
    pub session_idle: TimeDelta,
    /// The lockout (`admin.login_*`).
    pub lockout: LockoutPolicy,
    /// Where the time comes from.
    pub clock: Clock,
}

impl Default for AccessSettings {
    /// 30 minutes idle; 5 failures within 5 minutes lock for 5 minutes; the system clock.
    fn default() -> Self {
        Self {
            session_idle: TimeDelta::minutes(30),
            lockout: LockoutPolicy { max_failures: 5, window: TimeDelta::minutes(5), lock_for: TimeDelta::minutes(5) },
            clock: Clock::system(),
        }
    }
}

impl AccessSettings {
    /// The settings of a configuration's `[admin]`.
    pub fn from_config(admin: &crate::config::AdminConfig) -> Self {
        let secs = |s: u64| TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2_000));
        Self {
            session_idle: secs(admin.session_idle_minutes.saturating_mul(60)),
            lockout: LockoutPolicy {
                max_failures: admin.login_max_failures,
                window: secs(admin.login_failure_window_secs),
                lock_for: secs(admin.login_lockout_secs),
            },
            clock: Clock::system(),
        }
    }
}

/// Who acts: the change log's "who".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The configured `admin.token` (as a bearer token or at the UI's login).
    ConfigToken,
    /// A user, logged in with a password.
    User(String),
    /// A user's API token.
    Token {
        /// Whose.
        user: String,
        /// The token's public id.
        id: String,
    },
    /// The command line, as this operating-system user.
    Cli(String),
    /// `SIGHUP`.
    Signal,
}

impl Actor {
    /// The actor in the change log: `alice`, `alice (token 3f2a9c01d4e2)`, `admin.token`,
    /// `cli:root`, `SIGHUP`.
    pub fn label(&self) -> String {
        match self {
            Self::ConfigToken => "admin.token".to_owned(),
            Self::User(name) => name.clone(),
            Self::Token { user, id } => format!("{user} (token {id})"),
            Self::Cli(user) => format!("cli:{user}"),
            Self::Signal => "SIGHUP".to_owned(),
        }
    }

    /// The command line's actor: the operating-system user running it.
    pub fn cli() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self::Cli(
            var("SUDO_USER").or_else(|| var("USER")).or_else(|| var("LOGNAME")).unwrap_or_else(|| "unknown".into()),
        )
    }

    /// The user behind the actor, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::User(u) | Self::Token { user: u, .. } => Some(u),
            _ => None,
        }
    }
}

/// Who makes a request, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who.
    pub actor: Actor,
    /// With which role.
    pub role: Role,
}

impl Principal {
    /// Whether the principal's role is at least `need`.
    pub fn may(&self, need: Role) -> bool {
        self.role >= need
    }
}
