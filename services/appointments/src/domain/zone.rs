//! A clinic's IANA time zone: local dates and wall-clock times of instants, the instant of a local
//! date and time (DST gaps resolved the compatible way: forward), and RFC 3339 rendering with the
//! local offset. The only place that touches the time-zone database.

use jiff::{Timestamp, civil, tz::TimeZone};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// A clinic's time zone.
#[derive(Debug, Clone)]
pub struct ClinicZone {
    name: String,
    tz: TimeZone,
}

impl ClinicZone {
    /// The zone named `name`, or None when the name is not an IANA time zone.
    pub fn parse(name: &str) -> Option<ClinicZone> {
        TimeZone::get(name).ok().map(|tz| ClinicZone {
            name: name.to_owned(),
            tz,
        })
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local date and wall-clock time of `instant`.
    pub fn local(&self, instant: OffsetDateTime) -> PrimitiveDateTime {
        let Ok(timestamp) = Timestamp::from_nanosecond(instant.unix_timestamp_nanos()) else {
            return PrimitiveDateTime::new(instant.date(), instant.time());
        };
        let local = timestamp.to_zoned_datetime(self.tz.clone()).datetime();
        let date = Month::try_from(local.month() as u8).ok().and_then(|month| {
            Date::from_calendar_date(i32::from(local.year()), month, local.day() as u8).ok()
        });
        let time = Time::from_hms(
            local.hour() as u8,
            local.minute() as u8,
            local.second() as u8,
        )
        .ok();
        match (date, time) {
            (Some(date), Some(time)) => PrimitiveDateTime::new(date, time),
            _ => PrimitiveDateTime::new(instant.date(), instant.time()),
        }
    }

    /// The local date of `instant`.
    pub fn local_date(&self, instant: OffsetDateTime) -> Date {
        self.local(instant).date()
    }

    /// The instant the wall clock shows `hour:minute` on `date` (hour 24 is the next midnight). A
    /// time skipped by a DST change is moved forward by the gap; a repeated time takes its first
    /// occurrence. None only for dates outside the supported range.
    pub fn instant(&self, date: Date, hour: u8, minute: u8) -> Option<OffsetDateTime> {
        let (date, hour) = if hour == 24 {
            (date.next_day()?, 0)
        } else {
            (date, hour)
        };
        let year = i16::try_from(date.year()).ok()?;
        let local = civil::DateTime::new(
            year,
            u8::from(date.month()) as i8,
            date.day() as i8,
            hour as i8,
            minute as i8,
            0,
            0,
        )
        .ok()?;
        let zoned = self.tz.to_zoned_datetime(local).ok()?;
        OffsetDateTime::from_unix_timestamp_nanos(zoned.timestamp().as_nanosecond()).ok()
    }

    /// `instant` as RFC 3339 local time with the offset in force then, e.g.
    /// `2027-03-14T09:00:00-04:00`.
    pub fn render(&self, instant: OffsetDateTime) -> String {
        match Timestamp::from_nanosecond(instant.unix_timestamp_nanos()) {
            Ok(timestamp) => timestamp
                .to_zoned_datetime(self.tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
            Err(_) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn new_york() -> ClinicZone {
        ClinicZone::parse("America/New_York").unwrap()
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(ClinicZone::parse("America/Miami").is_none());
        assert!(ClinicZone::parse("Mars/Olympus").is_none());
    }

    #[test]
    fn nine_in_the_morning_moves_by_an_hour_in_utc_across_the_spring_change() {
        let zone = new_york();
        let before = zone.instant(date!(2027 - 03 - 13), 9, 0).unwrap();
        let after = zone.instant(date!(2027 - 03 - 14), 9, 0).unwrap();
        assert_eq!(before, datetime!(2027-03-13 14:00 UTC));
        assert_eq!(after, datetime!(2027-03-14 13:00 UTC));
        assert_eq!(zone.render(before), "2027-03-13T09:00:00-05:00");
        assert_eq!(zone.render(after), "2027-03-14T09:00:00-04:00");
    }

    #[test]
    fn a_skipped_time_moves_forward_and_midnight_24_is_the_next_day() {
        let zone = new_york();
        let skipped = zone.instant(date!(2027 - 03 - 14), 2, 30).unwrap();
        assert_eq!(zone.render(skipped), "2027-03-14T03:30:00-04:00");
        let end_of_day = zone.instant(date!(2026 - 12 - 31), 24, 0).unwrap();
        assert_eq!(zone.render(end_of_day), "2027-01-01T00:00:00-05:00");
    }

    #[test]
    fn local_dates_follow_the_clinic_not_utc() {
        let zone = new_york();
        let late_evening = datetime!(2026-12-02 03:30 UTC);
        assert_eq!(zone.local_date(late_evening), date!(2026 - 12 - 01));
        assert_eq!(zone.local(late_evening).hour(), 22);
    }
}
