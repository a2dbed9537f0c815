//! The record a closed season leaves on the results topic (`scores.seasons`,
//! docs/contract.md#season-results): what reward services consume.
//!
//! Its `id` (`<board>/<season>`) is stable across re-deliveries and
//! amendments, so a consumer applies each result once by `id`; a higher
//! `revision` of the same `id` supersedes the earlier one (an erasure or a
//! ban amended the closed season). Times are RFC 3339 in UTC, to the millisecond.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::Entry;

/// Rows a result carries unless configured otherwise.
pub const DEFAULT_RESULT_TOP: usize = 100;

/// Most rows a result may carry (a record of at most 641 KiB: [`max_bytes`]).
pub const MAX_RESULT_TOP: usize = 1000;

/// The largest a row can be in JSON: 20-digit rank and score, a 64-byte
/// player id (of `[A-Za-z0-9_.:@-]`: never escaped), and the largest `meta`.
const MAX_ROW_BYTES: usize =
    r#"{"rank":,"player":"","score":,"meta":},"#.len() + 20 + 64 + 20 + leaderboard_contract::MAX_META_BYTES;

/// The largest a result of `top` rows can be in JSON (its fixed fields take at most 1 KiB).
pub const fn max_bytes(top: usize) -> usize {
    1024 + top * MAX_ROW_BYTES
}

/// One closed season's final standings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeasonResult {
    /// `<board>/<season>`: the same for every delivery and revision of this season's result.
    pub id: String,
    /// 1 when the season closed, one more for each amendment since.
    pub revision: u32,
    /// The board.
    pub board: String,
    /// The season's id.
    pub season: String,
    /// The season's first instant.
    pub start: String,
    /// The first instant after the season.
    pub end: String,
    /// When the season was closed (its fence went up).
    pub closed_at: String,
    /// When it was last amended, for a revision above 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amended_at: Option<String>,
    /// Players on the season's board.
    pub total: u64,
    /// Its first rows, in board order.
    pub top: Vec<Entry>,
}

/// What a result is made of, in the store's terms (milliseconds since the epoch).
#[derive(Debug, Clone)]
pub struct ResultParts<'a> {
    /// The board.
    pub board: &'a str,
    /// The season's id.
    pub season: &'a str,
    /// The revision produced.
    pub revision: u32,
    /// The season's first millisecond.
    pub start_ms: i64,
    /// The first millisecond after it.
    pub end_ms: i64,
    /// When it closed.
    pub closed_at_ms: i64,
    /// When it was last amended.
    pub amended_at_ms: Option<i64>,
}

impl SeasonResult {
    /// The result of the season `parts` names, with its `total` and `top` rows.
    pub fn new(parts: &ResultParts<'_>, total: u64, top: Vec<Entry>) -> Self {
        Self {
            id: Self::id_of(parts.board, parts.season),
            revision: parts.revision,
            board: parts.board.to_string(),
            season: parts.season.to_string(),
            start: rfc3339_ms(parts.start_ms),
            end: rfc3339_ms(parts.end_ms),
            closed_at: rfc3339_ms(parts.closed_at_ms),
            amended_at: parts.amended_at_ms.map(rfc3339_ms),
            total,
            top,
        }
    }

    /// The stable id of a season's result.
    pub fn id_of(board: &str, season: &str) -> String {
        format!("{board}/{season}")
    }
}

/// `ms` since the epoch as RFC 3339 in UTC, to the millisecond (out of range: the epoch).
pub fn rfc3339_ms(ms: i64) -> String {
    let at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use leaderboard_contract::PlayerId;

    use super::*;

    #[test]
    fn a_result_reads_back_as_written_with_its_stable_id() {
        let parts = ResultParts {
            board: "weekly",
            season: "2026-11-23",
            revision: 2,
            start_ms: 1_795_392_000_000,
            end_ms: 1_795_996_800_000,
            closed_at_ms: 1_795_996_810_250,
            amended_at_ms: Some(1_796_000_000_000),
        };
        let top = vec![Entry { rank: 1, player: PlayerId::new("ann").expect("id"), score: 42, meta: None }];
        let result = SeasonResult::new(&parts, 7, top);
        assert_eq!(result.id, "weekly/2026-11-23");
        assert_eq!(
            (result.start.as_str(), result.closed_at.as_str()),
            ("2026-11-23T00:00:00Z", "2026-11-30T00:00:10.25Z")
        );
        let json = serde_json::to_string(&result).expect("json");
        assert_eq!(serde_json::from_str::<SeasonResult>(&json).expect("parse"), result);
        assert!(json.contains(r#""top":[{"rank":1,"player":"ann","score":42}]"#), "{json}");
    }

    /// The committed schema consumers validate against (`contract/schema/season-result.schema.json`).
    fn schema() -> jsonschema::Validator {
        let text = include_str!("../../contract/schema/season-result.schema.json");
        let document: serde_json::Value = serde_json::from_str(text).expect("the schema is JSON");
        jsonschema::draft202012::meta::validate(&document).expect("a valid draft 2020-12 schema");
        jsonschema::draft202012::new(&document).expect("the schema compiles")
    }

    proptest::proptest! {
        /// Every result the producer makes validates against the published schema, whatever
        /// the schedule's ids, the rows and their metadata.
        #[test]
        fn every_result_validates_against_the_published_schema(
            season in proptest::prop_oneof![
                proptest::strategy::Just("2026-11-24"), proptest::strategy::Just("2026-11"),
                proptest::strategy::Just("2026-11-24T07"), proptest::strategy::Just("2026-11-24T07:30"),
            ],
            revision in 1u32..,
            start_ms in 0i64..253_402_300_000_000,
            closed_after in 0i64..100_000_000,
            rows in proptest::collection::vec((0u64..=9_007_199_254_740_991, proptest::option::of("[a-z]{1,8}")), 0..20),
            amended in proptest::bool::ANY,
        ) {
            let parts = ResultParts {
                board: "b.oard-1_x",
                season,
                revision,
                start_ms,
                end_ms: start_ms + 3_600_000,
                closed_at_ms: start_ms + 3_600_000 + closed_after,
                amended_at_ms: amended.then_some(start_ms + 3_600_000 + 2 * closed_after),
            };
            let top = rows
                .iter()
                .enumerate()
                .map(|(i, (score, name))| Entry {
                    rank: i as u64 + 1,
                    player: PlayerId::new(format!("p:{i}@x")).expect("id"),
                    score: *score,
                    meta: name.as_ref().map(|n| leaderboard_contract::Meta::parse(&format!(r#"{{"name":"{n}"}}"#)).expect("meta")),
                })
                .collect();
            let value = serde_json::to_value(SeasonResult::new(&parts, rows.len() as u64, top)).expect("json");
            let errors: Vec<String> = schema().iter_errors(&value).map(|e| e.to_string()).collect();
            proptest::prop_assert!(errors.is_empty(), "{errors:?} in {value}");
        }
    }

    #[test]
    fn the_schema_refuses_what_no_result_is() {
        let schema = schema();
        let example: serde_json::Value =
            serde_json::from_str(include_str!("../../contract/schema/season-result.schema.json")).expect("json");
        let good = example["examples"][0].clone();
        assert!(schema.is_valid(&good));
        for (field, bad) in [
            ("revision", serde_json::json!(0)),
            ("end", serde_json::json!("2026-11-25 00:00:00")),
            ("season", serde_json::json!("last")),
            ("id", serde_json::json!("arena")),
            ("top", serde_json::json!([{"rank": 0, "player": "p", "score": 1}])),
        ] {
            let mut doc = good.clone();
            doc[field] = bad;
            assert!(!schema.is_valid(&doc), "{field}");
        }
    }

    #[test]
    fn the_largest_rows_fit_the_stated_bound() {
        let meta = format!(r#"{{"n":"{}"}}"#, "x".repeat(leaderboard_contract::MAX_META_BYTES - 8));
        let row = Entry {
            rank: u64::MAX,
            player: PlayerId::new("p".repeat(64)).expect("id"),
            score: u64::MAX,
            meta: Some(leaderboard_contract::Meta::parse(&meta).expect("meta")),
        };
        let parts = ResultParts {
            board: &"b".repeat(64),
            season: "2026-11-23T00:00",
            revision: u32::MAX,
            start_ms: i64::MAX / 1_000_000,
            end_ms: i64::MAX / 1_000_000,
            closed_at_ms: i64::MAX / 1_000_000,
            amended_at_ms: Some(i64::MAX / 1_000_000),
        };
        let result = SeasonResult::new(&parts, u64::MAX, vec![row; 10]);
        assert!(serde_json::to_vec(&result).expect("json").len() <= max_bytes(10));
    }
}
