//! Integration tests of the Autotask client against wiremock (and one raw TCP server for the
//! concurrency cap), and against autotask-sim over real HTTP (`sim`). One binary, one module per
//! area.

mod common;

mod client;
mod errors;
mod paging;
mod pure;
mod sim;
mod sink;
mod throttling;
