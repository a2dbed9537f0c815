//! Response bodies, as documented in `DESIGN.md` and the OpenAPI document.

use serde::Serialize;
use utoipa::ToSchema;

/// One row of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryDto {
    /// 1 + the number of players with a strictly greater score; ties share a rank.
    #[schema(example = 1)]
    pub rank: u64,
    /// The player.
    #[schema(example = "p-000123")]
    pub player: String,
    /// The player's best score.
    #[schema(example = 4821)]
    pub score: u64,
}

impl From<&shard_router::Entry> for EntryDto {
    fn from(e: &shard_router::Entry) -> Self {
        Self { rank: e.rank, player: e.player.to_string(), score: e.score }
    }
}

/// `GET /v1/boards/{board}/top`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopResponse {
    /// The board.
    pub board: String,
    /// RFC 3339 time of the data the answer was computed from.
    #[schema(example = "2026-11-22T10:00:00.123Z")]
    pub as_of: String,
    /// Players on the board.
    pub total: u64,
    /// Rows, score descending then player id ascending.
    pub entries: Vec<EntryDto>,
}

/// `GET /v1/boards/{board}/players/{player}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlayerResponse {
    /// The board.
    pub board: String,
    /// The player.
    pub player: String,
    /// Best score.
    pub score: u64,
    /// 1 + the number of players with a strictly greater score.
    pub rank: u64,
    /// Players on the board.
    pub total: u64,
    /// Share of players with a strictly lower score, in percent.
    pub percentile: f64,
    /// RFC 3339 time of the data.
    pub as_of: String,
}

/// `GET /v1/boards/{board}/players/{player}/around`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AroundResponse {
    /// The board.
    pub board: String,
    /// The player at the centre.
    pub player: String,
    /// RFC 3339 time of the data.
    pub as_of: String,
    /// The player's row with up to `radius` rows above and below.
    pub entries: Vec<EntryDto>,
}

/// One shard of a board.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardDto {
    /// Shard index (`range`: 0 holds the lowest scores).
    pub index: usize,
    /// Lowest score the shard holds (`range` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_score: Option<u64>,
    /// Highest score the shard holds; absent when unbounded or not `range`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_score: Option<u64>,
    /// Players in the shard.
    pub size: u64,
}

/// `GET /v1/boards/{board}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoardResponse {
    /// The board.
    pub board: String,
    /// RFC 3339 time of the data.
    pub as_of: String,
    /// Players on the board.
    pub total: u64,
    /// `single`, `hash` or `range`.
    pub strategy: String,
    /// The layout in configuration syntax, e.g. `range:1000,5000`.
    pub layout: String,
    /// The shards.
    pub shards: Vec<ShardDto>,
    /// `range` only: worst rank error from precomputed sizes over the last refresh interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank_error_bound: Option<u64>,
    /// The layout the board is being migrated to (`lb-admin migrate`), while that runs;
    /// answers come from `layout` until the migration ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrating_to: Option<String>,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyResponse {
    /// Whether every dependency answers.
    pub ready: bool,
    /// Redis answered a PING.
    pub redis: bool,
    /// The circuit breaker lets calls through.
    pub breaker_closed: bool,
}

/// `POST /v1/boards/{board}/players:lookup` body.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// 1 to 100 player ids (repeats are answered once).
    #[schema(min_items = 1, max_items = 100, example = json!(["p-000123", "p-000456"]))]
    pub players: Vec<String>,
}

/// One found player of a lookup.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupEntryDto {
    /// The player.
    pub player: String,
    /// Best score.
    pub score: u64,
    /// Rank on the board.
    pub rank: u64,
    /// Place inside the list (equal scores share a place, as on the board).
    pub list_rank: u64,
}

/// `POST /v1/boards/{board}/players:lookup`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupResponse {
    /// The board.
    pub board: String,
    /// RFC 3339 time of the data.
    pub as_of: String,
    /// Players on the board.
    pub total: u64,
    /// The players found, in board order.
    pub entries: Vec<LookupEntryDto>,
    /// The players asked for without a score on the board, in the order asked.
    pub missing: Vec<String>,
}
