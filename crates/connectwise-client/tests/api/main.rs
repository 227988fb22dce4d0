//! Integration tests of the ConnectWise client: pure functions, the wire against wiremock, and
//! the sink against cw-sim over real HTTP. One binary, one module per area.

mod pure;
mod sim;
mod wire;
