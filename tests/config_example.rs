//! The commented example configuration in `examples/msp-ticketd.toml` stays valid: every key
//! parses, and the only problems are the secrets it (rightly) leaves to the environment and the
//! system paths (`/etc/msp-ticketd`, `/var/lib/msp-ticketd`) of a real installation.
//! (`crates/daemon/tests/check_cli.rs` gives it both and expects no problem at all.)

use msp_ticketd::config::Config;

#[test]
fn the_example_configuration_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/msp-ticketd.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let problems = match Config::parse(&text, "msp-ticketd.toml") {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    };
    for p in &problems {
        let secret_missing = p.reason.contains("is not set") || p.reason.contains("cannot read secret file");
        let ca_missing = p.key.ends_with("ca_file");
        let store_dir_missing = p.key == "store.path" && p.reason.contains("does not exist");
        assert!(secret_missing || ca_missing || store_dir_missing, "unexpected problem: {p}");
    }
    // With the environment's secrets absent, exactly these are reported, all at once.
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for (key, var) in [
        ("autotask.secret.env", "AUTOTASK_SECRET"),
        ("security_center[0].password.env", "KSC_PASSWORD"),
        ("business_hub.token.env", "KBH_TOKEN"),
        ("admin.token.env", "MSP_TICKETD_ADMIN_TOKEN"),
    ] {
        if std::env::var_os(var).is_none() {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }
    // The integration code is read from a file that does not exist here.
    assert!(keys.contains(&"autotask.integration_code.file"), "{keys:?}");
}
