//! HaloPSA REST simulator (design note `halopsa-api.md`; call by call in
//! `docs/protocols/halopsa.md`).
//!
//! Serves the authorisation server `POST /auth/token` (form-encoded client credentials,
//! `?tenant=` when configured) and the resource server `/api/...` (paths case-insensitive,
//! `Authorization: Bearer <token>`): `Tickets` (list with `search`, `client_id`, `open_only`,
//! `count`, `pageinate`/`page_size`/`page_no`, `includedetails`; get one; `POST` of a JSON array
//! that creates without `id` and updates with it), `Actions` (list by `ticket_id`, `POST` of a
//! JSON array), `Client`, `Team`, `Status`, `TicketType`, `Priority`.
//!
//! Control API (no credentials, not journaled), besides the common `/_sim/reset`,
//! `/_sim/requests`, `/_sim/faults`, `/_sim/clock` (see [`crate::common`]): `GET /_sim/tickets`,
//! `GET /_sim/actions`, `POST /_sim/clients`, `POST /_sim/tickets/{id}/status` (a technician
//! sets a status), `DELETE /_sim/tickets/{id}`, `POST /_sim/throttle`, `POST /_sim/lose_answers`,
//! `POST /_sim/expire_tokens`. See the crate README for bodies and examples.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = simulators::halo::start("127.0.0.1:0".parse().unwrap(), Default::default()).await?;
//! println!("token endpoint at {}/auth/token", sim.base_url());
//! # Ok(()) }
//! ```

mod api;
mod control;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::common::{self, SimCore, SimHandle, lock};

/// Default API application client id.
pub const DEFAULT_CLIENT_ID: &str = "simclient";
/// Default API application client secret.
pub const DEFAULT_CLIENT_SECRET: &str = "simsecret";
/// Halo's built-in "Closed" status.
pub const CLOSED_STATUS: i64 = 9;

/// Simulator configuration; `Default` is the documented seed.
#[derive(Debug, Clone)]
pub struct Config {
    /// The API application's client id.
    pub client_id: String,
    /// The API application's client secret.
    pub client_secret: String,
    /// Required `?tenant=` on the token request (`None`: an on-premises instance, no tenant).
    pub tenant: Option<String>,
    /// Seconds a token lives (`expires_in`).
    pub token_ttl_secs: i64,
    /// Teams `{"id","name","inactive"}`.
    pub teams: Vec<Value>,
    /// Statuses `{"id","name","shortname"}`.
    pub statuses: Vec<Value>,
    /// Status ids that close a ticket.
    pub closed_statuses: Vec<i64>,
    /// Ticket types `{"id","name","inactive"}`.
    pub ticket_types: Vec<Value>,
    /// Priorities of the SLAs `{"id"(guid),"slaid","priorityid","name"}`.
    pub priorities: Vec<Value>,
    /// Action outcomes `{"id","outcome"}`.
    pub outcomes: Vec<Value>,
    /// Customers `{"id","name","inactive"}`.
    pub clients: Vec<Value>,
    /// First ticket id handed out.
    pub first_ticket_id: i64,
    /// First action id handed out.
    pub first_action_id: i64,
    /// The API agent's name (`who` on actions).
    pub agent: String,
}

fn priority(sla: i64, id: i64, name: &str) -> Value {
    json!({"id": format!("00000000-0000-0000-{sla:04}-{id:012}"), "slaid": sla, "priorityid": id, "name": name,
        "ishidden": false, "fixtime": 8 * id, "fixunits": "H"})
}

impl Default for Config {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            tenant: None,
            token_ttl_secs: 3600,
            teams: vec![
                json!({"id": 1, "name": "Monitoring Alert", "inactive": false}),
                json!({"id": 2, "name": "Help Desk", "inactive": false}),
                json!({"id": 3, "name": "Retired", "inactive": true}),
            ],
            statuses: vec![
                json!({"id": 1, "name": "New", "shortname": "NEW"}),
                json!({"id": 2, "name": "In Progress", "shortname": "INP"}),
                json!({"id": 3, "name": "Action Required", "shortname": "ACT"}),
                json!({"id": 4, "name": "With User", "shortname": "USR"}),
                json!({"id": CLOSED_STATUS, "name": "Closed", "shortname": "CLO"}),
            ],
            closed_statuses: vec![CLOSED_STATUS],
            ticket_types: vec![
                json!({"id": 1, "name": "Incident", "inactive": false}),
                json!({"id": 3, "name": "Service Request", "inactive": false}),
                json!({"id": 21, "name": "Security", "inactive": false}),
            ],
            priorities: vec![
                priority(1, 1, "Critical"),
                priority(1, 2, "High"),
                priority(1, 3, "Medium"),
                priority(1, 4, "Low"),
                // a second SLA with the same numbers
                priority(2, 1, "Critical"),
                priority(2, 2, "High"),
                priority(2, 3, "Medium"),
                priority(2, 4, "Low"),
            ],
            outcomes: vec![
                json!({"id": 1, "outcome": "Update"}),
                json!({"id": 7, "outcome": "Private Note"}),
                json!({"id": 8, "outcome": "Close Ticket"}),
            ],
            clients: vec![
                json!({"id": 1, "name": "Mock MSP", "inactive": false}),
                json!({"id": 12, "name": "Acme Corp", "inactive": false}),
                json!({"id": 13, "name": "Old Co", "inactive": true}),
            ],
            first_ticket_id: 1001,
            first_action_id: 5001,
            agent: "API User".into(),
        }
    }
}

/// Pending "process, then lose the answer" faults (`POST /_sim/lose_answers`).
#[derive(Debug, Clone)]
struct LostAnswer {
    method: Option<String>,
    path: Option<regex::Regex>,
    status: u16,
    remaining: u32,
}

/// Mutable simulator state.
#[derive(Debug)]
struct Data {
    clients: BTreeMap<i64, Value>,
    tickets: BTreeMap<i64, Value>,
    actions: BTreeMap<i64, Value>,
    tokens: HashMap<String, DateTime<Utc>>,
    next_ticket_id: i64,
    next_action_id: i64,
    next_token: u64,
    /// Next N API requests get 429 with `Retry-After: secs`.
    throttle: Option<(u32, u64)>,
    lost: Vec<LostAnswer>,
}

impl Data {
    fn seed(cfg: &Config) -> Self {
        Self {
            clients: cfg.clients.iter().filter_map(|c| Some((c.get("id")?.as_i64()?, c.clone()))).collect(),
            tickets: BTreeMap::new(),
            actions: BTreeMap::new(),
            tokens: HashMap::new(),
            next_ticket_id: cfg.first_ticket_id,
            next_action_id: cfg.first_action_id,
            next_token: 1,
            throttle: None,
            lost: Vec::new(),
        }
    }
}

/// Shared simulator state.
#[derive(Debug)]
struct Shared {
    cfg: Config,
    core: SimCore,
    data: Mutex<Data>,
}

impl Shared {
    fn now(&self) -> DateTime<Utc> {
        self.core.clock.now()
    }

    fn now_str(&self) -> String {
        self.now().to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    fn is_closed(&self, status: i64) -> bool {
        self.cfg.closed_statuses.contains(&status)
    }
}

/// Starts the HaloPSA simulator on `listen` (use port 0 for an ephemeral port).
pub async fn start(listen: SocketAddr, config: Config) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind(listen).await?;
    let core = SimCore::new();
    let shared = Arc::new(Shared { core: core.clone(), data: Mutex::new(Data::seed(&config)), cfg: config });
    let api: Router = control::routes(Arc::clone(&shared)).merge(api::routes(Arc::clone(&shared)));
    let reset_target = Arc::clone(&shared);
    let router = common::finish(api, &core, move || {
        *lock(&reset_target.data) = Data::seed(&reset_target.cfg);
    });
    Ok(common::serve(listener, router)?.with_core(core))
}
