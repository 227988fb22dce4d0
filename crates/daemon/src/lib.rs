//! `msp-ticketd`, the reference daemon of msp-ticketing, as a library: the binary is a thin CLI
//! over it, and the end-to-end tests drive it in-process.
//!
//! - [`config`]: the TOML file;
//! - [`store`], [`engine`], [`metrics`], [`health`], [`audit`]: the exactly-once runtime, from
//!   the `ticketing-engine` crate (re-exported here under the daemon's own paths);
//! - [`rules_ops`]: the guide's rule editing over the store, shared by CLI, admin API and UI;
//! - [`access`]: users, roles, sessions, API tokens and the change log (issue 28);
//! - [`admin`]: the admin HTTP API; [`ui`]: the Ticketing tab in the browser; [`gate`]: which
//!   role each of their routes needs, and the rate limits; [`users_api`]: users over HTTP;
//! - [`wiring`]: config → adapters; [`service`]: `run` and `check`;
//! - `demo`: the demo and the test lab over the simulators (feature `demo`, on by default; a
//!   production build, `--no-default-features`, links no simulator).

pub use ticketing_engine::{audit, documents, engine, health, metrics, store};

pub mod access;
pub mod admin;
pub mod backends;
pub mod check;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod gate;
pub mod ledger_ops;
pub mod listener;
pub mod logging;
pub mod mapping_ops;
pub mod reload;
pub mod rules_ops;
pub mod service;
pub mod ui;
pub mod users_api;
pub mod wiring;
