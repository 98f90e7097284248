//! Points on the Earth and the distances a search uses: coordinate ranges, the mean Earth radius
//! of the great-circle distance, and the margin of the cube that bounds a search circle.

/// Mean Earth radius (IUGG), in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Largest search radius accepted, in kilometres.
pub const MAX_RADIUS_KM: f64 = 500.0;

/// Extra margin around the cube that bounds a search circle, in kilometres (1 m), so rounding
/// never drops a point that lies exactly on the circle.
pub const CUBE_MARGIN_KM: f64 = 0.001;

/// A latitude in degrees, -90 to 90.
pub fn check_latitude(latitude: f64) -> Result<(), &'static str> {
    if (-90.0..=90.0).contains(&latitude) {
        Ok(())
    } else {
        Err("latitude must be between -90 and 90 degrees")
    }
}

/// A longitude in degrees, -180 to 180.
pub fn check_longitude(longitude: f64) -> Result<(), &'static str> {
    if (-180.0..=180.0).contains(&longitude) {
        Ok(())
    } else {
        Err("longitude must be between -180 and 180 degrees")
    }
}

/// A search radius in kilometres: above 0, at most [`MAX_RADIUS_KM`].
pub fn check_radius(radius_km: f64) -> Result<(), &'static str> {
    if radius_km > 0.0 && radius_km <= MAX_RADIUS_KM {
        Ok(())
    } else {
        Err("radius_km must be greater than 0 and at most 500")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_and_radius_ranges() {
        assert!(check_latitude(90.0).is_ok() && check_latitude(-90.0).is_ok());
        assert!(check_latitude(90.0001).is_err() && check_latitude(f64::NAN).is_err());
        assert!(check_longitude(-180.0).is_ok() && check_longitude(180.0).is_ok());
        assert!(check_longitude(-180.5).is_err() && check_longitude(f64::INFINITY).is_err());
        assert!(check_radius(0.001).is_ok() && check_radius(500.0).is_ok());
        for bad in [0.0, -1.0, 500.001, f64::NAN, f64::INFINITY] {
            assert!(check_radius(bad).is_err(), "{bad}");
        }
    }
}
