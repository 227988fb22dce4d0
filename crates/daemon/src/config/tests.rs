use std::collections::BTreeSet;

use ticketing_core::rules::{RowId, RuleSet};

use super::*;

const MINIMAL: &str = r#"
[autotask]
username = "api@sim.local"
secret = { value = "s3cret-value" }
integration_code = { value = "CODE" }
"#;

#[test]
fn minimal_file_takes_defaults() {
    let c = Config::parse(MINIMAL, "t.toml").unwrap();
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:8787");
    assert_eq!(c.polling.events_secs, 60);
    assert_eq!(c.rules.to_rule_set(), RuleSet::default());
    assert!(!format!("{c:?}").contains("s3cret-value"), "secrets never print");
}

fn keys_and_lines(text: &str) -> Vec<(String, usize)> {
    let err = Config::parse(text, "t.toml").unwrap_err();
    err.0.iter().map(|p| (p.key.clone(), p.line.unwrap())).collect()
}

#[test]
fn unknown_keys_are_errors_at_their_own_line_with_a_suggestion() {
    let text = format!("{MINIMAL}\n[polling]\nevents_secs = 5\nevents_sec = 5\n");
    let err = Config::parse(&text, "t.toml").unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(err.0[0].key, "polling.events_sec");
    assert_eq!((err.0[0].line, err.0[0].col), (Some(9), Some(1)));
    assert_eq!(err.0[0].reason, "unknown key (did you mean `events_secs`?)");
    let text = format!("{MINIMAL}\n[rules.rows.\"security_center/event/critical\"]\nenabled = true\nqueu = \"x\"\n");
    let err = Config::parse(&text, "t.toml").unwrap_err();
    assert_eq!(err.0[0].key, "rules.rows.\"security_center/event/critical\".queu", "{err}");
    assert_eq!(err.0[0].line, Some(9));
    let text = format!("{MINIMAL}\n[rules.rows.\"security_center/event/nope\"]\nenabled = true\n");
    let err = Config::parse(&text, "t.toml").unwrap_err();
    assert!(err.0[0].reason.contains("unknown rule row"), "{:?}", err.0[0]);
    assert_eq!(err.0[0].line, Some(7));
}

#[test]
fn every_type_error_at_once_not_only_the_first() {
    let text = r#"
[polling]
events_secs = "often"
batch_size = -1
deliver_concurrency = 2.5
[autotask]
username = 7
secret = "inline-secret-value"
integration_code = { value = "CODE", vaule = "x" }
"#;
    let err = Config::parse(text, "t.toml").unwrap_err();
    let got: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "t.toml:3:15: polling.events_secs: is a string (expected a non-negative integer)",
            "t.toml:4:14: polling.batch_size: is a negative integer (expected a non-negative integer)",
            "t.toml:5:23: polling.deliver_concurrency: is a float (expected a non-negative integer)",
            "t.toml:7:12: autotask.username: is an integer (expected a string)",
            "t.toml:8:10: autotask.secret: is a string (expected a table)",
            "t.toml:9:38: autotask.integration_code.vaule: unknown key (did you mean `value`?)",
        ]
    );
    assert!(!err.to_string().contains("inline-secret-value"));
}

#[test]
fn missing_keys_are_reported_at_their_table_and_the_rest_is_still_checked() {
    let text = "[autotask]\nsecret = { value = \"s\" }\n\n[polling]\nbatch_size = 0\n";
    assert_eq!(
        keys_and_lines(text),
        [
            ("autotask.integration_code".to_owned(), 1),
            ("autotask.username".to_owned(), 1),
            ("polling.batch_size".to_owned(), 5)
        ]
    );
    assert_eq!(
        keys_and_lines("[polling]\nbatch_size = 0\n"),
        [("autotask".to_owned(), 1), ("polling.batch_size".to_owned(), 2)]
    );
}

#[test]
fn syntax_errors_do_not_hide_the_rest() {
    let text = format!("{MINIMAL}\n[polling]\nevents_secs = = 5\nbatch_size = 0\n[admin\nlisten = 5\n");
    let err = Config::parse(&text, "t.toml").unwrap_err();
    let got: Vec<(String, usize)> = err.0.iter().map(|p| (p.key.clone(), p.line.unwrap())).collect();
    assert_eq!(
        got,
        [
            ("polling.events_secs".to_owned(), 8),
            ("polling.batch_size".to_owned(), 9),
            ("(table header)".to_owned(), 10)
        ],
        "{err}"
    );
    assert!(err.0[0].reason.starts_with("syntax error"), "{err}");
}

#[test]
fn a_line_blanked_after_a_syntax_error_is_not_also_missing() {
    let text = "[autotask]\nusername = \"u\"\nsecret = { value = \"s3cret }\nintegration_code = { value = \"c\" }\n\n[[mapping]]\ntenant = \"kbh:c-1\"\n[[mapping]]\ntenant = = \"kbh:c-2\"\naccount_id = 2\n";
    let err = Config::parse(text, "t.toml").unwrap_err();
    let got: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "t.toml:3:29: autotask.secret: syntax error: invalid basic string",
            "t.toml:6:1: mapping[0]: gives neither account_id nor account_name (expected exactly one)",
            "t.toml:7:10: mapping[0].tenant: names a Business Hub company, but there is no [business_hub] (expected one)",
            "t.toml:9:10: mapping[1].tenant: syntax error: invalid string (expected `\"`, `'`)",
        ]
    );
    assert!(!err.to_string().contains("s3cret"));
    // An unclosed multi-line string runs to the end of the file: its own line is blanked.
    let text = format!("{MINIMAL}\n[polling]\nbatch_size = 0\nfoo = \"\"\"never closed\n\n");
    let keys: Vec<String> = Config::parse(&text, "t.toml").unwrap_err().0.into_iter().map(|p| p.key).collect();
    assert_eq!(keys, ["polling.batch_size", "polling"]);
}

#[test]
fn listen_ports_over_65535_are_named() {
    let text = format!("{MINIMAL}\n[admin]\nlisten = \"127.0.0.1:70000\"\n");
    let err = Config::parse(&text, "t.toml").unwrap_err();
    assert_eq!(
        err.0[0].to_string(),
        "t.toml:8:10: admin.listen: has a port over 65535 (expected a port from 0 to 65535)"
    );
}

#[test]
fn did_you_mean_needs_one_close_key() {
    assert_eq!(walk::did_you_mean("secrte", &["secret", "username"]), Some("secret"));
    assert_eq!(walk::did_you_mean("zzz", &["secret", "username"]), None);
    assert_eq!(walk::did_you_mean("ab", &["ac", "ad"]), None);
}

#[test]
fn paths_round_trip() {
    for p in ["security_center[0].url", "rules.rows.\"security_center/event/critical\".enabled", "autotask"] {
        assert_eq!(walk::display_path(&walk::parse_path(p)), p);
    }
}

#[test]
fn every_semantic_problem_at_once() {
    let text = r#"
[autotask]
username = ""
secret = { env = "MSP_TICKETD_TEST_UNSET_VARIABLE" }
integration_code = { value = "C", env = "X" }
[[mapping]]
tenant = "ksc:main/vs:1"
[[mapping]]
tenant = "kbh:c-1"
account_id = 1
[[mapping]]
tenant = "kbh:c-1"
account_name = "x"
"#;
    assert!(std::env::var_os("MSP_TICKETD_TEST_UNSET_VARIABLE").is_none());
    let err = Config::parse(text, "t.toml").unwrap_err();
    let got: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "t.toml:3:12: autotask.username: is empty (expected the API user's name)",
            "t.toml:4:18: autotask.secret.env: environment variable MSP_TICKETD_TEST_UNSET_VARIABLE is not set",
            "t.toml:5:20: autotask.integration_code: gives env and value (expected exactly one of env, file or value)",
            "t.toml:6:1: mapping[0]: gives neither account_id nor account_name (expected exactly one)",
            "t.toml:7:10: mapping[0].tenant: names Security Center \"main\", which no [[security_center]] has (expected a [[security_center]] of that name; none is configured)",
            "t.toml:9:10: mapping[1].tenant: names a Business Hub company, but there is no [business_hub] (expected one)",
            "t.toml:12:10: mapping[2].tenant: names a Business Hub company, but there is no [business_hub] (expected one)",
        ]
    );
}

#[test]
fn rules_section_patches_the_defaults() {
    let text = format!(
        "{MINIMAL}\n[rules.general]\nticket_source = \"Monitoring Alert\"\n[rules.rows.\"endpoint_cloud/status/warning/databases_out_of_date\"]\nenabled = true\ndue_hours = 8\n"
    );
    let c = Config::parse(&text, "t.toml").unwrap();
    let rules = c.rules.to_rule_set();
    assert_eq!(rules.general.ticket_source.as_deref(), Some("Monitoring Alert"));
    let row: RowId = "endpoint_cloud/status/warning/databases_out_of_date".parse().unwrap();
    let r = rules.rule(&row).unwrap();
    assert!(r.enabled);
    assert_eq!(r.due_hours, 8);
    assert_eq!(r.priority.as_deref(), Some("Medium"));
}

// ---- the fixed part (`Config::fixed`, `FixedConfig::changed_keys`) ----

/// [`MINIMAL`] with an admin token: the running configuration of the tests below.
fn running() -> Config {
    let text = format!("{MINIMAL}\n[admin]\ntoken = {{ value = \"tok-s3cret-value\" }}\n");
    Config::parse(&text, "t.toml").unwrap()
}

/// The keys a `Deserialize` struct has: the field list its derive hands the deserializer (what
/// `walk` checks unknown keys against).
fn section_keys<T: serde::de::DeserializeOwned>() -> BTreeSet<&'static str> {
    use serde::de::{Error as _, Visitor};
    struct Lister<'a>(&'a mut Vec<&'static str>);
    impl<'de> serde::Deserializer<'de> for Lister<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _v: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.extend_from_slice(fields);
            Err(Self::Error::custom("listed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Vec::new();
    assert!(T::deserialize(Lister(&mut fields)).is_err());
    assert!(!fields.is_empty(), "{} is not a struct with fields", std::any::type_name::<T>());
    fields.into_iter().collect()
}

/// The keys `FixedConfig` serialises for one section.
fn fixed_keys(fixed: &FixedConfig, section: &str) -> BTreeSet<String> {
    let v = serde_json::to_value(fixed).unwrap();
    v[section].as_object().unwrap_or_else(|| panic!("no section {section}")).keys().cloned().collect()
}

/// The keys of the partly fixed sections that a reload applies (`Reloader::try_reload`).
const RELOADABLE_KEYS: [&str; 2] = ["admin.metrics_auth", "logging.filter"];
/// The sections a reload applies as a whole (or, `rules`, that only seed an empty store).
const RELOADABLE_SECTIONS: [&str; 9] =
    ["polling", "psa", "autotask", "connectwise", "halopsa", "security_center", "business_hub", "mapping", "rules"];

#[test]
fn every_key_of_the_file_is_either_fixed_or_reloadable() {
    let fixed = running().fixed();
    let fixed_sections: BTreeSet<String> =
        serde_json::to_value(&fixed).unwrap().as_object().unwrap().keys().cloned().collect();
    for section in section_keys::<Config>() {
        assert!(
            fixed_sections.contains(section) != RELOADABLE_SECTIONS.contains(&section),
            "section [{section}] must be either in FixedConfig or in RELOADABLE_SECTIONS, not both or neither"
        );
    }
    let sections = [
        ("store", section_keys::<StoreConfig>()),
        ("admin", section_keys::<AdminConfig>()),
        ("logging", section_keys::<LoggingConfig>()),
        ("ha", section_keys::<HaConfig>()),
    ];
    assert_eq!(sections.iter().map(|(s, _)| (*s).to_owned()).collect::<BTreeSet<_>>(), fixed_sections);
    for (section, keys) in sections {
        let fixed = fixed_keys(&fixed, section);
        for key in &keys {
            let dotted = format!("{section}.{key}");
            assert!(
                fixed.contains(*key) != RELOADABLE_KEYS.contains(&dotted.as_str()),
                "{dotted} must be either in FixedConfig or in RELOADABLE_KEYS, not both or neither"
            );
        }
        for key in &fixed {
            assert!(keys.contains(key.as_str()), "FixedConfig has {section}.{key}, which the file does not");
        }
    }
}

#[test]
fn every_field_of_ha_is_fixed_without_further_code() {
    // Fails when a field of [ha] is not in FixedConfig's serialised form (skipped, say).
    let ha_keys = section_keys::<HaConfig>();
    let base = running();
    let serialised = fixed_keys(&base.fixed(), "ha");
    assert_eq!(serialised.iter().map(String::as_str).collect::<BTreeSet<_>>(), ha_keys);
    // And each of them, changed alone, is named alone.
    let ha = serde_json::to_value(&base.ha).unwrap();
    for key in ha_keys {
        let mut changed = ha.clone();
        changed[key] = match &ha[key] {
            serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => serde_json::json!(u + 1),
                (None, Some(i)) => serde_json::json!(i + 1),
                _ => serde_json::json!(n.as_f64().unwrap_or_default() + 1.0),
            },
            serde_json::Value::Bool(b) => serde_json::json!(!b),
            serde_json::Value::String(s) => serde_json::json!(format!("{s}-changed")),
            _ => serde_json::json!("changed"),
        };
        let mut new = base.clone();
        new.ha = serde_json::from_value(changed).unwrap();
        assert_eq!(base.fixed().changed_keys(&new.fixed()), [format!("ha.{key}")]);
    }
}

#[test]
fn changing_each_fixed_key_is_named() {
    let base = running();
    type Change = fn(&mut Config);
    let changes: [(&str, Change); 10] = [
        ("store.path", |c| c.store.path = "elsewhere.sqlite".into()),
        ("store.url", |c| c.store.url = Some("postgres://ticketd@localhost/ticketd".to_owned())),
        ("store.password", |c| c.store.password = Some(SecretRef::inline("pw-s3cret-value"))),
        ("admin.listen", |c| c.admin.listen.set_port(8788)),
        ("admin.token", |c| c.admin.token = Some(SecretRef::inline("another-token"))),
        ("logging.format", |c| c.logging.format = "json".to_owned()),
        ("ha.instance", |c| c.ha.instance = Some("b".to_owned())),
        ("ha.lease_secs", |c| c.ha.lease_secs = 20),
        ("ha.renew_secs", |c| c.ha.renew_secs = 5),
        ("ha.takeover_secs", |c| c.ha.takeover_secs = 1),
    ];
    let mut all = base.clone();
    for (key, change) in changes {
        let mut new = base.clone();
        change(&mut new);
        assert_eq!(base.fixed().changed_keys(&new.fixed()), [key]);
        assert_ne!(base.fixed(), new.fixed());
        change(&mut all);
    }
    let mut expected: Vec<&str> = changes.iter().map(|(k, _)| *k).collect();
    expected.sort_unstable();
    assert_eq!(base.fixed().changed_keys(&all.fixed()), expected);
    assert_eq!(all.fixed().changed_keys(&base.fixed()), expected, "symmetric");
    // A token removed is a change too.
    let mut new = base.clone();
    new.admin.token = None;
    assert_eq!(base.fixed().changed_keys(&new.fixed()), ["admin.token"]);
}

#[test]
fn a_reload_file_that_changes_ha_is_named() {
    let base = running();
    let text = format!("{MINIMAL}\n[admin]\ntoken = {{ value = \"tok-s3cret-value\" }}\n[ha]\nlease_secs = 30\n");
    let new = Config::parse(&text, "t.toml").unwrap();
    assert_eq!(base.fixed().changed_keys(&new.fixed()), ["ha.lease_secs"]);
}

#[test]
fn changing_reloadable_keys_changes_nothing_fixed() {
    let base = running();
    let text = r#"
[autotask]
username = "other@sim.local"
secret = { value = "another-secret" }
integration_code = { value = "CODE2" }
hourly_budget = 5000
[psa]
kind = "autotask"
[admin]
token = { value = "tok-s3cret-value" }
metrics_auth = false
[logging]
filter = "debug"
[polling]
events_secs = 5
statuses_secs = 7
deliver_concurrency = 4
[[security_center]]
name = "main"
url = "https://ksc.example:13299"
user = "u"
password = { value = "p" }
[business_hub]
url = "https://kbh.example"
token = { value = "t" }
[[mapping]]
tenant = "ksc:main/vs:1"
account_id = 7
[rules.general]
ticket_source = "Monitoring Alert"
"#;
    let new = Config::parse(text, "t.toml").unwrap();
    assert_eq!(base.fixed().changed_keys(&new.fixed()), Vec::<String>::new());
    assert_eq!(base.fixed(), new.fixed());
}

#[test]
fn a_token_is_compared_by_its_value_not_its_reference() {
    let base = running();
    let path = std::env::temp_dir().join(format!("msp-ticketd-fixed-token-{}", std::process::id()));
    std::fs::write(&path, "tok-s3cret-value\n").unwrap();
    let mut from_file = base.clone();
    from_file.admin.token = Some(SecretRef { file: Some(path.clone()), ..SecretRef::default() });
    let same = base.fixed().changed_keys(&from_file.fixed());
    std::fs::write(&path, "a-new-token\n").unwrap();
    let rotated = base.fixed().changed_keys(&from_file.fixed());
    std::fs::remove_file(&path).unwrap();
    assert_eq!(same, Vec::<String>::new(), "the same token from a file");
    assert_eq!(rotated, ["admin.token"], "the file now holds another token");
    // One that cannot be read is known by its reference.
    let mut unreadable = base.clone();
    unreadable.admin.token = Some(SecretRef { file: Some(path.clone()), ..SecretRef::default() });
    assert_eq!(base.fixed().changed_keys(&unreadable.fixed()), ["admin.token"]);
    assert_eq!(unreadable.fixed(), unreadable.fixed());
    assert!(format!("{:?}", unreadable.fixed()).contains(&format!("file {}", path.display())));
}

#[test]
fn the_fixed_part_never_shows_a_secret() {
    let mut base = running();
    base.store.url = Some("postgres://ticketd@localhost/ticketd".to_owned());
    base.store.password = Some(SecretRef::inline("pw-s3cret-value"));
    let mut new = base.clone();
    new.admin.token = Some(SecretRef::inline("another-s3cret-token"));
    new.store.password = Some(SecretRef::inline("another-s3cret-password"));
    let shown = [
        format!("{:?}", base.fixed()),
        format!("{:?}", new.fixed()),
        format!("{:?}", base.admin.token),
        format!("{:?}", base.store.password),
        serde_json::to_string(&base.fixed()).unwrap(),
        serde_json::to_string(&new.fixed()).unwrap(),
        base.fixed().changed_keys(&new.fixed()).join(" "),
    ];
    for text in &shown {
        assert!(!text.contains("s3cret"), "a secret shows in {text}");
    }
    assert_eq!(base.fixed().changed_keys(&new.fixed()), ["admin.token", "store.password"]);
    assert!(format!("{:?}", base.fixed()).contains("SecretDigest(***)"));
}
