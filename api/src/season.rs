//! `?season=` on every read route: which stored board an answer reads, and
//! how a closed season's answers are dated.
//!
//! A board with a reset answers for its `current` season by default;
//! `previous`, a season id, or `all` (all-time) may be asked for. A board
//! without one knows `all` only. The current season is decided by this api's
//! season clock (`--clock`), as ingest decides where events go.
//!
//! A closed season is frozen: an answer whose data was read after the season
//! was seen closed (its entry is read first) is dated by the season's end,
//! since every event of the season that will ever count is in it. Other
//! answers are dated by the watermark, like any board's.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use leaderboard_contract::BoardId;
use leaderboard_semantics::season::Season;
use serde::Deserialize;

use crate::backend::Backend;
use crate::error::ApiError;

/// What `season` may be (a valid id still has to name a season of the board).
pub const SEASON_PATTERN: &str =
    "^(current|previous|all|[0-9]{4}-[0-9]{2}(-[0-9]{2}(T[0-9]{2}(:[0-9]{2})?)?)?|m[1-9][0-9]{0,13})$";

/// The longest `?season=` [`SEASON_PATTERN`] accepts (a span's `YYYY-MM-DDTHH:MM`, a manual
/// `m` and 14 digits), as the document states it.
pub const SEASON_MAX_BYTES: usize = 16;

/// `?season=` of the read routes.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeasonParams {
    /// `current` (the default on boards with a reset), `previous`, `all` (all-time; the default,
    /// and the only value, on boards without a reset), or a season id (`YYYY-MM-DD`, `YYYY-MM`,
    /// `YYYY-MM-DDTHH`, `YYYY-MM-DDTHH:MM`, `m1`, `m2`, ...).
    pub season: Option<String>,
}

/// What a read is about.
#[derive(Debug, Clone)]
pub struct Target {
    /// The board the client named.
    pub board: BoardId,
    /// Where the answer is read from: the board, or `<board>@<id>`.
    pub stored: BoardId,
    /// The season, for season answers.
    pub season: Option<Season>,
}

impl Target {
    /// The season id for the response, if any.
    pub fn season_id(&self) -> Option<String> {
        self.season.as_ref().map(|s| s.id.clone())
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_season", message)
}

/// A well-formed `season` that names no season of the board: 404, as a board or a player that
/// does not exist (a schema-valid request is not a bad request).
fn no_such_season(message: impl Into<String>) -> ApiError {
    ApiError::NotFound { code: "season_not_found", message: message.into() }
}

/// Whether `season` matches [`SEASON_PATTERN`] (what the OpenAPI document promises to accept).
pub fn well_formed(season: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let date = |parts: &[&str]| match parts {
        [y, m] => digits(y, 4) && digits(m, 2),
        [y, m, d] => digits(y, 4) && digits(m, 2) && digits(d, 2),
        _ => false,
    };
    let clock = |text: &str| match text.split_once(':') {
        Some((h, m)) => digits(h, 2) && digits(m, 2),
        None => digits(text, 2),
    };
    if matches!(season, "current" | "previous" | "all") {
        return true;
    }
    if let Some(number) = season.strip_prefix('m') {
        return (1..=14).contains(&number.len()) && !number.starts_with('0') && digits(number, number.len());
    }
    match season.split_once('T') {
        Some((day, time)) => date(&day.split('-').collect::<Vec<_>>()) && day.len() == 10 && clock(time),
        None => date(&season.split('-').collect::<Vec<_>>()),
    }
}

/// Resolves `?season=` for `board`: reads the board's rules (kept by the
/// router for a second) through `backend`, and decides the current season by `clock`.
///
/// # Errors
/// 400 `invalid_season` for a value that is not of [`SEASON_PATTERN`]; 404 `no_seasons` (a board
/// without a reset) or `season_not_found` (a well-formed id naming no season of its schedule);
/// Redis errors as every read.
pub async fn resolve(
    backend: &Backend,
    clock: leaderboard_semantics::Clock,
    board: BoardId,
    params: &SeasonParams,
) -> Result<Target, ApiError> {
    let asked = params.season.as_deref();
    if let Some(text) = asked.filter(|t| !well_formed(t)) {
        return Err(invalid(format!(
            "season must be current, previous, all or a season id (YYYY-MM-DD, YYYY-MM, YYYY-MM-DDTHH, YYYY-MM-DDTHH:MM, m1, m2, ...), got {text:?}"
        )));
    }
    let b = &board;
    let rules = backend.call(|r| async move { r.rules(b).await }).await?;
    let Some(reset) = rules.reset else {
        return match asked {
            None | Some("all") => Ok(Target { stored: board.clone(), board, season: None }),
            Some(other) => Err(ApiError::NotFound {
                code: "no_seasons",
                message: format!("board {board} has no seasons (no reset schedule); got season={other}"),
            }),
        };
    };
    let now = clock.now_ms();
    if reset.is_manual() {
        return manual(backend, board, asked, now).await;
    }
    // Before a span's first season, the current season is that first one (empty until it starts).
    let current = || {
        match reset.season_at(now) {
            Err(leaderboard_semantics::season::SeasonError::NotStarted(start_ms)) => reset.season_at(start_ms),
            found => found,
        }
        .map_err(|e| no_such_season(e.to_string()))
    };
    let season = match asked {
        Some("all") => return Ok(Target { stored: board.clone(), board, season: None }),
        None | Some("current") => current()?,
        Some("previous") => reset.previous(&current()?).map_err(|e| no_such_season(e.to_string()))?,
        Some(id) => reset.parse_id(id).map_err(|e| no_such_season(e.to_string()))?,
    };
    Ok(Target { stored: board.season(&season.id), board, season: Some(season) })
}

/// Resolves `?season=` on a `manual` board from its recorded resets (one
/// more round trip): the current season holds `now` (before the first, it is
/// the first, empty until it starts).
async fn manual(backend: &Backend, board: BoardId, asked: Option<&str>, now: i64) -> Result<Target, ApiError> {
    let b = &board;
    let season = match asked {
        Some("all") => None,
        None | Some("current" | "previous") => {
            let view = backend.call(|r| async move { r.view_manual(b, now, now, false).await }).await?;
            let (current, previous) = if let (Some(current), previous) = view.at_and_before(now) {
                (current.clone(), previous.cloned())
            } else {
                let first = view.seasons.first().cloned();
                (first.ok_or_else(|| no_such_season(format!("board {board} has no season yet")))?, None)
            };
            if asked == Some("previous") {
                let message = format!("season {} of board {board} is its first", current.id);
                Some(previous.ok_or_else(|| no_such_season(message))?)
            } else {
                Some(current)
            }
        }
        Some(id) => {
            let found = backend.call(|r| async move { r.manual_season(b, id).await }).await?;
            Some(found.ok_or_else(|| no_such_season(format!("{id:?} is not a season of board {board} (kept)")))?)
        }
    };
    Ok(match season {
        Some(season) => Target { stored: board.season(&season.id), board, season: Some(season) },
        None => Target { stored: board.clone(), board, season: None },
    })
}

/// Most seasons whose state the api remembers (then it starts over).
pub const MAX_KNOWN_SEASONS: usize = 10_000;

/// How long the api trusts that a season is open before asking again.
const OPEN_TTL: Duration = Duration::from_secs(1);

/// What the api knows of seasons' states, so a season read costs no extra
/// round trip: a closed season stays closed (its end is kept); an open one is
/// asked again after `OPEN_TTL` (a second). Meanwhile its answers are dated by the
/// watermark, which is true of a season that closed in between too.
#[derive(Debug, Default)]
pub struct SeasonStates {
    known: DashMap<BoardId, Known>,
    /// Totals of closed seasons, by season and closing time (a board deleted
    /// and made again closes its seasons at other times), which never change:
    /// the seasons route reads only the open ones' from Redis (at most
    /// [`MAX_KNOWN_SEASONS`], then it starts over).
    closed_totals: DashMap<(BoardId, i64), u64>,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    /// `Some(end)`: closed.
    end: Option<SystemTime>,
    read_at: Instant,
}

impl SeasonStates {
    /// [`frozen_at`], remembered (see the type's docs).
    ///
    /// # Errors
    /// Redis errors as every read.
    pub async fn frozen_at(&self, backend: &Backend, stored: &BoardId) -> Result<Option<SystemTime>, ApiError> {
        if let Some(known) = self.known.get(stored).map(|k| *k)
            && (known.end.is_some() || known.read_at.elapsed() < OPEN_TTL)
        {
            return Ok(known.end);
        }
        let end = frozen_at(backend, stored).await?;
        if stored.is_season() {
            if self.known.len() >= MAX_KNOWN_SEASONS {
                self.known.clear();
            }
            self.known.insert(stored.clone(), Known { end, read_at: Instant::now() });
        }
        Ok(end)
    }

    /// The total of the season stored as `stored`, frozen at `frozen_at_ms`
    /// (when it closed, or was last amended; `None`: open); a closed one's is
    /// read once per closing or amendment and remembered (see the type's docs).
    ///
    /// # Errors
    /// Redis errors as every read.
    pub async fn total(&self, backend: &Backend, stored: &BoardId, frozen_at_ms: Option<i64>) -> Result<u64, ApiError> {
        let key = frozen_at_ms.map(|at| (stored.clone(), at));
        if let Some(total) = key.as_ref().and_then(|k| self.closed_totals.get(k).map(|t| *t)) {
            return Ok(total);
        }
        let total = backend
            .call(|r| {
                let stored = stored.clone();
                async move { r.total(&stored).await }
            })
            .await?;
        if let Some(key) = key {
            if self.closed_totals.len() >= MAX_KNOWN_SEASONS {
                self.closed_totals.clear();
            }
            self.closed_totals.insert(key, total);
        }
        Ok(total)
    }

    /// Forgets every board's seasons (a player was erased or banned: closed seasons may be amended).
    pub fn clear(&self) {
        self.known.clear();
        self.closed_totals.clear();
    }

    /// Forgets the seasons of `board` (it was deleted, or its rules changed).
    pub fn forget(&self, board: &BoardId) {
        let other = |season: &BoardId| season.season_parts().is_none_or(|(b, _)| b != board.as_str());
        self.known.retain(|season, _| other(season));
        self.closed_totals.retain(|(season, _), _| other(season));
    }
}

/// The end of the season stored as `stored` when it is closed now, read
/// *before* the answer's data (see the module docs); `None` for boards and open seasons.
///
/// # Errors
/// Redis errors as every read.
pub async fn frozen_at(backend: &Backend, stored: &BoardId) -> Result<Option<SystemTime>, ApiError> {
    if !stored.is_season() {
        return Ok(None);
    }
    let entry = backend.call(|r| async move { r.stored_season(stored).await }).await?;
    Ok(entry.filter(leaderboard_store::board::seasons::SeasonEntry::closed).map(|e| time_of(e.end_ms)))
}

/// A time in milliseconds since the epoch (clamped at the epoch).
pub fn time_of(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The client's board name and the season id of a stored name.
pub fn names(stored: &BoardId) -> (String, Option<String>) {
    match stored.season_parts() {
        Some((board, season)) => (board.to_string(), Some(season.to_string())),
        None => (stored.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern by a regex engine, as clients would check it.
    #[test]
    fn well_formed_is_the_documented_pattern() {
        let pattern = regex::Regex::new(SEASON_PATTERN).expect("pattern");
        let ok = [
            "current",
            "previous",
            "all",
            "2026-11",
            "2026-11-23",
            "0000-00-00",
            "9999-99",
            "2026-11-23T00",
            "2026-11-23T18:30",
            "m1",
            "m10",
            "m99999999999999",
        ];
        for ok in ok {
            assert!(well_formed(ok) && pattern.is_match(ok), "{ok}");
            assert!(ok.len() <= SEASON_MAX_BYTES, "{ok} is longer than the documented maximum");
        }
        for bad in [
            "",
            "now",
            "2026",
            "2026-1",
            "2026-11-2",
            "2026-11-234",
            "26-11-23",
            "2026-11T00",
            "2026-11-23T0",
            "2026-11-23T00:0",
            "2026-11-23T00:00:00",
            "2026-11-23T",
            "2026-11-23t00",
            "2026_11",
            "-11-23",
            "2026--1",
            "m",
            "m0",
            "m01",
            "M1",
            "m1a",
            "m999999999999999",
        ] {
            assert!(!well_formed(bad) && !pattern.is_match(bad), "{bad}");
        }
    }
}
