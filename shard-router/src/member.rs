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

use leaderboard_contract::PlayerId;

/// Encodes a player id as a sorted-set member.
pub fn encode(player: &PlayerId) -> Vec<u8> {
    let mut out = Vec::with_capacity(player.as_str().len() + 1);
    out.extend(player.as_str().bytes().map(|b| !b));
    out.push(0xFF);
    out
}

/// Decodes a sorted-set member back into a player id.
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
    fn rejects_foreign_members() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"plain"), None);
        assert_eq!(decode(&[!b' ', 0xFF]), None);
    }
}
