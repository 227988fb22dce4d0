//! `msp-ticketd`, the reference daemon of msp-ticketing, as a library: the binary is a thin CLI
//! over it, and the end-to-end tests drive it in-process.
//!
//! - [`config`]: the TOML file;
//! - [`store`]: the durable state ([`store::Store`], SQLite by default);
//! - [`engine`]: polling, decisions, exactly-once delivery;
//! - [`rules_ops`]: the guide's rule editing over the store, shared by CLI, admin API and UI;
//! - [`admin`]: the admin HTTP API; [`ui`]: the Ticketing tab in the browser;
//! - [`wiring`]: config → adapters; [`service`]: `run` and `check`;
//! - `demo`: the demo and the test lab over the simulators (feature `demo`, on by default; a
//!   production build, `--no-default-features`, links no simulator).

pub mod admin;
pub mod audit;
pub mod backends;
pub mod check;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod engine;
pub mod health;
pub mod ledger_ops;
pub mod logging;
pub mod metrics;
pub mod rules_ops;
pub mod service;
pub mod store;
pub mod ui;
pub mod wiring;
