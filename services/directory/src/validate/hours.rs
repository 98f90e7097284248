//! Opening hours as a clinic gives them: the weekly hours, the dated overrides and the
//! intervals of each day, every offending one named by its path.

use super::{date, optional_text, rule};
use crate::domain::hours;
use clinicnet_proto::{common::v1 as common, directory::v1 as pb};
use jiff::civil::Date;
use platform::error::Violations;

/// Checks the weekly hours; returns the ISO weekdays that have hours.
pub(super) fn weekly_hours(
    violations: &mut Violations,
    weekly: Option<&pb::WeeklyHours>,
) -> Vec<i16> {
    let days = weekly.map(|w| w.days.as_slice()).unwrap_or_default();
    let mut weekdays = Vec::with_capacity(days.len());
    for (index, day) in days.iter().enumerate() {
        let field = format!("clinic.weekly_hours.days[{index}]");
        match common::DayOfWeek::try_from(day.day_of_week) {
            Ok(common::DayOfWeek::Unspecified) | Err(_) => {
                violations.add(format!("{field}.day_of_week"), "must be a day of the week");
            }
            Ok(weekday) => {
                let iso = weekday as i16;
                if weekdays.iter().any(|&(seen, _)| seen == iso) {
                    violations.add(
                        format!("{field}.day_of_week"),
                        "at most one entry per weekday",
                    );
                }
                weekdays.push((iso, day.intervals.len()));
            }
        }
        intervals(violations, &format!("{field}.intervals"), &day.intervals);
    }
    hours::open_weekdays(weekdays)
}

/// Checks the dated overrides; returns each date and whether the clinic is open on it.
pub(super) fn date_overrides(
    violations: &mut Violations,
    overrides: &[pb::DateOverride],
) -> Vec<(Date, bool)> {
    let mut open = Vec::with_capacity(overrides.len());
    for (index, day) in overrides.iter().enumerate() {
        let field = format!("clinic.date_overrides[{index}]");
        if let Some(local) = date(violations, &format!("{field}.date"), day.date.as_ref()) {
            if open.iter().any(|&(seen, _)| seen == local) {
                violations.add(format!("{field}.date"), "at most one override per date");
            }
            open.push((local, !day.closed));
        }
        if day.closed {
            violations.check(
                !day.intervals.is_empty(),
                &format!("{field}.intervals"),
                "must be empty when the clinic is closed all day",
            );
        } else {
            violations.check(
                day.intervals.is_empty(),
                &format!("{field}.intervals"),
                "give the day's hours, or set closed",
            );
            intervals(violations, &format!("{field}.intervals"), &day.intervals);
        }
        optional_text(violations, &format!("{field}.reason"), &day.reason, 100);
    }
    open
}

/// Checks one day's intervals: valid times, each after the one before, none overlapping.
fn intervals(violations: &mut Violations, field: &str, ranges: &[pb::LocalTimeRange]) {
    let mut minutes = Vec::with_capacity(ranges.len());
    for (index, range) in ranges.iter().enumerate() {
        let item = format!("{field}[{index}]");
        let start = time_of_day(violations, &format!("{item}.start"), range.start.as_ref());
        let end = time_of_day(violations, &format!("{item}.end"), range.end.as_ref());
        match (start, end) {
            (Some(start), Some(end)) => minutes.push((start, end)),
            _ => return,
        }
    }
    if let Err((index, reason)) = hours::check_day(&minutes) {
        violations.add(format!("{field}[{index}]"), reason);
    }
}

fn time_of_day(
    violations: &mut Violations,
    field: &str,
    time: Option<&common::TimeOfDay>,
) -> Option<u16> {
    let Some(time) = time else {
        violations.add(field, "required");
        return None;
    };
    let minutes = hours::minutes_of_day(time.hours, time.minutes);
    rule(violations, field, minutes.map(|_| ()));
    minutes.ok()
}
