//! `msp-ticketd check` as an operator runs it: the real binary on real files.
//!
//! `tests/golden/check_many_mistakes.txt` is the exact output of `check --offline` for
//! `tests/golden/check_many_mistakes.toml`. After an intended change of wording, rewrite it with
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test -p msp-ticketd --test check_cli
//! ```
//!
//! and review the diff before committing it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Variables the fixtures name and that must stay unset for the output to be the same
/// everywhere.
const UNSET: &[&str] = &["RUST_LOG", "MSP_TICKETD_GOLDEN_UNSET_TOKEN", "MSP_TICKETD_GOLDEN_UNSET_PASSWORD"];

/// Inline secrets of the fixtures: never in any output.
const SECRETS: &[&str] =
    &["hunter2-inline-secret", "inline-admin-secret", "branch-inline-secret", "json-inline-secret"];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Runs `msp-ticketd check ARGS` in `dir` with `envs` set.
fn check(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_msp-ticketd"));
    cmd.current_dir(dir).arg("check").args(args);
    for var in UNSET {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("the msp-ticketd binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn assert_no_secrets(out: &Output) {
    let all = format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr));
    for s in SECRETS {
        assert!(!all.contains(s), "secret {s:?} echoed:\n{all}");
    }
}

/// A fresh directory of this test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("msp-ticketd-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file with no problems offline, its store in `dir`.
fn valid_config(dir: &Path, extra_admin: &str) -> String {
    format!(
        r#"
[store]
path = "{store}"

[admin]
{extra_admin}

[autotask]
username = "api@sim.local"
base_url = "http://127.0.0.1:9/atservicesrest"
secret = {{ value = "s" }}
integration_code = {{ value = "c" }}

[[security_center]]
name = "main"
url = "https://127.0.0.1:9"
user = "u"
password = {{ value = "p" }}
timeout_secs = 2

[[mapping]]
tenant = "ksc:main/vs:1"
account_id = 1
"#,
        store = dir.join("state.sqlite").display()
    )
}

#[test]
fn many_mistakes_are_reported_in_one_run_as_the_golden_file_says() {
    let out = check(&golden_dir(), &["--offline", "--config", "check_many_mistakes.toml"], &[]);
    assert_eq!(out.status.code(), Some(1), "errors exit 1");
    let got = stdout(&out);
    let golden = golden_dir().join("check_many_mistakes.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(got, want, "output differs from {} (UPDATE_GOLDEN=1 rewrites it)", golden.display());

    // At least 15 different mistakes, each with its line and key path.
    let problems: Vec<&str> = got.lines().filter(|l| l.starts_with("check_many_mistakes.toml:")).collect();
    let keys: BTreeSet<&str> = problems
        .iter()
        .map(|l| {
            let mut parts = l.splitn(4, ':');
            let (_, line, col, rest) = (parts.next(), parts.next(), parts.next(), parts.next().unwrap());
            assert!(line.unwrap().parse::<usize>().is_ok() && col.unwrap().parse::<usize>().is_ok(), "{l}");
            rest.trim_start().split(": ").next().unwrap()
        })
        .collect();
    assert!(keys.len() >= 15, "{keys:?}");
    for key in [
        "polling.events_sec",
        "polling.batch_size",
        "security_center[0].url",
        "autotask.base_url",
        "mapping[0].tenant",
        "logging.filter",
        "store.path",
        "admin.listen",
    ] {
        assert!(keys.contains(key), "{key} missing from {keys:?}");
    }
    assert_no_secrets(&out);
}

#[test]
fn json_format_gives_one_object_per_problem() {
    let dir = temp_dir("json");
    let text = format!(
        "{}\n[logging]\nformat = \"json\"\n\n[polling]\nbatch_sise = 5\n",
        valid_config(&dir, "token = { value = \"json-inline-secret\", env = \"X\" }")
    );
    std::fs::write(dir.join("c.toml"), text).unwrap();
    let out = check(&dir, &["--offline", "--config", "c.toml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"file": "c.toml", "line": 6, "col": 9, "key": "admin.token", "severity": "error",
                "message": "gives env and value (expected exactly one of env, file or value)"}),
            serde_json::json!({"file": "c.toml", "line": 29, "col": 1, "key": "polling.batch_sise", "severity": "error",
                "message": "unknown key (did you mean `batch_size`?)"}),
        ]
    );
    assert_no_secrets(&out);
}

#[test]
fn offline_checks_the_file_alone_without_the_network() {
    // Every service of the file is a closed local port: only a live probe could fail.
    let dir = temp_dir("offline");
    std::fs::write(dir.join("c.toml"), valid_config(&dir, "")).unwrap();
    let started = Instant::now();
    let out = check(&dir, &["--offline", "--config", "c.toml"], &[]);
    assert_eq!(stdout(&out), "c.toml: ok\n");
    assert_eq!(out.status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(5), "offline is fast");
    assert!(!dir.join("state.sqlite").exists(), "check creates no store");
}

#[test]
fn live_probes_report_unreachable_services_under_their_keys() {
    let dir = temp_dir("live");
    std::fs::write(dir.join("c.toml"), valid_config(&dir, "")).unwrap();
    let started = Instant::now();
    let out = check(&dir, &["--config", "c.toml"], &[]);
    let got = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{got}");
    assert!(got.lines().any(|l| l.contains(": autotask: cannot read the ticket catalog")), "{got}");
    assert!(got.lines().any(|l| l.contains(": security_center[0]: cannot reach the source")), "{got}");
    // In parallel, each bounded: about one probe timeout in all, not one per probe.
    assert!(started.elapsed() < Duration::from_secs(25), "took {:?}", started.elapsed());
}

#[test]
fn warnings_alone_exit_0() {
    let dir = temp_dir("warning");
    std::fs::write(
        dir.join("c.toml"),
        valid_config(&dir, "listen = \"0.0.0.0:8787\"\ntoken = { value = \"t\" }\nallow_plain_http = true"),
    )
    .unwrap();
    let out = check(&dir, &["--offline", "--config", "c.toml"], &[]);
    let got = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{got}");
    assert!(got.starts_with("c.toml:6:10: warning: admin.listen: is not a loopback address"), "{got}");
    assert!(got.ends_with("0 error(s), 1 warning(s)\n"), "{got}");
}

#[test]
fn the_example_configuration_has_no_problems_offline() {
    // The example names system paths (/etc/msp-ticketd, /var/lib/msp-ticketd) and secrets in
    // the environment; give it both, here, and nothing else may be wrong with it.
    let dir = temp_dir("example");
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/msp-ticketd.toml")).unwrap();
    for sub in ["etc", "var"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let text = example
        .replace("/etc/msp-ticketd/", &format!("{}/", dir.join("etc").display()))
        .replace("/var/lib/msp-ticketd/", &format!("{}/", dir.join("var").display()));
    assert_ne!(text, example, "the example's paths moved: update this test");
    for file in ["autotask-integration-code", "klserver.cer"] {
        std::fs::write(dir.join("etc").join(file), "x\n").unwrap();
    }
    std::fs::write(dir.join("msp-ticketd.toml"), text).unwrap();
    let envs = [("AUTOTASK_SECRET", "s"), ("KSC_PASSWORD", "p"), ("KBH_TOKEN", "t"), ("MSP_TICKETD_ADMIN_TOKEN", "a")];
    let out = check(&dir, &["--offline", "--config", "msp-ticketd.toml"], &envs);
    // The example asks for JSON logs, so a problem would be a JSON line; none is the answer.
    assert_eq!(stdout(&out), "", "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
}
