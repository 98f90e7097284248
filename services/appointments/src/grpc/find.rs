//! FindSlots: free slots where a whole visit of the modality fits (dose + monitoring or recovery +
//! clinic buffers), after the minimum notice and within the booking horizon, at one clinic or at
//! active clinics near a point, ordered by visit start then distance.

use super::{State, caller, convert, paging, validate};
use crate::{
    domain::{clinic::ClinicView, visit},
    store::availability::Search,
    store::{self, directory::ProviderRow},
};
use clinicnet_proto::{
    appointments::v1::{FindSlotsRequest, FindSlotsResponse, SlotOffer, find_slots_request::Place},
    common::v1::Modality,
};
use platform::{ApiError, error::Violations};
use time::OffsetDateTime;
use tonic::Request;

/// Longest search range, in days.
const MAX_RANGE_DAYS: i64 = 62;

fn speaks(provider: &ProviderRow, language: &str) -> bool {
    provider
        .languages
        .iter()
        .any(|l| l.eq_ignore_ascii_case(language))
}

/// FindSlots.
pub async fn find_slots(
    state: &State,
    request: Request<FindSlotsRequest>,
) -> Result<FindSlotsResponse, ApiError> {
    let _caller = caller(&request)?;
    let req = request.into_inner();
    let mut v = Violations::new();
    let modality = Modality::try_from(req.modality).unwrap_or(Modality::Unspecified);
    if modality == Modality::Unspecified {
        v.add("modality", "required");
    }
    match &req.place {
        None => v.add("place", "required: a clinic_id or a near point"),
        Some(Place::ClinicId(id)) => {
            validate::text_id(&mut v, "clinic_id", id);
        }
        Some(Place::Near(near)) => {
            match &near.point {
                None => v.add("near.point", "required"),
                Some(p) => {
                    if !(-90.0..=90.0).contains(&p.latitude) {
                        v.add("near.point.latitude", "between -90 and 90");
                    }
                    if !(-180.0..=180.0).contains(&p.longitude) {
                        v.add("near.point.longitude", "between -180 and 180");
                    }
                }
            }
            if !(near.radius_km > 0.0 && near.radius_km <= 500.0) {
                v.add("near.radius_km", "greater than 0 and at most 500");
            }
        }
    }
    let range = validate::interval(&mut v, "range", req.range.as_ref(), Some(MAX_RANGE_DAYS));
    let limit = usize::try_from(validate::page_size(&mut v, req.page_size, 20, 200)).unwrap_or(20);
    let offset = paging::parse_offset(&mut v, &req.page_token);
    v.finish()?;
    let range = range.ok_or_else(|| ApiError::invalid("range", "required"))?;
    let mut conn = state.pool.acquire().await?;
    let clinics: Vec<(ClinicView, Option<f64>)> = match &req.place {
        Some(Place::ClinicId(id)) => {
            let clinic = store::directory::clinic(&mut conn, id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("clinic {id}")))?;
            vec![(clinic, None)]
        }
        Some(Place::Near(near)) => {
            let point = near
                .point
                .as_ref()
                .map_or((0.0, 0.0), |p| (p.latitude, p.longitude));
            store::directory::active_clinics(&mut conn)
                .await?
                .into_iter()
                .filter_map(|c| {
                    let d = c.nearest_km(point)?;
                    (d <= near.radius_km).then_some((c, Some(d)))
                })
                .collect()
        }
        None => Vec::new(),
    };
    let now = OffsetDateTime::now_utc();
    let durations = state.settings.durations();
    let wanted = i64::try_from(offset + limit + 1).unwrap_or(i64::MAX);
    let mut offers: Vec<(OffsetDateTime, f64, String, SlotOffer)> = Vec::new();
    for (clinic, distance) in clinics {
        if clinic.suspended() || !clinic.offers(modality) {
            continue;
        }
        let Ok(shape) = visit::shape(modality, &clinic.policy, &durations) else {
            continue;
        };
        let earliest = range.0.max(now + clinic.policy.minimum_notice);
        let latest = range
            .1
            .min(now + clinic.policy.booking_horizon + time::Duration::SECOND);
        if earliest >= latest {
            continue;
        }
        let providers = store::directory::providers_of(&mut conn, clinic.id()).await?;
        let serving: Vec<&ProviderRow> = providers
            .iter()
            .filter(|p| p.serves(clinic.id(), modality as i32))
            .collect();
        let provider_filter = (!req.provider_id.is_empty()).then_some(req.provider_id.as_str());
        let search = Search {
            clinic_id: clinic.id(),
            modality: modality as i16,
            from: earliest - shape.before,
            to: latest - shape.before,
            min_length: shape.occupied(),
            provider_id: provider_filter,
            limit: wanted,
        };
        let slots = store::availability::bookable(&mut conn, search).await?;
        for slot in slots {
            let candidates: Vec<&ProviderRow> = match &slot.provider_id {
                Some(id) => serving
                    .iter()
                    .copied()
                    .filter(|p| &p.provider_id == id)
                    .collect(),
                None => serving.clone(),
            };
            let candidates: Vec<&ProviderRow> = candidates
                .into_iter()
                .filter(|p| provider_filter.is_none_or(|f| p.provider_id == f))
                .filter(|p| req.provider_language.is_empty() || speaks(p, &req.provider_language))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            let placement = shape.place(slot.times().0);
            if modality == Modality::EsketamineNasalSpray
                && !clinic.rems_current_on(clinic.zone.local_date(placement.visit_start))
            {
                continue;
            }
            let render = |t| {
                if req.render_in_clinic_time_zone {
                    clinic.zone.render(t)
                } else {
                    String::new()
                }
            };
            let offer = SlotOffer {
                slot: Some(convert::slot(&slot)),
                visit_start_time: Some(convert::timestamp(placement.visit_start)),
                visit_end_time: Some(convert::timestamp(placement.visit_end)),
                clinic_time_zone: clinic.zone.name().to_owned(),
                local_start: render(placement.visit_start),
                local_end: render(placement.visit_end),
                distance_km: distance,
            };
            offers.push((
                placement.visit_start,
                distance.unwrap_or(0.0),
                slot.slot_id.to_string(),
                offer,
            ));
        }
    }
    offers.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.total_cmp(&b.1))
            .then_with(|| a.2.cmp(&b.2))
    });
    let more = offers.len() > offset + limit;
    let page: Vec<SlotOffer> = offers
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|o| o.3)
        .collect();
    Ok(FindSlotsResponse {
        offers: page,
        next_page_token: if more {
            paging::offset(offset + limit)
        } else {
            String::new()
        },
    })
}
