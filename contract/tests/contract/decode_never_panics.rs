//! Property tests: any input decodes to `Ok` or a typed rejection, never a panic,
//! and every valid event survives an encode/decode round trip.

use leaderboard_contract::{BoardId, MAX_SCORE, PlayerId, ScoreEvent, decode_record};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
                                   value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..600))) {
        let _ = decode_record(key.as_deref(), value.as_deref());
    }

    #[test]
    fn json_shaped_noise_never_panics(player in ".{0,70}", score in any::<i64>(), extra in "[ -~]{0,40}") {
        let value = format!(r#"{{"player":{},"score":{score},"x":"{}"}}"#,
            serde_json::to_string(&player).unwrap_or_default(), extra.replace(['"', '\\'], ""));
        let _ = decode_record(Some(player.as_bytes()), Some(value.as_bytes()));
    }

    #[test]
    fn valid_events_round_trip(player in "[A-Za-z0-9_.:@-]{1,64}", board in "[A-Za-z0-9_.-]{1,64}",
                               score in 0..=MAX_SCORE, ts in proptest::option::of(0..=MAX_SCORE),
                               id in proptest::option::of("[ -~]{0,128}")) {
        let event = ScoreEvent {
            board: BoardId::new(board).expect("generated board is valid"),
            player: PlayerId::new(player).expect("generated player is valid"),
            score, ts_ms: ts, id,
            meta: None,
        };
        let json = event.to_json();
        prop_assert_eq!(decode_record(Some(event.key()), Some(json.as_bytes())), Ok(event));
    }
}
