//! Requesting a prior authorization: by hand (the API) or when an esketamine visit is booked for
//! an insured patient without a valid one. The request carries the clinical facts of the
//! patient's intake in force and is offered to the payer's integrator.

use crate::{
    convert,
    domain::authorization::{self, age_years},
    events::{self, Cause, Event},
    store, work,
};
use clinicnet_proto::{
    common::v1::Modality,
    insurance::v1::{
        ClinicalFacts, Coverage, PriorAuthorization, PriorAuthorizationStatus, RequestedService,
    },
};
use sqlx::PgConnection;

/// Session codes of esketamine, either of which a booking may end up billed with.
pub const ESKETAMINE_SESSION_CODES: [&str; 2] = ["G2082", "G2083"];

/// What a request is for.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    /// Coverage it is requested under.
    pub coverage: &'a Coverage,
    /// Clinic that will render the services.
    pub clinic_id: &'a str,
    /// Visit it is for, may be empty.
    pub appointment_id: &'a str,
    /// Course it is for, may be empty.
    pub course_id: &'a str,
    /// Ordering provider's NPI, may be empty.
    pub provider_npi: &'a str,
    /// Services asked for.
    pub services: Vec<RequestedService>,
}

/// Why a request cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The patient has no intake on file, so there are no clinical facts to send.
    #[error("the patient has no intake on file")]
    NoIntake,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Creates the request, offers it to the integrator and publishes PriorAuthorizationRequested.
pub async fn request(
    conn: &mut PgConnection,
    new: NewRequest<'_>,
    cause: Cause<'_>,
) -> Result<PriorAuthorization, RequestError> {
    let patient_id = &new.coverage.patient_id;
    let intake = store::patients::intake(conn, patient_id)
        .await?
        .ok_or(RequestError::NoIntake)?;
    let today = convert::today();
    let age = store::patients::get(conn, patient_id)
        .await?
        .and_then(|p| p.birth_date)
        .as_ref()
        .and_then(convert::date)
        .map_or(0, |birth| age_years(birth, today));
    let pa = PriorAuthorization {
        prior_authorization_id: uuid::Uuid::now_v7().to_string(),
        patient_id: patient_id.clone(),
        coverage_id: new.coverage.coverage_id.clone(),
        payer_id: new.coverage.payer_id.clone(),
        clinic_id: new.clinic_id.to_owned(),
        appointment_id: new.appointment_id.to_owned(),
        course_id: new.course_id.to_owned(),
        provider_npi: new.provider_npi.to_owned(),
        services: new.services,
        clinical_facts: Some(ClinicalFacts {
            diagnosis_codes: intake.diagnosis_codes,
            failed_trials: intake.failed_trials,
            baseline_phq9: intake.baseline_phq9.map_or(0, |p| p.total_score),
            latest_phq9: None,
            patient_age_years: age,
        }),
        status: PriorAuthorizationStatus::Requested as i32,
        decision: None,
        request_time: Some(convert::timestamp(convert::now())),
        decision_time: None,
        version: 1,
    };
    store::authorizations::insert(conn, &pa).await?;
    work::offer_prior_authorization(conn, &pa, new.coverage).await?;
    events::publish(conn, Event::PriorAuthorizationRequested(&pa), cause).await?;
    Ok(pa)
}

/// A booked visit as far as authorization is concerned.
#[derive(Debug, Clone)]
pub struct Booking<'a> {
    /// The visit.
    pub appointment_id: &'a str,
    /// Its clinic.
    pub clinic_id: &'a str,
    /// The patient.
    pub patient_id: &'a str,
    /// Modality.
    pub modality: Modality,
    /// Local date of the visit.
    pub date: time::Date,
    /// Planned dose.
    pub planned_dose_mg: i32,
    /// Course, may be empty.
    pub course_id: &'a str,
}

/// Requests an authorization for a booked esketamine visit when the patient's primary plan needs
/// one and none is approved for the visit date or awaiting a decision. Returns the request made.
pub async fn on_booking(
    conn: &mut PgConnection,
    booking: &Booking<'_>,
    cause: Cause<'_>,
) -> Result<Option<PriorAuthorization>, RequestError> {
    if booking.modality != Modality::EsketamineNasalSpray {
        return Ok(None);
    }
    let Some(coverage) =
        store::coverages::primary_on(conn, booking.patient_id, booking.date).await?
    else {
        return Ok(None);
    };
    let Some(plan) = store::plans::get(conn, &coverage.plan_id).await? else {
        return Ok(None);
    };
    let requires = |code: &str| plan.codes_requiring_authorization.iter().any(|c| c == code);
    let sessions: Vec<&str> = ESKETAMINE_SESSION_CODES
        .into_iter()
        .filter(|c| requires(c))
        .collect();
    if sessions.is_empty() {
        return Ok(None);
    }
    let approvals =
        store::authorizations::approvals(conn, booking.patient_id, &coverage.payer_id).await?;
    let undecided =
        store::authorizations::undecided(conn, booking.patient_id, &coverage.payer_id).await?;
    if !authorization::booking_needs_request(&approvals, &sessions, booking.date, undecided) {
        return Ok(None);
    }
    let mut services: Vec<RequestedService> = sessions
        .iter()
        .map(|code| RequestedService {
            procedure_code: (*code).to_owned(),
            units: 1,
        })
        .collect();
    if plan.clinic_bills_drug && requires("J0013") && booking.planned_dose_mg > 0 {
        services.push(RequestedService {
            procedure_code: "J0013".into(),
            units: booking.planned_dose_mg,
        });
    }
    let new = NewRequest {
        coverage: &coverage,
        clinic_id: booking.clinic_id,
        appointment_id: booking.appointment_id,
        course_id: booking.course_id,
        provider_npi: "",
        services,
    };
    request(conn, new, cause).await.map(Some)
}
