//! Problems and what checking a file found: [`ConfigProblem`], [`Diagnosis`], and the [`Sink`] the
//! semantic checks report into.

use std::fmt;

use super::parse::{line_col, locate, related};
use super::{Config, SecretRef, walk};

/// How much a problem matters: errors stop `run` and make `check` exit 1, warnings do neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The file cannot be used as it is.
    Error,
    /// Works, but is probably not what you want.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// One problem with the configuration: where (file, line, column and key) and why.
///
/// Printed as `FILE:LINE:COL: key.path: what is wrong (what was expected)`, warnings with
/// `warning: ` before the key. The reason never contains a value of the file, so an inline
/// secret in a wrong place is never echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file.
    pub file: String,
    /// 1-based line in the file, when the problem has a place in it.
    pub line: Option<usize>,
    /// 1-based column (in characters), with `line`.
    pub col: Option<usize>,
    /// The key's path (`autotask.secret`, `security_center[0].url`).
    pub key: String,
    /// What is wrong, and in parentheses what was expected.
    pub reason: String,
    /// Error or warning.
    pub severity: Severity,
}

impl ConfigProblem {
    /// An error with no place in the file (it cannot be read, a live service refused).
    pub fn unplaced(file: &str, key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line: None,
            col: None,
            key: key.into(),
            reason: reason.into(),
            severity: Severity::Error,
        }
    }

    /// Whether it is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(line) = self.line {
            write!(f, "{line}:{}:", self.col.unwrap_or(1))?;
        }
        if self.severity == Severity::Warning {
            write!(f, " warning:")?;
        }
        write!(f, " {}: {}", self.key, self.reason)
    }
}

/// Every problem found, all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

/// What checking one file found: the configuration (when it has no errors) and every problem,
/// sorted by place. Also places problems found later (by `check`'s live probes) by key path.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// The configuration, when the file has no errors (warnings allowed).
    pub config: Option<Config>,
    /// Every problem, sorted by line and column.
    pub problems: Vec<ConfigProblem>,
    pub(super) file: String,
    pub(super) doc: Option<toml_edit::ImDocument<String>>,
}

impl Diagnosis {
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(ConfigProblem::is_error)
    }

    /// `logging.format` as the file spells it, even when the file has errors elsewhere (so
    /// `check` can answer in the format asked for).
    pub fn log_format(&self) -> Option<&str> {
        self.doc.as_ref()?.get("logging")?.get("format")?.as_str()
    }

    /// A problem at `key` (`security_center[0]`, `mapping[2]`), placed at that key's line in
    /// the file, or at its nearest ancestor that is in the file.
    pub fn problem(&self, key: &str, reason: impl Into<String>, severity: Severity) -> ConfigProblem {
        let (line, col) = match &self.doc {
            Some(doc) => {
                let at = locate(doc.as_item(), &walk::parse_path(key), false);
                let (l, c) = line_col(doc.raw(), at.unwrap_or(0));
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigProblem { file: self.file.clone(), line, col, key: key.to_owned(), reason: reason.into(), severity }
    }
}

impl Diagnosis {
    pub(super) fn into_result(self) -> Result<Config, ConfigErrors> {
        match self.config {
            Some(config) if !self.has_errors() => Ok(config),
            _ => Err(ConfigErrors(self.problems)),
        }
    }
}

/// Collects semantic problems, placing each at its key and leaving out those under a key whose
/// value was already refused (it holds a placeholder, not the file's value).
pub(super) struct Sink<'a> {
    pub(super) diagnosis: &'a Diagnosis,
    pub(super) tainted: &'a [String],
    pub(super) out: Vec<ConfigProblem>,
}

impl Sink<'_> {
    fn push(&mut self, key: String, reason: String, severity: Severity) {
        if self.tainted.iter().any(|t| related(&key, t)) {
            return;
        }
        self.out.push(self.diagnosis.problem(&key, reason, severity));
    }

    pub(super) fn error(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.push(key.into(), reason.into(), Severity::Error);
    }

    pub(super) fn warning(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.push(key.into(), reason.into(), Severity::Warning);
    }

    /// Exactly one of env, file or value, and it can be read (named by variable or file,
    /// never by value).
    pub(super) fn secret(&mut self, key: &str, s: &SecretRef) {
        let given: Vec<&str> = [("env", s.env.is_some()), ("file", s.file.is_some()), ("value", s.value.is_some())]
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect();
        match given.as_slice() {
            [] => self.error(key, "gives no secret (expected exactly one of env, file or value)"),
            [one] => {
                if let Err(e) = s.resolve() {
                    self.error(format!("{key}.{one}"), e);
                }
            }
            many => {
                self.error(key, format!("gives {} (expected exactly one of env, file or value)", many.join(" and ")))
            }
        }
    }
}
