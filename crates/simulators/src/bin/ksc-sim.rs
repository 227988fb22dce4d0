//! `ksc-sim`: the Kaspersky Security Center Open API simulator as a process.
//!
//! Prints `listening on http://HOST:PORT` (with `--tls`: `https://`) as its first stdout line,
//! then serves until SIGINT/SIGTERM. With `--tls` it generates a self-signed certificate at
//! start (`CA:TRUE` like a real Administration Server's, or `CA:FALSE` with `--tls-ca-false`),
//! writes it as PEM to a temporary file and prints `certificate <path>` and
//! `sha256 <AB:CD:...>` on the next two lines, for the client to pin.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use simulators::common::JournalArgs;
use simulators::ksc::{
    self, Config, DEFAULT_CON_EVENTS_PERIOD_MS, DEFAULT_PASSWORD, DEFAULT_SESSION_IDLE_SECS, DEFAULT_USER, TlsOptions,
};

#[derive(Debug, Parser)]
#[command(name = "ksc-sim", about = "Kaspersky Security Center Open API simulator (loopback)")]
struct Args {
    /// Address to listen on (port 0 = ephemeral).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Account name accepted by Session.StartSession and /login.
    #[arg(long, default_value = DEFAULT_USER)]
    user: String,
    /// Password accepted by Session.StartSession and /login.
    #[arg(long, default_value = DEFAULT_PASSWORD)]
    password: String,
    /// Seconds a session may stay unused before calls with it answer 403.
    #[arg(long, default_value_t = DEFAULT_SESSION_IDLE_SECS)]
    session_idle_secs: u64,
    /// Polling period (ms) ConEvents.Subscribe/Retrieve return; a Retrieve sooner answers STDE_UNAVAIL.
    #[arg(long, default_value_t = DEFAULT_CON_EVENTS_PERIOD_MS)]
    con_events_period_ms: u64,
    /// Serve HTTPS with a self-signed certificate generated at start (CA:TRUE).
    #[arg(long)]
    tls: bool,
    /// With --tls: make the certificate CA:FALSE (a plain end-entity certificate).
    #[arg(long, requires = "tls")]
    tls_ca_false: bool,
    /// With --tls: the certificate's host names (DNS names or IP addresses).
    #[arg(long = "tls-hostname", requires = "tls", value_name = "NAME")]
    tls_hostnames: Vec<String>,
    #[command(flatten)]
    journal: JournalArgs,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    args.journal.apply();
    let config = Config {
        user: args.user,
        password: args.password,
        session_idle: Duration::from_secs(args.session_idle_secs),
        con_events_period: Duration::from_millis(args.con_events_period_ms),
    };
    if !args.tls {
        let handle = ksc::start(args.listen, config).await?;
        return simulators::common::run_binary(handle).await;
    }
    let mut tls = TlsOptions { ca: !args.tls_ca_false, ..TlsOptions::default() };
    if !args.tls_hostnames.is_empty() {
        tls.hostnames = args.tls_hostnames;
    }
    let (handle, cert) = ksc::start_tls(args.listen, config, &tls).await?;
    let path = std::env::temp_dir().join(format!("ksc-sim-{}.pem", handle.addr().port()));
    std::fs::write(&path, &cert.pem)?;
    // First line stays `listening on ...` (scripts wait for it); the pin follows.
    let notice = format!("certificate {}\nsha256 {}", path.display(), cert.sha256);
    simulators::common::run_binary_with(handle, &notice).await
}
