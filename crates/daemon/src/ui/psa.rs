//! Whether the PSA and the sources answer, as the Ticketing tab's banners say it.
//!
//! The state comes from [`crate::health::Health`], the same record `/readyz` reads: the engine
//! tells it every PSA answer and every source read as they happen. The banner shows the PSA as
//! unreachable from the first failed call (timeout, 5xx, 429, rejected credentials) until a
//! call is answered again (a refusal of one request counts as answered), and the catalog as
//! stale while its latest read failed. A source is failing while its latest read failed.
//!
//! While the PSA is failing or the catalog is stale (or not read yet), Save changes is refused:
//! values cannot be checked against the PSA's current lists.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::engine::Shared;

/// The PSA's state for the banner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PsaStatus {
    /// Since when PSA calls fail without any being answered, with the last failure's kind and
    /// the number of failed calls since.
    pub(crate) failing: Option<(DateTime<Utc>, String, u64)>,
    /// The last catalog read failed (no successful read since).
    pub(crate) catalog_stale: bool,
    /// When a successful catalog read was last seen.
    pub(crate) catalog_read_at: Option<DateTime<Utc>>,
}

fn kind_words(kind: &str) -> &'static str {
    match kind {
        "auth" => "rejects the integration's credentials",
        "ratelimited" | "rate_limited" => "is throttling the integration's requests",
        _ => "does not answer",
    }
}

impl PsaStatus {
    /// Whether Save changes must wait: no catalog, a stale one, or a PSA that does not answer.
    pub(crate) fn blocks_save(&self, has_catalog: bool) -> bool {
        !has_catalog || self.catalog_stale || self.failing.is_some()
    }

    /// The banner's headline and text, when there is something to warn about.
    pub(crate) fn problem(&self, has_catalog: bool) -> Option<(String, String)> {
        if !has_catalog {
            return Some((
                "The PSA catalog has not been read yet.".to_owned(),
                "Drop-downs show the stored values, and Save changes waits until the catalog has been read.".to_owned(),
            ));
        }
        let lists = match self.catalog_read_at {
            Some(t) => format!("the lists as last read ({} UTC)", t.format("%Y-%m-%d %H:%M:%S")),
            None => "the lists as last read".to_owned(),
        };
        if let Some((since, kind, n)) = &self.failing {
            return Some((
                format!("The PSA is unreachable: it {} (since {} UTC).", kind_words(kind), since.format("%H:%M:%S")),
                format!(
                    "{n} PSA call(s) failed and none was answered since. The catalog may be outdated: drop-downs show {lists}. Save changes is refused until the PSA answers again; your edits are kept in the draft."
                ),
            ));
        }
        if self.catalog_stale {
            return Some((
                "The PSA catalog is stale: its last refresh failed.".to_owned(),
                format!(
                    "Drop-downs show {lists}. Save changes is refused until the catalog has been read again; your edits are kept in the draft."
                ),
            ));
        }
        None
    }
}

/// The sources' state for the banner (Security Center servers, the Business Hub).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SourceStatus {
    /// Failing sources by name, with their failed reads since the last success.
    pub(crate) failing: BTreeMap<String, u64>,
}

impl SourceStatus {
    /// The banner's headline and text, when a source is failing.
    pub(crate) fn problem(&self) -> Option<(String, String)> {
        if self.failing.is_empty() {
            return None;
        }
        let names: Vec<String> =
            self.failing.keys().map(|n| format!("\u{201c}{}\u{201d}", super::mapping::source_words(n))).collect();
        let n: u64 = self.failing.values().sum();
        let head = if names.len() == 1 {
            format!("The source {} is failing: calls to it do not succeed.", names[0])
        } else {
            format!("The sources {} are failing: calls to them do not succeed.", names.join(", "))
        };
        Some((
            head,
            format!(
                "{n} call(s) to a source failed since its last successful read. Events and computer statuses from it arrive late until it answers again (the daemon keeps retrying); the rules here can still be edited and saved."
            ),
        ))
    }
}

/// The PSA's state now.
pub(crate) fn check(shared: &Shared) -> PsaStatus {
    let v = shared.health.psa_view();
    PsaStatus { failing: v.failing, catalog_stale: v.catalog_stale, catalog_read_at: v.catalog_read_at }
}

/// The sources' state now.
pub(crate) fn check_sources(shared: &Shared) -> SourceStatus {
    SourceStatus { failing: shared.health.failing_sources() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Health;

    fn status(h: &Health) -> PsaStatus {
        let v = h.psa_view();
        PsaStatus { failing: v.failing, catalog_stale: v.catalog_stale, catalog_read_at: v.catalog_read_at }
    }

    #[test]
    fn failures_without_answers_mark_the_psa_down_until_it_answers() {
        let h = Health::default();
        let t = Utc::now();
        h.psa_answered("catalog", Ok(()), t);
        assert!(!status(&h).blocks_save(true));
        h.psa_answered("create", Err(ticketing_core::ports::PortErrorKind::Transient), t);
        h.psa_answered("create", Err(ticketing_core::ports::PortErrorKind::Transient), t);
        let s = status(&h);
        assert_eq!(s.failing.as_ref().map(|f| f.2), Some(2));
        assert!(!s.catalog_stale);
        assert!(s.blocks_save(true));
        h.psa_answered("catalog", Err(ticketing_core::ports::PortErrorKind::Transient), t);
        let s = status(&h);
        assert!(s.catalog_stale);
        assert!(s.problem(true).unwrap().0.contains("unreachable"));
        h.psa_answered("catalog", Ok(()), t);
        let s = status(&h);
        assert_eq!(s, PsaStatus { failing: None, catalog_stale: false, catalog_read_at: Some(t) });
        assert!(s.problem(true).is_none());
        assert!(s.problem(false).is_some());
    }

    #[test]
    fn a_source_fails_while_its_latest_read_failed() {
        let h = Health::default();
        let t = Utc::now();
        h.source_read("ksc-1", Err("refused".into()), t);
        h.source_read("ksc-1", Err("refused".into()), t);
        h.source_read("ksc-2", Ok(()), t);
        let s = SourceStatus { failing: h.failing_sources() };
        assert_eq!(s.failing, BTreeMap::from([("ksc-1".to_owned(), 2)]));
        assert!(s.problem().unwrap().0.contains("\u{201c}ksc-1\u{201d}"));
        h.source_read("ksc-1", Ok(()), t);
        assert!(SourceStatus { failing: h.failing_sources() }.problem().is_none());
    }
}
