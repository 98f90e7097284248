//! Availability generated from a clinic's weekly hours and date overrides × its chairs: for each
//! local date of the window, each open interval in local wall-clock time is turned into instants
//! in the clinic's time zone (so 9:00 stays 9:00 across a DST change) and filled back to back with
//! slots as long as a whole visit of each modality the chair takes.

use super::zone::ClinicZone;
use clinicnet_proto::{
    common::v1::{Date as ProtoDate, TimeOfDay},
    directory::v1::{DateOverride, LocalTimeRange, WeeklyHours},
};
use time::{Date, Duration, OffsetDateTime};

/// A chair and, per modality it takes, how long a slot must be for the whole visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChairPlan {
    /// The chair.
    pub chair_id: String,
    /// (modality, slot length) pairs.
    pub modalities: Vec<(i32, Duration)>,
}

/// A generated free slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedSlot {
    /// The chair.
    pub chair_id: String,
    /// The modality.
    pub modality: i32,
    /// Start.
    pub start: OffsetDateTime,
    /// End (exclusive).
    pub end: OffsetDateTime,
}

/// The clinic's opening hours and exceptions.
#[derive(Debug, Clone, Copy)]
pub struct Hours<'a> {
    /// Regular weekly hours.
    pub weekly: Option<&'a WeeklyHours>,
    /// Dated exceptions.
    pub overrides: &'a [DateOverride],
}

fn same_date(proto: Option<&ProtoDate>, date: Date) -> bool {
    proto.is_some_and(|p| {
        p.year == date.year()
            && p.month == i32::from(u8::from(date.month()))
            && p.day == i32::from(date.day())
    })
}

fn time_of_day(t: Option<&TimeOfDay>) -> Option<(u8, u8)> {
    let t = t?;
    let hours = u8::try_from(t.hours).ok()?;
    let minutes = u8::try_from(t.minutes).ok()?;
    (hours < 24 && minutes < 60 || hours == 24 && minutes == 0).then_some((hours, minutes))
}

impl Hours<'_> {
    /// The open intervals of the local `date`.
    pub fn intervals_on(&self, date: Date) -> Vec<&LocalTimeRange> {
        if let Some(exception) = self
            .overrides
            .iter()
            .find(|o| same_date(o.date.as_ref(), date))
        {
            return if exception.closed {
                Vec::new()
            } else {
                exception.intervals.iter().collect()
            };
        }
        let weekday = i32::from(date.weekday().number_from_monday());
        self.weekly
            .into_iter()
            .flat_map(|w| w.days.iter())
            .filter(|d| d.day_of_week == weekday)
            .flat_map(|d| d.intervals.iter())
            .collect()
    }
}

/// Free slots for `[from, to)`: every chair, every modality it takes, back to back inside every
/// open interval, only whole slots inside the window.
pub fn generate(
    zone: &ClinicZone,
    hours: Hours<'_>,
    window: (OffsetDateTime, OffsetDateTime),
    chairs: &[ChairPlan],
) -> Vec<GeneratedSlot> {
    let (from, to) = window;
    let mut slots = Vec::new();
    let last = zone.local_date(to);
    let mut date = zone
        .local_date(from)
        .previous_day()
        .unwrap_or(zone.local_date(from));
    while date <= last {
        for interval in hours.intervals_on(date) {
            let (Some((sh, sm)), Some((eh, em))) = (
                time_of_day(interval.start.as_ref()),
                time_of_day(interval.end.as_ref()),
            ) else {
                continue;
            };
            let (Some(open), Some(close)) =
                (zone.instant(date, sh, sm), zone.instant(date, eh, em))
            else {
                continue;
            };
            for chair in chairs {
                for &(modality, length) in &chair.modalities {
                    if length <= Duration::ZERO {
                        continue;
                    }
                    let mut start = open;
                    while start + length <= close {
                        let end = start + length;
                        if start >= from && end <= to {
                            slots.push(GeneratedSlot {
                                chair_id: chair.chair_id.clone(),
                                modality,
                                start,
                                end,
                            });
                        }
                        start = end;
                    }
                }
            }
        }
        let Some(next) = date.next_day() else { break };
        date = next;
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::directory::v1::DayHours;
    use time::macros::datetime;

    fn range(sh: i32, eh: i32) -> LocalTimeRange {
        LocalTimeRange {
            start: Some(TimeOfDay {
                hours: sh,
                minutes: 0,
            }),
            end: Some(TimeOfDay {
                hours: eh,
                minutes: 0,
            }),
        }
    }

    fn every_day_nine_to_one() -> WeeklyHours {
        WeeklyHours {
            days: (1..=7)
                .map(|d| DayHours {
                    day_of_week: d,
                    intervals: vec![range(9, 13)],
                })
                .collect(),
        }
    }

    #[test]
    fn local_hours_keep_their_wall_clock_across_the_spring_change() {
        let zone = ClinicZone::parse("America/New_York").unwrap();
        let weekly = every_day_nine_to_one();
        let chairs = [ChairPlan {
            chair_id: "c1".into(),
            modalities: vec![(2, Duration::hours(2))],
        }];
        let slots = generate(
            &zone,
            Hours {
                weekly: Some(&weekly),
                overrides: &[],
            },
            (
                datetime!(2027-03-13 00:00 UTC),
                datetime!(2027-03-15 00:00 UTC),
            ),
            &chairs,
        );
        let starts: Vec<String> = slots.iter().map(|s| zone.render(s.start)).collect();
        assert_eq!(
            starts,
            [
                "2027-03-13T09:00:00-05:00",
                "2027-03-13T11:00:00-05:00",
                "2027-03-14T09:00:00-04:00",
                "2027-03-14T11:00:00-04:00"
            ]
        );
        assert_eq!(slots[2].start, datetime!(2027-03-14 13:00 UTC));
    }

    #[test]
    fn overrides_close_days_or_replace_their_hours() {
        let zone = ClinicZone::parse("America/New_York").unwrap();
        let weekly = every_day_nine_to_one();
        let overrides = [
            DateOverride {
                date: Some(ProtoDate {
                    year: 2027,
                    month: 1,
                    day: 6,
                }),
                closed: true,
                ..Default::default()
            },
            DateOverride {
                date: Some(ProtoDate {
                    year: 2027,
                    month: 1,
                    day: 7,
                }),
                closed: false,
                intervals: vec![range(14, 15)],
                reason: "half day".into(),
            },
        ];
        let chairs = [ChairPlan {
            chair_id: "c1".into(),
            modalities: vec![(1, Duration::minutes(60)), (4, Duration::minutes(90))],
        }];
        let slots = generate(
            &zone,
            Hours {
                weekly: Some(&weekly),
                overrides: &overrides,
            },
            (
                datetime!(2027-01-06 05:00 UTC),
                datetime!(2027-01-08 05:00 UTC),
            ),
            &chairs,
        );
        let rendered: Vec<(i32, String)> = slots
            .iter()
            .map(|s| (s.modality, zone.render(s.start)))
            .collect();
        assert_eq!(rendered, [(1, "2027-01-07T14:00:00-05:00".to_owned())]);
    }
}
