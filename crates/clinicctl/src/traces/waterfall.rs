//! A finished trace as an indented waterfall: one line per span with its offset, a bar on the
//! trace's timeline, its service, its name, its duration and its status. Only those are read
//! from a span: attribute values (which could carry PHI) are never part of a [`SpanRecord`].

use crate::output::Table;

/// A span's status, as OTLP reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanStatus {
    /// Not set.
    Unset,
    /// Explicitly OK.
    Ok,
    /// An error.
    Error,
}

/// What the waterfall shows of a span — nothing else is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRecord {
    /// Trace id, hex.
    pub trace_id: String,
    /// Span id, hex.
    pub span_id: String,
    /// Parent span id, hex; empty for a root.
    pub parent_span_id: String,
    /// `service.name` of the span's resource.
    pub service: String,
    /// Span name.
    pub name: String,
    /// Start, nanoseconds since the epoch.
    pub start_ns: u64,
    /// End, nanoseconds since the epoch.
    pub end_ns: u64,
    /// Status.
    pub status: SpanStatus,
}

/// Width of the timeline bar in characters.
const BAR: usize = 24;

/// `1.42s`, `12.3ms`, `850µs`.
pub fn duration(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2}s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else {
        format!("{}µs", ns / 1_000)
    }
}

fn bar(start: u64, end: u64, trace_start: u64, trace_len: u64) -> String {
    let scale = |t: u64| -> usize {
        if trace_len == 0 {
            return 0;
        }
        (((t.saturating_sub(trace_start)) as u128 * BAR as u128) / trace_len as u128) as usize
    };
    let from = scale(start).min(BAR - 1);
    let to = scale(end).clamp(from + 1, BAR);
    format!(
        "{}{}{}",
        " ".repeat(from),
        "█".repeat(to - from),
        " ".repeat(BAR - to)
    )
}

/// The waterfall of one trace's spans (any order in; parents before children out, siblings by
/// start time; spans whose parent is missing are shown as roots).
pub fn render(spans: &[SpanRecord]) -> String {
    let Some(first) = spans.first() else {
        return String::new();
    };
    let start = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_ns).max().unwrap_or(start);
    let length = end.saturating_sub(start);
    let mut services: Vec<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    let errors = spans
        .iter()
        .filter(|s| s.status == SpanStatus::Error)
        .count();
    let mut out = format!(
        "trace {} · {} · {} span{} · {} · {}\n",
        first.trace_id,
        duration(length),
        spans.len(),
        if spans.len() == 1 { "" } else { "s" },
        services.join(", "),
        if errors == 0 {
            "ok".to_owned()
        } else {
            format!("{errors} error{}", if errors == 1 { "" } else { "s" })
        }
    );
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut order: Vec<&SpanRecord> = spans.iter().collect();
    order.sort_by_key(|s| (s.start_ns, s.end_ns));
    let roots: Vec<&SpanRecord> = order
        .iter()
        .copied()
        .filter(|s| s.parent_span_id.is_empty() || !ids.contains(s.parent_span_id.as_str()))
        .collect();
    let mut table = Table::new(vec!["OFFSET", "TIMELINE", "SPAN", "DURATION", "STATUS"]);
    let mut stack: Vec<(&SpanRecord, usize)> = roots.into_iter().rev().map(|r| (r, 0)).collect();
    let mut seen = std::collections::HashSet::new();
    while let Some((span, depth)) = stack.pop() {
        if !seen.insert(span.span_id.as_str()) {
            continue;
        }
        table.row(vec![
            format!("+{}", duration(span.start_ns.saturating_sub(start))),
            bar(span.start_ns, span.end_ns, start, length),
            format!("{}{} {}", "  ".repeat(depth), span.service, span.name),
            duration(span.end_ns.saturating_sub(span.start_ns)),
            match span.status {
                SpanStatus::Unset => "-".to_owned(),
                SpanStatus::Ok => "ok".to_owned(),
                SpanStatus::Error => "ERROR".to_owned(),
            },
        ]);
        let children: Vec<&SpanRecord> = order
            .iter()
            .copied()
            .filter(|c| c.parent_span_id == span.span_id)
            .collect();
        for child in children.into_iter().rev() {
            stack.push((child, depth + 1));
        }
    }
    out.push_str(&table.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn span(
        id: &str,
        parent: &str,
        service: &str,
        name: &str,
        start: u64,
        end: u64,
        status: SpanStatus,
    ) -> SpanRecord {
        SpanRecord {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: id.into(),
            parent_span_id: parent.into(),
            service: service.into(),
            name: name.into(),
            start_ns: start,
            end_ns: end,
            status,
        }
    }

    #[test]
    fn children_are_indented_under_their_parents_in_start_order() {
        let ms = 1_000_000;
        let text = render(&[
            span(
                "c2",
                "root",
                "notifications",
                "consume clinicnet.appointments.>",
                40 * ms,
                60 * ms,
                SpanStatus::Unset,
            ),
            span(
                "root",
                "",
                "clinicctl",
                "clinicctl appointment",
                0,
                100 * ms,
                SpanStatus::Unset,
            ),
            span(
                "c1",
                "root",
                "appointments",
                "AppointmentsService/BookAppointment",
                5 * ms,
                30 * ms,
                SpanStatus::Ok,
            ),
            span(
                "g1",
                "c1",
                "appointments",
                "db",
                10 * ms,
                20 * ms,
                SpanStatus::Error,
            ),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("100.0ms")
                && lines[0].contains("4 spans")
                && lines[0].contains("1 error"),
            "{text}"
        );
        assert!(
            lines[2].contains("clinicctl clinicctl appointment"),
            "{text}"
        );
        assert!(
            lines[3].contains("  appointments AppointmentsService/BookAppointment"),
            "{text}"
        );
        assert!(
            lines[4].contains("    appointments db") && lines[4].contains("ERROR"),
            "{text}"
        );
        assert!(lines[5].contains("  notifications consume"), "{text}");
        assert!(lines[3].contains("25.0ms"));
    }

    #[test]
    fn orphans_are_roots_and_cycles_terminate() {
        let text = render(&[
            span("a", "missing", "s", "orphan", 0, 10, SpanStatus::Unset),
            span("b", "c", "s", "x", 1, 2, SpanStatus::Unset),
            span("c", "b", "s", "y", 1, 2, SpanStatus::Unset),
        ]);
        assert!(text.contains("orphan"));
    }

    proptest! {
        /// Every span appears exactly once whatever the shape of the tree.
        #[test]
        fn every_span_is_shown_once(parents in proptest::collection::vec(0usize..20, 1..20)) {
            let spans: Vec<SpanRecord> = parents.iter().enumerate().map(|(i, p)| {
                let parent = if *p < i { format!("s{p}") } else { String::new() };
                span(&format!("s{i}"), &parent, "svc", &format!("span-{i}-end"), i as u64 * 10, i as u64 * 10 + 5, SpanStatus::Unset)
            }).collect();
            let text = render(&spans);
            for i in 0..spans.len() {
                let needle = format!("span-{i}-end");
                prop_assert_eq!(text.matches(needle.as_str()).count(), 1);
            }
        }
    }
}
