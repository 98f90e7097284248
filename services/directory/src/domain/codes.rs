//! Codes the directory accepts: BCP 47 primary language subtags, USPS state codes, ZIP codes and
//! the country (the United States only in v1).

/// USPS codes of the states, the District of Columbia and the inhabited territories.
const USPS_STATES: [&str; 56] = [
    "AK", "AL", "AR", "AS", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "GU", "HI", "IA", "ID",
    "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MP", "MS", "MT", "NC", "ND",
    "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA", "PR", "RI", "SC", "SD", "TN", "TX",
    "UM", "UT", "VA", "VI", "VT", "WA", "WI", "WV",
];

/// A BCP 47 primary language subtag as used here: two or three lower-case letters (ISO 639),
/// e.g. `en`, `es`, `ht`.
pub fn check_language(tag: &str) -> Result<(), &'static str> {
    if (2..=3).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err("must be a BCP 47 primary language subtag: 2 or 3 lower-case letters, e.g. \"es\"")
    }
}

/// A two-letter USPS state or territory code, upper case.
pub fn check_state(code: &str) -> Result<(), &'static str> {
    if USPS_STATES.contains(&code) {
        Ok(())
    } else {
        Err("must be a two-letter USPS state code, e.g. \"FL\"")
    }
}

/// A ZIP code (`33134`) or ZIP+4 (`33134-1234`).
pub fn check_zip(code: &str) -> Result<(), &'static str> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let valid = match code.split_once('-') {
        Some((zip, plus4)) => digits(zip, 5) && digits(plus4, 4),
        None => digits(code, 5),
    };
    if valid {
        Ok(())
    } else {
        Err("must be a ZIP code (12345) or ZIP+4 (12345-6789)")
    }
}

/// The ISO 3166-1 alpha-2 country code of an address; only `US` in v1.
pub fn check_country(code: &str) -> Result<(), &'static str> {
    if code == "US" {
        Ok(())
    } else {
        Err("must be \"US\" (the only country served in v1)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_subtags_are_two_or_three_lower_case_letters() {
        for good in ["en", "es", "ht", "yue"] {
            assert!(check_language(good).is_ok(), "{good}");
        }
        for bad in ["", "e", "EN", "es-US", "en_US", "engl", "e1"] {
            assert!(check_language(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn states_zips_and_country() {
        assert!(check_state("FL").is_ok());
        assert!(check_state("PR").is_ok());
        assert!(check_state("fl").is_err());
        assert!(check_state("XX").is_err());
        assert!(check_zip("33134").is_ok());
        assert!(check_zip("33134-1234").is_ok());
        for bad in ["3313", "331345", "33134-12", "3313a", "33134 1234"] {
            assert!(check_zip(bad).is_err(), "{bad}");
        }
        assert!(check_country("US").is_ok());
        assert!(check_country("MX").is_err());
    }
}
