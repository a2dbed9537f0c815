//! The metadata loadgen's events carry with `--meta` (docs/contract.md#entry-metadata).
//!
//! A player's metadata is a fixed function of the run's seed, the player and
//! the ranking key of the event: the oracle then knows what every entry must
//! show without keeping a byte per player (10M players), and an entry that
//! kept the metadata of an event other than the one that set its score is
//! seen (the `run` id differs with the key). Sizes follow a mix a game would
//! send ([`Size`]): most entries a name and a country, some the details of the
//! run, a few a loadout near half the limit.

use std::fmt::Write as _;

use leaderboard_contract::Meta;

/// The sizes of the mix, by share of players.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 70%: a name, a country and the run's id, about 64 bytes.
    Small,
    /// 25%: and the car, the track and lap times, about 130 bytes.
    Medium,
    /// 5%: and a loadout and a replay id, about 256 bytes.
    Large,
}

/// How large a run's metadata is (`--meta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaSize {
    /// The mix of [`Size`]s (`--meta` or `--meta mix`).
    Mix,
    /// Exactly this many bytes on every entry (`--meta 64`): the run's id and padding, for
    /// measuring what a byte of metadata costs.
    Exactly(usize),
}

/// Smallest `--meta <bytes>`: the run's id and an empty pad.
pub const MIN_EXACT_BYTES: usize = 40;

impl std::str::FromStr for MetaSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "mix" {
            return Ok(Self::Mix);
        }
        match s.parse::<usize>() {
            Ok(n) if (MIN_EXACT_BYTES..=leaderboard_contract::MAX_META_BYTES).contains(&n) => Ok(Self::Exactly(n)),
            _ => Err(format!(
                "`mix` or a size from {MIN_EXACT_BYTES} to {} bytes, got {s:?}",
                leaderboard_contract::MAX_META_BYTES
            )),
        }
    }
}

/// The metadata of a run's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta {
    /// The run's seed (`--seed`).
    pub seed: u64,
    /// Their size.
    pub size: MetaSize,
}

const SYLLABLES: [&str; 16] =
    ["ka", "ri", "to", "mo", "zen", "la", "vi", "su", "ne", "ro", "ha", "yu", "bel", "dra", "qui", "ox"];
const COUNTRIES: [&str; 20] = [
    "US", "BR", "DE", "JP", "KR", "FR", "GB", "CN", "IN", "MX", "PL", "SE", "CA", "AU", "NZ", "ES", "IT", "TR", "ID",
    "PH",
];
const CARS: [&str; 6] = ["GT-86", "RX-7", "911 GT3", "Supra", "M4", "NSX"];
const TRACKS: [&str; 5] = ["Suzuka", "Spa", "Monza", "Laguna Seca", "Nordschleife"];
const ITEMS: [&str; 8] =
    ["rifle-mk2", "scope-4x", "smoke-x3", "medkit", "armor-lv3", "boots-swift", "grapple", "drone-scout"];

/// splitmix64 of `x`: a fixed, well-mixed function.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl EventMeta {
    /// The size class of `player`'s metadata (fixed per player).
    pub fn size(self, player: usize) -> Size {
        match mix(self.seed ^ mix(player as u64)) % 100 {
            0..70 => Size::Small,
            70..95 => Size::Medium,
            _ => Size::Large,
        }
    }

    /// The metadata of `player`'s event with ranking key `key`.
    ///
    /// # Panics
    /// Never: the text is built from fixed words, hex and numbers, within the size limit
    /// (a unit test checks the whole mix).
    pub fn of(self, player: usize, key: u64) -> Meta {
        let who = mix(self.seed ^ mix(player as u64));
        let run = mix(who ^ key.rotate_left(17));
        if let MetaSize::Exactly(bytes) = self.size {
            let head = format!(r#"{{"run":"r-{run:016x}","pad":""#);
            let text = format!("{head}{}\"}}", "x".repeat(bytes.saturating_sub(head.len() + 2)));
            return Meta::parse(&text).expect("loadgen's metadata is a small JSON object");
        }
        let mut name: String = (0..2 + who % 3).map(|n| SYLLABLES[((who >> (8 + 4 * n)) % 16) as usize]).collect();
        name[..1].make_ascii_uppercase();
        let country = COUNTRIES[((who >> 24) % 20) as usize];
        let mut text = format!(r#"{{"name":"{name}","country":"{country}","run":"r-{run:016x}""#);
        let size = self.size(player);
        if size != Size::Small {
            let lap = |n: u64| 60.0 + ((run >> (8 * n)) % 4000) as f64 / 1000.0;
            let _ = write!(
                text,
                r#","car":"{}","track":"{}","laps":[{:.3},{:.3},{:.3}]"#,
                CARS[(run % 6) as usize],
                TRACKS[((run >> 4) % 5) as usize],
                lap(1),
                lap(2),
                lap(3)
            );
        }
        if size == Size::Large {
            let loadout: Vec<String> =
                (0..6).map(|n| format!("\"{}\"", ITEMS[((run >> (5 * n)) % 8) as usize])).collect();
            let _ = write!(text, r#","loadout":[{}],"replay":"{:016x}{:016x}""#, loadout.join(","), mix(run), run);
        }
        text.push('}');
        Meta::parse(&text).expect("loadgen's metadata is a small JSON object")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_its_sizes_and_follows_the_key() {
        let meta = EventMeta { seed: 7, size: MetaSize::Mix };
        let mut bytes = [Vec::new(), Vec::new(), Vec::new()];
        for player in 0..20_000 {
            let m = meta.of(player, 1234);
            assert_eq!(m, meta.of(player, 1234), "a function of (player, key)");
            assert_ne!(m, meta.of(player, 1235), "another key, another run");
            assert_eq!(m.string_field("country").map(|c| c.len()), Some(2));
            bytes[meta.size(player) as usize].push(m.as_str().len());
        }
        let share = |k: usize| bytes[k].len() as f64 / 20_000.0;
        let mean = |k: usize| bytes[k].iter().sum::<usize>() as f64 / bytes[k].len() as f64;
        assert!((share(0) - 0.70).abs() < 0.02 && (share(1) - 0.25).abs() < 0.02, "{}, {}", share(0), share(1));
        assert!((50.0..80.0).contains(&mean(0)), "small: {}", mean(0));
        assert!((110.0..160.0).contains(&mean(1)), "medium: {}", mean(1));
        assert!((220.0..300.0).contains(&mean(2)), "large: {}", mean(2));
        assert!(bytes.iter().flatten().all(|&b| b <= leaderboard_contract::MAX_META_BYTES));
    }

    #[test]
    fn an_exact_size_is_exact() {
        for bytes in [MIN_EXACT_BYTES, 64, 256, leaderboard_contract::MAX_META_BYTES] {
            let meta = EventMeta { seed: 1, size: MetaSize::Exactly(bytes) };
            assert_eq!(meta.of(12, 99).as_str().len(), bytes);
            assert_ne!(meta.of(12, 99), meta.of(12, 100));
        }
        assert_eq!("mix".parse::<MetaSize>(), Ok(MetaSize::Mix));
        assert_eq!("64".parse::<MetaSize>(), Ok(MetaSize::Exactly(64)));
        for bad in ["39", "513", "x", ""] {
            assert!(bad.parse::<MetaSize>().is_err(), "{bad}");
        }
    }
}
