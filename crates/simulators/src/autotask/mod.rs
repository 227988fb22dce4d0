//! Autotask PSA REST simulator (design note `autotask-api.md` §7).
//!
//! Serves `/ATServicesRest/V1.0/...` (paths case-insensitive) on loopback: version and zone
//! discovery, the header auth (`UserName`/`Secret`/`ApiIntegrationCode`, optional
//! `ImpersonationResourceId`), Tickets (create/PATCH/PUT/get/query/count, no delete), ticket
//! notes, Companies, BillingCodes, ConfigurationItems, ticket metadata, `ThresholdInformation`,
//! the thread limit (3 per integration code × entity) and a sliding-window hourly threshold.
//!
//! Control API (no credentials), besides the common `/_sim/reset`, `/_sim/requests`,
//! `/_sim/faults`, `/_sim/clock` (see [`crate::common`]):
//! `GET /_sim/tickets`, `GET /_sim/notes`, `POST /_sim/companies`, `POST /_sim/limits`,
//! `POST /_sim/picklist`. See the crate README for bodies and examples.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = simulators::autotask::start("127.0.0.1:0".parse().unwrap(), Default::default()).await?;
//! println!("zone lookup at {}/atservicesrest/v1.0/zoneInformation?user=api%40sim.local", sim.base_url());
//! # Ok(()) }
//! ```

mod api;
mod control;
pub(crate) mod query;
mod tickets;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::common::{self, SimCore, SimHandle, base_url_for, lock};

/// Ticket field metadata served by `Tickets/entityInformation/fields` (75 live field names,
/// synthetic picklists), a copy of `design/fixtures/autotask-tickets-fields.json`.
pub const TICKET_FIELDS_JSON: &str = include_str!("../../fixtures/autotask-tickets-fields.json");

/// Default API username of the simulator.
pub const DEFAULT_USER: &str = "api@sim.local";
/// Default API secret of the simulator.
pub const DEFAULT_SECRET: &str = "sim-secret";
/// Default API integration code (27 characters).
pub const DEFAULT_INTEGRATION_CODE: &str = "SIMINTEGRATIONCODE000000000";

/// Throttling knobs and behaviour switches (all changeable at run time via `POST /_sim/limits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent requests allowed per (integration code, entity). Default 3.
    pub thread_limit: usize,
    /// Requests allowed within the sliding window. Default 10 000.
    pub hourly_threshold: u64,
    /// Sliding window length in seconds. Default 3600.
    pub window_secs: u64,
    /// Extra time every authenticated request holds its thread slot (ms). Default 0.
    pub hold_ms: u64,
    /// Answer thread-limit rejections with the `500 Itgenatr005` variant instead of 429.
    pub thread_limit_as_500: bool,
    /// Add `Retry-After: <secs>` to 429 answers (off by default: undocumented).
    pub retry_after_secs: Option<u64>,
    /// Send Retry-After as an HTTP-date instead of seconds.
    pub retry_after_http_date: bool,
    /// Count zone-information requests toward the hourly threshold. Default false.
    pub count_zone_requests: bool,
    /// Answer `GET /{Entity}/{unknown id}` with `200 {"item":null}` instead of `404`.
    pub missing_item_as_null: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            thread_limit: 3,
            hourly_threshold: 10_000,
            window_secs: 3600,
            hold_ms: 0,
            thread_limit_as_500: false,
            retry_after_secs: None,
            retry_after_http_date: false,
            count_zone_requests: false,
            missing_item_as_null: false,
        }
    }
}

/// A ticket category's behaviour (§7.1).
#[derive(Debug, Clone, PartialEq)]
pub struct TicketCategory {
    /// Picklist value of `ticketCategory`.
    pub id: i64,
    /// Field defaults applied to absent fields on create (canonical field names).
    pub defaults: Vec<(String, Value)>,
    /// When set, an absent `dueDateTime` defaults to now + this many seconds.
    pub due_in_secs: Option<i64>,
    /// Whether notes on tickets of this category need a title.
    pub note_titles_required: bool,
}

/// Simulator configuration; `Default` is the documented seed with the simulator credentials.
#[derive(Debug, Clone)]
pub struct Config {
    /// API username (`UserName` header, `zoneInformation?user=`).
    pub user: String,
    /// API secret (`Secret` header).
    pub secret: String,
    /// API integration code (`ApiIntegrationCode` header).
    pub integration_code: String,
    /// Resource id of the API user (creator of tickets and notes). Default 29682885.
    pub resource_id: i64,
    /// Resource ids that may be impersonated. Default `[29682886]`.
    pub impersonatable_resources: Vec<i64>,
    /// `zoneName` of the zone answer.
    pub zone_name: String,
    /// `ci` of the zone answer.
    pub zone_ci: i64,
    /// Company rows (`id`, `companyName`, `isActive`, `companyType`).
    pub companies: Vec<Value>,
    /// BillingCode rows (`id`, `name`, `useType`, `isActive`).
    pub billing_codes: Vec<Value>,
    /// ConfigurationItem rows.
    pub configuration_items: Vec<Value>,
    /// Ticket categories with defaults.
    pub ticket_categories: Vec<TicketCategory>,
    /// Names of the ticket UDFs (string type).
    pub ticket_udfs: Vec<String>,
    /// First ticket id handed out.
    pub first_ticket_id: i64,
    /// First note id handed out.
    pub first_note_id: i64,
    /// Throttling and switches.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            user: DEFAULT_USER.into(),
            secret: DEFAULT_SECRET.into(),
            integration_code: DEFAULT_INTEGRATION_CODE.into(),
            resource_id: 29_682_885,
            impersonatable_resources: vec![29_682_886],
            zone_name: "Sim Zone".into(),
            zone_ci: 123_456,
            companies: vec![
                json!({"id":0,"companyName":"Mock MSP","isActive":true,"companyType":1}),
                json!({"id":29683616,"companyName":"Acme Corp","isActive":true,"companyType":1}),
                json!({"id":29683617,"companyName":"Old Co","isActive":false,"companyType":1}),
            ],
            billing_codes: vec![
                json!({"id":29682801,"name":"Remote Support","useType":1,"isActive":true}),
                json!({"id":29682802,"name":"Hardware","useType":2,"isActive":true}),
                json!({"id":29682803,"name":"Retired Labour","useType":1,"isActive":false}),
            ],
            configuration_items: vec![json!({
                "id":1583,"companyID":29683616,"referenceTitle":"PC-1","serialNumber":"SN123","isActive":true
            })],
            ticket_categories: vec![
                TicketCategory { id: 3, defaults: Vec::new(), due_in_secs: None, note_titles_required: false },
                TicketCategory {
                    id: 100,
                    defaults: vec![("priority".into(), json!(1)), ("queueID".into(), json!(8))],
                    due_in_secs: Some(4 * 3600),
                    note_titles_required: true,
                },
            ],
            ticket_udfs: vec!["External Reference".into()],
            first_ticket_id: 128_926,
            first_note_id: 30_777_658,
            limits: Limits::default(),
        }
    }
}

/// Mutable simulator state.
#[derive(Debug)]
struct Data {
    companies: BTreeMap<i64, Value>,
    billing_codes: BTreeMap<i64, Value>,
    cis: BTreeMap<i64, Value>,
    tickets: BTreeMap<i64, Value>,
    notes: BTreeMap<i64, Value>,
    ticket_fields: Vec<Value>,
    next_ticket_id: i64,
    next_note_id: i64,
    daily_seq: HashMap<String, u32>,
    limits: Limits,
    window: VecDeque<DateTime<Utc>>,
    inflight: HashMap<(String, String), usize>,
}

fn rows_by_id(rows: &[Value]) -> BTreeMap<i64, Value> {
    rows.iter().filter_map(|r| Some((r.get("id")?.as_i64()?, with_udfs(r.clone())))).collect()
}

fn with_udfs(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.entry("userDefinedFields").or_insert_with(|| json!([]));
    }
    v
}

impl Data {
    fn seed(cfg: &Config) -> Self {
        let fields: Value = serde_json::from_str(TICKET_FIELDS_JSON).expect("ticket field fixture is valid JSON");
        let ticket_fields = fields["fields"].as_array().cloned().unwrap_or_default();
        Self {
            companies: rows_by_id(&cfg.companies),
            billing_codes: rows_by_id(&cfg.billing_codes),
            cis: rows_by_id(&cfg.configuration_items),
            tickets: BTreeMap::new(),
            notes: BTreeMap::new(),
            ticket_fields,
            next_ticket_id: cfg.first_ticket_id,
            next_note_id: cfg.first_note_id,
            daily_seq: HashMap::new(),
            limits: cfg.limits.clone(),
            window: VecDeque::new(),
            inflight: HashMap::new(),
        }
    }

    /// Resets everything except in-flight slot counters (owned by running requests).
    fn reset(&mut self, cfg: &Config) {
        let inflight = std::mem::take(&mut self.inflight);
        *self = Self::seed(cfg);
        self.inflight = inflight;
    }
}

/// Shared simulator state.
#[derive(Debug)]
struct Shared {
    cfg: Config,
    base_url: String,
    core: SimCore,
    data: Mutex<Data>,
}

impl Shared {
    fn now(&self) -> DateTime<Utc> {
        self.core.clock.now()
    }
}

/// Starts the Autotask simulator on `listen` (use port 0 for an ephemeral port).
pub async fn start(listen: SocketAddr, config: Config) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let core = SimCore::new();
    let shared = Arc::new(Shared {
        base_url: base_url_for(addr),
        core: core.clone(),
        data: Mutex::new(Data::seed(&config)),
        cfg: config,
    });
    let api: Router = control::routes(Arc::clone(&shared)).merge(api::routes(Arc::clone(&shared)));
    let reset_target = Arc::clone(&shared);
    let router = common::finish(api, &core, move || {
        lock(&reset_target.data).reset(&reset_target.cfg);
    });
    Ok(common::serve(listener, router)?.with_core(core))
}
