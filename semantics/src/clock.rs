//! The clock seasons are decided by: which season is current, when one
//! passed its grace and closes, and the countdown to the next reset.
//!
//! In production it is the system clock. Two other forms exist for tests and
//! demos, given to every process of a run alike (`--clock`):
//! - `offset:<ms>`: the system clock shifted by a signed number of
//!   milliseconds, to run workers with skewed clocks on purpose;
//! - `sim:<anchor_ms>:<start_ms>:<speed>`: a simulated clock that read
//!   `start_ms` at the real time `anchor_ms` and runs `speed` times faster,
//!   so a demo crosses day seasons in seconds. All processes of a run share
//!   the anchor, so they agree on the time as closely as their system clocks do.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// A clock for season decisions; `Copy`, cheap to read.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// The system clock plus `ms` (negative: behind).
    Offset {
        /// Milliseconds added to the system clock.
        ms: i64,
    },
    /// A simulated clock (see the module docs).
    Simulated {
        /// The real time (ms since the epoch) at which the clock read `start_ms`.
        anchor_ms: i64,
        /// What the clock read at `anchor_ms`.
        start_ms: i64,
        /// How many simulated milliseconds pass per real one (1 to 1,000,000).
        speed: u32,
    },
}

/// Milliseconds since the Unix epoch by the system clock.
pub fn system_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Clock {
    /// The time now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.at(system_ms())
    }

    /// What this clock reads when the system clock reads `real_ms`.
    pub fn at(&self, real_ms: i64) -> i64 {
        match *self {
            Self::System => real_ms,
            Self::Offset { ms } => real_ms.saturating_add(ms),
            Self::Simulated { anchor_ms, start_ms, speed } => {
                start_ms.saturating_add(real_ms.saturating_sub(anchor_ms).saturating_mul(i64::from(speed)))
            }
        }
    }

    /// How many real milliseconds `ms` of this clock's time take.
    pub fn real_duration_ms(&self, ms: i64) -> i64 {
        match *self {
            Self::Simulated { speed, .. } => ms / i64::from(speed.max(1)),
            _ => ms,
        }
    }
}

/// A `--clock` value that is none of the forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a clock is `system`, `offset:<ms>` or `sim:<anchor_ms>:<start_ms>:<speed>` (speed 1 to 1000000), got {0:?}")]
pub struct ClockError(String);

impl FromStr for Clock {
    type Err = ClockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ClockError(s.to_string());
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["system"] => Ok(Self::System),
            ["offset", ms] => Ok(Self::Offset { ms: ms.parse().map_err(|_| bad())? }),
            ["sim", anchor, start, speed] => {
                let speed: u32 = speed.parse().map_err(|_| bad())?;
                if !(1..=1_000_000).contains(&speed) {
                    return Err(bad());
                }
                Ok(Self::Simulated {
                    anchor_ms: anchor.parse().map_err(|_| bad())?,
                    start_ms: start.parse().map_err(|_| bad())?,
                    speed,
                })
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("system"),
            Self::Offset { ms } => write!(f, "offset:{ms}"),
            Self::Simulated { anchor_ms, start_ms, speed } => write!(f, "sim:{anchor_ms}:{start_ms}:{speed}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_print_and_read() {
        for text in ["system", "offset:-1500", "sim:1000:86400000:4320"] {
            let clock: Clock = text.parse().expect(text);
            assert_eq!(clock.to_string(), text);
        }
        let sim: Clock = "sim:1000:86400000:4320".parse().expect("sim");
        assert_eq!(sim.at(1000), 86_400_000);
        assert_eq!(sim.at(21_000), 86_400_000 + 20_000 * 4320, "a day passes in 20 s");
        assert_eq!(sim.real_duration_ms(86_400_000), 20_000);
        assert_eq!(Clock::Offset { ms: -5 }.at(100), 95);
        for bad in ["", "sim:1:2", "sim:1:2:0", "offset:x", "later"] {
            assert!(bad.parse::<Clock>().is_err(), "{bad:?}");
        }
    }
}
