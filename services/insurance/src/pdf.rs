//! The self-pay superbill rendered as a one-page PDF (standard Helvetica, WinAnsi text): who
//! rendered the service (NPIs), for whom, when, the diagnoses, and each line's code, modifiers,
//! units, place of service, diagnosis pointers and charge, with the total. Rendered on demand from
//! the stored superbill, so the same superbill always gives the same document content.

use clinicnet_proto::{appointments::v1::Patient, common::v1::Date, insurance::v1::Superbill};
use lopdf::{
    Document, Object, Stream, StringFormat,
    content::{Content, Operation},
    dictionary,
};

/// US Letter, in points.
const PAGE: (i64, i64) = (612, 792);
const MARGIN: i64 = 54;
const LEADING: i64 = 16;

/// `cents` as dollars, e.g. `$1,356.00`.
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{sign}${grouped}.{:02}", abs % 100)
}

fn date_text(date: Option<&Date>) -> String {
    date.map_or_else(String::new, |d| {
        format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
    })
}

/// The text lines of the superbill, top to bottom.
pub fn text_lines(superbill: &Superbill, patient: Option<&Patient>) -> Vec<String> {
    let mut lines = vec![
        "SUPERBILL (SELF-PAY STATEMENT FOR INSURANCE REIMBURSEMENT)".to_owned(),
        String::new(),
    ];
    if let Some(name) = patient.and_then(|p| p.name.as_ref()) {
        let full = [&name.given_name, &name.middle_name, &name.family_name]
            .into_iter()
            .filter(|part| !part.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        lines.push(format!("Patient: {full}"));
    }
    if let Some(birth) = patient.and_then(|p| p.birth_date.as_ref()) {
        lines.push(format!("Date of birth: {}", date_text(Some(birth))));
    }
    lines.extend([
        format!("Patient ID: {}", superbill.patient_id),
        format!("Clinic ID: {}", superbill.clinic_id),
        format!("Billing provider NPI: {}", superbill.billing_provider_npi),
        format!(
            "Rendering provider NPI: {}",
            superbill.rendering_provider_npi
        ),
        format!(
            "Date of service: {}",
            date_text(superbill.service_date.as_ref())
        ),
        format!("Superbill ID: {}", superbill.superbill_id),
        String::new(),
        "Diagnoses (ICD-10-CM):".to_owned(),
    ]);
    for (i, code) in superbill.diagnosis_codes.iter().enumerate() {
        lines.push(format!("  {}. {code}", i + 1));
    }
    lines.push(String::new());
    lines.push("Line  Code   Modifiers  Units  POS  Dx pointers  Charge".to_owned());
    for line in &superbill.lines {
        let modifiers = if line.modifiers.is_empty() {
            "-".to_owned()
        } else {
            line.modifiers.join(",")
        };
        let pointers = line
            .diagnosis_pointers
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        lines.push(format!(
            "{:<5} {:<6} {:<10} {:<6} {:<4} {:<12} {}",
            line.line_number,
            line.procedure_code,
            modifiers,
            line.units,
            line.place_of_service,
            pointers,
            dollars(line.charge.as_ref().map_or(0, |m| m.amount_cents))
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "Total charges: {}",
        dollars(
            superbill
                .total_charge
                .as_ref()
                .map_or(0, |m| m.amount_cents)
        )
    ));
    lines
}

/// WinAnsi bytes of `text` (Latin-1 characters kept, anything else as '?').
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// Renders the superbill as PDF bytes.
pub fn render(superbill: &Superbill, patient: Option<&Patient>) -> Result<Vec<u8>, lopdf::Error> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.try_new_object_id()?;
    let font_id = doc.try_add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Courier",
        "Encoding" => "WinAnsiEncoding",
    })?;
    let resources_id = doc.try_add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    })?;
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 10.into()]),
        Operation::new("TL", vec![LEADING.into()]),
        Operation::new("Td", vec![MARGIN.into(), (PAGE.1 - MARGIN).into()]),
    ];
    for line in text_lines(superbill, patient) {
        operations.push(Operation::new(
            "Tj",
            vec![Object::String(win_ansi(&line), StringFormat::Literal)],
        ));
        operations.push(Operation::new("T*", vec![]));
    }
    operations.push(Operation::new("ET", vec![]));
    let content = Content { operations }.encode()?;
    let content_id = doc.try_add_object(Stream::new(dictionary! {}, content))?;
    let page_id = doc.try_add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content_id,
        "Resources" => resources_id,
        "MediaBox" => vec![0.into(), 0.into(), PAGE.0.into(), PAGE.1.into()],
    })?;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
        }),
    );
    let catalog_id = doc.try_add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    })?;
    doc.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::insurance::v1::ServiceLine;

    #[test]
    fn dollars_group_thousands_and_keep_cents() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(5), "$0.05");
        assert_eq!(dollars(135_600), "$1,356.00");
        assert_eq!(dollars(123_456_789), "$1,234,567.89");
        assert_eq!(dollars(-250), "-$2.50");
    }

    #[test]
    fn rendered_superbill_parses_back_with_its_facts() {
        let superbill = Superbill {
            superbill_id: "sb-1".into(),
            patient_id: "patient-1".into(),
            billing_provider_npi: "1245319599".into(),
            rendering_provider_npi: "1679576722".into(),
            diagnosis_codes: vec!["F33.2".into()],
            lines: vec![ServiceLine {
                line_number: 1,
                procedure_code: "96365".into(),
                units: 1,
                place_of_service: "11".into(),
                diagnosis_pointers: vec![1],
                charge: Some(crate::convert::usd(45_000)),
                ..Default::default()
            }],
            total_charge: Some(crate::convert::usd(45_000)),
            ..Default::default()
        };
        let bytes = render(&superbill, None).unwrap();
        let text = Document::load_mem(&bytes)
            .unwrap()
            .extract_text(&[1])
            .unwrap();
        for expected in ["96365", "$450.00", "F33.2", "1245319599", "1679576722"] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
    }
}
