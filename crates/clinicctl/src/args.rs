//! Parsing of command-line values into contract types: enum names, dates, instants, money,
//! PHQ-9 answers, blood pressure. Every error names what was expected.

use crate::output;
use clinicnet_proto::common::v1::{Date, Money, TimeInterval};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// An enum value of the contracts by its short name (`booked`, `esketamine-nasal-spray`), its
/// full name (`APPOINTMENT_STATUS_BOOKED`) or its number.
pub fn enum_value(enum_full_name: &str, text: &str) -> Result<i32, String> {
    let desc = output::pool()
        .get_enum_by_name(enum_full_name)
        .ok_or_else(|| format!("no enum {enum_full_name}"))?;
    let wanted = text.trim().to_ascii_uppercase().replace('-', "_");
    if let Ok(number) = wanted.parse::<i32>()
        && desc.get_value(number).is_some()
    {
        return Ok(number);
    }
    for value in desc.values() {
        if value.number() == 0 {
            continue;
        }
        if value.name() == wanted
            || output::enum_short_name(&desc, value.number()).to_ascii_uppercase() == wanted
        {
            return Ok(value.number());
        }
    }
    Err(format!(
        "{text:?} is not one of: {}",
        enum_choices(enum_full_name).join(", ")
    ))
}

/// The short names of an enum's values (without the unspecified one).
pub fn enum_choices(enum_full_name: &str) -> Vec<String> {
    match output::pool().get_enum_by_name(enum_full_name) {
        Some(desc) => desc
            .values()
            .filter(|v| v.number() != 0)
            .map(|v| output::enum_short_name(&desc, v.number()).replace('_', "-"))
            .collect(),
        None => Vec::new(),
    }
}

/// A modality by name, with the everyday aliases (`iv`, `esketamine`, `spravato`, `integration`).
pub fn modality(text: &str) -> Result<i32, String> {
    use clinicnet_proto::common::v1::Modality;
    let normal = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    let alias = match normal.as_str() {
        "iv" | "ketamine" | "iv_ketamine" | "ketamine_iv" | "infusion" => {
            Some(Modality::IvKetamine)
        }
        "esketamine" | "spravato" | "nasal_spray" => Some(Modality::EsketamineNasalSpray),
        "lozenge" | "oral" => Some(Modality::OralKetamineLozenge),
        "integration" | "integration_coaching" => Some(Modality::IntegrationTherapy),
        "therapy" | "cbt" => Some(Modality::Psychotherapy),
        "video" => Some(Modality::Telehealth),
        _ => None,
    };
    match alias {
        Some(m) => Ok(m as i32),
        None => enum_value("clinicnet.common.v1.Modality", text),
    }
}

/// clap value parser for [`modality`].
pub fn parse_modality(text: &str) -> Result<i32, String> {
    modality(text)
}

/// A calendar date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let date: jiff::civil::Date = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a date YYYY-MM-DD: {e}"))?;
    Ok(date_to_proto(date))
}

/// A civil date as the contracts' Date.
pub fn date_to_proto(date: jiff::civil::Date) -> Date {
    Date {
        year: i32::from(date.year()),
        month: i32::from(date.month()),
        day: i32::from(date.day()),
    }
}

/// The contracts' Date as a civil date.
pub fn date_from_proto(date: &Date) -> Option<jiff::civil::Date> {
    jiff::civil::Date::new(
        i16::try_from(date.year).ok()?,
        i8::try_from(date.month).ok()?,
        i8::try_from(date.day).ok()?,
    )
    .ok()
}

/// An instant: RFC 3339 with an offset or `Z`, or a local `YYYY-MM-DDTHH:MM[:SS]` (or a date)
/// read in `zone`.
pub fn parse_instant(text: &str, zone: &TimeZone) -> Result<jiff::Timestamp, String> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = text.parse::<DateTime>() {
        return dt
            .to_zoned_datetime(zone.clone())
            .map(|z| z.timestamp())
            .map_err(|e| format!("{text:?}: {e}"));
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned_datetime(zone.clone())
            .map(|z| z.timestamp())
            .map_err(|e| format!("{text:?}: {e}"));
    }
    Err(format!(
        "{text:?} is neither RFC 3339 (2026-03-10T09:00:00-04:00) nor a local date-time (2026-03-10T09:00)"
    ))
}

/// A jiff instant as a protobuf Timestamp.
pub fn timestamp(ts: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ts.as_second(),
        nanos: ts.subsec_nanosecond(),
    }
}

/// A protobuf Timestamp as a jiff instant (the epoch when out of range).
pub fn from_timestamp(ts: &prost_types::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::new(ts.seconds, ts.nanos).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// [start, end) as the contracts' interval.
pub fn interval(start: jiff::Timestamp, end: jiff::Timestamp) -> TimeInterval {
    TimeInterval {
        start_time: Some(timestamp(start)),
        end_time: Some(timestamp(end)),
    }
}

/// US dollars as `906.51`, `$906.51` or `906` into integer cents — never through floating point.
pub fn parse_money(text: &str) -> Result<Money, String> {
    let clean = text.trim().trim_start_matches('$');
    let (whole, frac) = match clean.split_once('.') {
        Some((w, f)) => (w, f),
        None => (clean, ""),
    };
    let bad = || format!("{text:?} is not an amount of dollars like 906.51");
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || frac.len() > 2 {
        return Err(bad());
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let dollars: i64 = whole.parse().map_err(|_| bad())?;
    let cents: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    Ok(Money {
        currency_code: "USD".into(),
        amount_cents: dollars
            .checked_mul(100)
            .and_then(|d| d.checked_add(cents))
            .ok_or_else(bad)?,
    })
}

/// Nine PHQ-9 answers `0,1,2,…` (each 0–3).
pub fn parse_phq9(text: &str) -> Result<Vec<i32>, String> {
    let items: Vec<i32> = text
        .split(',')
        .map(|s| s.trim().parse::<i32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{text:?}: PHQ-9 is nine comma-separated answers 0-3"))?;
    if items.len() != 9 || items.iter().any(|i| !(0..=3).contains(i)) {
        return Err(format!(
            "{text:?}: PHQ-9 is nine comma-separated answers 0-3"
        ));
    }
    Ok(items)
}

/// Blood pressure `120/80` in mmHg.
pub fn parse_blood_pressure(text: &str) -> Result<(i32, i32), String> {
    let (s, d) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: blood pressure is SYSTOLIC/DIASTOLIC, e.g. 120/80"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<i32>()
            .map_err(|_| format!("{text:?}: blood pressure is SYSTOLIC/DIASTOLIC, e.g. 120/80"))
    };
    Ok((parse(s)?, parse(d)?))
}

/// A time zone by IANA name.
pub fn parse_zone(text: &str) -> Result<TimeZone, String> {
    TimeZone::get(text.trim()).map_err(|e| format!("{text:?} is not an IANA time zone: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn enums_parse_by_short_full_or_alias() {
        use clinicnet_proto::appointments::v1::AppointmentStatus;
        use clinicnet_proto::common::v1::Modality;
        let status = "clinicnet.appointments.v1.AppointmentStatus";
        assert_eq!(
            enum_value(status, "booked").unwrap(),
            AppointmentStatus::Booked as i32
        );
        assert_eq!(
            enum_value(status, "checked-in").unwrap(),
            AppointmentStatus::CheckedIn as i32
        );
        assert_eq!(
            enum_value(status, "APPOINTMENT_STATUS_NOSHOW").unwrap(),
            AppointmentStatus::Noshow as i32
        );
        assert!(enum_value(status, "unspecified").is_err());
        assert!(enum_value(status, "gone").unwrap_err().contains("booked"));
        assert_eq!(
            modality("spravato").unwrap(),
            Modality::EsketamineNasalSpray as i32
        );
        assert_eq!(
            modality("iv-ketamine").unwrap(),
            Modality::IvKetamine as i32
        );
    }

    #[test]
    fn instants_in_a_zone_respect_daylight_saving() {
        let ny = TimeZone::get("America/New_York").unwrap();
        let winter = parse_instant("2026-03-07T09:00", &ny).unwrap();
        let summer = parse_instant("2026-03-09T09:00", &ny).unwrap();
        assert_eq!(winter.to_string(), "2026-03-07T14:00:00Z");
        assert_eq!(summer.to_string(), "2026-03-09T13:00:00Z");
        assert_eq!(
            parse_instant("2026-03-09T09:00:00-07:00", &ny)
                .unwrap()
                .to_string(),
            "2026-03-09T16:00:00Z"
        );
    }

    #[test]
    fn money_is_parsed_to_cents_exactly() {
        assert_eq!(parse_money("906.51").unwrap().amount_cents, 90651);
        assert_eq!(parse_money("$30").unwrap().amount_cents, 3000);
        assert_eq!(parse_money("0.5").unwrap().amount_cents, 50);
        assert!(parse_money("1.234").is_err());
        assert!(parse_money("-3").is_err());
    }

    #[test]
    fn phq9_and_blood_pressure() {
        assert_eq!(
            parse_phq9("1,1,1,1,1,1,1,1,0").unwrap().iter().sum::<i32>(),
            8
        );
        assert!(parse_phq9("1,1,1").is_err());
        assert!(parse_phq9("4,0,0,0,0,0,0,0,0").is_err());
        assert_eq!(parse_blood_pressure("128/82").unwrap(), (128, 82));
    }

    proptest! {
        #[test]
        fn money_round_trips_through_text(cents in 0i64..10_000_000_000) {
            let text = format!("{}.{:02}", cents / 100, cents % 100);
            prop_assert_eq!(parse_money(&text).unwrap().amount_cents, cents);
        }
    }
}
