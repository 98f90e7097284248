//! iCalendar recurrence rules (RFC 5545 §3.3.10), the subset practice calendars export:
//! FREQ=DAILY|WEEKLY|MONTHLY with INTERVAL, COUNT, UNTIL, BYDAY, BYMONTHDAY and WKST. Any other
//! part is refused by name rather than expanded wrongly. Occurrences are computed in the
//! event's own time zone, so 09:00 stays 09:00 local across a daylight-saving change.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::{Timestamp, ToSpan as _, ZonedDateTime};

/// How often the rule repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    /// Every INTERVAL days.
    Daily,
    /// Every INTERVAL weeks.
    Weekly,
    /// Every INTERVAL months.
    Monthly,
}

/// The last occurrence allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// An instant (UTC form `…Z`).
    Instant(Timestamp),
    /// A local date-time in the event's zone (floating form).
    Local(DateTime),
    /// A date: occurrences on or before it.
    Date(Date),
}

/// A parsed RRULE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Frequency.
    pub freq: Freq,
    /// Step between periods (≥ 1).
    pub interval: i64,
    /// Most occurrences, DTSTART included.
    pub count: Option<usize>,
    /// Last occurrence allowed.
    pub until: Option<Until>,
    /// Weekdays (BYDAY).
    pub by_day: Vec<Weekday>,
    /// Days of the month (BYMONTHDAY), negative from the end.
    pub by_month_day: Vec<i8>,
    /// First day of the week (WKST), for WEEKLY with INTERVAL > 1.
    pub week_start: Weekday,
}

/// Reads an RRULE value such as `FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260430T235959Z`.
pub fn parse(value: &str) -> Result<Rule, String> {
    let mut freq = None;
    let mut rule = Rule {
        freq: Freq::Daily,
        interval: 1,
        count: None,
        until: None,
        by_day: Vec::new(),
        by_month_day: Vec::new(),
        week_start: Weekday::Monday,
    };
    for part in value.trim().split(';').filter(|p| !p.is_empty()) {
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| format!("RRULE part {part:?} is not KEY=VALUE"))?;
        match key.to_ascii_uppercase().as_str() {
            "FREQ" => {
                freq = Some(match val.to_ascii_uppercase().as_str() {
                    "DAILY" => Freq::Daily,
                    "WEEKLY" => Freq::Weekly,
                    "MONTHLY" => Freq::Monthly,
                    other => {
                        return Err(format!(
                            "RRULE FREQ={other} is not supported (DAILY, WEEKLY, MONTHLY)"
                        ));
                    }
                })
            }
            "INTERVAL" => {
                rule.interval = val
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| format!("RRULE INTERVAL={val} is not a number 1-1000"))?
            }
            "COUNT" => {
                rule.count = Some(
                    val.parse::<usize>()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| format!("RRULE COUNT={val} is not a positive number"))?,
                )
            }
            "UNTIL" => rule.until = Some(parse_until(val)?),
            "BYDAY" => {
                for day in val.split(',') {
                    rule.by_day.push(weekday(day).ok_or_else(|| {
                        format!("RRULE BYDAY={day} is not supported (plain MO..SU, no ordinals)")
                    })?);
                }
            }
            "BYMONTHDAY" => {
                for day in val.split(',') {
                    let n = day
                        .parse::<i8>()
                        .ok()
                        .filter(|n| *n != 0 && (-31..=31).contains(n))
                        .ok_or_else(|| format!("RRULE BYMONTHDAY={day} is not a day -31..31"))?;
                    rule.by_month_day.push(n);
                }
            }
            "WKST" => {
                rule.week_start =
                    weekday(val).ok_or_else(|| format!("RRULE WKST={val} is not a weekday"))?
            }
            other => return Err(format!("RRULE part {other} is not supported")),
        }
    }
    rule.freq = freq.ok_or_else(|| "RRULE without FREQ".to_owned())?;
    if rule.count.is_some() && rule.until.is_some() {
        return Err("RRULE has both COUNT and UNTIL".into());
    }
    if rule.freq == Freq::Weekly && !rule.by_month_day.is_empty() {
        return Err("RRULE BYMONTHDAY is not allowed with FREQ=WEEKLY".into());
    }
    Ok(rule)
}

fn weekday(text: &str) -> Option<Weekday> {
    Some(match text.trim().to_ascii_uppercase().as_str() {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

fn parse_until(value: &str) -> Result<Until, String> {
    let bad = || format!("RRULE UNTIL={value} is not a date or date-time");
    if let Some(utc) = value.strip_suffix('Z') {
        let local = DateTime::strptime("%Y%m%dT%H%M%S", utc).map_err(|_| bad())?;
        return local
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map(|z| Until::Instant(z.timestamp()))
            .map_err(|_| bad());
    }
    if value.contains('T') {
        return DateTime::strptime("%Y%m%dT%H%M%S", value)
            .map(Until::Local)
            .map_err(|_| bad());
    }
    Date::strptime("%Y%m%d", value)
        .map(Until::Date)
        .map_err(|_| bad())
}

/// Most candidate dates looked at for one rule (a guard against rules that never match).
const MAX_CANDIDATES: usize = 200_000;

/// The occurrences of `rule` for an event starting at `dtstart`, in order, DTSTART first,
/// up to (excluding) `horizon`. EXDATE is applied by the caller, after COUNT, as RFC 5545 says.
pub fn expand(rule: &Rule, dtstart: &ZonedDateTime, horizon: Timestamp) -> Vec<ZonedDateTime> {
    let zone = dtstart.time_zone().clone();
    let time = dtstart.datetime().time();
    let first_date = dtstart.date();
    let mut out = vec![dtstart.clone()];
    let mut seen = 0usize;
    let mut period = 0i64;
    'periods: while let Some(dates) = period_dates(rule, first_date, period) {
        period += 1;
        for date in dates {
            seen += 1;
            if seen > MAX_CANDIDATES {
                break 'periods;
            }
            if date < first_date {
                continue;
            }
            let local = date.to_datetime(time);
            let Ok(zoned) = local.to_zoned_datetime(zone.clone()) else {
                continue;
            };
            if zoned.timestamp() <= dtstart.timestamp() {
                continue;
            }
            if let Some(until) = rule.until {
                let past = match until {
                    Until::Instant(ts) => zoned.timestamp() > ts,
                    Until::Local(dt) => local > dt,
                    Until::Date(d) => date > d,
                };
                if past {
                    break 'periods;
                }
            }
            if rule.count.is_some_and(|c| out.len() >= c) || zoned.timestamp() >= horizon {
                break 'periods;
            }
            out.push(zoned);
        }
    }
    if let Some(count) = rule.count {
        out.truncate(count);
    }
    out.retain(|z| z.timestamp() < horizon);
    out
}

/// The candidate dates of the `n`-th period, in order; None past the representable range.
fn period_dates(rule: &Rule, first: Date, n: i64) -> Option<Vec<Date>> {
    let step = n.checked_mul(rule.interval)?;
    match rule.freq {
        Freq::Daily => {
            let date = first.checked_add(step.days()).ok()?;
            let keep = (rule.by_day.is_empty() || rule.by_day.contains(&date.weekday()))
                && (rule.by_month_day.is_empty() || month_day_matches(date, &rule.by_month_day));
            Some(if keep { vec![date] } else { Vec::new() })
        }
        Freq::Weekly => {
            let back = i64::from(first.weekday().since(rule.week_start));
            let week = first
                .checked_sub(back.days())
                .ok()?
                .checked_add((step * 7).days())
                .ok()?;
            let days = if rule.by_day.is_empty() {
                vec![first.weekday()]
            } else {
                rule.by_day.clone()
            };
            let mut dates: Vec<Date> = days
                .iter()
                .filter_map(|d| {
                    week.checked_add(i64::from(d.since(rule.week_start)).days())
                        .ok()
                })
                .collect();
            dates.sort();
            dates.dedup();
            Some(dates)
        }
        Freq::Monthly => {
            let month_start = first.first_of_month().checked_add(step.months()).ok()?;
            let last = month_start.last_of_month();
            let mut dates = Vec::new();
            let mut day = month_start;
            loop {
                let by_day_ok = rule.by_day.is_empty() || rule.by_day.contains(&day.weekday());
                let by_month_day_ok = if rule.by_month_day.is_empty() {
                    !rule.by_day.is_empty() || day.day() == first.day()
                } else {
                    month_day_matches(day, &rule.by_month_day)
                };
                if by_day_ok && by_month_day_ok {
                    dates.push(day);
                }
                if day >= last {
                    break;
                }
                day = day.tomorrow().ok()?;
            }
            Some(dates)
        }
    }
}

fn month_day_matches(date: Date, days: &[i8]) -> bool {
    let length = date.days_in_month();
    days.iter().any(|&d| {
        if d > 0 {
            date.day() == d
        } else {
            date.day() == length + d + 1
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    fn zoned(text: &str, zone: &str) -> ZonedDateTime {
        text.parse::<DateTime>()
            .unwrap()
            .to_zoned_datetime(TimeZone::get(zone).unwrap())
            .unwrap()
    }

    fn far() -> Timestamp {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn weekly_by_day_keeps_local_time_across_daylight_saving() {
        let rule = parse("FREQ=WEEKLY;BYDAY=TU,TH;COUNT=4").unwrap();
        let start = zoned("2026-03-03T09:00", "America/New_York");
        let got: Vec<String> = expand(&rule, &start, far())
            .iter()
            .map(|z| z.timestamp().to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "2026-03-03T14:00:00Z",
                "2026-03-05T14:00:00Z",
                "2026-03-10T13:00:00Z",
                "2026-03-12T13:00:00Z"
            ]
        );
    }

    #[test]
    fn until_in_utc_is_inclusive() {
        let rule = parse("FREQ=DAILY;UNTIL=20260305T140000Z").unwrap();
        let start = zoned("2026-03-03T09:00", "America/New_York");
        assert_eq!(expand(&rule, &start, far()).len(), 3);
    }

    #[test]
    fn interval_and_week_start() {
        let rule = parse("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;COUNT=3").unwrap();
        let start = zoned("2026-03-02T08:00", "America/Chicago");
        let dates: Vec<String> = expand(&rule, &start, far())
            .iter()
            .map(|z| z.date().to_string())
            .collect();
        assert_eq!(dates, vec!["2026-03-02", "2026-03-16", "2026-03-30"]);
    }

    #[test]
    fn monthly_by_month_day_skips_short_months() {
        let rule = parse("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=3").unwrap();
        let start = zoned("2026-01-31T10:00", "America/New_York");
        let dates: Vec<String> = expand(&rule, &start, far())
            .iter()
            .map(|z| z.date().to_string())
            .collect();
        assert_eq!(dates, vec!["2026-01-31", "2026-03-31", "2026-05-31"]);
    }

    #[test]
    fn the_horizon_bounds_an_endless_rule() {
        let rule = parse("FREQ=DAILY").unwrap();
        let start = zoned("2026-03-01T09:00", "America/New_York");
        let horizon: Timestamp = "2026-03-15T00:00:00Z".parse().unwrap();
        assert_eq!(expand(&rule, &start, horizon).len(), 14);
    }

    #[test]
    fn unsupported_parts_are_named() {
        assert!(parse("FREQ=YEARLY").unwrap_err().contains("YEARLY"));
        assert!(
            parse("FREQ=MONTHLY;BYDAY=1MO")
                .unwrap_err()
                .contains("BYDAY")
        );
        assert!(
            parse("FREQ=DAILY;BYSETPOS=1")
                .unwrap_err()
                .contains("BYSETPOS")
        );
        assert!(parse("INTERVAL=2").unwrap_err().contains("FREQ"));
    }

    proptest! {
        /// Occurrences are strictly increasing, never more than COUNT, all at DTSTART's local time.
        #[test]
        fn occurrences_are_ordered_and_counted(
            interval in 1i64..4,
            count in 1usize..60,
            days in proptest::sample::subsequence(vec!["MO","TU","WE","TH","FR","SA","SU"], 1..7),
            day_offset in 0i64..365,
        ) {
            let rule = parse(&format!("FREQ=WEEKLY;INTERVAL={interval};COUNT={count};BYDAY={}", days.join(","))).unwrap();
            let date = Date::new(2026, 1, 1).unwrap().checked_add(day_offset.days()).unwrap();
            let start = date.to_datetime(jiff::civil::time(9, 30, 0, 0)).to_zoned_datetime(TimeZone::get("America/New_York").unwrap()).unwrap();
            let got = expand(&rule, &start, far());
            prop_assert!(got.len() <= count);
            prop_assert!(!got.is_empty());
            for pair in got.windows(2) {
                prop_assert!(pair[0].timestamp() < pair[1].timestamp());
            }
            for z in &got {
                prop_assert_eq!(z.datetime().time(), jiff::civil::time(9, 30, 0, 0));
            }
        }
    }
}
