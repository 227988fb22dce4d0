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

#[test]
fn core_sources_do_no_io_and_read_no_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for needle in FORBIDDEN_SOURCE {
            assert!(!text.contains(needle), "{} uses {needle}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 9, "expected the core's modules, found {checked}");
}
