//! How people are reached: phone numbers in E.164 form and email addresses.

/// Longest email address (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;

/// A phone number in E.164 form: `+`, a country code that does not start with 0, and in all
/// 7 to 15 digits, nothing else (e.g. `+13055550100`).
pub fn check_e164(phone: &str) -> Result<(), &'static str> {
    let valid = phone.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    });
    if valid {
        Ok(())
    } else {
        Err("must be an E.164 phone number: + and 7 to 15 digits, e.g. +13055550100")
    }
}

/// An email address of the shape `local@domain.tld`, without spaces; at most 254 characters.
pub fn check_email(email: &str) -> Result<(), &'static str> {
    let valid = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.split('.').count() >= 2
                && domain.split('.').all(|label| !label.is_empty())
        });
    if valid {
        Ok(())
    } else {
        Err("must be an email address such as frontdesk@clinic.example")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        for good in ["+13055550100", "+5215512345678", "+4420712345"] {
            assert!(check_e164(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "13055550100",
            "+1 305 555 0100",
            "+1-305-555-0100",
            "+03055550100",
            "+123456",
            "+1234567890123456",
            "(305) 555-0100",
        ] {
            assert!(check_e164(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn email_addresses() {
        assert!(check_email("frontdesk@khc.example").is_ok());
        assert!(check_email("on.call+alerts@clinic.example.com").is_ok());
        for bad in [
            "",
            "frontdesk",
            "@khc.example",
            "a@b",
            "a@@b.c",
            "a b@c.d",
            "a@b..c",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
