//! Kaspersky Security Center (KSC) Open API client and the msp-ticketing ports it serves:
//! [`EventSource`](ticketing_core::ports::EventSource) (events of every severity, resumable
//! with an opaque cursor) and [`StatusSource`](ticketing_core::ports::StatusSource) (complete
//! per-virtual-server snapshots of computer statuses with their status descriptions).
//!
//! The wire protocol, call by call (request, answer, errors, and which facts are verified
//! against the vendor's public documentation and which are modelled), is in
//! `docs/protocols/security-center.md` at the root of this repository: session tokens per
//! virtual server (`Session.StartSession` with `KSCBasic` and `X-KSC-VServer`), the
//! `PxgRetVal`/`PxgError` envelope, typed values, event iterators and host chunk accessors
//! that are always released.
//!
//! Events are resumed from a `dbid:<event_db_id>` high-water mark (arrival order, so events
//! that reach the server late are still read); see [`events`] for the read and the migration
//! of the earlier `rise_time` cursors. A self-signed server certificate (commonly `CA:TRUE`)
//! is accepted when pinned: [`KscConfig::tls`] `CaFile` or [`KscConfig::cert_sha256`]
//! (through the `pinned-tls` crate).
//!
//! What it does not do: no ticket decisions (that is `ticketing-core`), no persistence (the
//! daemon stores the cursor), no background tasks (every call is driven by the caller).
//!
//! Layers, bottom up:
//! - [`value`]: KSC "params" values and the typed wrappers;
//! - [`client`]: HTTP, sessions, envelope, retries ([`KscClient`]);
//! - [`events`], [`hosts`]: the iterator walks and record conversions;
//! - [`source`]: [`KscSource`], the port implementations, and [`tenant`] ids.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod hosts;
mod known;
mod masks;
pub mod source;
pub mod subscription;
pub mod tenant;
pub mod value;

pub use client::{KscClient, Reply};
pub use config::{HostSearch, KscConfig, LevelSource, RetryPolicy, TlsVerification};
pub use error::{ErrorClass, KscError, PxgError};
pub use events::{EventCursor, LegacyCursor};
pub use source::{KscSource, VServer};
pub use tenant::{parse_tenant_id, tenant_id};
pub use value::Value;
