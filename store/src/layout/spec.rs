//! Which layout a board uses, as configured (`single`, `hash:16`, `range:1000,5000`).

use std::fmt;
use std::str::FromStr;

use leaderboard_contract::MAX_SCORE;

use crate::Error;

/// Most shards a layout may have: fan-out cost grows with the count.
pub const MAX_SHARDS: usize = 1024;

/// A board layout and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutSpec {
    /// One sorted set per board.
    Single,
    /// `shards` sorted sets, a player's shard chosen by a stable hash of the id.
    Hash {
        /// Number of shards, `1..=MAX_SHARDS`.
        shards: usize,
    },
    /// Sorted sets over disjoint score ranges.
    ///
    /// `boundaries` are the strictly increasing lower bounds of shards 1..; shard
    /// 0 starts at 0 and the last shard is unbounded above. These are the
    /// *initial* boundaries: once a board exists its boundaries live in Redis
    /// and change only through a rebalance.
    Range {
        /// Lower bounds of shards 1.., strictly increasing, each in `1..=MAX_SCORE`.
        boundaries: Vec<u64>,
    },
}

impl LayoutSpec {
    /// The strategy name used in stats and metrics: `single`, `hash` or `range`.
    pub fn strategy(&self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Hash { .. } => "hash",
            Self::Range { .. } => "range",
        }
    }
}

/// Checks range boundaries: strictly increasing, within `1..=MAX_SCORE`, at most
/// `MAX_SHARDS - 1` of them.
///
/// # Errors
/// [`Error::InvalidLayout`] naming the broken rule.
pub fn validate_boundaries(boundaries: &[u64]) -> Result<(), Error> {
    if boundaries.len() >= MAX_SHARDS {
        return Err(Error::InvalidLayout(format!("at most {} boundaries", MAX_SHARDS - 1)));
    }
    if let Some(&b) = boundaries.iter().find(|&&b| b == 0 || b > MAX_SCORE) {
        return Err(Error::InvalidLayout(format!("boundary {b} is outside 1..={MAX_SCORE}")));
    }
    if boundaries.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::InvalidLayout("boundaries must be strictly increasing".into()));
    }
    Ok(())
}

impl FromStr for LayoutSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, params) = s.split_once(':').unwrap_or((s, ""));
        match (name, params) {
            ("single", "") => Ok(Self::Single),
            ("hash", n) => {
                let shards: usize = n
                    .parse()
                    .map_err(|_| Error::InvalidLayout(format!("hash needs a shard count, as in hash:16, got {s:?}")))?;
                if shards == 0 || shards > MAX_SHARDS {
                    return Err(Error::InvalidLayout(format!("hash shard count must be 1..={MAX_SHARDS}")));
                }
                Ok(Self::Hash { shards })
            }
            ("range", list) => {
                let boundaries = if list.is_empty() {
                    Vec::new()
                } else {
                    list.split(',')
                        .map(|b| b.trim().parse::<u64>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| Error::InvalidLayout(format!("range boundaries must be integers, got {s:?}")))?
                };
                validate_boundaries(&boundaries)?;
                Ok(Self::Range { boundaries })
            }
            _ => Err(Error::InvalidLayout(format!(
                "unknown layout {s:?}: expected single, hash:<shards> or range:<b1>,<b2>,..."
            ))),
        }
    }
}

impl fmt::Display for LayoutSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single => f.write_str("single"),
            Self::Hash { shards } => write!(f, "hash:{shards}"),
            Self::Range { boundaries } => {
                f.write_str("range:")?;
                for (i, b) in boundaries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{b}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for s in ["single", "hash:4", "range:", "range:10,20,3000"] {
            let spec: LayoutSpec = s.parse().expect(s);
            assert_eq!(spec.to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_specs() {
        for s in ["", "hash", "hash:0", "hash:x", "range:5,5", "range:9,3", "range:0", "range:a", "tree", "single:3"] {
            assert!(s.parse::<LayoutSpec>().is_err(), "{s}");
        }
        assert!(format!("range:{}", MAX_SCORE + 1).parse::<LayoutSpec>().is_err());
    }
}
