//! Stateful fakes of Autotask, Kaspersky Security Center and Business Hub.

pub mod autotask;
pub mod common;
pub mod connectwise;
pub mod kbh;
pub mod ksc;
