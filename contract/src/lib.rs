//! The contracts every part of the leaderboard honours (see `docs/contract.md`).
//!
//! Producers (game servers, loadgen) encode [`ScoreEvent`]s with
//! [`ScoreEvent::to_json`]; ingest decodes Kafka records with [`decode_record`],
//! which either yields a validated event or a [`Rejection`] whose
//! [`Rejection::header_value`] is what goes into the dead-letter `error` header.
//! The api validates path parameters with the same [`BoardId`] and [`PlayerId`]
//! rules, so the whole system agrees on what a valid name is.
//!
//! # Layout
//! - [`ids`]: validated board and player names.
//! - [`event`]: the score event, its decoder and encoder.
//! - [`meta`]: an entry's metadata, validated once and kept as sent.
//! - [`reject`]: why a record is rejected, as stable machine-readable codes.

pub mod event;
pub mod ids;
pub mod meta;
pub mod reject;
pub mod signature;

pub use event::{DEFAULT_BOARD, MAX_EVENT_ID_BYTES, MAX_RECORD_BYTES, MAX_SCORE, ScoreEvent, decode_record};
pub use ids::{BoardId, IdError, MAX_ID_BYTES, PlayerId};
pub use meta::{MAX_META_BYTES, Meta, MetaError};
pub use reject::{MAX_DETAIL_BYTES, Rejection, RejectionCode};

/// Default Kafka topic carrying score events.
pub const SCORES_TOPIC: &str = "scores";
/// Default Kafka topic receiving malformed records.
pub const DEAD_LETTER_TOPIC: &str = "scores.dlq";
/// Default compacted Kafka topic keeping the player registry (erasures and bans) outside Redis.
pub const PLAYERS_TOPIC: &str = "scores.players";
/// Topic a closed season's result goes to (docs/contract.md#season-results).
pub const SEASON_RESULTS_TOPIC: &str = "scores.seasons";
/// Name of the dead-letter record header that carries the rejection reason.
pub const ERROR_HEADER: &str = "error";
