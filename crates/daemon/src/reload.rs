//! Reloading the configuration while the daemon runs ([`Reloader`]): `SIGHUP` and
//! `POST /api/reload` re-read the file, refuse what needs a restart and hand the engine its new
//! adapters and settings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::{Config, FixedConfig};
use crate::engine::{Presentation, Publisher, Reload, Shared};
use crate::logging::FilterReload;
use crate::wiring::{self, Wired};

/// Re-reads the configuration file and hands the running engine its new adapters and settings:
/// mapping, sources, polling intervals, PSA settings, logging filter. The new file is checked
/// completely first; with any problem nothing changes and every problem is reported. What
/// cannot change while running ([`FixedConfig`]: the store, the admin listener and token, the
/// log format, the whole `[ha]` section) is compared as a whole and refused naming each key.
///
/// The reloader holds the shared state, never the other way round (the admin API and the
/// service loop hold the reloader), so a stopped daemon frees both; it keeps only the adapters
/// in use, ending the previous generation's sessions once the engine has the new one.
pub struct Reloader {
    pub(crate) path: PathBuf,
    pub(crate) current: tokio::sync::Mutex<Config>,
    /// The fixed part of the running configuration (its secrets as digests).
    pub(crate) fixed: FixedConfig,
    pub(crate) engine: tokio::sync::mpsc::UnboundedSender<Reload>,
    pub(crate) log_filter: Option<FilterReload>,
    /// The adapters in use (their Security Center sessions are ended when replaced or at stop).
    pub(crate) adapters: tokio::sync::Mutex<Option<Wired>>,
    pub(crate) shared: Arc<Shared>,
    /// The one writer of the PSA's names and the `/metrics` guard others read in `shared`.
    pub(crate) presentation: Publisher<Presentation>,
}

/// What a configuration and its adapters say about the PSA's names and the `/metrics` guard.
pub(crate) fn presentation(wired: &Wired, config: &Config) -> Presentation {
    Presentation { labels: wired.psa.labels, psa_name: wired.psa.name(), metrics_auth: config.admin.metrics_auth }
}

impl Reloader {
    /// Reloads; on refusal, every problem (the daemon keeps running on the old configuration).
    pub async fn reload(&self) -> Result<(), Vec<String>> {
        let result = self.try_reload().await;
        match &result {
            Ok(()) => {
                self.shared.metrics.config_reload("ok");
                info!(file = %self.path.display(), "configuration reloaded");
            }
            Err(problems) => {
                self.shared.metrics.config_reload("error");
                for p in problems {
                    warn!(file = %self.path.display(), problem = %p, "reload refused");
                }
                warn!(file = %self.path.display(), problems = problems.len(), "configuration not reloaded: still running on the previous one");
            }
        }
        result
    }

    async fn try_reload(&self) -> Result<(), Vec<String>> {
        let new = Config::load(&self.path).map_err(|e| e.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let mut current = self.current.lock().await;
        let mut problems: Vec<String> = self
            .fixed
            .changed_keys(&new.fixed())
            .into_iter()
            .map(|key| format!("{key} cannot change while the daemon runs: restart to change it"))
            .collect();
        if let Err(e) = crate::logging::parse_filter(&new.logging.filter) {
            problems.push(e);
        }
        let wired = match wiring::wire(&new) {
            Ok(w) => Some(w),
            Err(e) => {
                problems.push(format!("{e:#}"));
                None
            }
        };
        let Some(wired) = wired.filter(|_| problems.is_empty()) else { return Err(problems) };
        let reload = Reload {
            sink: wired.sink.clone(),
            event_sources: wired.events.clone(),
            status_sources: wired.statuses.clone(),
            mapping: new.mapping.clone(),
            polling: new.polling.clone(),
            psa_timeout: psa_timeout(&wired),
            budget: wired.budget_probe(),
        };
        self.engine.send(reload).map_err(|_| vec!["the engine is not running".to_owned()])?;
        if let Some(set) = &self.log_filter {
            if let Err(e) = set(&new.logging.filter) {
                warn!(error = %e, "cannot change the log filter");
            }
        }
        self.presentation.publish(presentation(&wired, &new));
        // The engine drops results of reads through the old adapters (their generation is
        // gone), so their sessions can end now.
        let previous = self.adapters.lock().await.replace(wired);
        if let Some(old) = previous {
            old.shutdown().await;
        }
        *current = new;
        Ok(())
    }

    /// Ends the sessions of the adapters in use.
    pub(crate) async fn shutdown(&self) {
        if let Some(w) = self.adapters.lock().await.take() {
            w.shutdown().await;
        }
    }
}

/// A create may take a lookup and a create, each bounded by the client's own timeout.
pub(crate) fn psa_timeout(wired: &Wired) -> Duration {
    wired.psa.timeout.saturating_mul(3)
}
