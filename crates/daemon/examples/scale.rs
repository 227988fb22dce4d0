//! Scale harness: many tenants and devices on one daemon, against the simulators over real HTTP.
//!
//! ```sh
//! cargo run --release -p msp-ticketd --example scale -- --tenants 10000 --devices 10000 --problem-every 1
//! cargo run --release -p msp-ticketd --example scale -- --tenants 100 --devices 1000000 --problem-every 1000
//! ```
//!
//! It seeds Security Center virtual servers (one tenant each, all mapped to one active Autotask
//! account) with devices, every K-th of them with one Warning status description whose rule is
//! on; starts the daemon; and prints:
//! - seeding time, time to all tickets and tickets/s (first to last create, and from start);
//! - PSA requests per ticket and Security Center requests per tenant on the way to all tickets;
//! - the Autotask simulator's own create ceiling, measured in the same run by a minimal client
//!   at the daemon's delivery concurrency, and the daemon's ratio to it;
//! - daemon CPU and wall time per polling pass once idle, per device, and PSA requests per idle
//!   pass;
//! - Security Center calls per tenant per idle pass, by method (the simulator's `GET
//!   /_sim/calls`); idle passes are counted as done (one `HostGroup.FindHosts` per tenant and
//!   pass), not as due;
//! - the daemon's peak RSS, and separately the simulators' process's.
//!
//! `--table` runs the rows of issue #29's table in one process (1 tenant x 10,000 devices and
//! 10,000 tenants x 1, every device a problem; 100 tenants x 10,000 devices, every 1,000th a
//! problem; then the core's Criterion benchmark through cargo) and prints each figure on its
//! own line as `figure: value (goal ...)`, so a run compares with the goals at a glance.
//!
//! The simulators run in this process; the daemon runs in its own: the harness re-executes
//! itself with the hidden first argument `--daemon-child <config.toml>`, and that child starts
//! `service::start_with` on the configuration and writes its ticket count (created + recovered)
//! and its store commits to stdout every 20 ms until it reads `stop` or EOF on stdin. So nothing the simulators hold
//! or burn is counted as the daemon's:
//! - progress (first ticket, all tickets) comes from the child's lines;
//! - daemon CPU is the child's utime + stime (`/proc/<pid>/stat`), all its threads together;
//! - the daemon's peak RSS is the child's VmHWM (`/proc/<pid>/status`), read just before it is
//!   told to stop; the simulators' is this process's VmHWM.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures::StreamExt as _;
use msp_ticketd::demo::{ACME, ADMIN_TOKEN};
use msp_ticketd::service::{self, StartOptions};
use serde_json::{Value, json};
use simulators::common::SimHandle;

/// The daemon binary's allocator (see `src/main.rs`), so the child measures what `msp-ticketd`
/// runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy)]
struct Args {
    tenants: usize,
    devices: usize,
    problem_every: usize,
    statuses_secs: u64,
    idle_passes: u64,
    concurrency: usize,
    read_concurrency: usize,
    /// `--table`: the runs of issue #29's table, one after the other, then its figures.
    table: bool,
    /// `--no-core`: with `--table`, leave out the core's benchmarks.
    core: bool,
}

const USAGE: &str = "\
usage: scale [--tenants N] [--devices M] [--problem-every K] [--statuses-secs S]
             [--idle-passes P] [--concurrency C] [--read-concurrency R]
       scale --table [--no-core] [--statuses-secs S] [--idle-passes P] ...

  --tenants N           Security Center virtual servers, one tenant each (default 100)
  --devices M           devices in all, spread over the tenants (default 10000)
  --problem-every K     every K-th device has one Warning description whose rule is on (default 10)
  --statuses-secs S     the daemon's status polling interval, seconds (default 5)
  --idle-passes P       idle polling passes measured once every ticket exists (default 3)
  --concurrency C       PSA deliveries in flight, 1 to 3 (default 2)
  --read-concurrency R  source reads in flight per source (default 16)
  --table               run the rows of issue #29's table (1 tenant x 10,000 devices and
                        10,000 x 1, every device a problem; 100 tenants x 10,000 devices,
                        every 1,000th a problem), then the core's benchmarks (cargo bench
                        -p ticketing-core --bench decisions), and print each figure as
                        `figure: value (goal ...)`
  --no-core             with --table: without the core's benchmarks
  -h, --help            this text";

/// The flags, or `None` when `--help` was asked for. An unknown flag, a flag without a value or
/// a value that is not a number is an error naming the flag.
fn args() -> Result<Option<Args>> {
    let mut a = Args {
        tenants: 100,
        devices: 10_000,
        problem_every: 10,
        statuses_secs: 5,
        idle_passes: 3,
        concurrency: 2,
        read_concurrency: 16,
        table: false,
        core: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        if flag == "--table" || flag == "--no-core" {
            a.table |= flag == "--table";
            a.core &= flag != "--no-core";
            continue;
        }
        if !matches!(
            flag.as_str(),
            "--tenants"
                | "--devices"
                | "--problem-every"
                | "--statuses-secs"
                | "--idle-passes"
                | "--concurrency"
                | "--read-concurrency"
        ) {
            bail!("unknown flag {flag} (see --help)");
        }
        let value = it.next().with_context(|| format!("{flag} needs a value (see --help)"))?;
        let n: usize = value.parse().with_context(|| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--tenants" => a.tenants = n.max(1),
            "--devices" => a.devices = n.max(1),
            "--problem-every" => a.problem_every = n.max(1),
            "--statuses-secs" => a.statuses_secs = n.max(1) as u64,
            "--idle-passes" => a.idle_passes = n.max(1) as u64,
            "--concurrency" => a.concurrency = n.clamp(1, 3),
            "--read-concurrency" => a.read_concurrency = n.max(1),
            other => bail!("unknown flag {other} (see --help)"),
        }
    }
    Ok(Some(a))
}

/// CPU seconds (user + system) of process `pid`, all its threads together, from
/// `/proc/<pid>/stat`.
fn proc_cpu(pid: u32) -> Result<f64> {
    let ticks = 100.0; // USER_HZ on Linux
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // Fields after the command's closing parenthesis (the command may hold spaces and
    // parentheses): state is field 3; utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field =
        |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).with_context(|| format!("{path}: no field {}", i + 3));
    Ok((field(11)? + field(12)?) as f64 / ticks)
}

/// A memory line of `/proc/<proc>/status` (`proc` is a pid or `self`), in MB.
fn status_mb(proc: &str, field: &str) -> Result<f64> {
    let path = format!("/proc/{proc}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{path}: no {field}"))?;
    Ok(kb / 1024.0)
}

/// The hidden first argument that makes the harness the daemon's process instead.
const DAEMON_CHILD: &str = "--daemon-child";

/// Child mode: run the daemon on the configuration at `path`, write its ticket count
/// (created + recovered) and store commits to stdout every 20 ms, stop cleanly on `stop` or EOF on stdin.
fn daemon_child(path: &str) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let config = msp_ticketd::config::Config::parse(&text, "scale.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    // The same runtime as the daemon had in-process: one worker, so the numbers stay comparable.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("daemon-worker")
        .enable_all()
        .build()?;
    let running = rt.block_on(service::start_with(&config, StartOptions::every(Duration::from_millis(200))))?;
    // stdin is watched on its own thread so the progress loop never blocks on it; the thread
    // ends (dropping the sender) on "stop", EOF or a read error, and that ends the loop.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            match line {
                Ok(l) if l.trim() != "stop" => continue,
                _ => break,
            }
        }
        drop(tx);
    });
    let mut out = std::io::stdout().lock();
    loop {
        let (created, _, recovered) = running.shared.metrics.ticket_counts();
        let commits = running.shared.metrics.store_commits();
        // A failed write means the parent is gone: stop as on EOF.
        if writeln!(out, "{} {commits}", created + recovered).and_then(|()| out.flush()).is_err() {
            break;
        }
        if let Err(std::sync::mpsc::RecvTimeoutError::Disconnected) = rx.recv_timeout(Duration::from_millis(20)) {
            break;
        }
    }
    rt.block_on(running.stop())
}

/// The daemon's process, seen from the parent. Dropping it kills the child, so an error in the
/// parent never leaves a daemon polling the (then gone) simulators.
struct Daemon {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The latest ticket count the child reported.
    progress: Arc<AtomicUsize>,
    /// The store commits the child reported (`msp_store_commits_total`).
    commits: Arc<AtomicUsize>,
}

impl Daemon {
    /// Re-executes this harness in child mode on the configuration at `config`.
    fn spawn(config: &Path) -> Result<Self> {
        let exe = std::env::current_exe().context("finding the harness's own executable")?;
        let mut child = Command::new(exe)
            .arg(DAEMON_CHILD)
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning the daemon's process")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the daemon's stdout")?;
        let (progress, commits) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        // Read on a thread: the parent's loop only looks at the latest values, and a child that
        // writes faster than the parent looks never blocks on a full pipe.
        let (latest, latest_commits) = (Arc::clone(&progress), Arc::clone(&commits));
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut numbers = line.split_whitespace().map(|w| w.parse::<usize>());
                if let Some(Ok(n)) = numbers.next() {
                    latest.store(n, Ordering::Relaxed);
                }
                if let Some(Ok(n)) = numbers.next() {
                    latest_commits.store(n, Ordering::Relaxed);
                }
            }
        });
        Ok(Self { child, stdin, progress, commits })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn progress(&self) -> usize {
        self.progress.load(Ordering::Relaxed)
    }

    /// The latest store commit count the child reported.
    fn commits(&self) -> usize {
        self.commits.load(Ordering::Relaxed)
    }

    /// Fails, with the child's exit status, if the daemon's process has ended: its `/proc`
    /// numbers would no longer be a running daemon's.
    fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait().context("checking the daemon's process")? {
            bail!("the daemon's process exited early: {status}");
        }
        Ok(())
    }

    /// Tells the child to stop, and waits (a minute at most) for it to exit successfully.
    fn stop(mut self) -> Result<()> {
        if let Some(mut stdin) = self.stdin.take() {
            // A failed write means the child is already gone; its status below says why.
            let _ = writeln!(stdin, "stop").and_then(|()| stdin.flush());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().context("waiting for the daemon's process")? {
                break status;
            }
            if Instant::now() > deadline {
                bail!("the daemon's process did not stop within a minute of being told to");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        anyhow::ensure!(status.success(), "the daemon's process failed: {status}");
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn requests(sim: &SimHandle) -> usize {
    sim.core().map(|c| c.journal.len() + c.journal.dropped() as usize).unwrap_or(0)
}

async fn control(
    http: &reqwest::Client,
    sim: &SimHandle,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Result<Value> {
    let resp = http.request(method, format!("{}{path}", sim.base_url())).json(&body).send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    anyhow::ensure!(status.is_success(), "{path}: {status} {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn ticket_count(http: &reqwest::Client, autotask: &SimHandle) -> Result<usize> {
    let v: Value = http.get(format!("{}/_sim/tickets", autotask.base_url())).send().await?.json().await?;
    Ok(v.as_array().map_or(0, Vec::len))
}

/// The simulator's own create ceiling: a minimal client posting tickets at `concurrency`.
async fn ceiling(http: &reqwest::Client, autotask: &SimHandle, n: usize, concurrency: usize) -> Result<f64> {
    let url = format!("{}/ATServicesRest/V1.0/Tickets", autotask.base_url());
    let started = Instant::now();
    let posts = futures::stream::iter(0..n).map(|i| {
        let url = url.clone();
        async move {
            http.post(&url)
                .header("UserName", "api@sim.local")
                .header("Secret", "sim-secret")
                .header("ApiIntegrationCode", "SIMINTEGRATIONCODE000000000")
                .json(&json!({ "companyID": ACME, "title": format!("ceiling {i}"), "status": 1, "priority": 2,
                               "queueID": 8, "dueDateTime": "2030-01-01T00:00:00Z", "externalID": format!("ceiling-{i}") }))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map(drop)
        }
    });
    let results: Vec<_> = posts.buffer_unordered(concurrency).collect().await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    anyhow::ensure!(failed == 0, "{failed} ceiling creates failed");
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    if argv.next().as_deref() == Some(DAEMON_CHILD) {
        let path = argv.next().with_context(|| format!("{DAEMON_CHILD} needs the configuration's path"))?;
        return daemon_child(&path);
    }
    let a = match args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return Ok(());
        }
        Err(e) => {
            eprintln!("scale: {e:#}");
            std::process::exit(2);
        }
    };
    if a.table {
        return table(&a);
    }
    run(&a).map(drop)
}

/// What one run measured, for the table.
struct Figures {
    /// Start of the daemon to every ticket, seconds.
    all_in: f64,
    /// Daemon CPU per idle status pass, seconds.
    cpu_per_pass: f64,
    /// Security Center calls per tenant per idle status pass.
    ksc_calls_per_tenant: f64,
}

/// One run: seed, start the daemon, wait for every ticket, measure idle passes.
fn run(a: &Args) -> Result<Figures> {
    let sims =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("sim-worker").enable_all().build()?;
    let any: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    let (autotask, ksc, kbh) = sims.block_on(async {
        // Autotask's real 10,000 requests an hour would stop a 10,000-ticket run after a few
        // seconds (the daemon honours it, correctly); the harness measures speed, not the limit.
        let mut at = simulators::autotask::Config::default();
        at.limits.hourly_threshold = 100_000_000;
        let autotask = simulators::autotask::start(any, at).await?;
        let ksc = simulators::ksc::start(any, simulators::ksc::Config::default()).await?;
        let kbh = simulators::kbh::start(any, simulators::kbh::Config::default()).await?;
        anyhow::Ok((autotask, ksc, kbh))
    })?;
    for sim in [&autotask, &ksc, &kbh] {
        if let Some(c) = sim.core() {
            c.journal.set_limit(1000);
        }
    }
    let http = reqwest::Client::new();
    let dir = std::env::temp_dir().join(format!("msp-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // Seed.
    let seeding = Instant::now();
    let per_tenant = a.devices.div_ceil(a.tenants);
    let mut problems = 0usize;
    sims.block_on(async {
        let vservers = futures::stream::iter(1..=a.tenants).map(|v| {
            let (http, ksc) = (&http, &ksc);
            async move {
                control(
                    http,
                    ksc,
                    reqwest::Method::POST,
                    "/_sim/vservers",
                    json!({ "id": v, "name": format!("Tenant {v}") }),
                )
                .await
            }
        });
        for r in vservers.buffer_unordered(32).collect::<Vec<_>>().await {
            r?;
        }
        anyhow::Ok(())
    })?;
    let mut hosts = Vec::with_capacity(a.devices);
    for d in 0..a.devices {
        let problem = d % a.problem_every == 0;
        problems += usize::from(problem);
        hosts.push(((d / per_tenant) + 1, d, problem));
    }
    sims.block_on(async {
        let puts = futures::stream::iter(hosts).map(|(v, d, problem)| {
            let (http, ksc) = (&http, &ksc);
            async move {
                let body = json!({ "name": format!("PC-{d}"), "descriptions": if problem { vec!["databases_out_of_date"] } else { vec![] } });
                control(http, ksc, reqwest::Method::PUT, &format!("/_sim/hosts/{v}/host-{d}"), body).await
            }
        });
        for r in puts.buffer_unordered(64).collect::<Vec<_>>().await {
            r?;
        }
        anyhow::Ok(())
    })?;
    let seeded_in = seeding.elapsed();
    println!(
        "seeded {} tenants, {} devices, {problems} with a problem in {:.1} s",
        a.tenants,
        a.devices,
        seeded_in.as_secs_f64()
    );

    let mut toml = format!(
        r#"
[store]
path = {store:?}
[admin]
listen = "127.0.0.1:0"
token = {{ value = "{ADMIN_TOKEN}" }}
[logging]
filter = "warn"
[polling]
events_secs = 3600
statuses_secs = {statuses}
catalog_secs = 3600
ticket_sync_secs = 0
deliver_concurrency = {conc}
read_concurrency = {reads}
[autotask]
base_url = "{at}"
username = "api@sim.local"
secret = {{ value = "sim-secret" }}
integration_code = {{ value = "SIMINTEGRATIONCODE000000000" }}
hourly_budget = 100000000
[[security_center]]
name = "scale"
url = "{ksc}"
user = "ksc-admin"
password = {{ value = "ksc-secret" }}
[rules.rows."security_center/status/warning/databases_out_of_date"]
enabled = true
"#,
        store = dir.join("scale.sqlite").display().to_string(),
        statuses = a.statuses_secs,
        conc = a.concurrency,
        reads = a.read_concurrency,
        at = autotask.base_url(),
        ksc = ksc.base_url(),
    );
    for v in 1..=a.tenants {
        toml.push_str(&format!("[[mapping]]\ntenant = \"ksc:scale/vs:{v}\"\naccount_id = {ACME}\n"));
    }
    // Checked here too, so a bad configuration fails before a process is spawned.
    msp_ticketd::config::Config::parse(&toml, "scale.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let config_path = dir.join("scale.toml");
    std::fs::write(&config_path, &toml).with_context(|| format!("writing {}", config_path.display()))?;

    // Run until every problem is a ticket.
    let ksc0 = requests(&ksc);
    let started = Instant::now();
    let mut daemon = Daemon::spawn(&config_path)?;
    let mut first_ticket: Option<Duration> = None;
    // Progress is read from the daemon's own counter (the child's lines): listing the
    // simulator's tickets every few milliseconds would cost the simulator (and the shared
    // cores) more than the creates.
    loop {
        let n = daemon.progress();
        if n > 0 && first_ticket.is_none() {
            first_ticket = Some(started.elapsed());
        }
        if n >= problems {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("only {n} of {problems} tickets after an hour");
        }
        daemon.ensure_running()?;
        std::thread::sleep(Duration::from_millis(20));
    }
    let all_in = started.elapsed();
    // Read before listing the tickets, so the listing's requests and time are not counted. The
    // child's CPU is all of it since exec: it did not exist before the run.
    let cpu_to_all = proc_cpu(daemon.pid())?;
    let (requests_to_all, ksc_to_all, commits_to_all) = (requests(&autotask), requests(&ksc) - ksc0, daemon.commits());
    let listed = sims.block_on(ticket_count(&http, &autotask))?;
    anyhow::ensure!(listed == problems, "the simulator holds {listed} tickets, expected {problems}");
    let delivery = all_in - first_ticket.unwrap_or_default();
    println!(
        "all {problems} tickets in {:.2} s from start ({:.0} tickets/s); first to last create {:.2} s ({:.0} tickets/s); daemon CPU {:.2} s",
        all_in.as_secs_f64(),
        problems as f64 / all_in.as_secs_f64(),
        delivery.as_secs_f64(),
        problems as f64 / delivery.as_secs_f64().max(1e-3),
        cpu_to_all
    );
    println!("PSA requests per ticket: {:.3}", requests_to_all as f64 / problems as f64);
    println!("KSC requests per tenant: {:.2}", ksc_to_all as f64 / a.tenants as f64);
    println!(
        "store commits to all tickets: {commits_to_all} ({:.1} tenants per commit; read concurrency {})",
        a.tenants as f64 / commits_to_all.max(1) as f64,
        a.read_concurrency
    );

    // Idle passes: nothing changes, every tenant is read once per statuses_secs.
    let idle = Duration::from_secs(a.statuses_secs * a.idle_passes);
    let (cpu1, req1, wall1) = (proc_cpu(daemon.pid())?, requests(&autotask), Instant::now());
    let calls1 = sims.block_on(ksc_calls(&http, &ksc))?;
    std::thread::sleep(idle);
    daemon.ensure_running()?;
    let (cpu_idle, req_idle, wall_idle) = (proc_cpu(daemon.pid())? - cpu1, requests(&autotask) - req1, wall1.elapsed());
    let calls2 = sims.block_on(ksc_calls(&http, &ksc))?;
    let delta = |m: &str| calls2.get(m).copied().unwrap_or(0) - calls1.get(m).copied().unwrap_or(0);
    let ksc_idle: u64 = calls2.keys().map(|m| delta(m)).sum();
    // Passes done, not passes due: every status pass of a tenant is one FindHosts, so a pass
    // slower than the interval is not counted twice.
    let passes = delta("HostGroup.FindHosts") as f64 / a.tenants as f64;
    anyhow::ensure!(passes > 0.0, "no status pass in {:.1} s of idling", wall_idle.as_secs_f64());
    let per_pass = cpu_idle / passes;
    let ksc_per_tenant = ksc_idle as f64 / passes / a.tenants as f64;
    let by_method: Vec<String> = calls2
        .keys()
        .filter(|m| delta(m) > 0)
        .map(|m| format!("{m} {:.2}", delta(m) as f64 / passes / a.tenants as f64))
        .collect();
    println!(
        "idle: {:.1} passes in {:.1} s; daemon CPU per pass {:.3} s = {:.3} µs per device, {:.1} µs per tenant; PSA requests per idle pass {:.2}",
        passes,
        wall_idle.as_secs_f64(),
        per_pass,
        per_pass * 1e6 / a.devices as f64,
        per_pass * 1e6 / a.tenants as f64,
        req_idle as f64 / passes
    );
    println!("idle: KSC calls per tenant per pass {ksc_per_tenant:.2} ({})", by_method.join(", "));
    // The child's memory is read while it still runs: an exited process has no VmHWM.
    let pid = daemon.pid().to_string();
    let (daemon_peak, daemon_rss) = (status_mb(&pid, "VmHWM:")?, status_mb(&pid, "VmRSS:")?);
    daemon.stop()?;

    // The simulator's own ceiling at the same concurrency, in the same run.
    let n = problems.clamp(500, 5000);
    let ceiling = sims.block_on(ceiling(&http, &autotask, n, a.concurrency))?;
    let rate = problems as f64 / delivery.as_secs_f64().max(1e-3);
    println!(
        "autotask-sim ceiling at concurrency {}: {ceiling:.0} creates/s; daemon first-to-last {rate:.0} tickets/s = {:.2} of it",
        a.concurrency,
        rate / ceiling
    );
    let sims_peak = status_mb("self", "VmHWM:")?;
    println!(
        "daemon peak RSS {daemon_peak:.0} MB (own process; RSS now {daemon_rss:.0} MB); simulators' process peak {sims_peak:.0} MB"
    );
    let _ = std::fs::remove_dir_all(&dir);
    drop(kbh);
    Ok(Figures { all_in: all_in.as_secs_f64(), cpu_per_pass: per_pass, ksc_calls_per_tenant: ksc_per_tenant })
}

/// The simulator's count of API calls by method (`GET /_sim/calls`).
async fn ksc_calls(http: &reqwest::Client, ksc: &SimHandle) -> Result<std::collections::BTreeMap<String, u64>> {
    let v: Value = http.get(format!("{}/_sim/calls", ksc.base_url())).send().await?.json().await?;
    serde_json::from_value(v).context("GET /_sim/calls")
}

/// `--table`: the runs behind issue #29's table, then one line per figure.
fn table(base: &Args) -> Result<()> {
    let with = |tenants: usize, devices: usize, problem_every: usize| Args {
        tenants,
        devices,
        problem_every,
        table: false,
        ..*base
    };
    println!("== 1 tenant x 10,000 devices, every one a problem");
    let one = run(&with(1, 10_000, 1))?;
    println!("== 10,000 tenants x 1 device, every one a problem");
    let many = run(&with(10_000, 10_000, 1))?;
    println!("== 100 tenants x 10,000 devices, every 1,000th a problem");
    let wide = run(&with(100, 1_000_000, 1000))?;
    println!("== #29 figures");
    println!(
        "10,000 tenants x 1 problem vs 1 x 10,000: {:.2} s vs {:.2} s = {:.2}x (goal <= 1.5x)",
        many.all_in,
        one.all_in,
        many.all_in / one.all_in
    );
    println!(
        "idle pass, 10,000 tenants, CPU: {:.1} µs per tenant (goal <= 30 µs per tenant)",
        many.cpu_per_pass * 1e6 / 10_000.0
    );
    println!("idle pass, 10,000 tenants, KSC calls: {:.2} per tenant per pass (goal <= 3)", many.ksc_calls_per_tenant);
    println!(
        "idle pass, 100 tenants x 10,000 devices: {:.3} µs per device (goal <= 0.5 µs per device)",
        wide.cpu_per_pass * 1e6 / 1e6
    );
    if base.core {
        core_figures()?;
    }
    Ok(())
}

/// The core's rows, from its own Criterion benchmark (`ticketing-core`, `benches/decisions.rs`)
/// run by cargo in bencher format: this harness measures no core code itself.
fn core_figures() -> Result<()> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["bench", "-q", "-p", "ticketing-core", "--bench", "decisions", "--"])
        .args(["--warm-up-time", "1", "--measurement-time", "3", "--output-format", "bencher"])
        .arg("decide_event/|steady_state$")
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo bench -p ticketing-core --bench decisions")?;
    anyhow::ensure!(out.status.success(), "cargo bench failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    // `test <name> ... bench:   2,590,123 ns/iter (+/- 1,234)`
    let ns = |name: &str| -> Result<f64> {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .with_context(|| format!("no {name} in the benchmark's output"))?;
        let value = line.split("bench:").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_default();
        value.replace(',', "").parse::<f64>().with_context(|| format!("{name}: {value:?} is not a number"))
    };
    let per_device = |name: &str, devices: f64| ns(name).map(|v| v / devices);
    let (d10k, d100k, d1m) = (
        per_device("reconcile_10k_devices/steady_state", 1e4)?,
        per_device("reconcile_100k_devices/steady_state", 1e5)?,
        per_device("reconcile_1m_devices/steady_state", 1e6)?,
    );
    println!(
        "core reconcile, steady state: {d10k:.1} / {d100k:.1} / {d1m:.1} ns per device at 10k / 100k / 1M = {:.2}x growth (goal <= 2x from 10k to 1M)",
        d1m / d10k
    );
    let (event, naive) = (ns("decide_event/10k_events")? / 1e4, ns("decide_event/naive_10k_events")? / 1e4);
    println!(
        "core decide_event: {event:.0} ns per event (naive reference {naive:.0} ns, {:.1}x faster) (goal <= 150 ns)",
        naive / event
    );
    Ok(())
}
