//! The daemon's metrics for `/metrics`, kept in a `prometheus-client` registry and rendered
//! in its text format (OpenMetrics; Prometheus scrapes it as it is).
//!
//! The engine and the admin API update them through the methods here; nothing outside this
//! module names a metric. Besides the engine's counters there are `msp_build_info`, PSA request
//! durations by operation, the outbox by state, each source's last successful read, and the
//! process metrics Prometheus exporters have (`process_*`, read from `/proc` at scrape time).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One label: its name (the same in every member of a family) and value.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct One(&'static str, String);

impl EncodeLabelSet for One {
    fn encode(&self, encoder: &mut prometheus_client::encoding::LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        [(self.0, self.1.as_str())].encode(encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpOutcome {
    op: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpReason {
    op: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    op: String,
}

type Labelled<M> = Family<One, M>;
type Histograms = Family<Op, Histogram, fn() -> Histogram>;

fn psa_histogram() -> Histogram {
    // 5 ms … ~41 s: a PSA call is tens of milliseconds when well, seconds when struggling.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// The daemon's metrics. Cheap to update from the engine, read by the admin API.
pub struct Metrics {
    registry: Registry,
    events_seen: Labelled<Counter>,
    malformed: Labelled<Counter>,
    skips: Labelled<Counter>,
    psa_calls: Family<OpOutcome, Counter>,
    writes_refused: Family<OpReason, Counter>,
    psa_duration: Histograms,
    source_errors: Labelled<Counter>,
    source_last_success: Labelled<Gauge<f64, AtomicU64>>,
    conditions_not_ticketed: Labelled<Gauge>,
    tickets_failed: Labelled<Counter>,
    config_reloads: Labelled<Counter>,
    leader: Labelled<Gauge>,
    budget_used: Gauge,
    budget_waiting: Gauge,
    budget_limit: Labelled<Gauge>,
    outbox_by_state: Labelled<Gauge>,
    tickets_created: Counter,
    tickets_closed: Counter,
    tickets_recovered: Counter,
    tickets_closed_by_technician: Counter,
    tickets_adopted: Counter,
    tickets_updated: Counter,
    store_commits: Counter,
    unknown_descriptions: Gauge,
    tenants_unmapped: Gauge,
    storms_active: Gauge,
    outbox: Gauge,
    /// The last budget set (the admin API and readiness read it back).
    budget: Mutex<Budget>,
    /// The call counts by (operation, outcome) (the UI's PSA banner samples them).
    calls: Mutex<BTreeMap<(String, String), u64>>,
    /// The skip counts by reason (tests and the status API read them back).
    skip_counts: Mutex<BTreeMap<String, u64>>,
    /// The events seen by product.
    seen_counts: Mutex<BTreeMap<String, u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
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
    /// PSA calls the outbox holds back because the budget is short (set by the engine, not the
    /// backend): they go once the window frees requests, nothing is dropped.
    pub waiting: u64,
}

fn one(name: &'static str, value: &str) -> One {
    One(name, value.to_owned())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered; `msp_build_info` carries this binary's version and commit.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            events_seen: Family::default(),
            malformed: Family::default(),
            skips: Family::default(),
            psa_calls: Family::default(),
            writes_refused: Family::default(),
            psa_duration: Family::new_with_constructor(psa_histogram),
            source_errors: Family::default(),
            source_last_success: Family::default(),
            conditions_not_ticketed: Family::default(),
            tickets_failed: Family::default(),
            config_reloads: Family::default(),
            leader: Family::default(),
            budget_used: Gauge::default(),
            budget_waiting: Gauge::default(),
            budget_limit: Family::default(),
            outbox_by_state: Family::default(),
            tickets_created: Counter::default(),
            tickets_closed: Counter::default(),
            tickets_recovered: Counter::default(),
            tickets_closed_by_technician: Counter::default(),
            tickets_adopted: Counter::default(),
            tickets_updated: Counter::default(),
            store_commits: Counter::default(),
            unknown_descriptions: Gauge::default(),
            tenants_unmapped: Gauge::default(),
            storms_active: Gauge::default(),
            outbox: Gauge::default(),
            budget: Mutex::default(),
            calls: Mutex::default(),
            skip_counts: Mutex::default(),
            seen_counts: Mutex::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "msp_build",
            "This binary's version and commit.",
            Info::new(vec![
                ("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
                ("commit".to_owned(), env!("MSP_BUILD_COMMIT").to_owned()),
            ]),
        );
        r.register("msp_events_seen", "Events read from sources.", m.events_seen.clone());
        r.register("msp_malformed_records", "Source records skipped as malformed.", m.malformed.clone());
        r.register("msp_tickets_created", "Tickets created in the PSA.", m.tickets_created.clone());
        r.register("msp_tickets_closed", "Tickets closed in the PSA.", m.tickets_closed.clone());
        r.register(
            "msp_tickets_recovered",
            "Uncertain creates found in the PSA by idempotency key instead of being created again.",
            m.tickets_recovered.clone(),
        );
        r.register(
            "msp_tickets_closed_by_technician",
            "Tickets noticed closed in the PSA by a person.",
            m.tickets_closed_by_technician.clone(),
        );
        r.register("msp_skips", "Events not ticketed, by reason.", m.skips.clone());
        r.register(
            "msp_conditions_not_ticketed",
            "Active status descriptions and issues with an enabled rule not ticketed in the latest snapshots, by reason.",
            m.conditions_not_ticketed.clone(),
        );
        r.register("msp_psa_calls", "PSA calls by operation and outcome.", m.psa_calls.clone());
        r.register(
            "msp_psa_writes_refused",
            "PSA writes not sent by this instance, by operation and reason (not_leading: its leader lease may have run out).",
            m.writes_refused.clone(),
        );
        r.register_with_unit(
            "msp_psa_request_duration",
            "PSA calls' duration by operation (a create's lookup first counts as find).",
            prometheus_client::registry::Unit::Seconds,
            m.psa_duration.clone(),
        );
        r.register("msp_source_errors", "Failed source calls.", m.source_errors.clone());
        r.register(
            "msp_source_last_success_timestamp_seconds",
            "When each source was last read successfully (Unix time).",
            m.source_last_success.clone(),
        );
        r.register(
            "msp_tickets_failed",
            "Creates the PSA refused (kept in the ledger as failed; retry with `msp-ticketd ledger retry`), by reason.",
            m.tickets_failed.clone(),
        );
        r.register(
            "msp_tickets_adopted",
            "Tickets found in the PSA that the ledger lacked (new, lost or restored store), taken over instead of created again.",
            m.tickets_adopted.clone(),
        );
        r.register(
            "msp_tickets_updated",
            "Tickets reopened (reopen window) or raised to a higher priority (priority follows severity).",
            m.tickets_updated.clone(),
        );
        r.register(
            "msp_store_commits",
            "State commits the engine wrote (each one transaction; the reads finished within a tick share one, up to 256).",
            m.store_commits.clone(),
        );
        r.register(
            "msp_leader",
            "1 while this instance leads (polls sources, writes to the PSA), 0 while it stands by.",
            m.leader.clone(),
        );
        r.register(
            "msp_config_reloads",
            "Configuration reloads (SIGHUP, POST /api/reload), by result.",
            m.config_reloads.clone(),
        );
        r.register("msp_psa_budget_used", "PSA requests used in the current hour.", m.budget_used.clone());
        r.register(
            "msp_psa_budget_waiting",
            "PSA calls held back while the request budget is short (notes and updates first; nothing is dropped).",
            m.budget_waiting.clone(),
        );
        r.register(
            "msp_psa_budget_limit",
            "PSA requests allowed per hour: configured (this daemon's share), server (what the PSA reports), effective (the smaller).",
            m.budget_limit.clone(),
        );
        r.register("msp_outbox_entries", "Ledger entries waiting for a PSA call.", m.outbox.clone());
        r.register(
            "msp_outbox_entries_by_state",
            "Ledger entries waiting for a PSA call, by state: planned (create), closing (close), closed (close note), updating (reopen or priority raise), recurrence (a recurrence note).",
            m.outbox_by_state.clone(),
        );
        r.register(
            "msp_unknown_status_descriptions",
            "Status descriptions not in the catalogue in the last snapshots.",
            m.unknown_descriptions.clone(),
        );
        r.register(
            "msp_tenants_unmapped",
            "Listed tenants not mapped to a PSA account (their events are held within their lifetime, ticketed once mapped).",
            m.tenants_unmapped.clone(),
        );
        r.register(
            "msp_storms_active",
            "Storm tickets whose storm is not over (alert storms: one ticket for many problems of a row and tenant).",
            m.storms_active.clone(),
        );
        r.register_collector(Box::new(Process));
        Self { registry, ..m }
    }

    /// Counts events seen from a product.
    pub fn event_seen(&self, product: &str, n: u64) {
        self.events_seen.get_or_create(&one("product", product)).inc_by(n);
        *lock(&self.seen_counts).entry(product.to_owned()).or_default() += n;
    }

    /// Counts malformed records from a source.
    pub fn malformed(&self, source: &str, n: u64) {
        self.malformed.get_or_create(&one("source", source)).inc_by(n);
    }

    /// Counts a skip.
    pub fn skip(&self, reason: &str) {
        self.skips.get_or_create(&one("reason", reason)).inc();
        *lock(&self.skip_counts).entry(reason.to_owned()).or_default() += 1;
    }

    /// Counts a PSA call by operation and outcome (`ok`, or the error kind).
    pub fn psa_call(&self, op: &str, outcome: &str) {
        self.psa_calls.get_or_create(&OpOutcome { op: op.to_owned(), outcome: outcome.to_owned() }).inc();
        *lock(&self.calls).entry((op.to_owned(), outcome.to_owned())).or_default() += 1;
    }

    /// Counts a PSA write this instance did not send (`reason`: `not_leading`).
    pub fn write_refused(&self, op: &str, reason: &str) {
        self.writes_refused.get_or_create(&OpReason { op: op.to_owned(), reason: reason.to_owned() }).inc();
    }

    /// Records how long a PSA call took.
    pub fn psa_duration(&self, op: &str, took: Duration) {
        self.psa_duration.get_or_create(&Op { op: op.to_owned() }).observe(took.as_secs_f64());
    }

    /// Counts a create the PSA refused, by reason.
    pub fn ticket_failed(&self, reason: &str) {
        self.tickets_failed.get_or_create(&one("reason", reason)).inc();
    }

    /// Sets whether `instance` leads.
    pub fn set_leader(&self, instance: &str, leads: bool) {
        self.leader.clear();
        self.leader.get_or_create(&one("instance", instance)).set(i64::from(leads));
    }

    /// Counts a configuration reload by result (`ok`, `error`).
    pub fn config_reload(&self, result: &str) {
        self.config_reloads.get_or_create(&one("result", result)).inc();
    }

    /// Sets the PSA budget gauges.
    pub fn set_budget(&self, budget: Budget) {
        *lock(&self.budget) = budget;
        self.budget_used.set(gauge_value(budget.used));
        self.budget_waiting.set(gauge_value(budget.waiting));
        for (source, v) in
            [("configured", budget.configured), ("server", budget.server), ("effective", budget.effective)]
        {
            self.budget_limit.get_or_create(&one("source", source)).set(gauge_value(v));
        }
    }

    /// The PSA budget as last reported.
    pub fn budget(&self) -> Budget {
        *lock(&self.budget)
    }

    /// Counts a failed source call.
    pub fn source_error(&self, source: &str) {
        self.source_errors.get_or_create(&one("source", source)).inc();
    }

    /// Records a source's successful read at `at`.
    pub fn source_success(&self, source: &str, at: chrono::DateTime<chrono::Utc>) {
        let secs = at.timestamp_micros() as f64 / 1e6;
        self.source_last_success.get_or_create(&one("source", source)).set(secs);
    }

    /// Sets the active conditions (status descriptions, issues) not ticketed, by reason, as of
    /// the latest snapshots.
    pub fn set_conditions_not_ticketed(&self, totals: BTreeMap<String, u64>) {
        self.conditions_not_ticketed.clear();
        for (reason, n) in totals {
            self.conditions_not_ticketed.get_or_create(&one("reason", &reason)).set(gauge_value(n));
        }
    }

    /// Sets the outbox gauges: the total and the count by state.
    pub fn set_outbox(&self, by_state: &BTreeMap<&'static str, u64>) {
        self.outbox.set(gauge_value(by_state.values().sum()));
        for state in ["planned", "closing", "closed", "updating", "recurrence"] {
            let n = by_state.get(state).copied().unwrap_or(0);
            self.outbox_by_state.get_or_create(&one("state", state)).set(gauge_value(n));
        }
    }

    /// Sets how many storms are running (storm tickets not finished).
    pub fn set_storms_active(&self, n: u64) {
        self.storms_active.set(gauge_value(n));
    }

    /// Sets how many listed tenants are not mapped to a PSA account.
    pub fn set_tenants_unmapped(&self, n: u64) {
        self.tenants_unmapped.set(gauge_value(n));
    }

    /// Sets how many status descriptions were not in the catalogue in the last snapshot.
    pub fn set_unknown_descriptions(&self, n: u64) {
        self.unknown_descriptions.set(gauge_value(n));
    }

    /// Counts tickets created.
    pub fn ticket_created(&self) {
        self.tickets_created.inc();
    }

    /// Counts tickets closed.
    pub fn ticket_closed(&self) {
        self.tickets_closed.inc();
    }

    /// Counts uncertain creates found already created.
    pub fn ticket_recovered(&self) {
        self.tickets_recovered.inc();
    }

    /// Counts tickets a technician closed.
    pub fn ticket_closed_by_technician(&self, n: u64) {
        self.tickets_closed_by_technician.inc_by(n);
    }

    /// Counts tickets updated (reopened, priority raised).
    pub fn ticket_updated(&self) {
        self.tickets_updated.inc();
    }

    /// Counts one state commit of the engine.
    pub fn store_committed(&self) {
        self.store_commits.inc();
    }

    /// State commits so far (tests and the scale harness read it).
    pub fn store_commits(&self) -> u64 {
        self.store_commits.get()
    }

    /// Counts tickets adopted from the PSA's listing.
    pub fn tickets_adopted(&self, n: u64) {
        self.tickets_adopted.inc_by(n);
    }

    /// Tickets created, closed and recovered so far.
    pub fn ticket_counts(&self) -> (u64, u64, u64) {
        (self.tickets_created.get(), self.tickets_closed.get(), self.tickets_recovered.get())
    }

    /// Skips by reason.
    pub fn skips(&self) -> BTreeMap<String, u64> {
        lock(&self.skip_counts).clone()
    }

    /// PSA calls by (operation, outcome).
    pub fn psa_calls(&self) -> BTreeMap<(String, String), u64> {
        lock(&self.calls).clone()
    }

    /// Events seen by product.
    pub fn events_seen(&self) -> BTreeMap<String, u64> {
        lock(&self.seen_counts).clone()
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot render the metrics");
        }
        out
    }
}

/// The process metrics of the Prometheus client libraries (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
/// `process_max_fds`, `process_start_time_seconds`), read from `/proc/self` at scrape time.
/// Where `/proc` is missing (not Linux) there are none.
#[derive(Debug)]
struct Process;

/// What `/proc/self` says.
#[derive(Debug, Default, PartialEq)]
struct ProcStat {
    cpu_seconds: f64,
    start_time_seconds: f64,
    virtual_bytes: f64,
    resident_bytes: f64,
}

/// Reads `/proc/self/stat` (fields 14, 15: user and system time in ticks; 22: start time in
/// ticks since boot; 23: virtual size in bytes; 24: resident pages), with the boot time from
/// `/proc/stat`. Ticks are 100 per second and pages 4 KiB on every Linux we run on (the values
/// `sysconf(_SC_CLK_TCK)` and `sysconf(_SC_PAGESIZE)` give there).
fn parse_stat(stat: &str, boot_time: f64) -> Option<ProcStat> {
    const TICKS: f64 = 100.0;
    const PAGE: f64 = 4096.0;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3.
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    Some(ProcStat {
        cpu_seconds: (field(14)? + field(15)?) / TICKS,
        start_time_seconds: boot_time + field(22)? / TICKS,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * PAGE,
    })
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn encode_gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: f64) -> Result<(), std::fmt::Error> {
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for Process {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        if let Some(s) = stat.as_deref().and_then(|s| parse_stat(s, boot_time().unwrap_or(0.0))) {
            ConstCounter::new(s.cpu_seconds).encode(e.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?)?;
            encode_gauge(&mut e, "process_resident_memory_bytes", "Resident memory size in bytes.", s.resident_bytes)?;
            encode_gauge(&mut e, "process_virtual_memory_bytes", "Virtual memory size in bytes.", s.virtual_bytes)?;
            encode_gauge(
                &mut e,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                s.start_time_seconds,
            )?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            encode_gauge(&mut e, "process_open_fds", "Number of open file descriptors.", fds.count() as f64)?;
        }
        if let Some(max) = max_fds() {
            encode_gauge(&mut e, "process_max_fds", "Maximum number of open file descriptors.", max)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format_with_build_info_histograms_and_process_metrics() {
        let m = Metrics::default();
        m.skip("stale");
        m.skip("stale");
        m.psa_call("create", "ok");
        m.psa_duration("create", Duration::from_millis(30));
        m.ticket_created();
        m.set_outbox(&BTreeMap::from([("planned", 2), ("closed", 1)]));
        m.source_success("ksc:main/events", chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let text = m.render();
        assert!(text.contains("msp_skips_total{reason=\"stale\"} 2\n"), "{text}");
        assert!(text.contains("msp_psa_calls_total{op=\"create\",outcome=\"ok\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE msp_tickets_created counter\nmsp_tickets_created_total 1\n"), "{text}");
        assert!(
            text.contains(&format!("msp_build_info{{version=\"{}\",commit=\"", env!("CARGO_PKG_VERSION"))),
            "{text}"
        );
        assert!(text.contains("msp_psa_request_duration_seconds_bucket{le=\"0.04\",op=\"create\"} 1\n"), "{text}");
        assert!(text.contains("msp_psa_request_duration_seconds_count{op=\"create\"} 1\n"), "{text}");
        assert!(text.contains("msp_outbox_entries 3\n"), "{text}");
        assert!(text.contains("msp_outbox_entries_by_state{state=\"planned\"} 2\n"), "{text}");
        assert!(text.contains("msp_outbox_entries_by_state{state=\"closing\"} 0\n"), "{text}");
        assert!(
            text.contains("msp_source_last_success_timestamp_seconds{source=\"ksc:main/events\"} 1800000000"),
            "{text}"
        );
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.contains("process_open_fds "), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn proc_stat_is_read_past_a_command_name_with_spaces() {
        let stat = "4242 (msp ticketd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 123456789 2560 18446744073709551615";
        let s = parse_stat(stat, 1_700_000_000.0).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.start_time_seconds, 1_700_000_010.0);
        assert_eq!(s.virtual_bytes, 123_456_789.0);
        assert_eq!(s.resident_bytes, 2560.0 * 4096.0);
    }
}
