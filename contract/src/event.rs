//! The score event carried on the `scores` topic, and its decoder.
//!
//! Decoding checks, in order: presence and size of the value, UTF-8, JSON
//! syntax, object shape, then each field, then the record key. The first
//! failed rule decides the [`Rejection`], so a record always gets exactly one
//! stable reason.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ids::{BoardId, PlayerId};
use crate::meta::Meta;
use crate::reject::{Rejection, RejectionCode};

/// Highest accepted score: 2^53 - 1, the largest integer a Redis score (an
/// IEEE double) represents exactly.
pub const MAX_SCORE: u64 = (1 << 53) - 1;
/// Largest accepted record value, in bytes. A valid event needs well under
/// 400 bytes; the rest is room for unknown fields from newer producers.
pub const MAX_RECORD_BYTES: usize = 4096;
/// Longest accepted event id, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 128;
/// Board used when an event names none.
pub const DEFAULT_BOARD: &str = "global";

/// A validated score event: a player finished a game on a board with a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoreEvent {
    /// The board the score counts on.
    pub board: BoardId,
    /// The player who scored.
    pub player: PlayerId,
    /// The score, `0..=MAX_SCORE`.
    pub score: u64,
    /// Event time in milliseconds since the Unix epoch, when the producer gave one.
    #[serde(rename = "ts", skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<u64>,
    /// The producer's event id, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The entry's metadata, when given (a JSON object of at most 512 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

impl ScoreEvent {
    /// Encodes the event as the JSON value of a Kafka record.
    pub fn to_json(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The Kafka record key for this event: the player id.
    pub fn key(&self) -> &[u8] {
        self.player.as_str().as_bytes()
    }
}

/// The wire shape, with every field kept raw so each gets its own precise error.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow, default)]
    board: Option<&'a RawValue>,
    #[serde(borrow, default)]
    player: Option<&'a RawValue>,
    #[serde(borrow, default)]
    score: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ts: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    meta: Option<&'a RawValue>,
}

/// Decodes and validates one Kafka record.
///
/// `key` is the record key (`None` when the record has none), `value` the
/// record value.
///
/// # Errors
/// A [`Rejection`] naming the first contract rule the record breaks.
pub fn decode_record(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<ScoreEvent, Rejection> {
    let value = match value {
        None | Some([]) => return Err(Rejection::new(RejectionCode::Empty, "record has no value")),
        Some(v) => v,
    };
    if value.len() > MAX_RECORD_BYTES {
        return Err(Rejection::new(
            RejectionCode::TooLarge,
            format!("value is {} bytes, the limit is {MAX_RECORD_BYTES}", value.len()),
        ));
    }
    let text = std::str::from_utf8(value).map_err(|e| {
        Rejection::new(RejectionCode::NotUtf8, format!("value is not UTF-8 at byte {}", e.valid_up_to()))
    })?;
    // Checked before deserialising: serde would also accept a JSON array, positionally.
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => Rejection::new(RejectionCode::NotObject, "value must be a JSON object"),
            Err(e) => Rejection::new(RejectionCode::NotJson, format!("value is not JSON: {e}")),
        });
    }
    let wire: Wire<'_> = serde_json::from_str(text).map_err(|e| {
        // A syntax error, or a syntactically valid object with a duplicated field.
        Rejection::new(RejectionCode::NotJson, format!("value is not a valid JSON object: {e}"))
    })?;

    let player = match wire.player {
        None => return Err(Rejection::new(RejectionCode::MissingPlayer, "field `player` is required")),
        Some(raw) => parse_id::<PlayerId>(raw, "player", RejectionCode::InvalidPlayer, PlayerId::new)?,
    };
    let score = match wire.score {
        None => return Err(Rejection::new(RejectionCode::MissingScore, "field `score` is required")),
        Some(raw) => parse_integer(raw, "score", MAX_SCORE, RejectionCode::InvalidScore)?,
    };
    let board = match wire.board {
        None => BoardId::new(DEFAULT_BOARD).map_err(|e| Rejection::new(RejectionCode::InvalidBoard, e.to_string()))?,
        Some(raw) => parse_id::<BoardId>(raw, "board", RejectionCode::InvalidBoard, BoardId::new)?,
    };
    let ts_ms = wire.ts.map(|raw| parse_integer(raw, "ts", MAX_SCORE, RejectionCode::InvalidTs)).transpose()?;
    let id = wire.id.map(parse_event_id).transpose()?;
    let meta = wire.meta.map(parse_meta).transpose()?.flatten();

    if let Some(key) = key
        && key != player.as_str().as_bytes()
    {
        return Err(Rejection::new(
            RejectionCode::KeyMismatch,
            // Quote a prefix only: the key may be any size (the detail is bounded anyway).
            format!(
                "record key {:?} ({} bytes) differs from player {:?}",
                String::from_utf8_lossy(&key[..key.len().min(64)]),
                key.len(),
                player.as_str()
            ),
        ));
    }
    Ok(ScoreEvent { board, player, score, ts_ms, id, meta })
}

pub(crate) fn json_kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn parse_id<T>(
    raw: &RawValue,
    field: &str,
    code: RejectionCode,
    make: fn(String) -> Result<T, crate::IdError>,
) -> Result<T, Rejection> {
    let text = raw.get();
    if !text.starts_with('"') {
        return Err(Rejection::new(code, format!("`{field}` must be a string, got {}", json_kind(text))));
    }
    let s: String = serde_json::from_str(text)
        .map_err(|e| Rejection::new(code, format!("`{field}` is not a valid string: {e}")))?;
    make(s).map_err(|e| Rejection::new(code, format!("`{field}` {e}")))
}

fn parse_integer(raw: &RawValue, field: &str, max: u64, code: RejectionCode) -> Result<u64, Rejection> {
    let text = raw.get();
    let expected = format!("`{field}` must be an integer from 0 to {max}");
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        let kind = json_kind(text);
        let what = if kind == "a number" { "a fraction or exponent" } else { kind };
        return Err(Rejection::new(code, format!("{expected}, got {what}")));
    }
    if negative {
        return Err(Rejection::new(code, format!("{expected}, got a negative number")));
    }
    match digits.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(Rejection::new(code, format!("{expected}, got {text}"))),
    }
}

fn parse_event_id(raw: &RawValue) -> Result<String, Rejection> {
    let text = raw.get();
    if !text.starts_with('"') {
        return Err(Rejection::new(
            RejectionCode::InvalidId,
            format!("`id` must be a string, got {}", json_kind(text)),
        ));
    }
    let id: String = serde_json::from_str(text)
        .map_err(|e| Rejection::new(RejectionCode::InvalidId, format!("`id` is not a valid string: {e}")))?;
    if id.len() > MAX_EVENT_ID_BYTES {
        return Err(Rejection::new(
            RejectionCode::InvalidId,
            format!("`id` must be at most {MAX_EVENT_ID_BYTES} bytes, got {}", id.len()),
        ));
    }
    Ok(id)
}

/// `meta`: a JSON object of at most [`crate::MAX_META_BYTES`] (`null` is as if absent).
fn parse_meta(raw: &RawValue) -> Result<Option<Meta>, Rejection> {
    if raw.get() == "null" {
        return Ok(None);
    }
    Meta::parse(raw.get()).map(Some).map_err(|e| Rejection::new(RejectionCode::BadMeta, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(value: &str) -> Result<ScoreEvent, Rejection> {
        decode_record(None, Some(value.as_bytes()))
    }

    fn code(value: &str) -> RejectionCode {
        decode(value).expect_err("should be rejected").code
    }

    #[test]
    fn decodes_the_design_example() {
        let e = decode(r#"{"board":"global","player":"p-000123","score":4821,"ts":1763800000123,"id":"e-9f2c"}"#)
            .expect("valid");
        assert_eq!(e.board.as_str(), "global");
        assert_eq!(e.player.as_str(), "p-000123");
        assert_eq!(e.score, 4821);
        assert_eq!(e.ts_ms, Some(1_763_800_000_123));
        assert_eq!(e.id.as_deref(), Some("e-9f2c"));
    }

    #[test]
    fn optional_fields_default_and_unknown_fields_are_ignored() {
        let e = decode(r#"{"player":"a","score":0,"extra":{"nested":[1,2]},"ts":null}"#).expect("valid");
        assert_eq!(e.board.as_str(), DEFAULT_BOARD);
        assert_eq!(e.ts_ms, None);
        assert_eq!(e.id, None);
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let e = decode(r#"{"player":"p\u002d1","score":1}"#).expect("valid");
        assert_eq!(e.player.as_str(), "p-1");
    }

    #[test]
    fn round_trips_through_to_json() {
        let e = decode(r#"{"board":"b","player":"p","score":9007199254740991,"ts":5,"id":"x"}"#).expect("valid");
        assert_eq!(decode(&e.to_json()), Ok(e.clone()));
        assert_eq!(e.key(), b"p");
    }

    #[test]
    fn empty_and_missing_values() {
        assert_eq!(decode_record(None, None).unwrap_err().code, RejectionCode::Empty);
        assert_eq!(code(""), RejectionCode::Empty);
    }

    #[test]
    fn too_large_values() {
        let big = format!(r#"{{"player":"p","score":1,"pad":"{}"}}"#, "x".repeat(MAX_RECORD_BYTES));
        assert_eq!(code(&big), RejectionCode::TooLarge);
    }

    #[test]
    fn not_utf8() {
        let err = decode_record(None, Some(b"{\"player\":\"\xff\"}")).unwrap_err();
        assert_eq!(err.code, RejectionCode::NotUtf8);
    }

    #[test]
    fn not_json_and_not_object() {
        assert_eq!(code("hello"), RejectionCode::NotJson);
        assert_eq!(code(r#"{"player":"p","score":1"#), RejectionCode::NotJson);
        assert_eq!(code(r#"{"player":"p","score":1,"score":2}"#), RejectionCode::NotJson);
        assert_eq!(code("[1,2]"), RejectionCode::NotObject);
        assert_eq!(code("42"), RejectionCode::NotObject);
        assert_eq!(code(r#""str""#), RejectionCode::NotObject);
    }

    #[test]
    fn player_rules() {
        assert_eq!(code(r#"{"score":1}"#), RejectionCode::MissingPlayer);
        assert_eq!(code(r#"{"player":null,"score":1}"#), RejectionCode::MissingPlayer);
        assert_eq!(code(r#"{"player":12,"score":1}"#), RejectionCode::InvalidPlayer);
        assert_eq!(code(r#"{"player":"","score":1}"#), RejectionCode::InvalidPlayer);
        assert_eq!(code(r#"{"player":"a b","score":1}"#), RejectionCode::InvalidPlayer);
        assert_eq!(code(r#"{"player":"é","score":1}"#), RejectionCode::InvalidPlayer);
        let long = format!(r#"{{"player":"{}","score":1}}"#, "p".repeat(65));
        assert_eq!(code(&long), RejectionCode::InvalidPlayer);
    }

    #[test]
    fn score_rules() {
        assert_eq!(code(r#"{"player":"p"}"#), RejectionCode::MissingScore);
        for bad in ["-1", "1.5", "1e3", "\"12\"", "true", "[1]", "{}", "9007199254740992", "99999999999999999999999"] {
            let v = format!(r#"{{"player":"p","score":{bad}}}"#);
            assert_eq!(code(&v), RejectionCode::InvalidScore, "{bad}");
        }
        assert!(decode(r#"{"player":"p","score":9007199254740991}"#).is_ok());
    }

    #[test]
    fn score_errors_say_what_was_wrong() {
        assert!(decode(r#"{"player":"p","score":-3}"#).unwrap_err().detail.contains("negative"));
        assert!(decode(r#"{"player":"p","score":"3"}"#).unwrap_err().detail.contains("a string"));
        assert!(decode(r#"{"player":"p","score":3.5}"#).unwrap_err().detail.contains("fraction"));
    }

    #[test]
    fn board_ts_and_id_rules() {
        assert_eq!(code(r#"{"player":"p","score":1,"board":"a:b"}"#), RejectionCode::InvalidBoard);
        assert_eq!(code(r#"{"player":"p","score":1,"board":7}"#), RejectionCode::InvalidBoard);
        assert_eq!(code(r#"{"player":"p","score":1,"ts":-5}"#), RejectionCode::InvalidTs);
        assert_eq!(code(r#"{"player":"p","score":1,"ts":"now"}"#), RejectionCode::InvalidTs);
        assert_eq!(code(r#"{"player":"p","score":1,"id":5}"#), RejectionCode::InvalidId);
        let long_id = format!(r#"{{"player":"p","score":1,"id":"{}"}}"#, "i".repeat(129));
        assert_eq!(code(&long_id), RejectionCode::InvalidId);
    }

    #[test]
    fn meta_is_an_object_of_at_most_512_bytes_kept_as_sent() {
        let e = decode(r#"{"player":"p","score":1,"meta":{"name":"Ada", "country":"GB"}}"#).expect("valid");
        assert_eq!(e.meta.as_ref().map(Meta::as_str), Some(r#"{"name":"Ada","country":"GB"}"#));
        assert_eq!(decode(&e.to_json()), Ok(e.clone()), "round trips");
        assert_eq!(decode(r#"{"player":"p","score":1,"meta":null}"#).expect("valid").meta, None);
        for bad in ["[]", "\"Ada\"", "7", "true", r#"{"a":1,"a":2}"#] {
            let v = format!(r#"{{"player":"p","score":1,"meta":{bad}}}"#);
            assert_eq!(code(&v), RejectionCode::BadMeta, "{bad}");
        }
        let fits = format!(r#"{{"n":"{}"}}"#, "x".repeat(crate::MAX_META_BYTES - 8));
        assert!(decode(&format!(r#"{{"player":"p","score":1,"meta":{fits}}}"#)).is_ok());
        let over = format!(r#"{{"n":"{}"}}"#, "x".repeat(crate::MAX_META_BYTES - 7));
        let err = decode(&format!(r#"{{"player":"p","score":1,"meta":{over}}}"#)).expect_err("too large");
        assert_eq!(err.code, RejectionCode::BadMeta);
        assert!(err.detail.contains("at most 512 bytes, got 513"), "{}", err.detail);
    }

    #[test]
    fn key_must_match_player_when_present() {
        let v = br#"{"player":"p1","score":1}"#;
        assert!(decode_record(Some(b"p1"), Some(v)).is_ok());
        assert_eq!(decode_record(Some(b"p2"), Some(v)).unwrap_err().code, RejectionCode::KeyMismatch);
        assert_eq!(decode_record(Some(b""), Some(v)).unwrap_err().code, RejectionCode::KeyMismatch);
    }

    #[test]
    fn first_broken_rule_wins() {
        // Both player and score are bad: player is checked first.
        assert_eq!(code(r#"{"player":1,"score":-1}"#), RejectionCode::InvalidPlayer);
    }
}
