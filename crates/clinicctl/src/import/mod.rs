//! Availability import: pure parsers from a partner clinic's file (CSV, iCalendar, FHIR R4
//! Bundle of Slots) to the slots it offers, each with the line it came from, and the diff of
//! those slots against the clinic's current availability. No I/O here: the `availability
//! import` command reads the file, resolves chair and provider names and streams the sync.

pub mod csv;
pub mod diff;
pub mod fhir;
pub mod ics;
#[cfg(test)]
mod proptests;
pub mod rrule;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::fmt;

/// A slot read from a file, before chair and provider names are resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSlot {
    /// Line of the file the slot comes from (1-based; for a recurring event, its BEGIN line).
    pub line: usize,
    /// The clinic's own id for the slot (CSV column, iCalendar UID + occurrence, FHIR Slot id).
    pub external_id: String,
    /// Chair id or name.
    pub chair: String,
    /// Provider id or NPI; empty for any provider.
    pub provider: String,
    /// Modality number.
    pub modality: i32,
    /// Start (inclusive).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
}

/// Something in the file that is deliberately not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Line it comes from.
    pub line: usize,
    /// Why it is not a free slot to import.
    pub reason: String,
}

/// A row that cannot be read; any one of them stops the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Line of the bad row.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What a file holds: the free slots to sync and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Free slots inside the window, in file order.
    pub slots: Vec<FileSlot>,
    /// Entries not imported (other FHIR statuses, cancelled events, outside the window).
    pub skipped: Vec<Skipped>,
}

/// What parsing needs to know besides the text.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// The clinic's time zone: local times without a zone are read in it.
    pub zone: TimeZone,
    /// Only slots entirely inside [start, end) are imported; recurrences are expanded up to end.
    pub window: (Timestamp, Timestamp),
    /// Chair for rows that name none.
    pub default_chair: Option<String>,
    /// Modality for rows that name none.
    pub default_modality: Option<i32>,
}

impl ParseOptions {
    /// Adds `slot` to `parsed` when it lies inside the window, else records it as skipped.
    fn keep(&self, parsed: &mut Parsed, slot: FileSlot) {
        if slot.start >= self.window.0 && slot.end <= self.window.1 {
            parsed.slots.push(slot);
        } else {
            parsed.skipped.push(Skipped {
                line: slot.line,
                reason: format!(
                    "{} → {} is not inside the sync window",
                    slot.start, slot.end
                ),
            });
        }
    }
}

/// The file formats understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// iCalendar (RFC 5545), e.g. an exported practice calendar.
    Ics,
    /// A FHIR R4 Bundle of Slot resources (JSON).
    Fhir,
}

impl Format {
    /// The format a file name and its first bytes suggest.
    pub fn detect(file_name: &str, text: &str) -> Option<Format> {
        let lower = file_name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            return Some(Format::Csv);
        }
        if lower.ends_with(".ics") || lower.ends_with(".ical") || lower.ends_with(".ifb") {
            return Some(Format::Ics);
        }
        let start = text.trim_start_matches('\u{feff}').trim_start();
        if start.starts_with("BEGIN:VCALENDAR") {
            return Some(Format::Ics);
        }
        if start.starts_with('{') {
            return Some(Format::Fhir);
        }
        if lower.ends_with(".json") {
            return Some(Format::Fhir);
        }
        None
    }
}

/// Parses `text` in `format`. Every bad row is reported; no slot is returned when any is bad.
pub fn parse(format: Format, text: &str, options: &ParseOptions) -> Result<Parsed, Vec<RowError>> {
    let text = text.trim_start_matches('\u{feff}');
    match format {
        Format::Csv => csv::parse(text, options),
        Format::Ics => ics::parse(text, options),
        Format::Fhir => fhir::parse(text, options),
    }
}

/// The modality a cell names, or an error message.
fn modality_of(text: &str) -> Result<i32, String> {
    crate::args::modality(text).map_err(|_| {
        format!(
            "unknown modality {text:?} (iv, esketamine, lozenge, integration, psychotherapy, telehealth)"
        )
    })
}

/// Checks [start, end) is a slot.
fn check_span(start: Timestamp, end: Timestamp) -> Result<(), String> {
    if end <= start {
        return Err(format!("end {end} is not after start {start}"));
    }
    if end.duration_since(start) > jiff::SignedDuration::from_hours(24) {
        return Err(format!("{start} → {end} is longer than a day"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_detected_by_name_then_content() {
        assert_eq!(Format::detect("a.CSV", ""), Some(Format::Csv));
        assert_eq!(Format::detect("cal.ics", ""), Some(Format::Ics));
        assert_eq!(
            Format::detect("export", "BEGIN:VCALENDAR\r\n"),
            Some(Format::Ics)
        );
        assert_eq!(
            Format::detect("bundle", "  {\"resourceType\""),
            Some(Format::Fhir)
        );
        assert_eq!(Format::detect("notes.txt", "hello"), None);
    }
}
