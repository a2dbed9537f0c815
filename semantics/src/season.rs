//! Season arithmetic: which season an event time belongs to under a board's
//! reset schedule (docs/contract.md#seasons), the season ids, and the boundaries.
//!
//! A schedule resets every `day`, `week` (on `weekday`) or `month`, at 00:00
//! at a fixed UTC offset; every `hour` on the hour (UTC); or every `length`
//! from a `start` (`span`: tournaments, events; no season before the start);
//! or when an admin says so (`manual`: no arithmetic decides those seasons,
//! the board's registry of resets does, see [`manual_id`]).
//! A season is the half-open interval `[start, end)`
//! between two resets, in milliseconds since the Unix epoch; an event at
//! exactly `end` belongs to the next season. Ids name the season's start:
//! the day at the board's offset, `YYYY-MM-DD`, for `day` and `week`,
//! `YYYY-MM` for `month`, `YYYY-MM-DDTHH` (UTC) for `hour`, and
//! `YYYY-MM-DDTHH:MM` (UTC) for `span`, so ids sort like their seasons;
//! `m1`, `m2`, ... for `manual` (sort those by their number, not as text).
//! Offsets are fixed (`+09:00`, `-05:30`):
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
    /// Hourly, on the hour (UTC).
    Hour,
    /// Daily, at 00:00 at the offset.
    Day,
    /// Weekly, at 00:00 at the offset on the schedule's weekday.
    Week,
    /// Monthly, at 00:00 at the offset on the first of the month.
    Month,
    /// Every `length` from `start` ([`Span`]).
    Span,
    /// When an admin resets the board (`POST .../seasons:reset`): the seasons
    /// are the intervals between the resets its registry records.
    Manual,
}

/// The end a `manual` season has while it is open (no reset has ended it):
/// 5000-01-01T00:00:00Z. Under 10^14, so Redis's Lua JSON (14 significant
/// digits) writes it back exactly, as it does every time before it.
pub const OPEN_END_MS: i64 = 95_617_584_000_000;

/// The id of the `index`th season of a `manual` schedule (`m1` is the first).
pub fn manual_id(index: u64) -> String {
    format!("m{index}")
}

/// The number of a `manual` season id (`m7` → 7); `None` for anything else
/// (`m0`, `m07`, `7`, ...), so each season has exactly one id.
pub fn manual_index(id: &str) -> Option<u64> {
    let digits = id.strip_prefix('m')?;
    if digits.is_empty() || digits.len() > 20 || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok().filter(|&k| k >= 1)
}

/// The seasons of a `span` schedule: `[start + k * length, start + (k + 1) * length)`
/// for k = 0, 1, ..., in whole minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// The first season's start, in milliseconds since the epoch.
    pub start_ms: i64,
    /// Each season's length, in milliseconds.
    pub length_ms: i64,
}

/// Shortest `span` length: ids name the minute a season starts.
pub const MIN_SPAN: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest `span` length.
pub const MAX_SPAN: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// A reset schedule: `{"every": "week", "utc_offset": "+09:00", "weekday": "mon"}`,
/// `{"every": "hour"}`, `{"every": "span", "start": "2026-12-04T18:00:00Z", "length": "3d"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "wire::Reset", into = "wire::Reset")]
pub struct Reset {
    /// How often.
    pub every: Every,
    /// The fixed offset the reset happens at (`+HH:MM` / `-HH:MM`, at most
    /// ±14:00; `day`, `week` and `month` only, UTC otherwise).
    pub utc_offset: UtcOffset,
    /// The day weekly seasons start (`mon` ... `sun`; default `mon`; ignored otherwise).
    pub weekday: Weekday,
    /// The start and length of `span` seasons (`None` otherwise).
    pub span: Option<Span>,
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
        "{0:?} is not a season of this board (ids are YYYY-MM-DD of a season's first day, YYYY-MM for monthly \
         boards, YYYY-MM-DDTHH for hourly ones, YYYY-MM-DDTHH:MM of a span season's start, m1, m2, ... on \
         manual ones)"
    )]
    Id(String),
    /// A schedule whose settings do not go together.
    #[error("{0}")]
    Schedule(String),
    /// A time before a `span` schedule's first season.
    #[error("the first season starts at {}", crate::season_result::rfc3339_ms(*.0))]
    NotStarted(i64),
    /// A time outside the range seasons are computed for (years 1..=9999).
    #[error("time {0} ms is outside the years 1 to 9999")]
    OutOfRange(i64),
    /// A `manual` schedule: its seasons are recorded resets, not arithmetic.
    #[error("a manual schedule's seasons are the resets recorded for its board")]
    Manual,
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
        match (self.every, self.span) {
            (Every::Hour, _) => return fixed(t_ms.div_euclid(HOUR_MS) * HOUR_MS, HOUR_MS, IdFormat::Hour),
            (Every::Span, Some(span)) if t_ms < span.start_ms => return Err(SeasonError::NotStarted(span.start_ms)),
            (Every::Span, Some(span)) => {
                let start = span.start_ms + (t_ms - span.start_ms) / span.length_ms * span.length_ms;
                return fixed(start, span.length_ms, IdFormat::Minute);
            }
            (Every::Span, None) => return Err(SeasonError::Schedule("a span schedule needs start and length".into())),
            (Every::Manual, _) => return Err(SeasonError::Manual),
            (Every::Day | Every::Week | Every::Month, _) => {}
        }
        let local = local_date(t_ms, self.utc_offset)?;
        let first = match self.every {
            Every::Day => local,
            Every::Week => {
                let back = (local.weekday().number_days_from_monday() + 7 - self.weekday.number_days_from_monday()) % 7;
                local - Duration::days(i64::from(back))
            }
            Every::Month => local.replace_day(1).map_err(|_| SeasonError::OutOfRange(t_ms))?,
            Every::Hour | Every::Span | Every::Manual => unreachable!("handled above"),
        };
        self.starting(first).ok_or(SeasonError::OutOfRange(t_ms))
    }

    /// The shortest season of the schedule (`late_grace` may not be longer);
    /// a `manual` schedule's seasons are as long as an admin makes them, so
    /// it bounds `late_grace` at a day, as every schedule's maximum does.
    pub fn shortest(&self) -> std::time::Duration {
        match (self.every, self.span) {
            (Every::Hour, _) => std::time::Duration::from_secs(3600),
            (Every::Span, Some(span)) => std::time::Duration::from_millis(span.length_ms.unsigned_abs()),
            (Every::Day | Every::Week | Every::Month | Every::Span | Every::Manual, _) => {
                std::time::Duration::from_secs(86_400)
            }
        }
    }

    /// Whether the board's seasons are its recorded resets (`manual`).
    pub fn is_manual(&self) -> bool {
        self.every == Every::Manual
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
    /// this schedule (a weekly board's id must be a start weekday);
    /// [`SeasonError::Manual`] for a `manual` schedule (its registry knows).
    pub fn parse_id(&self, id: &str) -> Result<Season, SeasonError> {
        let bad = || SeasonError::Id(id.to_string());
        if self.every == Every::Manual {
            return Err(SeasonError::Manual);
        }
        let date = match (self.every, id.len()) {
            (Every::Month, 7) => parse_date(&format!("{id}-01")).ok_or_else(bad)?,
            (Every::Day | Every::Week, 10) => parse_date(id).ok_or_else(bad)?,
            (Every::Hour, 13) | (Every::Span, 16) => {
                let start = parse_start(id).ok_or_else(bad)?;
                if let (Every::Span, Some(span)) = (self.every, self.span)
                    && (start < span.start_ms || (start - span.start_ms) % span.length_ms != 0)
                {
                    return Err(bad());
                }
                let season = self.season_at(start).map_err(|_| bad())?;
                return if season.id == id { Ok(season) } else { Err(bad()) };
            }
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
            Every::Hour | Every::Span | Every::Manual => return None,
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
            Every::Day | Every::Week | Every::Hour | Every::Span | Every::Manual => {
                format!("{:04}-{:02}-{:02}", first.year(), u8::from(first.month()), first.day())
            }
        };
        Some(Season { id, start_ms: midnight_ms(first, self.utc_offset), end_ms: midnight_ms(after, self.utc_offset) })
    }
}

/// How an hour's or a span's id names its start (UTC).
#[derive(Debug, Clone, Copy)]
enum IdFormat {
    /// `YYYY-MM-DDTHH`.
    Hour,
    /// `YYYY-MM-DDTHH:MM`.
    Minute,
}

/// The season `[start_ms, start_ms + length_ms)`, named by its start in UTC.
fn fixed(start_ms: i64, length_ms: i64, format: IdFormat) -> Result<Season, SeasonError> {
    let at = utc_time(start_ms)?;
    let end_ms = start_ms.checked_add(length_ms).ok_or(SeasonError::OutOfRange(start_ms))?;
    utc_time(end_ms - 1)?;
    let (date, hour, minute) = (at.date(), at.hour(), at.minute());
    let day = format!("{:04}-{:02}-{:02}T{hour:02}", date.year(), u8::from(date.month()), date.day());
    let id = match format {
        IdFormat::Hour => day,
        IdFormat::Minute => format!("{day}:{minute:02}"),
    };
    Ok(Season { id, start_ms, end_ms })
}

/// `t_ms` in UTC, within the years 1 to 9999.
fn utc_time(t_ms: i64) -> Result<OffsetDateTime, SeasonError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t_ms) * 1_000_000)
        .ok()
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or(SeasonError::OutOfRange(t_ms))
}

/// The UTC instant an id `YYYY-MM-DDTHH` or `YYYY-MM-DDTHH:MM` names.
fn parse_start(id: &str) -> Option<i64> {
    let (day, clock) = id.split_once('T')?;
    let date = parse_date(day)?;
    let (hour, minute) = match clock.split_once(':') {
        Some((h, m)) => (h, Some(m)),
        None => (clock, None),
    };
    let two = |s: &str| (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u8>().ok()).flatten();
    let time = Time::from_hms(two(hour)?, minute.map_or(Some(0), two)?, 0).ok()?;
    let at = PrimitiveDateTime::new(date, time).assume_utc();
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
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
        match (self.every, self.span) {
            (Every::Hour, _) => f.write_str("hourly on the hour UTC"),
            (Every::Day, _) => write!(f, "daily at 00:00 {offset}"),
            (Every::Week, _) => write!(f, "weekly on {} at 00:00 {offset}", weekday_text::format(self.weekday)),
            (Every::Month, _) => write!(f, "monthly on the 1st at 00:00 {offset}"),
            (Every::Span, Some(span)) => write!(
                f,
                "every {} from {}",
                humantime::format_duration(std::time::Duration::from_millis(span.length_ms.unsigned_abs())),
                crate::season_result::rfc3339_ms(span.start_ms)
            ),
            (Every::Span, None) => f.write_str("span (incomplete)"),
            (Every::Manual, _) => f.write_str("manual (an admin resets it)"),
        }
    }
}

/// `+HH:MM` text for a fixed offset.
mod offset_text {
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
}

/// `mon` ... `sun`.
mod weekday_text {
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

    pub(super) fn parse(text: &str) -> Result<Weekday, SeasonError> {
        NAMES.iter().find(|(n, _)| *n == text).map(|(_, day)| *day).ok_or_else(|| SeasonError::Weekday(text.into()))
    }
}

/// The JSON form of a schedule: the settings it does not use are absent, and
/// refused when given.
mod wire {
    use serde::{Deserialize, Serialize};
    use time::format_description::well_known::Rfc3339;
    use time::{OffsetDateTime, UtcOffset, Weekday};

    use super::{Every, MAX_SPAN, MIN_SPAN, MINUTE_MS, SeasonError, Span, offset_text, weekday_text};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Reset {
        every: Every,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        utc_offset: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weekday: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        length: Option<String>,
    }

    impl TryFrom<Reset> for super::Reset {
        type Error = SeasonError;

        fn try_from(w: Reset) -> Result<Self, SeasonError> {
            let unused =
                |what: &str| SeasonError::Schedule(format!("{what} does not apply to an {:?} schedule", w.every));
            let calendar = matches!(w.every, Every::Day | Every::Week | Every::Month);
            let utc_offset = match &w.utc_offset {
                Some(text) => offset_text::parse(text)?,
                None => UtcOffset::UTC,
            };
            if !calendar && utc_offset != UtcOffset::UTC {
                return Err(unused("utc_offset (hours and spans are in UTC)"));
            }
            let weekday = match &w.weekday {
                Some(_) if !calendar => return Err(unused("weekday")),
                Some(text) => weekday_text::parse(text)?,
                None => Weekday::Monday,
            };
            let span = match (w.every, &w.start, &w.length) {
                (Every::Span, Some(start), Some(length)) => Some(span(start, length)?),
                (Every::Span, _, _) => {
                    return Err(SeasonError::Schedule("a span schedule needs start and length".into()));
                }
                (_, None, None) => None,
                _ => return Err(unused("start and length")),
            };
            Ok(Self { every: w.every, utc_offset, weekday, span })
        }
    }

    /// A span from its RFC 3339 start and its length, both in whole minutes.
    fn span(start: &str, length: &str) -> Result<Span, SeasonError> {
        let bad = |why: String| SeasonError::Schedule(why);
        let at = OffsetDateTime::parse(start, &Rfc3339)
            .map_err(|e| bad(format!("start must be an RFC 3339 time, got {start:?}: {e}")))?;
        let start_ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad("start".into()))?;
        let length = humantime::parse_duration(length)
            .map_err(|e| bad(format!("length must be a duration like 90m or 3d, got {length:?}: {e}")))?;
        if start_ms % MINUTE_MS != 0 || length.as_millis() % 60_000 != 0 || !(MIN_SPAN..=MAX_SPAN).contains(&length) {
            return Err(bad(format!(
                "start and length must be whole minutes, the length 1m to 366d; got {start:?} and {length:?}"
            )));
        }
        super::utc_time(start_ms)?;
        Ok(Span { start_ms, length_ms: i64::try_from(length.as_millis()).map_err(|_| bad("length".into()))? })
    }

    impl From<super::Reset> for Reset {
        fn from(r: super::Reset) -> Self {
            let calendar = matches!(r.every, Every::Day | Every::Week | Every::Month);
            Self {
                every: r.every,
                utc_offset: calendar.then(|| offset_text::format(r.utc_offset)),
                weekday: calendar.then(|| weekday_text::format(r.weekday).to_string()),
                start: r.span.map(|s| crate::season_result::rfc3339_ms(s.start_ms)),
                length: r.span.map(|s| {
                    humantime::format_duration(std::time::Duration::from_millis(s.length_ms.unsigned_abs())).to_string()
                }),
            }
        }
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
            r#"{"every":"hour","utc_offset":"+01:00"}"#,
            r#"{"every":"hour","weekday":"mon"}"#,
            r#"{"every":"day","start":"2026-12-04T18:00:00Z","length":"3d"}"#,
            r#"{"every":"span","start":"2026-12-04T18:00:00Z"}"#,
            r#"{"every":"span","length":"3d"}"#,
            r#"{"every":"span","start":"2026-12-04T18:00:30Z","length":"3d"}"#,
            r#"{"every":"span","start":"2026-12-04T18:00:00Z","length":"90s"}"#,
            r#"{"every":"span","start":"2026-12-04T18:00:00Z","length":"367d"}"#,
            r#"{"every":"span","start":"2026-12-04 18:00","length":"3d"}"#,
            r#"{"every":"span","start":"2026-12-04T18:00:00Z","length":"3d","utc_offset":"+09:00"}"#,
            r#"{"every":"fortnight"}"#,
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
            Reset { every: Every::Day, utc_offset: UtcOffset::UTC, weekday: Weekday::Monday, span: None }
                .season_at(i64::MAX)
                .is_err()
        );
        for (text, json) in [
            (r#"{"every":"hour"}"#, r#"{"every":"hour"}"#),
            (r#"{"every":"hour","utc_offset":"+00:00"}"#, r#"{"every":"hour"}"#),
            (
                r#"{"every":"span","start":"2026-12-04T19:00:00+01:00","length":"3days"}"#,
                r#"{"every":"span","start":"2026-12-04T18:00:00Z","length":"3days"}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&reset(text)).expect("json"), json);
        }
        assert_eq!(
            reset(r#"{"every":"span","start":"2026-12-04T18:00:00Z","length":"90m"}"#).to_string(),
            "every 1h 30m from 2026-12-04T18:00:00Z"
        );
    }

    #[test]
    fn manual_schedules_have_numbered_ids_and_no_arithmetic() {
        let manual = reset(r#"{"every":"manual"}"#);
        assert!(manual.is_manual());
        assert_eq!(serde_json::to_string(&manual).expect("json"), r#"{"every":"manual"}"#);
        assert_eq!(manual.season_at(0), Err(SeasonError::Manual));
        assert_eq!(manual.parse_id("m1"), Err(SeasonError::Manual));
        for bad in [r#"{"every":"manual","utc_offset":"+01:00"}"#, r#"{"every":"manual","weekday":"mon"}"#] {
            assert!(serde_json::from_str::<Reset>(bad).is_err(), "{bad}");
        }
        assert_eq!((manual_id(1), manual_id(12)), ("m1".to_string(), "m12".to_string()));
        for k in [1, 9, 10, 12_345, u64::MAX] {
            assert_eq!(manual_index(&manual_id(k)), Some(k));
        }
        for bad in ["", "m", "m0", "m01", "1", "M1", "m1a", "m-1", "m18446744073709551616", "2026-01"] {
            assert_eq!(manual_index(bad), None, "{bad}");
        }
        const { assert!(OPEN_END_MS < 100_000_000_000_000, "14 digits: cjson writes it back as an integer") };
        assert_eq!(crate::season_result::rfc3339_ms(OPEN_END_MS), "5000-01-01T00:00:00Z");
    }

    #[test]
    fn hourly_seasons_are_utc_hours() {
        let hourly = reset(r#"{"every":"hour"}"#);
        let s = hourly.season_at(ms("2026-12-31T23:59:59.999Z")).expect("season");
        assert_eq!(
            (s.id.as_str(), s.start_ms, s.end_ms),
            ("2026-12-31T23", ms("2026-12-31T23:00:00Z"), ms("2027-01-01T00:00:00Z"))
        );
        assert_eq!(hourly.next(&s).expect("next").id, "2027-01-01T00", "across a year end");
        assert_eq!(hourly.parse_id("2027-01-01T00").expect("id").start_ms, ms("2027-01-01T00:00:00Z"));
        for bad in ["2027-01-01", "2027-01-01T24", "2027-01-01T1", "2027-01-01T00:00", "2027-01-01t00", "2027-02-30T00"]
        {
            assert!(hourly.parse_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn span_seasons_repeat_from_their_start_and_none_is_before_it() {
        // Three days from the 30th of January, 18:00 UTC: the second season crosses the month's end.
        let span = reset(r#"{"every":"span","start":"2027-01-30T18:00:00Z","length":"3d"}"#);
        let first = span.season_at(ms("2027-01-30T18:00:00Z")).expect("first");
        assert_eq!((first.id.as_str(), first.end_ms), ("2027-01-30T18:00", ms("2027-02-02T18:00:00Z")));
        let second = span.season_at(ms("2027-02-01T00:00:00Z")).expect("across the month end");
        assert_eq!(second.id, "2027-01-30T18:00", "still the first season");
        let second = span.next(&first).expect("next");
        assert_eq!((second.id.as_str(), second.start_ms), ("2027-02-02T18:00", ms("2027-02-02T18:00:00Z")));
        assert_eq!(span.previous(&second).expect("previous"), first);
        assert_eq!(span.season_at(ms("2027-01-30T17:59:59.999Z")), Err(SeasonError::NotStarted(first.start_ms)));
        assert!(span.previous(&first).is_err(), "nothing before the first season");
        assert_eq!(span.parse_id("2027-02-02T18:00").expect("id"), second);
        for bad in ["2027-02-01T18:00", "2027-01-27T18:00", "2027-02-02T18", "2027-02-02T18:01", "2027-02-02T18:60"] {
            assert!(span.parse_id(bad).is_err(), "{bad}");
        }
        // Ninety minutes from a start in the future: the seasons keep their length, across days.
        let short = reset(r#"{"every":"span","start":"2027-06-01T23:00:00Z","length":"90m"}"#);
        let s = short.season_at(ms("2027-06-02T00:31:00Z")).expect("season");
        assert_eq!((s.id.as_str(), s.end_ms - s.start_ms), ("2027-06-02T00:30", 5_400_000));
        assert_eq!(short.shortest(), std::time::Duration::from_secs(5400));
    }

    proptest! {
        /// Every time falls in exactly one season: inside its interval, the
        /// season of its start is itself, its end starts the next one, and its id names it.
        #[test]
        fn every_time_has_exactly_one_season(
            t in 0i64..4_102_444_800_000,
            every in prop_oneof![Just(Every::Hour), Just(Every::Day), Just(Every::Week), Just(Every::Month), Just(Every::Span)],
            offset_minutes in -840i32..=840,
            weekday in 0u8..7,
            span_minutes in 1i64..=527_040,
        ) {
            let calendar = matches!(every, Every::Day | Every::Week | Every::Month);
            let offset = if calendar { UtcOffset::from_whole_seconds(offset_minutes * 60).expect("offset") } else { UtcOffset::UTC };
            let weekday = if calendar { Weekday::Monday.nth_next(weekday) } else { Weekday::Monday };
            let span = (every == Every::Span).then_some(Span { start_ms: 0, length_ms: span_minutes * MINUTE_MS });
            let r = Reset { every, utc_offset: offset, weekday, span };
            let s = r.season_at(t).expect("season");
            prop_assert!(s.start_ms <= t && t < s.end_ms);
            prop_assert_eq!(&r.season_at(s.start_ms).expect("start"), &s);
            let next = r.next(&s).expect("next");
            prop_assert_eq!(next.start_ms, s.end_ms);
            prop_assert!(next.id > s.id, "ids sort like seasons");
            prop_assert_eq!(&r.previous(&next).expect("previous"), &s);
            prop_assert_eq!(&r.parse_id(&s.id).expect("id"), &s);
            let json = serde_json::to_string(&r).expect("json");
            prop_assert_eq!(serde_json::from_str::<Reset>(&json).expect("read back"), r);
        }
    }
}
