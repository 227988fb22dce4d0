//! Sans-IO core of msp-ticketing.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod model;
pub mod ports;
pub mod secret;
pub mod ticket;
