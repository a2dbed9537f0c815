//! A batch under its boards' rules: bounds, seasons, the best-score cache, coalescing.
//!
//! The write stage reads the rules of every board in a batch (the router keeps
//! each board's record for at most a second) and the registry's marks of its
//! players, then, event by event:
//! 0. an event of an erased player stamped (Kafka time) before the erasure is
//!    dropped and counted, never dead-lettered (that would copy the erased
//!    player's data again); one of a player banned from its board becomes a
//!    dead letter (`banned`);
//! 1. a score outside the board's `min_score..=max_score` becomes a dead
//!    letter (`out_of_bounds`), so it is never applied nor silently dropped;
//! 2. on a board with a reset, the event also targets its season (by event
//!    time): a copy of it names the season (`<board>@<id>`). A season whose
//!    end plus `late_grace` had passed when the record reached Kafka (its
//!    timestamp on the season clock), or whose fence this worker met, takes
//!    no copy: the event becomes a `season_closed` dead letter and counts for
//!    all-time only. A season that has not started a minute from now is
//!    refused the same way (`invalid_ts`), so no producer's clock can make
//!    ingest open seasons without bound. On a `manual` board the season is
//!    the one its resets say holds the event's time, or the time it reached
//!    Kafka if that is earlier (a season ended by a reset holds nothing
//!    dated after it reached the broker), as read for this batch
//!    ([`ManualViews`], [`leaderboard_store::board::manual`]);
//! 3. an event that cannot improve the player's acknowledged best (by the
//!    board's order and, on `earliest` boards, time) is skipped ([`crate::cache`]);
//! 4. the rest are coalesced to one update per (board or season, player): the
//!    best one by the board's rules. On `last` and `sum` boards nothing is
//!    skipped nor coalesced: each event is one update naming its record, in
//!    record order, which the store applies exactly once ([`updates`]).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

use leaderboard_contract::{BoardId, PlayerId, Rejection, RejectionCode};
use leaderboard_semantics::model::{Scored, best_per_key};
use leaderboard_semantics::season::Season;
use leaderboard_semantics::{Clock, IdKey, Rules, ScoreUpdate, Source};
use leaderboard_store::Closed;
use leaderboard_store::board::manual::{ManualView, Placed};
use leaderboard_store::board::seasons::{past_grace, season_of};
use leaderboard_store::marker::registry::Marks;

use crate::batch::{Batch, Event};
use crate::config::Replay;
use crate::dead_letter::Reject;
use crate::shared::{Counter, Shared};

/// The rules of the boards of one batch.
pub type BoardRules = HashMap<BoardId, Rules>;

/// Boards of one batch whose record this worker cannot use (stored with an
/// unrelated layout, unreadable), with why: their events become dead letters
/// (`unwritable`) while the batch's other boards go on.
pub type Unwritable = HashMap<String, String>;

/// What keeps a batch's events from being written, besides their boards' rules.
#[derive(Debug, Clone, Copy)]
pub struct Barred<'a> {
    /// Boards whose record this worker cannot use.
    pub boards: &'a Unwritable,
    /// The registry's marks of the batch's players: erasures and bans.
    pub players: &'a Marks,
}

/// How far ahead of this worker's clock a season may start and still take events.
pub const FUTURE_TOLERANCE_MS: i64 = 60_000;

/// The seasons of the batch's `manual` boards, as read for it ([`manual_spans`]).
pub type ManualViews = HashMap<BoardId, ManualView>;

/// The season clock a batch is prepared by: the worker's clock, read once
/// (`now_ms`), how a record's Kafka timestamp reads on it, and the
/// `manual` boards' seasons read for the batch.
#[derive(Debug, Clone, Copy)]
pub struct SeasonTime<'a> {
    /// The worker's season clock (`--clock`).
    pub clock: &'a Clock,
    /// That clock now.
    pub now_ms: i64,
    /// The seasons of the batch's `manual` boards that hold its event times.
    pub manual: &'a ManualViews,
}

/// When `e`'s record reached Kafka on `clock` (`now_ms`, without a
/// timestamp), and the time its season's start is judged against: `now_ms`,
/// or in a recovery's replay that same arrival time.
fn arrival(batch: &Batch, e: &Event, clock: &Clock, now_ms: i64, replay: bool) -> (i64, i64) {
    let reached_ms = batch.accepted[e.record].timestamp_ms.map_or(now_ms, |t| clock.at(t));
    (reached_ms, if replay { reached_ms } else { now_ms })
}

/// The time that places `e` among a `manual` board's seasons: its own, or
/// when it reached Kafka (`reached_ms`) if that is earlier.
fn manual_time(e: &Event, reached_ms: i64) -> i64 {
    i64::try_from(e.time_ms).unwrap_or(i64::MAX).min(reached_ms)
}

/// The earliest and latest time (inclusive) by which a batch places events on one `manual` board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSpan {
    /// The earliest.
    pub from_ms: i64,
    /// The latest.
    pub to_ms: i64,
}

/// For each `manual` board of `batch` (by `rules`), the span of the times its
/// events are placed by (none further ahead than [`FUTURE_TOLERANCE_MS`]:
/// those are refused), which the writer reads the board's seasons for.
pub fn manual_spans(
    batch: &Batch,
    rules: &BoardRules,
    clock: &Clock,
    now_ms: i64,
    replay: Option<&Replay>,
) -> HashMap<BoardId, TimeSpan> {
    let mut spans: HashMap<BoardId, TimeSpan> = HashMap::new();
    for e in &batch.events {
        if !rules.get(&e.board).and_then(|r| r.reset).is_some_and(|reset| reset.is_manual()) {
            continue;
        }
        let (reached_ms, judged_ms) = arrival(batch, e, clock, now_ms, replay.is_some());
        let t = manual_time(e, reached_ms);
        if t > judged_ms.saturating_add(FUTURE_TOLERANCE_MS) {
            continue;
        }
        spans
            .entry(e.board.clone())
            .and_modify(|s| (s.from_ms, s.to_ms) = (s.from_ms.min(t), s.to_ms.max(t)))
            .or_insert(TimeSpan { from_ms: t, to_ms: t });
    }
    spans
}

/// Where an event goes besides its board.
enum Seasonal {
    /// Nowhere else: its board has no seasons, or its time is before the first.
    None,
    /// To this season (still to be checked against its grace and fence).
    In(Season),
    /// Refused for its season.
    Refused(RejectionCode, String),
}

/// The season of `e` under `r` (see the module docs, step 2).
fn seasonal(r: &Rules, e: &Event, reached_ms: i64, now_ms: i64, manual: &ManualViews) -> Seasonal {
    let Some(reset) = r.reset else { return Seasonal::None };
    if !reset.is_manual() {
        return season_of(r, e.time_ms).map_or(Seasonal::None, |season| {
            if season.start_ms > now_ms.saturating_add(FUTURE_TOLERANCE_MS) {
                let detail =
                    format!("season {} of board {} has not started; the event counts for all-time", season.id, e.board);
                Seasonal::Refused(RejectionCode::InvalidTs, detail)
            } else {
                Seasonal::In(season)
            }
        });
    }
    let t = manual_time(e, reached_ms);
    if t > now_ms.saturating_add(FUTURE_TOLERANCE_MS) {
        let detail = format!(
            "time {t} ms is more than a minute ahead of this worker's clock; the event counts for all-time on board {}",
            e.board
        );
        return Seasonal::Refused(RejectionCode::InvalidTs, detail);
    }
    match manual.get(&e.board).map(|view| view.place(t)) {
        None | Some(Placed::Before) => Seasonal::None,
        Some(Placed::Gone) => {
            let detail = format!("the season of board {} that held time {t} ms is closed and gone", e.board);
            Seasonal::Refused(RejectionCode::SeasonClosed, detail)
        }
        Some(Placed::In(season)) => Seasonal::In(season),
    }
}

/// A season a batch writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeasonTarget {
    /// The board.
    pub board: BoardId,
    /// The season.
    pub season: Season,
}

/// What the write stage does with a batch.
#[derive(Debug, Default)]
pub struct Prepared {
    /// One best update per (board or season, player).
    pub updates: Vec<ScoreUpdate>,
    /// Indices of the events behind `updates` ([`Prepared::event`]).
    pub kept: Vec<usize>,
    /// Indices of the events the cache skipped.
    pub skipped: Vec<usize>,
    /// The cache epoch the skips were decided under: a clear after it makes them suspect.
    pub cache_epoch: u64,
    /// Events out of their board's bounds, or out of their season, as dead letters.
    pub refused: Vec<Reject>,
    /// The season copies of events (indices from `batch.events.len()` on).
    pub seasonal: Vec<Event>,
    /// The seasons the batch writes to, each once.
    pub seasons: Vec<SeasonTarget>,
    /// Events of erased players stamped before their erasure, dropped.
    pub erased: u64,
}

/// Applies `rules` to `batch` at `time`, `closed` the seasons whose fence
/// this worker met (see the module docs); adds the rules of the seasons it
/// writes to `rules`. Events of the boards and players `barred` are set apart first.
///
/// A season's lateness is judged by each record's Kafka timestamp (when it
/// reached the broker, on the season clock), not by when ingest gets to it:
/// an event produced in time is never refused because ingest was behind at
/// the reset, and a replay long after takes the events the live workers
/// took, and only those (docs/contract.md#seasons). A recovery's replay
/// (`replay`) prepares only its boards' events, and judges a season not yet
/// started by the Kafka timestamp too.
pub fn prepare<S: BuildHasher>(
    batch: &Batch,
    rules: &mut BoardRules,
    barred: Barred<'_>,
    shared: &Shared,
    time: SeasonTime<'_>,
    closed: &HashSet<BoardId, S>,
    replay: Option<&Replay>,
) -> Prepared {
    let mut prepared = Prepared { cache_epoch: shared.cache.epoch(), ..Prepared::default() };
    let mut valid: Vec<usize> = Vec::with_capacity(batch.events.len());
    for (i, e) in batch.events.iter().enumerate() {
        if replay.is_some_and(|r| !r.covers(&e.board)) {
            continue;
        }
        // First of all: an erased player's earlier record goes nowhere, not even to the dead
        // letters. A record without a Kafka timestamp cannot be shown to follow an erasure.
        if barred.players.erased_before(&e.player, batch.accepted[e.record].timestamp_ms.unwrap_or(i64::MIN)) {
            prepared.erased += 1;
            continue;
        }
        if let Some(why) = barred.boards.get(e.board.as_str()) {
            prepared.refuse(batch, e, RejectionCode::Unwritable, why.clone());
            continue;
        }
        if barred.players.ban_on(&e.player, &e.board).is_some() {
            let detail = format!("player {} is banned from board {}", e.player, e.board);
            prepared.refuse(batch, e, RejectionCode::Banned, detail);
            continue;
        }
        let (reached_ms, now_ms) = arrival(batch, e, time.clock, time.now_ms, replay.is_some());
        let r = rules.get(&e.board).copied().unwrap_or_default();
        if !r.accepts(e.score) {
            let detail = format!("score {} is outside {}..={} on board {}", e.score, r.min_score, r.max_score, e.board);
            prepared.refuse(batch, e, RejectionCode::OutOfBounds, detail);
            continue;
        }
        valid.push(i);
        let season = match seasonal(&r, e, reached_ms, now_ms, time.manual) {
            Seasonal::None => continue,
            Seasonal::Refused(code, detail) => {
                prepared.refuse(batch, e, code, detail);
                continue;
            }
            Seasonal::In(season) => season,
        };
        let name = e.board.season(&season.id);
        if past_grace(&r, &season, reached_ms) || closed.contains(&name) {
            let detail = format!("season {} of board {} is closed; the event counts for all-time", season.id, e.board);
            prepared.refuse(batch, e, RejectionCode::SeasonClosed, detail);
        } else {
            if !rules.contains_key(&name) {
                rules.insert(name.clone(), r.for_season());
                prepared.seasons.push(SeasonTarget { board: e.board.clone(), season });
            }
            valid.push(batch.events.len() + prepared.seasonal.len());
            prepared.seasonal.push(Event { board: name, ..e.clone() });
        }
    }
    let (skipped, kept): (Vec<usize>, Vec<usize>) = valid.into_iter().partition(|&i| {
        let e = prepared.event(batch, i);
        let r = rules.get(&e.board).copied().unwrap_or_default();
        !r.operator.exactly_once() && shared.cache.can_skip(&e.board, &e.player, r.key(e.score), e.time_ms, &r)
    });
    prepared.skipped = skipped;
    prepared.updates = updates(batch, kept.iter().map(|&i| prepared.event(batch, i)), rules);
    prepared.kept = kept;
    prepared
}

impl Prepared {
    /// Event `i`: one of the batch's, or a season copy.
    pub fn event<'a>(&'a self, batch: &'a Batch, i: usize) -> &'a Event {
        batch.events.get(i).unwrap_or_else(|| &self.seasonal[i - batch.events.len()])
    }

    fn refuse(&mut self, batch: &Batch, e: &Event, code: RejectionCode, detail: String) {
        self.refused.push(Reject { record: batch.accepted[e.record].clone(), rejection: Rejection::new(code, detail) });
    }

    /// Counts what preparing did, once per batch (a batch prepared again after
    /// a change of rules is counted as it was finally written).
    pub fn count(&self, shared: &Shared) {
        shared.counters.add(Counter::Skipped, self.skipped.len() as u64);
        shared.counters.add(Counter::Coalesced, (self.kept.len() - self.updates.len()) as u64);
        shared.counters.add(Counter::Erased, self.erased);
    }
}

/// A player on a board or season: what one coalesced update is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BoardPlayer<'a> {
    /// The board or season (`<board>@<id>`).
    pub board: &'a BoardId,
    /// The player.
    pub player: &'a PlayerId,
}

/// Players on boards: the updates the store refused, or a season's fence did.
pub type BoardPlayers<'a> = HashSet<BoardPlayer<'a>>;

impl<'a> From<&'a Event> for BoardPlayer<'a> {
    fn from(e: &'a Event) -> Self {
        Self { board: &e.board, player: &e.player }
    }
}

impl<'a> From<&'a ScoreUpdate> for BoardPlayer<'a> {
    fn from(u: &'a ScoreUpdate) -> Self {
        Self { board: &u.board, player: &u.player }
    }
}

impl<'a> From<&'a Closed> for BoardPlayer<'a> {
    fn from(c: &'a Closed) -> Self {
        Self { board: &c.board, player: &c.player }
    }
}

impl Scored for Event {
    fn score(&self) -> u64 {
        self.score
    }

    fn time_ms(&self) -> u64 {
        self.time_ms
    }
}

/// The updates of `events`: on `best` boards one per (board, player), the
/// best by the board's rules ([`coalesce`]); on `last` and `sum` boards one
/// per event, in the order of the batch (each partition's records in offset
/// order, as the store's applied offsets need), each naming its record.
pub fn updates<'a>(batch: &Batch, events: impl IntoIterator<Item = &'a Event>, rules: &BoardRules) -> Vec<ScoreUpdate> {
    let (tallied, best): (Vec<&Event>, Vec<&Event>) =
        events.into_iter().partition(|e| rules.get(&e.board).is_some_and(|r| r.operator.exactly_once()));
    let mut updates = coalesce(best, rules);
    updates.extend(tallied.into_iter().map(|e| {
        let record = &batch.accepted[e.record];
        let source = Source {
            topic: batch.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            // Without a Kafka timestamp (a broker that keeps none), the event's own time.
            at_ms: record.timestamp_ms.unwrap_or_else(|| i64::try_from(e.time_ms).unwrap_or(i64::MAX)),
            id: e.id.as_deref().map(IdKey::of),
        };
        ScoreUpdate {
            board: e.board.clone(),
            player: e.player.clone(),
            score: e.score,
            time_ms: e.time_ms,
            meta: e.meta.clone(),
            source: Some(source),
        }
    }));
    updates
}

/// One update per (board, player): the best of their events by the board's rules.
pub fn coalesce<'a>(events: impl IntoIterator<Item = &'a Event>, rules: &BoardRules) -> Vec<ScoreUpdate> {
    best_per_key(events, BoardPlayer::from, |key| rules.get(key.board).copied().unwrap_or_default())
        .into_values()
        .map(|e| ScoreUpdate {
            board: e.board.clone(),
            player: e.player.clone(),
            score: e.score,
            time_ms: e.time_ms,
            meta: e.meta.clone(),
            source: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use leaderboard_semantics::{Order, Ties};
    use leaderboard_store::marker::registry::{Ban, BanScope};

    use super::*;
    use crate::record::OwnedRecord;

    fn event(board: &str, player: &str, score: u64, time_ms: u64, record: usize) -> Event {
        Event {
            board: BoardId::new(board).expect("board"),
            player: PlayerId::new(player).expect("player"),
            score,
            time_ms,
            record,
            meta: None,
            id: None,
        }
    }

    fn batch(events: Vec<Event>) -> Batch {
        let accepted = (0..events.len())
            .zip(0i64..)
            .map(|(_, offset)| OwnedRecord {
                partition: 0,
                offset,
                timestamp_ms: None,
                key: None,
                value: None,
                refused_signature: None,
                unverifiable: false,
            })
            .collect();
        Batch { events, accepted, ..Batch::default() }
    }

    #[test]
    fn the_best_per_key_keeps_the_first_of_equals_unless_ties_go_to_the_earliest() {
        let events = [event("b", "p", 5, 20, 0), event("b", "p", 5, 10, 1), event("b", "p", 4, 1, 2)];
        let best = |r: Rules| {
            let best = best_per_key(&events, |e| &e.player, |_| r);
            best.into_values().map(|e| e.record).collect::<Vec<_>>()
        };
        assert_eq!(best(Rules::default()), [0], "shared ties: the first of equal scores");
        assert_eq!(best(Rules { ties: Ties::Earliest, ..Rules::default() }), [1], "earliest: the earlier of equals");
        assert_eq!(best(Rules { order: Order::Asc, ..Rules::default() }), [2], "asc: the lowest score");
    }

    #[test]
    fn bounds_skips_and_coalescing_follow_each_boards_rules() {
        let shared = Shared::new(100, Duration::from_secs(60));
        let (up, down) = (BoardId::new("up").expect("board"), BoardId::new("down").expect("board"));
        let rules: BoardRules = [
            (up.clone(), Rules { min_score: 1, max_score: 100, ..Rules::default() }),
            (down.clone(), Rules { order: Order::Asc, ties: Ties::Earliest, ..Rules::default() }),
        ]
        .into();
        shared.cache.record(&up, &PlayerId::new("cached").expect("player"), 50, 0, Order::Desc);
        let b = batch(vec![
            event("up", "a", 5, 10, 0),
            event("up", "a", 9, 20, 1),
            event("up", "a", 500, 30, 2), // out of bounds: never the best
            event("up", "cached", 40, 0, 3),
            event("down", "t", 70, 5, 4),
            event("down", "t", 60, 9, 5),
            event("down", "t", 60, 3, 6), // lower is better, and then earlier
            event("other", "x", 1, 0, 7), // no rules: the defaults
            event("stuck", "y", 3, 0, 8), // a board this worker cannot use: a dead letter, alone
        ]);
        let mut rules = rules;
        let unwritable: Unwritable = [("stuck".to_string(), "stored with another layout".to_string())].into();
        let time = SeasonTime { clock: &Clock::System, now_ms: 0, manual: &ManualViews::new() };
        let barred = Barred { boards: &unwritable, players: &Marks::default() };
        let prepared = prepare(&b, &mut rules, barred, &shared, time, &HashSet::new(), None);
        let mut updates: Vec<(String, String, u64, u64)> =
            prepared.updates.iter().map(|u| (u.board.to_string(), u.player.to_string(), u.score, u.time_ms)).collect();
        updates.sort();
        let own = |b: &str, p: &str, s: u64, t: u64| (b.to_string(), p.to_string(), s, t);
        assert_eq!(updates, [own("down", "t", 60, 3), own("other", "x", 1, 0), own("up", "a", 9, 20)]);
        assert_eq!(prepared.skipped, [3]);
        assert_eq!(prepared.kept, [0, 1, 4, 5, 6, 7], "out of bounds and skipped events are not behind an update");
        let dead: Vec<(i64, &str)> =
            prepared.refused.iter().map(|r| (r.record.offset, r.rejection.code.as_str())).collect();
        assert_eq!(dead, [(2, "out_of_bounds"), (8, "unwritable")]);
    }

    /// An erased player's earlier record goes nowhere, whatever else is wrong with it: not even
    /// to the dead letters of a board this worker cannot use. A banned player's is a dead letter.
    #[test]
    fn an_erased_players_earlier_record_is_dropped_before_any_dead_letter() {
        let shared = Shared::new(100, Duration::from_secs(60));
        let (gone, cheat) = (PlayerId::new("gone").expect("player"), PlayerId::new("cheat").expect("player"));
        let ban = Ban { boards: BanScope::ALL, closed_seasons: false, reason: String::new(), at_ms: 0 };
        let marks = Marks { erased: [(gone, 1_000)].into(), bans: [(cheat, ban)].into(), ..Marks::default() };
        // The records carry no Kafka timestamp: none can be shown to follow the erasure.
        let b = batch(vec![
            event("stuck", "gone", 3, 0, 0),
            event("up", "gone", 4, 0, 1),
            event("up", "cheat", 5, 0, 2),
            event("up", "a", 6, 0, 3),
        ]);
        let unwritable: Unwritable = [("stuck".to_string(), "stored with another layout".to_string())].into();
        let time = SeasonTime { clock: &Clock::System, now_ms: 0, manual: &ManualViews::new() };
        let barred = Barred { boards: &unwritable, players: &marks };
        let prepared = prepare(&b, &mut BoardRules::new(), barred, &shared, time, &HashSet::new(), None);
        assert_eq!(prepared.erased, 2);
        let dead: Vec<(i64, &str)> =
            prepared.refused.iter().map(|r| (r.record.offset, r.rejection.code.as_str())).collect();
        assert_eq!(dead, [(2, "banned")]);
        assert_eq!(prepared.kept, [3]);
    }
}
