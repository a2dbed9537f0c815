//! How a player id is stored as a sorted-set member.
//!
//! Redis orders equal scores by member bytes ascending, so `ZREVRANGE` lists
//! ties by member *descending*. The contract wants ties by player id
//! ascending. Storing each byte complemented (`!b`) and terminated by `0xFF`
//! reverses the byte order of members, so Redis's native reverse order is
//! exactly the contract's order and every page, rank and position is a native
//! O(log n) call. The terminator keeps prefixes right: `"ab"` sorts before
//! `"abc"` because `0xFF` is above every complemented id byte (ids never
//! contain `0x00`). The cost is one byte per member and members that are not
//! human-readable in `redis-cli`; [`decode`] reads them back.
//!
//! On `ties: earliest` boards ([`leaderboard_semantics::rules`]) a member starts with the time
//! the player reached their score ([`time_prefix`]: 8 bytes, the complement of
//! the milliseconds, big-endian), so among equal scores Redis's reverse order
//! puts the earliest first, then ids ascending. Times are below 2^53, so the
//! prefix's first byte is `0xFF`, which no plain member starts with (a
//! complemented id byte is at most `0xD2`): [`decode`] tells the forms apart.
//! The shard's player index (`...:t`, field: the plain member, value: the
//! prefix) finds a player's member, in the same script as any read or write.

use leaderboard_contract::PlayerId;

/// Encodes a player id as a sorted-set member.
pub fn encode(player: &PlayerId) -> Vec<u8> {
    let mut out = Vec::with_capacity(player.as_str().len() + 1);
    out.extend(player.as_str().bytes().map(|b| !b));
    out.push(0xFF);
    out
}

/// The prefix of an `earliest` board's member: the complement of `time_ms`,
/// big-endian. Times are capped at 2^53 - 1, so the prefix always starts
/// with `0xFF` and [`decode_any`] can tell it apart.
pub fn time_prefix(time_ms: u64) -> [u8; 8] {
    (!time_ms.min(leaderboard_contract::MAX_SCORE)).to_be_bytes()
}

/// A member with its time prefix: what `earliest` boards store.
pub fn encode_timed(player: &PlayerId, time_ms: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(player.as_str().len() + 9);
    out.extend_from_slice(&time_prefix(time_ms));
    out.extend(player.as_str().bytes().map(|b| !b));
    out.push(0xFF);
    out
}

/// A decoded member: the player and, for an `earliest` board's member, the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The player.
    pub player: PlayerId,
    /// When the player reached the score (`earliest` boards only).
    pub time_ms: Option<u64>,
}

/// Decodes a member of either form.
///
/// Returns `None` for bytes that no [`encode`] or [`encode_timed`] call
/// produces (a foreign or corrupted member).
pub fn decode_any(member: &[u8]) -> Option<Decoded> {
    match member.first() {
        Some(0xFF) if member.len() > 8 => {
            let (prefix, rest) = member.split_at(8);
            let time_ms = !u64::from_be_bytes(prefix.try_into().ok()?);
            Some(Decoded { player: decode(rest)?, time_ms: Some(time_ms) })
        }
        _ => Some(Decoded { player: decode(member)?, time_ms: None }),
    }
}

/// Decodes a plain sorted-set member back into a player id.
///
/// Returns `None` for bytes that no [`encode`] call produces (a foreign or
/// corrupted member).
pub fn decode(member: &[u8]) -> Option<PlayerId> {
    let (&last, body) = member.split_last()?;
    if last != 0xFF {
        return None;
    }
    let bytes: Vec<u8> = body.iter().map(|b| !b).collect();
    PlayerId::new(String::from_utf8(bytes).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PlayerId {
        PlayerId::new(s).expect("valid id")
    }

    #[test]
    fn round_trips() {
        for s in ["a", "p-000123", "Z@x:y.z_-", &"9".repeat(64)] {
            assert_eq!(decode(&encode(&p(s))), Some(p(s)));
        }
    }

    #[test]
    fn reverses_byte_order_including_prefixes() {
        let ids = ["A", "a", "ab", "abc", "b", "0", "-", "ab-", "ab0"];
        for x in ids {
            for y in ids {
                let expected = y.as_bytes().cmp(x.as_bytes());
                assert_eq!(encode(&p(x)).cmp(&encode(&p(y))), expected, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn timed_members_order_by_time_then_id_and_decode() {
        let (early, late) = (encode_timed(&p("b"), 1_763_800_000_000), encode_timed(&p("a"), 1_763_800_000_001));
        assert!(early > late, "descending member order puts the earlier time first");
        assert!(encode_timed(&p("a"), 5) > encode_timed(&p("b"), 5), "then ids ascending");
        let decoded = decode_any(&early).expect("decodes");
        assert_eq!(decoded, Decoded { player: p("b"), time_ms: Some(1_763_800_000_000) });
        assert_eq!(decode_any(&encode(&p("b"))).expect("plain").time_ms, None);
        assert_eq!(decode_any(&encode_timed(&p("z"), (1 << 53) - 1)).expect("max").time_ms, Some((1 << 53) - 1));
        let nanos = 1_763_800_000_000_000_000; // a producer stamping nanoseconds
        assert_eq!(decode_any(&encode_timed(&p("z"), nanos)).expect("capped").time_ms, Some((1 << 53) - 1));
    }

    #[test]
    fn rejects_foreign_members() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"plain"), None);
        assert_eq!(decode(&[!b' ', 0xFF]), None);
    }
}
