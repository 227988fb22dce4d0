//! Browser sessions: a random id in an HttpOnly, SameSite=Strict cookie; the session itself (its
//! user, its CSRF token, when it was last used) kept in the store by the id's digest, so every
//! instance of an HA setup knows it and it survives a failover ([`crate::access::sessions`]).
//! Only the pending messages stay in this instance's memory. No password or token is ever put
//! in the cookie.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, header};

use crate::access::{AccessSettings, Principal, sessions};
use crate::store::Store;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "msp_ui_session";
/// At most this many sessions' pending messages are kept (the oldest go beyond it).
const MAX_FLASHES: usize = 1024;

/// A message shown once on the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    /// `ok` or `error`.
    pub(crate) kind: &'static str,
    /// Headline.
    pub(crate) text: String,
    /// Details (e.g. every problem of a refused save).
    pub(crate) details: Vec<String>,
}

/// What a request learns about its session.
#[derive(Debug, Clone)]
pub(crate) struct SessionView {
    /// The session's key: its id's digest (never the cookie's value).
    pub(crate) id: String,
    /// The CSRF token every state-changing form must carry.
    pub(crate) csrf: String,
    /// Who is logged in, with which role.
    pub(crate) principal: Principal,
}

/// The sessions, over the store.
pub(crate) struct Sessions {
    store: Arc<dyn Store>,
    settings: AccessSettings,
    flash: Mutex<HashMap<String, Vec<Flash>>>,
}

impl Sessions {
    /// Sessions in `store`.
    pub(crate) fn new(store: Arc<dyn Store>, settings: AccessSettings) -> Self {
        Self { store, settings, flash: Mutex::new(HashMap::new()) }
    }

    fn flashes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Flash>>> {
        self.flash.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session of `user` (`None`: the configured `admin.token`); the cookie's value.
    pub(crate) fn create(&self, user: Option<&str>) -> Option<String> {
        let store = self.store.access()?;
        match sessions::start(store, &self.settings, user) {
            Ok(started) => Some(started.cookie.expose().to_owned()),
            Err(e) => {
                tracing::error!(error = %e, "cannot start a session");
                None
            }
        }
    }

    /// The live session named by the request's cookie, if any (and marks it used).
    pub(crate) fn lookup(&self, headers: &HeaderMap) -> Option<SessionView> {
        let id = cookie_value(headers, COOKIE)?;
        let store = self.store.access()?;
        match sessions::resolve(store, &self.settings, &id) {
            Ok(live) => live.map(|l| SessionView { id: l.digest, csrf: l.csrf, principal: l.principal }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the session");
                None
            }
        }
    }

    /// Ends a session.
    pub(crate) fn remove(&self, id: &str) {
        self.flashes().remove(id);
        if let Some(store) = self.store.access() {
            if let Err(e) = sessions::end(store, id) {
                tracing::warn!(error = %e, "cannot end the session");
            }
        }
    }

    /// Queues a message for the session's next page.
    pub(crate) fn flash(&self, id: &str, flash: Flash) {
        let mut map = self.flashes();
        if map.len() >= MAX_FLASHES && !map.contains_key(id) {
            map.clear();
        }
        map.entry(id.to_owned()).or_default().push(flash);
    }

    /// Takes the session's queued messages.
    pub(crate) fn take_flash(&self, id: &str) -> Vec<Flash> {
        self.flashes().remove(id).unwrap_or_default()
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The `Set-Cookie` value that installs a session.
pub(crate) fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        let store: Arc<dyn Store> = Arc::new(crate::store::SqliteStore::in_memory().unwrap());
        Sessions::new(store, AccessSettings::default())
    }

    #[test]
    fn sessions_have_distinct_random_ids_and_csrf_tokens() {
        let s = sessions();
        let a = s.create(None).unwrap();
        let b = s.create(None).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("other=1; {COOKIE}={a}").parse().unwrap());
        let view = s.lookup(&h).expect("session found");
        assert_ne!(view.id, a, "the store knows the digest, not the cookie");
        assert_ne!(view.csrf, a);
        s.remove(&view.id);
        assert!(s.lookup(&h).is_none());
    }

    #[test]
    fn flash_is_taken_once() {
        let s = sessions();
        s.flash("x", Flash { kind: "ok", text: "saved".into(), details: vec![] });
        assert_eq!(s.take_flash("x").len(), 1);
        assert!(s.take_flash("x").is_empty());
    }
}
