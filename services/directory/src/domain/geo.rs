//! Points on the Earth and the area a distance search covers: coordinate ranges, the mean Earth
//! radius the great-circle (haversine) distance uses, and the latitude/longitude box that holds
//! every point within a radius, so an index can narrow the candidates before distances are
//! computed. The box handles the antimeridian and the poles.

use std::f64::consts::{FRAC_PI_2, PI};

/// Mean Earth radius (IUGG), in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Largest search radius accepted, in kilometres.
pub const MAX_RADIUS_KM: f64 = 500.0;

/// Extra margin around the box, in degrees (about 10 cm), so rounding never drops a point that
/// lies exactly on the circle.
const BOX_MARGIN_DEGREES: f64 = 1e-6;

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

/// Which longitudes a box spans, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Longitudes {
    /// Every longitude (the circle reaches a pole).
    All,
    /// `west <= longitude <= east`.
    Between {
        /// Western edge.
        west: f64,
        /// Eastern edge.
        east: f64,
    },
    /// The box crosses the antimeridian: `longitude >= west OR longitude <= east`.
    Across {
        /// Western edge (east of it up to 180).
        west: f64,
        /// Eastern edge (from -180 up to it).
        east: f64,
    },
}

/// The latitude/longitude box around a circle on the Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    /// Southern edge.
    pub south: f64,
    /// Northern edge.
    pub north: f64,
    /// Longitudes covered.
    pub longitudes: Longitudes,
}

impl BoundingBox {
    /// The smallest box holding every point within `radius_km` of (`latitude`, `longitude`)
    /// (J. P. Matuschek's bounding coordinates), widened by a hair for rounding.
    pub fn around(latitude: f64, longitude: f64, radius_km: f64) -> BoundingBox {
        let angular = radius_km / EARTH_RADIUS_KM;
        let lat = latitude.to_radians();
        let (south, north) = (lat - angular, lat + angular);
        let margin = BOX_MARGIN_DEGREES;
        if south <= -FRAC_PI_2 || north >= FRAC_PI_2 {
            return BoundingBox {
                south: south.max(-FRAC_PI_2).to_degrees() - margin,
                north: north.min(FRAC_PI_2).to_degrees() + margin,
                longitudes: Longitudes::All,
            };
        }
        let spread = (angular.sin() / lat.cos()).asin();
        let lng = longitude.to_radians();
        let (mut west, mut east) = (lng - spread, lng + spread);
        let across = west < -PI || east > PI;
        if west < -PI {
            west += 2.0 * PI;
        }
        if east > PI {
            east -= 2.0 * PI;
        }
        let (west, east) = (west.to_degrees() - margin, east.to_degrees() + margin);
        BoundingBox {
            south: south.to_degrees() - margin,
            north: north.to_degrees() + margin,
            longitudes: if across {
                Longitudes::Across { west, east }
            } else {
                Longitudes::Between { west, east }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The point `distance_km` from a start point along `bearing_degrees` (great circle).
    fn destination(lat: f64, lng: f64, bearing_degrees: f64, distance_km: f64) -> (f64, f64) {
        let (lat, lng, bearing) = (
            lat.to_radians(),
            lng.to_radians(),
            bearing_degrees.to_radians(),
        );
        let d = distance_km / EARTH_RADIUS_KM;
        let lat2 = (lat.sin() * d.cos() + lat.cos() * d.sin() * bearing.cos()).asin();
        let lng2 =
            lng + (bearing.sin() * d.sin() * lat.cos()).atan2(d.cos() - lat.sin() * lat2.sin());
        let lng2 = (lng2 + 3.0 * PI).rem_euclid(2.0 * PI) - PI;
        (lat2.to_degrees(), lng2.to_degrees())
    }

    fn contains(b: &BoundingBox, (lat, lng): (f64, f64)) -> bool {
        let lng_ok = match b.longitudes {
            Longitudes::All => true,
            Longitudes::Between { west, east } => (west..=east).contains(&lng),
            Longitudes::Across { west, east } => lng >= west || lng <= east,
        };
        (b.south..=b.north).contains(&lat) && lng_ok
    }

    fn assert_circle_inside(lat: f64, lng: f64, radius_km: f64) {
        let b = BoundingBox::around(lat, lng, radius_km);
        for step in 0..360 {
            let point = destination(lat, lng, f64::from(step), radius_km);
            assert!(contains(&b, point), "{point:?} outside {b:?}");
        }
    }

    #[test]
    fn the_circle_fits_in_its_box() {
        assert_circle_inside(25.7617, -80.1918, 25.0); // Miami
        assert_circle_inside(25.7617, -80.1918, MAX_RADIUS_KM);
        assert_circle_inside(-33.87, 151.21, 100.0);
        assert_circle_inside(0.0, 0.0, 1.0);
    }

    #[test]
    fn the_box_is_tight_in_miami() {
        let b = BoundingBox::around(25.7617, -80.1918, 111.195);
        assert!((b.north - 26.7617).abs() < 1e-3, "{b:?}");
        assert!((b.south - 24.7617).abs() < 1e-3, "{b:?}");
        let Longitudes::Between { west, east } = b.longitudes else {
            panic!("{b:?}")
        };
        // One degree of longitude is shorter than one of latitude away from the equator.
        assert!(east - west > 2.0 && east - west < 2.3, "{b:?}");
    }

    #[test]
    fn the_box_wraps_across_the_antimeridian() {
        let b = BoundingBox::around(-17.0, 179.9, 50.0);
        assert!(matches!(b.longitudes, Longitudes::Across { .. }), "{b:?}");
        assert_circle_inside(-17.0, 179.9, 50.0);
        assert_circle_inside(51.9, -179.95, 200.0);
        assert!(contains(&b, (-17.0, -179.9)));
        assert!(!contains(&b, (-17.0, 0.0)));
    }

    #[test]
    fn a_circle_over_a_pole_spans_every_longitude() {
        let b = BoundingBox::around(89.9, 10.0, 100.0);
        assert_eq!(b.longitudes, Longitudes::All);
        assert!(b.north >= 90.0);
        assert_circle_inside(89.9, 10.0, 100.0);
        assert_circle_inside(-89.5, -120.0, 300.0);
    }

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
