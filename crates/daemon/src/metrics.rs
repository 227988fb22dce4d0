//! Counters for `/metrics`, rendered in the Prometheus text format by hand (a handful of
//! counters does not need a metrics crate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The daemon's counters. Cheap to update from the engine, read by the admin API.
#[derive(Debug, Default)]
pub struct Metrics {
    events_seen: Mutex<BTreeMap<String, u64>>,
    malformed: Mutex<BTreeMap<String, u64>>,
    skips: Mutex<BTreeMap<String, u64>>,
    psa_calls: Mutex<BTreeMap<(String, String), u64>>,
    source_errors: Mutex<BTreeMap<String, u64>>,
    conditions_not_ticketed: Mutex<BTreeMap<String, u64>>,
    tickets_failed: Mutex<BTreeMap<String, u64>>,
    config_reloads: Mutex<BTreeMap<String, u64>>,
    leader: Mutex<BTreeMap<String, u64>>,
    budget: Mutex<Budget>,
    /// Tickets created in the PSA.
    pub tickets_created: AtomicU64,
    /// Tickets closed in the PSA.
    pub tickets_closed: AtomicU64,
    /// Tickets found already created after an uncertain create (never created twice).
    pub tickets_recovered: AtomicU64,
    /// Tickets noticed closed by a technician.
    pub tickets_closed_by_technician: AtomicU64,
    /// Status descriptions not in the catalogue, as last reported.
    pub unknown_descriptions: AtomicU64,
    /// Tickets the PSA had that the ledger lacked (a new, lost or restored store), taken over.
    pub tickets_adopted: AtomicU64,
    /// Ledger entries waiting for a PSA call (planned + closing).
    pub outbox: AtomicU64,
}

/// The PSA request budget as the backend reports it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Requests used in the current window.
    pub used: u64,
    /// The limit configured for this daemon (`0`: none).
    pub configured: u64,
    /// The limit the PSA reports (`0`: not known yet).
    pub server: u64,
    /// The limit in force: the smaller of the two known ones.
    pub effective: u64,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K, n: u64) {
    let mut m = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *m.entry(key).or_default() += n;
}

fn snapshot<K: Ord + Clone>(map: &Mutex<BTreeMap<K, u64>>) -> BTreeMap<K, u64> {
    map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

impl Metrics {
    /// Counts events seen from a product.
    pub fn event_seen(&self, product: &str, n: u64) {
        bump(&self.events_seen, product.to_owned(), n);
    }

    /// Counts malformed records from a source.
    pub fn malformed(&self, source: &str, n: u64) {
        bump(&self.malformed, source.to_owned(), n);
    }

    /// Counts a skip.
    pub fn skip(&self, reason: &str) {
        bump(&self.skips, reason.to_owned(), 1);
    }

    /// Counts a PSA call by operation and outcome (`ok`, or the error kind).
    pub fn psa_call(&self, op: &str, outcome: &str) {
        bump(&self.psa_calls, (op.to_owned(), outcome.to_owned()), 1);
    }

    /// Counts a create the PSA refused, by reason.
    pub fn ticket_failed(&self, reason: &str) {
        bump(&self.tickets_failed, reason.to_owned(), 1);
    }

    /// Sets whether `instance` leads.
    pub fn set_leader(&self, instance: &str, leads: bool) {
        let mut m = self.leader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        m.clear();
        m.insert(instance.to_owned(), u64::from(leads));
    }

    /// Counts a configuration reload by result (`ok`, `error`).
    pub fn config_reload(&self, result: &str) {
        bump(&self.config_reloads, result.to_owned(), 1);
    }

    /// Sets the PSA budget gauges.
    pub fn set_budget(&self, budget: Budget) {
        *self.budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = budget;
    }

    /// The PSA budget as last reported.
    pub fn budget(&self) -> Budget {
        *self.budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a failed source call.
    pub fn source_error(&self, source: &str) {
        bump(&self.source_errors, source.to_owned(), 1);
    }

    /// Sets the active conditions (status descriptions, issues) not ticketed, by reason, as of
    /// the latest snapshots.
    pub fn set_conditions_not_ticketed(&self, totals: BTreeMap<String, u64>) {
        *self.conditions_not_ticketed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = totals;
    }

    /// Skips by reason.
    pub fn skips(&self) -> BTreeMap<String, u64> {
        snapshot(&self.skips)
    }

    /// PSA calls by (operation, outcome).
    pub fn psa_calls(&self) -> BTreeMap<(String, String), u64> {
        snapshot(&self.psa_calls)
    }

    /// Events seen by product.
    pub fn events_seen(&self) -> BTreeMap<String, u64> {
        snapshot(&self.events_seen)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, help: &str, kind: &str, rows: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let labelled = |label: &str, m: BTreeMap<String, u64>| {
            m.into_iter().map(|(k, v)| (format!("{{{label}=\"{}\"}}", escape(&k)), v)).collect::<Vec<_>>()
        };
        let plain = |a: &AtomicU64| vec![(String::new(), a.load(Ordering::Relaxed))];
        family(
            "msp_events_seen_total",
            "Events read from sources.",
            "counter",
            labelled("product", self.events_seen()),
        );
        family(
            "msp_malformed_records_total",
            "Source records skipped as malformed.",
            "counter",
            labelled("source", snapshot(&self.malformed)),
        );
        family("msp_tickets_created_total", "Tickets created in the PSA.", "counter", plain(&self.tickets_created));
        family("msp_tickets_closed_total", "Tickets closed in the PSA.", "counter", plain(&self.tickets_closed));
        family(
            "msp_tickets_recovered_total",
            "Uncertain creates found in the PSA by idempotency key instead of being created again.",
            "counter",
            plain(&self.tickets_recovered),
        );
        family(
            "msp_tickets_closed_by_technician_total",
            "Tickets noticed closed in the PSA by a person.",
            "counter",
            plain(&self.tickets_closed_by_technician),
        );
        family("msp_skips_total", "Events not ticketed, by reason.", "counter", labelled("reason", self.skips()));
        family(
            "msp_conditions_not_ticketed",
            "Active status descriptions and issues with an enabled rule not ticketed in the latest snapshots, by reason.",
            "gauge",
            labelled("reason", snapshot(&self.conditions_not_ticketed)),
        );
        let calls = self
            .psa_calls()
            .into_iter()
            .map(|((op, outcome), v)| (format!("{{op=\"{}\",outcome=\"{}\"}}", escape(&op), escape(&outcome)), v))
            .collect();
        family("msp_psa_calls_total", "PSA calls by operation and outcome.", "counter", calls);
        family(
            "msp_source_errors_total",
            "Failed source calls.",
            "counter",
            labelled("source", snapshot(&self.source_errors)),
        );
        family(
            "msp_tickets_failed_total",
            "Creates the PSA refused (kept in the ledger as failed; retry with `msp-ticketd ledger retry`), by reason.",
            "counter",
            labelled("reason", snapshot(&self.tickets_failed)),
        );
        family(
            "msp_tickets_adopted_total",
            "Tickets found in the PSA that the ledger lacked (new, lost or restored store), taken over instead of created again.",
            "counter",
            plain(&self.tickets_adopted),
        );
        family(
            "msp_leader",
            "1 while this instance leads (polls sources, writes to the PSA), 0 while it stands by.",
            "gauge",
            labelled("instance", snapshot(&self.leader)),
        );
        family(
            "msp_config_reloads_total",
            "Configuration reloads (SIGHUP, POST /api/reload), by result.",
            "counter",
            labelled("result", snapshot(&self.config_reloads)),
        );
        let b = self.budget();
        family("msp_psa_budget_used", "PSA requests used in the current hour.", "gauge", vec![(String::new(), b.used)]);
        family(
            "msp_psa_budget_limit",
            "PSA requests allowed per hour: configured (this daemon's share), server (what the PSA reports), effective (the smaller).",
            "gauge",
            vec![
                ("{source=\"configured\"}".to_owned(), b.configured),
                ("{source=\"server\"}".to_owned(), b.server),
                ("{source=\"effective\"}".to_owned(), b.effective),
            ],
        );
        family("msp_outbox_entries", "Ledger entries waiting for a PSA call.", "gauge", plain(&self.outbox));
        family(
            "msp_unknown_status_descriptions",
            "Status descriptions not in the catalogue in the last snapshots.",
            "gauge",
            plain(&self.unknown_descriptions),
        );
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.skip("stale");
        m.skip("stale");
        m.psa_call("create", "ok");
        m.tickets_created.fetch_add(1, Ordering::Relaxed);
        let text = m.render();
        assert!(text.contains("msp_skips_total{reason=\"stale\"} 2\n"), "{text}");
        assert!(text.contains("msp_psa_calls_total{op=\"create\",outcome=\"ok\"} 1\n"));
        assert!(text.contains("# TYPE msp_tickets_created_total counter\nmsp_tickets_created_total 1\n"));
    }
}
