//! Distances on the Earth for finding slots near a point: great-circle (haversine) kilometres.

/// Mean Earth radius (IUGG), in kilometres.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance in kilometres between two (latitude, longitude) points in degrees.
pub fn distance_km(from: (f64, f64), to: (f64, f64)) -> f64 {
    let (lat1, lon1) = (from.0.to_radians(), from.1.to_radians());
    let (lat2, lon2) = (to.0.to_radians(), to.1.to_radians());
    let a = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coral_gables_to_downtown_miami_is_about_ten_kilometres() {
        let coral_gables = (25.7215, -80.2684);
        let downtown = (25.7751, -80.1947);
        let d = distance_km(coral_gables, downtown);
        assert!((9.0..10.5).contains(&d), "{d}");
        assert_eq!(distance_km(downtown, downtown), 0.0);
    }
}
