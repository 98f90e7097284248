//! Opening hours in a clinic's local time: times of day, the half-open intervals of one day
//! (each after the one before, none overlapping), and what search needs to know which local dates
//! a clinic is open on. A weekday without intervals is closed; a dated override replaces the
//! weekly hours of its date (search applies that in `store::search`). Dates are the clinic's
//! own calendar dates, never instants, so the weekday of a date is the same in every zone.

/// Minutes in a day; `24:00` as the end of an interval.
pub const END_OF_DAY: u16 = 24 * 60;

/// Minutes since local midnight of a wall-clock time `hours:minutes` (0–24, 0–59; 24 only as
/// 24:00).
pub fn minutes_of_day(hours: i32, minutes: i32) -> Result<u16, &'static str> {
    match (u16::try_from(hours), u16::try_from(minutes)) {
        (Ok(h @ 0..=23), Ok(m @ 0..=59)) => Ok(h * 60 + m),
        (Ok(24), Ok(0)) => Ok(END_OF_DAY),
        _ => Err("must be a time of day: hours 0-24, minutes 0-59, 24:00 only as an end"),
    }
}

/// Checks one day's intervals `[start, end)` in minutes of the day: each ends after it starts,
/// none starts at 24:00, and each starts no earlier than the one before ends (sorted, no
/// overlap; touching is fine). On failure, the index of the offending interval and why.
pub fn check_day(intervals: &[(u16, u16)]) -> Result<(), (usize, &'static str)> {
    let mut previous_end = 0;
    for (index, &(start, end)) in intervals.iter().enumerate() {
        if start >= end {
            return Err((index, "end must be after start"));
        }
        if index > 0 && start < previous_end {
            return Err((
                index,
                "overlaps the interval before it (intervals must be sorted and must not overlap)",
            ));
        }
        previous_end = end;
    }
    Ok(())
}

/// The ISO weekdays (1 = Monday … 7 = Sunday) that have hours, given each listed weekday with
/// its number of intervals; sorted, without duplicates.
pub fn open_weekdays(days: impl IntoIterator<Item = (i16, usize)>) -> Vec<i16> {
    let mut open: Vec<i16> = days
        .into_iter()
        .filter(|&(_, intervals)| intervals > 0)
        .map(|(weekday, _)| weekday)
        .collect();
    open.sort_unstable();
    open.dedup();
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        assert_eq!(minutes_of_day(0, 0), Ok(0));
        assert_eq!(minutes_of_day(9, 30), Ok(570));
        assert_eq!(minutes_of_day(24, 0), Ok(END_OF_DAY));
        for (h, m) in [(24, 1), (25, 0), (-1, 0), (9, 60), (9, -1)] {
            assert!(minutes_of_day(h, m).is_err(), "{h}:{m}");
        }
    }

    #[test]
    fn sorted_touching_intervals_are_fine() {
        assert_eq!(check_day(&[]), Ok(()));
        assert_eq!(check_day(&[(540, 720), (720, 1020)]), Ok(()));
        assert_eq!(check_day(&[(0, END_OF_DAY)]), Ok(()));
    }

    #[test]
    fn overlapping_unsorted_and_empty_intervals_name_the_offender() {
        assert_eq!(check_day(&[(540, 720), (700, 1020)]).unwrap_err().0, 1);
        assert_eq!(
            check_day(&[(540, 720), (780, 900), (600, 660)])
                .unwrap_err()
                .0,
            2
        );
        assert_eq!(check_day(&[(540, 540)]).unwrap_err().0, 0);
        assert_eq!(check_day(&[(540, 720), (900, 800)]).unwrap_err().0, 1);
        assert_eq!(check_day(&[(END_OF_DAY, END_OF_DAY)]).unwrap_err().0, 0);
    }

    #[test]
    fn weekdays_without_intervals_are_closed() {
        assert_eq!(
            open_weekdays([(3, 1), (1, 2), (7, 0), (5, 1)]),
            vec![1, 3, 5]
        );
        assert!(open_weekdays([(2, 0)]).is_empty());
    }
}
