//! The checks of `[admin]`'s access keys (issue 28): TLS files, plain HTTP off loopback, the
//! session, lockout and rate-limit numbers.

use super::{Config, Sink};

/// At most a week of idle time.
const MAX_IDLE_MINUTES: u64 = 7 * 24 * 60;

impl Config {
    pub(super) fn admin_access_problems(&self, s: &mut Sink<'_>) {
        let a = &self.admin;
        let tls = match (&a.tls_cert, &a.tls_key) {
            (Some(cert), Some(key)) => {
                for (name, path, marker) in
                    [("admin.tls_cert", cert, "CERTIFICATE"), ("admin.tls_key", key, "PRIVATE KEY")]
                {
                    match std::fs::read_to_string(path) {
                        Err(e) => s.error(name, format!("cannot read {}: {e}", path.display())),
                        Ok(text) if !text.contains("-----BEGIN ") || !text.contains(marker) => s.error(
                            name,
                            format!(
                                "{} holds no PEM {} (expected a `-----BEGIN ...{marker}-----` block)",
                                path.display(),
                                marker.to_lowercase()
                            ),
                        ),
                        Ok(_) => {}
                    }
                }
                true
            }
            (Some(_), None) => {
                s.error("admin.tls_key", "is missing: admin.tls_cert is set (expected both, or neither)");
                false
            }
            (None, Some(_)) => {
                s.error("admin.tls_cert", "is missing: admin.tls_key is set (expected both, or neither)");
                false
            }
            (None, None) => false,
        };
        if !tls && !a.listen.ip().is_loopback() {
            if a.allow_plain_http {
                s.warning(
                    "admin.listen",
                    "is not a loopback address and the admin listener has no TLS: the token and UI \
                     sessions cross the network in clear text (allowed by admin.allow_plain_http; \
                     expected a TLS-terminating proxy in front)",
                );
            } else {
                s.error(
                    "admin.listen",
                    "is not a loopback address and the admin listener has no TLS: passwords, tokens and \
                     sessions would cross the network in clear text (expected admin.tls_cert and \
                     admin.tls_key, or admin.allow_plain_http = true behind a TLS-terminating proxy)",
                );
            }
        }
        if a.session_idle_minutes == 0 || a.session_idle_minutes > MAX_IDLE_MINUTES {
            s.error(
                "admin.session_idle_minutes",
                format!("is {} (expected 1 to {MAX_IDLE_MINUTES} minutes)", a.session_idle_minutes),
            );
        }
        for (key, value) in [
            ("admin.login_max_failures", u64::from(a.login_max_failures)),
            ("admin.login_failure_window_secs", a.login_failure_window_secs),
            ("admin.login_lockout_secs", a.login_lockout_secs),
            ("admin.client_requests_per_minute", u64::from(a.client_requests_per_minute)),
            ("admin.client_burst", u64::from(a.client_burst)),
            ("admin.global_requests_per_minute", u64::from(a.global_requests_per_minute)),
            ("admin.global_burst", u64::from(a.global_burst)),
        ] {
            if value == 0 {
                s.error(key, "is 0 (expected at least 1)");
            }
        }
    }
}
