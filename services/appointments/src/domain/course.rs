//! Treatment courses: a configured plan's phases turned into dated session windows, the plan's
//! frequency rules (sessions per Monday-to-Sunday week, days between sessions, each session inside
//! its window), and automatic slot selection from the patient's preferences.

use super::refusal::{Refusal, refuse};
use clinicnet_proto::appointments::v1::PreconditionRule as Rule;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

/// A phase of a plan, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// Name, e.g. "induction weeks 1-4".
    pub name: String,
    /// Sessions in the phase.
    pub session_count: i32,
    /// Length of the phase in days.
    pub duration_days: i32,
    /// Most sessions in one Monday-to-Sunday week.
    pub max_sessions_per_week: i32,
    /// Fewest calendar days from one session to the next.
    pub min_days_between_sessions: i32,
    /// Planned dose of each session, mg (0: decided at the visit).
    pub planned_dose_mg: i32,
    /// Planned dose of the phase's first session when it differs (0: the same).
    #[serde(default)]
    pub first_session_dose_mg: i32,
}

/// One planned session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSession {
    /// 1-based number in the course.
    pub number: i32,
    /// Index of its phase.
    pub phase_index: usize,
    /// First local date it may take place.
    pub earliest: Date,
    /// Last local date it may take place.
    pub latest: Date,
    /// Planned dose, mg.
    pub planned_dose_mg: i32,
}

/// Sessions of a course starting on `start`: each phase follows the previous one, its sessions
/// spread evenly over its days.
pub fn plan_sessions(phases: &[Phase], start: Date) -> Vec<PlannedSession> {
    let mut sessions = Vec::new();
    let mut phase_start = start;
    let mut number = 1;
    for (phase_index, phase) in phases.iter().enumerate() {
        let count = i64::from(phase.session_count.max(0));
        let days = i64::from(phase.duration_days.max(1));
        for k in 0..count {
            let first = k * days / count;
            let last = ((k + 1) * days / count - 1).max(first);
            let dose = if k == 0 && phase.first_session_dose_mg > 0 {
                phase.first_session_dose_mg
            } else {
                phase.planned_dose_mg
            };
            sessions.push(PlannedSession {
                number,
                phase_index,
                earliest: phase_start + Duration::days(first),
                latest: phase_start + Duration::days(last),
                planned_dose_mg: dose,
            });
            number += 1;
        }
        phase_start += Duration::days(days);
    }
    sessions
}

fn monday_of(date: Date) -> Date {
    date - Duration::days(i64::from(date.weekday().number_days_from_monday()))
}

/// Checks the local dates of a course's booked sessions, `(session number, date)`, against the
/// plan: each inside its window, the days between consecutive sessions, the sessions per week of
/// each phase. One refusal per offending session.
pub fn check_schedule(
    phases: &[Phase],
    sessions: &[PlannedSession],
    booked: &[(i32, Date)],
) -> Vec<(i32, Refusal)> {
    let by_number: HashMap<i32, &PlannedSession> = sessions.iter().map(|s| (s.number, s)).collect();
    let mut refusals: Vec<(i32, Refusal)> = Vec::new();
    let mut dated: Vec<(Date, i32, usize)> = Vec::new();
    for &(number, date) in booked {
        let Some(session) = by_number.get(&number) else {
            continue;
        };
        if date < session.earliest || date > session.latest {
            refusals.push((
                number,
                refuse(
                    Rule::CourseFrequencyLimit,
                    format!(
                        "session {number} must take place from {} to {}",
                        session.earliest, session.latest
                    ),
                ),
            ));
        }
        dated.push((date, number, session.phase_index));
    }
    dated.sort();
    for pair in dated.windows(2) {
        let ((before, _, _), (date, number, phase)) = (pair[0], pair[1]);
        let min = phases.get(phase).map_or(0, |p| p.min_days_between_sessions);
        if (date - before).whole_days() < i64::from(min) {
            refusals.push((
                number,
                refuse(
                    Rule::CourseFrequencyLimit,
                    format!("session {number} must be at least {min} days after the previous one"),
                ),
            ));
        }
    }
    let mut per_week: HashMap<(usize, Date), i32> = HashMap::new();
    for &(date, number, phase) in &dated {
        let count = per_week.entry((phase, monday_of(date))).or_default();
        *count += 1;
        let max = phases
            .get(phase)
            .map_or(i32::MAX, |p| p.max_sessions_per_week);
        if *count > max {
            refusals.push((
                number,
                refuse(
                    Rule::CourseFrequencyLimit,
                    format!("session {number} would exceed {max} sessions in one week"),
                ),
            ));
        }
    }
    refusals.sort_by_key(|(n, _)| *n);
    refusals.dedup_by_key(|(n, _)| *n);
    refusals
}

/// Sessions that cannot be booked, each with why.
pub type SessionRefusals = Vec<(i32, Refusal)>;

/// A free slot the service may pick for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The slot.
    pub slot_id: Uuid,
    /// Local date of the visit.
    pub local_date: Date,
    /// Local minutes after midnight of the visit's start.
    pub local_minutes: i32,
    /// Start of the occupied range.
    pub occupied_start: OffsetDateTime,
    /// End of the occupied range.
    pub occupied_end: OffsetDateTime,
    /// Chair, when any.
    pub chair_id: Option<String>,
    /// Provider, when fixed by the slot.
    pub provider_id: Option<String>,
}

/// A patient's scheduling preferences.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    /// Only this provider's slots (provider-less slots too: the provider is then assigned).
    pub provider_id: Option<String>,
    /// Preferred local start, minutes after midnight.
    pub preferred_minutes: Option<i32>,
    /// ISO weekdays (1 = Monday) the patient can come; empty means any.
    pub days: Vec<u8>,
}

fn clashes(a: &Candidate, b: &Candidate) -> bool {
    let overlap = a.occupied_start < b.occupied_end && b.occupied_start < a.occupied_end;
    let same_chair = a.chair_id.is_some() && a.chair_id == b.chair_id;
    let same_provider = a.provider_id.is_some() && a.provider_id == b.provider_id;
    overlap && (same_chair || same_provider)
}

/// Picks a slot per session, in session order: inside the session's window, on an allowed day,
/// keeping the plan's spacing and weekly limits with the sessions picked before it, nearest the
/// preferred time (then earliest). Sessions without a fitting slot are refused as SLOT_UNAVAILABLE.
pub fn pick_slots(
    phases: &[Phase],
    sessions: &[PlannedSession],
    candidates: &[Candidate],
    preferences: &Preferences,
) -> Result<Vec<(i32, Uuid)>, SessionRefusals> {
    let mut chosen: Vec<(i32, &Candidate)> = Vec::new();
    let mut refusals = Vec::new();
    for session in sessions {
        let fits = |c: &&Candidate| {
            let mut booked: Vec<(i32, Date)> =
                chosen.iter().map(|(n, c)| (*n, c.local_date)).collect();
            booked.push((session.number, c.local_date));
            c.local_date >= session.earliest
                && c.local_date <= session.latest
                && (preferences.days.is_empty()
                    || preferences
                        .days
                        .contains(&c.local_date.weekday().number_from_monday()))
                && (preferences.provider_id.is_none()
                    || c.provider_id.is_none()
                    || c.provider_id == preferences.provider_id)
                && !chosen
                    .iter()
                    .any(|(_, other)| other.slot_id == c.slot_id || clashes(other, c))
                && check_schedule(phases, sessions, &booked).is_empty()
        };
        let best = candidates.iter().filter(fits).min_by_key(|c| {
            let distance = preferences
                .preferred_minutes
                .map_or(0, |p| (c.local_minutes - p).abs());
            (distance, c.occupied_start)
        });
        match best {
            Some(candidate) => chosen.push((session.number, candidate)),
            None => refusals.push((
                session.number,
                refuse(
                    Rule::SlotUnavailable,
                    format!(
                        "no free slot fits session {} ({} to {})",
                        session.number, session.earliest, session.latest
                    ),
                ),
            )),
        }
    }
    if refusals.is_empty() {
        Ok(chosen.into_iter().map(|(n, c)| (n, c.slot_id)).collect())
    } else {
        Err(refusals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn esketamine_induction() -> Vec<Phase> {
        vec![Phase {
            name: "induction weeks 1-4".into(),
            session_count: 8,
            duration_days: 28,
            max_sessions_per_week: 2,
            min_days_between_sessions: 2,
            planned_dose_mg: 84,
            first_session_dose_mg: 56,
        }]
    }

    #[test]
    fn sessions_spread_over_the_phase_with_the_first_dose() {
        let sessions = plan_sessions(&esketamine_induction(), date!(2027 - 01 - 04));
        assert_eq!(sessions.len(), 8);
        assert_eq!(
            (sessions[0].earliest, sessions[0].latest),
            (date!(2027 - 01 - 04), date!(2027 - 01 - 06))
        );
        assert_eq!(
            (sessions[1].earliest, sessions[1].latest),
            (date!(2027 - 01 - 07), date!(2027 - 01 - 10))
        );
        assert_eq!(sessions[7].latest, date!(2027 - 01 - 31));
        assert_eq!(sessions[0].planned_dose_mg, 56);
        assert_eq!(sessions[1].planned_dose_mg, 84);
    }

    #[test]
    fn a_third_session_in_one_week_or_too_close_is_refused() {
        let phases = esketamine_induction();
        let sessions = plan_sessions(&phases, date!(2027 - 01 - 04));
        // Monday, Thursday: fine.
        assert!(
            check_schedule(
                &phases,
                &sessions,
                &[(1, date!(2027 - 01 - 04)), (2, date!(2027 - 01 - 07))]
            )
            .is_empty()
        );
        // Tuesday then Wednesday: one day apart.
        let close = check_schedule(
            &phases,
            &sessions,
            &[(1, date!(2027 - 01 - 05)), (2, date!(2027 - 01 - 06))],
        );
        assert_eq!(close.len(), 1, "{close:?}"); // one refusal per session
        assert!(
            close
                .iter()
                .all(|(n, r)| *n == 2 && r.rule == Rule::CourseFrequencyLimit)
        );
        let mut wide = esketamine_induction();
        wide[0].session_count = 4;
        wide[0].duration_days = 7;
        wide[0].min_days_between_sessions = 1;
        let s = plan_sessions(&wide, date!(2027 - 01 - 04));
        let three = check_schedule(
            &wide,
            &s,
            &[
                (1, date!(2027 - 01 - 04)),
                (2, date!(2027 - 01 - 05)),
                (3, date!(2027 - 01 - 07)),
            ],
        );
        assert_eq!(three.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn picking_prefers_the_time_and_respects_days() {
        let phases = vec![Phase {
            name: "p".into(),
            session_count: 2,
            duration_days: 7,
            max_sessions_per_week: 2,
            min_days_between_sessions: 2,
            planned_dose_mg: 0,
            first_session_dose_mg: 0,
        }];
        let sessions = plan_sessions(&phases, date!(2027 - 01 - 04));
        let candidate = |n: u128, day: u8, minutes: i32| {
            let date = Date::from_calendar_date(2027, time::Month::January, day).unwrap();
            let start = datetime!(2027-01-01 00:00 UTC)
                + Duration::days(i64::from(day))
                + Duration::minutes(i64::from(minutes));
            Candidate {
                slot_id: Uuid::from_u128(n),
                local_date: date,
                local_minutes: minutes,
                occupied_start: start,
                occupied_end: start + Duration::hours(2),
                chair_id: Some("c".into()),
                provider_id: None,
            }
        };
        let candidates = [
            candidate(1, 4, 540),
            candidate(2, 4, 780),
            candidate(3, 5, 540),
            candidate(4, 8, 540),
        ];
        let preferences = Preferences {
            provider_id: None,
            preferred_minutes: Some(800),
            days: vec![1, 5],
        };
        let picked = pick_slots(&phases, &sessions, &candidates, &preferences).unwrap();
        assert_eq!(picked, [(1, Uuid::from_u128(2)), (2, Uuid::from_u128(4))]);
        let none = pick_slots(&phases, &sessions, &candidates[..2], &preferences).unwrap_err();
        assert_eq!(none[0].0, 2);
        assert_eq!(none[0].1.rule, Rule::SlotUnavailable);
    }
}
