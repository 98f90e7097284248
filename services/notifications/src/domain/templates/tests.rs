//! Tests of the template set: the embedded set is complete, a broken set fails start-up, every
//! template renders in both languages, and no SMS or subject names a drug, diagnosis or therapy.

use super::*;
use crate::domain::{
    compose::{self, ClinicInfo},
    facts::Facts,
    sensitive::find_sensitive,
};
use clinicnet_proto::common::v1::Modality;

fn embedded_files() -> Vec<(&'static str, &'static str)> {
    embedded::FILES.to_vec()
}

#[test]
fn the_embedded_set_is_complete_and_valid() {
    let set = TemplateSet::embedded().expect("embedded templates are valid");
    let expected: usize = TemplateId::ALL
        .iter()
        .map(|id| id.channels().len() * LOCALES.len())
        .sum();
    assert_eq!(set.templates.len(), expected);
}

#[test]
fn a_missing_locale_fails_loading() {
    let files: Vec<_> = embedded_files()
        .into_iter()
        .filter(|(path, _)| *path != "es_US/appointment_reminder.sms.txt")
        .collect();
    let errors = TemplateSet::load(&files).unwrap_err();
    assert_eq!(
        errors.0,
        vec!["es_US/appointment_reminder.sms.txt: missing"]
    );
}

#[test]
fn an_unknown_variable_fails_loading() {
    let mut files = embedded_files();
    for file in files.iter_mut() {
        if file.0 == "en_US/appointment_cancelled.sms.txt" {
            file.1 = "{{clinic_name}}: {{diagnosis}} visit on {{start}} cancelled.";
        }
    }
    let errors = TemplateSet::load(&files).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert!(
        errors.0[0]
            .starts_with("en_US/appointment_cancelled.sms.txt: unknown variable {{diagnosis}}"),
        "{errors}"
    );
}

#[test]
fn syntax_errors_unknown_files_and_subjectless_email_fail_loading() {
    let mut files = embedded_files();
    for file in files.iter_mut() {
        match file.0 {
            "en_US/test_message.sms.txt" => file.1 = "{{clinic_name: unclosed",
            "es_US/test_message.email.txt" => file.1 = "No subject line\n\nBody",
            _ => {}
        }
    }
    files.push(("fr_FR/test_message.sms.txt", "Bonjour"));
    files.push(("en_US/welcome.sms.txt", "Hi"));
    let errors = TemplateSet::load(&files).unwrap_err();
    let text = errors.to_string();
    for expected in [
        "en_US/test_message.sms.txt: unclosed {{",
        "es_US/test_message.email.txt: an email template starts with",
        "fr_FR/test_message.sms.txt: unknown locale",
        "en_US/welcome.sms.txt: unknown template",
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text}");
    }
}

fn sample_facts(modality: Modality) -> Facts {
    Facts {
        start: Some(1_773_063_000),          // 2026-03-09T13:30:00Z, 9:30 EDT
        previous_start: Some(1_772_807_400), // 2026-03-06T14:30:00Z, 9:30 EST
        modality: modality as i32,
        time_zone: "America/New_York".into(),
        window_start: Some(1_773_150_000),
        window_end: Some(1_773_322_800),
        detect_time: Some(1_773_063_000),
        patient_id: "0198f0a4-7c1e-7aa0-9c55-3f1d2e4b5a60".into(),
        appointment_id: "0198f0a4-7c1e-7aa0-9c55-3f1d2e4b5a61".into(),
        decision: "approved".into(),
        prior_authorization_id: "0198f0a4-7c1e-7aa0-9c55-3f1d2e4b5a62".into(),
        authorization_number: "AUTH-778812".into(),
        amount_cents: Some(4_550),
        currency: "USD".into(),
        service_date: "2026-03-09".into(),
        event_type: String::new(),
    }
}

fn revealing_clinic() -> ClinicInfo {
    ClinicInfo {
        name: "Ketamine Health Centers".into(),
        location_name: "Coral Gables".into(),
        phone: "+13055550100".into(),
        time_zone: "America/New_York".into(),
        iv_instructions: [
            (
                "en_US".to_owned(),
                "No food for 6 hours before your infusion.".to_owned(),
            ),
            (
                "es_US".to_owned(),
                "No coma 6 horas antes de su infusión.".to_owned(),
            ),
        ]
        .into_iter()
        .collect(),
    }
}

const MODALITIES: [Modality; 6] = [
    Modality::IvKetamine,
    Modality::EsketamineNasalSpray,
    Modality::OralKetamineLozenge,
    Modality::IntegrationTherapy,
    Modality::Psychotherapy,
    Modality::Telehealth,
];

/// Renders every template on each of its channels in both locales, for every modality.
fn render_all() -> Vec<(String, Rendered)> {
    let set = TemplateSet::embedded().unwrap();
    let clinic = revealing_clinic();
    let mut out = Vec::new();
    for modality in MODALITIES {
        let facts = sample_facts(modality);
        let zone = compose::zone(&clinic, &facts).unwrap();
        for id in TemplateId::ALL {
            for channel in id.channels() {
                for locale in LOCALES {
                    let values = compose::values(id, &facts, &clinic, locale).unwrap();
                    let rendered = set.render(id, *channel, locale, &values, &zone).unwrap();
                    let label = format!(
                        "{}/{}.{} ({modality:?})",
                        locale_dir(locale),
                        id.name(),
                        channel_suffix(*channel)
                    );
                    out.push((label, rendered));
                }
            }
        }
    }
    out
}

#[test]
fn every_template_renders_in_both_languages_with_dst_correct_times() {
    let set = TemplateSet::embedded().unwrap();
    let clinic = revealing_clinic();
    let facts = sample_facts(Modality::EsketamineNasalSpray);
    let zone = compose::zone(&clinic, &facts).unwrap();
    for id in TemplateId::ALL {
        for channel in id.channels() {
            let en = set
                .render(
                    id,
                    *channel,
                    Locale::EnUs,
                    &compose::values(id, &facts, &clinic, Locale::EnUs).unwrap(),
                    &zone,
                )
                .unwrap();
            let es = set
                .render(
                    id,
                    *channel,
                    Locale::EsUs,
                    &compose::values(id, &facts, &clinic, Locale::EsUs).unwrap(),
                    &zone,
                )
                .unwrap();
            assert_ne!(en, es, "{} has the same text in both languages", id.name());
            assert!(!en.body.contains("{{") && !es.body.contains("{{"));
            assert_eq!(channel == &Channel::Email, en.subject.is_some());
        }
    }
    // The move of 2026-03-06 (EST) to 2026-03-09 (EDT): both shown as 9:30 local.
    let values = compose::values(
        TemplateId::AppointmentRescheduled,
        &facts,
        &clinic,
        Locale::EnUs,
    )
    .unwrap();
    let sms = set
        .render(
            TemplateId::AppointmentRescheduled,
            Channel::Sms,
            Locale::EnUs,
            &values,
            &zone,
        )
        .unwrap();
    assert!(
        sms.body.contains(
            "from Friday, March 6, 2026 at 9:30 AM EST to Monday, March 9, 2026 at 9:30 AM EDT"
        ),
        "{}",
        sms.body
    );
    let values = compose::values(
        TemplateId::AppointmentRescheduled,
        &facts,
        &clinic,
        Locale::EsUs,
    )
    .unwrap();
    let sms = set
        .render(
            TemplateId::AppointmentRescheduled,
            Channel::Sms,
            Locale::EsUs,
            &values,
            &zone,
        )
        .unwrap();
    assert!(
        sms.body.contains("del viernes 6 de marzo de 2026 a las 9:30 a. m. (EST) al lunes 9 de marzo de 2026 a las 9:30 a. m. (EDT)"),
        "{}",
        sms.body
    );
}

#[test]
fn visit_instructions_by_modality_reach_the_email() {
    let set = TemplateSet::embedded().unwrap();
    let clinic = revealing_clinic();
    for (modality, locale, expected) in [
        (
            Modality::EsketamineNasalSpray,
            Locale::EnUs,
            "at least 2 hours",
        ),
        (
            Modality::EsketamineNasalSpray,
            Locale::EsUs,
            "al menos 2 horas",
        ),
        (Modality::IvKetamine, Locale::EnUs, "No food for 6 hours"),
        (Modality::IvKetamine, Locale::EsUs, "No coma 6 horas"),
    ] {
        let facts = sample_facts(modality);
        let zone = compose::zone(&clinic, &facts).unwrap();
        let values =
            compose::values(TemplateId::AppointmentReminder, &facts, &clinic, locale).unwrap();
        let email = set
            .render(
                TemplateId::AppointmentReminder,
                Channel::Email,
                locale,
                &values,
                &zone,
            )
            .unwrap();
        assert!(
            email.body.contains(expected),
            "{modality:?} {locale:?}: {}",
            email.body
        );
    }
}

/// Minimum necessary: every SMS and every email subject, in both languages, for every modality,
/// is free of drug, diagnosis and therapy words and ICD-10 codes — even for a clinic whose own
/// name is "Ketamine Health Centers".
#[test]
fn no_sms_or_subject_names_the_drug_diagnosis_or_therapy() {
    let forbidden_extra = ["F33.2", "F32", "G2082", "J0013", "mg"];
    let rendered = render_all();
    assert!(rendered.len() > 200);
    for (label, message) in rendered {
        let mut scanned = Vec::new();
        if label.contains(".sms") {
            scanned.push(message.body.clone());
        }
        if let Some(subject) = &message.subject {
            scanned.push(subject.clone());
        }
        for text in scanned {
            assert_eq!(find_sensitive(&text), None, "{label}: {text}");
            for word in forbidden_extra {
                assert!(
                    !text
                        .split(|c: char| !c.is_alphanumeric() && c != '.')
                        .any(|w| w == word),
                    "{label}: {text}"
                );
            }
            assert!(
                text.contains("Coral Gables") || label.contains("sms_keyword"),
                "{label}: {text}"
            );
        }
    }
}
