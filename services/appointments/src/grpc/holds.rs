//! Holds: HoldSlot claims a free slot's chair and provider for a few minutes; ReleaseHold gives
//! it back before it lapses.

use super::{State, caller, convert, idempotent, validate};
use crate::{
    domain::{refusal::refuse, visit},
    store::{
        self,
        reservations::{self, Occupancy},
    },
};
use clinicnet_proto::{
    appointments::v1::{
        HoldSlotRequest, HoldSlotResponse, PreconditionRule as Rule, ReleaseHoldRequest,
        ReleaseHoldResponse,
    },
    common::v1::Modality,
};
use platform::{ApiError, error::Violations};
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

/// HoldSlot.
pub async fn hold_slot(
    state: &State,
    request: Request<HoldSlotRequest>,
) -> Result<HoldSlotResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let settings = &state.settings;
    let mut v = Violations::new();
    let slot_id = validate::id(&mut v, "slot_id", &req.slot_id);
    let patient_id = validate::optional_id(&mut v, "patient_id", &req.patient_id);
    let ttl = match &req.ttl {
        None => settings.hold_ttl_seconds,
        Some(d) => {
            let seconds = u32::try_from(d.seconds).unwrap_or(0);
            if d.nanos != 0
                || seconds < settings.hold_min_ttl_seconds
                || seconds > settings.hold_max_ttl_seconds
            {
                v.add(
                    "ttl",
                    format!(
                        "whole seconds from {} to {}",
                        settings.hold_min_ttl_seconds, settings.hold_max_ttl_seconds
                    ),
                );
            }
            seconds
        }
    };
    v.finish()?;
    let slot_id = slot_id.ok_or_else(|| ApiError::invalid("slot_id", "required"))?;
    idempotent(
        &state.pool,
        &caller,
        "HoldSlot",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let slot = store::availability::slot(conn, slot_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("slot {slot_id}")))?;
            caller.require_clinic(&slot.clinic_id)?;
            let clinic = store::directory::clinic(conn, &slot.clinic_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("clinic {}", slot.clinic_id)))?;
            if clinic.suspended() {
                return Err(refuse(
                    Rule::ClinicSuspended,
                    "the clinic is suspended and takes no new bookings",
                )
                .into());
            }
            if slot.status != "free" {
                return Err(refuse(
                    Rule::SlotUnavailable,
                    "the slot is booked, held or no longer offered",
                )
                .into());
            }
            if let Some(patient_id) = patient_id {
                store::patients::get(conn, patient_id)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("patient {patient_id}")))?;
            }
            let (start, end) = slot.times();
            let modality =
                Modality::try_from(i32::from(slot.modality)).unwrap_or(Modality::Unspecified);
            let held_until = visit::shape(modality, &clinic.policy, &settings.durations())
                .map_or(end, |shape| (start + shape.occupied()).min(end));
            let occupancy = Occupancy {
                slot_id,
                clinic_id: &slot.clinic_id,
                chair_id: slot.chair_id.as_deref(),
                provider_id: slot.provider_id.as_deref(),
                start,
                end: held_until,
            };
            reservations::make_way(conn, &occupancy).await?;
            let hold_id = Uuid::now_v7();
            let expires = match reservations::insert(conn, hold_id, &occupancy, Some(ttl)).await {
                Ok(expires) => expires
                    .ok_or_else(|| ApiError::internal(anyhow::anyhow!("hold without expiry")))?,
                Err(error) if reservations::clash_of(&error).is_some() => {
                    return Err(refuse(
                        Rule::SlotUnavailable,
                        "the chair or provider is already taken at that time",
                    )
                    .into());
                }
                Err(error) => return Err(error.into()),
            };
            let hold = store::holds::insert(conn, hold_id, slot_id, patient_id, expires).await?;
            Ok(HoldSlotResponse {
                hold: Some(convert::hold(&hold)),
            })
        },
    )
    .await
}

/// ReleaseHold.
pub async fn release_hold(
    state: &State,
    request: Request<ReleaseHoldRequest>,
) -> Result<ReleaseHoldResponse, ApiError> {
    let caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let hold_id = validate::id(&mut v, "hold_id", &req.hold_id);
    v.finish()?;
    let hold_id = hold_id.ok_or_else(|| ApiError::invalid("hold_id", "required"))?;
    idempotent(
        &state.pool,
        &caller,
        "ReleaseHold",
        &req.request_id,
        &req,
        async |conn: &mut PgConnection| {
            let hold = store::holds::lock(conn, hold_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("hold {hold_id}")))?;
            let slot = store::availability::slot(conn, hold.slot_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("slot {}", hold.slot_id)))?;
            caller.require_clinic(&slot.clinic_id)?;
            if hold.status != "active" || hold.lapsed {
                return Err(refuse(
                    Rule::IllegalTransition,
                    "only an active hold can be released",
                )
                .into());
            }
            let released = store::holds::finish(conn, hold_id, "released").await?;
            Ok(ReleaseHoldResponse {
                hold: Some(convert::hold(&released)),
            })
        },
    )
    .await
}
