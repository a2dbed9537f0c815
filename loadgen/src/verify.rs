//! The end check: the api's answers against loadgen's own oracle.
//!
//! Run after ingest caught up (consumer lag 0). Before comparing a board, it
//! waits (range layout) until the precomputed shard sizes stopped moving and
//! until the api's cached top-100 was read after that moment, so the
//! comparison is exact rather than approximate. Every board's total and top
//! 100 are compared, and a random sample of players, each on their board.

use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::boards::BoardSet;
use crate::population::player_id;

/// Longest wait for one board's answers to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Most verification requests in flight.
const CONCURRENCY: usize = 32;

/// The expected state of one board, from the oracle.
#[derive(Debug)]
pub struct Expected {
    sorted: Vec<u64>,
    /// `(rank, player, score)` of the first 100 rows.
    pub top: Vec<(u64, String, u64)>,
}

impl Expected {
    /// One board: its players as `(index, best score)`, plus extra players (the probe).
    pub fn new(players: impl IntoIterator<Item = (usize, u64)>, extra: &[(String, u64)]) -> Self {
        // The first 100 players by (score desc, id asc); ids sort like indexes.
        let mut order: Vec<(u64, usize)> = players.into_iter().map(|(i, s)| (s, i)).collect();
        let mut sorted: Vec<u64> = order.iter().map(|(s, _)| *s).chain(extra.iter().map(|(_, s)| *s)).collect();
        sorted.sort_unstable();
        let k = order.len().min(101);
        let cmp = |a: &(u64, usize), b: &(u64, usize)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if order.len() > k {
            order.select_nth_unstable_by(k, cmp);
            order.truncate(k);
        }
        let mut rows: Vec<(u64, String)> = order
            .into_iter()
            .map(|(s, i)| (s, player_id(i)))
            .chain(extra.iter().map(|(p, s)| (*s, p.clone())))
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        rows.truncate(100);
        let mut expected = Self { sorted, top: Vec::new() };
        expected.top = rows.into_iter().map(|(s, p)| (expected.rank(s), p, s)).collect();
        expected
    }

    /// Every board of `boards`, from every player's best score and the probe
    /// player's last score on each board (0: never published there).
    pub fn for_boards(boards: &BoardSet, best: &[u64], probe: Option<(&str, &[u64])>) -> Vec<Self> {
        (0..boards.len())
            .map(|k| {
                let extra: Vec<(String, u64)> = probe
                    .and_then(|(player, scores)| scores.get(k).filter(|&&s| s > 0).map(|&s| (player.to_string(), s)))
                    .into_iter()
                    .collect();
                Self::new(boards.players_on(k, best.len()).map(|i| (i, best[i])), &extra)
            })
            .collect()
    }

    /// 1 + players with a strictly greater score.
    pub fn rank(&self, score: u64) -> u64 {
        (self.sorted.len() - self.sorted.partition_point(|&s| s <= score)) as u64 + 1
    }

    /// Players on the board.
    pub fn total(&self) -> u64 {
        self.sorted.len() as u64
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
    fn mismatch(&mut self, board: usize, what: &str) {
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
    let t = OffsetDateTime::parse(v["as_of"].as_str()?, &Rfc3339).ok()?;
    Some(SystemTime::from(t))
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
    quiescent: SystemTime,
) -> anyhow::Result<serde_json::Value> {
    let board_url = format!("{api}/v1/boards/{board}");
    wait_for(client, &board_url, SETTLE_TIMEOUT, |v| v["rank_error_bound"].as_u64().unwrap_or(0) == 0).await?;
    let top_url = format!("{api}/v1/boards/{board}/top?limit=100");
    wait_for(client, &top_url, SETTLE_TIMEOUT, |v| as_of(v).is_some_and(|t| t >= quiescent)).await
}

fn top_rows(top: &serde_json::Value) -> Vec<(u64, String, u64)> {
    top["entries"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|e| {
                    (
                        e["rank"].as_u64().unwrap_or(0),
                        e["player"].as_str().unwrap_or("").to_string(),
                        e["score"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Compares every board's total and top 100, and `sample` random players
/// (each on their own board), with the oracle. Differences are listed in
/// board order, then sample order, so a report reads the same on every run.
///
/// # Errors
/// When the api never settles (its data never catches up with the quiescent moment).
pub async fn verify(
    client: &reqwest::Client,
    api: &str,
    boards: &BoardSet,
    expected: &[Expected],
    best: &[u64],
    sample: usize,
    seed: u64,
) -> anyhow::Result<Verification> {
    anyhow::ensure!(expected.len() == boards.len(), "one expectation per board");
    let quiescent = SystemTime::now();
    let mut out = Verification {
        boards: boards.ids().iter().map(|b| BoardCheck { board: b.to_string(), ..BoardCheck::default() }).collect(),
        ..Verification::default()
    };
    let tops: Vec<(usize, anyhow::Result<serde_json::Value>)> = stream::iter(boards.ids().iter().enumerate())
        .map(|(k, board)| async move { (k, settled_top(client, api, board.as_str(), quiescent).await) })
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
    let picks: Vec<usize> = (0..sample.min(best.len())).map(|_| rng.random_range(0..best.len())).collect();
    let results: Vec<(usize, Reply)> = stream::iter(picks.clone())
        .map(|i| async move {
            let url = format!("{api}/v1/boards/{}/players/{}", boards.of(i), player_id(i));
            (i, get_json(client, &url).await)
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    lookups(client, api, boards, expected, best, &picks, &mut out).await;
    for (i, result) in results {
        let k = boards.position_of(i);
        out.sampled += 1;
        out.boards[k].sampled += 1;
        let (score, rank) = (best[i], expected[k].rank(best[i]));
        match result {
            Ok((200, v)) if v["score"].as_u64() == Some(score) && v["rank"].as_u64() == Some(rank) => {}
            Ok((status, v)) => {
                out.mismatch(
                    k,
                    &format!("{}: expected score {score} rank {rank}, api answered {status} {v}", player_id(i)),
                );
            }
            Err(e) => out.mismatch(k, &format!("{}: request failed: {e}", player_id(i))),
        }
    }
    Ok(out)
}

/// The sampled players again, through `POST /v1/boards/{board}/players:lookup` in
/// lists of up to 100 per board: each listed player's score, rank and place in
/// the list (1 + listed players with a strictly greater score) against the oracle.
async fn lookups(
    client: &reqwest::Client,
    api: &str,
    boards: &BoardSet,
    expected: &[Expected],
    best: &[u64],
    picks: &[usize],
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
            let url = format!("{api}/v1/boards/{}/players:lookup", boards.ids()[k]);
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
        if entries.len() != list.len() {
            out.mismatch(k, &format!("lookup listed {} of {} players: {v}", entries.len(), list.len()));
        }
        for &i in list {
            let score = best[i];
            let want = (score, expected[k].rank(score), 1 + list.iter().filter(|&&j| best[j] > score).count() as u64);
            let got = entries.iter().find(|e| e["player"].as_str() == Some(player_id(i).as_str())).map(|e| {
                let n = |f: &str| e[f].as_u64().unwrap_or(0);
                (n("score"), n("rank"), n("list_rank"))
            });
            if got != Some(want) {
                out.mismatch(
                    k,
                    &format!("lookup {}: expected (score, rank, list_rank) {want:?}, api {got:?}", player_id(i)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_ranks_and_top_follow_the_contract() {
        // Players 0..5 with ties; an extra probe player at the bottom.
        let best = [5, 9, 7, 7, 1];
        let e = Expected::new(best.into_iter().enumerate(), &[("probe-1".into(), 1)]);
        assert_eq!(e.total(), 6);
        assert_eq!((e.rank(9), e.rank(7), e.rank(5), e.rank(1)), (1, 2, 4, 5));
        let top: Vec<(u64, &str, u64)> = e.top.iter().map(|(r, p, s)| (*r, p.as_str(), *s)).collect();
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
        let e = Expected::new((0..1000).map(|i| (i, 5000 - (i as u64 / 3))), &[]);
        assert_eq!(e.top.len(), 100);
        assert_eq!(e.top[0], (1, "p-00000000".into(), 5000));
        assert_eq!(e.top[99], (100, "p-00000099".into(), 4967));
        assert_eq!(e.top[98].0, 97, "tie of three shares rank 97");
    }

    #[test]
    fn each_board_expects_only_its_players_and_its_probe_markers() {
        let boards = BoardSet::new("b", 2, 5).expect("boards");
        let best = [10, 20, 30, 40, 50];
        let e = Expected::for_boards(&boards, &best, Some(("probe-1", &[0, 3])));
        // Board 1 holds players 0, 2, 4; board 2 holds 1, 3 and the probe (score 3).
        assert_eq!((e[0].total(), e[1].total()), (3, 3));
        let players = |x: &Expected| x.top.iter().map(|(_, p, _)| p.clone()).collect::<Vec<_>>();
        assert_eq!(players(&e[0]), ["p-00000004", "p-00000002", "p-00000000"]);
        assert_eq!(players(&e[1]), ["p-00000003", "p-00000001", "probe-1"]);
        assert_eq!((e[0].rank(30), e[1].rank(20)), (2, 2));
    }
}
