//! Architecture invariants of the daemon: its modules form layers whose imports only point down
//! (the engine crate below everything, then configuration and the backend registry, operations
//! and wiring, the HTTP surfaces, the service that composes them, the demo on top; the CLI in
//! `main.rs` above all), and no source file is over 1,000 lines. A new module must be placed in
//! [`LAYERS`] before it builds here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Layer by layer, bottom first. A module may import its own layer and the ones below.
/// `audit`, `documents`, `engine`, `health`, `metrics` and `store` are the `ticketing-engine` crate,
/// re-exported: layer 0.
const LAYERS: &[&[&str]] = &[
    &["audit", "documents", "engine", "health", "metrics", "store"],
    // The file, the log setup and the PSA backend registry (which `[psa] kind` names).
    &["config", "logging", "backends"],
    // Operations over the engine's state, config → adapters, reloading.
    &["rules_ops", "ledger_ops", "mapping_ops", "wiring", "reload", "access"],
    // What people and tools use: the admin API, the web UI, `check`; the gate before them.
    &["admin", "ui", "check", "gate", "users_api"],
    // Composition: `run`, `start`.
    &["service", "listener"],
    // The demo and the test lab over the simulators.
    &["demo"],
    // The binary's own modules (beside `main.rs`, on top of everything): CLI commands.
    &["mapping_cli", "users_cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The daemon modules a source names with `crate::NAME` (in paths and `use crate::{a, b}`).
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.insert(name);
        }
    }
    found
}

#[test]
fn daemon_imports_only_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut checked = 0;
    let mut problems = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        if first == "lib" || first == "main" {
            continue; // the crate root declares the modules; main.rs is the CLI over all of them
        }
        let Some(own) = layer_of(&first) else {
            problems.push(format!("{}: module `{first}` is in no layer of tests/layers.rs", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(path).unwrap();
        for target in imports(&text) {
            match layer_of(&target) {
                Some(l) if l > own => problems.push(format!(
                    "{}: `{first}` (layer {own}) imports `crate::{target}` (layer {l}): imports point down only",
                    rel.display()
                )),
                Some(_) => {}
                None => problems.push(format!("{}: imports `crate::{target}`, a module in no layer", rel.display())),
            }
        }
        checked += 1;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 20, "expected the daemon's modules, found {checked}");
}

#[test]
fn the_engine_crate_knows_nothing_of_the_daemon() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../ticketing-engine/Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).and_then(|d| d.split("\n[").next()).expect("[dependencies]");
    for dep in ["axum", "maud", "clap", "tower-http", "msp-ticketd", "toml", "reqwest"] {
        assert!(
            !deps
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{dep}."))
                    || l.trim_start().starts_with(&format!("{dep} "))),
            "ticketing-engine must not depend on {dep}"
        );
    }
}

/// The daemon's and the engine's sources (the core checks its own in `tests/tidy.rs`).
#[test]
fn no_source_file_is_over_1000_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for src in [root.join("src"), root.join("../ticketing-engine/src")] {
        sources(&src, &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|p| {
            let lines = std::fs::read_to_string(p).unwrap().lines().count();
            (lines > 1000).then(|| format!("{} ({lines} lines)", p.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 1,000 lines: {long:?}");
}
