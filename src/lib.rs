//! msp-ticketing: the facade.
pub use ticketing_core as core;
pub use ticketing_core::*;
