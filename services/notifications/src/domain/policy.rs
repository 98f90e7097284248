//! Whether a notification goes out now, later or never, decided just before sending from the
//! latest facts: a reminder of a cancelled, moved or begun visit is suppressed; no address, an
//! SMS opt-out (even for critical messages), no consent or a preference switched off suppress;
//! SMS waits out the quiet hours of the clinic's time zone; SMS beyond the daily or weekly cap is
//! suppressed. Critical messages bypass preferences, quiet hours and caps; service messages
//! (keyword replies, tests) bypass quiet hours and caps.

use clinicnet_proto::notifications::v1::{Channel, NotificationCategory, SuppressionReason};
use jiff::{Timestamp, civil::Time, tz::TimeZone};

/// Configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Quiet hours start (clinic local time).
    pub quiet_start: Time,
    /// Quiet hours end (clinic local time).
    pub quiet_end: Time,
    /// SMS per recipient per rolling 24 h.
    pub daily_cap: u32,
    /// SMS per recipient per rolling 7 days.
    pub weekly_cap: u32,
}

/// The visit a reminder is about, as it stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    /// Whether it was cancelled (or otherwise will not take place).
    pub cancelled: bool,
    /// Its current start.
    pub start: Timestamp,
}

/// Everything the decision looks at.
#[derive(Debug, Clone)]
pub struct Situation {
    /// Now.
    pub now: Timestamp,
    /// Channel.
    pub channel: Channel,
    /// Category of the kind.
    pub category: NotificationCategory,
    /// Whether the kind is critical.
    pub critical: bool,
    /// For a reminder: the start it was scheduled for, and the visit now.
    pub reminder: Option<(Timestamp, Option<Visit>)>,
    /// Whether the recipient has an address on the channel.
    pub has_address: bool,
    /// Whether the recipient consented to the channel (always true for clinics).
    pub consent: bool,
    /// Whether the number texted STOP.
    pub sms_opted_out: bool,
    /// Whether preferences allow the channel and category.
    pub preferences_allow: bool,
    /// The clinic's time zone.
    pub zone: TimeZone,
    /// SMS already sent to the recipient in the last 24 h and 7 days.
    pub sent_last_day: u32,
    /// See above.
    pub sent_last_week: u32,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send now.
    Send,
    /// Do not send, for this reason.
    Suppress(SuppressionReason),
    /// Not before this instant (quiet hours).
    Defer(Timestamp),
}

/// Decides what happens to a due notification.
pub fn decide(s: &Situation, limits: &Limits) -> Verdict {
    use SuppressionReason as R;
    if let Some((scheduled_for, visit)) = s.reminder {
        match visit {
            Some(visit) if visit.cancelled => return Verdict::Suppress(R::AppointmentCancelled),
            Some(visit) if visit.start != scheduled_for => return Verdict::Suppress(R::Superseded),
            _ if s.now >= scheduled_for => return Verdict::Suppress(R::Expired),
            _ => {}
        }
    }
    if !s.has_address {
        return Verdict::Suppress(R::NoContact);
    }
    let sms = s.channel == Channel::Sms;
    let service = s.category == NotificationCategory::Service;
    if sms && s.sms_opted_out && !service {
        return Verdict::Suppress(R::SmsOptedOut);
    }
    if !s.consent {
        return Verdict::Suppress(R::NoConsent);
    }
    if s.critical || service {
        return Verdict::Send;
    }
    if !s.preferences_allow {
        return Verdict::Suppress(R::PreferenceDisabled);
    }
    if sms {
        if let Some(end) = quiet_hours_end(s.now, &s.zone, limits.quiet_start, limits.quiet_end) {
            return Verdict::Defer(end);
        }
        if s.sent_last_day >= limits.daily_cap || s.sent_last_week >= limits.weekly_cap {
            return Verdict::Suppress(R::RateLimited);
        }
    }
    Verdict::Send
}

/// When `now` falls in the quiet hours [start, end) of `zone` (wrapping midnight when start is
/// after end), the instant they end; `None` outside them or when start equals end.
pub fn quiet_hours_end(
    now: Timestamp,
    zone: &TimeZone,
    start: Time,
    end: Time,
) -> Option<Timestamp> {
    let local = now.to_zoned_datetime(zone.clone());
    let time = local.time();
    let date = local.date();
    let end_on = |date: jiff::civil::Date| {
        date.to_datetime(end)
            .to_zoned_datetime(zone.clone())
            .ok()
            .map(|z| z.timestamp())
    };
    if start == end {
        None
    } else if start < end {
        (start <= time && time < end)
            .then(|| end_on(date))
            .flatten()
    } else if time >= start {
        date.tomorrow().ok().and_then(end_on)
    } else if time < end {
        end_on(date)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::time;

    const LIMITS: Limits = Limits {
        quiet_start: time(21, 0, 0, 0),
        quiet_end: time(8, 0, 0, 0),
        daily_cap: 1,
        weekly_cap: 3,
    };

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn situation(now: &str) -> Situation {
        Situation {
            now: at(now),
            channel: Channel::Sms,
            category: NotificationCategory::AppointmentUpdates,
            critical: false,
            reminder: None,
            has_address: true,
            consent: true,
            sms_opted_out: false,
            preferences_allow: true,
            zone: TimeZone::get("America/New_York").unwrap(),
            sent_last_day: 0,
            sent_last_week: 0,
        }
    }

    #[test]
    fn sms_in_quiet_hours_waits_until_eight_local_but_critical_goes_at_once() {
        // 02:00 UTC on 2026-03-10 is 22:00 EDT on the 9th: quiet until 08:00 EDT = 12:00 UTC.
        let s = situation("2026-03-10T02:00:00Z");
        assert_eq!(
            decide(&s, &LIMITS),
            Verdict::Defer(at("2026-03-10T12:00:00Z"))
        );
        // 11:00 UTC is 07:00 EDT: still quiet, same morning.
        let s = situation("2026-03-10T11:00:00Z");
        assert_eq!(
            decide(&s, &LIMITS),
            Verdict::Defer(at("2026-03-10T12:00:00Z"))
        );
        let critical = Situation {
            critical: true,
            category: NotificationCategory::CriticalAlerts,
            ..situation("2026-03-10T02:00:00Z")
        };
        assert_eq!(decide(&critical, &LIMITS), Verdict::Send);
        let email = Situation {
            channel: Channel::Email,
            ..situation("2026-03-10T02:00:00Z")
        };
        assert_eq!(decide(&email, &LIMITS), Verdict::Send);
        assert_eq!(
            decide(&situation("2026-03-10T16:00:00Z"), &LIMITS),
            Verdict::Send
        );
    }

    #[test]
    fn quiet_hours_end_is_dst_correct() {
        // Night of the spring-forward (2026-03-08): 23:00 EST on the 7th = 04:00 UTC on the 8th;
        // 08:00 EDT on the 8th is 12:00 UTC, not 13:00.
        let zone = TimeZone::get("America/New_York").unwrap();
        assert_eq!(
            quiet_hours_end(
                at("2026-03-08T04:00:00Z"),
                &zone,
                LIMITS.quiet_start,
                LIMITS.quiet_end
            ),
            Some(at("2026-03-08T12:00:00Z"))
        );
    }

    #[test]
    fn opt_out_applies_even_to_critical_but_not_to_keyword_replies() {
        let critical = Situation {
            critical: true,
            sms_opted_out: true,
            ..situation("2026-03-10T16:00:00Z")
        };
        assert_eq!(
            decide(&critical, &LIMITS),
            Verdict::Suppress(SuppressionReason::SmsOptedOut)
        );
        let reply = Situation {
            category: NotificationCategory::Service,
            sms_opted_out: true,
            ..situation("2026-03-10T02:00:00Z")
        };
        assert_eq!(decide(&reply, &LIMITS), Verdict::Send);
    }

    #[test]
    fn preferences_consent_contact_and_caps() {
        let base = situation("2026-03-10T16:00:00Z");
        let cases = [
            (
                Situation {
                    preferences_allow: false,
                    ..base.clone()
                },
                SuppressionReason::PreferenceDisabled,
            ),
            (
                Situation {
                    consent: false,
                    ..base.clone()
                },
                SuppressionReason::NoConsent,
            ),
            (
                Situation {
                    has_address: false,
                    ..base.clone()
                },
                SuppressionReason::NoContact,
            ),
            (
                Situation {
                    sent_last_day: 1,
                    ..base.clone()
                },
                SuppressionReason::RateLimited,
            ),
            (
                Situation {
                    sent_last_week: 3,
                    ..base.clone()
                },
                SuppressionReason::RateLimited,
            ),
        ];
        for (s, reason) in cases {
            assert_eq!(decide(&s, &LIMITS), Verdict::Suppress(reason));
        }
        let critical = Situation {
            critical: true,
            preferences_allow: false,
            sent_last_day: 9,
            ..base
        };
        assert_eq!(decide(&critical, &LIMITS), Verdict::Send);
    }

    #[test]
    fn reminders_of_cancelled_moved_or_begun_visits_are_suppressed() {
        let start = at("2026-03-11T14:00:00Z");
        let reminder = |visit: Option<Visit>, now: &str| Situation {
            reminder: Some((start, visit)),
            channel: Channel::Email,
            ..situation(now)
        };
        let live = Visit {
            cancelled: false,
            start,
        };
        assert_eq!(
            decide(&reminder(Some(live), "2026-03-10T14:00:00Z"), &LIMITS),
            Verdict::Send
        );
        assert_eq!(
            decide(
                &reminder(
                    Some(Visit {
                        cancelled: true,
                        start
                    }),
                    "2026-03-10T14:00:00Z"
                ),
                &LIMITS
            ),
            Verdict::Suppress(SuppressionReason::AppointmentCancelled)
        );
        let moved = Visit {
            cancelled: false,
            start: at("2026-03-12T14:00:00Z"),
        };
        assert_eq!(
            decide(&reminder(Some(moved), "2026-03-10T14:00:00Z"), &LIMITS),
            Verdict::Suppress(SuppressionReason::Superseded)
        );
        assert_eq!(
            decide(&reminder(Some(live), "2026-03-11T14:00:01Z"), &LIMITS),
            Verdict::Suppress(SuppressionReason::Expired)
        );
    }
}
