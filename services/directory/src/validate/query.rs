//! What a list or a search asks for: its filters checked, including a distance search's point
//! and radius.

use super::{date, identifier, rule};
use crate::domain::{codes, geo};
use clinicnet_proto::{common::v1::Modality, directory::v1 as pb};
use jiff::civil::Date;
use platform::{ApiError, error::Violations};

/// The checked filters of a SearchClinics request; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct SearchFilters {
    /// Offers this modality (for esketamine, with a current REMS certification).
    pub modality: Option<i32>,
    /// Speaks this language.
    pub language: Option<String>,
    /// In-network with this payer.
    pub payer_id: Option<String>,
    /// Open on this local date, and its ISO weekday.
    pub open_on: Option<(Date, i16)>,
    /// Whether the REMS certification is current.
    pub rems_certified: Option<bool>,
    /// Within a radius of a point.
    pub near: Option<Near>,
}

/// A distance search.
#[derive(Debug, Clone, Copy)]
pub struct Near {
    /// Latitude of the point, degrees.
    pub latitude: f64,
    /// Longitude of the point, degrees.
    pub longitude: f64,
    /// Radius, kilometres.
    pub radius_km: f64,
}

/// The filters of a search request.
pub fn search(request: &pb::SearchClinicsRequest) -> Result<SearchFilters, ApiError> {
    let mut violations = Violations::new();
    let modality = match Modality::try_from(request.modality) {
        Ok(Modality::Unspecified) => None,
        Ok(modality) => Some(modality as i32),
        Err(_) => {
            violations.add("modality", "unknown modality");
            None
        }
    };
    let language = (!request.language.is_empty()).then(|| request.language.clone());
    if let Some(language) = &language {
        rule(&mut violations, "language", codes::check_language(language));
    }
    let payer_id = (!request.payer_id.is_empty()).then(|| request.payer_id.clone());
    if let Some(payer_id) = &payer_id {
        identifier(&mut violations, "payer_id", payer_id);
    }
    let open_on = request
        .open_on
        .as_ref()
        .and_then(|d| date(&mut violations, "open_on", Some(d)))
        .map(|d| (d, i16::from(d.weekday().to_monday_one_offset())));
    let near = match request.near.as_ref() {
        None => {
            violations.check(
                request.radius_km != 0.0,
                "radius_km",
                "a radius needs a point: set near",
            );
            None
        }
        Some(point) => {
            rule(
                &mut violations,
                "near.latitude",
                geo::check_latitude(point.latitude),
            );
            rule(
                &mut violations,
                "near.longitude",
                geo::check_longitude(point.longitude),
            );
            rule(
                &mut violations,
                "radius_km",
                geo::check_radius(request.radius_km),
            );
            Some(Near {
                latitude: point.latitude,
                longitude: point.longitude,
                radius_km: request.radius_km,
            })
        }
    };
    violations.finish()?;
    Ok(SearchFilters {
        modality,
        language,
        payer_id,
        open_on,
        rems_certified: request.rems_certified,
        near,
    })
}

/// The status a ListClinics request keeps; `None` for all.
pub fn status(value: i32) -> Result<Option<pb::ClinicStatus>, ApiError> {
    match pb::ClinicStatus::try_from(value) {
        Ok(pb::ClinicStatus::Unspecified) => Ok(None),
        Ok(status) => Ok(Some(status)),
        Err(_) => Err(ApiError::invalid("status", "unknown clinic status")),
    }
}
