//! FHIR R4 availability: a Bundle (any type: searchset, collection, transaction…) whose entries
//! hold Slot resources, as EHRs such as Medplum export them. Other resources are ignored except
//! Schedules, which Slots point at.
//!
//! Slot.status, as FHIR R4 defines it: only `free` is availability to import. `busy` (booked),
//! `busy-tentative` (held) and `busy-unavailable` (blocked) are not free time, so they are left
//! out of the sync — any free slot clinicnet has in their place is removed, while clinicnet's own
//! booked and held slots are always kept by the sync. `entered-in-error` slots never existed and
//! are ignored. Any other status is an error.
//!
//! Chair: the Slot extension `https://clinicnet.example/fhir/StructureDefinition/chair`
//! (valueString), else the Schedule's `Location` or `Device` actor (display, else its id), else
//! `schedule.display`, else `--chair`. Provider: the Schedule's `Practitioner` actor (NPI
//! identifier, else its id), optional. Modality: a `serviceType` or `appointmentType` coding code
//! or text naming one, else `--modality`. Times are FHIR instants (with an offset).

use super::{FileSlot, ParseOptions, Parsed, RowError, Skipped, check_span, modality_of};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// The extension naming a Slot's chair directly.
pub const CHAIR_EXTENSION: &str = "https://clinicnet.example/fhir/StructureDefinition/chair";
const NPI_SYSTEM: &str = "http://hl7.org/fhir/sid/us-npi";

#[derive(Deserialize)]
struct Bundle<'a> {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    #[serde(default, borrow)]
    entry: Vec<Entry<'a>>,
}

#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, borrow)]
    resource: Option<&'a RawValue>,
}

/// 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Byte offset of a borrowed slice inside `text`.
fn offset_in(text: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize)
}

/// Where a Schedule points: chair and provider references.
#[derive(Debug, Default, Clone)]
struct ScheduleActors {
    chair: Option<String>,
    provider: Option<String>,
}

fn schedule_actors(resource: &Value) -> ScheduleActors {
    let mut actors = ScheduleActors::default();
    for actor in resource["actor"].as_array().into_iter().flatten() {
        let reference = actor["reference"].as_str().unwrap_or_default();
        let display = actor["display"].as_str().filter(|d| !d.is_empty());
        let id = reference.split('/').nth(1).filter(|i| !i.is_empty());
        if reference.starts_with("Location/") || reference.starts_with("Device/") {
            actors.chair = display.or(id).map(str::to_owned);
        } else if reference.starts_with("Practitioner/") {
            let npi = actor["identifier"]["system"]
                .as_str()
                .filter(|s| *s == NPI_SYSTEM)
                .and_then(|_| actor["identifier"]["value"].as_str());
            actors.provider = npi.or(id).map(str::to_owned);
        }
    }
    actors
}

/// Parses a FHIR Bundle.
pub fn parse(text: &str, options: &ParseOptions) -> Result<Parsed, Vec<RowError>> {
    let bundle: Bundle = serde_json::from_str(text).map_err(|e| {
        vec![RowError {
            line: e.line(),
            message: format!("not a FHIR Bundle in JSON: {e}"),
        }]
    })?;
    if bundle.resource_type.as_deref() != Some("Bundle") {
        return Err(vec![RowError {
            line: 1,
            message: "resourceType is not Bundle".into(),
        }]);
    }
    let mut entries = Vec::new();
    let mut schedules: HashMap<String, ScheduleActors> = HashMap::new();
    for raw in bundle.entry.iter().filter_map(|e| e.resource) {
        let line = line_at(text, offset_in(text, raw.get()));
        let resource: Value = match serde_json::from_str(raw.get()) {
            Ok(v) => v,
            Err(e) => {
                return Err(vec![RowError {
                    line,
                    message: format!("unreadable resource: {e}"),
                }]);
            }
        };
        if resource["resourceType"] == "Schedule"
            && let Some(id) = resource["id"].as_str()
        {
            schedules.insert(format!("Schedule/{id}"), schedule_actors(&resource));
        }
        entries.push((line, resource));
    }
    let mut parsed = Parsed::default();
    let mut errors = Vec::new();
    for (line, resource) in entries {
        if resource["resourceType"] != "Slot" {
            continue;
        }
        match slot(&resource, &schedules, options) {
            Ok(Some(mut s)) => {
                s.line = line;
                options.keep(&mut parsed, s);
            }
            Ok(None) => parsed.skipped.push(Skipped {
                line,
                reason: status_reason(resource["status"].as_str().unwrap_or_default()),
            }),
            Err(message) => errors.push(RowError {
                line,
                message: match resource["id"].as_str() {
                    Some(id) => format!("Slot {id}: {message}"),
                    None => message,
                },
            }),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// Why a Slot of a non-free status is not imported.
fn status_reason(status: &str) -> String {
    match status {
        "busy" => "status busy: already booked in the source system, not free time".into(),
        "busy-tentative" => {
            "status busy-tentative: tentatively booked (held), not free time".into()
        }
        "busy-unavailable" => "status busy-unavailable: blocked, cannot be scheduled".into(),
        "entered-in-error" => "status entered-in-error: the slot should never have existed".into(),
        other => format!("status {other}"),
    }
}

/// The free slot a Slot resource describes; None for a valid non-free status.
fn slot(
    resource: &Value,
    schedules: &HashMap<String, ScheduleActors>,
    options: &ParseOptions,
) -> Result<Option<FileSlot>, String> {
    match resource["status"].as_str() {
        Some("free") => {}
        Some("busy" | "busy-tentative" | "busy-unavailable" | "entered-in-error") => {
            return Ok(None);
        }
        Some(other) => return Err(format!("status {other:?} is not a FHIR R4 Slot status")),
        None => return Err("no status".into()),
    }
    let instant = |name: &str| -> Result<jiff::Timestamp, String> {
        let value = resource[name]
            .as_str()
            .ok_or_else(|| format!("no {name}"))?;
        value
            .parse::<jiff::Timestamp>()
            .map_err(|_| format!("{name} {value:?} is not a FHIR instant with an offset"))
    };
    let start = instant("start")?;
    let end = instant("end")?;
    check_span(start, end)?;
    let schedule_ref = resource["schedule"]["reference"]
        .as_str()
        .unwrap_or_default();
    let actors = schedules.get(schedule_ref).cloned().unwrap_or_default();
    let extension_chair = resource["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["url"] == CHAIR_EXTENSION)
        .and_then(|e| e["valueString"].as_str())
        .map(str::to_owned);
    let chair = extension_chair
        .or(actors.chair)
        .or_else(|| resource["schedule"]["display"].as_str().map(str::to_owned))
        .or_else(|| options.default_chair.clone())
        .ok_or_else(|| {
            "no chair: add the chair extension, a Schedule with a Location actor, or pass --chair"
                .to_owned()
        })?;
    let mut named = Vec::new();
    for key in ["serviceType", "appointmentType"] {
        let concepts: Vec<&Value> = match &resource[key] {
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) => vec![&resource[key]],
            _ => Vec::new(),
        };
        for concept in concepts {
            for coding in concept["coding"].as_array().into_iter().flatten() {
                named.extend(coding["code"].as_str().map(str::to_owned));
                named.extend(coding["display"].as_str().map(str::to_owned));
            }
            named.extend(concept["text"].as_str().map(str::to_owned));
        }
    }
    let modality = match named.iter().find_map(|n| crate::args::modality(n).ok()) {
        Some(m) => m,
        None => match (named.first(), options.default_modality) {
            (_, Some(m)) => m,
            (Some(n), None) => return Err(modality_of(n).err().unwrap_or_default()),
            (None, None) => return Err("no modality: set serviceType or pass --modality".into()),
        },
    };
    Ok(Some(FileSlot {
        line: 0,
        external_id: resource["id"].as_str().unwrap_or_default().to_owned(),
        chair,
        provider: actors.provider.unwrap_or_default(),
        modality,
        start,
        end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::common::v1::Modality;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    fn options() -> ParseOptions {
        ParseOptions {
            zone: TimeZone::get("America/New_York").unwrap(),
            window: (
                "2026-03-01T00:00:00Z".parse().unwrap(),
                "2026-04-01T00:00:00Z".parse().unwrap(),
            ),
            default_chair: None,
            default_modality: None,
        }
    }

    const BUNDLE: &str = r#"{
  "resourceType": "Bundle",
  "type": "searchset",
  "entry": [
    {
      "resource": {
        "resourceType": "Schedule",
        "id": "sched-1",
        "actor": [
          {"reference": "Location/loc-9", "display": "Spravato 1"},
          {"reference": "Practitioner/p-1", "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}}
        ]
      }
    },
    {
      "resource": {"resourceType": "Slot", "id": "s-free", "schedule": {"reference": "Schedule/sched-1"},
        "status": "free", "start": "2026-03-10T09:00:00-04:00", "end": "2026-03-10T11:30:00-04:00",
        "serviceType": [{"coding": [{"system": "https://clinicnet.example/modality", "code": "esketamine"}]}]}
    },
    {
      "resource": {"resourceType": "Slot", "id": "s-busy", "schedule": {"reference": "Schedule/sched-1"},
        "status": "busy", "start": "2026-03-10T12:00:00-04:00", "end": "2026-03-10T14:30:00-04:00"}
    },
    {
      "resource": {"resourceType": "Slot", "id": "s-tentative", "schedule": {"reference": "Schedule/sched-1"},
        "status": "busy-tentative", "start": "2026-03-11T12:00:00-04:00", "end": "2026-03-11T14:30:00-04:00"}
    },
    {
      "resource": {"resourceType": "Slot", "id": "s-blocked", "schedule": {"reference": "Schedule/sched-1"},
        "status": "busy-unavailable", "start": "2026-03-12T12:00:00-04:00", "end": "2026-03-12T14:30:00-04:00"}
    },
    {
      "resource": {"resourceType": "Slot", "id": "s-error", "schedule": {"reference": "Schedule/sched-1"},
        "status": "entered-in-error", "start": "2026-03-13T12:00:00-04:00", "end": "2026-03-13T14:30:00-04:00"}
    },
    {
      "resource": {"resourceType": "Slot", "id": "s-pacific",
        "extension": [{"url": "https://clinicnet.example/fhir/StructureDefinition/chair", "valueString": "Infusion 2"}],
        "schedule": {"reference": "Schedule/elsewhere"},
        "status": "free", "start": "2026-03-10T09:00:00-07:00", "end": "2026-03-10T10:30:00-07:00",
        "serviceType": [{"text": "IV ketamine"}]}
    }
  ]
}"#;

    #[test]
    fn only_free_slots_are_imported_and_other_statuses_are_skipped_as_fhir_means_them() {
        let parsed = parse(BUNDLE, &options()).unwrap();
        assert_eq!(parsed.slots.len(), 2);
        let free = &parsed.slots[0];
        assert_eq!(free.external_id, "s-free");
        assert_eq!(free.chair, "Spravato 1");
        assert_eq!(free.provider, "1234567893");
        assert_eq!(free.modality, Modality::EsketamineNasalSpray as i32);
        assert_eq!(free.start.to_string(), "2026-03-10T13:00:00Z");
        assert_eq!(free.line, 16);
        let pacific = &parsed.slots[1];
        assert_eq!(pacific.chair, "Infusion 2");
        assert_eq!(pacific.modality, Modality::IvKetamine as i32);
        assert_eq!(pacific.start.to_string(), "2026-03-10T16:00:00Z");
        let reasons: Vec<&str> = parsed.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4);
        assert!(reasons[0].starts_with("status busy:"));
        assert!(reasons[1].starts_with("status busy-tentative"));
        assert!(reasons[2].starts_with("status busy-unavailable"));
        assert!(reasons[3].starts_with("status entered-in-error"));
        assert_eq!(parsed.skipped[0].line, 21);
    }

    #[test]
    fn bad_slots_are_reported_with_their_lines() {
        let text = r#"{"resourceType": "Bundle", "entry": [
{"resource": {"resourceType": "Slot", "id": "a", "status": "free", "start": "2026-03-10T09:00:00Z", "end": "2026-03-10T10:00:00Z", "schedule": {"display": "C1"}, "serviceType": [{"text": "iv"}]}},
{"resource": {"resourceType": "Slot", "id": "b", "status": "open", "start": "2026-03-10T09:00:00Z", "end": "2026-03-10T10:00:00Z"}},
{"resource": {"resourceType": "Slot", "id": "c", "status": "free", "start": "2026-03-10T09:00:00", "end": "2026-03-10T10:00:00Z", "schedule": {"display": "C1"}, "serviceType": [{"text": "iv"}]}},
{"resource": {"resourceType": "Slot", "id": "d", "status": "free", "start": "2026-03-10T09:00:00Z", "end": "2026-03-10T10:00:00Z", "serviceType": [{"text": "iv"}]}}
]}"#;
        let errors = parse(text, &options()).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(errors[0].message.contains("Slot b") && errors[0].message.contains("open"));
        assert!(errors[1].message.contains("instant"));
        assert!(errors[2].message.contains("no chair"));
    }

    #[test]
    fn not_a_bundle() {
        assert!(parse(r#"{"resourceType": "Slot"}"#, &options()).is_err());
        assert_eq!(parse("{\n\n oops", &options()).unwrap_err()[0].line, 3);
    }

    proptest! {
        #[test]
        fn generated_bundles_keep_every_free_slot_in_order(statuses in proptest::collection::vec(
            proptest::sample::select(vec!["free", "busy", "busy-tentative", "busy-unavailable", "entered-in-error"]), 0..30)) {
            let mut entries = Vec::new();
            for (i, status) in statuses.iter().enumerate() {
                entries.push(format!(
                    "{{\"resource\": {{\"resourceType\": \"Slot\", \"id\": \"s{i}\", \"status\": \"{status}\", \"start\": \"2026-03-10T{h:02}:00:00Z\", \"end\": \"2026-03-10T{h:02}:30:00Z\", \"schedule\": {{\"display\": \"C\"}}, \"serviceType\": [{{\"text\": \"iv\"}}]}}}}",
                    h = i % 24
                ));
            }
            let text = format!("{{\"resourceType\": \"Bundle\", \"entry\": [\n{}\n]}}", entries.join(",\n"));
            let parsed = parse(&text, &options()).unwrap();
            let free: Vec<String> = statuses.iter().enumerate().filter(|(_, s)| **s == "free").map(|(i, _)| format!("s{i}")).collect();
            let got: Vec<String> = parsed.slots.iter().map(|s| s.external_id.clone()).collect();
            prop_assert_eq!(got, free);
            prop_assert_eq!(parsed.slots.len() + parsed.skipped.len(), statuses.len());
            for slot in &parsed.slots {
                let index: usize = slot.external_id[1..].parse().unwrap();
                prop_assert_eq!(slot.line, index + 2);
            }
        }
    }
}
