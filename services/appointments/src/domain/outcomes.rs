//! Treatment outcomes from recorded PHQ-9 scores: among patients with a baseline and enough
//! sessions with a score, who responded (latest score at least 50 % below baseline), who remitted
//! (latest score below 5), and the median change from baseline.

use time::OffsetDateTime;

/// One patient's baseline and the scores recorded at their sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientScores {
    /// Baseline PHQ-9 total from the intake in force.
    pub baseline: i32,
    /// (when recorded, PHQ-9 total) of each counted session.
    pub sessions: Vec<(OffsetDateTime, i32)>,
}

/// The computed figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcomes {
    /// Patients counted.
    pub counted: i32,
    /// Of those, responders.
    pub responders: i32,
    /// Of those, remitters.
    pub remitters: i32,
    /// responders / counted (0 when none counted).
    pub response_rate: f64,
    /// remitters / counted (0 when none counted).
    pub remission_rate: f64,
    /// Median of (latest − baseline), in points.
    pub median_change: f64,
}

/// PHQ-9 below this is remission.
pub const REMISSION_BELOW: i32 = 5;

/// Outcomes over `patients`, counting those with at least `min_sessions` scored sessions.
pub fn compute(patients: &[PatientScores], min_sessions: usize) -> Outcomes {
    let mut changes = Vec::new();
    let (mut responders, mut remitters) = (0, 0);
    for patient in patients
        .iter()
        .filter(|p| p.sessions.len() >= min_sessions.max(1))
    {
        let Some(&(_, latest)) = patient.sessions.iter().max_by_key(|(when, _)| *when) else {
            continue;
        };
        // At least a 50 % reduction, in integers: latest ≤ baseline / 2.
        if 2 * latest <= patient.baseline && patient.baseline > 0 {
            responders += 1;
        }
        if latest < REMISSION_BELOW {
            remitters += 1;
        }
        changes.push(latest - patient.baseline);
    }
    let counted = i32::try_from(changes.len()).unwrap_or(i32::MAX);
    let rate = |n: i32| {
        if counted == 0 {
            0.0
        } else {
            f64::from(n) / f64::from(counted)
        }
    };
    Outcomes {
        counted,
        responders,
        remitters,
        response_rate: rate(responders),
        remission_rate: rate(remitters),
        median_change: median(&mut changes),
    }
}

fn median(values: &mut [i32]) -> f64 {
    values.sort_unstable();
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => f64::from(values[n / 2]),
        n => (f64::from(values[n / 2 - 1]) + f64::from(values[n / 2])) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::{Duration, macros::datetime};

    fn patient(baseline: i32, scores: &[i32]) -> PatientScores {
        let start = datetime!(2027-01-01 12:00 UTC);
        PatientScores {
            baseline,
            sessions: scores
                .iter()
                .enumerate()
                .map(|(i, s)| (start + Duration::days(i as i64), *s))
                .collect(),
        }
    }

    #[test]
    fn rates_and_median_follow_the_latest_score() {
        let patients = [
            patient(20, &[18, 12, 10]), // responder (10 ≤ 20/2), not remitted, change -10
            patient(16, &[12, 6, 4]),   // responder and remitter, change -12
            patient(22, &[20, 19, 15]), // neither, change -7
            patient(18, &[9, 3]),       // only two sessions: not counted
        ];
        let o = compute(&patients, 3);
        assert_eq!((o.counted, o.responders, o.remitters), (3, 2, 1));
        assert!((o.response_rate - 2.0 / 3.0).abs() < 1e-12);
        assert!((o.remission_rate - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(o.median_change, -10.0);
    }

    #[test]
    fn an_even_count_takes_the_mean_of_the_middle_two_and_nobody_gives_zeros() {
        let o = compute(&[patient(20, &[10]), patient(10, &[7])], 1);
        assert_eq!(o.median_change, -6.5);
        let none = compute(&[], 3);
        assert_eq!(
            (none.counted, none.response_rate, none.median_change),
            (0, 0.0, 0.0)
        );
    }
}
