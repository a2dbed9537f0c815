//! The end check: the api's answers against loadgen's own oracle.
//!
//! Run after ingest caught up (consumer lag 0). Before comparing, it waits
//! until the api's cached top-100 was read after that moment, and (range
//! layout) until precomputed shard sizes stopped moving, so the comparison
//! is exact rather than approximate.

use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::population::player_id;

/// The expected board, from the oracle.
#[derive(Debug)]
pub struct Expected {
    sorted: Vec<u64>,
    /// `(rank, player, score)` of the first 100 rows.
    pub top: Vec<(u64, String, u64)>,
}

impl Expected {
    /// Builds the expectation from every player's best plus extra players (the probe).
    pub fn new(best: &[u64], extra: &[(String, u64)]) -> Self {
        let mut sorted: Vec<u64> = best.iter().copied().chain(extra.iter().map(|(_, s)| *s)).collect();
        sorted.sort_unstable();
        // The first 100 players by (score desc, id asc); ids sort like indexes.
        let mut order: Vec<(u64, usize)> = best.iter().enumerate().map(|(i, &s)| (s, i)).collect();
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

    /// 1 + players with a strictly greater score.
    pub fn rank(&self, score: u64) -> u64 {
        (self.sorted.len() - self.sorted.partition_point(|&s| s <= score)) as u64 + 1
    }

    /// Players on the board.
    pub fn total(&self) -> u64 {
        self.sorted.len() as u64
    }
}

/// The outcome of the comparison.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    /// Players whose score and rank were compared.
    pub sampled: u64,
    /// Top rows compared.
    pub top_rows: u64,
    /// Board total expected and seen.
    pub total: (u64, u64),
    /// Differences found (must be 0).
    pub mismatches: u64,
    /// The first few differences, for humans.
    pub examples: Vec<String>,
}

impl Verification {
    fn mismatch(&mut self, what: String) {
        self.mismatches += 1;
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<(u16, serde_json::Value)> {
    let r = client.get(url).send().await?;
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
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok((200, v)) = get_json(client, url).await
            && ready(&v)
        {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out waiting for {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Compares the api's top-100 and `sample` random players with the oracle.
///
/// # Errors
/// When the api never settles (its data never catches up with the quiescent moment).
pub async fn verify(
    client: &reqwest::Client,
    api: &str,
    board: &str,
    expected: &Expected,
    best: &[u64],
    sample: usize,
    seed: u64,
) -> anyhow::Result<Verification> {
    let quiescent = SystemTime::now();
    let top_url = format!("{api}/v1/boards/{board}/top?limit=100");
    wait_for(client, &top_url, Duration::from_secs(30), |v| as_of(v).is_some_and(|t| t >= quiescent)).await?;
    // Range layout: ranks use precomputed sizes; wait until they stopped moving.
    let board_url = format!("{api}/v1/boards/{board}");
    wait_for(client, &board_url, Duration::from_secs(30), |v| v["rank_error_bound"].as_u64().unwrap_or(0) == 0).await?;

    let mut out = Verification::default();
    let (_, top) = get_json(client, &top_url).await?;
    out.total = (expected.total(), top["total"].as_u64().unwrap_or(0));
    if out.total.0 != out.total.1 {
        out.mismatch(format!("total: expected {}, api says {}", out.total.0, out.total.1));
    }
    let seen: Vec<(u64, String, u64)> = top["entries"]
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
        .unwrap_or_default();
    out.top_rows = expected.top.len() as u64;
    for (i, want) in expected.top.iter().enumerate() {
        if seen.get(i) != Some(want) {
            out.mismatch(format!("top row {}: expected {want:?}, api has {:?}", i + 1, seen.get(i)));
        }
    }
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x00c0_ffee);
    let picks: Vec<usize> = (0..sample.min(best.len())).map(|_| rng.random_range(0..best.len())).collect();
    let results: Vec<(usize, anyhow::Result<(u16, serde_json::Value)>)> =
        stream::iter(picks)
            .map(|i| async move {
                (i, get_json(client, &format!("{api}/v1/boards/{board}/players/{}", player_id(i))).await)
            })
            .buffer_unordered(32)
            .collect()
            .await;
    for (i, result) in results {
        out.sampled += 1;
        let (score, rank) = (best[i], expected.rank(best[i]));
        match result {
            Ok((200, v)) if v["score"].as_u64() == Some(score) && v["rank"].as_u64() == Some(rank) => {}
            Ok((status, v)) => {
                out.mismatch(format!(
                    "{}: expected score {score} rank {rank}, api answered {status} {v}",
                    player_id(i)
                ));
            }
            Err(e) => out.mismatch(format!("{}: request failed: {e}", player_id(i))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_ranks_and_top_follow_the_contract() {
        // Players 0..5 with ties; an extra probe player at the bottom.
        let best = [5, 9, 7, 7, 1];
        let e = Expected::new(&best, &[("probe-1".into(), 1)]);
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
        let best: Vec<u64> = (0..1000).map(|i| 5000 - (i / 3)).collect();
        let e = Expected::new(&best, &[]);
        assert_eq!(e.top.len(), 100);
        assert_eq!(e.top[0], (1, "p-00000000".into(), 5000));
        assert_eq!(e.top[99], (100, "p-00000099".into(), 4967));
        assert_eq!(e.top[98].0, 97, "tie of three shares rank 97");
    }
}
