//! CSV availability: a header row naming the columns (any order, case-insensitive), one slot per
//! row, blank lines and `#` comment lines allowed.
//!
//! ```text
//! start,end,chair,modality,provider,external_id,time_zone
//! 2026-03-10T09:00,2026-03-10T11:30,Spravato 1,esketamine,,kh-0001,
//! 2026-03-10T09:00:00-05:00,2026-03-10T10:30:00-05:00,Infusion 2,iv,1234567893,kh-0002,
//! ```
//!
//! `start` and `end` are RFC 3339 instants, or local date-times read in the row's `time_zone`
//! (else the clinic's). `chair` is a chair id or name; `provider` a provider id or NPI.

use super::{FileSlot, ParseOptions, Parsed, RowError, check_span, modality_of};
use crate::args::{parse_instant, parse_zone};

/// Parses CSV text.
pub fn parse(text: &str, options: &ParseOptions) -> Result<Parsed, Vec<RowError>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.to_ascii_lowercase()).collect::<Vec<_>>(),
        Err(e) => {
            return Err(vec![RowError {
                line: 1,
                message: format!("cannot read the header row: {e}"),
            }]);
        }
    };
    let column = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let start_col = column(&["start", "start_time"]);
    let end_col = column(&["end", "end_time"]);
    let chair_col = column(&["chair", "chair_id", "room"]);
    let modality_col = column(&["modality", "service"]);
    let provider_col = column(&["provider", "provider_id", "npi"]);
    let id_col = column(&["external_id", "id", "slot_id"]);
    let zone_col = column(&["time_zone", "tz", "timezone"]);
    let mut errors = Vec::new();
    if start_col.is_none() || end_col.is_none() {
        errors.push(RowError {
            line: 1,
            message: "the header row needs start and end columns".into(),
        });
    }
    if chair_col.is_none() && options.default_chair.is_none() {
        errors.push(RowError {
            line: 1,
            message: "no chair column: add one or pass --chair".into(),
        });
    }
    if modality_col.is_none() && options.default_modality.is_none() {
        errors.push(RowError {
            line: 1,
            message: "no modality column: add one or pass --modality".into(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut parsed = Parsed::default();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                errors.push(RowError {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        // Blank and `#` comment lines (handled here, so line numbers stay physical lines).
        if record.iter().all(str::is_empty) || record.get(0).is_some_and(|f| f.starts_with('#')) {
            continue;
        }
        let cell = |col: Option<usize>| col.and_then(|c| record.get(c)).unwrap_or("").to_owned();
        match row(
            &cell(start_col),
            &cell(end_col),
            &cell(chair_col),
            &cell(modality_col),
            &cell(zone_col),
            options,
        ) {
            Ok((start, end, chair, modality)) => options.keep(
                &mut parsed,
                FileSlot {
                    line,
                    external_id: cell(id_col),
                    chair,
                    provider: cell(provider_col),
                    modality,
                    start,
                    end,
                },
            ),
            Err(message) => errors.push(RowError { line, message }),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

type Row = (jiff::Timestamp, jiff::Timestamp, String, i32);

fn row(
    start: &str,
    end: &str,
    chair: &str,
    modality: &str,
    zone: &str,
    options: &ParseOptions,
) -> Result<Row, String> {
    let zone = if zone.is_empty() {
        options.zone.clone()
    } else {
        parse_zone(zone)?
    };
    let start = parse_instant(start, &zone).map_err(|e| format!("start: {e}"))?;
    let end = parse_instant(end, &zone).map_err(|e| format!("end: {e}"))?;
    check_span(start, end)?;
    let chair = if chair.is_empty() {
        options
            .default_chair
            .clone()
            .ok_or_else(|| "no chair (column empty and no --chair)".to_owned())?
    } else {
        chair.to_owned()
    };
    let modality = if modality.is_empty() {
        options
            .default_modality
            .ok_or_else(|| "no modality (column empty and no --modality)".to_owned())?
    } else {
        modality_of(modality)?
    };
    Ok((start, end, chair, modality))
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

    #[test]
    fn a_valid_file_gives_one_slot_per_row_with_its_line() {
        let text = "start,end,chair,modality,provider,external_id\n\
                    # Spravato mornings\n\
                    2026-03-10T09:00,2026-03-10T11:30,Spravato 1,esketamine,,kh-1\n\
                    2026-03-10T12:00:00-07:00,2026-03-10T13:30:00-07:00,Infusion 2,iv,1234567893,kh-2\n";
        let parsed = parse(text, &options()).unwrap();
        assert_eq!(parsed.slots.len(), 2);
        let first = &parsed.slots[0];
        assert_eq!(first.line, 3);
        assert_eq!(
            first.start.to_string(),
            "2026-03-10T13:00:00Z",
            "EDT after the DST change"
        );
        assert_eq!(first.modality, Modality::EsketamineNasalSpray as i32);
        assert_eq!(first.external_id, "kh-1");
        let second = &parsed.slots[1];
        assert_eq!(second.line, 4);
        assert_eq!(
            second.start.to_string(),
            "2026-03-10T19:00:00Z",
            "offset from another zone"
        );
        assert_eq!(second.provider, "1234567893");
    }

    #[test]
    fn a_row_in_another_zone_column_is_read_in_that_zone() {
        let text = "start,end,chair,modality,time_zone\n\
                    2026-03-10T09:00,2026-03-10T10:00,C1,iv,America/Los_Angeles\n";
        let parsed = parse(text, &options()).unwrap();
        assert_eq!(parsed.slots[0].start.to_string(), "2026-03-10T16:00:00Z");
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line_and_nothing_is_returned() {
        let text = "start,end,chair,modality\n\
                    2026-03-10T09:00,2026-03-10T10:00,C1,iv\n\
                    2026-03-10T09:00,2026-03-10T08:00,C1,iv\n\
                    2026-03-10T09:00,2026-03-10T10:00,C1,aspirin\n\
                    yesterday,2026-03-10T10:00,C1,iv\n";
        let errors = parse(text, &options()).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(errors[0].message.contains("not after start"));
        assert!(errors[1].message.contains("unknown modality"));
        assert!(errors[2].message.contains("start"));
    }

    #[test]
    fn defaults_fill_missing_columns_and_missing_defaults_are_errors() {
        let text = "start,end\n2026-03-10T09:00,2026-03-10T10:00\n";
        assert_eq!(parse(text, &options()).unwrap_err()[0].line, 1);
        let mut with_defaults = options();
        with_defaults.default_chair = Some("C1".into());
        with_defaults.default_modality = Some(Modality::IvKetamine as i32);
        assert_eq!(parse(text, &with_defaults).unwrap().slots[0].chair, "C1");
    }

    #[test]
    fn slots_outside_the_window_are_skipped_not_errors() {
        let text = "start,end,chair,modality\n2026-05-10T09:00,2026-05-10T10:00,C1,iv\n";
        let parsed = parse(text, &options()).unwrap();
        assert!(parsed.slots.is_empty());
        assert_eq!(parsed.skipped[0].line, 2);
    }

    proptest! {
        /// Any generated file of valid rows parses to exactly those slots, line by line.
        #[test]
        fn generated_rows_round_trip(rows in proptest::collection::vec((0i64..28 * 24, 15i64..240), 1..40)) {
            let base: jiff::Timestamp = "2026-03-02T00:00:00Z".parse().unwrap();
            let mut text = String::from("start,end,chair,modality\n");
            let mut expected = Vec::new();
            for (hour, minutes) in &rows {
                let start = base + jiff::SignedDuration::from_hours(*hour);
                let end = start + jiff::SignedDuration::from_mins(*minutes);
                text.push_str(&format!("{start},{end},Chair A,iv\n"));
                expected.push((start, end));
            }
            let parsed = parse(&text, &options()).unwrap();
            let got: Vec<_> = parsed.slots.iter().map(|s| (s.start, s.end)).collect();
            prop_assert_eq!(got, expected);
            let lines: Vec<usize> = parsed.slots.iter().map(|s| s.line).collect();
            prop_assert_eq!(lines, (2..rows.len() + 2).collect::<Vec<_>>());
        }

        /// Arbitrary text never panics the parser.
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = parse(&text, &options());
        }
    }
}
