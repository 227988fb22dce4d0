//! ConnectWise PSA (Manage) REST simulator (design note `connectwise-api.md`; call by call in
//! `docs/protocols/connectwise.md`).
//!
//! Serves `GET /login/companyinfo/{company}` (no credentials) and `/{codebase}/apis/3.0/...`
//! (paths case-insensitive): Basic auth `company+public:private` plus a `clientId` header,
//! service tickets (create, get, list, count, search, JSON Patch), ticket notes, boards with
//! their statuses/types/subtypes/items, priorities, sources, companies and company statuses.
//! Lists take `conditions` (the subset in [`conditions`]; anything else answers 400), `fields`,
//! `page`/`pageSize` with a `Link` header, or `pagination-type: forward-only` with `pageId`.
//!
//! Control API (no credentials, not journaled), besides the common `/_sim/reset`,
//! `/_sim/requests`, `/_sim/faults`, `/_sim/clock` (see [`crate::common`]): `GET /_sim/tickets`,
//! `GET /_sim/notes`, `POST /_sim/companies`, `POST /_sim/tickets/{id}/status`,
//! `DELETE /_sim/tickets/{id}`, `POST /_sim/throttle`, `POST /_sim/lose_answers`. See the crate
//! README for bodies and examples.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = simulators::connectwise::start("127.0.0.1:0".parse().unwrap(), Default::default()).await?;
//! println!("codebase lookup at {}/login/companyinfo/simcompany", sim.base_url());
//! # Ok(()) }
//! ```

mod api;
pub(crate) mod conditions;
mod control;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::common::{self, SimCore, SimHandle, base_url_for, lock};

/// Default login company id.
pub const DEFAULT_COMPANY: &str = "simcompany";
/// Default API member public key.
pub const DEFAULT_PUBLIC_KEY: &str = "simpublic";
/// Default API member private key.
pub const DEFAULT_PRIVATE_KEY: &str = "simprivate";
/// Default codebase (`{codebase}apis/3.0/`).
pub const DEFAULT_CODEBASE: &str = "v4_6_release/";
/// The 100-character limit of `summary` and `externalXRef`.
pub const SUMMARY_MAX: usize = 100;

/// A board of the seed with everything that belongs to it.
#[derive(Debug, Clone)]
pub struct SimBoard {
    /// `{"id","name","inactiveFlag"}`.
    pub board: Value,
    /// `BoardStatus` rows (`id`, `name`, `closedStatus`, `defaultFlag`, `inactive`).
    pub statuses: Vec<Value>,
    /// `BoardType` rows.
    pub types: Vec<Value>,
    /// `BoardSubType` rows (`typeAssociationIds`).
    pub subtypes: Vec<Value>,
    /// `BoardItem` rows.
    pub items: Vec<Value>,
}

/// Simulator configuration; `Default` is the documented seed.
#[derive(Debug, Clone)]
pub struct Config {
    /// Login company id.
    pub company_id: String,
    /// API member public key.
    pub public_key: String,
    /// API member private key.
    pub private_key: String,
    /// `clientId` values accepted (`None`: any non-empty one).
    pub client_ids: Option<Vec<String>>,
    /// Codebase answered by `companyinfo` and served (`v4_6_release/`).
    pub codebase: String,
    /// Boards.
    pub boards: Vec<SimBoard>,
    /// Priorities `{"id","name","sortOrder"}`.
    pub priorities: Vec<Value>,
    /// Sources `{"id","name"}`.
    pub sources: Vec<Value>,
    /// Company statuses `{"id","name","inactiveFlag"}`.
    pub company_statuses: Vec<Value>,
    /// Companies `{"id","identifier","name","status":{"id","name"},"deletedFlag"}`.
    pub companies: Vec<Value>,
    /// First ticket id handed out.
    pub first_ticket_id: i64,
    /// First note id handed out.
    pub first_note_id: i64,
    /// The API member's identifier (`enteredBy`, `createdBy`, `closedBy`).
    pub member: String,
}

fn board(
    id: i64,
    name: &str,
    inactive: bool,
    statuses: &[(i64, &str, bool, bool)],
    types: &[(i64, &str)],
    subtypes: &[(i64, &str, &[i64])],
    items: &[(i64, &str)],
) -> SimBoard {
    let r = json!({"id": id, "name": name});
    SimBoard {
        board: json!({"id": id, "name": name, "inactiveFlag": inactive}),
        statuses: statuses
            .iter()
            .map(|(i, n, closed, default)| {
                json!({"id": i, "name": n, "board": r, "closedStatus": closed, "defaultFlag": default, "inactive": false,
                    "escalationStatus": "NotResponded"})
            })
            .collect(),
        types: types.iter().map(|(i, n)| json!({"id": i, "name": n, "inactiveFlag": false, "board": r})).collect(),
        subtypes: subtypes
            .iter()
            .map(|(i, n, assoc)| json!({"id": i, "name": n, "inactiveFlag": false, "typeAssociationIds": assoc, "board": r}))
            .collect(),
        items: items.iter().map(|(i, n)| json!({"id": i, "name": n, "inactiveFlag": false, "board": r})).collect(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            company_id: DEFAULT_COMPANY.into(),
            public_key: DEFAULT_PUBLIC_KEY.into(),
            private_key: DEFAULT_PRIVATE_KEY.into(),
            client_ids: None,
            codebase: DEFAULT_CODEBASE.into(),
            boards: vec![
                board(
                    1,
                    "Monitoring Alert",
                    false,
                    &[(10, "New", false, true), (11, "In Progress", false, false), (12, "Completed", true, false)],
                    &[(100, "Security"), (101, "Hardware")],
                    &[(110, "Malware", &[100]), (111, "Disk", &[101]), (112, "Other", &[])],
                    &[(120, "Remote Support")],
                ),
                board(
                    2,
                    "Help Desk",
                    false,
                    &[
                        (20, "New", false, true),
                        (21, "Waiting", false, false),
                        (22, "Completed", true, false),
                        (23, "Closed", true, false),
                    ],
                    &[(200, "Security"), (201, "Software")],
                    &[(210, "Malware", &[200])],
                    &[(220, "Remote Support")],
                ),
                board(3, "Retired", true, &[(30, "New", false, true), (31, "Closed", true, false)], &[], &[], &[]),
            ],
            priorities: vec![
                json!({"id": 1, "name": "Critical", "sortOrder": 1}),
                json!({"id": 2, "name": "High", "sortOrder": 2}),
                json!({"id": 3, "name": "Medium", "sortOrder": 3}),
                json!({"id": 4, "name": "Low", "sortOrder": 4}),
            ],
            sources: vec![
                json!({"id": 1, "name": "Email"}),
                json!({"id": 2, "name": "Phone"}),
                json!({"id": 3, "name": "Monitoring Alert"}),
            ],
            company_statuses: vec![
                json!({"id": 1, "name": "Active", "inactiveFlag": false, "defaultFlag": true}),
                json!({"id": 2, "name": "Inactive", "inactiveFlag": true, "defaultFlag": false}),
            ],
            companies: vec![
                company(250, "MockMSP", "Mock MSP", 1, false),
                company(19300, "AcmeCorp", "Acme Corp", 1, false),
                company(19301, "OldCo", "Old Co", 2, false),
                company(19302, "GoneLtd", "Gone Ltd", 1, true),
            ],
            first_ticket_id: 5001,
            first_note_id: 90001,
            member: "apimember".into(),
        }
    }
}

fn company(id: i64, identifier: &str, name: &str, status: i64, deleted: bool) -> Value {
    let status_name = if status == 2 { "Inactive" } else { "Active" };
    json!({"id": id, "identifier": identifier, "name": name, "status": {"id": status, "name": status_name},
        "deletedFlag": deleted})
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
    boards: Vec<SimBoard>,
    companies: BTreeMap<i64, Value>,
    tickets: BTreeMap<i64, Value>,
    notes: BTreeMap<i64, Value>,
    next_ticket_id: i64,
    next_note_id: i64,
    /// Next N API requests get 429 with `Retry-After: secs`.
    throttle: Option<(u32, u64)>,
    lost: Vec<LostAnswer>,
}

impl Data {
    fn seed(cfg: &Config) -> Self {
        Self {
            boards: cfg.boards.clone(),
            companies: cfg.companies.iter().filter_map(|c| Some((c.get("id")?.as_i64()?, c.clone()))).collect(),
            tickets: BTreeMap::new(),
            notes: BTreeMap::new(),
            next_ticket_id: cfg.first_ticket_id,
            next_note_id: cfg.first_note_id,
            throttle: None,
            lost: Vec::new(),
        }
    }

    fn board(&self, id: i64) -> Option<&SimBoard> {
        self.boards.iter().find(|b| b.board["id"].as_i64() == Some(id))
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

    fn now_str(&self) -> String {
        self.now().to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// Starts the ConnectWise simulator on `listen` (use port 0 for an ephemeral port).
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
        *lock(&reset_target.data) = Data::seed(&reset_target.cfg);
    });
    Ok(common::serve(listener, router)?.with_core(core))
}
