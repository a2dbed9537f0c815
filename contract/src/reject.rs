//! Why a Kafka record is rejected.
//!
//! A [`Rejection`] carries a stable [`RejectionCode`] (for dashboards and
//! alerting) and a human-readable detail of at most [`MAX_DETAIL_BYTES`]. Its
//! [`Rejection::header_value`], `"<code>: <detail>"`, is the dead-letter
//! `error` header, so the header stays small whatever the record held (a
//! detail quoting a 200 KB key is cut, never copied whole).

use std::fmt;

/// Stable machine-readable reason codes; the string form never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionCode {
    /// The record has no value, or an empty one.
    Empty,
    /// The value is larger than [`crate::MAX_RECORD_BYTES`].
    TooLarge,
    /// The value is not valid UTF-8.
    NotUtf8,
    /// The value is not a JSON document (or has duplicate fields).
    NotJson,
    /// The JSON document is not an object.
    NotObject,
    /// `player` is absent.
    MissingPlayer,
    /// `player` is not a string of the player alphabet.
    InvalidPlayer,
    /// `score` is absent.
    MissingScore,
    /// `score` is not an integer from 0 to 2^53 - 1.
    InvalidScore,
    /// `board` is not a string of the board alphabet.
    InvalidBoard,
    /// `ts` is not a non-negative integer of milliseconds.
    InvalidTs,
    /// `id` is not a string of at most 128 bytes.
    InvalidId,
    /// The record key is present and differs from `player`.
    KeyMismatch,
    /// A valid event that the store refuses for good (e.g. its board's key
    /// holds another Redis type): retrying cannot help, so it is set aside.
    Unwritable,
    /// The score is outside the board's `min_score..=max_score` (its rules).
    OutOfBounds,
    /// Signing is required and the record carries no `lb-key-id`/`lb-signature` headers.
    Unsigned,
    /// The record's signature does not verify, or its key id is unknown.
    BadSignature,
    /// The event's season closed (its end plus the board's `late_grace` has
    /// passed): it is not in that season's frozen standings, and still counts
    /// for the all-time board.
    SeasonClosed,
    /// The player is banned from the event's board (docs/contract.md#players-erasure-and-bans).
    Banned,
    /// `meta` is not a JSON object of at most 512 bytes (docs/contract.md#entry-metadata).
    BadMeta,
}

impl RejectionCode {
    /// Every code, for metrics pre-registration and documentation.
    pub const ALL: [Self; 20] = [
        Self::Empty,
        Self::TooLarge,
        Self::NotUtf8,
        Self::NotJson,
        Self::NotObject,
        Self::MissingPlayer,
        Self::InvalidPlayer,
        Self::MissingScore,
        Self::InvalidScore,
        Self::InvalidBoard,
        Self::InvalidTs,
        Self::InvalidId,
        Self::KeyMismatch,
        Self::Unwritable,
        Self::OutOfBounds,
        Self::Unsigned,
        Self::BadSignature,
        Self::SeasonClosed,
        Self::Banned,
        Self::BadMeta,
    ];

    /// The code's stable string form, e.g. `invalid_score`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLarge => "too_large",
            Self::NotUtf8 => "not_utf8",
            Self::NotJson => "not_json",
            Self::NotObject => "not_object",
            Self::MissingPlayer => "missing_player",
            Self::InvalidPlayer => "invalid_player",
            Self::MissingScore => "missing_score",
            Self::InvalidScore => "invalid_score",
            Self::InvalidBoard => "invalid_board",
            Self::InvalidTs => "invalid_ts",
            Self::InvalidId => "invalid_id",
            Self::KeyMismatch => "key_mismatch",
            Self::Unwritable => "unwritable",
            Self::OutOfBounds => "out_of_bounds",
            Self::Unsigned => "unsigned",
            Self::BadSignature => "bad_signature",
            Self::SeasonClosed => "season_closed",
            Self::Banned => "banned",
            Self::BadMeta => "bad_meta",
        }
    }
}

impl fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest rejection detail, in bytes (the dead letters' `error` header, docs/contract.md#headers).
pub const MAX_DETAIL_BYTES: usize = 256;

/// A record that does not satisfy the score-event contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Rejection {
    /// The stable reason code.
    pub code: RejectionCode,
    /// What exactly was wrong, for humans; at most [`MAX_DETAIL_BYTES`].
    pub detail: String,
}

impl Rejection {
    /// A rejection with a code and a detail message, cut to
    /// [`MAX_DETAIL_BYTES`] (on a character boundary, ending in `…`).
    pub fn new(code: RejectionCode, detail: impl Into<String>) -> Self {
        Self { code, detail: bounded(detail.into()) }
    }

    /// The value of the dead-letter `error` header: `"<code>: <detail>"`.
    pub fn header_value(&self) -> String {
        self.to_string()
    }
}

/// Cuts `detail` to at most [`MAX_DETAIL_BYTES`] bytes, marking the cut.
fn bounded(mut detail: String) -> String {
    const ELLIPSIS: &str = "…";
    if detail.len() <= MAX_DETAIL_BYTES {
        return detail;
    }
    let mut end = MAX_DETAIL_BYTES - ELLIPSIS.len();
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    detail.truncate(end);
    detail.push_str(ELLIPSIS);
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in RejectionCode::ALL {
            let s = code.as_str();
            assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()));
            assert!(seen.insert(s), "duplicate code {s}");
        }
    }

    #[test]
    fn header_value_has_code_then_detail() {
        let r = Rejection::new(RejectionCode::InvalidScore, "must be >= 0");
        assert_eq!(r.header_value(), "invalid_score: must be >= 0");
    }

    #[test]
    fn details_are_bounded_on_a_char_boundary() {
        let exact = "x".repeat(MAX_DETAIL_BYTES);
        assert_eq!(Rejection::new(RejectionCode::NotJson, exact.clone()).detail, exact);
        for long in ["y".repeat(200_000), "é".repeat(1000), format!("a{}", "€".repeat(500))] {
            let detail = Rejection::new(RejectionCode::KeyMismatch, long).detail;
            assert!(detail.len() <= MAX_DETAIL_BYTES, "{} bytes", detail.len());
            assert!(detail.ends_with('…'));
        }
    }
}
