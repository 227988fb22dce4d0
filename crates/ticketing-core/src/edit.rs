//! Editing rules the way the guide's Ticketing tab does: changes go to a draft; "Save changes"
//! makes a section of the draft the active (saved) rules; "Cancel changes" puts the last saved
//! section back into the draft; "Reset to defaults" puts the guide's defaults into the draft
//! (so a reset can itself be cancelled). The Edit button applies one [`RulePatch`] to several
//! selected rows, leaving the fields the patch leaves out as they were.
//!
//! This is data plus pure functions so the daemon's CLI, its admin API and its web UI all share
//! one implementation.

use serde::{Deserialize, Deserializer, Serialize};

use crate::catalog::{Catalog, Field};
use crate::rules::{GeneralSettings, Problem, RowId, Rule, RuleSet, Section, ValidationError};

/// `Option<Option<T>>` for patches: field absent = leave as is, `null` = clear, value = set.
fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A change to several rule rows at once. `None` leaves the field as it is; for the label
/// fields, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    /// The toggle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Lifetime in days (only rows that have one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_days: Option<u32>,
    /// Queue.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub queue: Option<Option<String>>,
    /// Priority.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub priority: Option<Option<String>>,
    /// Due in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_hours: Option<u32>,
    /// Work type.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub work_type: Option<Option<String>>,
    /// Issue type.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<Option<String>>,
    /// Sub-issue type.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub sub_issue_type: Option<Option<String>>,
    /// Creation delay in minutes (status rows; 0 turns it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_delay_minutes: Option<u32>,
    /// Reopen window in hours (status rows; `null` turns it off).
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub reopen_hours: Option<Option<u32>>,
    /// Recurrence window in hours (Security Center and Endpoint Security Cloud event rows;
    /// `null` turns it off).
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub recurrence_hours: Option<Option<u32>>,
    /// Storm threshold in tickets (`null` turns storms off).
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub storm_threshold: Option<Option<u32>>,
    /// Storm window in minutes (`null` turns storms off).
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub storm_window_minutes: Option<Option<u32>>,
    /// Minutes between storm notes (`null`: the default, 5).
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub storm_note_minutes: Option<Option<u32>>,
    /// Whether an outbreak event opens the storm at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbreak_as_storm: Option<bool>,
    /// Title template (`null` goes back to the guide's title).
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub title_template: Option<Option<String>>,
    /// Description template (`null` goes back to the guide's description).
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub description_template: Option<Option<String>>,
}

impl RulePatch {
    /// Applies the patch to one rule.
    pub fn apply(&self, rule: &mut Rule) {
        fn set<T: Clone>(target: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *target = v.clone();
            }
        }
        set(&mut rule.enabled, &self.enabled);
        if let (Some(days), Some(_)) = (self.lifetime_days, rule.lifetime_days) {
            rule.lifetime_days = Some(days);
        }
        set(&mut rule.queue, &self.queue);
        set(&mut rule.priority, &self.priority);
        set(&mut rule.due_hours, &self.due_hours);
        set(&mut rule.work_type, &self.work_type);
        set(&mut rule.issue_type, &self.issue_type);
        set(&mut rule.sub_issue_type, &self.sub_issue_type);
        set(&mut rule.create_delay_minutes, &self.create_delay_minutes);
        set(&mut rule.reopen_hours, &self.reopen_hours);
        set(&mut rule.recurrence_hours, &self.recurrence_hours);
        set(&mut rule.storm_threshold, &self.storm_threshold);
        set(&mut rule.storm_window_minutes, &self.storm_window_minutes);
        set(&mut rule.storm_note_minutes, &self.storm_note_minutes);
        set(&mut rule.outbreak_as_storm, &self.outbreak_as_storm);
        set(&mut rule.title_template, &self.title_template);
        set(&mut rule.description_template, &self.description_template);
    }
}

impl RulePatch {
    /// Whether the patch sets a lifecycle field.
    fn sets(&self, field: Field) -> bool {
        match field {
            Field::CreateDelay => self.create_delay_minutes.is_some(),
            Field::ReopenHours => self.reopen_hours.is_some(),
            Field::RecurrenceHours => self.recurrence_hours.is_some(),
            Field::StormThreshold => self.storm_threshold.is_some(),
            Field::StormWindow => self.storm_window_minutes.is_some(),
            Field::StormNote => self.storm_note_minutes.is_some(),
            Field::OutbreakAsStorm => self.outbreak_as_storm.is_some(),
            Field::TitleTemplate => self.title_template.is_some(),
            Field::DescriptionTemplate => self.description_template.is_some(),
            _ => false,
        }
    }
}

/// A change to the general settings; same conventions as [`RulePatch`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneralPatch {
    /// Ticket source.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub ticket_source: Option<Option<String>>,
    /// New-ticket status.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub new_status: Option<Option<String>>,
    /// Closed-ticket status.
    #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
    pub closed_status: Option<Option<String>>,
}

impl GeneralPatch {
    /// Applies the patch.
    pub fn apply(&self, g: &mut GeneralSettings) {
        for (target, value) in [
            (&mut g.ticket_source, &self.ticket_source),
            (&mut g.new_status, &self.new_status),
            (&mut g.closed_status, &self.closed_status),
        ] {
            if let Some(v) = value {
                target.clone_from(v);
            }
        }
    }
}

/// Why an edit was refused before it touched the draft.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The selection is empty.
    #[error("no rows selected")]
    NoRows,
    /// A patched value is out of range or does not apply to a selected row.
    #[error("{0}")]
    Invalid(ValidationError),
}

/// Why a save was refused: every problem of the section, all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot save {section}: {}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct SaveError {
    /// The section.
    pub section: Section,
    /// Every problem found.
    pub errors: Vec<ValidationError>,
}

/// The saved (active) rule set and the draft being edited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleBook {
    /// What the daemon applies.
    pub saved: RuleSet,
    /// What is being edited.
    pub draft: RuleSet,
}

impl RuleBook {
    /// A book whose draft equals its saved set.
    pub fn new(saved: RuleSet) -> Self {
        Self { draft: saved.clone(), saved }
    }

    /// Applies one patch to every selected row of the draft ("Edit" with several rows
    /// selected). All-or-nothing: a patch that does not fit one row changes none.
    pub fn bulk_edit(&mut self, rows: &[RowId], patch: &RulePatch) -> Result<(), EditError> {
        if rows.is_empty() {
            return Err(EditError::NoRows);
        }
        for row in rows {
            let invalid =
                |field, problem| EditError::Invalid(ValidationError { row: Some(row.clone()), field, problem });
            if patch.lifetime_days.is_some() && row.default_rule().lifetime_days.is_none() {
                return Err(invalid(Field::Lifetime, Problem::NotApplicable));
            }
            if patch.lifetime_days.is_some_and(|d| !crate::rules::LIFETIME_RANGE.contains(&d)) {
                let r = crate::rules::LIFETIME_RANGE;
                return Err(invalid(Field::Lifetime, Problem::OutOfRange { min: *r.start(), max: *r.end() }));
            }
            if patch.due_hours.is_some_and(|h| !crate::rules::DUE_HOURS_RANGE.contains(&h)) {
                let r = crate::rules::DUE_HOURS_RANGE;
                return Err(invalid(Field::DueHours, Problem::OutOfRange { min: *r.start(), max: *r.end() }));
            }
            // The lifecycle settings the patch sets, checked on the row as patched.
            let mut patched = self.draft.rows.get(row).cloned().unwrap_or_else(|| row.default_rule());
            patch.apply(&mut patched);
            let mut lifecycle = crate::rules::lifecycle_problems(row, &patched);
            if patch.title_template.is_some() || patch.description_template.is_some() {
                lifecycle.extend(crate::template::problems(row, &patched));
            }
            if let Some((field, problem)) = lifecycle.into_iter().find(|(f, _)| patch.sets(*f)) {
                return Err(invalid(field, problem));
            }
        }
        for row in rows {
            let rule = self.draft.rows.entry(row.clone()).or_insert_with(|| row.default_rule());
            patch.apply(rule);
        }
        Ok(())
    }

    /// Replaces the draft's maintenance windows (saved with the General section).
    pub fn set_maintenance(&mut self, windows: Vec<crate::maintenance::MaintenanceWindow>) {
        self.draft.maintenance = windows;
    }

    /// Turns priority-follows-severity on or off for a product's status tickets in the draft
    /// (saved with either of the product's status sections).
    pub fn set_priority_follows_severity(&mut self, product: crate::model::Product, on: bool) {
        if on {
            self.draft.priority_follows_severity.insert(product);
        } else {
            self.draft.priority_follows_severity.remove(&product);
        }
    }

    /// Edits the draft's general settings.
    pub fn edit_general(&mut self, patch: &GeneralPatch) {
        patch.apply(&mut self.draft.general);
    }

    /// "Save changes": validates the draft's section against the catalog and, when it is
    /// clean, makes it the saved section. Refuses with every problem otherwise.
    pub fn save(&mut self, section: Section, catalog: &Catalog) -> Result<(), SaveError> {
        let errors = self.draft.validate_section(section, catalog);
        if !errors.is_empty() {
            return Err(SaveError { section, errors });
        }
        self.saved.copy_section_from(section, &self.draft);
        Ok(())
    }

    /// "Cancel changes": the draft's section goes back to the last saved values.
    pub fn cancel(&mut self, section: Section) {
        self.draft.copy_section_from(section, &self.saved);
    }

    /// "Reset to defaults": the draft's section takes the guide's defaults.
    pub fn reset(&mut self, section: Section) {
        self.draft.copy_section_from(section, &RuleSet::default());
    }

    /// Whether the draft's section differs from the saved one.
    pub fn is_dirty(&self, section: Section) -> bool {
        match section {
            Section::General => {
                self.draft.general != self.saved.general || self.draft.maintenance != self.saved.maintenance
            }
            s => {
                let follows = |set: &RuleSet| match s {
                    Section::Statuses(p, _) => set.priority_follows_severity.contains(&p),
                    _ => false,
                };
                follows(&self.draft) != follows(&self.saved)
                    || s.rows().iter().any(|r| self.draft.rows.get(r) != self.saved.rows.get(r))
            }
        }
    }
}
