//! Stateful fakes of Autotask, ConnectWise, HaloPSA, Kaspersky Security Center and Business Hub.

pub mod autotask;
pub mod common;
pub mod connectwise;
pub mod halo;
pub mod kbh;
pub mod ksc;
