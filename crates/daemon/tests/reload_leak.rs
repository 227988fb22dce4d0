//! Reloads must not leak (issue #25): each reload wires new adapters, and the previous ones must
//! go once the engine has switched. 200 reloads, each one used (the new adapters reach the PSA
//! before the next reload), leave the resident memory and the open file descriptors of the
//! process flat. Its own test binary, so no other test's memory or sockets count.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use anyhow::{Context as _, Result};
use msp_ticketd::demo::{ADMIN_TOKEN, DEMO_RULES, Lab};
use msp_ticketd::service::{self, StartOptions};

/// Resident memory of this process, in bytes (Linux `/proc/self/statm`).
fn rss() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).context("statm's resident field")?.parse()?;
    Ok(pages * 4096)
}

/// Open file descriptors of this process.
fn fds() -> Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

/// The fewest open file descriptors over ten engine ticks: the reads and deliveries in flight
/// at one instant (a connection each) come and go; what stays is what was kept.
async fn settled_fds() -> Result<usize> {
    let mut least = usize::MAX;
    for _ in 0..10 {
        least = least.min(fds()?);
        tokio::time::sleep(support::TICK).await;
    }
    Ok(least)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_reloads_leave_memory_and_file_descriptors_flat() -> Result<()> {
    if !std::path::Path::new("/proc/self/statm").exists() {
        eprintln!("skipped: needs Linux /proc to measure memory and file descriptors");
        return Ok(());
    }
    // The simulators run in this process: their request journals (kept for other tests) would
    // grow with every call and count as the daemon's memory.
    simulators::common::set_default_journal_limit(0);
    // The simulators close every connection after its answer: an idle connection kept in a
    // pool (how many depends on the last ticks' concurrency, both ends in this process) would
    // make the count vary by a few either way. What stays open is then what was kept: a read
    // that never ends, a listener, a file. Adapters kept alive show in the memory as well.
    simulators::common::set_close_connections(true);
    // 200 reloads in half a minute are more than Business Hub's modelled 600 requests a minute:
    // its limit would hold the reads up (as it should), not measure the reloads.
    let unlimited = simulators::kbh::Config { requests_per_minute: 0, ..simulators::kbh::Config::default() };
    let lab = Lab::start_with_business_hub(msp_ticketd::demo::Psa::Autotask, unlimited).await?;
    let path = lab.dir.join("msp-ticketd.toml");
    let text = lab.config_toml(DEMO_RULES, "127.0.0.1:0");
    std::fs::write(&path, &text)?;
    let config = msp_ticketd::config::Config::parse(&text, "leak.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = StartOptions { config_path: Some(path.clone()), ..StartOptions::every(support::TICK) };
    let running = service::start_with(&config, options).await?;
    let addr = running.admin_addr.context("admin")?;
    let http = reqwest::Client::new();
    let psa_requests = || running.shared.metrics.psa_calls().values().sum::<u64>();

    let reload = async |i: usize| -> Result<()> {
        let before = psa_requests();
        let resp = http.post(format!("http://{addr}/api/reload")).bearer_auth(ADMIN_TOKEN).send().await?;
        let status = resp.status();
        anyhow::ensure!(status.is_success(), "reload {i}: {status} {}", resp.text().await?);
        // The new adapters are used (catalog and accounts are read through them at once).
        support::eventually(30, &format!("reload {i} used"), || async { Ok((psa_requests() > before).then_some(())) })
            .await
    };
    // Warm-up: allocator arenas, connection pools and caches reach their steady size.
    for i in 0..20 {
        reload(i).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before, fds_before) = (rss()?, settled_fds().await?);
    for i in 20..220 {
        reload(i).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_after, fds_after) = (rss()?, settled_fds().await?);
    println!(
        "200 reloads: resident memory {} -> {} KiB, open file descriptors {fds_before} -> {fds_after}",
        rss_before / 1024,
        rss_after / 1024
    );

    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown <= 5 * 1024 * 1024,
        "resident memory grew by {} KiB over 200 reloads ({rss_before} -> {rss_after} bytes)",
        grown / 1024
    );
    assert!(
        fds_after <= fds_before + 5,
        "open file descriptors grew from {fds_before} to {fds_after} over 200 reloads"
    );
    let m = support::metrics(&running).await?;
    assert_eq!(support::metric(&m, "msp_config_reloads_total{result=\"ok\"}"), 220, "{m}");
    running.stop().await?;
    Ok(())
}
