//! Inbound SMS keywords (CTIA/TCPA practice): STOP-family words opt a number out of all SMS at
//! once, START-family words opt it back in, HELP-family words get the help reply. The whole
//! trimmed body is matched, case-insensitively; Spanish keywords answer in Spanish.

use clinicnet_proto::{common::v1::Locale, notifications::v1::InboundSmsKeyword};

const STOP: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "ALTO",
    "PARAR",
];
const START: &[&str] = &["START", "UNSTOP", "YES", "COMENZAR"];
const HELP: &[&str] = &["HELP", "INFO", "AYUDA"];
const SPANISH: &[&str] = &["ALTO", "PARAR", "COMENZAR", "AYUDA"];

/// The keyword `body` is, if any, and whether it was a Spanish word.
pub fn classify(body: &str) -> (InboundSmsKeyword, Option<Locale>) {
    let word = body.trim().to_uppercase();
    let keyword = if STOP.contains(&word.as_str()) {
        InboundSmsKeyword::Stop
    } else if START.contains(&word.as_str()) {
        InboundSmsKeyword::Start
    } else if HELP.contains(&word.as_str()) {
        InboundSmsKeyword::Help
    } else {
        InboundSmsKeyword::Unspecified
    };
    let language = (keyword != InboundSmsKeyword::Unspecified).then(|| {
        if SPANISH.contains(&word.as_str()) {
            Locale::EsUs
        } else {
            Locale::EnUs
        }
    });
    (keyword, language)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_trimmed_body_case_insensitive() {
        assert_eq!(classify("  stop ").0, InboundSmsKeyword::Stop);
        assert_eq!(classify("Alto").0, InboundSmsKeyword::Stop);
        assert_eq!(
            classify("parar"),
            (InboundSmsKeyword::Stop, Some(Locale::EsUs))
        );
        assert_eq!(
            classify("comenzar"),
            (InboundSmsKeyword::Start, Some(Locale::EsUs))
        );
        assert_eq!(classify("Unstop").0, InboundSmsKeyword::Start);
        assert_eq!(
            classify("help"),
            (InboundSmsKeyword::Help, Some(Locale::EnUs))
        );
        assert_eq!(classify("AYUDA").0, InboundSmsKeyword::Help);
        assert_eq!(
            classify("please stop texting").0,
            InboundSmsKeyword::Unspecified
        );
        assert_eq!(classify("").1, None);
    }
}
