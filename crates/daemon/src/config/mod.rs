//! The daemon's configuration: one TOML file (see `examples/msp-ticketd.toml` at the repository
//! root for a commented example).
//!
//! Unknown keys are errors that name the key's path (`autotask.secrte`). Secrets are never
//! written in the file's values that get logged: each is a [`SecretRef`] to an environment
//! variable or a file (or, for demos and tests, an inline value), read once into a
//! [`Secret`](ticketing_core::secret::Secret) that never prints.
//!
//! The module by concern: `sections` (one struct per section, with its defaults), `diagnosis`
//! (problems and what checking a file found), `parse` (syntax, with recovery, and placing key
//! paths in the text), `walk` (the collecting deserializer), `semantic` (the checks the types
//! alone do not make) and `fixed` (what a reload may not change, [`FixedConfig`]).

use std::path::Path;

use serde::Deserialize;

mod access_checks;
mod diagnosis;
mod fixed;
mod parse;
mod sections;
mod semantic;
mod walk;

#[cfg(test)]
mod tests;

pub use diagnosis::{ConfigErrors, ConfigProblem, Diagnosis, Severity};
pub use fixed::{FixedAdmin, FixedConfig, FixedLogging, FixedStore, SecretDigest};
pub use sections::{
    AdminConfig, AutotaskConfig, BusinessHubConfig, ConnectWiseConfig, HaConfig, HaloPsaConfig, HostSearchMode,
    LoggingConfig, MappingEntry, PollingConfig, PsaConfig, RulesConfig, SecretRef, SecurityCenterConfig, StoreConfig,
};

use diagnosis::Sink;
use parse::{Recovered, line_col, locate, parse_recovering, related};
use semantic::rule_row_suggestion;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[store]`
    #[serde(default)]
    pub store: StoreConfig,
    /// `[admin]`
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[logging]`
    #[serde(default)]
    pub logging: LoggingConfig,
    /// `[polling]`
    #[serde(default)]
    pub polling: PollingConfig,
    /// `[ha]`
    #[serde(default)]
    pub ha: HaConfig,
    /// `[psa]`: which PSA backend (default: the one whose section is present).
    #[serde(default)]
    pub psa: PsaConfig,
    /// `[autotask]`
    #[serde(default)]
    pub autotask: Option<AutotaskConfig>,
    /// `[connectwise]`
    #[serde(default)]
    pub connectwise: Option<ConnectWiseConfig>,
    /// `[halopsa]`
    #[serde(default)]
    pub halopsa: Option<HaloPsaConfig>,
    /// `[[security_center]]`
    #[serde(default)]
    pub security_center: Vec<SecurityCenterConfig>,
    /// `[business_hub]`
    #[serde(default)]
    pub business_hub: Option<BusinessHubConfig>,
    /// `[[mapping]]`
    #[serde(default)]
    pub mapping: Vec<MappingEntry>,
    /// `[rules]`
    #[serde(default)]
    pub rules: RulesConfig,
}

impl Config {
    /// The PSA backend this file selects: `[psa] kind`, else the one whose section is present
    /// (`autotask` when both or neither are; [`Config::problems`] reports what is missing).
    pub fn psa_kind(&self) -> &str {
        match (&self.psa.kind, &self.autotask, &self.connectwise, &self.halopsa) {
            (Some(k), _, _, _) => k.as_str(),
            (None, None, Some(_), None) => "connectwise",
            (None, None, None, Some(_)) => "halopsa",
            _ => "autotask",
        }
    }
}

impl Config {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        Self::diagnose_file(path).into_result()
    }

    /// Parses and checks TOML text; `file` names it in problems.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigErrors> {
        Self::diagnose(text, file).into_result()
    }

    /// Reads a file and finds every problem of it ([`Config::diagnose`]).
    pub fn diagnose_file(path: &Path) -> Diagnosis {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Self::diagnose(&text, &file),
            Err(e) => Diagnosis {
                config: None,
                problems: vec![ConfigProblem::unplaced(&file, "(file)", format!("cannot read it: {e}"))],
                file,
                doc: None,
            },
        }
    }

    /// Finds every problem of TOML text at once, each with its line, column and key path:
    /// syntax errors, unknown keys, wrong types, missing keys, out-of-range values, malformed
    /// URLs and tenant ids, secrets, the store's directory, the logging filter.
    ///
    /// How: the text is parsed into a [`toml_edit::ImDocument`] (which keeps every key's and
    /// value's span), re-parsed with the offending line blanked after each syntax error; then
    /// the serde `Deserialize` impls of these structs walk that document through a collecting
    /// deserializer (`walk`): unknown keys are checked against the field list serde itself
    /// hands the deserializer, and a refused value is recorded and replaced by a placeholder on
    /// the next pass, so one mistake never hides another. The typed value then goes through
    /// the semantic checks, except where a placeholder stands.
    pub fn diagnose(text: &str, file: &str) -> Diagnosis {
        let Recovered { doc, errors, blanked } = parse_recovering(text);
        let mut problems: Vec<ConfigProblem> =
            errors.into_iter().map(|p| ConfigProblem { file: file.to_owned(), ..p }).collect();
        let Some(doc) = doc else {
            return Diagnosis { config: None, problems, file: file.to_owned(), doc: None };
        };
        let walked = walk::walk::<Self>(doc.as_table());
        for found in &walked.found {
            let key = walk::display_path(&found.path);
            if blanked.iter().any(|b| related(&key, b)) {
                continue;
            }
            let at = locate(doc.as_item(), &found.path, found.at_key);
            let (line, col) = line_col(doc.raw(), at.unwrap_or(0));
            problems.push(ConfigProblem {
                file: file.to_owned(),
                line: Some(line),
                col: Some(col),
                key,
                reason: rule_row_suggestion(&found.path).unwrap_or_else(|| found.message.clone()),
                severity: Severity::Error,
            });
        }
        let mut diagnosis = Diagnosis { config: None, problems, file: file.to_owned(), doc: Some(doc) };
        if let Some(config) = walked.value {
            let tainted: Vec<String> =
                walked.tainted.iter().map(|p| walk::display_path(p)).chain(blanked.iter().cloned()).collect();
            let mut sink = Sink { diagnosis: &diagnosis, tainted: &tainted, out: Vec::new() };
            config.semantic_problems(&mut sink);
            let found = sink.out;
            diagnosis.problems.extend(found);
            if !diagnosis.has_errors() {
                diagnosis.config = Some(config);
            }
        }
        diagnosis.problems.sort_by_key(|p| (p.line.is_none(), p.line, p.col));
        diagnosis
    }
}
