//! Self-pay superbills: read one, with its PDF.

use super::{Insurance, access, validate};
use crate::{pdf, store};
use clinicnet_proto::insurance::v1::{
    GetSuperbillRequest, GetSuperbillResponse, get_superbill_request::Key,
};
use platform::{ApiError, audit, auth::Caller, error::Violations};
use tonic::Request;

/// GetSuperbill.
pub async fn get(
    svc: &Insurance,
    request: Request<GetSuperbillRequest>,
) -> Result<GetSuperbillResponse, ApiError> {
    let caller = Caller::of(&request)?;
    access::staff(&caller)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    match &req.key {
        None => v.add("key", "required: superbill_id or appointment_id"),
        Some(Key::SuperbillId(id)) => validate::id(&mut v, "superbill_id", id),
        Some(Key::AppointmentId(id)) => validate::reference(&mut v, "appointment_id", id),
    }
    v.finish()?;
    let mut tx = svc.pool.begin().await?;
    let superbill = match &req.key {
        Some(Key::SuperbillId(id)) => store::superbills::by_id(&mut tx, id).await?,
        Some(Key::AppointmentId(id)) => store::superbills::by_appointment(&mut tx, id).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::NotFound("superbill".into()))?;
    caller.require_clinic(&superbill.clinic_id)?;
    let patient = store::patients::get(&mut tx, &superbill.patient_id).await?;
    let pdf = pdf::render(&superbill, patient.as_ref()).map_err(ApiError::internal)?;
    audit::record(
        &mut tx,
        &caller,
        "insurance.superbill.get",
        &superbill.patient_id,
    )
    .await?;
    tx.commit().await?;
    Ok(GetSuperbillResponse {
        superbill: Some(superbill),
        pdf,
    })
}
