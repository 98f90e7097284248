//! Properties of the availability import parsers on generated files around the 2026 US daylight
//! saving changes: local wall-clock times written in CSV rows and iCalendar events come back as
//! instants that render to the same wall clock in their zone, iCalendar durations are exact time,
//! weekly series keep their local time, and FHIR instants keep their meaning whatever their offset.

use super::{FileSlot, ParseOptions, csv, fhir, ics};
use clinicnet_proto::common::v1::Modality;
use jiff::{SignedDuration, Timestamp, ToSpan, civil, tz::TimeZone};
use proptest::prelude::*;

const ZONES: [&str; 4] = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
];

const MODALITIES: [(&str, Modality); 4] = [
    ("iv", Modality::IvKetamine),
    ("esketamine", Modality::EsketamineNasalSpray),
    ("integration", Modality::IntegrationTherapy),
    ("telehealth", Modality::Telehealth),
];

/// The clinic's zone is New York; the window is the whole of 2026.
fn options() -> ParseOptions {
    ParseOptions {
        zone: TimeZone::get(ZONES[0]).unwrap(),
        window: (
            "2026-01-01T00:00:00Z".parse().unwrap(),
            "2027-01-01T00:00:00Z".parse().unwrap(),
        ),
        default_chair: None,
        default_modality: None,
    }
}

/// A local slot: zone, wall-clock start, wall-clock end, chair and modality.
#[derive(Debug, Clone)]
struct LocalSlot {
    zone: &'static str,
    start: civil::DateTime,
    end: civil::DateTime,
    chair: String,
    modality: (&'static str, Modality),
}

/// Whether the spring change skips `time` (02:00–02:59 on 2026-03-08 in every US zone).
fn skipped(time: civil::DateTime) -> bool {
    time.date() == civil::date(2026, 3, 8) && time.hour() == 2
}

/// Local slots on the days around either change (or any day of the year), starting at any
/// quarter hour the clock shows, 15 minutes to 4 hours long on the wall clock.
fn any_local_slot() -> impl Strategy<Value = LocalSlot> {
    let day = prop_oneof![
        (-2i64..=2).prop_map(|d| civil::date(2026, 3, 8).checked_add(d.days()).unwrap()),
        (-2i64..=2).prop_map(|d| civil::date(2026, 11, 1).checked_add(d.days()).unwrap()),
        (0i64..360).prop_map(|d| civil::date(2026, 1, 1).checked_add(d.days()).unwrap()),
    ];
    (
        proptest::sample::select(ZONES.to_vec()),
        day,
        0i8..24,
        0i8..4,
        1i64..=16,
        "[A-Z][a-z]{0,8}( [0-9]{1,2})?",
        proptest::sample::select(MODALITIES.to_vec()),
    )
        .prop_map(|(zone, day, hour, quarter, quarters, chair, modality)| {
            let start = day.at(hour, quarter * 15, 0, 0);
            LocalSlot {
                zone,
                start,
                end: start + SignedDuration::from_mins(15 * quarters),
                chair,
                modality,
            }
        })
        .prop_filter(
            "a wall clock the spring change skips names no instant",
            |s| !skipped(s.start) && !skipped(s.end),
        )
}

fn wall_clock_in(instant: Timestamp, zone: &str) -> civil::DateTime {
    instant
        .to_zoned_datetime(TimeZone::get(zone).unwrap())
        .datetime()
}

fn render(time: civil::DateTime) -> String {
    time.strftime("%Y-%m-%dT%H:%M").to_string()
}

fn ical(time: civil::DateTime) -> String {
    time.strftime("%Y%m%dT%H%M%S").to_string()
}

/// Each parsed slot shows `expected`'s wall clock in `expected`'s zone, with its chair and modality.
fn assert_local_slots(got: &[FileSlot], expected: &[LocalSlot]) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), expected.len());
    for (slot, local) in got.iter().zip(expected) {
        prop_assert_eq!(wall_clock_in(slot.start, local.zone), local.start);
        prop_assert_eq!(slot.chair.as_str(), local.chair.as_str());
        prop_assert_eq!(slot.modality, local.modality.1 as i32);
    }
    Ok(())
}

proptest! {
    /// Any set of valid CSV rows written in local wall-clock time — in the clinic's zone or a
    /// row's own `time_zone` — round-trips: each slot's instants render back to the row's wall
    /// clock in that zone, in file order, with their lines, chairs, modalities and external ids.
    #[test]
    fn csv_rows_in_local_time_round_trip(
        slots in proptest::collection::vec(any_local_slot(), 1..30),
        zone_column in any::<bool>(),
    ) {
        let slots: Vec<LocalSlot> = slots.into_iter()
            .map(|s| if zone_column { s } else { LocalSlot { zone: ZONES[0], ..s } })
            .collect();
        let mut text = String::from("external_id,start,end,chair,modality,time_zone\n");
        for (i, slot) in slots.iter().enumerate() {
            let zone = if zone_column { slot.zone } else { "" };
            text.push_str(&format!(
                "row-{i},{},{},{},{},{zone}\n",
                render(slot.start), render(slot.end), slot.chair, slot.modality.0
            ));
        }
        let parsed = csv::parse(&text, &options()).unwrap();
        assert_local_slots(&parsed.slots, &slots)?;
        for (i, (slot, local)) in parsed.slots.iter().zip(&slots).enumerate() {
            prop_assert_eq!(wall_clock_in(slot.end, local.zone), local.end);
            prop_assert_eq!(slot.line, i + 2);
            prop_assert_eq!(&slot.external_id, &format!("row-{i}"));
        }
    }

    /// Any iCalendar events with a TZID start round-trip their local start; an event's DTEND comes
    /// back as its wall clock, and its DURATION as exact elapsed time even across a change.
    #[test]
    fn ical_events_keep_their_local_start_and_exact_duration(
        events in proptest::collection::vec((any_local_slot(), any::<bool>()), 1..20),
    ) {
        let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
        for (i, (slot, with_end)) in events.iter().enumerate() {
            let length = slot.end.duration_since(slot.start).as_mins();
            let end = if *with_end {
                format!("DTEND;TZID={}:{}", slot.zone, ical(slot.end))
            } else {
                format!("DURATION:PT{length}M")
            };
            text.push_str(&format!(
                "BEGIN:VEVENT\r\nUID:e{i}\r\nDTSTART;TZID={}:{}\r\n{end}\r\nLOCATION:{}\r\nX-CLINICNET-MODALITY:{}\r\nEND:VEVENT\r\n",
                slot.zone, ical(slot.start), slot.chair, slot.modality.0
            ));
        }
        text.push_str("END:VCALENDAR\r\n");
        let parsed = ics::parse(&text, &options()).unwrap();
        let expected: Vec<LocalSlot> = events.iter().map(|(s, _)| s.clone()).collect();
        assert_local_slots(&parsed.slots, &expected)?;
        for (i, (slot, (local, with_end))) in parsed.slots.iter().zip(&events).enumerate() {
            if *with_end {
                prop_assert_eq!(wall_clock_in(slot.end, local.zone), local.end);
            } else {
                prop_assert_eq!(slot.end.duration_since(slot.start), local.end.duration_since(local.start));
            }
            prop_assert_eq!(slot.line, 3 + 7 * i);
            prop_assert_eq!(&slot.external_id, &format!("e{i}"));
        }
    }

    /// A weekly series with COUNT gives COUNT occurrences seven local days apart, all at the first
    /// one's wall clock and with its exact length, whichever change they cross, each with its own
    /// external id and the line of the series.
    #[test]
    fn a_weekly_series_keeps_its_wall_clock_across_changes(
        first in any_local_slot(), count in 1usize..=12,
    ) {
        prop_assume!(first.start.date() < civil::date(2026, 10, 1) && first.start.hour() != 2);
        let text = format!(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:series\r\nDTSTART;TZID={zone}:{}\r\nDURATION:PT{}M\r\nRRULE:FREQ=WEEKLY;COUNT={count}\r\nLOCATION:{}\r\nX-CLINICNET-MODALITY:{}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            ical(first.start), first.end.duration_since(first.start).as_mins(), first.chair, first.modality.0,
            zone = first.zone,
        );
        let parsed = ics::parse(&text, &options()).unwrap();
        let expected: Vec<LocalSlot> = (0..count as i64)
            .map(|week| {
                let start = first.start.checked_add((7 * week).days()).unwrap();
                LocalSlot { start, ..first.clone() }
            })
            .collect();
        assert_local_slots(&parsed.slots, &expected)?;
        let mut ids: Vec<&str> = parsed.slots.iter().map(|s| s.external_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), parsed.slots.len());
        for slot in &parsed.slots {
            prop_assert_eq!(slot.end.duration_since(slot.start), first.end.duration_since(first.start));
            prop_assert_eq!(slot.line, 2);
        }
    }

    /// A free FHIR Slot written with any UTC offset comes back as the instants it names.
    #[test]
    fn fhir_instants_keep_their_meaning_whatever_the_offset(
        slots in proptest::collection::vec((0i64..364 * 24 * 4, 1i64..=16, -12i32..=14), 1..20),
    ) {
        let year: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut entries = Vec::new();
        let mut expected = Vec::new();
        for (i, (quarter, quarters, offset_hours)) in slots.iter().enumerate() {
            let start = year + SignedDuration::from_mins(15 * quarter);
            let end = start + SignedDuration::from_mins(15 * quarters);
            let zone = TimeZone::fixed(jiff::tz::offset(*offset_hours as i8));
            let written = |t: Timestamp| t.to_zoned_datetime(zone.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
            entries.push(format!(
                "{{\"resource\": {{\"resourceType\": \"Slot\", \"id\": \"s{i}\", \"status\": \"free\", \"start\": \"{}\", \"end\": \"{}\", \"schedule\": {{\"display\": \"C\"}}, \"serviceType\": [{{\"text\": \"iv\"}}]}}}}",
                written(start), written(end)
            ));
            expected.push((start, end));
        }
        let text = format!("{{\"resourceType\": \"Bundle\", \"entry\": [\n{}\n]}}", entries.join(",\n"));
        let parsed = fhir::parse(&text, &options()).unwrap();
        let got: Vec<(Timestamp, Timestamp)> = parsed.slots.iter().map(|s| (s.start, s.end)).collect();
        prop_assert_eq!(got, expected);
    }
}
