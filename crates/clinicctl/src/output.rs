//! What clinicctl prints: aligned tables for people, JSON for scripts.
//!
//! Responses are printed through `prost-reflect` and the contracts' own descriptor set rather
//! than serde derives on the generated types: the JSON is then the canonical proto3 JSON mapping
//! of the RPC's response message (enum names, RFC 3339 timestamps, 64-bit integers as strings)
//! with the `.proto` field names, so it matches the contracts and grpcurl field for field,
//! follows every contract change without code, and needs no attributes on generated code.
//! Tables walk the same dynamic messages by field path. clinicctl's own summaries that are not
//! protobuf messages (import diffs, journey results, backlog across services) are plain serde
//! rows printed by [`Table`].

use crate::exit;
use jiff::tz::TimeZone;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, Value,
};
use serde::Serialize;
use std::sync::OnceLock;

/// How output is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns (lists) or one field per line (single objects).
    Table,
    /// The response message as proto3 JSON, one document.
    Json,
}

/// The contracts' descriptors (every clinicnet message and the well-known types they use).
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(clinicnet_proto::FILE_DESCRIPTOR_SET)
            .unwrap_or_else(|e| panic!("the built-in descriptor set is invalid: {e}"))
    })
}

/// The descriptor of a fully qualified message name, e.g. `clinicnet.directory.v1.Clinic`.
pub fn descriptor(full_name: &str) -> anyhow::Result<MessageDescriptor> {
    pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| anyhow::anyhow!("no message {full_name} in the contracts"))
}

/// `message` as a dynamic message of type `full_name`.
pub fn dynamic<M: prost::Message>(message: &M, full_name: &str) -> anyhow::Result<DynamicMessage> {
    Ok(DynamicMessage::decode(
        descriptor(full_name)?,
        message.encode_to_vec().as_slice(),
    )?)
}

/// `message` as proto3 JSON with the `.proto` field names and every field present.
pub fn to_json<M: prost::Message>(
    message: &M,
    full_name: &str,
) -> anyhow::Result<serde_json::Value> {
    let dynamic = dynamic(message, full_name)?;
    let options = prost_reflect::SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    Ok(dynamic.serialize_with_options(serde_json::value::Serializer, &options)?)
}

/// Reads a message of type `full_name` from proto3 JSON text (either field-name style).
pub fn from_json<M: prost::Message + Default>(text: &str, full_name: &str) -> anyhow::Result<M> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let dynamic = DynamicMessage::deserialize(descriptor(full_name)?, &mut deserializer)
        .map_err(|e| exit::usage(format!("not a valid {full_name} in JSON: {e}")))?;
    deserializer
        .end()
        .map_err(|e| exit::usage(format!("trailing text after the JSON document: {e}")))?;
    Ok(dynamic.transcode_to::<M>()?)
}

/// Reads a message of type `full_name` from a JSON file.
pub fn from_json_file<M: prost::Message + Default>(
    path: &std::path::Path,
    full_name: &str,
) -> anyhow::Result<M> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| exit::usage(format!("cannot read {}: {e}", path.display())))?;
    from_json(&text, full_name).map_err(|e| {
        let kind = exit::classify(&e);
        exit::CliError {
            kind,
            message: format!("{}: {e:#}", path.display()),
        }
        .into()
    })
}

/// A column of a list: its header and the field path it shows (`a.b.c`; repeated values are
/// joined with commas).
pub type Column = (&'static str, &'static str);

/// Prints responses in the chosen format; table times in the chosen zone.
#[derive(Debug, Clone)]
pub struct Printer {
    /// Table or JSON.
    pub format: Format,
    zone: TimeZone,
}

impl Printer {
    /// A printer.
    pub fn new(format: Format, zone: TimeZone) -> Printer {
        Printer { format, zone }
    }

    /// Whether output is JSON.
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// JSON: the whole response. Table: each field of the message at `path` (the response
    /// itself when empty) on its own line.
    pub fn object<M: prost::Message>(
        &self,
        response: &M,
        type_name: &str,
        path: &str,
    ) -> anyhow::Result<()> {
        match self.format {
            Format::Json => print_json(&to_json(response, type_name)?),
            Format::Table => {
                let message = dynamic(response, type_name)?;
                let target = if path.is_empty() {
                    Some(message)
                } else {
                    match lookup(&message, path) {
                        Some(Value::Message(m)) => Some(m),
                        _ => None,
                    }
                };
                match target {
                    Some(m) => print!("{}", self.describe(&m)),
                    None => println!("(nothing)"),
                }
                Ok(())
            }
        }
    }

    /// JSON: the whole response. Table: one row per element of the repeated field `items`, with
    /// `columns`, and the next page token on standard error when there is one.
    pub fn list<M: prost::Message>(
        &self,
        response: &M,
        type_name: &str,
        items: &str,
        columns: &[Column],
    ) -> anyhow::Result<()> {
        match self.format {
            Format::Json => print_json(&to_json(response, type_name)?),
            Format::Table => {
                let message = dynamic(response, type_name)?;
                let rows = match lookup(&message, items) {
                    Some(Value::List(values)) => values,
                    _ => Vec::new(),
                };
                let mut table = Table::new(columns.iter().map(|(h, _)| *h).collect());
                for row in &rows {
                    let Value::Message(row) = row else { continue };
                    table.row(
                        columns
                            .iter()
                            .map(|(_, path)| self.cell(row, path))
                            .collect(),
                    );
                }
                print!("{}", table.render());
                if rows.is_empty() {
                    println!("(none)");
                }
                if let Some(Value::String(token)) = lookup(&message, "next_page_token")
                    && !token.is_empty()
                {
                    eprintln!("more: --page-token {token}");
                }
                Ok(())
            }
        }
    }

    /// The text of the field at `path` in `message`.
    pub fn cell(&self, message: &DynamicMessage, path: &str) -> String {
        match lookup_field(message, path) {
            Some((value, kind)) => self.value(&value, &kind),
            None => "-".to_owned(),
        }
    }

    /// A message as `field: value` lines, nested messages indented.
    pub fn describe(&self, message: &DynamicMessage) -> String {
        let mut out = String::new();
        self.describe_into(message, 0, &mut out);
        out
    }

    fn describe_into(&self, message: &DynamicMessage, depth: usize, out: &mut String) {
        let indent = "  ".repeat(depth);
        let fields: Vec<_> = message.descriptor().fields().collect();
        let width = fields.iter().map(|f| f.name().len()).max().unwrap_or(0);
        for field in fields {
            if field.containing_oneof().is_some() && !message.has_field(&field) {
                continue;
            }
            let value = message.get_field(&field);
            let kind = field.kind();
            match (&*value, &kind) {
                (Value::Message(inner), Kind::Message(desc))
                    if !is_scalar_like(desc.full_name()) =>
                {
                    if message.has_field(&field) {
                        out.push_str(&format!("{indent}{}:\n", field.name()));
                        self.describe_into(inner, depth + 1, out);
                    } else {
                        out.push_str(&format!("{indent}{:width$}  -\n", field.name()));
                    }
                }
                (Value::List(items), Kind::Message(desc)) if !is_scalar_like(desc.full_name()) => {
                    if items.is_empty() {
                        out.push_str(&format!("{indent}{:width$}  -\n", field.name()));
                    }
                    for (n, item) in items.iter().enumerate() {
                        if let Value::Message(inner) = item {
                            out.push_str(&format!("{indent}{}[{}]:\n", field.name(), n + 1));
                            self.describe_into(inner, depth + 1, out);
                        }
                    }
                }
                _ => {
                    let text = if field.supports_presence() && !message.has_field(&field) {
                        "-".to_owned()
                    } else {
                        self.value(&value, &kind)
                    };
                    out.push_str(&format!("{indent}{:width$}  {text}\n", field.name()));
                }
            }
        }
    }

    /// One value as table text.
    pub fn value(&self, value: &Value, kind: &Kind) -> String {
        match value {
            Value::List(items) => {
                let parts: Vec<String> = items.iter().map(|v| self.value(v, kind)).collect();
                if parts.is_empty() {
                    "-".to_owned()
                } else {
                    parts.join(",")
                }
            }
            Value::EnumNumber(n) => match kind {
                Kind::Enum(desc) => enum_short_name(desc, *n),
                _ => n.to_string(),
            },
            Value::Message(m) => self.message_text(m),
            Value::String(s) if s.is_empty() => "-".to_owned(),
            Value::String(s) => s.clone(),
            Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
            Value::Bytes(b) => format!("({} bytes)", b.len()),
            Value::I32(n) => n.to_string(),
            Value::I64(n) => n.to_string(),
            Value::U32(n) => n.to_string(),
            Value::U64(n) => n.to_string(),
            Value::F32(n) => format!("{n:.2}"),
            Value::F64(n) => format!("{n:.2}"),
            Value::Map(_) => "{…}".to_owned(),
        }
    }

    fn message_text(&self, m: &DynamicMessage) -> String {
        let int = |name: &str| -> i64 {
            match m.get_field_by_name(name).as_deref() {
                Some(Value::I32(n)) => i64::from(*n),
                Some(Value::I64(n)) => *n,
                Some(Value::U32(n)) => i64::from(*n),
                _ => 0,
            }
        };
        let string = |name: &str| -> String {
            match m.get_field_by_name(name).as_deref() {
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            }
        };
        match m.descriptor().full_name() {
            "google.protobuf.Timestamp" => {
                match jiff::Timestamp::new(int("seconds"), int("nanos") as i32) {
                    Ok(ts) => ts
                        .to_zoned_datetime(self.zone.clone())
                        .strftime("%Y-%m-%d %H:%M %Z")
                        .to_string(),
                    Err(_) => "-".to_owned(),
                }
            }
            "google.protobuf.Duration" => duration_text(int("seconds")),
            "clinicnet.common.v1.Date" => {
                format!("{:04}-{:02}-{:02}", int("year"), int("month"), int("day"))
            }
            "clinicnet.common.v1.TimeOfDay" => format!("{:02}:{:02}", int("hours"), int("minutes")),
            "clinicnet.common.v1.Money" => {
                money_text(&string("currency_code"), int("amount_cents"))
            }
            "clinicnet.common.v1.PersonName" => [
                string("given_name"),
                string("middle_name"),
                string("family_name"),
            ]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
            "clinicnet.common.v1.TimeInterval" | "clinicnet.directory.v1.LocalTimeRange" => {
                let part = |name: &str| match m.get_field_by_name(name).as_deref() {
                    Some(Value::Message(inner)) if m.has_field_by_name(name) => {
                        self.message_text(inner)
                    }
                    _ => "…".to_owned(),
                };
                let (a, b) = if m.descriptor().full_name().ends_with("TimeInterval") {
                    ("start_time", "end_time")
                } else {
                    ("start", "end")
                };
                format!("{} → {}", part(a), part(b))
            }
            "clinicnet.common.v1.GeoPoint" => match (
                m.get_field_by_name("latitude").as_deref(),
                m.get_field_by_name("longitude").as_deref(),
            ) {
                (Some(Value::F64(lat)), Some(Value::F64(lon))) => format!("{lat:.4},{lon:.4}"),
                _ => "-".to_owned(),
            },
            "clinicnet.appointments.v1.Phq9" => format!("PHQ-9 {}", int("total_score")),
            "clinicnet.appointments.v1.BloodPressure" => {
                format!("{}/{}", int("systolic_mmhg"), int("diastolic_mmhg"))
            }
            "clinicnet.notifications.v1.Recipient" => {
                let patient = string("patient_id");
                if patient.is_empty() {
                    format!("clinic {}", string("clinic_id"))
                } else {
                    format!("patient {patient}")
                }
            }
            _ => {
                let parts: Vec<String> = m
                    .fields()
                    .map(|(field, value)| {
                        format!("{}={}", field.name(), self.value(value, &field.kind()))
                    })
                    .collect();
                if parts.is_empty() {
                    "-".to_owned()
                } else {
                    parts.join(" ")
                }
            }
        }
    }
}

/// Message types shown on one line rather than expanded.
fn is_scalar_like(full_name: &str) -> bool {
    matches!(
        full_name,
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "clinicnet.common.v1.Date"
            | "clinicnet.common.v1.TimeOfDay"
            | "clinicnet.common.v1.Money"
            | "clinicnet.common.v1.PersonName"
            | "clinicnet.common.v1.TimeInterval"
            | "clinicnet.common.v1.GeoPoint"
            | "clinicnet.directory.v1.LocalTimeRange"
            | "clinicnet.appointments.v1.Phq9"
            | "clinicnet.appointments.v1.BloodPressure"
            | "clinicnet.notifications.v1.Recipient"
    )
}

/// An enum value's name without its enum prefix, lower case (`CLINIC_STATUS_ACTIVE` → `active`).
pub fn enum_short_name(desc: &prost_reflect::EnumDescriptor, number: i32) -> String {
    let Some(value) = desc.get_value(number) else {
        return number.to_string();
    };
    let prefix = desc
        .get_value(0)
        .map(|zero| zero.name().trim_end_matches("UNSPECIFIED").to_owned())
        .unwrap_or_default();
    let name = value.name();
    let short = name.strip_prefix(prefix.as_str()).unwrap_or(name);
    if number == 0 {
        "-".to_owned()
    } else {
        short.to_ascii_lowercase()
    }
}

/// The value at a dotted field path, if every step exists.
pub fn lookup(message: &DynamicMessage, path: &str) -> Option<Value> {
    lookup_field(message, path).map(|(value, _)| value)
}

fn lookup_field(message: &DynamicMessage, path: &str) -> Option<(Value, Kind)> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let field = message.descriptor().get_field_by_name(head)?;
    if field.supports_presence() && !message.has_field(&field) {
        return None;
    }
    let value = message.get_field(&field).into_owned();
    match rest {
        None => Some((value, field.kind())),
        Some(rest) => match value {
            Value::Message(inner) => lookup_field(&inner, rest),
            _ => None,
        },
    }
}

/// `$906.51` for USD, `906.51 EUR` otherwise; negative amounts keep their sign.
pub fn money_text(currency: &str, cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let amount = format!("{}.{:02}", abs / 100, abs % 100);
    if currency == "USD" || currency.is_empty() {
        format!("{sign}${amount}")
    } else {
        format!("{sign}{amount} {currency}")
    }
}

/// `2h`, `1h30m`, `45s`.
pub fn duration_text(seconds: i64) -> String {
    if seconds == 0 {
        return "0s".to_owned();
    }
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    let mut text = String::new();
    if h != 0 {
        text.push_str(&format!("{h}h"));
    }
    if m != 0 {
        text.push_str(&format!("{m}m"));
    }
    if s != 0 {
        text.push_str(&format!("{s}s"));
    }
    text
}

/// Pretty JSON on standard output.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A table of text cells with aligned columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: Vec<&str>) -> Table {
        Table {
            headers: headers.into_iter().map(str::to_owned).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: columns separated by two spaces, padded to the widest cell.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&self.headers);
        for row in &self.rows {
            line(row);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::common::v1::{Date, Modality, Money};
    use clinicnet_proto::directory::v1::{Clinic, ClinicStatus, ListClinicsResponse};

    fn printer() -> Printer {
        Printer::new(Format::Table, TimeZone::get("America/New_York").unwrap())
    }

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(vec!["ID", "NAME"]);
        table.row(vec!["1".into(), "Ketamine Health Centers".into()]);
        table.row(vec!["22".into(), "Ñandú".into()]);
        assert_eq!(
            table.render(),
            "ID  NAME\n1   Ketamine Health Centers\n22  Ñandú\n"
        );
    }

    #[test]
    fn list_cells_follow_field_paths_and_shorten_enums() {
        let clinic = Clinic {
            clinic_id: "c1".into(),
            display_name: "Ketamine Expert Clinic".into(),
            status: ClinicStatus::Active as i32,
            modalities: vec![
                Modality::IvKetamine as i32,
                Modality::EsketamineNasalSpray as i32,
            ],
            ..Default::default()
        };
        let message = dynamic(&clinic, "clinicnet.directory.v1.Clinic").unwrap();
        let p = printer();
        assert_eq!(p.cell(&message, "status"), "active");
        assert_eq!(
            p.cell(&message, "modalities"),
            "iv_ketamine,esketamine_nasal_spray"
        );
        assert_eq!(p.cell(&message, "rems_certification.certification_id"), "-");
    }

    #[test]
    fn json_uses_proto_field_names_and_enum_names() {
        let response = ListClinicsResponse {
            clinics: vec![Clinic {
                clinic_id: "c1".into(),
                status: ClinicStatus::Suspended as i32,
                version: 7,
                ..Default::default()
            }],
            next_page_token: String::new(),
        };
        let json = to_json(&response, "clinicnet.directory.v1.ListClinicsResponse").unwrap();
        assert_eq!(json["clinics"][0]["clinic_id"], "c1");
        assert_eq!(json["clinics"][0]["status"], "CLINIC_STATUS_SUSPENDED");
        assert_eq!(json["clinics"][0]["version"], "7");
        let back: ListClinicsResponse = from_json(
            &json.to_string(),
            "clinicnet.directory.v1.ListClinicsResponse",
        )
        .unwrap();
        assert_eq!(back, response);
    }

    #[test]
    fn money_dates_and_durations_render_for_people() {
        assert_eq!(money_text("USD", 90651), "$906.51");
        assert_eq!(money_text("USD", -5), "-$0.05");
        assert_eq!(duration_text(5400), "1h30m");
        let date = Date {
            year: 2026,
            month: 3,
            day: 8,
        };
        let m = dynamic(&date, "clinicnet.common.v1.Date").unwrap();
        assert_eq!(printer().message_text(&m), "2026-03-08");
        let money = Money {
            currency_code: "USD".into(),
            amount_cents: 128982,
        };
        let m = dynamic(&money, "clinicnet.common.v1.Money").unwrap();
        assert_eq!(printer().message_text(&m), "$1289.82");
    }
}
