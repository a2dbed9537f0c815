//! Response bodies, as documented in `docs/contract.md#http-api` and the OpenAPI document.

use leaderboard_contract::Meta;
use serde::{Deserialize, Serialize};
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
    /// The metadata of the event that set the score: a JSON object of at most
    /// 512 bytes, as the game server sent it (docs/contract.md#entry-metadata);
    /// absent when that event carried none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, required = false)]
    pub meta: Option<Meta>,
}

impl From<&leaderboard_semantics::Entry> for EntryDto {
    fn from(e: &leaderboard_semantics::Entry) -> Self {
        Self { rank: e.rank, player: e.player.to_string(), score: e.score, meta: e.meta.clone() }
    }
}

/// `GET /v1/boards/{board}/top`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopResponse {
    /// The board.
    pub board: String,
    /// The season the answer is about (`YYYY-MM-DD` or `YYYY-MM`); absent for all-time answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub season: Option<String>,
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
    /// The season the answer is about (`YYYY-MM-DD` or `YYYY-MM`); absent for all-time answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub season: Option<String>,
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
    /// The metadata of the event that set the score: a JSON object of at most
    /// 512 bytes, as the game server sent it (docs/contract.md#entry-metadata);
    /// absent when that event carried none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, required = false)]
    pub meta: Option<Meta>,
}

impl PlayerResponse {
    /// The body for `player`'s `standing` on `target`, dated `as_of`.
    pub fn new(
        target: &crate::season::Target,
        player: &leaderboard_contract::PlayerId,
        st: leaderboard_semantics::Standing,
        as_of: std::time::SystemTime,
    ) -> Self {
        Self {
            board: target.board.to_string(),
            season: target.season_id(),
            player: player.to_string(),
            score: st.score,
            rank: st.rank,
            total: st.total,
            percentile: st.percentile,
            as_of: crate::clock::rfc3339(as_of),
            meta: st.meta,
        }
    }
}

/// `GET /v1/boards/{board}/players/{player}/around`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AroundResponse {
    /// The board.
    pub board: String,
    /// The season the answer is about (`YYYY-MM-DD` or `YYYY-MM`); absent for all-time answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub season: Option<String>,
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
    /// The season the answer is about (`YYYY-MM-DD` or `YYYY-MM`); absent for all-time answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub season: Option<String>,
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
    /// The board's rules.
    pub rules: RulesDto,
}

/// `GET /readyz`: whether the api can serve, and why not.
#[derive(Debug, Serialize, ToSchema)]
#[expect(clippy::struct_excessive_bools, reason = "the JSON shape of /readyz: one flag per fact it is judged from")]
pub struct ReadyResponse {
    /// Whether the api can serve: Redis answers, or its top-N cache holds a page read within
    /// `--ready-stale-for`; and the store is intact and the api is not shutting down.
    pub ready: bool,
    /// Where answers come from now.
    pub serving: crate::health::Serving,
    /// Why the api is not ready; absent when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::health::NotReady>,
    /// Redis answered the last `PING` (every `--loss-check`; `/readyz/redis` has the details).
    pub redis: bool,
    /// The store holds the data this api knows: its epoch is there and unchanged (or a recovery's).
    pub store_intact: bool,
    /// The circuit breaker lets calls through.
    pub breaker_closed: bool,
    /// The api is shutting down (finishing the requests in flight).
    pub shutting_down: bool,
    /// Boards in the top-N cache.
    pub cached_boards: u64,
    /// Milliseconds since the newest cached page was read from Redis; absent when none is cached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_age_ms: Option<u64>,
}

/// `GET /readyz/redis`: whether Redis answers, as of the last `PING`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedisReadyResponse {
    /// Redis answered the last `PING` within `--redis-timeout`.
    pub up: bool,
    /// Milliseconds since that `PING`; absent before the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_ms_ago: Option<u64>,
    /// Milliseconds since Redis last answered; absent when it never did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_ms_ago: Option<u64>,
    /// Why the last `PING` failed: `timeout`, or the failure class (`transient`, `reconnect`,
    /// `store_blocked`); absent when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
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
    /// The metadata of the event that set the score: a JSON object of at most
    /// 512 bytes, as the game server sent it (docs/contract.md#entry-metadata);
    /// absent when that event carried none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, required = false)]
    pub meta: Option<Meta>,
}

/// `POST /v1/boards/{board}/players:lookup`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupResponse {
    /// The board.
    pub board: String,
    /// The season the answer is about (`YYYY-MM-DD` or `YYYY-MM`); absent for all-time answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub season: Option<String>,
    /// RFC 3339 time of the data.
    pub as_of: String,
    /// Players on the board.
    pub total: u64,
    /// The players found, in board order.
    pub entries: Vec<LookupEntryDto>,
    /// The players asked for without a score on the board, in the order asked.
    pub missing: Vec<String>,
}

/// Which scores are better on a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderDto {
    /// Higher is better.
    Desc,
    /// Lower is better (time trials).
    Asc,
}

/// How equal scores rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TiesDto {
    /// Equal scores share a rank (1, 2, 2, 4).
    Shared,
    /// Whoever reached the score first is ahead (1, 2, 3, 4).
    Earliest,
}

/// How a board combines a player's events (docs/contract.md#write-operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperatorDto {
    /// The best score counts.
    Best,
    /// The latest event counts.
    Last,
    /// Scores are increments, summed.
    Sum,
}

impl From<OperatorDto> for leaderboard_semantics::Operator {
    fn from(o: OperatorDto) -> Self {
        match o {
            OperatorDto::Best => Self::Best,
            OperatorDto::Last => Self::Last,
            OperatorDto::Sum => Self::Sum,
        }
    }
}

impl From<leaderboard_semantics::Operator> for OperatorDto {
    fn from(o: leaderboard_semantics::Operator) -> Self {
        match o {
            leaderboard_semantics::Operator::Best => Self::Best,
            leaderboard_semantics::Operator::Last => Self::Last,
            leaderboard_semantics::Operator::Sum => Self::Sum,
        }
    }
}

/// A board's rules (docs/contract.md#board-rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RulesDto {
    /// `desc` (higher is better) or `asc`.
    pub order: OrderDto,
    /// `shared` or `earliest`.
    pub ties: TiesDto,
    /// Lowest accepted score.
    pub min_score: u64,
    /// Highest accepted score.
    pub max_score: u64,
    /// The season schedule; `null`: all-time only.
    pub reset: Option<ResetDto>,
    /// Closed seasons kept.
    pub keep_seasons: u32,
    /// How long after its end a season still takes late events (`10s`).
    pub late_grace: String,
    /// `best`, `last` or `sum`.
    pub operator: OperatorDto,
    /// On `last` and `sum` boards: how far apart two records with one `id` may be and still apply once (`1day`).
    pub dedup_window: String,
}

/// A reset schedule (docs/contract.md#seasons).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetDto {
    /// `hour`, `day`, `week`, `month`, `span` or `manual` (a season lasts until an admin resets it).
    #[schema(pattern = "^(hour|day|week|month|span|manual)$")]
    pub every: String,
    /// `day`, `week` and `month`: the fixed offset the reset happens at, `+HH:MM` or `-HH:MM`
    /// within ±14:00 (default `+00:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[+-][0-9]{2}:[0-9]{2}$")]
    pub utc_offset: Option<String>,
    /// `week`: the day seasons start, `mon` (default) ... `sun`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(mon|tue|wed|thu|fri|sat|sun)$")]
    pub weekday: Option<String>,
    /// `span`: the first season's start, RFC 3339, in whole minutes (no season before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64)]
    pub start: Option<String>,
    /// `span`: each season's length, in whole minutes, `1m` to `366d` (`3d`, `90m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 64)]
    pub length: Option<String>,
}

impl ResetDto {
    /// The schedule, validated.
    ///
    /// # Errors
    /// What is wrong with it, for a 400.
    pub fn reset(&self) -> Result<leaderboard_semantics::season::Reset, String> {
        serde_json::from_value(serde_json::to_value(self).map_err(|e| e.to_string())?)
            .map_err(|e| format!("reset: {e}"))
    }
}

impl From<leaderboard_semantics::season::Reset> for ResetDto {
    fn from(r: leaderboard_semantics::season::Reset) -> Self {
        let v = serde_json::to_value(r).unwrap_or_default();
        let text = |field: &str| v.get(field).and_then(|x| x.as_str()).map(str::to_string);
        Self {
            every: text("every").unwrap_or_default(),
            utc_offset: text("utc_offset"),
            weekday: text("weekday"),
            start: text("start"),
            length: text("length"),
        }
    }
}

impl From<leaderboard_semantics::Rules> for RulesDto {
    fn from(r: leaderboard_semantics::Rules) -> Self {
        Self {
            order: match r.order {
                leaderboard_semantics::Order::Desc => OrderDto::Desc,
                leaderboard_semantics::Order::Asc => OrderDto::Asc,
            },
            ties: match r.ties {
                leaderboard_semantics::Ties::Shared => TiesDto::Shared,
                leaderboard_semantics::Ties::Earliest => TiesDto::Earliest,
            },
            min_score: r.min_score,
            max_score: r.max_score,
            reset: r.reset.map(ResetDto::from),
            keep_seasons: r.keep_seasons,
            late_grace: humantime::format_duration(r.late_grace).to_string(),
            operator: r.operator.into(),
            dedup_window: humantime::format_duration(r.dedup_window).to_string(),
        }
    }
}

/// `PUT /v1/admin/boards/{board}`: the board's rules, whole; absent fields take their defaults.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesRequest {
    /// `desc` (default) or `asc`.
    #[serde(default)]
    pub order: Option<OrderDto>,
    /// `shared` (default) or `earliest`.
    #[serde(default)]
    pub ties: Option<TiesDto>,
    /// Lowest accepted score (default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    pub min_score: Option<u64>,
    /// Highest accepted score (default 2^53 - 1).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    pub max_score: Option<u64>,
    /// The season schedule (default `null`: all-time only). Once set it cannot change.
    #[serde(default)]
    pub reset: Option<ResetDto>,
    /// Closed seasons kept, 1 to 1000 (default 12).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub keep_seasons: Option<u32>,
    /// Grace for late events, at most `1d` (default `10s`): numbers with units `ms`, `s`, `m`, `h`, `d`.
    #[serde(default)]
    #[schema(pattern = "^([0-9]{1,9}(ms|s|m|h|d) ?){1,4}$", max_length = 40)]
    pub late_grace: Option<String>,
    /// `best` (default), `last` or `sum`; fixed once the board exists. `last` and `sum`
    /// boards use the `single` or `hash` layout.
    #[serde(default)]
    pub operator: Option<OperatorDto>,
    /// Idempotency keys' window on `last` and `sum` boards, at most `7d` (default `24h`).
    #[serde(default)]
    #[schema(pattern = "^([0-9]{1,9}(ms|s|m|h|d) ?){1,4}$", max_length = 40)]
    pub dedup_window: Option<String>,
}

impl RulesRequest {
    /// The rules asked for, defaults filled in.
    ///
    /// # Errors
    /// What cannot be parsed (a schedule or a duration), for a 400.
    pub fn rules(&self) -> Result<leaderboard_semantics::Rules, String> {
        let d = leaderboard_semantics::Rules::default();
        let late_grace = match &self.late_grace {
            Some(text) => humantime::parse_duration(text)
                .map_err(|e| format!("late_grace must be a duration like 10s or 5m, got {text:?}: {e}"))?,
            None => d.late_grace,
        };
        let dedup_window = match &self.dedup_window {
            Some(text) => humantime::parse_duration(text)
                .map_err(|e| format!("dedup_window must be a duration like 24h or 7d, got {text:?}: {e}"))?,
            None => d.dedup_window,
        };
        Ok(leaderboard_semantics::Rules {
            order: match self.order {
                Some(OrderDto::Asc) => leaderboard_semantics::Order::Asc,
                Some(OrderDto::Desc) | None => leaderboard_semantics::Order::Desc,
            },
            ties: match self.ties {
                Some(TiesDto::Earliest) => leaderboard_semantics::Ties::Earliest,
                Some(TiesDto::Shared) | None => leaderboard_semantics::Ties::Shared,
            },
            min_score: self.min_score.unwrap_or(d.min_score),
            max_score: self.max_score.unwrap_or(d.max_score),
            reset: self.reset.as_ref().map(ResetDto::reset).transpose()?,
            keep_seasons: self.keep_seasons.unwrap_or(d.keep_seasons),
            late_grace,
            operator: self.operator.map_or(d.operator, Into::into),
            dedup_window,
        })
    }
}

/// One season of a board.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeasonDto {
    /// `YYYY-MM-DD` (day and week seasons), `YYYY-MM` (month), `YYYY-MM-DDTHH` (hour),
    /// `YYYY-MM-DDTHH:MM` (span), `m1`, `m2`, ... (manual).
    pub id: String,
    /// RFC 3339 time of its first millisecond.
    pub start: String,
    /// RFC 3339 time it ends (the next reset); absent for a `manual` season no reset has ended yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// `open`, or `closed` (frozen: its answers never change, their `as_of` is `end`).
    #[schema(pattern = "^(open|closed)$")]
    pub state: String,
    /// Players in the season.
    pub total: u64,
    /// RFC 3339 time a closed season was last amended (a player erased or banned out of it);
    /// absent when it never was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amended_at: Option<String>,
}

/// `GET /v1/boards/{board}/seasons`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeasonsResponse {
    /// The board.
    pub board: String,
    /// RFC 3339 time of the data.
    pub as_of: String,
    /// The board's reset schedule.
    pub reset: ResetDto,
    /// RFC 3339 time of the next reset (when the current season ends); `null` on a `manual`
    /// board, whose current season lasts until an admin resets it.
    pub next_reset: Option<String>,
    /// RFC 3339 time now by the api's season clock (a countdown is `next_reset - now`).
    pub now: String,
    /// Seasons, newest first: the current one, then those kept (at most 100).
    pub seasons: Vec<SeasonDto>,
    /// Whether more seasons are kept than listed.
    pub truncated: bool,
}

/// A season's interval, as a reset answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeasonSpan {
    /// `m1`, `m2`, ...
    pub id: String,
    /// RFC 3339 time of its first millisecond.
    pub start: String,
    /// RFC 3339 time it ended; absent for the season the reset opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// `POST /v1/admin/boards/{board}/seasons:reset`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeasonReset {
    /// The board.
    pub board: String,
    /// The season the reset ended (absent when the board had none and this opened its first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<SeasonSpan>,
    /// The season it opened, current from its start on.
    pub current: SeasonSpan,
}

/// One board as the admin listing shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminBoard {
    /// The board.
    pub board: String,
    /// Its recorded layout (`range` boards: with their current boundaries).
    pub layout: String,
    /// The layout it is being migrated to, while that runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrating_to: Option<String>,
    /// Players on the board.
    pub total: u64,
    /// The board's rules.
    pub rules: RulesDto,
}

/// `GET /v1/admin/boards`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminBoards {
    /// Boards in name order (at most 1,000).
    pub boards: Vec<AdminBoard>,
    /// Whether more boards exist than listed.
    pub truncated: bool,
}

/// Which boards a ban covers: `"all"`, or a list of 1 to 100 board names.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum BanBoards {
    /// `"all"`: every board, present and future.
    All(AllBoardsWord),
    /// The boards listed (their seasons included).
    Listed(Vec<String>),
}

/// The word `"all"`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllBoardsWord {
    /// Every board.
    All,
}

/// The schema of [`BanBoards`] with the bounds the route checks: `"all"`, or 1 to 100 board
/// names of the board alphabet.
fn ban_boards_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
    let all = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["all"]));
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^[{}]+$", leaderboard_contract::BoardId::ALLOWED)))
        .min_length(Some(1))
        .max_length(Some(leaderboard_contract::MAX_ID_BYTES));
    let listed = ArrayBuilder::new()
        .items(name)
        .min_items(Some(1))
        .max_items(Some(leaderboard_store::marker::registry::MAX_BAN_BOARDS));
    OneOfBuilder::new().item(all).item(listed).into()
}

/// The body of `PUT /v1/admin/players/{player}/ban`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    /// The boards the ban covers: `"all"`, or 1 to 100 board names.
    #[schema(schema_with = ban_boards_schema)]
    pub boards: BanBoards,
    /// Also remove the player from those boards' closed seasons (they are amended). Default false.
    #[serde(default)]
    pub closed_seasons: bool,
    /// Why, for the audit log and `GET /v1/admin/players/{player}` (at most 256 characters).
    #[serde(default)]
    #[schema(max_length = 256)]
    pub reason: String,
}

/// A player's ban as the admin routes show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BanDto {
    /// The boards it covers.
    #[schema(schema_with = ban_boards_schema)]
    pub boards: BanBoards,
    /// Whether it reached the boards' closed seasons.
    pub closed_seasons: bool,
    /// Why.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

/// What an erasure or a ban took the player out of.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlayerRemoved {
    /// The player.
    pub player: String,
    /// When the player was erased (erasures only; RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<String>,
    /// The ban now in force (bans only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ban: Option<BanDto>,
    /// Boards and seasons (`<board>@<season>`) the player was taken out of.
    pub boards: Vec<String>,
    /// Closed seasons among them, now amended.
    pub amended: Vec<String>,
}

/// A player's standing on one board, as `GET /v1/admin/players/{player}` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlayerOnBoard {
    /// The board.
    pub board: String,
    /// Their best score.
    pub score: u64,
    /// Their rank.
    pub rank: u64,
}

/// `GET /v1/admin/players/{player}`: where a player stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlayerStatus {
    /// The player.
    pub player: String,
    /// When they were erased, if ever (RFC 3339): their records stamped before are never applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<String>,
    /// Present and true when the erasure's removal did not finish (its eraser is running, or
    /// stopped short): erase the player again to finish it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub erasure_unfinished: bool,
    /// Their ban, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ban: Option<BanDto>,
    /// The boards they have a score on (all-time standings; at most 1,000 boards looked at, in name order).
    pub boards: Vec<PlayerOnBoard>,
    /// Whether more boards exist than were looked at.
    pub truncated: bool,
}
