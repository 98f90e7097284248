//! Minimum necessary: the words an SMS or an email subject must never contain (the drug, the
//! diagnosis, the therapy), and a discreet clinic name for clinics whose own name gives the
//! therapy away ("Ketamine Health Centers" becomes its location, e.g. "Coral Gables").

use clinicnet_proto::common::v1::Locale;

/// Terms (lower case) that name a drug, a diagnosis or a therapy, in English and Spanish.
pub const SENSITIVE_TERMS: &[&str] = &[
    "ketamine",
    "ketamina",
    "esketamine",
    "esketamina",
    "spravato",
    "depression",
    "depresión",
    "depresion",
    "depressive",
    "depresivo",
    "trd",
    "infusion",
    "infusión",
    "therapy",
    "terapia",
    "psychotherapy",
    "psicoterapia",
    "antidepressant",
    "antidepresivo",
    "nasal spray",
    "aerosol nasal",
    "phq",
    "suicid",
    "self-harm",
    "autolesión",
    "mental health",
    "salud mental",
];

/// The first sensitive term or ICD-10 code found in `text`, if any.
pub fn find_sensitive(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    for term in SENSITIVE_TERMS {
        // Short terms only as whole words ("trd"), long ones anywhere ("ketamine" in "esketamine").
        let found = if term.len() <= 3 {
            lower
                .split(|c: char| !c.is_alphanumeric())
                .any(|word| word == *term)
        } else {
            lower.contains(term)
        };
        if found {
            return Some((*term).to_owned());
        }
    }
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .map(|token| token.trim_end_matches('.'))
        .find(|token| is_icd10_code(token))
        .map(str::to_owned)
}

/// Whether `token` looks like an ICD-10-CM code (e.g. "F33.2", "F32").
fn is_icd10_code(token: &str) -> bool {
    let bytes = token.as_bytes();
    if bytes.len() < 3 || !bytes[0].is_ascii_uppercase() {
        return false;
    }
    if !(bytes[1].is_ascii_digit() && (bytes[2].is_ascii_digit() || bytes[2].is_ascii_uppercase()))
    {
        return false;
    }
    match &token[3..] {
        "" => true,
        rest => {
            rest.len() >= 2
                && rest.starts_with('.')
                && rest[1..].chars().all(|c| c.is_ascii_alphanumeric())
        }
    }
}

/// The name to show for a clinic: its own name when discreet, else its location's name when
/// that is, else "your clinic" in the recipient's language.
pub fn discreet_clinic_name(name: &str, location: &str, locale: Locale) -> String {
    if !name.trim().is_empty() && find_sensitive(name).is_none() {
        return name.trim().to_owned();
    }
    if !location.trim().is_empty() && find_sensitive(location).is_none() {
        return location.trim().to_owned();
    }
    if locale == Locale::EsUs {
        "su clínica".to_owned()
    } else {
        "your clinic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_drugs_diagnoses_and_codes() {
        assert_eq!(
            find_sensitive("Your Spravato visit").as_deref(),
            Some("spravato")
        );
        assert_eq!(
            find_sensitive("esketamina hoy").as_deref(),
            Some("ketamina")
        );
        assert_eq!(find_sensitive("dx F33.2 noted").as_deref(), Some("F33.2"));
        assert_eq!(find_sensitive("code F32").as_deref(), Some("F32"));
        assert_eq!(find_sensitive("TRD program").as_deref(), Some("trd"));
        assert_eq!(
            find_sensitive("Coral Gables on Monday at 9:30 AM EDT"),
            None
        );
        assert_eq!(find_sensitive("standard"), None);
    }

    #[test]
    fn a_revealing_clinic_name_gives_way_to_its_location() {
        assert_eq!(
            discreet_clinic_name("Ketamine Health Centers", "Coral Gables", Locale::EnUs),
            "Coral Gables"
        );
        assert_eq!(
            discreet_clinic_name("Ketamine Expert Clinic", "", Locale::EsUs),
            "su clínica"
        );
        assert_eq!(
            discreet_clinic_name("Brickell Wellness", "Brickell", Locale::EnUs),
            "Brickell Wellness"
        );
    }
}
