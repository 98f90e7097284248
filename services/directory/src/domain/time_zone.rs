//! Clinics' IANA time zones: a name is accepted only as the tz database spells it (other
//! services render times with their own tz libraries, which may be case-sensitive).

use jiff::tz::TimeZone;

/// The time zone a canonical IANA name (e.g. `America/New_York`) names.
pub fn parse(name: &str) -> Result<TimeZone, &'static str> {
    match TimeZone::get(name) {
        Ok(zone) if zone.iana_name() == Some(name) => Ok(zone),
        _ => Err(
            "must be an IANA time zone name as spelled in the tz database, e.g. America/New_York",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_are_accepted_as_spelled() {
        for good in [
            "America/New_York",
            "America/Chicago",
            "Pacific/Kiritimati",
            "UTC",
        ] {
            assert!(parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn abbreviations_offsets_and_misspellings_are_rejected() {
        for bad in [
            "",
            "EST5EDT ",
            "EST-ish",
            "-05:00",
            "+05:00",
            "Miami",
            "america/new_york",
            "America/Miami",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
