//! `cw-sim`: the ConnectWise PSA (Manage) REST simulator as a process.
//!
//! Prints `listening on http://HOST:PORT` as its first stdout line, then serves until
//! SIGINT/SIGTERM.

use std::net::SocketAddr;

use clap::Parser;
use simulators::connectwise::{self, Config, DEFAULT_COMPANY, DEFAULT_PRIVATE_KEY, DEFAULT_PUBLIC_KEY};

#[derive(Debug, Parser)]
#[command(name = "cw-sim", about = "ConnectWise PSA REST API simulator (loopback)")]
struct Args {
    /// Address to listen on (port 0 = ephemeral).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Login company id.
    #[arg(long, default_value = DEFAULT_COMPANY)]
    company: String,
    /// API member public key.
    #[arg(long, default_value = DEFAULT_PUBLIC_KEY)]
    public_key: String,
    /// API member private key.
    #[arg(long, default_value = DEFAULT_PRIVATE_KEY)]
    private_key: String,
    /// Accept only this `clientId` (repeatable; default: any non-empty one).
    #[arg(long = "client-id")]
    client_ids: Vec<String>,
    /// Codebase answered by companyinfo and served.
    #[arg(long, default_value = connectwise::DEFAULT_CODEBASE)]
    codebase: String,
    #[command(flatten)]
    journal: simulators::common::JournalArgs,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.journal.apply();
    let cfg = Config {
        company_id: args.company,
        public_key: args.public_key,
        private_key: args.private_key,
        client_ids: (!args.client_ids.is_empty()).then_some(args.client_ids),
        codebase: args.codebase,
        ..Config::default()
    };
    let handle = connectwise::start(args.listen, cfg).await?;
    simulators::common::run_binary(handle).await
}
