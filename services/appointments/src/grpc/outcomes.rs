//! GetOutcomes: response and remission rates and the median PHQ-9 change among patients with a
//! baseline and enough scored sessions, per clinic or network-wide.

use super::{State, caller, validate};
use crate::{domain::outcomes, store};
use clinicnet_proto::{
    appointments::v1::{GetOutcomesRequest, GetOutcomesResponse},
    common::v1::Modality,
};
use platform::{ApiError, auth::Role, error::Violations};
use tonic::Request;

/// GetOutcomes.
pub async fn get(
    state: &State,
    request: Request<GetOutcomesRequest>,
) -> Result<GetOutcomesResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let period = validate::interval(&mut v, "period", req.period.as_ref(), None);
    if req.min_sessions < 0 {
        v.add("min_sessions", "0 (for 3) or more");
    }
    let modalities: Vec<i16> = match Modality::try_from(req.modality) {
        Ok(Modality::Unspecified) => vec![
            Modality::IvKetamine as i16,
            Modality::EsketamineNasalSpray as i16,
        ],
        Ok(m) => vec![m as i16],
        Err(_) => {
            v.add("modality", "unknown modality");
            Vec::new()
        }
    };
    if caller.role == Role::PartnerClinic && req.clinic_id.is_empty() {
        v.add("clinic_id", "required for partner clinics");
    }
    v.finish()?;
    let period = period.ok_or_else(|| ApiError::invalid("period", "required"))?;
    let clinic = (!req.clinic_id.is_empty()).then_some(req.clinic_id.as_str());
    if let Some(clinic) = clinic {
        caller.require_clinic(clinic)?;
    }
    let min_sessions = if req.min_sessions == 0 {
        3
    } else {
        usize::try_from(req.min_sessions).unwrap_or(3)
    };
    let mut conn = state.pool.acquire().await?;
    let scores = store::outcomes::scores(&mut conn, clinic, &modalities, period).await?;
    let o = outcomes::compute(&scores, min_sessions);
    Ok(GetOutcomesResponse {
        patients_counted: o.counted,
        responders: o.responders,
        remitters: o.remitters,
        response_rate: o.response_rate,
        remission_rate: o.remission_rate,
        median_phq9_change: o.median_change,
    })
}
