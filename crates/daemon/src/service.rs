//! `msp-ticketd run` and `msp-ticketd check`: the service, and the pre-flight check.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use ticketing_core::edit::RuleBook;
use ticketing_core::ports::TicketSink;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::engine::{Engine, Notice, Shared};
use crate::logging::FilterReload;
pub use crate::reload::Reloader;
use crate::reload::psa_timeout;
use crate::store::{SqliteStore, Store};
use crate::wiring;

/// Opens the store and the rule book in it; a store without rules starts from the file's
/// `[rules]` (the guide's defaults patched by it).
pub fn open_store(config: &Config) -> Result<(Arc<dyn Store>, RuleBook)> {
    let store: Arc<dyn Store> = match &config.store.url {
        // PostgreSQL (several daemons on one database). The error names host and database,
        // never the password.
        Some(url) => {
            let password = match &config.store.password {
                Some(p) => Some(p.resolve().map_err(anyhow::Error::msg).context("store.password")?),
                None => None,
            };
            Arc::new(crate::store::PostgresStore::connect(url, password.as_ref()).context("opening the store")?)
        }
        None => Arc::new(
            SqliteStore::open(&config.store.path)
                .with_context(|| format!("opening the store {}", config.store.path.display()))?,
        ),
    };
    let book = match store.rulebook()? {
        Some((book, _)) => book,
        None => {
            let book = RuleBook::new(config.rules.to_rule_set());
            match store.save_rulebook(&book, 0) {
                Ok(_) => book,
                // Another process seeded it first: theirs stands.
                Err(crate::store::StoreError::Conflict { .. }) => {
                    store.rulebook()?.map(|(b, _)| b).context("the rule book vanished")?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    Ok((store, book))
}

/// A running daemon: the engine task and, when a token is configured, the admin listener.
pub struct Running {
    /// Shared state (rules, catalog, metrics).
    pub shared: Arc<Shared>,
    /// Re-reads the configuration file, when the daemon was started from one.
    pub reloader: Option<Arc<Reloader>>,
    /// Where the admin API listens, when it does.
    pub admin_addr: Option<SocketAddr>,
    /// The admin listener's certificate, when it serves TLS (re-read by [`Running::hangup`]).
    pub tls: Option<Arc<crate::listener::Tls>>,
    stop: watch::Sender<bool>,
    engine: tokio::task::JoinHandle<Result<()>>,
    admin: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Asks everything to stop and waits: the engine finishes its tick, the admin listener its
    /// requests, Security Center sessions are ended.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        let r = self.engine.await.context("engine task")?;
        if let Some(a) = self.admin {
            let _ = a.await;
        }
        r
    }

    /// Kills the engine mid-flight, as a crash would: no tick is finished, nothing is flushed
    /// beyond what was already committed. (Tests of exactly-once delivery use this.)
    pub async fn kill(self) {
        self.engine.abort();
        let _ = self.engine.await;
        let _ = self.stop.send(true);
        if let Some(a) = self.admin {
            let _ = a.await;
        }
    }

    /// What `SIGHUP` does: re-reads the configuration file and the admin listener's TLS
    /// certificate, and records the reload in the change log (as `SIGHUP`).
    pub async fn hangup(&self) {
        if let Some(r) = &self.reloader {
            let before = crate::access::changes::revisions(self.shared.store.as_ref());
            if r.reload().await.is_ok() {
                crate::access::changes::record_in(
                    self.shared.store.as_ref(),
                    &crate::access::Actor::Signal,
                    crate::store::ChangeKind::Reload,
                    None,
                    before,
                    format!("re-read {}", r.path.display()),
                );
            }
        }
        if let Some(tls) = &self.tls {
            match tls.reload().await {
                Ok(()) => info!("admin TLS certificate re-read"),
                Err(e) => warn!(error = %format!("{e:#}"), "admin TLS certificate not re-read: the previous one stays"),
            }
        }
    }

    /// Whether the engine task has ended by itself (an unrecoverable error).
    pub fn is_finished(&self) -> bool {
        self.engine.is_finished()
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// A wrapper around the PSA sink (tests use it to inject crashes between a PSA call and its
/// answer being recorded).
pub type SinkWrapper = Box<dyn FnOnce(Arc<dyn TicketSink>) -> Arc<dyn TicketSink> + Send>;

/// How to start the daemon beyond its configuration.
pub struct StartOptions {
    /// The engine's pace (1 s in production; shorter in the demo and tests).
    pub tick: Duration,
    /// Where to send notices of tickets created, closed and skipped.
    pub notices: Option<tokio::sync::mpsc::UnboundedSender<Notice>>,
    /// Wraps the PSA sink.
    pub wrap_sink: Option<SinkWrapper>,
    /// The file the configuration came from: with it, `SIGHUP` and `POST /api/reload` re-read it.
    pub config_path: Option<PathBuf>,
    /// Changes the log filter on a reload.
    pub log_filter: Option<FilterReload>,
}

impl StartOptions {
    /// Ticking every `tick`, nothing else.
    pub fn every(tick: Duration) -> Self {
        Self { tick, notices: None, wrap_sink: None, config_path: None, log_filter: None }
    }
}

/// Starts the daemon described by `config`: store, adapters, engine, admin API (and UI).
/// `tick` is the engine's pace (1 s in production; shorter in the demo and tests).
pub async fn start(
    config: &Config,
    tick: Duration,
    notices: Option<tokio::sync::mpsc::UnboundedSender<Notice>>,
) -> Result<Running> {
    start_with(config, StartOptions { notices, ..StartOptions::every(tick) }).await
}

/// [`start`] with every option.
pub async fn start_with(config: &Config, options: StartOptions) -> Result<Running> {
    let StartOptions { tick, notices, wrap_sink, config_path, log_filter } = options;
    // Refused before anything starts: plain HTTP off loopback (issue 28).
    if let Some(why) = crate::listener::plain_refusal(&config.admin) {
        anyhow::bail!(why);
    }
    let (store, book) = open_store(config)?;
    let (shared, writers) = Shared::new(store, book);
    let wired = wiring::wire(config)?;
    writers.presentation.publish(crate::reload::presentation(&wired, config));
    let sink = match wrap_sink {
        Some(wrap) => wrap(wired.sink.clone()),
        None => wired.sink.clone(),
    };
    let mut engine = Engine::new(
        shared.clone(),
        writers.engine,
        sink,
        wired.events.clone(),
        wired.statuses.clone(),
        config.mapping.clone(),
        config.polling.clone(),
    )?
    .with_psa_timeout(psa_timeout(&wired))
    .with_ha(&config.ha);
    if let Some(probe) = wired.budget_probe() {
        engine = engine.with_budget_probe(probe);
    }
    let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
    engine = engine.with_reloads(reload_rx);
    if let Some(tx) = notices {
        engine = engine.with_notices(tx);
    }
    let recovering = engine.ledger().recovery().len();
    if recovering > 0 {
        info!(entries = recovering, "resuming PSA work left in the outbox (planned creates are looked up first)");
    }
    let (stop, rx) = watch::channel(false);
    let reloader = Arc::new(Reloader {
        path: config_path.unwrap_or_default(),
        current: tokio::sync::Mutex::new(config.clone()),
        fixed: config.fixed(),
        engine: reload_tx,
        log_filter,
        adapters: tokio::sync::Mutex::new(Some(wired)),
        shared: shared.clone(),
        presentation: writers.presentation,
    });
    let reloads = (!reloader.path.as_os_str().is_empty()).then(|| reloader.clone());
    let token = match &config.admin.token {
        Some(token) => Some(token.resolve().map_err(anyhow::Error::msg).context("admin.token")?),
        None => None,
    };
    // The listener starts with a configured token, or once the store has users (issue 28).
    let has_users = shared.store.access().is_some_and(|a| a.users().is_ok_and(|u| !u.is_empty()));
    let (admin_addr, admin, tls) = if token.is_some() || has_users {
        let state = AdminState {
            shared: shared.clone(),
            token: token.unwrap_or_else(|| ticketing_core::secret::Secret::new("")),
            reloader: reloads.clone(),
            access: crate::access::AccessSettings::from_config(&config.admin),
        };
        let app = admin::router(state.clone()).merge(crate::ui::router(state));
        let listening = crate::listener::serve(&config.admin, app, stopped(rx.clone())).await?;
        (Some(listening.addr), Some(listening.task), listening.tls)
    } else {
        info!("no admin.token configured and no users in the store: the admin API is off");
        (None, None, None)
    };
    let engine_shutdown = stopped(rx);
    let engine = tokio::spawn(run_engine(engine, reloader.clone(), tick, engine_shutdown));
    Ok(Running { shared, reloader: reloads, admin_addr, tls, stop, engine, admin })
}

async fn run_engine(
    engine: Engine,
    adapters: Arc<Reloader>,
    tick: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let r = engine.run(tick, shutdown).await;
    adapters.shutdown().await;
    r.map_err(Into::into)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// `msp-ticketd run`: runs until SIGINT/SIGTERM, then stops cleanly; `SIGHUP` re-reads the
/// configuration file (see [`Reloader`]).
pub async fn run(path: PathBuf, config: Config, log_filter: FilterReload) -> Result<()> {
    let options = StartOptions {
        config_path: Some(path),
        log_filter: Some(log_filter),
        ..StartOptions::every(Duration::from_secs(1))
    };
    let running = start_with(&config, options).await?;
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        #[cfg(unix)]
        let hangup = hup.recv();
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        tokio::select! {
            () = shutdown_signal() => {
                info!("signal received; stopping");
                break;
            }
            () = wait_finished(&running) => {
                warn!("engine stopped by itself");
                break;
            }
            _ = hangup => {
                info!("SIGHUP: re-reading the configuration and the admin TLS certificate");
                running.hangup().await;
            }
        }
    }
    running.stop().await
}

async fn wait_finished(running: &Running) {
    while !running.is_finished() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
