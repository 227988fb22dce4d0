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
//! - the Autotask simulator's own create ceiling, measured in the same run by a minimal client
//!   at the daemon's delivery concurrency, and the daemon's ratio to it;
//! - daemon CPU and wall time per polling pass once idle, per device, and PSA requests per idle
//!   pass;
//! - peak RSS of the process (daemon and in-process simulators together).
//!
//! Daemon and simulators run on separate runtimes whose threads are named `daemon-*` and `sim-*`,
//! so the daemon's CPU is read from its own threads (`/proc/self/task/*/stat`).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use daemon::demo::{ACME, ADMIN_TOKEN};
use daemon::service::{self, StartOptions};
use futures::StreamExt as _;
use serde_json::{Value, json};
use simulators::common::SimHandle;

struct Args {
    tenants: usize,
    devices: usize,
    problem_every: usize,
    statuses_secs: u64,
    idle_passes: u64,
    concurrency: usize,
}

fn args() -> Result<Args> {
    let mut a =
        Args { tenants: 100, devices: 10_000, problem_every: 10, statuses_secs: 5, idle_passes: 3, concurrency: 2 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let n: usize = value.parse().with_context(|| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--tenants" => a.tenants = n.max(1),
            "--devices" => a.devices = n.max(1),
            "--problem-every" => a.problem_every = n.max(1),
            "--statuses-secs" => a.statuses_secs = n.max(1) as u64,
            "--idle-passes" => a.idle_passes = n.max(1) as u64,
            "--concurrency" => a.concurrency = n.clamp(1, 3),
            other => bail!(
                "unknown flag {other} (--tenants N --devices M --problem-every K [--statuses-secs S --idle-passes P --concurrency C])"
            ),
        }
    }
    Ok(a)
}

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
fn thread_cpu(prefix: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis: state is field 3; utime 14, stime 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let f: Vec<&str> = rest.split_whitespace().collect();
        total += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        total += f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    total as f64 / ticks
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// A `/proc/self/status` memory line, in MB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
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
    let a = args()?;
    let sims =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("sim-worker").enable_all().build()?;
    let daemon_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("daemon-worker")
        .enable_all()
        .build()?;
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
    // The simulators hold every seeded host now: what the process grows by from here on is the
    // daemon (and the tickets the Autotask simulator stores).
    let rss_seeded = status_mb("VmRSS:");
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
        at = autotask.base_url(),
        ksc = ksc.base_url(),
    );
    for v in 1..=a.tenants {
        toml.push_str(&format!("[[mapping]]\ntenant = \"ksc:scale/vs:{v}\"\naccount_id = {ACME}\n"));
    }
    let config = daemon::config::Config::parse(&toml, "scale.toml").map_err(|e| anyhow::anyhow!("{e}"))?;

    // Run until every problem is a ticket.
    let started = Instant::now();
    let cpu0 = thread_cpu("daemon");
    let running = daemon_rt.block_on(service::start_with(&config, StartOptions::every(Duration::from_millis(200))))?;
    let mut first_ticket: Option<Duration> = None;
    // Progress is read from the daemon's own counter: listing the simulator's tickets every
    // few milliseconds would cost the simulator (and the shared cores) more than the creates.
    loop {
        let (created, _, recovered) = running.shared.metrics.ticket_counts();
        let n = (created + recovered) as usize;
        if n > 0 && first_ticket.is_none() {
            first_ticket = Some(started.elapsed());
        }
        if n >= problems {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            bail!("only {n} of {problems} tickets after an hour");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let all_in = started.elapsed();
    let listed = sims.block_on(ticket_count(&http, &autotask))?;
    anyhow::ensure!(listed == problems, "the simulator holds {listed} tickets, expected {problems}");
    let cpu_to_all = thread_cpu("daemon") - cpu0;
    let requests_to_all = requests(&autotask);
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

    // Idle passes: nothing changes, every tenant is read once per statuses_secs.
    let idle = Duration::from_secs(a.statuses_secs * a.idle_passes);
    let (cpu1, req1, wall1) = (thread_cpu("daemon"), requests(&autotask), Instant::now());
    std::thread::sleep(idle);
    let (cpu_idle, req_idle, wall_idle) = (thread_cpu("daemon") - cpu1, requests(&autotask) - req1, wall1.elapsed());
    let passes = wall_idle.as_secs_f64() / a.statuses_secs as f64;
    let per_pass = cpu_idle / passes;
    println!(
        "idle: {:.1} passes in {:.1} s; daemon CPU per pass {:.3} s = {:.3} µs per device; PSA requests per idle pass {:.2}",
        passes,
        wall_idle.as_secs_f64(),
        per_pass,
        per_pass * 1e6 / a.devices as f64,
        req_idle as f64 / passes
    );
    daemon_rt.block_on(running.stop())?;

    // The simulator's own ceiling at the same concurrency, in the same run.
    let n = problems.clamp(500, 5000);
    let ceiling = sims.block_on(ceiling(&http, &autotask, n, a.concurrency))?;
    let rate = problems as f64 / delivery.as_secs_f64().max(1e-3);
    println!(
        "autotask-sim ceiling at concurrency {}: {ceiling:.0} creates/s; daemon first-to-last {rate:.0} tickets/s = {:.2} of it",
        a.concurrency,
        rate / ceiling
    );
    let peak = peak_rss_mb();
    println!(
        "peak RSS (daemon + simulators): {peak:.0} MB; simulators seeded before the daemon started: {rss_seeded:.0} MB; the daemon's share at most {:.0} MB",
        peak - rss_seeded
    );
    let _ = std::fs::remove_dir_all(&dir);
    drop(kbh);
    Ok(())
}
