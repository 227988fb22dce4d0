//! Password logins with the lockout: `login_max_failures` failures of one user within
//! `login_failure_window_secs` lock it for `login_lockout_secs` (counted in the store, so every
//! instance counts together).
//!
//! A refusal never tells whether the user exists: an unknown name is checked against a dummy
//! hash (the same time as a wrong password), and its failures are counted in memory with the
//! same policy, so it "locks" like a real user does.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::credentials::{verify_nothing, verify_password};
use super::{AccessSettings, AccessStore};
use crate::store::{LoginFailures, User, UserChange};

/// At most this many unknown names are remembered (the oldest goes beyond it).
const MAX_PHANTOMS: usize = 10_000;

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The name and password do not match (an unknown name says the same).
    Invalid,
    /// Too many failures: locked until then.
    Locked {
        /// When logins of this name are taken again.
        until: DateTime<Utc>,
    },
    /// The store did not answer.
    Unavailable,
}

impl Refused {
    /// In words, for the login form and the API.
    pub fn message(&self, now: DateTime<Utc>) -> String {
        match self {
            Self::Invalid => {
                "Not logged in: the user name and password do not match, or that is not the admin token.".to_owned()
            }
            Self::Locked { until } => {
                let minutes = ((*until - now).num_seconds().max(1) + 59) / 60;
                format!("Not logged in: too many failed logins for this user name. Try again in {minutes} minute(s).")
            }
            Self::Unavailable => "Not logged in: the store does not answer; try again shortly.".to_owned(),
        }
    }
}

/// The login checker (one per listener; the unknown names' failures live here).
#[derive(Debug, Default)]
pub struct Logins {
    phantoms: Mutex<HashMap<String, LoginFailures>>,
}

impl Logins {
    /// Checks a user name and password.
    pub fn password(
        &self,
        store: &dyn AccessStore,
        settings: &AccessSettings,
        name: &str,
        password: &str,
    ) -> Result<User, Refused> {
        let now = settings.clock.now();
        let user = store.user(name).map_err(|e| {
            tracing::error!(error = %e, "cannot read users for a login");
            Refused::Unavailable
        })?;
        let Some(user) = user else {
            verify_nothing(password);
            return Err(self.phantom_failure(name, now, settings));
        };
        if let Some(until) = user.failures.locked_at(now) {
            verify_nothing(password);
            return Err(Refused::Locked { until });
        }
        if verify_password(&user.password_hash, password) {
            if user.failures != LoginFailures::default() {
                let _ = store.update_user(name, &UserChange::ClearFailures);
            }
            return Ok(user);
        }
        match store.login_failed(name, now, &settings.lockout) {
            Ok(Some(after)) => match after.locked_at(now) {
                Some(until) => {
                    tracing::warn!(user = %name, "login locked after repeated failures");
                    Err(Refused::Locked { until })
                }
                None => Err(Refused::Invalid),
            },
            Ok(None) => Err(self.phantom_failure(name, now, settings)),
            Err(e) => {
                tracing::error!(error = %e, "cannot count a failed login");
                Err(Refused::Unavailable)
            }
        }
    }

    fn phantom_failure(&self, name: &str, now: DateTime<Utc>, settings: &AccessSettings) -> Refused {
        let mut map = self.phantoms.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_PHANTOMS && !map.contains_key(name) {
            map.retain(|_, f| f.locked_at(now).is_some());
            if map.len() >= MAX_PHANTOMS {
                map.clear();
            }
        }
        let f = map.entry(name.to_owned()).or_default();
        if let Some(until) = f.locked_at(now) {
            return Refused::Locked { until };
        }
        *f = f.after_failure(now, &settings.lockout);
        match f.locked_at(now) {
            Some(until) => Refused::Locked { until },
            None => Refused::Invalid,
        }
    }
}
