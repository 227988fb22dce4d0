//! `ksc-sim`: the Kaspersky Security Center Open API simulator as a process.
//!
//! Prints `listening on http://HOST:PORT` as its first stdout line, then serves until
//! SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use simulators::ksc::{self, Config, DEFAULT_PASSWORD, DEFAULT_SESSION_IDLE_SECS, DEFAULT_USER};

#[derive(Debug, Parser)]
#[command(name = "ksc-sim", about = "Kaspersky Security Center Open API simulator (loopback)")]
struct Args {
    /// Address to listen on (port 0 = ephemeral).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Account name accepted by Session.StartSession.
    #[arg(long, default_value = DEFAULT_USER)]
    user: String,
    /// Password accepted by Session.StartSession.
    #[arg(long, default_value = DEFAULT_PASSWORD)]
    password: String,
    /// Seconds a session may stay unused before calls with it answer 403.
    #[arg(long, default_value_t = DEFAULT_SESSION_IDLE_SECS)]
    session_idle_secs: u64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config =
        Config { user: args.user, password: args.password, session_idle: Duration::from_secs(args.session_idle_secs) };
    let handle = ksc::start(args.listen, config).await?;
    simulators::common::run_binary(handle).await
}
