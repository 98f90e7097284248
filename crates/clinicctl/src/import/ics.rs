//! iCalendar availability (RFC 5545), e.g. a practice calendar exported from an EHR or a
//! calendar app: every VEVENT is a block of availability.
//!
//! - DTSTART / DTEND (or DURATION) in UTC (`…Z`), with a TZID (IANA, or the common Windows
//!   names for US zones), or floating (read in the clinic's zone). All-day events are refused.
//! - RRULE (see [`super::rrule`]), EXDATE and RDATE; an event with RECURRENCE-ID replaces that
//!   occurrence of its series. STATUS:CANCELLED events and occurrences are skipped.
//! - Chair: X-CLINICNET-CHAIR, else LOCATION, else `--chair`. Modality: X-CLINICNET-MODALITY,
//!   else the first CATEGORIES value naming one, else `--modality`. Provider:
//!   X-CLINICNET-PROVIDER (id or NPI), optional.
//! - external_id: the UID, plus `/` and the UTC start for each occurrence of a series.

use super::rrule::{self, Rule};
use super::{FileSlot, ParseOptions, Parsed, RowError, Skipped, check_span, modality_of};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use std::collections::HashMap;

/// One unfolded content line.
#[derive(Debug, Clone)]
struct Property {
    line: usize,
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl Property {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Unfolds lines (a line starting with a space or tab continues the previous one) and splits
/// each into name, parameters and value; remembers the physical line each starts on.
fn content_lines(text: &str) -> Result<Vec<Property>, Vec<RowError>> {
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = raw.strip_prefix(' ').or_else(|| raw.strip_prefix('\t'))
            && let Some(last) = logical.last_mut()
        {
            last.1.push_str(rest);
            continue;
        }
        if raw.trim().is_empty() {
            continue;
        }
        logical.push((index + 1, raw.to_owned()));
    }
    let mut props = Vec::new();
    let mut errors = Vec::new();
    for (line, text) in logical {
        match split_property(&text) {
            Some((name, params, value)) => props.push(Property {
                line,
                name,
                params,
                value,
            }),
            None => errors.push(RowError {
                line,
                message: format!("not an iCalendar content line: {:?}", truncate(&text)),
            }),
        }
    }
    if errors.is_empty() {
        Ok(props)
    } else {
        Err(errors)
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(60).collect()
}

/// `NAME;P=V;Q="x:y":value` → (NAME, [(P,V),(Q,x:y)], value). The value starts after the
/// first colon outside double quotes.
/// A content line's name, parameters and value.
type Parts = (String, Vec<(String, String)>, String);

fn split_property(text: &str) -> Option<Parts> {
    let mut in_quotes = false;
    let mut colon = None;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let colon = colon?;
    let (head, value) = (&text[..colon], &text[colon + 1..]);
    let mut parts = head.split(';');
    let name = parts.next()?.trim().to_ascii_uppercase();
    if name.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    for part in parts {
        let (k, v) = part.split_once('=')?;
        params.push((
            k.trim().to_ascii_uppercase(),
            v.trim().trim_matches('"').to_owned(),
        ));
    }
    Some((name, params, value.to_owned()))
}

/// A VEVENT's properties and the line of its BEGIN.
#[derive(Debug, Default)]
struct Event {
    line: usize,
    props: Vec<Property>,
}

impl Event {
    fn get(&self, name: &str) -> Option<&Property> {
        self.props.iter().find(|p| p.name == name)
    }
    fn all(&self, name: &str) -> impl Iterator<Item = &Property> {
        self.props.iter().filter(move |p| p.name == name)
    }
}

/// The VEVENTs of the calendar (nested components such as VALARM are dropped).
fn events(props: Vec<Property>) -> Result<Vec<Event>, Vec<RowError>> {
    let mut events = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut current: Option<Event> = None;
    let mut errors = Vec::new();
    for prop in props {
        match prop.name.as_str() {
            "BEGIN" => {
                let component = prop.value.trim().to_ascii_uppercase();
                if component == "VEVENT" && stack.last().map(String::as_str) != Some("VEVENT") {
                    current = Some(Event {
                        line: prop.line,
                        props: Vec::new(),
                    });
                }
                stack.push(component);
            }
            "END" => {
                let component = prop.value.trim().to_ascii_uppercase();
                match stack.pop() {
                    Some(open) if open == component => {
                        if component == "VEVENT"
                            && !stack.iter().any(|c| c == "VEVENT")
                            && let Some(event) = current.take()
                        {
                            events.push(event);
                        }
                    }
                    other => errors.push(RowError {
                        line: prop.line,
                        message: format!(
                            "END:{component} closes {}",
                            other
                                .map(|o| format!("BEGIN:{o}"))
                                .unwrap_or_else(|| "nothing".into())
                        ),
                    }),
                }
            }
            _ => {
                if stack.last().map(String::as_str) == Some("VEVENT")
                    && let Some(event) = current.as_mut()
                {
                    event.props.push(prop);
                }
            }
        }
    }
    if let Some(open) = stack.last() {
        errors.push(RowError {
            line: current.as_ref().map(|e| e.line).unwrap_or(0),
            message: format!("BEGIN:{open} is never closed"),
        });
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

/// Windows time zone names Outlook and Exchange write in TZID, for the US zones.
fn windows_zone(name: &str) -> Option<&'static str> {
    Some(match name {
        "Eastern Standard Time" | "US Eastern Standard Time" => "America/New_York",
        "Central Standard Time" => "America/Chicago",
        "Mountain Standard Time" => "America/Denver",
        "US Mountain Standard Time" => "America/Phoenix",
        "Pacific Standard Time" => "America/Los_Angeles",
        "Alaskan Standard Time" => "America/Anchorage",
        "Hawaiian Standard Time" => "Pacific/Honolulu",
        "Atlantic Standard Time" => "America/Halifax",
        "SA Pacific Standard Time" => "America/Bogota",
        "UTC" | "Coordinated Universal Time" => "UTC",
        _ => return None,
    })
}

fn zone_of(tzid: &str) -> Result<TimeZone, String> {
    let name = tzid.trim().trim_start_matches('/');
    TimeZone::get(name)
        .or_else(|_| match windows_zone(name) {
            Some(iana) => TimeZone::get(iana),
            None => TimeZone::get(name),
        })
        .map_err(|_| format!("unknown time zone TZID={tzid}"))
}

/// One DATE-TIME value of `prop` (or of its comma list) in its zone.
fn date_time(
    value: &str,
    prop: &Property,
    default_zone: &TimeZone,
) -> Result<ZonedDateTime, String> {
    if prop
        .param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE"))
        || !value.contains('T')
    {
        return Err(format!(
            "{} is a date without a time: all-day events are not slots",
            prop.name
        ));
    }
    let bad = |e: jiff::Error| format!("{} value {value:?}: {e}", prop.name);
    if let Some(utc) = value.strip_suffix('Z') {
        let local = DateTime::strptime("%Y%m%dT%H%M%S", utc).map_err(bad)?;
        return local.to_zoned_datetime(TimeZone::UTC).map_err(bad);
    }
    let zone = match prop.param("TZID") {
        Some(tzid) => zone_of(tzid)?,
        None => default_zone.clone(),
    };
    DateTime::strptime("%Y%m%dT%H%M%S", value)
        .map_err(bad)?
        .to_zoned_datetime(zone)
        .map_err(bad)
}

/// An RFC 5545 DURATION such as `PT2H30M`, `P1D` or `PT45M`.
fn duration(value: &str) -> Result<SignedDuration, String> {
    let bad = || format!("DURATION {value:?} is not like PT2H30M");
    let text = value.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let text = text.strip_prefix('P').ok_or_else(bad)?;
    let mut seconds: i64 = 0;
    let mut number = String::new();
    let mut in_time = false;
    for c in text.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' => in_time = true,
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                seconds += n * match (unit, in_time) {
                    ('W', false) => 7 * 86_400,
                    ('D', false) => 86_400,
                    ('H', true) => 3_600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return Err(bad()),
                };
            }
        }
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(SignedDuration::from_secs(if negative {
        -seconds
    } else {
        seconds
    }))
}

/// Text value with the RFC 5545 escapes undone.
fn unescape(value: &str) -> String {
    value
        .replace("\\n", "\n")
        .replace("\\N", "\n")
        .replace("\\,", ",")
        .replace("\\;", ";")
        .replace("\\\\", "\\")
}

/// What an event says besides its times.
struct Details {
    uid: String,
    chair: String,
    provider: String,
    modality: i32,
}

fn details(event: &Event, options: &ParseOptions) -> Result<Details, String> {
    let text = |name: &str| {
        event
            .get(name)
            .map(|p| unescape(p.value.trim()))
            .filter(|v| !v.is_empty())
    };
    let chair = text("X-CLINICNET-CHAIR")
        .or_else(|| text("LOCATION"))
        .or_else(|| options.default_chair.clone())
        .ok_or_else(|| "no chair: set X-CLINICNET-CHAIR or LOCATION, or pass --chair".to_owned())?;
    let modality = match text("X-CLINICNET-MODALITY") {
        Some(m) => modality_of(&m)?,
        None => {
            let from_categories = event
                .all("CATEGORIES")
                .flat_map(|p| {
                    p.value
                        .split(',')
                        .map(|c| unescape(c.trim()))
                        .collect::<Vec<_>>()
                })
                .find_map(|c| crate::args::modality(&c).ok());
            from_categories
                .or(options.default_modality)
                .ok_or_else(|| {
                    "no modality: set X-CLINICNET-MODALITY or CATEGORIES, or pass --modality"
                        .to_owned()
                })?
        }
    };
    Ok(Details {
        uid: text("UID").unwrap_or_default(),
        chair,
        provider: text("X-CLINICNET-PROVIDER").unwrap_or_default(),
        modality,
    })
}

fn cancelled(event: &Event) -> bool {
    event
        .get("STATUS")
        .is_some_and(|s| s.value.trim().eq_ignore_ascii_case("CANCELLED"))
}

/// An event's start and its length.
fn span_of(
    event: &Event,
    options: &ParseOptions,
) -> Result<(ZonedDateTime, SignedDuration), RowError> {
    let at = |p: &Property, m: String| RowError {
        line: p.line,
        message: m,
    };
    let start_prop = event.get("DTSTART").ok_or_else(|| RowError {
        line: event.line,
        message: "VEVENT without DTSTART".into(),
    })?;
    let start = date_time(start_prop.value.trim(), start_prop, &options.zone)
        .map_err(|m| at(start_prop, m))?;
    let length = match (event.get("DTEND"), event.get("DURATION")) {
        (Some(end_prop), _) => {
            let end = date_time(end_prop.value.trim(), end_prop, &options.zone)
                .map_err(|m| at(end_prop, m))?;
            end.timestamp().duration_since(start.timestamp())
        }
        (None, Some(d)) => duration(&d.value).map_err(|m| at(d, m))?,
        (None, None) => {
            return Err(RowError {
                line: event.line,
                message: "VEVENT without DTEND or DURATION".into(),
            });
        }
    };
    let end = start.timestamp() + length;
    check_span(start.timestamp(), end).map_err(|m| RowError {
        line: event.line,
        message: m,
    })?;
    Ok((start, length))
}

/// Instants listed by EXDATE, RDATE or RECURRENCE-ID properties of an event.
fn instants(
    event: &Event,
    name: &str,
    options: &ParseOptions,
) -> Result<Vec<ZonedDateTime>, RowError> {
    let mut out = Vec::new();
    for prop in event.all(name) {
        for value in prop.value.split(',') {
            out.push(
                date_time(value.trim(), prop, &options.zone).map_err(|m| RowError {
                    line: prop.line,
                    message: m,
                })?,
            );
        }
    }
    Ok(out)
}

/// Parses an iCalendar file.
pub fn parse(text: &str, options: &ParseOptions) -> Result<Parsed, Vec<RowError>> {
    let events = events(content_lines(text)?)?;
    let mut errors = Vec::new();
    let mut parsed = Parsed::default();
    // Occurrences replaced by a RECURRENCE-ID event, per UID.
    let mut overridden: HashMap<String, Vec<Timestamp>> = HashMap::new();
    for event in &events {
        match instants(event, "RECURRENCE-ID", options) {
            Ok(ids) => {
                if let Some(id) = ids.first()
                    && let Some(uid) = event.get("UID")
                {
                    overridden
                        .entry(uid.value.trim().to_owned())
                        .or_default()
                        .push(id.timestamp());
                }
            }
            Err(e) => errors.push(e),
        }
    }
    for event in &events {
        if let Err(e) = one_event(event, options, &overridden, &mut parsed) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

fn one_event(
    event: &Event,
    options: &ParseOptions,
    overridden: &HashMap<String, Vec<Timestamp>>,
    parsed: &mut Parsed,
) -> Result<(), RowError> {
    let (start, length) = span_of(event, options)?;
    if cancelled(event) {
        parsed.skipped.push(Skipped {
            line: event.line,
            reason: "STATUS:CANCELLED".into(),
        });
        return Ok(());
    }
    let details = details(event, options).map_err(|message| RowError {
        line: event.line,
        message,
    })?;
    let is_override = event.get("RECURRENCE-ID").is_some();
    let rule: Option<Rule> = match event.get("RRULE") {
        Some(prop) if !is_override => {
            Some(rrule::parse(&prop.value).map_err(|message| RowError {
                line: prop.line,
                message,
            })?)
        }
        _ => None,
    };
    let excluded: Vec<Timestamp> = instants(event, "EXDATE", options)?
        .iter()
        .map(ZonedDateTime::timestamp)
        .collect();
    let mut starts = match &rule {
        Some(rule) => rrule::expand(rule, &start, options.window.1),
        None => vec![start.clone()],
    };
    if !is_override {
        starts.extend(instants(event, "RDATE", options)?);
    }
    starts.sort_by_key(ZonedDateTime::timestamp);
    starts.dedup_by_key(|z| z.timestamp());
    let replaced = overridden.get(&details.uid);
    let recurring = rule.is_some() || event.get("RDATE").is_some();
    for occurrence in starts {
        let at = occurrence.timestamp();
        if excluded.contains(&at) {
            continue;
        }
        if !is_override && replaced.is_some_and(|r| r.contains(&at)) {
            continue;
        }
        let external_id = if recurring || is_override {
            format!("{}/{}", details.uid, at.strftime("%Y%m%dT%H%M%SZ"))
        } else {
            details.uid.clone()
        };
        options.keep(
            parsed,
            FileSlot {
                line: event.line,
                external_id,
                chair: details.chair.clone(),
                provider: details.provider.clone(),
                modality: details.modality,
                start: at,
                end: at + length,
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clinicnet_proto::common::v1::Modality;
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

    const CALENDAR: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Example EHR//EN\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:America/New_York\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
UID:spravato-mornings\r\n\
DTSTART;TZID=America/New_York:20260303T090000\r\n\
DTEND;TZID=America/New_York:20260303T113000\r\n\
RRULE:FREQ=WEEKLY;BYDAY=TU,TH;UNTIL=20260313T000000Z\r\n\
EXDATE;TZID=America/New_York:20260305T090000\r\n\
LOCATION:Spravato 1\r\n\
CATEGORIES:Esketamine,Adults\r\n\
SUMMARY:Spravato\r\n\
\x20block\r\n\
BEGIN:VALARM\r\n\
ACTION:DISPLAY\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:west-coast-telehealth\r\n\
DTSTART;TZID=America/Los_Angeles:20260310T090000\r\n\
DURATION:PT1H\r\n\
X-CLINICNET-CHAIR:Consult room\r\n\
X-CLINICNET-MODALITY:telehealth\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn recurrence_with_an_excluded_date_and_another_zone() {
        let parsed = parse(CALENDAR, &options()).unwrap();
        let spravato: Vec<String> = parsed
            .slots
            .iter()
            .filter(|s| s.chair == "Spravato 1")
            .map(|s| s.start.to_string())
            .collect();
        // Tue 3, (Thu 5 excluded), Tue 10 and Thu 12 after the DST change: 09:00 local each.
        assert_eq!(
            spravato,
            vec![
                "2026-03-03T14:00:00Z",
                "2026-03-10T13:00:00Z",
                "2026-03-12T13:00:00Z"
            ]
        );
        let first = &parsed.slots[0];
        assert_eq!(first.line, 7);
        assert_eq!(first.modality, Modality::EsketamineNasalSpray as i32);
        assert_eq!(
            first.end.duration_since(first.start),
            SignedDuration::from_mins(150)
        );
        assert_eq!(first.external_id, "spravato-mornings/20260303T140000Z");
        let west = parsed
            .slots
            .iter()
            .find(|s| s.chair == "Consult room")
            .unwrap();
        assert_eq!(west.start.to_string(), "2026-03-10T16:00:00Z");
        assert_eq!(west.modality, Modality::Telehealth as i32);
        assert_eq!(west.external_id, "west-coast-telehealth");
    }

    #[test]
    fn an_overridden_occurrence_replaces_the_series_one_and_cancelled_is_skipped() {
        let text = "BEGIN:VCALENDAR\n\
BEGIN:VEVENT\nUID:s\nDTSTART:20260302T140000Z\nDTEND:20260302T150000Z\nRRULE:FREQ=DAILY;COUNT=3\nLOCATION:C1\nCATEGORIES:iv\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:s\nRECURRENCE-ID:20260303T140000Z\nDTSTART:20260303T160000Z\nDTEND:20260303T170000Z\nLOCATION:C1\nCATEGORIES:iv\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:x\nSTATUS:CANCELLED\nDTSTART:20260305T140000Z\nDTEND:20260305T150000Z\nLOCATION:C1\nCATEGORIES:iv\nEND:VEVENT\n\
END:VCALENDAR\n";
        let parsed = parse(text, &options()).unwrap();
        let starts: Vec<String> = parsed.slots.iter().map(|s| s.start.to_string()).collect();
        assert_eq!(
            starts,
            vec![
                "2026-03-02T14:00:00Z",
                "2026-03-04T14:00:00Z",
                "2026-03-03T16:00:00Z"
            ]
        );
        assert_eq!(parsed.skipped.len(), 1);
        assert_eq!(parsed.skipped[0].line, 18);
    }

    #[test]
    fn floating_and_windows_zone_names() {
        let text = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:a\nDTSTART:20260310T090000\nDTEND:20260310T100000\nLOCATION:C1\nCATEGORIES:iv\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:b\nDTSTART;TZID=\"Central Standard Time\":20260310T090000\nDTEND;TZID=\"Central Standard Time\":20260310T100000\nLOCATION:C1\nCATEGORIES:iv\nEND:VEVENT\nEND:VCALENDAR\n";
        let parsed = parse(text, &options()).unwrap();
        assert_eq!(parsed.slots[0].start.to_string(), "2026-03-10T13:00:00Z");
        assert_eq!(parsed.slots[1].start.to_string(), "2026-03-10T14:00:00Z");
    }

    #[test]
    fn bad_events_are_reported_with_their_lines() {
        let text = "BEGIN:VCALENDAR\n\
BEGIN:VEVENT\nUID:a\nDTSTART;VALUE=DATE:20260310\nLOCATION:C1\nCATEGORIES:iv\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:b\nDTSTART:20260310T090000Z\nDTEND:20260310T100000Z\nRRULE:FREQ=YEARLY\nLOCATION:C1\nCATEGORIES:iv\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:c\nDTSTART;TZID=Mars/Olympus:20260310T090000\nDTEND:20260310T100000Z\nLOCATION:C1\nCATEGORIES:iv\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:d\nDTSTART:20260310T090000Z\nDTEND:20260310T100000Z\nLOCATION:C1\nEND:VEVENT\n\
END:VCALENDAR\n";
        let errors = parse(text, &options()).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 12, 18, 23], "{errors:?}");
        assert!(errors[0].message.contains("all-day"));
        assert!(errors[1].message.contains("YEARLY"));
        assert!(errors[2].message.contains("Mars/Olympus"));
        assert!(errors[3].message.contains("no modality"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration("PT2H30M").unwrap(), SignedDuration::from_mins(150));
        assert_eq!(duration("P1D").unwrap(), SignedDuration::from_hours(24));
        assert!(duration("2H").is_err());
        assert!(duration("PT2X").is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "(BEGIN:VEVENT\n|END:VEVENT\n|DTSTART:[0-9T]{0,16}Z?\n|RRULE:[A-Z=;0-9,]{0,30}\n|[ -~]{0,20}\n){0,12}") {
            let _ = parse(&text, &options());
        }
    }
}
