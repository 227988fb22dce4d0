//! Who may use the admin API and the web UI, kept in the store so that every instance of an HA
//! setup knows them (issue 28): users with a [`Role`], their browser sessions, their API tokens,
//! and the log of who changed what ([`Change`]).
//!
//! [`AccessStore`] is a trait of its own beside [`super::Store`]: the SQLite and PostgreSQL stores
//! implement both, and [`super::Store::access`] hands it out. The store keeps hashes only: a
//! password's Argon2id hash (made and checked by the daemon), a session id's and an API token's
//! SHA-256 digest (both 256-bit random values, so a fast digest cannot be searched), never the
//! secret itself. Their `Debug` shows `***`.
//!
//! The lockout's counting ([`LoginFailures::after_failure`]) is done here, as one
//! read-modify-write transaction of the store, so several instances count one user's failures
//! together.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use ticketing_core::secret::Secret;

use super::StoreError;

/// What a user may do. Ordered: each role may do everything of the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads every page and API (except user management).
    Viewer,
    /// Also edits rules, the mapping and maintenance windows, and retries failed tickets.
    Operator,
    /// Also manages users and tokens and reloads the configuration: everything.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Self; 3] = [Self::Viewer, Self::Operator, Self::Admin];

    /// The spelling in the store, the API, the CLI and the configuration.
    pub fn code(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Self::Viewer),
            "operator" => Ok(Self::Operator),
            "admin" => Ok(Self::Admin),
            other => Err(format!("unknown role `{other}` (expected viewer, operator or admin)")),
        }
    }
}

/// A user's recent failed logins: the lockout's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFailures {
    /// Failures counted in the current window.
    pub count: u32,
    /// When the window's first failure happened.
    pub since: Option<DateTime<Utc>>,
    /// Locked until then (no login, even with the right password).
    pub locked_until: Option<DateTime<Utc>>,
}

/// How many failures lock a user, within how long, for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures that lock (5).
    pub max_failures: u32,
    /// Within this window (5 minutes).
    pub window: TimeDelta,
    /// Locked this long (5 minutes).
    pub lock_for: TimeDelta,
}

impl LoginFailures {
    /// Whether the user is locked at `now`.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }

    /// The state after one more failure at `now`: a failure outside the window starts a new
    /// one; the `max_failures`-th within it locks the user for `lock_for` (and starts counting
    /// afresh).
    pub fn after_failure(self, now: DateTime<Utc>, policy: &LockoutPolicy) -> Self {
        if self.locked_at(now).is_some() {
            return self;
        }
        let in_window = self.since.is_some_and(|s| now - s < policy.window);
        let (count, since) = if in_window { (self.count + 1, self.since) } else { (1, Some(now)) };
        if count >= policy.max_failures.max(1) {
            Self { count: 0, since: None, locked_until: Some(now + policy.lock_for) }
        } else {
            Self { count, since, locked_until: None }
        }
    }
}

/// A user of the admin API and the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name (unique).
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// The password's Argon2id hash (PHC string).
    pub password_hash: Secret,
    /// When the password was last set.
    pub password_changed_at: DateTime<Utc>,
    /// When the user was added.
    pub created_at: DateTime<Utc>,
    /// The lockout's state.
    pub failures: LoginFailures,
}

/// One change of a user, applied in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// Another role (sessions and tokens then act with it at once).
    Role(Role),
    /// A new password: every session of the user ends with it (log out everywhere), and the
    /// lockout is lifted.
    Password {
        /// The new Argon2id hash.
        hash: Secret,
        /// When.
        at: DateTime<Utc>,
    },
    /// A successful login: the failure count starts again.
    ClearFailures,
}

/// A browser session, by its id's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session id (hex); the id itself is only in the user's cookie.
    pub id_digest: Secret,
    /// Whose session (`None`: logged in with the configured `admin.token`).
    pub user: Option<String>,
    /// The CSRF token the session's forms carry.
    pub csrf: Secret,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it was last used (idle expiry counts from here).
    pub last_seen_at: DateTime<Utc>,
}

/// A per-user API token, by its public id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The public part (`mspt_<id>_<secret>`'s id), shown in lists and the change log.
    pub id: String,
    /// Whose token (it acts with the user's role).
    pub user: String,
    /// What it is for.
    pub label: String,
    /// SHA-256 of the whole token (hex).
    pub digest: Secret,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last used, if ever.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What a [`Change`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// An edit of the rules' draft (rows, general settings, text, priority follows severity).
    RulesDraft,
    /// A section's draft saved: the rules in use changed.
    RulesSave,
    /// A section's draft put back to the saved rules.
    RulesCancel,
    /// A section's defaults put into the draft.
    RulesReset,
    /// The draft's maintenance windows.
    Maintenance,
    /// The tenant mapping.
    Mapping,
    /// Failed tickets asked to be retried.
    LedgerRetry,
    /// The configuration re-read.
    Reload,
    /// A user added.
    UserAdd,
    /// A user removed.
    UserRemove,
    /// A user's role changed.
    UserRole,
    /// A user's password reset.
    UserPassword,
    /// An API token made.
    TokenCreate,
    /// An API token revoked.
    TokenRevoke,
}

impl ChangeKind {
    /// Every kind.
    pub const ALL: [Self; 14] = [
        Self::RulesDraft,
        Self::RulesSave,
        Self::RulesCancel,
        Self::RulesReset,
        Self::Maintenance,
        Self::Mapping,
        Self::LedgerRetry,
        Self::Reload,
        Self::UserAdd,
        Self::UserRemove,
        Self::UserRole,
        Self::UserPassword,
        Self::TokenCreate,
        Self::TokenRevoke,
    ];

    /// The spelling in the store and the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::RulesDraft => "rules_draft",
            Self::RulesSave => "rules_save",
            Self::RulesCancel => "rules_cancel",
            Self::RulesReset => "rules_reset",
            Self::Maintenance => "maintenance",
            Self::Mapping => "mapping",
            Self::LedgerRetry => "ledger_retry",
            Self::Reload => "reload",
            Self::UserAdd => "user_add",
            Self::UserRemove => "user_remove",
            Self::UserRole => "user_role",
            Self::UserPassword => "user_password",
            Self::TokenCreate => "token_create",
            Self::TokenRevoke => "token_revoke",
        }
    }

    /// The kind of a stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// In words, for the Changes view.
    pub fn words(self) -> &'static str {
        match self {
            Self::RulesDraft => "edited the rules' draft",
            Self::RulesSave => "saved rules",
            Self::RulesCancel => "cancelled the draft's changes",
            Self::RulesReset => "reset rules to the defaults (in the draft)",
            Self::Maintenance => "changed maintenance windows (in the draft)",
            Self::Mapping => "changed the tenant mapping",
            Self::LedgerRetry => "asked to retry failed tickets",
            Self::Reload => "reloaded the configuration",
            Self::UserAdd => "added a user",
            Self::UserRemove => "removed a user",
            Self::UserRole => "changed a user's role",
            Self::UserPassword => "reset a user's password",
            Self::TokenCreate => "made an API token",
            Self::TokenRevoke => "revoked an API token",
        }
    }
}

/// One entry of the change log: who changed what, when, and the revisions around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// When.
    pub at: DateTime<Utc>,
    /// Who: a user name, `NAME (token ID)`, `admin.token`, `cli:OS_USER` or `SIGHUP`.
    pub actor: String,
    /// What.
    pub kind: ChangeKind,
    /// Where: the rules section (`events/security_center`), the tenant, the user, the token id.
    pub section: Option<String>,
    /// The revision before (rules or mapping), when the state has one.
    pub revision_before: Option<u64>,
    /// The revision after.
    pub revision_after: Option<u64>,
    /// More, in words (never a secret).
    pub detail: String,
}

/// Which changes to list: newest first, at most `limit` (0: 200), optionally since a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeQuery {
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (0: 200, at most 10,000).
    pub limit: usize,
}

impl ChangeQuery {
    /// The row limit in force.
    pub fn limit(&self) -> usize {
        if self.limit == 0 { 200 } else { self.limit.min(10_000) }
    }
}

/// Users, sessions, API tokens and the change log (see the module docs). Every method is one
/// transaction.
pub trait AccessStore: Send + Sync {
    /// Every user, by name.
    fn users(&self) -> Result<Vec<User>, StoreError>;
    /// One user.
    fn user(&self, name: &str) -> Result<Option<User>, StoreError>;
    /// Adds a user; `false` when one of that name exists (nothing changed).
    fn insert_user(&self, user: &User) -> Result<bool, StoreError>;
    /// Changes a user; `false` when there is none of that name.
    fn update_user(&self, name: &str, change: &UserChange) -> Result<bool, StoreError>;
    /// Removes a user with its sessions and tokens; `false` when there is none of that name.
    fn remove_user(&self, name: &str) -> Result<bool, StoreError>;
    /// Counts a failed login of `name` at `now` ([`LoginFailures::after_failure`], one
    /// transaction); the state after it, or `None` when there is no such user.
    fn login_failed(
        &self,
        name: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> Result<Option<LoginFailures>, StoreError>;

    /// Starts a session.
    fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// A session by its id's digest.
    fn session(&self, id_digest: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Marks a session used at `at`.
    fn touch_session(&self, id_digest: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Ends a session.
    fn remove_session(&self, id_digest: &str) -> Result<(), StoreError>;
    /// Ends every session last used before `before`; how many.
    fn prune_sessions(&self, before: DateTime<Utc>) -> Result<usize, StoreError>;

    /// Adds an API token.
    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    /// A token by its public id.
    fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Every token (of every user), oldest first.
    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Revokes (removes) a token; `false` when there is none with that id.
    fn revoke_token(&self, id: &str) -> Result<bool, StoreError>;
    /// Marks a token used at `at`.
    fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Appends to the change log.
    fn record_change(&self, change: &Change) -> Result<(), StoreError>;
    /// The change log, newest first.
    fn changes(&self, query: &ChangeQuery) -> Result<Vec<Change>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockoutPolicy {
        LockoutPolicy { max_failures: 5, window: TimeDelta::minutes(5), lock_for: TimeDelta::minutes(5) }
    }

    #[test]
    fn five_failures_within_the_window_lock_for_the_period() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut f = LoginFailures::default();
        for i in 0..4 {
            f = f.after_failure(t0 + TimeDelta::seconds(i * 10), &policy());
            assert_eq!(f.locked_at(t0 + TimeDelta::seconds(i * 10)), None);
        }
        f = f.after_failure(t0 + TimeDelta::seconds(50), &policy());
        let until = t0 + TimeDelta::seconds(50) + TimeDelta::minutes(5);
        assert_eq!(f.locked_at(t0 + TimeDelta::seconds(51)), Some(until));
        assert_eq!(f.locked_at(until), None, "unlocked once the period is over");
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut f = LoginFailures::default();
        for i in 0..10 {
            let at = t0 + TimeDelta::minutes(2 * i);
            f = f.after_failure(at, &policy());
            assert_eq!(f.locked_at(at), None, "failure {i}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for k in ChangeKind::ALL {
            assert_eq!(ChangeKind::from_code(k.code()), Some(k));
        }
        for r in Role::ALL {
            assert_eq!(r.code().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().unwrap_err().contains("viewer, operator or admin"));
    }
}
