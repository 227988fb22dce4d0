//! The maintenance windows editor on the General page: the draft's windows in words (with
//! their problems next to them and a Remove button each), and the fields to add one.
//!
//! The windows sit on the General page rather than a page of their own because the rules save
//! them with the General section: one Save changes, Cancel changes and Reset to defaults covers
//! both, as everywhere else. A page of its own would have had a Save that also saves the
//! general settings (or the other way round) without saying so.
//!
//! A one-off window's start and end are entered in UTC (the rules store instants, and the page
//! says so); a recurring one's start time is local to its time zone, which the window keeps.
//! A window the fields cannot describe, or that the rules refuse, is not added: the page comes
//! back with the fields as typed and each problem next to its field.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use maud::{Markup, html};
use ticketing_core::maintenance::{MAX_DURATION_MINUTES, MaintenanceWindow, Schedule};
use ticketing_core::model::TenantId;
use ticketing_core::rules::{Problem, ValidationError};

use super::FormData;
use super::render::SectionView;

/// The weekdays in the order the form lists them.
const WEEKDAYS: [Weekday; 7] =
    [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];

/// Time zones offered in the time zone field's suggestions (any IANA name is accepted).
const ZONES: [&str; 12] = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Moscow",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Asia/Dubai",
    "Asia/Tokyo",
    "Australia/Sydney",
];

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn ordinal(n: u8) -> String {
    match n {
        1 => "1st".to_owned(),
        2 => "2nd".to_owned(),
        3 => "3rd".to_owned(),
        n => format!("{n}th"),
    }
}

fn minutes_words(m: u32) -> String {
    match (m / 60, m % 60) {
        (0, m) => format!("{m} min"),
        (1, 0) => "1 hour".to_owned(),
        (h, 0) => format!("{h} hours"),
        (h, m) => format!("{h} h {m} min"),
    }
}

fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// When a window is open, in words.
pub(crate) fn schedule_words(schedule: &Schedule) -> String {
    match schedule {
        Schedule::Once { start, end } => {
            format!("Once, from {} to {} UTC", start.format("%Y-%m-%d %H:%M"), end.format("%Y-%m-%d %H:%M"))
        }
        Schedule::Recurring { weekdays, start, duration_minutes, time_zone, nth_of_month } => {
            let days: Vec<&str> = WEEKDAYS.iter().filter(|d| weekdays.contains(d)).map(|d| weekday_name(*d)).collect();
            let when = match nth_of_month {
                Some(n) => format!("The {} {} of each month", ordinal(*n), and_list(&days)),
                None if days.len() == 7 => "Every day".to_owned(),
                None => format!("Every {}", and_list(&days)),
            };
            format!("{when} at {} ({time_zone}), for {}", start.format("%H:%M"), minutes_words(*duration_minutes))
        }
    }
}

/// A window problem's message in words: the core names a couple of fields by their codes.
pub(crate) fn message_words(message: &str) -> String {
    // Straight quotes as the page's other messages quote: curly, alternating open and close.
    let mut open = false;
    let quoted: String = message
        .chars()
        .map(|c| match c {
            '"' => {
                open = !open;
                if open { '\u{201c}' } else { '\u{201d}' }
            }
            c => c,
        })
        .collect();
    quoted
        .replace("another window has the same id", "another window has the same name")
        .replace("the id is blank", "the name is blank")
        .replace("duration_minutes", "the duration in minutes")
        .replace("nth_of_month", "the weekday of the month")
}

/// Which field of the add form a window problem is about (by the core's wording).
fn field_of(message: &str) -> &'static str {
    const FIELDS: [(&str, &str); 8] = [
        ("the id is blank", "name"),
        ("same id", "name"),
        ("device pattern", "device"),
        ("tenant is blank", "tenant"),
        ("ends before it starts", "end"),
        ("no weekday", "days"),
        ("duration", "duration"),
        ("time zone", "tz"),
    ];
    FIELDS
        .iter()
        .find(|(m, _)| message.contains(m))
        .map_or(if message.contains("nth") { "nth" } else { "name" }, |(_, f)| f)
}

/// The add form as typed, and what is wrong with it, per field.
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowForm {
    name: String,
    tenant: String,
    device: String,
    /// `once` or `recurring`.
    kind: String,
    start: String,
    end: String,
    days: Vec<String>,
    time: String,
    duration: String,
    tz: String,
    nth: String,
    /// Field → the problem, in words.
    pub(crate) errors: BTreeMap<&'static str, String>,
}

impl WindowForm {
    /// The fields of a posted form.
    pub(crate) fn from_form(form: &FormData) -> Self {
        let get = |name: &str| form.get(name).unwrap_or_default().trim().to_owned();
        Self {
            name: get("w_name"),
            tenant: get("w_tenant"),
            device: get("w_device"),
            kind: get("w_kind"),
            start: get("w_start"),
            end: get("w_end"),
            days: form.all("w_days").map(str::to_owned).collect(),
            time: get("w_time"),
            duration: get("w_duration"),
            tz: get("w_tz"),
            nth: get("w_nth"),
            errors: BTreeMap::new(),
        }
    }

    /// The window the fields describe, or `None` with [`WindowForm::errors`] filled in. A blank
    /// name becomes the first free `window-N`.
    pub(crate) fn parse(&mut self, existing: &[MaintenanceWindow]) -> Option<MaintenanceWindow> {
        let id = if self.name.is_empty() {
            (existing.len() + 1..)
                .map(|n| format!("window-{n}"))
                .find(|id| !existing.iter().any(|w| &w.id == id))
                .unwrap_or_default()
        } else {
            self.name.clone()
        };
        if self.tenant.is_empty() {
            self.errors.insert("tenant", "Choose the customer (tenant) the window is for.".to_owned());
        }
        let schedule = match self.kind.as_str() {
            "once" => self.once(),
            "recurring" => self.recurring(),
            _ => {
                self.errors.insert("kind", "Choose one-off or recurring.".to_owned());
                None
            }
        };
        let schedule = schedule?;
        if !self.errors.is_empty() {
            return None;
        }
        Some(MaintenanceWindow {
            id,
            tenant: TenantId::new(self.tenant.clone()),
            device: (!self.device.is_empty()).then(|| self.device.clone()),
            schedule,
        })
    }

    fn instant(&mut self, field: &'static str, what: &str) -> Option<DateTime<Utc>> {
        let text = if field == "start" { &self.start } else { &self.end };
        let parsed = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"));
        match parsed {
            Ok(t) => Some(Utc.from_utc_datetime(&t)),
            Err(_) => {
                let msg = if text.is_empty() {
                    format!("Give the {what} date and time (UTC).")
                } else {
                    format!("{} \u{201c}{text}\u{201d} is not a date and time such as 2026-11-17 22:00.", capital(what))
                };
                self.errors.insert(field, msg);
                None
            }
        }
    }

    fn once(&mut self) -> Option<Schedule> {
        let start = self.instant("start", "start");
        let end = self.instant("end", "end");
        let (start, end) = (start?, end?);
        if end <= start {
            self.errors.insert("end", "The end must be after the start.".to_owned());
            return None;
        }
        Some(Schedule::Once { start, end })
    }

    fn recurring(&mut self) -> Option<Schedule> {
        let weekdays: Vec<Weekday> = self.days.iter().filter_map(|d| d.parse().ok()).collect();
        if weekdays.is_empty() {
            self.errors.insert("days", "Tick at least one weekday.".to_owned());
        }
        let start = NaiveTime::parse_from_str(&self.time, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(&self.time, "%H:%M:%S"))
            .ok();
        if start.is_none() {
            let msg = if self.time.is_empty() {
                "Give the start time, such as 22:00.".to_owned()
            } else {
                format!("Start time \u{201c}{}\u{201d} is not a time such as 22:00.", self.time)
            };
            self.errors.insert("time", msg);
        }
        let duration = match self.duration.parse::<u32>() {
            Ok(m) if (1..=MAX_DURATION_MINUTES).contains(&m) => Some(m),
            _ => {
                self.errors.insert(
                    "duration",
                    format!(
                        "Duration must be a whole number of minutes from 1 to {MAX_DURATION_MINUTES} (a week), not \u{201c}{}\u{201d}.",
                        self.duration
                    ),
                );
                None
            }
        };
        let nth = match self.nth.as_str() {
            "" => Some(None),
            n => match n.parse::<u8>() {
                Ok(n) if (1..=5).contains(&n) => Some(Some(n)),
                _ => {
                    self.errors.insert("nth", "Choose every week, or the 1st to 5th weekday of the month.".to_owned());
                    None
                }
            },
        };
        let time_zone = if self.tz.is_empty() { "UTC".to_owned() } else { self.tz.clone() };
        Some(Schedule::Recurring {
            weekdays,
            start: start?,
            duration_minutes: duration?,
            time_zone,
            nth_of_month: nth?,
        })
    }

    /// Puts the rules' problems with the new window (`id`) next to their fields.
    pub(crate) fn take_problems(&mut self, problems: &[ValidationError], id: &str) {
        for p in problems {
            if let Problem::InvalidWindow { window, message } = &p.problem {
                if window == id {
                    self.errors.entry(field_of(message)).or_insert_with(|| capital(&message_words(message)) + ".");
                }
            }
        }
        if self.errors.is_empty() && !problems.is_empty() {
            // A problem of another window (the list was refused as a whole): say so.
            let text: Vec<String> = problems
                .iter()
                .map(|p| match &p.problem {
                    Problem::InvalidWindow { window, message } => {
                        format!("Window \u{201c}{window}\u{201d}: {}", message_words(message))
                    }
                    _ => p.to_string(),
                })
                .collect();
            self.errors.insert("name", text.join("; "));
        }
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// The tenants the add form offers: every mapped tenant, named as its source names it.
pub(crate) fn tenant_choices(shared: &crate::engine::Shared) -> Vec<(String, String)> {
    shared
        .mapping()
        .into_iter()
        .map(|m| {
            let label = match &m.tenant_name {
                Some(n) if n != &m.tenant => format!("{n} ({})", m.tenant),
                _ => m.tenant.clone(),
            };
            (m.tenant, label)
        })
        .collect()
}

fn error_id(field: &str) -> String {
    format!("w-error-{field}")
}

/// A field's problem, right after it, and the attributes pointing at it.
fn field_error(form: &WindowForm, field: &'static str) -> Markup {
    html! {
        @if let Some(e) = form.errors.get(field) {
            span.field-error id=(error_id(field)) { (e) }
        }
    }
}

/// The editor: the draft's windows, then the fields to add one. Its buttons belong to the
/// General page's form (Add) or to one small form each outside it (Remove, see
/// [`remove_forms`]).
pub(crate) fn editor(v: &SectionView<'_>) -> Markup {
    let windows = &v.book.draft.maintenance;
    let blank = WindowForm { kind: "recurring".to_owned(), tz: "UTC".to_owned(), ..WindowForm::default() };
    let f = v.window_form.unwrap_or(&blank);
    let invalid = |field: &'static str| f.errors.contains_key(field).then_some("true");
    let described = |field: &'static str| f.errors.contains_key(field).then(|| error_id(field));
    let tenant_label = |t: &TenantId| {
        v.tenants
            .iter()
            .find(|(id, _)| id == t.as_str())
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| format!("{t} (not in the mapping)"))
    };
    html! {
        section.maintenance aria-labelledby="maintenance-h" id="maintenance" {
            h2 id="maintenance-h" { "Maintenance windows" }
            p.hint {
                "While a window is open, no ticket is created or reopened for its customer (or only its computers \
                 whose names match the pattern); tickets are still closed. A computer problem still there when the \
                 window ends gets its ticket then. Windows are saved with the general settings."
            }
            @if windows.is_empty() {
                p id="maintenance-none" { "No maintenance window." }
            } @else {
                div.table-wrap {
                    table.cards.windows id="maintenance-table" {
                        caption.vh { "Maintenance windows of the draft" }
                        thead {
                            tr {
                                th scope="col" { "Name" }
                                th scope="col" { "Customer" }
                                th scope="col" { "Computers" }
                                th scope="col" { "When" }
                                th scope="col" { span.vh { "Remove" } }
                            }
                        }
                        tbody {
                            @for (i, w) in windows.iter().enumerate() {
                                @let problems: Vec<(usize, &ValidationError)> = v.problems.iter().enumerate()
                                    .filter(|(_, p)| matches!(&p.problem, Problem::InvalidWindow { window, .. } if window == &w.id))
                                    .collect();
                                tr id={ "window-" (i) } data-window=(w.id) class=[(!problems.is_empty()).then_some("bad")] {
                                    th scope="row" data-label="Name" { (w.id) }
                                    td data-label="Customer" { (tenant_label(&w.tenant)) }
                                    td data-label="Computers" {
                                        @match &w.device {
                                            Some(p) => { "names matching " code { (p) } },
                                            None => "all",
                                        }
                                    }
                                    td data-label="When" {
                                        (schedule_words(&w.schedule))
                                        @if w.contains(v.now) {
                                            " " strong.open-now { "(open now)" }
                                        }
                                        @for (pi, p) in &problems {
                                            @if let Problem::InvalidWindow { message, .. } = &p.problem {
                                                span.field-error aria-describedby={ "problem-" (pi) } { (capital(&message_words(message))) }
                                            }
                                        }
                                    }
                                    td.c-remove {
                                        button type="submit" form={ "remove-window-" (i) } id={ "remove-" (i) } {
                                            "Remove" span.vh { " " (w.id) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            fieldset.add-window id="add-window" {
                legend { "Add a maintenance window" }
                @if v.tenants.is_empty() {
                    p.hint id="add-window-no-tenants" { "No customer is mapped yet, so there is no tenant to choose." }
                }
                div.fields {
                    div.field {
                        label for="w_name" { "Name" }
                        input type="text" id="w_name" name="w_name" value=(f.name) placeholder="e.g. patch night" data-inline
                            aria-invalid=[invalid("name")] aria-describedby=[described("name")];
                        span.hint { "Recorded in every decision it holds back; blank: one is made up." }
                        (field_error(f, "name"))
                    }
                    div.field {
                        label for="w_tenant" { "Customer (tenant)" }
                        select id="w_tenant" name="w_tenant" data-inline aria-invalid=[invalid("tenant")] aria-describedby=[described("tenant")] {
                            option value="" selected[f.tenant.is_empty()] { "(choose)" }
                            @for (id, label) in v.tenants {
                                option value=(id) selected[&f.tenant == id] { (label) }
                            }
                        }
                        (field_error(f, "tenant"))
                    }
                    div.field {
                        label for="w_device" { "Computer names (optional)" }
                        input type="text" id="w_device" name="w_device" value=(f.device) placeholder="e.g. srv-*" data-inline
                            aria-invalid=[invalid("device")] aria-describedby=[described("device")];
                        span.hint { "* any characters, ? one; blank: every computer." }
                        (field_error(f, "device"))
                    }
                }
                fieldset.kind {
                    legend { "Schedule" }
                    label { input type="radio" name="w_kind" value="recurring" id="w_kind_recurring" checked[f.kind != "once"] data-inline; " Recurring" }
                    " "
                    label { input type="radio" name="w_kind" value="once" id="w_kind_once" checked[f.kind == "once"] data-inline; " One-off" }
                    (field_error(f, "kind"))
                }
                div.fields.recurring {
                    fieldset.days.field aria-describedby=[described("days")] {
                        legend { "Weekdays" }
                        @for d in WEEKDAYS {
                            @let code = d.to_string();
                            label.day {
                                input type="checkbox" name="w_days" value=(code) id={ "w_day_" (code) }
                                    checked[f.days.contains(&code)] data-inline;
                                " " (weekday_name(d))
                            }
                        }
                        (field_error(f, "days"))
                    }
                    div.field {
                        label for="w_nth" { "Weeks of the month" }
                        select id="w_nth" name="w_nth" data-inline aria-invalid=[invalid("nth")] aria-describedby=[described("nth")] {
                            option value="" selected[f.nth.is_empty()] { "Every week" }
                            @for n in 1u8..=5 {
                                option value=(n) selected[f.nth == n.to_string()] { "Only the " (ordinal(n)) " of the month" }
                            }
                        }
                        (field_error(f, "nth"))
                    }
                    div.field {
                        label for="w_time" { "Start time (local)" }
                        input type="time" id="w_time" name="w_time" value=(f.time) data-inline
                            aria-invalid=[invalid("time")] aria-describedby=[described("time")];
                        (field_error(f, "time"))
                    }
                    div.field {
                        label for="w_duration" { "Duration, minutes" }
                        input type="number" min="1" max=(MAX_DURATION_MINUTES) id="w_duration" name="w_duration" value=(f.duration) data-inline
                            aria-invalid=[invalid("duration")] aria-describedby=[described("duration")];
                        (field_error(f, "duration"))
                    }
                    div.field {
                        label for="w_tz" { "Time zone" }
                        input type="text" id="w_tz" name="w_tz" value=(f.tz) list="w_tz_list" placeholder="e.g. Europe/Berlin" data-inline
                            aria-invalid=[invalid("tz")] aria-describedby=[described("tz")];
                        datalist id="w_tz_list" {
                            @for z in ZONES { option value=(z) {} }
                        }
                        span.hint { "An IANA name; the start time follows its daylight saving time." }
                        (field_error(f, "tz"))
                    }
                }
                div.fields.once {
                    div.field {
                        label for="w_start" { "One-off start (UTC)" }
                        input type="datetime-local" id="w_start" name="w_start" value=(f.start) data-inline
                            aria-invalid=[invalid("start")] aria-describedby=[described("start")];
                        (field_error(f, "start"))
                    }
                    div.field {
                        label for="w_end" { "One-off end (UTC)" }
                        input type="datetime-local" id="w_end" name="w_end" value=(f.end) data-inline
                            aria-invalid=[invalid("end")] aria-describedby=[described("end")];
                        (field_error(f, "end"))
                    }
                    p.hint { "Now: " (v.now.format("%Y-%m-%d %H:%M")) " UTC." }
                }
                p.dialog-actions {
                    button type="submit" id="window-add" formaction="/ui/maintenance/add" { "Add to the draft" }
                    span.hint { " Save changes then makes it the rules in use." }
                }
            }
        }
    }
}

/// One form per window for its Remove button (outside the page's form: forms do not nest).
pub(crate) fn remove_forms(v: &SectionView<'_>) -> Markup {
    html! {
        @for (i, w) in v.book.draft.maintenance.iter().enumerate() {
            form id={ "remove-window-" (i) } method="post" action="/ui/maintenance/remove" data-leaves {
                (super::render::hidden(v.csrf, v.section, v.revision))
                input type="hidden" name="remove" value=(w.id);
            }
        }
    }
}

/// A window problem as the page's problem list says it.
pub(crate) fn problem_words(field_label: &str, window: &str, message: &str) -> String {
    format!("{field_label} \u{201c}{window}\u{201d}: {}", message_words(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_in_words() {
        let r = Schedule::Recurring {
            weekdays: vec![Weekday::Thu, Weekday::Tue],
            start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            duration_minutes: 90,
            time_zone: "Europe/Berlin".into(),
            nth_of_month: Some(2),
        };
        assert_eq!(
            schedule_words(&r),
            "The 2nd Tuesday and Thursday of each month at 22:00 (Europe/Berlin), for 1 h 30 min"
        );
        assert_eq!(
            message_words("duration_minutes must be between 1 and 10080"),
            "the duration in minutes must be between 1 and 10080"
        );
    }
}
