//! Valid directory entries for tests and benchmarks: clinics, providers and the small values
//! they are made of (NPIs with a correct check digit, dates relative to today, weekly hours).

use clinicnet_proto::common::v1::{self as common, Modality};
use clinicnet_proto::directory::v1 as pb;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use std::sync::atomic::{AtomicU64, Ordering};

const IV: i32 = Modality::IvKetamine as i32;
const ESKETAMINE: i32 = Modality::EsketamineNasalSpray as i32;
const INTEGRATION: i32 = Modality::IntegrationTherapy as i32;

/// A fresh NPI with a valid check digit (Luhn over the 80840 prefix and nine digits).
pub fn npi() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = uuid::Uuid::new_v4().as_u128() as u64 ^ NEXT.fetch_add(1, Ordering::Relaxed);
    let base = format!("{}", 100_000_000 + seed % 900_000_000);
    let sum: u32 = format!("80840{base}")
        .bytes()
        .rev()
        .map(|b| u32::from(b - b'0'))
        .enumerate()
        .map(|(i, d)| match (i % 2 == 0, d * 2) {
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
            (false, _) => d,
        })
        .sum();
    format!("{base}{}", (10 - sum % 10) % 10)
}

/// A protobuf date.
pub fn date(d: Date) -> common::Date {
    common::Date {
        year: i32::from(d.year()),
        month: i32::from(d.month()),
        day: i32::from(d.day()),
    }
}

/// Today in `zone`.
pub fn today_in(zone: &str) -> Date {
    let zone = TimeZone::get(zone).expect("a zone");
    jiff::Timestamp::now().to_zoned_datetime(zone).date()
}

/// The UTC date `days` from today.
pub fn days_from_today(days: i64) -> Date {
    today_in("UTC")
        .checked_add(jiff::Span::new().days(days))
        .expect("a date")
}

/// A local time range from `from` to `to` (hours, minutes).
pub fn range(from: (i32, i32), to: (i32, i32)) -> pb::LocalTimeRange {
    pb::LocalTimeRange {
        start: Some(common::TimeOfDay {
            hours: from.0,
            minutes: from.1,
        }),
        end: Some(common::TimeOfDay {
            hours: to.0,
            minutes: to.1,
        }),
    }
}

/// 09:00–17:00 on each of `weekdays` (ISO numbers, 1 = Monday).
pub fn hours_on(weekdays: &[i32]) -> pb::WeeklyHours {
    pb::WeeklyHours {
        days: weekdays
            .iter()
            .map(|&day| pb::DayHours {
                day_of_week: day,
                intervals: vec![range((9, 0), (17, 0))],
            })
            .collect(),
    }
}

/// A Coral Gables location at the given coordinates.
pub fn location(id: &str, latitude: f64, longitude: f64) -> pb::Location {
    pb::Location {
        location_id: id.into(),
        display_name: format!("Site {id}"),
        address: Some(common::Address {
            lines: vec!["2000 Ponce de Leon Blvd".into(), "Suite 300".into()],
            locality: "Coral Gables".into(),
            region: "FL".into(),
            postal_code: "33134".into(),
            country_code: "US".into(),
        }),
        coordinates: Some(common::GeoPoint {
            latitude,
            longitude,
        }),
    }
}

/// A REMS certification expiring on `expires_on`.
pub fn rems(expires_on: Date) -> pb::RemsCertification {
    pb::RemsCertification {
        certification_id: "REMS-HCS-001".into(),
        expires_on: Some(date(expires_on)),
    }
}

/// A valid bilingual Miami clinic offering IV ketamine, esketamine (REMS current for a year)
/// and integration therapy, open weekdays 09:00–17:00, with one IV chair.
pub fn clinic(name: &str) -> pb::Clinic {
    pb::Clinic {
        display_name: name.into(),
        npi: npi(),
        time_zone: "America/New_York".into(),
        languages: vec!["en".into(), "es".into()],
        weekly_hours: Some(hours_on(&[1, 2, 3, 4, 5])),
        contact: Some(pb::ClinicContact {
            phone: "+13055550100".into(),
            email: "frontdesk@clinic.example".into(),
            on_call: Some(pb::OnCallContact {
                display_name: "Clinical on-call".into(),
                phone: "+13055550199".into(),
                email: "oncall@clinic.example".into(),
            }),
        }),
        locations: vec![location("main", 25.7215, -80.2684)],
        chairs: vec![pb::Chair {
            location_id: "main".into(),
            display_name: "Infusion 1".into(),
            modalities: vec![IV],
            capacity: 1,
            ..Default::default()
        }],
        modalities: vec![IV, ESKETAMINE, INTEGRATION],
        rems_certification: Some(rems(days_from_today(365))),
        in_network_payer_ids: vec!["florida-blue".into()],
        scheduling_policy: Some(pb::SchedulingPolicy {
            buffer_before_minutes: 10,
            buffer_after_minutes: 15,
            minimum_notice_minutes: 120,
            booking_horizon_days: 90,
            iv_infusion_minutes: 40,
            iv_recovery_minutes: 45,
            esketamine_monitoring_minutes: 120,
            therapy_session_minutes: 60,
            late_cancellation_hours: 24,
        }),
        iv_preparation_instructions: vec![pb::LocalizedText {
            locale: common::Locale::EsUs as i32,
            text: "No coma durante las 6 horas antes de su infusión.".into(),
        }],
        ..Default::default()
    }
}

/// `clinic(name)` changed by `edit`.
pub fn clinic_with(name: &str, edit: impl FnOnce(&mut pb::Clinic)) -> pb::Clinic {
    let mut clinic = clinic(name);
    edit(&mut clinic);
    clinic
}

/// A bilingual psychiatrist serving `clinic_ids`, with a current Florida licence.
pub fn provider(clinic_ids: &[&str]) -> pb::Provider {
    pb::Provider {
        name: Some(common::PersonName {
            given_name: "Ana".into(),
            middle_name: String::new(),
            family_name: "García Márquez".into(),
        }),
        credentials: vec!["MD".into()],
        npi: npi(),
        board_certifications: vec![pb::BoardCertification {
            board: "American Board of Psychiatry and Neurology".into(),
            specialty: "Psychiatry".into(),
            expires_on: None,
        }],
        languages: vec!["es".into(), "en".into()],
        licenses: vec![pb::StateLicense {
            state: "FL".into(),
            license_number: "ME123456".into(),
            license_type: "MD".into(),
            expires_on: Some(date(days_from_today(400))),
            current: true,
        }],
        clinic_ids: clinic_ids.iter().map(|id| (*id).to_owned()).collect(),
        modalities: vec![IV, ESKETAMINE],
        ..Default::default()
    }
}
