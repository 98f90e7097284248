//! Visit instructions by modality, in the patient's language: esketamine — arrange a ride, no
//! driving until the next day, plan at least 2 hours on site; IV — the clinic's own fasting
//! instructions. The texts never name the drug or the therapy.

use clinicnet_proto::common::v1::{Locale, Modality};

/// What the patient should know before a visit of `modality`. `clinic_iv_text` is the clinic's
/// IV preparation text in the patient's language, when it has one.
pub fn for_visit(modality: Modality, locale: Locale, clinic_iv_text: Option<&str>) -> String {
    let es = locale == Locale::EsUs;
    let text = match modality {
        Modality::EsketamineNasalSpray => {
            if es {
                "Organice quién le lleve a casa: no podrá conducir hasta el día siguiente. Planee quedarse al menos 2 horas en la clínica después del tratamiento."
            } else {
                "Please arrange a ride home: you may not drive until the next day. Plan to stay at least 2 hours at the clinic after your treatment."
            }
        }
        Modality::IvKetamine => match clinic_iv_text.map(str::trim).filter(|t| !t.is_empty()) {
            Some(clinic_text) => return clinic_text.to_owned(),
            None if es => {
                "Siga las instrucciones de ayuno que le dio su clínica antes de la cita y organice quién le lleve a casa."
            }
            None => {
                "Please follow the fasting instructions your clinic gave you before the visit, and arrange a ride home."
            }
        },
        Modality::OralKetamineLozenge => {
            if es {
                "Organice quién le lleve a casa: no conduzca el resto del día."
            } else {
                "Please arrange a ride home: do not drive for the rest of the day."
            }
        }
        Modality::Telehealth => {
            if es {
                "Conéctese unos minutos antes desde un lugar tranquilo y privado."
            } else {
                "Please join a few minutes early from a quiet, private place."
            }
        }
        Modality::IntegrationTherapy | Modality::Psychotherapy => {
            if es {
                "Llegue 10 minutos antes, por favor."
            } else {
                "Please arrive 10 minutes early."
            }
        }
        Modality::Unspecified => "",
    };
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esketamine_needs_a_ride_no_driving_and_two_hours() {
        let text = for_visit(Modality::EsketamineNasalSpray, Locale::EnUs, None);
        assert!(text.contains("ride home"));
        assert!(text.contains("not drive until the next day"));
        assert!(text.contains("at least 2 hours"));
        let es = for_visit(Modality::EsketamineNasalSpray, Locale::EsUs, None);
        assert!(es.contains("al menos 2 horas"));
    }

    #[test]
    fn iv_uses_the_clinic_fasting_text_when_it_has_one() {
        assert_eq!(
            for_visit(
                Modality::IvKetamine,
                Locale::EnUs,
                Some("No food for 6 hours before.")
            ),
            "No food for 6 hours before."
        );
        assert!(for_visit(Modality::IvKetamine, Locale::EsUs, None).contains("ayuno"));
    }
}
