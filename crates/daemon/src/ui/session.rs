//! Browser sessions: a random id in an HttpOnly, SameSite=Strict cookie, the session itself
//! (its CSRF token and pending messages) kept in memory on the server. The admin token is only
//! ever checked at login; it is never stored in the cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use rand::RngCore;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "msp_ui_session";
/// A session unused this long is forgotten.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// At most this many live sessions (the oldest is dropped beyond it).
const MAX_SESSIONS: usize = 256;

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

#[derive(Debug)]
struct Session {
    csrf: String,
    last_used: Instant,
    flash: Vec<Flash>,
}

/// What a request learns about its session.
#[derive(Debug, Clone)]
pub(crate) struct SessionView {
    /// The session id (the cookie's value).
    pub(crate) id: String,
    /// The CSRF token every state-changing form must carry.
    pub(crate) csrf: String,
}

/// The server-side session table.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session; returns its id.
    pub(crate) fn create(&self) -> String {
        let id = random_token();
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, s| now.duration_since(s.last_used) < IDLE);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), Session { csrf: random_token(), last_used: now, flash: Vec::new() });
        id
    }

    /// The live session named by the request's cookie, if any (and marks it used).
    pub(crate) fn lookup(&self, headers: &HeaderMap) -> Option<SessionView> {
        let id = cookie_value(headers, COOKIE)?;
        let mut map = self.lock();
        let now = Instant::now();
        let session = map.get_mut(&id)?;
        if now.duration_since(session.last_used) >= IDLE {
            map.remove(&id);
            return None;
        }
        session.last_used = now;
        Some(SessionView { id, csrf: session.csrf.clone() })
    }

    /// Ends a session.
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Queues a message for the session's next page.
    pub(crate) fn flash(&self, id: &str, flash: Flash) {
        if let Some(s) = self.lock().get_mut(id) {
            s.flash.push(flash);
        }
    }

    /// Takes the session's queued messages.
    pub(crate) fn take_flash(&self, id: &str) -> Vec<Flash> {
        self.lock().get_mut(id).map(|s| std::mem::take(&mut s.flash)).unwrap_or_default()
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

    #[test]
    fn sessions_have_distinct_random_ids_and_csrf_tokens() {
        let s = Sessions::default();
        let a = s.create();
        let b = s.create();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("other=1; {COOKIE}={a}").parse().unwrap());
        let view = s.lookup(&h).expect("session found");
        assert_eq!(view.id, a);
        assert_ne!(view.csrf, a);
        s.remove(&a);
        assert!(s.lookup(&h).is_none());
    }

    #[test]
    fn flash_is_taken_once() {
        let s = Sessions::default();
        let id = s.create();
        s.flash(&id, Flash { kind: "ok", text: "saved".into(), details: vec![] });
        assert_eq!(s.take_flash(&id).len(), 1);
        assert!(s.take_flash(&id).is_empty());
    }
}
