//! SearchClinics: checked filters, a page of active clinics from the store, each with its
//! distance when the search has a point.

use super::{Directory, stored_id};
use crate::{paging::DistanceKey, store, validate};
use clinicnet_proto::directory::v1 as pb;
use platform::ApiError;
use platform::paging::Page;

pub(super) async fn search(
    directory: &Directory,
    request: pb::SearchClinicsRequest,
) -> Result<pb::SearchClinicsResponse, ApiError> {
    let filters = validate::query::search(&request)?;
    let paging_fields_cleared = pb::SearchClinicsRequest {
        page_size: 0,
        page_token: String::new(),
        ..request.clone()
    };
    let page: Page<DistanceKey> = Page::parse(
        &paging_fields_cleared,
        request.page_size,
        &request.page_token,
        20,
        200,
    )?;
    let mut conn = directory.pool.acquire().await?;
    let found = store::search::search(&mut conn, &filters, page.after, page.fetch_limit()).await?;
    let (found, next_page_token) = page.finish(found, |found| DistanceKey {
        chord_km: found
            .nearest
            .as_ref()
            .map_or(0.0, |nearest| nearest.chord_km),
        id: stored_id(&found.clinic.clinic_id),
    });
    let results = found
        .into_iter()
        .map(|found| pb::ClinicSearchResult {
            distance_km: found.nearest.as_ref().map(|nearest| nearest.distance_km()),
            nearest_location_id: found
                .nearest
                .map(|nearest| nearest.location_id)
                .unwrap_or_default(),
            clinic: Some(found.clinic),
        })
        .collect();
    Ok(pb::SearchClinicsResponse {
        results,
        next_page_token,
    })
}
