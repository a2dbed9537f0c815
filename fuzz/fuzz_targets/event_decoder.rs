//! The event decoder on arbitrary records: it never panics, and what it accepts obeys the
//! contract (docs/contract.md#score-event): a valid player and board, a score of at most 2^53 - 1,
//! a key that is absent or equal to the player, a value within the size limit.
//!
//! Input: one byte `k`; with `k` odd, a key of the next `k / 2` bytes; the rest is the value.
#![no_main]

use leaderboard_contract::{BoardId, MAX_RECORD_BYTES, MAX_SCORE, PlayerId, decode_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else { return };
    let (key, value) = if k % 2 == 1 {
        let n = usize::from(k / 2).min(rest.len());
        (Some(&rest[..n]), &rest[n..])
    } else {
        (None, rest)
    };
    if let Ok(event) = decode_record(key, Some(value)) {
        assert!(value.len() <= MAX_RECORD_BYTES, "an oversized value was accepted");
        assert!(event.score <= MAX_SCORE, "score {} above the maximum", event.score);
        assert!(PlayerId::check(event.player.as_str()).is_ok(), "invalid player accepted");
        assert!(BoardId::check(event.board.as_str()).is_ok(), "invalid board accepted");
        if let Some(key) = key {
            assert_eq!(key, event.player.as_str().as_bytes(), "a key other than the player was accepted");
        }
    }
});
