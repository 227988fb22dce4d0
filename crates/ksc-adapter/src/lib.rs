//! Kaspersky Security Center (KSC) Open API client and the msp-ticketing ports it serves:
//! [`EventSource`](ticketing_core::ports::EventSource) (events of every severity, resumable
//! with an opaque cursor) and [`StatusSource`](ticketing_core::ports::StatusSource) (complete
//! per-virtual-server snapshots of computer statuses with their status descriptions).
//!
//! Wire facts follow `ksc-api.md` (section 9 is binding): session tokens per virtual server
//! (`Session.StartSession` with `KSCBasic` and `X-KSC-VServer`), the `PxgRetVal`/`PxgError`
//! envelope, typed values, event iterators and host chunk accessors that are always released.
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
pub mod source;
pub mod tenant;
pub mod value;

pub use client::{KscClient, Reply};
pub use config::{KscConfig, LevelSource, RetryPolicy, TlsVerification};
pub use error::{ErrorClass, KscError, PxgError};
pub use events::EventCursor;
pub use source::{KscSource, VServer};
pub use tenant::{parse_tenant_id, tenant_id};
pub use value::Value;
