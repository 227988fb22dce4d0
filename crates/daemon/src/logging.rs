//! Logging: tracing to stderr, human or JSON, with a filter that a configuration reload can
//! change while the daemon runs.

use std::sync::Arc;

use tracing_subscriber::EnvFilter;

/// Changes the running filter (`logging.filter`); the error says why a filter was refused.
pub type FilterReload = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Checks a filter the way [`init`] and a reload parse it.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(filter).map_err(|e| format!("invalid logging.filter {filter:?}: {e}"))
}

/// Installs the process's subscriber (`format` `human` or `json`; `RUST_LOG` overrides
/// `filter` at start) and returns the handle that changes the filter later.
pub fn init(format: &str, filter: &str) -> FilterReload {
    let initial =
        EnvFilter::try_from_default_env().or_else(|_| parse_filter(filter)).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_ansi(ansi).with_writer(std::io::stderr);
    if format == "json" {
        let builder = builder.json().with_env_filter(initial).with_filter_reloading();
        let handle = builder.reload_handle();
        let _ = builder.try_init();
        Arc::new(move |f: &str| handle.reload(parse_filter(f)?).map_err(|e| e.to_string()))
    } else {
        let builder = builder.with_env_filter(initial).with_filter_reloading();
        let handle = builder.reload_handle();
        let _ = builder.try_init();
        Arc::new(move |f: &str| handle.reload(parse_filter(f)?).map_err(|e| e.to_string()))
    }
}
