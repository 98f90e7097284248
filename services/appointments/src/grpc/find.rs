//! FindSlots: free slots where a whole visit of the modality fits (dose + monitoring or recovery +
//! clinic buffers), after the minimum notice and within the booking horizon, at one clinic or at
//! active clinics near a point, ordered by visit start, distance and slot id.

use super::{State, caller, convert, validate};
use crate::{
    domain::{clinic::ClinicView, visit},
    store::availability::Search,
    store::{self, directory::ProviderRow},
};
use clinicnet_proto::{
    appointments::v1::{FindSlotsRequest, FindSlotsResponse, SlotOffer, find_slots_request::Place},
    common::v1::Modality,
};
use platform::{
    ApiError,
    error::Violations,
    paging::{Key, Page},
};
use std::cmp::Ordering;
use time::OffsetDateTime;
use tonic::Request;
use uuid::Uuid;

/// Longest search range, in days.
const MAX_RANGE_DAYS: i64 = 62;

/// Position of an offer in the order of the results.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OfferKey {
    visit_start: OffsetDateTime,
    /// Kilometres from the searched point (0 for a search at one clinic), kept bit for bit.
    distance_km: f64,
    slot_id: Uuid,
}

impl OfferKey {
    fn order(&self, other: &OfferKey) -> Ordering {
        self.visit_start
            .cmp(&other.visit_start)
            .then(self.distance_km.total_cmp(&other.distance_km))
            .then(self.slot_id.cmp(&other.slot_id))
    }
}

impl Key for OfferKey {
    fn write(&self, out: &mut Vec<u8>) {
        (self.visit_start, self.slot_id).write(out);
        out.extend_from_slice(&self.distance_km.to_bits().to_be_bytes());
    }
    fn read(bytes: &[u8]) -> Option<Self> {
        let (key, distance) = bytes.split_at_checked(32)?;
        let (visit_start, slot_id) = <(OffsetDateTime, Uuid)>::read(key)?;
        Some(OfferKey {
            visit_start,
            distance_km: f64::from_bits(u64::from_be_bytes(distance.try_into().ok()?)),
            slot_id,
        })
    }
}

/// Where a clinic's slots (start, id) resume so that their offers come after `key`: a clinic
/// nearer than the key's resumes after the key's visit start, one as near after the key's slot,
/// one farther at the key's visit start.
fn resume_after(
    key: &OfferKey,
    distance_km: f64,
    before: time::Duration,
) -> (OffsetDateTime, Uuid) {
    let slot_start = key.visit_start - before;
    match distance_km.total_cmp(&key.distance_km) {
        Ordering::Less => (slot_start, Uuid::max()),
        Ordering::Equal => (slot_start, key.slot_id),
        Ordering::Greater => (slot_start, Uuid::nil()),
    }
}

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
    v.finish()?;
    let range = range.ok_or_else(|| ApiError::invalid("range", "required"))?;
    let filters = FindSlotsRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    let page: Page<OfferKey> = Page::parse(&filters, req.page_size, &req.page_token, 20, 200)?;
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
    let mut offers: Vec<(OfferKey, SlotOffer)> = Vec::new();
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
            after: page
                .after
                .map(|key| resume_after(&key, distance.unwrap_or(0.0), shape.before)),
            limit: page.fetch_limit(),
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
            let key = OfferKey {
                visit_start: placement.visit_start,
                distance_km: distance.unwrap_or(0.0),
                slot_id: slot.slot_id,
            };
            offers.push((key, offer));
        }
    }
    offers.sort_by(|a, b| a.0.order(&b.0));
    let (offers, next_page_token) = page.finish(offers, |o| o.0);
    Ok(FindSlotsResponse {
        offers: offers.into_iter().map(|o| o.1).collect(),
        next_page_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn offer_keys_round_trip_and_clinics_resume_after_them() {
        let key = OfferKey {
            visit_start: datetime!(2027-01-05 14:10 UTC),
            distance_km: 12.345_678_901_234_567,
            slot_id: Uuid::now_v7(),
        };
        let filters = FindSlotsRequest::default();
        let page: Page<OfferKey> = Page::parse(&filters, 1, "", 20, 200).unwrap();
        let (_, token) = page.finish(vec![key, key], |k| *k);
        let next: Page<OfferKey> = Page::parse(&filters, 1, &token, 20, 200).unwrap();
        assert_eq!(next.after, Some(key));
        let before = time::Duration::minutes(10);
        let slot_start = datetime!(2027-01-05 14:00 UTC);
        assert_eq!(resume_after(&key, 1.0, before), (slot_start, Uuid::max()));
        assert_eq!(
            resume_after(&key, key.distance_km, before),
            (slot_start, key.slot_id)
        );
        assert_eq!(resume_after(&key, 40.0, before), (slot_start, Uuid::nil()));
    }
}
