//! The diff of an import against a clinic's current availability in the sync window, computed
//! the way the sync applies it: free slots not in the file are removed, slots of the file not
//! already free are added, identical ones are unchanged, and booked, held or blocked slots are
//! kept — a file slot overlapping one of those on the same chair or provider is not created.

use clinicnet_proto::appointments::v1::{AvailabilitySlot, Slot, SlotStatus};
use serde::Serialize;
use std::collections::BTreeMap;

/// What makes two slots the same.
type Key = (String, String, i32, i64, i64);

fn seconds(ts: &Option<prost_types::Timestamp>) -> i64 {
    ts.as_ref().map(|t| t.seconds).unwrap_or(0)
}

fn key_of_new(s: &AvailabilitySlot) -> Key {
    (
        s.chair_id.clone(),
        s.provider_id.clone(),
        s.modality,
        seconds(&s.start_time),
        seconds(&s.end_time),
    )
}

fn key_of_current(s: &Slot) -> Key {
    (
        s.chair_id.clone(),
        s.provider_id.clone(),
        s.modality,
        seconds(&s.start_time),
        seconds(&s.end_time),
    )
}

/// A slot of the file with the line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// Line of the file.
    pub line: usize,
    /// The slot as it will be synced.
    pub slot: AvailabilitySlot,
}

/// The changes an import would make.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// File slots that are not free now (by index into the file's slots).
    pub added: Vec<usize>,
    /// Free slots now that the file does not have.
    pub removed: Vec<Slot>,
    /// File slots already free, identical.
    pub unchanged: usize,
    /// Booked, held or blocked slots in the window, which the sync never touches.
    pub kept: Vec<Slot>,
    /// File slots (by index) overlapping a kept booked or held slot: they will not be created.
    pub conflicts: Vec<(usize, Slot)>,
}

/// Diffs the file's slots against the current slots of the window.
pub fn diff(incoming: &[Incoming], current: &[Slot]) -> Diff {
    let mut free: BTreeMap<Key, Vec<&Slot>> = BTreeMap::new();
    let mut result = Diff::default();
    for slot in current {
        match SlotStatus::try_from(slot.status) {
            Ok(SlotStatus::Free) => free.entry(key_of_current(slot)).or_default().push(slot),
            Ok(SlotStatus::EnteredInError) => {}
            _ => result.kept.push(slot.clone()),
        }
    }
    for (index, new) in incoming.iter().enumerate() {
        match free.get_mut(&key_of_new(&new.slot)).and_then(|v| v.pop()) {
            Some(_) => result.unchanged += 1,
            None => result.added.push(index),
        }
        let (start, end) = (seconds(&new.slot.start_time), seconds(&new.slot.end_time));
        for booked in &result.kept {
            let taken = matches!(
                SlotStatus::try_from(booked.status),
                Ok(SlotStatus::Busy | SlotStatus::BusyTentative)
            );
            let same_resource = booked.chair_id == new.slot.chair_id
                || (!new.slot.provider_id.is_empty() && booked.provider_id == new.slot.provider_id);
            let overlaps = start < seconds(&booked.end_time) && seconds(&booked.start_time) < end;
            if taken && same_resource && overlaps {
                result.conflicts.push((index, booked.clone()));
            }
        }
    }
    result.removed = free.into_values().flatten().cloned().collect();
    result
        .removed
        .sort_by_key(|s| (seconds(&s.start_time), s.chair_id.clone()));
    result
}

/// A change line for people and scripts.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    /// `add`, `remove` or `conflict`.
    pub change: &'static str,
    /// Line of the file (0 for removals).
    pub line: usize,
    /// Chair id.
    pub chair_id: String,
    /// Modality name.
    pub modality: String,
    /// Start, RFC 3339.
    pub start: String,
    /// End, RFC 3339.
    pub end: String,
}

/// Counts of the diff, for the summary.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Slots in the file to sync.
    pub file_slots: usize,
    /// Entries of the file not imported (non-free FHIR statuses, cancelled, outside the window).
    pub skipped: usize,
    /// Free slots to add.
    pub added: usize,
    /// Free slots to remove.
    pub removed: usize,
    /// Free slots unchanged.
    pub unchanged: usize,
    /// Booked, held or blocked slots kept.
    pub kept: usize,
    /// File slots that overlap a booking and will not be created.
    pub conflicts: usize,
}

impl Diff {
    /// Whether applying the file would change nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;

    fn ts(s: i64) -> Option<Timestamp> {
        Some(Timestamp {
            seconds: s,
            nanos: 0,
        })
    }

    fn new(chair: &str, start: i64, end: i64) -> Incoming {
        Incoming {
            line: 2,
            slot: AvailabilitySlot {
                chair_id: chair.into(),
                modality: 1,
                start_time: ts(start),
                end_time: ts(end),
                ..Default::default()
            },
        }
    }

    fn current(id: &str, chair: &str, start: i64, end: i64, status: SlotStatus) -> Slot {
        Slot {
            slot_id: id.into(),
            chair_id: chair.into(),
            modality: 1,
            start_time: ts(start),
            end_time: ts(end),
            status: status as i32,
            ..Default::default()
        }
    }

    #[test]
    fn adds_removes_keeps_and_flags_conflicts() {
        let incoming = vec![new("c1", 0, 100), new("c1", 200, 300), new("c2", 50, 150)];
        let now = vec![
            current("same", "c1", 0, 100, SlotStatus::Free),
            current("gone", "c1", 400, 500, SlotStatus::Free),
            current("booked", "c2", 100, 200, SlotStatus::Busy),
            current("deleted", "c1", 600, 700, SlotStatus::EnteredInError),
        ];
        let d = diff(&incoming, &now);
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.added, vec![1, 2]);
        assert_eq!(
            d.removed
                .iter()
                .map(|s| s.slot_id.as_str())
                .collect::<Vec<_>>(),
            vec!["gone"]
        );
        assert_eq!(d.kept.len(), 1);
        assert_eq!(d.conflicts.len(), 1);
        assert_eq!(d.conflicts[0].0, 2);
        assert!(!d.is_empty());
    }

    #[test]
    fn the_same_file_twice_changes_nothing() {
        let incoming = vec![new("c1", 0, 100), new("c1", 0, 100)];
        let now = vec![
            current("a", "c1", 0, 100, SlotStatus::Free),
            current("b", "c1", 0, 100, SlotStatus::Free),
        ];
        let d = diff(&incoming, &now);
        assert!(d.is_empty());
        assert_eq!(d.unchanged, 2);
    }
}
