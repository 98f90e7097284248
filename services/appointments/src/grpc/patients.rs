//! PatientsService: registering and updating patients, reading them, and their intakes. Every read
//! or change is written to the audit record in the same transaction; partners reach only patients
//! registered at, or with a visit at, one of their clinics.

use super::{State, caller, convert, idempotent, validate};
use crate::{events::publish, store};
use clinicnet_proto::appointments::v1::{
    GetIntakeRequest, GetIntakeResponse, GetPatientRequest, GetPatientResponse, Intake,
    ListPatientsRequest, ListPatientsResponse, Patient, Phq9, RecordIntakeRequest,
    RecordIntakeResponse, RegisterPatientRequest, RegisterPatientResponse, UpdatePatientRequest,
    UpdatePatientResponse,
};
use clinicnet_proto::common::v1::{AntidepressantClass, Locale};
use platform::{
    ApiError, audit,
    auth::{Caller, Role},
    error::Violations,
    paging::Page,
};
use sqlx::PgConnection;
use store::patients::PatientDetails;
use time::{OffsetDateTime, macros::date};
use tonic::Request;
use uuid::Uuid;

/// NOT_FOUND unless the patient exists; PERMISSION_DENIED unless the caller may see them.
pub(super) async fn require_access(
    conn: &mut PgConnection,
    caller: &Caller,
    patient_id: Uuid,
) -> Result<store::patients::PatientRow, ApiError> {
    let patient = store::patients::get(conn, patient_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("patient {patient_id}")))?;
    match caller.role {
        Role::Ops => Ok(patient),
        Role::PartnerClinic
            if store::patients::seen_at(conn, patient_id, &caller.clinic_ids).await? =>
        {
            Ok(patient)
        }
        _ => Err(ApiError::PermissionDenied(
            "the patient is not seen at a clinic in the caller's scope".into(),
        )),
    }
}

fn text(v: &mut Violations, field: &str, value: &str, required: bool) {
    if required && value.trim().is_empty() {
        v.add(field, "required");
    } else if value.chars().count() > 100 {
        v.add(field, "at most 100 characters");
    }
}

fn details(v: &mut Violations, patient: Option<&Patient>) -> Option<PatientDetails> {
    let Some(patient) = patient else {
        v.add("patient", "required");
        return None;
    };
    let name = patient.name.clone().unwrap_or_default();
    if patient.name.is_none() {
        v.add("patient.name", "required");
    } else {
        text(v, "patient.name.given_name", &name.given_name, true);
        text(v, "patient.name.middle_name", &name.middle_name, false);
        text(v, "patient.name.family_name", &name.family_name, true);
    }
    let birth_date = match patient.birth_date.as_ref().map(convert::calendar_date) {
        None => {
            v.add("patient.birth_date", "required");
            None
        }
        Some(None) => {
            v.add("patient.birth_date", "not a calendar date");
            None
        }
        Some(Some(d)) if d < date!(1900 - 01 - 01) || d > OffsetDateTime::now_utc().date() => {
            v.add("patient.birth_date", "must be from 1900 to today");
            None
        }
        Some(Some(d)) => Some(d),
    };
    if Locale::try_from(patient.preferred_locale).is_err() {
        v.add("patient.preferred_locale", "unknown locale");
    }
    let contacts = patient.contacts.clone().unwrap_or_default();
    if !contacts.email.is_empty() && !validate::is_email(&contacts.email) {
        v.add("patient.contacts.email", "not an email address");
    }
    if !contacts.mobile_phone.is_empty() && !validate::is_e164(&contacts.mobile_phone) {
        v.add(
            "patient.contacts.mobile_phone",
            "not an E.164 phone number (e.g. +13055550123)",
        );
    }
    if contacts.email_consent && contacts.email.is_empty() {
        v.add(
            "patient.contacts.email_consent",
            "consent to email needs an email address",
        );
    }
    if contacts.sms_consent && contacts.mobile_phone.is_empty() {
        v.add(
            "patient.contacts.sms_consent",
            "consent to SMS needs a mobile phone",
        );
    }
    Some(PatientDetails {
        given_name: name.given_name.trim().to_owned(),
        middle_name: name.middle_name.trim().to_owned(),
        family_name: name.family_name.trim().to_owned(),
        birth_date: birth_date?,
        locale: i16::try_from(patient.preferred_locale).unwrap_or(0),
        email: contacts.email,
        email_consent: contacts.email_consent,
        mobile_phone: contacts.mobile_phone,
        sms_consent: contacts.sms_consent,
    })
}

/// RegisterPatient.
pub async fn register(
    state: &State,
    request: Request<RegisterPatientRequest>,
) -> Result<RegisterPatientResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let details = details(&mut v, req.patient.as_ref());
    let clinic_id = req
        .patient
        .as_ref()
        .map(|p| p.registered_clinic_id.clone())
        .unwrap_or_default();
    validate::text_id(&mut v, "patient.registered_clinic_id", &clinic_id);
    v.finish()?;
    let details = details.ok_or_else(|| ApiError::invalid("patient", "invalid"))?;
    caller.require_clinic(&clinic_id)?;
    idempotent(
        &state.pool,
        &caller,
        "RegisterPatient",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            store::directory::clinic(conn, &clinic_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("clinic {clinic_id}")))?;
            let patient_id = Uuid::now_v7();
            let row = store::patients::insert(conn, patient_id, &clinic_id, &details).await?;
            audit::record(conn, &caller, "patient.register", &patient_id.to_string()).await?;
            let patient = convert::patient(&row);
            publish::patient(conn, &patient, true, &req.request_id).await?;
            Ok(RegisterPatientResponse {
                patient: Some(patient),
            })
        },
    )
    .await
}

/// UpdatePatient.
pub async fn update(
    state: &State,
    request: Request<UpdatePatientRequest>,
) -> Result<UpdatePatientResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let details = details(&mut v, req.patient.as_ref());
    let patient_id = validate::id(
        &mut v,
        "patient.patient_id",
        req.patient.as_ref().map_or("", |p| &p.patient_id),
    );
    if req.expected_version == 0 {
        v.add("expected_version", "required: the version read");
    }
    v.finish()?;
    let (Some(details), Some(patient_id)) = (details, patient_id) else {
        return Err(ApiError::invalid("patient", "invalid"));
    };
    let expected = i64::try_from(req.expected_version).unwrap_or(i64::MAX);
    idempotent(
        &state.pool,
        &caller,
        "UpdatePatient",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            require_access(conn, &caller, patient_id).await?;
            let row = store::patients::update(conn, patient_id, expected, &details)
                .await?
                .ok_or_else(|| {
                    ApiError::Aborted("the patient changed since it was read; read it again".into())
                })?;
            audit::record(conn, &caller, "patient.update", &patient_id.to_string()).await?;
            let patient = convert::patient(&row);
            publish::patient(conn, &patient, false, &req.request_id).await?;
            Ok(UpdatePatientResponse {
                patient: Some(patient),
            })
        },
    )
    .await
}

/// GetPatient.
pub async fn get(
    state: &State,
    request: Request<GetPatientRequest>,
) -> Result<GetPatientResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let patient_id = validate::id(&mut v, "patient_id", &req.patient_id);
    v.finish()?;
    let patient_id = patient_id.ok_or_else(|| ApiError::invalid("patient_id", "required"))?;
    let mut tx = state.pool.begin().await?;
    let row = require_access(&mut tx, &caller, patient_id).await?;
    audit::record(&mut tx, &caller, "patient.read", &patient_id.to_string()).await?;
    tx.commit().await?;
    Ok(GetPatientResponse {
        patient: Some(convert::patient(&row)),
    })
}

/// ListPatients.
pub async fn list(
    state: &State,
    request: Request<ListPatientsRequest>,
) -> Result<ListPatientsResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    validate::text_id(&mut v, "clinic_id", &req.clinic_id);
    v.finish()?;
    let filters = ListPatientsRequest {
        clinic_id: req.clinic_id.clone(),
        ..Default::default()
    };
    let page: Page<Uuid> = Page::parse(&filters, req.page_size, &req.page_token, 50, 500)?;
    caller.require_clinic(&req.clinic_id)?;
    let mut tx = state.pool.begin().await?;
    let rows =
        store::patients::list_by_clinic(&mut tx, &req.clinic_id, page.after, page.fetch_limit())
            .await?;
    let (rows, next) = page.finish(rows, |r| r.patient_id);
    for row in &rows {
        audit::record(
            &mut tx,
            &caller,
            "patient.list",
            &row.patient_id.to_string(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(ListPatientsResponse {
        patients: rows.iter().map(convert::patient).collect(),
        next_page_token: next,
    })
}

/// A PHQ-9 result: total 0–27; when items are given, nine answers 0–3 summing to the total.
pub(super) fn check_phq9(v: &mut Violations, field: &str, phq9: &Phq9, items_required: bool) {
    if !(0..=27).contains(&phq9.total_score) {
        v.add(format!("{field}.total_score"), "between 0 and 27");
    }
    if phq9.item_scores.is_empty() && !items_required {
        return;
    }
    if phq9.item_scores.len() != 9 {
        v.add(format!("{field}.item_scores"), "exactly nine answers");
    } else if phq9.item_scores.iter().any(|s| !(0..=3).contains(s)) {
        v.add(
            format!("{field}.item_scores"),
            "each answer between 0 and 3",
        );
    } else if phq9.item_scores.iter().sum::<i32>() != phq9.total_score {
        v.add(
            format!("{field}.total_score"),
            "must equal the sum of item_scores",
        );
    }
}

fn check_intake(v: &mut Violations, intake: &Intake) {
    if intake.diagnosis_codes.is_empty() || intake.diagnosis_codes.len() > 12 {
        v.add("intake.diagnosis_codes", "1 to 12 ICD-10-CM codes");
    }
    for (i, code) in intake.diagnosis_codes.iter().enumerate() {
        if !validate::is_icd10_cm(code) {
            v.add(
                format!("intake.diagnosis_codes[{i}]"),
                "not an ICD-10-CM code (e.g. F33.2)",
            );
        }
    }
    if intake.failed_trials.len() > 50 {
        v.add("intake.failed_trials", "at most 50 trials");
    }
    for (i, trial) in intake.failed_trials.iter().enumerate() {
        if AntidepressantClass::try_from(trial.drug_class).is_err() || trial.drug_class == 0 {
            v.add(format!("intake.failed_trials[{i}].drug_class"), "required");
        }
        if !(1..=520).contains(&trial.duration_weeks) {
            v.add(
                format!("intake.failed_trials[{i}].duration_weeks"),
                "between 1 and 520 weeks",
            );
        }
    }
    match &intake.baseline_phq9 {
        Some(phq9) => check_phq9(v, "intake.baseline_phq9", phq9, false),
        None => v.add("intake.baseline_phq9", "required"),
    }
}

/// RecordIntake.
pub async fn record_intake(
    state: &State,
    request: Request<RecordIntakeRequest>,
) -> Result<RecordIntakeResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let intake = req.intake.clone().unwrap_or_default();
    let mut v = Violations::new();
    if req.intake.is_none() {
        v.add("intake", "required");
    }
    let patient_id = validate::id(&mut v, "intake.patient_id", &intake.patient_id);
    validate::text_id(&mut v, "intake.clinic_id", &intake.clinic_id);
    check_intake(&mut v, &intake);
    v.finish()?;
    let patient_id =
        patient_id.ok_or_else(|| ApiError::invalid("intake.patient_id", "required"))?;
    caller.require_clinic(&intake.clinic_id)?;
    idempotent(
        &state.pool,
        &caller,
        "RecordIntake",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            require_access(conn, &caller, patient_id).await?;
            store::directory::clinic(conn, &intake.clinic_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("clinic {}", intake.clinic_id)))?;
            if !intake.attesting_provider_id.is_empty()
                && store::directory::provider(conn, &intake.attesting_provider_id)
                    .await?
                    .is_none()
            {
                return Err(ApiError::NotFound(format!(
                    "provider {}",
                    intake.attesting_provider_id
                )));
            }
            let stored =
                store::patients::insert_intake(conn, &intake, Uuid::now_v7(), patient_id).await?;
            let version = store::patients::intake_count(conn, patient_id).await?;
            audit::record(conn, &caller, "intake.record", &intake.patient_id).await?;
            publish::intake_recorded(
                conn,
                &stored,
                u64::try_from(version).unwrap_or(0),
                &req.request_id,
            )
            .await?;
            Ok(RecordIntakeResponse {
                intake: Some(stored),
            })
        },
    )
    .await
}

/// GetIntake.
pub async fn get_intake(
    state: &State,
    request: Request<GetIntakeRequest>,
) -> Result<GetIntakeResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let patient_id = validate::id(&mut v, "patient_id", &req.patient_id);
    v.finish()?;
    let patient_id = patient_id.ok_or_else(|| ApiError::invalid("patient_id", "required"))?;
    let mut tx = state.pool.begin().await?;
    require_access(&mut tx, &caller, patient_id).await?;
    let intake = store::patients::intake_in_force(&mut tx, patient_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("intake of patient {patient_id}")))?;
    audit::record(&mut tx, &caller, "intake.read", &req.patient_id).await?;
    tx.commit().await?;
    Ok(GetIntakeResponse {
        intake: Some(intake),
    })
}
