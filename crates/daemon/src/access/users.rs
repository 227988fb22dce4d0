//! Managing users and their API tokens, shared by `msp-ticketd users`, the admin API and the UI.
//! Every change is recorded in the change log with who made it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use ticketing_core::secret::Secret;

use super::changes::record;
use super::credentials::{digest, hash_password, new_token, password_problem};
use super::{AccessStore, Actor, ChangeKind, Role};
use crate::store::{StoreError, TokenRecord, User, UserChange};

/// Why a user operation was refused. Messages name the field, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The store keeps no users (a test double).
    #[error("this store keeps no users")]
    NoStore,
    /// A bad user name.
    #[error("name: {0}")]
    InvalidName(String),
    /// A bad password.
    #[error("{0}")]
    WeakPassword(String),
    /// A bad token label.
    #[error("label: {0}")]
    InvalidLabel(String),
    /// A user of that name exists.
    #[error("name: a user `{0}` exists already")]
    Exists(String),
    /// No user of that name.
    #[error("name: there is no user `{0}`")]
    NoSuchUser(String),
    /// No token with that id.
    #[error("id: there is no API token `{0}`")]
    NoSuchToken(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A user as lists show it (never the hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Added.
    pub created_at: DateTime<Utc>,
    /// Password last set.
    pub password_changed_at: DateTime<Utc>,
    /// Locked until then, if locked now.
    pub locked_until: Option<DateTime<Utc>>,
}

/// A token as lists show it (never the token or its digest).
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    /// Public id.
    pub id: String,
    /// Whose.
    pub user: String,
    /// What for.
    pub label: String,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last used.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token just made: shown once.
#[derive(Debug)]
pub struct NewToken {
    /// Public id (for `revoke`).
    pub id: String,
    /// The whole token.
    pub token: Secret,
}

fn check_name(name: &str) -> Result<(), UserError> {
    let ok = (1..=64).contains(&name.chars().count())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::InvalidName(format!(
            "`{name}` is not a user name (expected 1 to 64 letters, digits, `.`, `_`, `-` or `@`)"
        )))
    }
}

fn hashed(password: &Secret) -> Result<Secret, UserError> {
    if let Some(p) = password_problem(password.expose()) {
        return Err(UserError::WeakPassword(p));
    }
    hash_password(password).map_err(UserError::WeakPassword)
}

fn note(store: &dyn AccessStore, actor: &Actor, kind: ChangeKind, section: &str, detail: String, now: DateTime<Utc>) {
    record(store, actor, kind, Some(section.to_owned()), None, None, detail, now);
}

/// Adds a user.
pub fn add(
    store: &dyn AccessStore,
    actor: &Actor,
    name: &str,
    role: Role,
    password: &Secret,
    now: DateTime<Utc>,
) -> Result<(), UserError> {
    check_name(name)?;
    let user = User {
        name: name.to_owned(),
        role,
        password_hash: hashed(password)?,
        password_changed_at: now,
        created_at: now,
        failures: Default::default(),
    };
    if !store.insert_user(&user)? {
        return Err(UserError::Exists(name.to_owned()));
    }
    note(store, actor, ChangeKind::UserAdd, name, format!("added `{name}` with the {role} role"), now);
    Ok(())
}

/// Removes a user, its sessions and tokens.
pub fn remove(store: &dyn AccessStore, actor: &Actor, name: &str, now: DateTime<Utc>) -> Result<(), UserError> {
    if !store.remove_user(name)? {
        return Err(UserError::NoSuchUser(name.to_owned()));
    }
    note(store, actor, ChangeKind::UserRemove, name, format!("removed `{name}` (its sessions and tokens ended)"), now);
    Ok(())
}

/// Changes a user's role (its sessions and tokens act with it at once).
pub fn set_role(
    store: &dyn AccessStore,
    actor: &Actor,
    name: &str,
    role: Role,
    now: DateTime<Utc>,
) -> Result<(), UserError> {
    let before = store.user(name)?.ok_or_else(|| UserError::NoSuchUser(name.to_owned()))?.role;
    if !store.update_user(name, &UserChange::Role(role))? {
        return Err(UserError::NoSuchUser(name.to_owned()));
    }
    note(store, actor, ChangeKind::UserRole, name, format!("`{name}`: {before} \u{2192} {role}"), now);
    Ok(())
}

/// Sets a new password: every session of the user ends (log out everywhere), the lockout lifts.
pub fn reset_password(
    store: &dyn AccessStore,
    actor: &Actor,
    name: &str,
    password: &Secret,
    now: DateTime<Utc>,
) -> Result<(), UserError> {
    let hash = hashed(password)?;
    if !store.update_user(name, &UserChange::Password { hash, at: now })? {
        return Err(UserError::NoSuchUser(name.to_owned()));
    }
    let detail = format!("new password for `{name}`; every session of it ended");
    note(store, actor, ChangeKind::UserPassword, name, detail, now);
    Ok(())
}

/// Every user.
pub fn list(store: &dyn AccessStore, now: DateTime<Utc>) -> Result<Vec<UserView>, UserError> {
    Ok(store
        .users()?
        .into_iter()
        .map(|u| UserView {
            locked_until: u.failures.locked_at(now),
            name: u.name,
            role: u.role,
            created_at: u.created_at,
            password_changed_at: u.password_changed_at,
        })
        .collect())
}

/// Makes an API token for `user` (it acts with the user's role).
pub fn create_token(
    store: &dyn AccessStore,
    actor: &Actor,
    user: &str,
    label: &str,
    now: DateTime<Utc>,
) -> Result<NewToken, UserError> {
    if label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(UserError::InvalidLabel("is over 100 characters or has control characters".to_owned()));
    }
    if store.user(user)?.is_none() {
        return Err(UserError::NoSuchUser(user.to_owned()));
    }
    let (id, token) = new_token();
    store.insert_token(&TokenRecord {
        id: id.clone(),
        user: user.to_owned(),
        label: label.to_owned(),
        digest: Secret::new(digest(token.expose())),
        created_at: now,
        last_used_at: None,
    })?;
    note(store, actor, ChangeKind::TokenCreate, &id, format!("API token {id} for `{user}` ({label})"), now);
    Ok(NewToken { id, token })
}

/// Revokes an API token: it is refused (401) from now on.
pub fn revoke_token(store: &dyn AccessStore, actor: &Actor, id: &str, now: DateTime<Utc>) -> Result<(), UserError> {
    let owner = store.token(id)?.map(|t| t.user);
    if !store.revoke_token(id)? {
        return Err(UserError::NoSuchToken(id.to_owned()));
    }
    let detail = format!("API token {id} of `{}` revoked", owner.unwrap_or_default());
    note(store, actor, ChangeKind::TokenRevoke, id, detail, now);
    Ok(())
}

/// Every API token.
pub fn tokens(store: &dyn AccessStore) -> Result<Vec<TokenView>, UserError> {
    Ok(store
        .tokens()?
        .into_iter()
        .map(|t| TokenView {
            id: t.id,
            user: t.user,
            label: t.label,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        })
        .collect())
}
