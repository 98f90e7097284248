//! Stored rows to contract messages and wire values to domain values: timestamps, dates, slots,
//! holds, visits, patients, plans and courses.

use crate::{
    domain::{course::Phase, lifecycle::Status},
    store::{
        appointments::AppointmentRow,
        availability::SlotRow,
        bounds,
        courses::{CourseRow, PlanRow, SessionRow},
        holds::HoldRow,
        patients::PatientRow,
    },
};
use clinicnet_proto::{
    appointments::v1::{
        Appointment, Cancellation, Completion, Course, CoursePhase, CoursePlan, CoursePreferences,
        CourseSession, CourseStatus, HoldStatus, IntegrationWindow, Patient, PatientContacts, Slot,
        SlotHold, SlotStatus,
    },
    common::v1::{Date as ProtoDate, PersonName, TimeInterval},
};
use prost::Message;
use time::{Date, Month, OffsetDateTime};

/// An instant on the wire.
pub fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// An instant from the wire; None when out of range.
pub fn instant(t: &prost_types::Timestamp) -> Option<OffsetDateTime> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}

/// `[start, end)` on the wire.
pub fn interval(start: OffsetDateTime, end: OffsetDateTime) -> TimeInterval {
    TimeInterval {
        start_time: Some(timestamp(start)),
        end_time: Some(timestamp(end)),
    }
}

/// A date on the wire.
pub fn date(d: Date) -> ProtoDate {
    ProtoDate {
        year: d.year(),
        month: i32::from(u8::from(d.month())),
        day: i32::from(d.day()),
    }
}

/// A date from the wire; None when it is not a calendar date.
pub fn calendar_date(d: &ProtoDate) -> Option<Date> {
    let month = Month::try_from(u8::try_from(d.month).ok()?).ok()?;
    Date::from_calendar_date(d.year, month, u8::try_from(d.day).ok()?).ok()
}

/// A slot status from its stored code.
pub fn slot_status(code: &str) -> SlotStatus {
    match code {
        "free" => SlotStatus::Free,
        "busy" => SlotStatus::Busy,
        "busy-tentative" => SlotStatus::BusyTentative,
        "busy-unavailable" => SlotStatus::BusyUnavailable,
        "entered-in-error" => SlotStatus::EnteredInError,
        _ => SlotStatus::Unspecified,
    }
}

/// The stored code of a slot status filter.
pub fn slot_status_code(status: SlotStatus) -> Option<&'static str> {
    match status {
        SlotStatus::Free => Some("free"),
        SlotStatus::Busy => Some("busy"),
        SlotStatus::BusyTentative => Some("busy-tentative"),
        SlotStatus::BusyUnavailable => Some("busy-unavailable"),
        SlotStatus::EnteredInError => Some("entered-in-error"),
        SlotStatus::Unspecified => None,
    }
}

/// A slot.
pub fn slot(row: &SlotRow) -> Slot {
    let (start, end) = row.times();
    Slot {
        slot_id: row.slot_id.to_string(),
        clinic_id: row.clinic_id.clone(),
        chair_id: row.chair_id.clone().unwrap_or_default(),
        provider_id: row.provider_id.clone().unwrap_or_default(),
        modality: i32::from(row.modality),
        start_time: Some(timestamp(start)),
        end_time: Some(timestamp(end)),
        status: slot_status(&row.status) as i32,
        sync_version: u64::try_from(row.sync_version).unwrap_or(0),
        external_id: row.external_id.clone(),
    }
}

/// A hold.
pub fn hold(row: &HoldRow) -> SlotHold {
    let status = match row.status.as_str() {
        "active" if row.lapsed => HoldStatus::Expired,
        "active" => HoldStatus::Active,
        "consumed" => HoldStatus::Consumed,
        "released" => HoldStatus::Released,
        "expired" => HoldStatus::Expired,
        _ => HoldStatus::Unspecified,
    };
    SlotHold {
        hold_id: row.hold_id.to_string(),
        slot_id: row.slot_id.to_string(),
        patient_id: row.patient_id.map(|p| p.to_string()).unwrap_or_default(),
        status: status as i32,
        expire_time: Some(timestamp(row.expire_time)),
        create_time: Some(timestamp(row.create_time)),
    }
}

/// A visit.
pub fn appointment(row: &AppointmentRow) -> Appointment {
    let cancellation = row.cancel_time.map(|cancel_time| Cancellation {
        reason: i32::from(row.cancel_reason.unwrap_or(0)),
        note: row.cancel_note.clone().unwrap_or_default(),
        late: row.cancel_late.unwrap_or(false),
        cancel_time: Some(timestamp(cancel_time)),
    });
    let completion = row
        .completion
        .as_deref()
        .and_then(|bytes| Completion::decode(bytes).ok());
    Appointment {
        appointment_id: row.appointment_id.to_string(),
        clinic_id: row.clinic_id.clone(),
        chair_id: row.chair_id.clone().unwrap_or_default(),
        provider_id: row.provider_id.clone(),
        patient_id: row.patient_id.to_string(),
        modality: i32::from(row.modality),
        status: Status::from_code(&row.status).map_or(0, |s| s.to_proto() as i32),
        start_time: Some(timestamp(row.start_time)),
        end_time: Some(timestamp(row.end_time)),
        clinic_time_zone: row.clinic_time_zone.clone(),
        planned_dose_mg: row.planned_dose_mg,
        course_id: row.course_id.map(|c| c.to_string()).unwrap_or_default(),
        course_session_number: row.course_session_number,
        slot_id: row.slot_id.to_string(),
        integration_source_appointment_id: row
            .integration_source_appointment_id
            .map(|s| s.to_string())
            .unwrap_or_default(),
        cancellation,
        check_in_time: row.check_in_time.map(timestamp),
        completion,
        no_show_time: row.no_show_time.map(timestamp),
        reschedule_count: row.reschedule_count,
        version: u64::try_from(row.version).unwrap_or(0),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
    }
}

/// The integration window a fulfilled visit opened, if any.
pub fn integration_window(row: &AppointmentRow) -> Option<IntegrationWindow> {
    row.integration_window.as_ref().map(|window| {
        let (start, end) = bounds(window);
        IntegrationWindow {
            source_appointment_id: row.appointment_id.to_string(),
            window: Some(interval(start, end)),
        }
    })
}

/// A patient.
pub fn patient(row: &PatientRow) -> Patient {
    Patient {
        patient_id: row.patient_id.to_string(),
        name: Some(PersonName {
            given_name: row.given_name.clone(),
            middle_name: row.middle_name.clone(),
            family_name: row.family_name.clone(),
        }),
        birth_date: Some(date(row.birth_date)),
        preferred_locale: i32::from(row.locale),
        contacts: Some(PatientContacts {
            email: row.email.clone(),
            email_consent: row.email_consent,
            mobile_phone: row.mobile_phone.clone(),
            sms_consent: row.sms_consent,
            consent_update_time: row.consent_update_time.map(timestamp),
        }),
        registered_clinic_id: row.registered_clinic_id.clone(),
        version: u64::try_from(row.version).unwrap_or(0),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
    }
}

/// A configured plan.
pub fn plan(row: &PlanRow) -> CoursePlan {
    CoursePlan {
        plan_code: row.plan_code.clone(),
        display_name: row.display_name.clone(),
        modality: i32::from(row.modality),
        phases: row
            .phases
            .iter()
            .map(|p| CoursePhase {
                name: p.name.clone(),
                session_count: p.session_count,
                duration_days: p.duration_days,
                max_sessions_per_week: p.max_sessions_per_week,
                min_days_between_sessions: p.min_days_between_sessions,
                planned_dose_mg: p.planned_dose_mg,
                first_session_dose_mg: p.first_session_dose_mg,
            })
            .collect(),
    }
}

/// The domain phases of a plan.
pub fn phases(plan: &CoursePlan) -> Vec<Phase> {
    plan.phases
        .iter()
        .map(|p| Phase {
            name: p.name.clone(),
            session_count: p.session_count,
            duration_days: p.duration_days,
            max_sessions_per_week: p.max_sessions_per_week,
            min_days_between_sessions: p.min_days_between_sessions,
            planned_dose_mg: p.planned_dose_mg,
            first_session_dose_mg: p.first_session_dose_mg,
        })
        .collect()
}

/// A course with its sessions.
pub fn course(row: &CourseRow, sessions: &[SessionRow]) -> Course {
    let status = match row.status.as_str() {
        "proposed" => CourseStatus::Proposed,
        "booked" => CourseStatus::Booked,
        "completed" => CourseStatus::Completed,
        _ => CourseStatus::Unspecified,
    };
    Course {
        course_id: row.course_id.to_string(),
        patient_id: row.patient_id.to_string(),
        clinic_id: row.clinic_id.clone(),
        plan: CoursePlan::decode(row.plan.as_slice()).ok(),
        status: status as i32,
        start_date: Some(date(row.start_date)),
        preferences: CoursePreferences::decode(row.preferences.as_slice()).ok(),
        sessions: sessions
            .iter()
            .map(|s| CourseSession {
                session_number: s.session_number,
                phase_name: s.phase_name.clone(),
                earliest_date: Some(date(s.earliest_date)),
                latest_date: Some(date(s.latest_date)),
                planned_dose_mg: s.planned_dose_mg,
                appointment_id: s.appointment_id.map(|a| a.to_string()).unwrap_or_default(),
            })
            .collect(),
        version: u64::try_from(row.version).unwrap_or(0),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
    }
}
