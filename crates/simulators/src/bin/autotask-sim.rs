//! `autotask-sim`: the Autotask PSA REST simulator as a process.
//!
//! Prints `listening on http://HOST:PORT` as its first stdout line, then serves until
//! SIGINT/SIGTERM.

use std::net::SocketAddr;

use clap::Parser;
use simulators::autotask::{self, Config, DEFAULT_INTEGRATION_CODE, DEFAULT_SECRET, DEFAULT_USER};

#[derive(Debug, Parser)]
#[command(name = "autotask-sim", about = "Autotask PSA REST API simulator (loopback)")]
struct Args {
    /// Address to listen on (port 0 = ephemeral).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// API username accepted in the `UserName` header.
    #[arg(long, default_value = DEFAULT_USER)]
    user: String,
    /// API secret accepted in the `Secret` header.
    #[arg(long, default_value = DEFAULT_SECRET)]
    secret: String,
    /// Integration code accepted in the `ApiIntegrationCode` header.
    #[arg(long, default_value = DEFAULT_INTEGRATION_CODE)]
    integration_code: String,
    /// Concurrent requests per (integration code, entity).
    #[arg(long)]
    thread_limit: Option<usize>,
    /// Requests allowed per sliding window.
    #[arg(long)]
    hourly_threshold: Option<u64>,
    /// Sliding window length in seconds.
    #[arg(long)]
    window_secs: Option<u64>,
    /// Time every request holds its thread slot, in milliseconds.
    #[arg(long)]
    hold_ms: Option<u64>,
    #[command(flatten)]
    journal: simulators::common::JournalArgs,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.journal.apply();
    let mut cfg =
        Config { user: args.user, secret: args.secret, integration_code: args.integration_code, ..Config::default() };
    if let Some(v) = args.thread_limit {
        cfg.limits.thread_limit = v;
    }
    if let Some(v) = args.hourly_threshold {
        cfg.limits.hourly_threshold = v;
    }
    if let Some(v) = args.window_secs {
        cfg.limits.window_secs = v;
    }
    if let Some(v) = args.hold_ms {
        cfg.limits.hold_ms = v;
    }
    let handle = autotask::start(args.listen, cfg).await?;
    simulators::common::run_binary(handle).await
}
