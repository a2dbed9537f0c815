//! Season arithmetic: which season an event time belongs to under a board's
//! reset schedule (docs/contract.md#seasons), the season ids, and the boundaries.
//!
//! A schedule resets every `day`, `week` (on `weekday`) or `month`, at 00:00
//! at a fixed UTC offset. A season is the half-open interval `[start, end)`
//! between two resets, in milliseconds since the Unix epoch; an event at
//! exactly `end` belongs to the next season. Ids name the start day at the
//! board's offset: `YYYY-MM-DD` for `day` and `week`, `YYYY-MM` for `month`,
//! so ids sort like their seasons. Offsets are fixed (`+09:00`, `-05:30`):
//! no daylight saving, so every day season is exactly 24 h long and every
//! boundary is unambiguous.
//!
//! This is pure arithmetic (no Redis): the windowing rules, storage and
//! closing protocol are described in `docs/seasons.md`.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// How often a board's seasons reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Every {
    /// Daily, at 00:00 at the offset.
    Day,
    /// Weekly, at 00:00 at the offset on the schedule's weekday.
    Week,
    /// Monthly, at 00:00 at the offset on the first of the month.
    Month,
}

/// A reset schedule: `{"every": "week", "utc_offset": "+09:00", "weekday": "mon"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reset {
    /// How often.
    pub every: Every,
    /// The fixed offset the reset happens at (`+HH:MM` / `-HH:MM`, at most ±14:00).
    #[serde(with = "offset_text", default = "utc")]
    pub utc_offset: UtcOffset,
    /// The day weekly seasons start (`mon` ... `sun`; default `mon`; ignored otherwise).
    #[serde(with = "weekday_text", default = "monday")]
    pub weekday: Weekday,
}

const fn utc() -> UtcOffset {
    UtcOffset::UTC
}

const fn monday() -> Weekday {
    Weekday::Monday
}

/// A schedule or season id that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeasonError {
    /// A UTC offset not of the form `+HH:MM`, or beyond ±14:00.
    #[error("utc_offset must be +HH:MM or -HH:MM within ±14:00, got {0:?}")]
    Offset(String),
    /// A weekday other than `mon` ... `sun`.
    #[error("weekday must be one of mon, tue, wed, thu, fri, sat, sun, got {0:?}")]
    Weekday(String),
    /// A season id that does not name a season of the schedule.
    #[error(
        "{0:?} is not a season of this board (ids are YYYY-MM-DD of a season's first day, or YYYY-MM for monthly boards)"
    )]
    Id(String),
    /// A time outside the range seasons are computed for (years 1..=9999).
    #[error("time {0} ms is outside the years 1 to 9999")]
    OutOfRange(i64),
}

/// One season: its id and its half-open interval `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Season {
    /// `YYYY-MM-DD` (day, week) or `YYYY-MM` (month).
    pub id: String,
    /// First millisecond of the season (a reset).
    pub start_ms: i64,
    /// First millisecond of the next season (the next reset).
    pub end_ms: i64,
}

impl Reset {
    /// The season that contains `t_ms` (an event at a reset belongs to the season it starts).
    ///
    /// # Errors
    /// [`SeasonError::OutOfRange`] for times outside the years 1 to 9999.
    pub fn season_at(&self, t_ms: i64) -> Result<Season, SeasonError> {
        let local = local_date(t_ms, self.utc_offset)?;
        let first = match self.every {
            Every::Day => local,
            Every::Week => {
                let back = (local.weekday().number_days_from_monday() + 7 - self.weekday.number_days_from_monday()) % 7;
                local - Duration::days(i64::from(back))
            }
            Every::Month => local.replace_day(1).map_err(|_| SeasonError::OutOfRange(t_ms))?,
        };
        self.starting(first).ok_or(SeasonError::OutOfRange(t_ms))
    }

    /// The season after `season`.
    ///
    /// # Errors
    /// [`SeasonError::OutOfRange`] past the year 9999.
    pub fn next(&self, season: &Season) -> Result<Season, SeasonError> {
        self.season_at(season.end_ms)
    }

    /// The season before `season`.
    ///
    /// # Errors
    /// [`SeasonError::OutOfRange`] before the year 1.
    pub fn previous(&self, season: &Season) -> Result<Season, SeasonError> {
        self.season_at(season.start_ms - 1)
    }

    /// The season an id names.
    ///
    /// # Errors
    /// [`SeasonError::Id`] when the id is malformed or names no season of
    /// this schedule (a weekly board's id must be a start weekday).
    pub fn parse_id(&self, id: &str) -> Result<Season, SeasonError> {
        let bad = || SeasonError::Id(id.to_string());
        let date = match (self.every, id.len()) {
            (Every::Month, 7) => parse_date(&format!("{id}-01")).ok_or_else(bad)?,
            (Every::Day | Every::Week, 10) => parse_date(id).ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        if self.every == Every::Week && date.weekday() != self.weekday {
            return Err(bad());
        }
        let season = self.starting(date).ok_or_else(bad)?;
        // Round trip: rejects ids like 2026-02-30 that a lenient parse would shift.
        if season.id == id { Ok(season) } else { Err(bad()) }
    }

    /// The season whose first local day is `first`.
    fn starting(self, first: Date) -> Option<Season> {
        let after = match self.every {
            Every::Day => first.next_day()?,
            Every::Week => first.checked_add(Duration::days(7))?,
            Every::Month => {
                let (year, month) = match first.month() {
                    Month::December => (first.year() + 1, Month::January),
                    m => (first.year(), m.next()),
                };
                Date::from_calendar_date(year, month, 1).ok()?
            }
        };
        let id = match self.every {
            Every::Month => format!("{:04}-{:02}", first.year(), u8::from(first.month())),
            Every::Day | Every::Week => {
                format!("{:04}-{:02}-{:02}", first.year(), u8::from(first.month()), first.day())
            }
        };
        Some(Season { id, start_ms: midnight_ms(first, self.utc_offset), end_ms: midnight_ms(after, self.utc_offset) })
    }
}

/// The local calendar date of `t_ms` at `offset`.
fn local_date(t_ms: i64, offset: UtcOffset) -> Result<Date, SeasonError> {
    let nanos = i128::from(t_ms) * 1_000_000;
    let t = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| SeasonError::OutOfRange(t_ms))?;
    t.checked_to_offset(offset).map(OffsetDateTime::date).ok_or(SeasonError::OutOfRange(t_ms))
}

/// Milliseconds since the Unix epoch of 00:00 on `date` at `offset`.
fn midnight_ms(date: Date, offset: UtcOffset) -> i64 {
    let at = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_offset(offset);
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

impl fmt::Display for Reset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = offset_text::format(self.utc_offset);
        match self.every {
            Every::Day => write!(f, "daily at 00:00 {offset}"),
            Every::Week => write!(f, "weekly on {} at 00:00 {offset}", weekday_text::format(self.weekday)),
            Every::Month => write!(f, "monthly on the 1st at 00:00 {offset}"),
        }
    }
}

/// `+HH:MM` text for a fixed offset.
mod offset_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::UtcOffset;

    use super::SeasonError;

    pub(super) fn format(offset: UtcOffset) -> String {
        let (h, m, _) = offset.as_hms();
        let sign = if offset.is_negative() { '-' } else { '+' };
        format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
    }

    pub(super) fn parse(s: &str) -> Result<UtcOffset, SeasonError> {
        let bad = || SeasonError::Offset(s.to_string());
        let bytes = s.as_bytes();
        if bytes.len() != 6 || bytes[3] != b':' || !matches!(bytes[0], b'+' | b'-') {
            return Err(bad());
        }
        let digits = |r: std::ops::Range<usize>| s.get(r).filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        let hours: i8 = digits(1..3).and_then(|d| d.parse().ok()).ok_or_else(bad)?;
        let minutes: i8 = digits(4..6).and_then(|d| d.parse().ok()).ok_or_else(bad)?;
        if minutes >= 60 || hours > 14 || (hours == 14 && minutes > 0) {
            return Err(bad());
        }
        let sign = if bytes[0] == b'-' { -1 } else { 1 };
        UtcOffset::from_hms(sign * hours, sign * minutes, 0).map_err(|_| bad())
    }

    #[allow(clippy::trivially_copy_pass_by_ref, reason = "the signature serde's `with` requires")]
    pub(super) fn serialize<S: Serializer>(offset: &UtcOffset, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*offset))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UtcOffset, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `mon` ... `sun`.
mod weekday_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Weekday;

    use super::SeasonError;

    const NAMES: [(&str, Weekday); 7] = [
        ("mon", Weekday::Monday),
        ("tue", Weekday::Tuesday),
        ("wed", Weekday::Wednesday),
        ("thu", Weekday::Thursday),
        ("fri", Weekday::Friday),
        ("sat", Weekday::Saturday),
        ("sun", Weekday::Sunday),
    ];

    pub(super) fn format(day: Weekday) -> &'static str {
        NAMES.iter().find(|(_, d)| *d == day).map_or("mon", |(n, _)| n)
    }

    #[allow(clippy::trivially_copy_pass_by_ref, reason = "the signature serde's `with` requires")]
    pub(super) fn serialize<S: Serializer>(day: &Weekday, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(format(*day))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Weekday, D::Error> {
        let text = String::deserialize(d)?;
        NAMES
            .iter()
            .find(|(n, _)| *n == text)
            .map(|(_, day)| *day)
            .ok_or_else(|| serde::de::Error::custom(SeasonError::Weekday(text)))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn reset(json: &str) -> Reset {
        serde_json::from_str(json).expect("reset")
    }

    /// Milliseconds of an RFC 3339 time.
    fn ms(rfc3339: &str) -> i64 {
        let t = OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).expect("time");
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).expect("ms")
    }

    #[test]
    fn daily_seasons_reset_at_midnight_at_the_offset() {
        let tokyo = reset(r#"{"every":"day","utc_offset":"+09:00"}"#);
        // 14:59:59.999 UTC is 23:59:59.999 in Tokyo; 15:00 UTC starts the next day there.
        let before = tokyo.season_at(ms("2026-11-22T14:59:59.999Z")).expect("season");
        let after = tokyo.season_at(ms("2026-11-22T15:00:00Z")).expect("season");
        assert_eq!((before.id.as_str(), after.id.as_str()), ("2026-11-22", "2026-11-23"));
        assert_eq!(before.end_ms, after.start_ms, "an event at the reset belongs to the season it starts");
        assert_eq!(after.start_ms, ms("2026-11-22T15:00:00Z"));
        assert_eq!(after.end_ms - after.start_ms, 86_400_000);
        let west = reset(r#"{"every":"day","utc_offset":"-05:30"}"#);
        assert_eq!(west.season_at(ms("2026-11-23T05:29:59Z")).expect("season").id, "2026-11-22");
        assert_eq!(west.season_at(ms("2026-11-23T05:30:00Z")).expect("season").id, "2026-11-23");
    }

    #[test]
    fn weekly_seasons_start_on_their_weekday_and_monthly_on_the_first() {
        let weekly = reset(r#"{"every":"week","utc_offset":"+00:00","weekday":"sun"}"#);
        // 2026-11-22 is a Sunday.
        let s = weekly.season_at(ms("2026-11-25T12:00:00Z")).expect("season");
        assert_eq!(
            (s.id.as_str(), s.start_ms, s.end_ms),
            ("2026-11-22", ms("2026-11-22T00:00:00Z"), ms("2026-11-29T00:00:00Z"))
        );
        assert_eq!(weekly.season_at(ms("2026-11-22T00:00:00Z")).expect("season").id, "2026-11-22");
        assert_eq!(weekly.season_at(ms("2026-11-21T23:59:59Z")).expect("season").id, "2026-11-15");
        let monthly = reset(r#"{"every":"month","utc_offset":"+01:00"}"#);
        let feb = monthly.season_at(ms("2028-02-29T23:00:00Z")).expect("leap day, local March 1st");
        assert_eq!(feb.id, "2028-03");
        let feb = monthly.previous(&feb).expect("previous");
        assert_eq!((feb.id.as_str(), feb.end_ms - feb.start_ms), ("2028-02", 29 * 86_400_000));
        let dec = monthly.parse_id("2026-12").expect("december");
        assert_eq!(monthly.next(&dec).expect("next").id, "2027-01");
    }

    #[test]
    fn ids_parse_only_when_they_name_a_season() {
        let weekly = reset(r#"{"every":"week","utc_offset":"+09:00","weekday":"mon"}"#);
        assert_eq!(weekly.parse_id("2026-11-23").expect("a monday").start_ms, ms("2026-11-22T15:00:00Z"));
        for bad in ["2026-11-22", "2026-11", "2026-02-30", "26-11-23", "2026-11-23x", "", "2026-1-023"] {
            assert!(weekly.parse_id(bad).is_err(), "{bad}");
        }
        let monthly = reset(r#"{"every":"month"}"#);
        assert!(monthly.parse_id("2026-11").is_ok() && monthly.parse_id("2026-11-01").is_err());
        assert!(monthly.parse_id("2026-13").is_err());
    }

    #[test]
    fn schedules_serialise_and_refuse_nonsense() {
        let r = reset(r#"{"every":"week","utc_offset":"-03:30","weekday":"fri"}"#);
        assert_eq!(
            serde_json::to_string(&r).expect("json"),
            r#"{"every":"week","utc_offset":"-03:30","weekday":"fri"}"#
        );
        assert_eq!(r.to_string(), "weekly on fri at 00:00 -03:30");
        assert_eq!(reset(r#"{"every":"day"}"#).utc_offset, UtcOffset::UTC);
        for bad in [
            r#"{"every":"hour"}"#,
            r#"{"every":"day","utc_offset":"+15:00"}"#,
            r#"{"every":"day","utc_offset":"+14:30"}"#,
            r#"{"every":"day","utc_offset":"09:00"}"#,
            r#"{"every":"day","utc_offset":"+9:00"}"#,
            r#"{"every":"day","utc_offset":"+09:60"}"#,
            r#"{"every":"week","weekday":"monday"}"#,
            r#"{"every":"day","colour":"red"}"#,
        ] {
            assert!(serde_json::from_str::<Reset>(bad).is_err(), "{bad}");
        }
        assert!(
            Reset { every: Every::Day, utc_offset: UtcOffset::UTC, weekday: Weekday::Monday }
                .season_at(i64::MAX)
                .is_err()
        );
    }

    proptest! {
        /// Every time falls in exactly one season: inside its interval, the
        /// season of its start is itself, its end starts the next one, and its id names it.
        #[test]
        fn every_time_has_exactly_one_season(
            t in 0i64..4_102_444_800_000,
            every in prop_oneof![Just(Every::Day), Just(Every::Week), Just(Every::Month)],
            offset_minutes in -840i32..=840,
            weekday in 0u8..7,
        ) {
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).expect("offset");
            let weekday = Weekday::Monday.nth_next(weekday);
            let r = Reset { every, utc_offset: offset, weekday };
            let s = r.season_at(t).expect("season");
            prop_assert!(s.start_ms <= t && t < s.end_ms);
            prop_assert_eq!(&r.season_at(s.start_ms).expect("start"), &s);
            let next = r.next(&s).expect("next");
            prop_assert_eq!(next.start_ms, s.end_ms);
            prop_assert!(next.id > s.id, "ids sort like seasons");
            prop_assert_eq!(&r.previous(&next).expect("previous"), &s);
            prop_assert_eq!(&r.parse_id(&s.id).expect("id"), &s);
        }
    }
}
