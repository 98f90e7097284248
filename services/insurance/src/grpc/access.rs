//! Who may see what: ops everything; a partner clinic its clinics (and the patients registered
//! at them); an integrator its payer. Checked in the service layer on every RPC.

use crate::store;
use platform::{
    ApiError,
    auth::{Caller, Role},
};
use sqlx::PgConnection;

/// Ops or a partner clinic.
pub fn staff(caller: &Caller) -> Result<(), ApiError> {
    caller.require_role(&[Role::Ops, Role::PartnerClinic])
}

/// The clinic filter of a listing or report: a partner must name one of its clinics; ops may
/// name any or none.
pub fn clinic_filter<'a>(caller: &Caller, clinic_id: &'a str) -> Result<Option<&'a str>, ApiError> {
    staff(caller)?;
    if caller.role == Role::PartnerClinic {
        if clinic_id.is_empty() {
            return Err(ApiError::invalid(
                "clinic_id",
                "required for a partner clinic",
            ));
        }
        caller.require_clinic(clinic_id)?;
    }
    Ok((!clinic_id.is_empty()).then_some(clinic_id))
}

/// Ops, or a partner clinic where the patient is registered. NOT_FOUND when the patient is
/// unknown.
pub async fn patient(
    conn: &mut PgConnection,
    caller: &Caller,
    patient_id: &str,
) -> Result<(), ApiError> {
    staff(caller)?;
    let patient = store::patients::get(conn, patient_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("patient {patient_id}")))?;
    caller.require_clinic(&patient.registered_clinic_id)
}
