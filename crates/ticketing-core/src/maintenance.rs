//! Maintenance windows (issue 20): per tenant, optionally per device-name pattern, one-off or
//! recurring, during which no ticket is created.
//!
//! A recurring window is written the way an MSP says it: weekdays, a local start time, a
//! duration and an IANA time zone, optionally "the nth such weekday of the month" (every 3rd
//! Tuesday: `weekdays = ["Tue"]`, `nth_of_month = 3`). Its instants are defined in local time:
//!
//! - an occurrence starts at the first instant the zone's wall clock shows the start time on a
//!   matching date: on a date when the clock jumps over it (spring forward), at the first minute
//!   after the jump; on a date when the clock shows it twice (fall back), the first time;
//! - it lasts `duration_minutes` of elapsed time (so a 2-hour window across a DST change is
//!   still 2 hours long).
//!
//! [`window_at`] is a pure function of the windows, the tenant, the device name and `now`; the
//! decisions call it, and `tests/lifecycle.rs` checks it against a minute-by-minute reading of
//! the wall clock.

use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::catalog::Field;
use crate::model::TenantId;
use crate::rules::{Problem, ValidationError};

/// The longest window accepted, in minutes (a week).
pub const MAX_DURATION_MINUTES: u32 = 7 * 24 * 60;

/// One maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// A stable name, unique in the rule set: recorded in every decision the window suppresses.
    pub id: String,
    /// The tenant it applies to.
    pub tenant: TenantId,
    /// A device-name pattern (`*` any run of characters, `?` one character, case-insensitive):
    /// the window then applies only to matching computers. `None`: the whole tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// When.
    pub schedule: Schedule,
}

/// When a window is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// Once, from `start` (inclusive) to `end` (exclusive).
    Once {
        /// First instant inside.
        start: DateTime<Utc>,
        /// First instant after.
        end: DateTime<Utc>,
    },
    /// On every matching local date.
    Recurring {
        /// The weekdays (`"Mon"` … `"Sun"`).
        weekdays: Vec<Weekday>,
        /// The local start time (`"22:00:00"`).
        start: NaiveTime,
        /// How long each occurrence lasts, in minutes (1 to [`MAX_DURATION_MINUTES`]).
        duration_minutes: u32,
        /// The IANA time zone the start time is in (`"Europe/Berlin"`).
        time_zone: String,
        /// Only the nth such weekday of its month (1 to 5): "every 3rd Tuesday".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nth_of_month: Option<u8>,
    },
}

impl MaintenanceWindow {
    /// Whether the window concerns this tenant and device (`None`: a decision with no computer,
    /// which only a tenant-wide window covers).
    pub fn applies_to(&self, tenant: &TenantId, device_name: Option<&str>) -> bool {
        &self.tenant == tenant
            && match (&self.device, device_name) {
                (None, _) => true,
                (Some(pattern), Some(name)) => glob_match(pattern, name),
                (Some(_), None) => false,
            }
    }

    /// The occurrence `[start, end)` that contains `at`, if any.
    pub fn occurrence_at(&self, at: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match &self.schedule {
            Schedule::Once { start, end } => (*start <= at && at < *end).then_some((*start, *end)),
            Schedule::Recurring { weekdays, start, duration_minutes, time_zone, nth_of_month } => {
                let tz = Tz::from_str(time_zone).ok()?;
                let duration = Duration::minutes(i64::from(*duration_minutes));
                let today = at.with_timezone(&tz).date_naive();
                // An occurrence that contains `at` started at most `duration` (plus a day for the
                // start time and a DST shift) before it.
                let back = i64::from(*duration_minutes).div_euclid(24 * 60) + 2;
                (0..=back).filter_map(|i| today.checked_sub_signed(Duration::days(i))).find_map(|date| {
                    if !date_matches(date, weekdays, *nth_of_month) {
                        return None;
                    }
                    let s = local_start(&tz, date.and_time(*start))?;
                    (s <= at && at < s + duration).then_some((s, s + duration))
                })
            }
        }
    }

    /// Whether `at` is inside the window (whatever the tenant or device).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.occurrence_at(at).is_some()
    }
}

/// The first window (in the given order) that covers `tenant` and `device_name` at `now`.
pub fn window_at<'a>(
    windows: &'a [MaintenanceWindow],
    tenant: &TenantId,
    device_name: Option<&str>,
    now: DateTime<Utc>,
) -> Option<&'a MaintenanceWindow> {
    windows.iter().find(|w| w.applies_to(tenant, device_name) && w.contains(now))
}

/// Whether a local date is one of the schedule's.
pub(crate) fn date_matches(date: NaiveDate, weekdays: &[Weekday], nth_of_month: Option<u8>) -> bool {
    weekdays.contains(&date.weekday()) && nth_of_month.is_none_or(|n| u32::from(n) == (date.day() - 1) / 7 + 1)
}

/// The instant the wall clock of `tz` first shows `local`, or (in a spring-forward gap) the first
/// whole minute after the jump.
fn local_start(tz: &Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => {
            let floor = local.date().and_time(NaiveTime::from_hms_opt(local.time().hour(), local.time().minute(), 0)?);
            // Gaps are at most a few hours long (2 h is the largest in the database).
            (1..=24 * 60)
                .find_map(|m| tz.from_local_datetime(&(floor + Duration::minutes(m))).earliest())
                .map(|t| t.with_timezone(&Utc))
        }
    }
}

/// `*` matches any run of characters, `?` one; everything else itself, ignoring case.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let n: Vec<char> = name.chars().flat_map(char::to_lowercase).collect();
    // The classic linear wildcard match with one backtrack point.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Every problem of the rule set's windows.
pub(crate) fn validate_windows(windows: &[MaintenanceWindow]) -> Vec<ValidationError> {
    let mut errors = Vec::new();
    let mut push = |w: &MaintenanceWindow, message: String| {
        errors.push(ValidationError {
            row: None,
            field: Field::Maintenance,
            problem: Problem::InvalidWindow { window: w.id.clone(), message },
        });
    };
    for (i, w) in windows.iter().enumerate() {
        if w.id.trim().is_empty() {
            push(w, "the id is blank".to_owned());
        } else if windows[..i].iter().any(|o| o.id == w.id) {
            push(w, "another window has the same id".to_owned());
        }
        if w.tenant.as_str().trim().is_empty() {
            push(w, "the tenant is blank".to_owned());
        }
        if w.device.as_deref().is_some_and(|d| d.trim().is_empty()) {
            push(w, "the device pattern is blank (leave it out for the whole tenant)".to_owned());
        }
        match &w.schedule {
            Schedule::Once { start, end } if end <= start => push(w, "it ends before it starts".to_owned()),
            Schedule::Once { .. } => {}
            Schedule::Recurring { weekdays, duration_minutes, time_zone, nth_of_month, .. } => {
                if weekdays.is_empty() {
                    push(w, "no weekday".to_owned());
                }
                if !(1..=MAX_DURATION_MINUTES).contains(duration_minutes) {
                    push(w, format!("duration_minutes must be between 1 and {MAX_DURATION_MINUTES}"));
                }
                if Tz::from_str(time_zone).is_err() {
                    push(w, format!("unknown time zone \"{time_zone}\" (expected an IANA name like Europe/Berlin)"));
                }
                if nth_of_month.is_some_and(|n| !(1..=5).contains(&n)) {
                    push(w, "nth_of_month must be between 1 and 5".to_owned());
                }
            }
        }
    }
    errors
}
