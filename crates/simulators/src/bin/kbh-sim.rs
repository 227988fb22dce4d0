//! `kbh-sim`: the Kaspersky Business Hub simulator as a process.
//!
//! Run with `cargo run -p msp-ticketing-simulators --bin kbh-sim -- --listen 127.0.0.1:8443 --seed`. The first
//! stdout line is `listening on http://HOST:PORT`; SIGINT/SIGTERM stop it.

use std::net::SocketAddr;

use clap::Parser;
use simulators::kbh::{self, Config};

/// Kaspersky Business Hub simulator (Endpoint Security Cloud, Security for Office 365).
#[derive(Debug, Parser)]
#[command(name = "kbh-sim", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Static API token accepted as `Authorization: Bearer <token>`.
    #[arg(long, default_value = "sim-token")]
    token: String,
    /// E-mail accepted by `POST /api/v1/auth/token`.
    #[arg(long, default_value = "msp@sim.local")]
    email: String,
    /// Password accepted by `POST /api/v1/auth/token`.
    #[arg(long, default_value = "sim-password")]
    password: String,
    /// Requests per minute per token before 429 (0: unlimited).
    #[arg(long, default_value_t = 600)]
    rate_limit: u32,
    /// Lifetime of login tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_ttl: u64,
    /// Start with a demo company, devices and events.
    #[arg(long)]
    seed: bool,
    #[command(flatten)]
    journal: simulators::common::JournalArgs,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.journal.apply();
    let config = Config {
        token: args.token,
        email: args.email,
        password: args.password,
        requests_per_minute: args.rate_limit,
        token_ttl_secs: args.token_ttl,
        seed_demo: args.seed,
    };
    let handle = kbh::start(args.listen, config).await?;
    simulators::common::run_binary(handle).await
}
