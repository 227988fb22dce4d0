//! Syntax: parsing with recovery after each syntax error, and placing key paths in the text.

use super::{ConfigProblem, Severity, walk};

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    (line, col)
}

/// Top-level tables put in place of a broken table header, so the keys under it are skipped
/// rather than reported as belonging to the table before it.
pub(super) const RECOVERED: &str = "__msp_ticketd_unparsable_line_";

/// What [`parse_recovering`] made of a text.
pub(super) struct Recovered {
    /// The document, when blanking lines made the text parse.
    pub(super) doc: Option<toml_edit::ImDocument<String>>,
    /// Every syntax error (their `file` left empty).
    pub(super) errors: Vec<ConfigProblem>,
    /// Keys of the key-value lines blanked: their absence is a consequence, not a problem.
    pub(super) blanked: Vec<String>,
}

/// Parses `text`, and after each syntax error parses it again with the offending line blanked
/// (a broken table header becomes a table that is skipped; an error on an empty line, such as
/// the end of the file after an unclosed string, blanks the nearest line above with text).
pub(super) fn parse_recovering(text: &str) -> Recovered {
    const MAX_SYNTAX_ERRORS: usize = 50;
    let mut text = text.to_owned();
    let mut errors = Vec::new();
    let mut blanked = Vec::new();
    for _ in 0..MAX_SYNTAX_ERRORS {
        let e = match toml_edit::ImDocument::parse(text.clone()) {
            Ok(doc) => return Recovered { doc: Some(doc), errors, blanked },
            Err(e) => e,
        };
        let (line, col) = line_col(&text, e.span().map_or(text.len(), |s| s.start));
        errors.push(ConfigProblem {
            file: String::new(),
            line: Some(line),
            col: Some(col),
            key: syntax_key(&text, line),
            reason: syntax_reason(e.message()),
            severity: Severity::Error,
        });
        let mut lines: Vec<&str> = text.split('\n').collect();
        let Some(index) = (0..line.min(lines.len())).rev().find(|i| !lines[*i].trim().is_empty()) else { break };
        let broken = lines[index];
        let replacement = if broken.trim_start().starts_with('[') {
            format!("[{RECOVERED}{}]", index + 1)
        } else {
            blanked.push(syntax_key(&text, index + 1));
            String::new()
        };
        lines[index] = &replacement;
        text = lines.join("\n");
    }
    Recovered { doc: None, errors, blanked }
}

/// Whether one key path is the other or lies under it.
pub(super) fn related(a: &str, b: &str) -> bool {
    let under = |a: &str, b: &str| {
        a.strip_prefix(b).is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    };
    under(a, b) || under(b, a)
}

/// The key a syntax error is about, as far as the line says: the table header above it and
/// the key before `=`.
fn syntax_key(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let this = lines.get(line - 1).copied().unwrap_or_default().trim();
    let bare = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.\"/ ".contains(c));
    // The path a header line (at `index`) opens: `polling`, `security_center[1]`.
    let header = |index: usize| {
        let l = lines[index].trim();
        if let Some(inner) = l.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            let nth = lines[..index].iter().filter(|o| o.trim() == l).count();
            return bare(inner).then(|| format!("{}[{nth}]", inner.trim()));
        }
        let inner = l.strip_prefix('[').and_then(|l| l.strip_suffix(']'))?;
        bare(inner).then(|| inner.trim().to_owned())
    };
    if this.starts_with('[') {
        return header(line - 1).unwrap_or_else(|| "(table header)".to_owned());
    }
    let table = (0..line - 1).rev().find(|i| lines[*i].trim_start().starts_with('[')).and_then(header);
    let key = this.split_once('=').map(|(k, _)| k.trim()).filter(|k| bare(k));
    match (table, key) {
        (Some(t), Some(k)) => format!("{t}.{k}"),
        (None, Some(k)) => k.to_owned(),
        (Some(t), None) => t,
        (None, None) => "(syntax)".to_owned(),
    }
}

/// toml_edit's message, on one line: `what (expected ...)`.
fn syntax_reason(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let (expected, what): (Vec<&str>, Vec<&str>) = lines.iter().partition(|l| l.starts_with("expected"));
    let what = if what.is_empty() { "invalid TOML".to_owned() } else { what.join("; ") };
    if expected.is_empty() {
        format!("syntax error: {what}")
    } else {
        format!("syntax error: {what} ({})", expected.join("; "))
    }
}

/// The byte offset a key path points at: the key itself (`at_key`) or its value (a table's
/// header); the nearest ancestor in the file when the path goes further than the file does.
pub(super) fn locate(root: &toml_edit::Item, path: &[walk::Seg], at_key: bool) -> Option<usize> {
    use toml_edit::{Item, Table, Value};
    #[derive(Clone, Copy)]
    enum Cur<'a> {
        Item(&'a Item),
        Table(&'a Table),
        Value(&'a Value),
    }
    let mut cur = Cur::Item(root);
    let mut best = None;
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let next = match seg {
            walk::Seg::Key(k) => {
                let table: Option<&dyn toml_edit::TableLike> = match cur {
                    Cur::Item(item) => item.as_table_like(),
                    Cur::Table(t) => Some(t),
                    Cur::Value(v) => v.as_inline_table().map(|t| t as &dyn toml_edit::TableLike),
                };
                let Some((key, item)) = table.and_then(|t| t.get_key_value(k)) else { break };
                let span = if last && at_key { key.span() } else { item.span().or_else(|| key.span()) };
                (span, Cur::Item(item))
            }
            walk::Seg::Index(n) => {
                let found = match cur {
                    Cur::Item(Item::ArrayOfTables(a)) => a.get(*n).map(|t| (t.span(), Cur::Table(t))),
                    Cur::Item(Item::Value(Value::Array(a))) | Cur::Value(Value::Array(a)) => {
                        a.get(*n).map(|v| (v.span(), Cur::Value(v)))
                    }
                    _ => None,
                };
                let Some(found) = found else { break };
                found
            }
        };
        if let Some(span) = next.0 {
            best = Some(span.start);
        }
        cur = next.1;
    }
    best
}
