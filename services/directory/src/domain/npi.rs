//! The National Provider Identifier: ten digits whose last is a Luhn check digit computed over
//! the nine others prefixed with 80840 (the health-industry issuer prefix, ISO 7812).

/// The issuer prefix the check digit is computed with.
const ISSUER_PREFIX: &str = "80840";

/// Accepts a well-formed NPI, or says why it is not one.
pub fn check(npi: &str) -> Result<(), &'static str> {
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return Err("must be exactly 10 digits");
    }
    if luhn_valid(ISSUER_PREFIX.bytes().chain(npi.bytes())) {
        Ok(())
    } else {
        Err("check digit does not match (Luhn with the 80840 prefix)")
    }
}

/// Whether a digit sequence ending in its check digit passes the Luhn test.
fn luhn_valid(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let sum: u32 = digits
        .rev()
        .map(|b| u32::from(b - b'0'))
        .enumerate()
        .map(|(i, d)| match (i % 2 == 1, d * 2) {
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
            (false, _) => d,
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_with_the_right_check_digit_is_accepted() {
        // The CMS example NPI, and two more computed by hand with the 80840 prefix.
        for npi in ["1234567893", "1245319599", "1003000126"] {
            assert_eq!(check(npi), Ok(()), "{npi}");
        }
    }

    #[test]
    fn npi_check_digit_uses_the_80840_prefix() {
        // 1234567897 passes a plain Luhn test over its ten digits but not with the prefix.
        assert!(luhn_valid("1234567897".bytes()));
        assert!(check("1234567897").is_err());
        for wrong in 0..=9u8 {
            let npi = format!("123456789{wrong}");
            assert_eq!(check(&npi).is_ok(), wrong == 3, "{npi}");
        }
    }

    #[test]
    fn npi_must_be_ten_digits() {
        for bad in ["", "123456789", "12345678930", "12345678a3", " 1234567893"] {
            assert_eq!(check(bad), Err("must be exactly 10 digits"), "{bad:?}");
        }
    }
}
