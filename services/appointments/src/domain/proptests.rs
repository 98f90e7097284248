//! Properties of slot and visit arithmetic in a clinic's time zone, around the 2026 US daylight
//! saving changes (2026-03-08 02:00 skipped, 2026-11-01 01:00–01:59 repeated).

use super::{
    clinic::Policy,
    schedule::{ChairPlan, Hours, generate},
    visit::{VisitDurations, shape},
    zone::ClinicZone,
};
use clinicnet_proto::{
    common::v1::{Modality, TimeOfDay},
    directory::v1::{DayHours, LocalTimeRange, SchedulingPolicy, WeeklyHours},
};
use proptest::prelude::*;
use time::{
    Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time,
    format_description::well_known::Rfc3339,
};

/// US zones that change at 02:00 local time on the same days.
const US_ZONES: [&str; 4] = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
];

fn date(month: Month, day: u8) -> Date {
    Date::from_calendar_date(2026, month, day).unwrap()
}

fn spring_change() -> Date {
    date(Month::March, 8)
}

fn fall_change() -> Date {
    date(Month::November, 1)
}

/// Days around both changes, and any day of 2026.
fn any_date() -> impl Strategy<Value = Date> {
    prop_oneof![
        (-2i64..=2).prop_map(|d| spring_change() + Duration::days(d)),
        (-2i64..=2).prop_map(|d| fall_change() + Duration::days(d)),
        (1u16..=365).prop_map(|ordinal| Date::from_ordinal_date(2026, ordinal).unwrap()),
    ]
}

fn any_us_zone() -> impl Strategy<Value = ClinicZone> {
    proptest::sample::select(US_ZONES.to_vec()).prop_map(|name| ClinicZone::parse(name).unwrap())
}

fn wall_clock(date: Date, hour: u8, minute: u8) -> PrimitiveDateTime {
    PrimitiveDateTime::new(date, Time::from_hms(hour, minute, 0).unwrap())
}

/// The instant `rendered` (RFC 3339 with offset) names, and its wall clock.
fn read_rendering(rendered: &str) -> (OffsetDateTime, PrimitiveDateTime) {
    let parsed = OffsetDateTime::parse(rendered, &Rfc3339).unwrap();
    (parsed, PrimitiveDateTime::new(parsed.date(), parsed.time()))
}

fn range(start: (i32, i32), end: (i32, i32)) -> LocalTimeRange {
    LocalTimeRange {
        start: Some(TimeOfDay {
            hours: start.0,
            minutes: start.1,
        }),
        end: Some(TimeOfDay {
            hours: end.0,
            minutes: end.1,
        }),
    }
}

fn every_day(interval: LocalTimeRange) -> WeeklyHours {
    WeeklyHours {
        days: (1..=7)
            .map(|day_of_week| DayHours {
                day_of_week,
                intervals: vec![interval],
            })
            .collect(),
    }
}

proptest! {
    /// Any local wall-clock time maps to an instant whose local rendering round-trips: the same
    /// wall clock, except a time the spring change skips, which moves forward by exactly the hour
    /// skipped; a time the fall change repeats takes its first occurrence.
    #[test]
    fn local_times_map_to_instants_whose_rendering_round_trips(
        zone in any_us_zone(), day in any_date(), hour in 0u8..24, minute in 0u8..60,
    ) {
        let asked = wall_clock(day, hour, minute);
        let instant = zone.instant(day, hour, minute).unwrap();
        let (rendered_instant, rendered_wall_clock) = read_rendering(&zone.render(instant));
        prop_assert_eq!(rendered_instant, instant);
        prop_assert_eq!(rendered_wall_clock, zone.local(instant));
        prop_assert_eq!(zone.local_date(instant), rendered_wall_clock.date());
        let skipped = day == spring_change() && hour == 2;
        if skipped {
            prop_assert_eq!(zone.local(instant), asked + Duration::hours(1));
        } else {
            prop_assert_eq!(zone.local(instant), asked);
        }
        let repeated = day == fall_change() && hour == 1;
        prop_assert_eq!(zone.local(instant + Duration::hours(1)) == asked, repeated);
    }

    /// Slots generated from local opening hours on any day around a change: every slot is exactly
    /// one visit long in real time, back to back from the opening instant, inside the window, and
    /// a day holds as many as fit in the real (not the wall-clock) length of its opening hours.
    #[test]
    fn generated_slots_fill_the_real_length_of_local_opening_hours(
        zone in any_us_zone(),
        day in any_date(),
        open in (0i32..12, 0i32..4),
        open_hours in 1i32..12,
        close_minutes in 0i32..4,
        length_minutes in 15i64..=240,
    ) {
        let open = (open.0, open.1 * 15);
        let close = (open.0 + open_hours, close_minutes * 15);
        let weekly = every_day(range(open, close));
        let hours = Hours { weekly: Some(&weekly), overrides: &[] };
        let length = Duration::minutes(length_minutes);
        let chairs = [ChairPlan { chair_id: "chair".into(), modalities: vec![(1, length)] }];
        let window = (
            zone.instant(day, 0, 0).unwrap(),
            zone.instant(day, 24, 0).unwrap(),
        );
        let slots = generate(&zone, hours, window, &chairs);

        let opening = zone.instant(day, open.0 as u8, open.1 as u8).unwrap();
        let closing = zone.instant(day, close.0 as u8, close.1 as u8).unwrap();
        let fitting = ((closing - opening).whole_minutes() / length_minutes).max(0) as usize;
        prop_assert_eq!(slots.len(), fitting);
        let mut expected_start = opening;
        for slot in &slots {
            prop_assert_eq!(slot.start, expected_start);
            prop_assert_eq!(slot.end - slot.start, length);
            prop_assert!(slot.start >= window.0 && slot.end <= window.1 && slot.end <= closing);
            prop_assert_eq!(zone.local_date(slot.start), day);
            prop_assert_eq!(read_rendering(&zone.render(slot.start)).0, slot.start);
            expected_start = slot.end;
        }
    }

    /// A visit placed in a slot occupies its real length (buffers, dose or session, monitoring),
    /// and its wall-clock length differs from that by exactly the change of UTC offset between
    /// its start and its end: an hour more across the spring change, an hour less across the fall
    /// change, nothing otherwise.
    #[test]
    fn a_visit_lasts_its_real_length_whatever_the_wall_clock_shows(
        zone in any_us_zone(),
        day in any_date(),
        hour in 0u8..24,
        minute in 0u8..60,
        modality in proptest::sample::select(vec![
            Modality::IvKetamine,
            Modality::EsketamineNasalSpray,
            Modality::OralKetamineLozenge,
            Modality::Psychotherapy,
        ]),
        buffers in (0i32..=30, 0i32..=30),
        slot_minutes in 30i64..=360,
    ) {
        let policy = Policy::of(Some(&SchedulingPolicy {
            buffer_before_minutes: buffers.0,
            buffer_after_minutes: buffers.1,
            ..Default::default()
        }));
        let durations = VisitDurations {
            esketamine_dosing: Duration::minutes(15),
            lozenge_visit: Duration::minutes(90),
        };
        let visit = shape(modality, &policy, &durations).unwrap();
        let slot_start = zone.instant(day, hour, minute).unwrap();
        let slot_end = slot_start + Duration::minutes(slot_minutes);
        let placed = visit.place(slot_start);

        prop_assert_eq!(placed.occupied_end - placed.occupied_start, visit.occupied());
        prop_assert_eq!(placed.visit_end - placed.visit_start, visit.length);
        prop_assert!(placed.occupied_start <= placed.visit_start && placed.visit_end <= placed.occupied_end);
        prop_assert_eq!(visit.fits(slot_start, slot_end), placed.occupied_end <= slot_end);

        let (start, start_wall_clock) = read_rendering(&zone.render(placed.visit_start));
        let (end, end_wall_clock) = read_rendering(&zone.render(placed.visit_end));
        let offset_change = Duration::seconds(i64::from(
            end.offset().whole_seconds() - start.offset().whole_seconds(),
        ));
        prop_assert_eq!(end_wall_clock - start_wall_clock, visit.length + offset_change);
        // The changes happen at 03:00 after the skipped hour and one hour after the first 01:00.
        let spring = zone.instant(spring_change(), 3, 0).unwrap();
        let fall = zone.instant(fall_change(), 1, 0).unwrap() + Duration::hours(1);
        let spans = |change: OffsetDateTime| placed.visit_start < change && change <= placed.visit_end;
        let expected_change = if spans(spring) {
            Duration::hours(1)
        } else if spans(fall) {
            -Duration::hours(1)
        } else {
            Duration::ZERO
        };
        prop_assert_eq!(offset_change, expected_change);
    }
}
