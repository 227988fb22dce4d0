//! The alert-storm settings on the rules pages (issue #27): their inline fields (threshold and
//! window, per row) and the Edit window's (threshold, window, note interval, outbreak), parsed
//! into the core's [`RulePatch`] with errors naming the row and the field in words.

use ticketing_core::edit::RulePatch;
use ticketing_core::rules::{RowId, Rule, STORM_MINUTES_RANGE, STORM_THRESHOLD_RANGE};

use super::FormData;

/// The storm columns' heading and the Edit window's labels.
pub(crate) const STORM_AFTER: &str = "Storm after (tickets)";
/// See [`STORM_AFTER`].
pub(crate) const STORM_WINDOW: &str = "Storm window (minutes)";
/// See [`STORM_AFTER`].
pub(crate) const STORM_NOTES: &str = "Storm notes every (minutes)";
/// See [`STORM_AFTER`].
pub(crate) const OUTBREAK: &str = "A Security Center outbreak opens the storm";

/// Whether the section's rows take storm settings.
pub(super) fn has_storms(section: ticketing_core::rules::Section) -> bool {
    section.rows().first().is_some_and(RowId::has_storms)
}

/// `""` → `None` (off), else a number in `range`.
fn optional(v: &str, what: &str, range: std::ops::RangeInclusive<u32>) -> Result<Option<u32>, String> {
    match v.trim() {
        "" => Ok(None),
        v => super::whole(v, what, range).map(Some),
    }
}

/// The inline storm fields of one row (`storm.<row>`, `stormwin.<row>`) into `patch`: only a
/// value that differs from the rule counts. Answers the problems, each naming the row.
pub(super) fn inline(form: &FormData, row: &RowId, rule: &Rule, patch: &mut RulePatch) -> Vec<String> {
    let mut errors = Vec::new();
    let r = row.to_string();
    let named = |e: String| format!("\u{201c}{}\u{201d}: {e}", row.label());
    if let Some(v) = form.get(&format!("storm.{r}")) {
        match optional(v, STORM_AFTER, STORM_THRESHOLD_RANGE) {
            Ok(n) if n != rule.storm_threshold => patch.storm_threshold = Some(n),
            Ok(_) => {}
            Err(e) => errors.push(named(e)),
        }
    }
    if let Some(v) = form.get(&format!("stormwin.{r}")) {
        match optional(v, STORM_WINDOW, STORM_MINUTES_RANGE) {
            Ok(n) if n != rule.storm_window_minutes => patch.storm_window_minutes = Some(n),
            Ok(_) => {}
            Err(e) => errors.push(named(e)),
        }
    }
    errors
}

/// The Edit window's storm fields into `patch`: a number sets, "Turn storms off" clears the
/// threshold and the window, blank keeps.
pub(super) fn bulk(form: &FormData, patch: &mut RulePatch) -> Result<(), String> {
    let num = |name: &str, what: &str, range| optional(form.get(name).unwrap_or_default(), what, range);
    let threshold = num("b_storm", STORM_AFTER, STORM_THRESHOLD_RANGE)?;
    let window = num("b_stormwin", STORM_WINDOW, STORM_MINUTES_RANGE)?;
    if form.get("b_storm_off").is_some() {
        if threshold.is_some() || window.is_some() {
            return Err(format!("{STORM_AFTER}: give the numbers or tick \u{201c}Turn storms off\u{201d}, not both"));
        }
        patch.storm_threshold = Some(None);
        patch.storm_window_minutes = Some(None);
    } else {
        patch.storm_threshold = threshold.map(Some);
        patch.storm_window_minutes = window.map(Some);
    }
    patch.storm_note_minutes = num("b_stormnote", STORM_NOTES, STORM_MINUTES_RANGE)?.map(Some);
    patch.outbreak_as_storm = match form.get("b_outbreak").unwrap_or_default() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    };
    Ok(())
}
