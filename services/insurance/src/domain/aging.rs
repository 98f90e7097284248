//! Accounts receivable aging: the age buckets of open claims, by days since submission.

/// Inclusive day ranges of the buckets; `None` as the upper bound is open-ended.
pub const BUCKETS: [(i32, Option<i32>); 5] = [
    (0, Some(30)),
    (31, Some(60)),
    (61, Some(90)),
    (91, Some(120)),
    (121, None),
];

/// Index into [`BUCKETS`] of a claim `age_days` old (negative ages, from clock skew, count as 0).
pub fn bucket(age_days: i64) -> usize {
    let age = age_days.max(0);
    BUCKETS
        .iter()
        .position(|(_, max)| max.is_none_or(|m| age <= i64::from(m)))
        .unwrap_or(BUCKETS.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_edges() {
        for (age, expected) in [
            (-1, 0),
            (0, 0),
            (30, 0),
            (31, 1),
            (60, 1),
            (61, 2),
            (90, 2),
            (91, 3),
            (120, 3),
            (121, 4),
            (10_000, 4),
        ] {
            assert_eq!(bucket(age), expected, "{age} days");
        }
    }
}
