//! How values appear in a message, per locale: instants in the clinic's time zone (DST-correct,
//! from the bundled tz database), calendar dates, money and decision words, in English or Spanish.

use clinicnet_proto::common::v1::Locale;
use jiff::{Timestamp, civil::Date, tz::TimeZone};

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_ES: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const WEEKDAYS_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const WEEKDAYS_ES: [&str; 7] = [
    "lunes",
    "martes",
    "miércoles",
    "jueves",
    "viernes",
    "sábado",
    "domingo",
];

fn month_name(month: i8, locale: Locale) -> &'static str {
    let names = if locale == Locale::EsUs {
        &MONTHS_ES
    } else {
        &MONTHS_EN
    };
    names[usize::try_from(month - 1).unwrap_or(0).min(11)]
}

fn weekday_name(monday_zero: i8, locale: Locale) -> &'static str {
    let names = if locale == Locale::EsUs {
        &WEEKDAYS_ES
    } else {
        &WEEKDAYS_EN
    };
    names[usize::try_from(monday_zero).unwrap_or(0).min(6)]
}

/// An instant as the clinic's wall clock shows it, e.g. "Tuesday, March 10, 2026 at 9:30 AM EDT"
/// or "martes 10 de marzo de 2026 a las 9:30 a. m. (EDT)".
pub fn instant(at: Timestamp, zone: &TimeZone, locale: Locale) -> String {
    let local = at.to_zoned_datetime(zone.clone());
    let abbreviation = local.strftime("%Z").to_string();
    let weekday = weekday_name(local.weekday().to_monday_zero_offset(), locale);
    let month = month_name(local.month(), locale);
    let (hour, minute) = (local.hour(), local.minute());
    let hour12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    if locale == Locale::EsUs {
        let meridiem = if hour < 12 { "a. m." } else { "p. m." };
        let article = if hour12 == 1 { "la" } else { "las" };
        format!(
            "{weekday} {} de {month} de {} a {article} {hour12}:{minute:02} {meridiem} ({abbreviation})",
            local.day(),
            local.year()
        )
    } else {
        let meridiem = if hour < 12 { "AM" } else { "PM" };
        format!(
            "{weekday}, {month} {}, {} at {hour12}:{minute:02} {meridiem} {abbreviation}",
            local.day(),
            local.year()
        )
    }
}

/// A calendar date, e.g. "March 10, 2026" or "10 de marzo de 2026".
pub fn date(date: Date, locale: Locale) -> String {
    let month = month_name(date.month(), locale);
    if locale == Locale::EsUs {
        format!("{} de {month} de {}", date.day(), date.year())
    } else {
        format!("{month} {}, {}", date.day(), date.year())
    }
}

/// An amount in minor units, e.g. "$1,234.50" (en) or "1.234,50 US$" (es).
pub fn money(cents: i64, currency: &str, locale: Locale) -> String {
    let negative = cents < 0;
    let cents = cents.unsigned_abs();
    let (whole, fraction) = (cents / 100, cents % 100);
    let digits = whole.to_string();
    let separator = if locale == Locale::EsUs { '.' } else { ',' };
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(separator);
        }
        grouped.push(digit);
    }
    let sign = if negative { "-" } else { "" };
    let symbol = if currency == "USD" { "$" } else { currency };
    if locale == Locale::EsUs {
        let symbol = if currency == "USD" { "US$" } else { currency };
        format!("{sign}{grouped},{fraction:02} {symbol}")
    } else {
        format!("{sign}{symbol}{grouped}.{fraction:02}")
    }
}

/// A payer's decision on an authorization, as the verb phrase templates use after "has".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approved.
    Approved,
    /// Denied.
    Denied,
    /// Pended: more information needed.
    Pended,
}

/// The decision as a past participle phrase ("approved", "aprobado", …).
pub fn decision(decision: Decision, locale: Locale) -> &'static str {
    match (decision, locale == Locale::EsUs) {
        (Decision::Approved, false) => "approved",
        (Decision::Denied, false) => "denied",
        (Decision::Pended, false) => "asked for more information on",
        (Decision::Approved, true) => "aprobado",
        (Decision::Denied, true) => "denegado",
        (Decision::Pended, true) => "pedido más información sobre",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_york() -> TimeZone {
        TimeZone::get("America/New_York").unwrap()
    }

    #[test]
    fn times_follow_daylight_saving_in_the_clinic_zone() {
        // 2026-03-08 is the spring-forward Sunday in New York: 14:30 UTC is 9:30 EST the Friday
        // before and 10:30 EDT the Monday after; 13:30 UTC on Monday is 9:30 EDT.
        let before = Timestamp::from_second(1_772_807_400).unwrap(); // 2026-03-06T14:30:00Z
        let after = Timestamp::from_second(1_773_063_000).unwrap(); // 2026-03-09T13:30:00Z
        assert_eq!(
            instant(before, &new_york(), Locale::EnUs),
            "Friday, March 6, 2026 at 9:30 AM EST"
        );
        assert_eq!(
            instant(after, &new_york(), Locale::EnUs),
            "Monday, March 9, 2026 at 9:30 AM EDT"
        );
        assert_eq!(
            instant(after, &new_york(), Locale::EsUs),
            "lunes 9 de marzo de 2026 a las 9:30 a. m. (EDT)"
        );
        // Fall back: 2026-11-01 06:30 UTC is 1:30 EST (the second 1:30 of the night).
        let fall = Timestamp::from_second(1_793_514_600).unwrap(); // 2026-11-01T06:30:00Z
        assert_eq!(
            instant(fall, &new_york(), Locale::EnUs),
            "Sunday, November 1, 2026 at 1:30 AM EST"
        );
    }

    #[test]
    fn spanish_uses_la_for_one_o_clock_and_pm() {
        let one_pm = Timestamp::from_second(1_773_075_600).unwrap(); // 2026-03-09T17:00:00Z = 13:00 EDT
        assert_eq!(
            instant(one_pm, &new_york(), Locale::EsUs),
            "lunes 9 de marzo de 2026 a la 1:00 p. m. (EDT)"
        );
    }

    #[test]
    fn dates_and_money_per_locale() {
        let d = Date::new(2026, 1, 5).unwrap();
        assert_eq!(date(d, Locale::EnUs), "January 5, 2026");
        assert_eq!(date(d, Locale::EsUs), "5 de enero de 2026");
        assert_eq!(money(123_450, "USD", Locale::EnUs), "$1,234.50");
        assert_eq!(money(123_450, "USD", Locale::EsUs), "1.234,50 US$");
        assert_eq!(money(5, "USD", Locale::EnUs), "$0.05");
        assert_eq!(money(100_000_000, "USD", Locale::EnUs), "$1,000,000.00");
    }
}
