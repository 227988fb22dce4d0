//! The commented example configuration in `examples/msp-ticketd.toml` stays valid: every key
//! parses, and the only problems are the secrets it (rightly) leaves to the environment.

use daemon::config::Config;

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
        assert!(secret_missing || ca_missing, "unexpected problem: {p}");
    }
    // With the environment's secrets absent, exactly these are reported, all at once.
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for (key, var) in [
        ("autotask.secret", "AUTOTASK_SECRET"),
        ("security_center[0].password", "KSC_PASSWORD"),
        ("business_hub.token", "KBH_TOKEN"),
        ("admin.token", "MSP_TICKETD_ADMIN_TOKEN"),
    ] {
        if std::env::var_os(var).is_none() {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
    }
    // The integration code is read from a file that does not exist here.
    assert!(keys.contains(&"autotask.integration_code"), "{keys:?}");
}
