//! msp-ticketing: Kaspersky events and computer statuses in, PSA tickets out.
//!
//! This facade re-exports [`ticketing_core`] (the sans-IO decision engine) at its root, and the
//! adapters behind features once they are enabled. Embed it in another MSP tool like this:
//! implement or pick an [`ports::EventSource`] / [`ports::StatusSource`] and a
//! [`ports::TicketSink`], feed what the sources return into [`decide_event`] and [`reconcile`],
//! persist each [`Transition`] before you call the sink, and call the sink.
//!
//! See `examples/` for an embedding and for a new PSA backend, and ARCHITECTURE.md for the
//! invariants.
#![forbid(unsafe_code)]

pub use ticketing_core::*;

/// The Autotask backend (feature `autotask`).
#[cfg(feature = "autotask")]
pub use autotask_client as autotask;
/// The Business Hub sources (feature `kbh`).
#[cfg(feature = "kbh")]
pub use kbh_adapter as kbh;
/// The Security Center sources (feature `ksc`).
#[cfg(feature = "ksc")]
pub use ksc_adapter as ksc;
