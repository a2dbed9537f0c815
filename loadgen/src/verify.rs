//! The end check: the api's answers against loadgen's own oracle.
//!
//! Run after ingest caught up (consumer lag 0). Before comparing a board, it
//! waits (range layout) until the precomputed shard sizes stopped moving and
//! until the api's cached top-100 was read after that moment, so the
//! comparison is exact rather than approximate. Every board's total and top
//! 100 are compared, and a random sample of players, each on their board,
//! and every player erased or banned during the run ([`crate::marks`]): a
//! player the oracle has no score for must be missing (404, and listed
//! `missing` by the lookup route). With `--meta`, each entry's metadata is
//! compared too: it must be the metadata of the event that set the score
//! ([`crate::meta`]).

use std::cmp::Reverse;
use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt};
use leaderboard_semantics::Ties;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::boards::BoardSet;
use crate::meta::EventMeta;
use crate::population::{Scoring, player_id};

/// Longest wait for one board's answers to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most verification requests in flight.
const CONCURRENCY: usize = 32;

/// The players as the oracle knows them at the end of a run.
#[derive(Debug, Clone, Copy)]
pub struct Players<'a> {
    /// Each player's best, as a ranking key (higher is better).
    pub best: &'a [u64],
    /// `earliest` boards: when each player reached their best.
    pub reached: Option<&'a [u64]>,
    /// How keys become the scores the api shows.
    pub scoring: Scoring,
    /// The metadata events carried (`--meta`): each entry must show the one of its key.
    pub meta: Option<EventMeta>,
    /// A season's players (most did not play in it): the sample is drawn among
    /// those on the board; else among every player.
    pub sparse: bool,
    /// Players erased or banned during the run: each is checked besides the sample.
    pub marked: &'a [usize],
}

impl Players<'_> {
    /// Whether player `i` is on the board: key 0 means not (never played in
    /// a season, or erased without a new start, or banned).
    fn present(&self, i: usize) -> bool {
        self.best[i] > 0
    }

    /// When player `i` reached their best (0 when times are not kept).
    fn time(&self, i: usize) -> u64 {
        self.reached.map_or(0, |r| r[i])
    }

    /// The metadata player `i`'s entry must show, as JSON (`None`: none).
    fn meta(&self, i: usize) -> Option<serde_json::Value> {
        meta_json(self.meta, i, self.best[i])
    }

    /// Where player `i` sorts on an `earliest` board: key descending, time, then id (index).
    fn place(&self, i: usize) -> Place {
        (Reverse(self.best[i]), self.time(i), i)
    }
}

/// A player's place in board order on an `earliest` board: (key descending, time, index).
type Place = (Reverse<u64>, u64, usize);

/// The metadata of player `i`'s event of key `key`, as JSON, when events carry some.
fn meta_json(meta: Option<EventMeta>, i: usize, key: u64) -> Option<serde_json::Value> {
    meta.map(|m| serde_json::from_str(m.of(i, key).as_str()).expect("loadgen's metadata is JSON"))
}

/// One row of a top 100, expected or seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopRow {
    /// The rank.
    pub rank: u64,
    /// The player.
    pub player: String,
    /// The score, as the api shows it.
    pub score: u64,
    /// The entry's metadata (`None`: absent).
    pub meta: Option<serde_json::Value>,
}

/// The probe player's index in [`Place`]s: its id (`probe-...`) sorts after every `p-...`.
const PROBE_INDEX: usize = usize::MAX;

/// The expected state of one board, from the oracle.
#[derive(Debug)]
pub struct Expected {
    ties: Ties,
    /// Every ranking key, ascending: players strictly ahead on `shared` boards.
    sorted: Vec<u64>,
    /// `earliest` boards only: every player's place, in board order.
    places: Vec<Place>,
    /// The first 100 rows, scores as the api shows them.
    pub top: Vec<TopRow>,
}

impl Expected {
    /// One board: its players as `(index, key, time)`, plus extra players (the
    /// probe, with its key, never with metadata), ranked by `ties`; scores
    /// shown through `scoring`, metadata by `meta`.
    pub fn new(
        players: impl IntoIterator<Item = (usize, u64, u64)>,
        extra: &[(String, u64)],
        ties: Ties,
        scoring: Scoring,
        meta: Option<EventMeta>,
    ) -> Self {
        let earliest = ties == Ties::Earliest;
        let mut places: Vec<Place> = players
            .into_iter()
            .map(|(i, key, time)| (Reverse(key), if earliest { time } else { 0 }, i))
            .chain(extra.iter().map(|(_, key)| (Reverse(*key), u64::MAX, PROBE_INDEX)))
            .collect();
        let mut sorted: Vec<u64> = places.iter().map(|p| p.0.0).collect();
        sorted.sort_unstable();
        // Board order: key descending, then (earliest) time, then id; ids sort like indexes.
        let k = places.len().min(101);
        if places.len() > k {
            places.select_nth_unstable(k);
        }
        let mut first: Vec<Place> = places[..k].to_vec();
        first.sort_unstable();
        let name = |i: usize| {
            if i == PROBE_INDEX { extra.first().map(|(p, _)| p.clone()).unwrap_or_default() } else { player_id(i) }
        };
        let mut expected = Self { ties, sorted, places: Vec::new(), top: Vec::new() };
        expected.top = first
            .iter()
            .take(100)
            .enumerate()
            .map(|(pos, &(Reverse(key), _, i))| TopRow {
                rank: if earliest { pos as u64 + 1 } else { expected.rank(key) },
                player: name(i),
                score: scoring.score(key),
                meta: if i == PROBE_INDEX { None } else { meta_json(meta, i, key) },
            })
            .collect();
        if earliest {
            places.sort_unstable();
            expected.places = places;
        }
        expected
    }

    /// Every board of `boards`, from every player's best and the probe
    /// player's last key on each board (0: never published there).
    pub fn for_boards(
        boards: &BoardSet,
        players: &Players<'_>,
        ties: Ties,
        probe: Option<(&str, &[u64])>,
    ) -> Vec<Self> {
        (0..boards.len())
            .map(|k| {
                let extra: Vec<(String, u64)> = probe
                    .and_then(|(player, keys)| keys.get(k).filter(|&&s| s > 0).map(|&s| (player.to_string(), s)))
                    .into_iter()
                    .collect();
                let on_board = boards
                    .players_on(k, players.best.len())
                    .filter(|&i| players.present(i))
                    .map(|i| (i, players.best[i], players.time(i)));
                Self::new(on_board, &extra, ties, players.scoring, players.meta)
            })
            .collect()
    }

    /// 1 + players with a strictly better key.
    pub fn rank(&self, key: u64) -> u64 {
        (self.sorted.len() - self.sorted.partition_point(|&s| s <= key)) as u64 + 1
    }

    /// The rank of player `i`: [`Expected::rank`] on `shared` boards, the
    /// position in board order + 1 on `earliest` boards.
    fn rank_of(&self, players: &Players<'_>, i: usize) -> u64 {
        match self.ties {
            Ties::Shared => self.rank(players.best[i]),
            Ties::Earliest => self.places.partition_point(|p| *p < players.place(i)) as u64 + 1,
        }
    }

    /// Players on the board.
    pub fn total(&self) -> u64 {
        self.sorted.len() as u64
    }
}

/// Which standings a verification reads: a board's all-time standings, or one season's.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The season (`all` for the all-time standings of a board with a reset); `None`: no
    /// `season` parameter (boards without a reset).
    pub season: Option<String>,
    /// A season's end: an answer dated by it is a closed season's, final whatever the time now.
    pub end: Option<SystemTime>,
}

impl Scope {
    /// `url` with this scope's `season` parameter.
    fn url(&self, url: String) -> String {
        match &self.season {
            Some(season) => format!("{url}{}season={season}", if url.contains('?') { '&' } else { '?' }),
            None => url,
        }
    }
}

/// The comparison of one board.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BoardCheck {
    /// The board.
    pub board: String,
    /// Players on the board, expected and seen.
    pub total: (u64, u64),
    /// Top rows compared.
    pub top_rows: u64,
    /// Sampled players of this board compared.
    pub sampled: u64,
    /// Differences found on this board.
    pub mismatches: u64,
}

/// The outcome of the comparison, over every board.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    /// Players whose score and rank were compared.
    pub sampled: u64,
    /// Top rows compared.
    pub top_rows: u64,
    /// Sampled players compared a second time through the lookup route, in lists of up to 100.
    pub looked_up: u64,
    /// Players erased or banned during the run, compared besides the sample.
    pub marked: u64,
    /// Players on all boards, expected and seen.
    pub total: (u64, u64),
    /// Differences found (must be 0).
    pub mismatches: u64,
    /// The first few differences, for humans.
    pub examples: Vec<String>,
    /// Each board's part.
    pub boards: Vec<BoardCheck>,
}

impl Verification {
    /// Counts a difference on `board` (the first few are kept as examples).
    pub(crate) fn mismatch(&mut self, board: usize, what: &str) {
        self.mismatches += 1;
        self.boards[board].mismatches += 1;
        if self.examples.len() < 10 {
            self.examples.push(format!("{}: {what}", self.boards[board].board));
        }
    }
}

/// An answer's status and JSON body (`null` when the body is not JSON).
type Reply = anyhow::Result<(u16, serde_json::Value)>;

async fn get_json(client: &reqwest::Client, url: &str) -> Reply {
    reply(client.get(url)).await
}

async fn reply(request: reqwest::RequestBuilder) -> Reply {
    let r = request.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(serde_json::Value::Null)))
}

fn as_of(v: &serde_json::Value) -> Option<SystemTime> {
    time_of_rfc3339(v["as_of"].as_str()?)
}

/// An RFC 3339 time.
pub fn time_of_rfc3339(text: &str) -> Option<SystemTime> {
    Some(SystemTime::from(OffsetDateTime::parse(text, &Rfc3339).ok()?))
}

/// Polls until `ready` holds for the JSON at `url`, at most `timeout`.
async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok((200, v)) = get_json(client, url).await
            && ready(&v)
        {
            return Ok(v);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The board's top 100 once it reflects everything written before `quiescent`
/// and (range layout) its precomputed shard sizes stopped moving.
async fn settled_top(
    client: &reqwest::Client,
    api: &str,
    board: &str,
    scope: &Scope,
    quiescent: SystemTime,
) -> anyhow::Result<serde_json::Value> {
    let board_url = scope.url(format!("{api}/v1/boards/{board}"));
    wait_for(client, &board_url, SETTLE_TIMEOUT, |v| v["rank_error_bound"].as_u64().unwrap_or(0) == 0).await?;
    let top_url = scope.url(format!("{api}/v1/boards/{board}/top?limit=100"));
    // A closed season is final: its answers are dated by its end, whatever the time now.
    let settled = |v: &serde_json::Value| as_of(v).is_some_and(|t| t >= quiescent || Some(t) == scope.end);
    wait_for(client, &top_url, SETTLE_TIMEOUT, settled).await
}

fn top_rows(top: &serde_json::Value) -> Vec<TopRow> {
    top["entries"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|e| TopRow {
                    rank: e["rank"].as_u64().unwrap_or(0),
                    player: e["player"].as_str().unwrap_or("").to_string(),
                    score: e["score"].as_u64().unwrap_or(0),
                    meta: e.get("meta").cloned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Compares every board's total and top 100, and `sample` random players
/// (each on their own board), with the oracle, in `scope`. Differences are
/// listed in board order, then sample order, so a report reads the same on every run.
///
/// # Errors
/// When the api never settles (its data never catches up with the quiescent moment).
#[allow(clippy::too_many_arguments, reason = "two call sites; a struct would only rename the arguments")]
pub async fn verify(
    client: &reqwest::Client,
    api: &str,
    boards: &BoardSet,
    expected: &[Expected],
    players: &Players<'_>,
    sample: usize,
    seed: u64,
    scope: &Scope,
) -> anyhow::Result<Verification> {
    let best = players.best;
    anyhow::ensure!(expected.len() == boards.len(), "one expectation per board");
    let quiescent = SystemTime::now();
    let mut out = Verification {
        boards: boards.ids().iter().map(|b| BoardCheck { board: b.to_string(), ..BoardCheck::default() }).collect(),
        ..Verification::default()
    };
    let tops: Vec<(usize, anyhow::Result<serde_json::Value>)> = stream::iter(boards.ids().iter().enumerate())
        .map(|(k, board)| async move { (k, settled_top(client, api, board.as_str(), scope, quiescent).await) })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    for (k, top) in tops {
        let top = top?;
        let want = &expected[k];
        let total = (want.total(), top["total"].as_u64().unwrap_or(0));
        out.boards[k].total = total;
        out.total = (out.total.0 + total.0, out.total.1 + total.1);
        if total.0 != total.1 {
            out.mismatch(k, &format!("total: expected {}, api says {}", total.0, total.1));
        }
        let seen = top_rows(&top);
        out.boards[k].top_rows = want.top.len() as u64;
        out.top_rows += want.top.len() as u64;
        for (i, row) in want.top.iter().enumerate() {
            if seen.get(i) != Some(row) {
                out.mismatch(k, &format!("top row {}: expected {row:?}, api has {:?}", i + 1, seen.get(i)));
            }
        }
    }

    let mut rng = SmallRng::seed_from_u64(seed ^ 0x00c0_ffee);
    let present: Vec<usize> =
        if players.sparse { (0..best.len()).filter(|&i| best[i] > 0).collect() } else { Vec::new() };
    let pick = |rng: &mut SmallRng| {
        if players.sparse { present[rng.random_range(0..present.len())] } else { rng.random_range(0..best.len()) }
    };
    let population = if players.sparse { present.len() } else { best.len() };
    let picks: Vec<usize> = (0..sample.min(population)).map(|_| pick(&mut rng)).collect();
    let checked: Vec<(usize, bool)> =
        picks.iter().map(|&i| (i, false)).chain(players.marked.iter().map(|&i| (i, true))).collect();
    let results: Vec<(usize, bool, Reply)> = stream::iter(checked)
        .map(|(i, marked)| async move {
            let url = scope.url(format!("{api}/v1/boards/{}/players/{}", boards.of(i), player_id(i)));
            (i, marked, get_json(client, &url).await)
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let listed: Vec<usize> = picks.iter().chain(players.marked).copied().collect();
    lookups(client, api, boards, expected, players, &listed, scope, &mut out).await;
    for (i, marked, result) in results {
        let k = boards.position_of(i);
        if marked {
            out.marked += 1;
        } else {
            out.sampled += 1;
            out.boards[k].sampled += 1;
        }
        if let Some(difference) = compare_player(&expected[k], players, i, result) {
            out.mismatch(k, &difference);
        }
    }
    Ok(out)
}

/// What is wrong with the player route's answer about player `i`, if anything:
/// their score and rank, or a 404 when the oracle has no score for them.
fn compare_player(expected: &Expected, players: &Players<'_>, i: usize, result: Reply) -> Option<String> {
    let id = player_id(i);
    if !players.present(i) {
        return match result {
            Ok((404, v)) if matches!(v["error"]["code"].as_str(), Some("player_not_found" | "board_not_found")) => None,
            Ok((status, v)) => Some(format!("{id}: expected no score (404), api answered {status} {v}")),
            Err(e) => Some(format!("{id}: request failed: {e}")),
        };
    }
    let (score, rank, meta) = (players.scoring.score(players.best[i]), expected.rank_of(players, i), players.meta(i));
    match result {
        Ok((200, v))
            if v["score"].as_u64() == Some(score)
                && v["rank"].as_u64() == Some(rank)
                && v.get("meta") == meta.as_ref() =>
        {
            None
        }
        Ok((status, v)) => {
            let meta = meta.map_or_else(|| "none".to_string(), |m| m.to_string());
            Some(format!("{id}: expected score {score} rank {rank} meta {meta}, api answered {status} {v}"))
        }
        Err(e) => Some(format!("{id}: request failed: {e}")),
    }
}

/// The sampled players again, through `POST /v1/boards/{board}/players:lookup` in
/// lists of up to 100 per board: each listed player's score, rank and place in
/// the list (1 + listed players with a strictly better score; on `earliest`
/// boards, 1 + listed players ahead in board order) against the oracle; a
/// player the oracle has no score for must be listed `missing`.
#[allow(clippy::too_many_arguments, reason = "one call site; a struct would only rename the arguments")]
async fn lookups(
    client: &reqwest::Client,
    api: &str,
    boards: &BoardSet,
    expected: &[Expected],
    players: &Players<'_>,
    picks: &[usize],
    scope: &Scope,
    out: &mut Verification,
) {
    let mut per_board: Vec<Vec<usize>> = vec![Vec::new(); boards.len()];
    for &i in picks {
        let list = &mut per_board[boards.position_of(i)];
        if !list.contains(&i) {
            list.push(i);
        }
    }
    let lists: Vec<(usize, &[usize])> =
        per_board.iter().enumerate().flat_map(|(k, players)| players.chunks(100).map(move |c| (k, c))).collect();
    let replies: Vec<(usize, &[usize], Reply)> = stream::iter(lists)
        .map(|(k, list)| async move {
            let url = scope.url(format!("{api}/v1/boards/{}/players:lookup", boards.ids()[k]));
            let body = serde_json::json!({ "players": list.iter().map(|&i| player_id(i)).collect::<Vec<_>>() });
            (k, list, reply(client.post(&url).json(&body)).await)
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    for (k, list, reply) in replies {
        out.looked_up += list.len() as u64;
        let v = match reply {
            Ok((200, v)) => v,
            // A board (a season) without players: right when the oracle has none of them there.
            Ok((404, v)) if v["error"]["code"] == "board_not_found" && expected[k].total() == 0 => continue,
            Ok((status, v)) => {
                out.mismatch(k, &format!("lookup of {} players: {status} {v}", list.len()));
                continue;
            }
            Err(e) => {
                out.mismatch(k, &format!("lookup of {} players failed: {e}", list.len()));
                continue;
            }
        };
        let entries = v["entries"].as_array().cloned().unwrap_or_default();
        let present: Vec<usize> = list.iter().copied().filter(|&i| players.present(i)).collect();
        if entries.len() != present.len() {
            out.mismatch(k, &format!("lookup listed {} of {} players: {v}", entries.len(), present.len()));
        }
        let missing: Vec<&str> =
            v["missing"].as_array().map(|m| m.iter().filter_map(|p| p.as_str()).collect()).unwrap_or_default();
        for &i in list.iter().filter(|&&i| !players.present(i)) {
            if !missing.contains(&player_id(i).as_str()) {
                out.mismatch(k, &format!("lookup {}: expected it listed missing, api: {v}", player_id(i)));
            }
        }
        for &i in &present {
            let ahead_in_list = match expected[k].ties {
                Ties::Shared => present.iter().filter(|&&j| players.best[j] > players.best[i]).count(),
                Ties::Earliest => present.iter().filter(|&&j| players.place(j) < players.place(i)).count(),
            };
            let want = (
                players.scoring.score(players.best[i]),
                expected[k].rank_of(players, i),
                1 + ahead_in_list as u64,
                players.meta(i),
            );
            let got = entries.iter().find(|e| e["player"].as_str() == Some(player_id(i).as_str())).map(|e| {
                let n = |f: &str| e[f].as_u64().unwrap_or(0);
                (n("score"), n("rank"), n("list_rank"), e.get("meta").cloned())
            });
            if got.as_ref() != Some(&want) {
                out.mismatch(
                    k,
                    &format!("lookup {}: expected (score, rank, list_rank, meta) {want:?}, api {got:?}", player_id(i)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use leaderboard_semantics::Order;

    use super::*;

    const DESC: Scoring = Scoring { order: Order::Desc, operator: leaderboard_semantics::Operator::Best };

    #[test]
    fn earliest_ranks_are_places_and_asc_scores_are_lap_times() {
        // Keys 9, 7, 7, 7 reached at times 5, 3, 3, 1: ties go to the earliest, then the lower id.
        let best = [9, 7, 7, 7];
        let reached = [5, 3, 3, 1];
        let asc = Scoring { order: Order::Asc, operator: leaderboard_semantics::Operator::Best };
        let players =
            Players { best: &best, reached: Some(&reached), scoring: asc, meta: None, sparse: false, marked: &[] };
        let e = Expected::new((0..4).map(|i| (i, best[i], reached[i])), &[], Ties::Earliest, asc, None);
        let top: Vec<(u64, &str, u64)> = e.top.iter().map(|r| (r.rank, r.player.as_str(), r.score)).collect();
        let lap = |key: u64| Scoring::ASC_BASE - key;
        assert_eq!(
            top,
            [
                (1, "p-00000000", lap(9)),
                (2, "p-00000003", lap(7)),
                (3, "p-00000001", lap(7)),
                (4, "p-00000002", lap(7))
            ]
        );
        assert_eq!((0..4).map(|i| e.rank_of(&players, i)).collect::<Vec<_>>(), [1, 3, 4, 2]);
    }

    #[test]
    fn expected_ranks_and_top_follow_the_contract() {
        // Players 0..5 with ties; an extra probe player at the bottom.
        let best = [5, 9, 7, 7, 1];
        let e = Expected::new(
            best.into_iter().enumerate().map(|(i, s)| (i, s, 0)),
            &[("probe-1".into(), 1)],
            Ties::Shared,
            DESC,
            None,
        );
        assert_eq!(e.total(), 6);
        assert_eq!((e.rank(9), e.rank(7), e.rank(5), e.rank(1)), (1, 2, 4, 5));
        let top: Vec<(u64, &str, u64)> = e.top.iter().map(|r| (r.rank, r.player.as_str(), r.score)).collect();
        assert_eq!(
            top,
            [
                (1, "p-00000001", 9),
                (2, "p-00000002", 7),
                (2, "p-00000003", 7),
                (4, "p-00000000", 5),
                (5, "p-00000004", 1),
                (5, "probe-1", 1)
            ]
        );
    }

    #[test]
    fn top_is_cut_at_100_with_ties_by_id() {
        let meta = EventMeta { seed: 3, size: crate::meta::MetaSize::Mix };
        let e = Expected::new((0..1000).map(|i| (i, 5000 - (i as u64 / 3), 0)), &[], Ties::Shared, DESC, Some(meta));
        assert_eq!(e.top.len(), 100);
        let row = |rank, player: &str, score| TopRow {
            rank,
            player: player.into(),
            score,
            meta: meta_json(Some(meta), crate::population::player_index(player).expect("index"), score),
        };
        assert_eq!(e.top[0], row(1, "p-00000000", 5000));
        assert_eq!(e.top[99], row(100, "p-00000099", 4967));
        assert_eq!(e.top[98].rank, 97, "tie of three shares rank 97");
    }

    #[test]
    fn each_board_expects_only_its_players_and_its_probe_markers() {
        let boards = BoardSet::new("b", 2, 5).expect("boards");
        let best = [10, 20, 30, 40, 50];
        let players = Players { best: &best, reached: None, scoring: DESC, meta: None, sparse: false, marked: &[] };
        let e = Expected::for_boards(&boards, &players, Ties::Shared, Some(("probe-1", &[0, 3])));
        // Board 1 holds players 0, 2, 4; board 2 holds 1, 3 and the probe (score 3).
        assert_eq!((e[0].total(), e[1].total()), (3, 3));
        let players = |x: &Expected| x.top.iter().map(|r| r.player.clone()).collect::<Vec<_>>();
        assert_eq!(players(&e[0]), ["p-00000004", "p-00000002", "p-00000000"]);
        assert_eq!(players(&e[1]), ["p-00000003", "p-00000001", "probe-1"]);
        assert_eq!((e[0].rank(30), e[1].rank(20)), (2, 2));
    }
}
