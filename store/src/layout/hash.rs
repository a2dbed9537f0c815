//! The `hash:<n>` layout: a player's shard is a stable hash of the player id.
//!
//! Writes: players grouped by shard, one pipeline per shard, all shards in
//! parallel (1 round trip per node). Reads fan out to every shard and merge:
//! top-N pages take each shard's share of the first `offset + limit` rows,
//! asking again only shards that may hold more (usually 1 round trip, see [`top`]);
//! a standing reads the player's score from its shard, then counts in every
//! shard (2 round trips); around-lists seek every shard, then count above the
//! first row (3 round trips).

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::model::{Entry, Page, Row, ScoreUpdate, ShardStats, Standing, assign_ranks};
use leaderboard_semantics::rules::Ties;

use crate::connection::reply::as_u64;
use crate::connection::store::Store;
use crate::layout::single::{push_writes, refused_chunks};
use crate::layout::{keys, scripts};
use crate::{Error, Result};

/// The shard of `player` among `shards`: FNV-1a 64 of the id bytes, stable
/// across processes, versions and platforms.
pub fn shard_of(player: &PlayerId, shards: usize) -> usize {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let h = player.as_str().bytes().fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    (h % shards as u64) as usize
}

fn shard_keys(board: &BoardId, shards: usize) -> Vec<String> {
    (0..shards).map(|i| keys::hash_shard(board, shards, i)).collect()
}

/// Writes `updates`; returns the indexes of those a closed season's fence refused.
pub(crate) async fn apply(
    store: &Store,
    board: &BoardId,
    shards: usize,
    updates: &[&ScoreUpdate],
    ties: Ties,
) -> Result<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); shards];
    for (i, u) in updates.iter().enumerate() {
        groups[shard_of(&u.player, shards)].push(i);
    }
    let groups: Vec<Vec<usize>> = groups.into_iter().filter(|g| !g.is_empty()).collect();
    let pipes: Vec<redis::Pipeline> = groups
        .iter()
        .map(|g| {
            let shard = shard_of(&updates[g[0]].player, shards);
            let key = keys::hash_shard(board, shards, shard);
            let fence = keys::fence_for(board, &key);
            let writes: Vec<&ScoreUpdate> = g.iter().map(|&i| updates[i]).collect();
            let mut pipe = redis::pipe();
            push_writes(&mut pipe, &key, fence.as_deref(), &writes, ties);
            pipe
        })
        .collect();
    let replies = store.run_all(&pipes).await?;
    Ok(groups.iter().zip(&replies).flat_map(|(g, r)| refused_chunks(r, g.len()).into_iter().map(|j| g[j])).collect())
}

/// Summed over every shard: players ahead of the anchor `(score, member)`
/// (a better score; on `earliest` boards, sorting before the member), players
/// with an equal score (`shared` boards only: 0 on `earliest` ones, where
/// [`Standing::ranked`] counts the player alone), and all players.
async fn counts(store: &Store, keys: &[String], score: u64, member: &[u8], ties: Ties) -> Result<(u64, u64, u64)> {
    let pipes: Vec<redis::Pipeline> = keys
        .iter()
        .map(|k| {
            let mut p = redis::pipe();
            match ties {
                Ties::Shared => {
                    p.cmd("ZCOUNT").arg(k).arg(format!("({score}")).arg("+inf");
                    p.cmd("ZCOUNT").arg(k).arg(score).arg(score);
                }
                Ties::Earliest => {
                    p.add_command(scripts::before(k, std::iter::once((score, member))));
                }
            }
            p.cmd("ZCARD").arg(k);
            p
        })
        .collect();
    let mut sums = (0, 0, 0);
    for replies in store.run_all(&pipes).await? {
        match replies.as_slice() {
            [above, equal, card] => {
                sums.0 += as_u64(above)?;
                sums.1 += as_u64(equal)?;
                sums.2 += as_u64(card)?;
            }
            [before, card] => {
                sums.0 += scripts::parse_before(before.clone())?.first().copied().unwrap_or(0);
                sums.2 += as_u64(card)?;
            }
            other => return Err(Error::Corrupt(format!("unexpected count replies {other:?}"))),
        }
    }
    Ok(sums)
}

/// The player's place in their own shard: score and member.
async fn locate_own(
    store: &Store,
    board: &BoardId,
    shards: usize,
    player: &PlayerId,
    ties: Ties,
) -> Result<Option<scripts::InShard>> {
    let key = keys::hash_shard(board, shards, shard_of(player, shards));
    let index = keys::index_for(&key, ties);
    Ok(scripts::parse_locate(store.query(&scripts::locate(&key, index.as_deref(), player)).await?)?.found)
}

pub(crate) async fn standing(
    store: &Store,
    board: &BoardId,
    shards: usize,
    player: &PlayerId,
    ties: Ties,
) -> Result<Option<Standing>> {
    let Some(own) = locate_own(store, board, shards, player, ties).await? else { return Ok(None) };
    let (ahead, equal, total) = counts(store, &shard_keys(board, shards), own.score, &own.member, ties).await?;
    Ok(Some(Standing::ranked(own.score, ahead, equal, total, ties).with_meta(own.meta)))
}

/// Merges the first `offset + limit` rows of every shard into the board's rows
/// at positions `offset..offset + limit`, ranked: the fan-out half of a `hash`
/// top-N page. Each shard's list must hold its first `offset + limit` rows.
pub fn merge_pages(shards: Vec<Vec<Row>>, offset: u64, limit: u64, ties: Ties) -> Vec<Entry> {
    let mut rows: Vec<Row> = shards.into_iter().flatten().collect();
    rows.sort_by(Row::order);
    // The merged prefix holds the board's first `offset + limit` rows, so
    // everyone strictly above the page's first row is in it.
    let window: Vec<Row> = rows.iter().skip(offset as usize).take(limit as usize).cloned().collect();
    let above_first =
        window.first().map_or(0, |first| rows.iter().take_while(|r| r.score > first.score).count() as u64);
    assign_ranks(window, offset, above_first, ties)
}

/// Rows asked of each shard in the first round: its expected share of the
/// page's `end` rows plus two standard deviations (the share is about
/// Poisson) plus one, so a second round is rarely needed.
fn first_round_rows(end: u64, shards: u64) -> u64 {
    let mean = end.div_ceil(shards);
    (mean + 2 * mean.isqrt() + 2).min(end)
}

/// A top-N page of a `hash` board: the rows at positions `offset..offset + limit`.
///
/// The board's first `end = offset + limit` rows are spread over the shards
/// by the hash, about `end / shards` each. The first round asks every shard
/// for that share plus some slack ([`first_round_rows`]); a shard is asked
/// for more (twice as many, at most `end`) only while its last row so far
/// would still be inside the first `end` rows of the merge, i.e. while rows
/// it has not sent could be. So a page reads about
/// `end + shards * (2 * sqrt(end / shards) + 2)` rows, not `shards * end`;
/// never more than `shards * end`, reached only when the best players all
/// hash to one shard.
pub(crate) async fn top(
    store: &Store,
    board: &BoardId,
    shards: usize,
    offset: u64,
    limit: u64,
    ties: Ties,
) -> Result<Page> {
    let end = offset.saturating_add(limit);
    let keys = shard_keys(board, shards);
    let share = first_round_rows(end, shards as u64);
    let mut wanted = vec![share; shards];
    let mut fetched: Vec<Vec<Row>> = vec![Vec::new(); shards];
    let mut exhausted = vec![end == 0; shards];
    let mut total = None;
    loop {
        let asked: Vec<usize> =
            (0..shards).filter(|&i| !exhausted[i] && (fetched[i].len() as u64) < wanted[i]).collect();
        let pipes: Vec<redis::Pipeline> = asked
            .iter()
            .map(|&i| {
                let mut p = redis::pipe();
                let from = fetched[i].len() as u64;
                p.add_command(scripts::page(&keys[i], from, wanted[i] - from));
                p
            })
            .collect();
        let counting = async {
            match total {
                Some(t) => Ok(t),
                None => Ok::<u64, Error>(crate::layout::shards::cards(store, &keys).await?.iter().sum()),
            }
        };
        let (replies, counted) = futures::future::try_join(store.run_all(&pipes), counting).await?;
        total = Some(counted);
        for (&i, replies) in asked.iter().zip(replies) {
            let rows = scripts::parse_page(replies.into_iter().next().unwrap_or_default())?.rows;
            let asked_for = wanted[i] - fetched[i].len() as u64;
            exhausted[i] = (rows.len() as u64) < asked_for;
            fetched[i].extend(rows);
        }
        let mut merged: Vec<&Row> = fetched.iter().flatten().collect();
        merged.sort_by(|a, b| Row::order(a, b));
        let cutoff = usize::try_from(end).ok().and_then(|e| e.checked_sub(1)).and_then(|e| merged.get(e)).copied();
        let mut more = false;
        for i in 0..shards {
            let Some(last) = fetched[i].last() else { continue };
            let could_hold_more = cutoff.is_none_or(|c| Row::order(last, c).is_lt());
            if !exhausted[i] && (fetched[i].len() as u64) < end && could_hold_more {
                wanted[i] = wanted[i].saturating_mul(2).min(end);
                more = true;
            }
        }
        if !more {
            break;
        }
    }
    Ok(Page { total: total.unwrap_or(0), entries: merge_pages(fetched, offset, limit, ties) })
}

pub(crate) async fn around(
    store: &Store,
    board: &BoardId,
    shards: usize,
    player: &PlayerId,
    radius: u64,
    ties: Ties,
) -> Result<Option<Vec<Entry>>> {
    for _ in 0..crate::layout::shards::AROUND_ATTEMPTS {
        let Some(own) = locate_own(store, board, shards, player, ties).await? else { return Ok(None) };
        if let Some(rows) = around_at(store, board, shards, player, &own, radius, ties).await? {
            return Ok(Some(rows));
        }
    }
    Err(Error::Contended(board.to_string()))
}

/// The rows around `player`, whose own shard held them at `own`: every
/// shard seeks around that score and member. `None` when the player's score
/// changed meanwhile (they improved): the windows are around the old score,
/// so the caller starts again.
async fn around_at(
    store: &Store,
    board: &BoardId,
    shards: usize,
    player: &PlayerId,
    own: &scripts::InShard,
    radius: u64,
    ties: Ties,
) -> Result<Option<Vec<Entry>>> {
    let keys = shard_keys(board, shards);
    let pipes: Vec<redis::Pipeline> = keys
        .iter()
        .map(|k| {
            let mut p = redis::pipe();
            p.add_command(scripts::seek(k, None, scripts::Anchor::At(own.score, &own.member), radius));
            p
        })
        .collect();
    let mut position = 0;
    let mut rows = Vec::new();
    for replies in store.run_all(&pipes).await? {
        if let Some((pos, shard_rows)) = scripts::parse_seek(replies.into_iter().next().unwrap_or_default())? {
            position += pos;
            rows.extend(shard_rows.rows);
        }
    }
    rows.sort_by(Row::order);
    let Some(anchor) = rows.iter().position(|r| &r.player == player && r.score == own.score) else { return Ok(None) };
    let start = anchor.saturating_sub(radius as usize);
    let end = (anchor + radius as usize + 1).min(rows.len());
    let window: Vec<Row> = rows[start..end].to_vec();
    let first_position = position - (anchor - start) as u64;
    let above_first = match (window.first(), ties) {
        (Some(first), Ties::Shared) => counts(store, &keys, first.score, &[], ties).await?.0,
        // Ranks are positions: nothing more to count.
        _ => first_position,
    };
    Ok(Some(assign_ranks(window, first_position, above_first, ties)))
}

pub(crate) async fn shards(store: &Store, board: &BoardId, shards: usize) -> Result<Vec<ShardStats>> {
    let keys = shard_keys(board, shards);
    let pipes: Vec<redis::Pipeline> = keys
        .iter()
        .map(|k| {
            let mut p = redis::pipe();
            p.cmd("ZCARD").arg(k);
            p
        })
        .collect();
    let replies = store.run_all(&pipes).await?;
    keys.into_iter()
        .zip(replies)
        .enumerate()
        .map(|(index, (key, r))| {
            let size = r.first().map(as_u64).transpose()?.unwrap_or(0);
            Ok(ShardStats { index, key, min_score: None, max_score: None, size })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_pages_orders_ties_by_id_and_ranks_across_shards() {
        let p = |s: &str| PlayerId::new(s).expect("valid");
        let r = |s: &str, score: u64| Row::new(p(s), score);
        let shards = vec![vec![r("b", 9), r("d", 5)], vec![r("a", 9), r("c", 7)]];
        let rows: Vec<(String, u64, u64)> = merge_pages(shards.clone(), 0, 3, Ties::Shared)
            .into_iter()
            .map(|e| (e.player.to_string(), e.score, e.rank))
            .collect();
        assert_eq!(rows, [("a".into(), 9, 1), ("b".into(), 9, 1), ("c".into(), 7, 3)]);
        let page: Vec<u64> = merge_pages(shards, 1, 2, Ties::Shared).iter().map(|e| e.rank).collect();
        assert_eq!(page, [1, 3], "a page starting inside a tie keeps the tie's rank");
    }

    /// The bug: a player who improved between an around's two round trips was
    /// not in the windows sought around their old score, and the around failed
    /// as if the board were corrupt. Here they improve in between by construction.
    #[tokio::test]
    async fn an_around_whose_player_improves_between_its_round_trips_starts_again() {
        let redis = testkit::PrivateRedis::start();
        let store =
            Store::connect(&crate::RedisTarget::parse(&redis.url()).expect("url"), crate::StoreOptions::default())
                .await
                .expect("private redis");
        let board = BoardId::new("around").expect("board");
        let update = |id: &str, score: u64| ScoreUpdate {
            board: board.clone(),
            player: PlayerId::new(id).expect("id"),
            score,
            time_ms: 0,
            meta: None,
            source: None,
        };
        let players: Vec<ScoreUpdate> = (0..40).map(|i| update(&format!("p{i:02}"), i)).collect();
        apply(&store, &board, 3, &players.iter().collect::<Vec<_>>(), Ties::Shared).await.expect("apply");
        let player = PlayerId::new("p10").expect("id");
        let own = locate_own(&store, &board, 3, &player, Ties::Shared).await.expect("locate").expect("found");
        apply(&store, &board, 3, &[&update("p10", 35)], Ties::Shared).await.expect("improve");
        let stale = around_at(&store, &board, 3, &player, &own, 2, Ties::Shared).await.expect("around");
        assert!(stale.is_none(), "windows around the old score: start again");
        let rows = around(&store, &board, 3, &player, 2, Ties::Shared).await.expect("around").expect("found");
        let ids: Vec<String> = rows.iter().map(|e| e.player.to_string()).collect();
        assert_eq!(ids, ["p37", "p36", "p10", "p35", "p34"], "around the new score, ties by id");
        let ranks: Vec<u64> = rows.iter().map(|e| e.rank).collect();
        assert_eq!(ranks, [3, 4, 5, 5, 7]);
    }

    #[test]
    fn shard_of_is_stable_and_spread() {
        let p = |s: &str| PlayerId::new(s).expect("valid");
        // Pinned values: changing the hash would strand every stored player.
        assert_eq!(shard_of(&p("p-000123"), 16), 6);
        assert_eq!(shard_of(&p("p-000123"), 7), 0);
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[shard_of(&p(&format!("p-{i}")), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
