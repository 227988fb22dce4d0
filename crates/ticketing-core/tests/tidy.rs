//! Architecture invariant: the core does no I/O and reads no clock. This test reads the crate's
//! own manifest and sources and fails on anything that would break that.

use std::path::Path;

const FORBIDDEN_DEPS: [&str; 9] =
    ["tokio", "reqwest", "hyper", "rusqlite", "sqlx", "axum", "async-std", "mio", "wiremock"];
const FORBIDDEN_SOURCE: [&str; 8] = [
    "std::fs",
    "std::net",
    "std::process",
    "std::thread::spawn",
    "SystemTime::now",
    "Instant::now",
    "Utc::now",
    "Local::now",
];

#[test]
fn core_has_no_io_dependencies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] table");
    for dep in FORBIDDEN_DEPS {
        assert!(!deps.lines().any(|l| l.trim_start().starts_with(dep)), "ticketing-core must not depend on {dep}");
    }
    // chrono's clock feature would make `Utc::now` available: keep it out.
    assert!(!deps.contains("clock"), "ticketing-core must not enable chrono's clock");
}

/// Every `.rs` file under `dir`, its subdirectories (`decide/`, `ledger/`) included.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn core_sources_do_no_io_and_read_no_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for needle in FORBIDDEN_SOURCE {
            assert!(!text.contains(needle), "{} uses {needle}", path.display());
        }
    }
    assert!(files.len() >= 9, "expected the core's modules, found {}", files.len());
}

/// The core's sources stay under 1,000 lines each, as the daemon's and the engine's do.
#[test]
fn no_core_source_file_is_over_1000_lines() {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|p| {
            let lines = std::fs::read_to_string(p).unwrap().lines().count();
            (lines > 1000).then(|| format!("{} ({lines} lines)", p.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 1,000 lines: {long:?}");
}
