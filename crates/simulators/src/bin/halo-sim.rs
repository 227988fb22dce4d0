//! `halo-sim`: the HaloPSA REST simulator as a process.
//!
//! Prints `listening on http://HOST:PORT` as its first stdout line, then serves until
//! SIGINT/SIGTERM.

use std::net::SocketAddr;

use clap::Parser;
use simulators::halo::{self, Config, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};

#[derive(Debug, Parser)]
#[command(name = "halo-sim", about = "HaloPSA REST API simulator (loopback)")]
struct Args {
    /// Address to listen on (port 0 = ephemeral).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The API application's client id.
    #[arg(long, default_value = DEFAULT_CLIENT_ID)]
    client_id: String,
    /// The API application's client secret.
    #[arg(long, default_value = DEFAULT_CLIENT_SECRET)]
    client_secret: String,
    /// Require this `?tenant=` on the token request (a hosted instance).
    #[arg(long)]
    tenant: Option<String>,
    /// Seconds a token lives.
    #[arg(long, default_value_t = 3600)]
    token_ttl_secs: i64,
    #[command(flatten)]
    journal: simulators::common::JournalArgs,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.journal.apply();
    let cfg = Config {
        client_id: args.client_id,
        client_secret: args.client_secret,
        tenant: args.tenant,
        token_ttl_secs: args.token_ttl_secs.max(1),
        ..Config::default()
    };
    let handle = halo::start(args.listen, cfg).await?;
    simulators::common::run_binary(handle).await
}
