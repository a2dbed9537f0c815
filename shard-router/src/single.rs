//! The `single` layout: one sorted set per board.
//!
//! Writes: one `ZADD GT` per 1000 players, all in one pipeline (1 round trip).
//! Reads: every query is one server-side script on the one key (1 round trip).

use leaderboard_contract::{BoardId, PlayerId};

use crate::model::{Entry, Page, ScoreUpdate, ShardStats, Standing, assign_ranks, percentile};
use crate::store::{Store, as_u64};
use crate::{Result, keys, member, scripts};

/// Adds `ZADD key GT s1 m1 ...` commands for `updates` (one per chunk) to `pipe`.
pub(crate) fn push_zadd_gt(pipe: &mut redis::Pipeline, key: &str, updates: &[&ScoreUpdate]) {
    for chunk in updates.chunks(scripts::ADD_CHUNK) {
        let cmd = pipe.cmd("ZADD").arg(key).arg("GT");
        for u in chunk {
            cmd.arg(u.score).arg(member::encode(&u.player));
        }
        pipe.ignore();
    }
}

pub(crate) async fn apply(store: &Store, board: &BoardId, updates: &[&ScoreUpdate]) -> Result<()> {
    let mut pipe = redis::pipe();
    push_zadd_gt(&mut pipe, &keys::single(board), updates);
    store.run(&pipe).await?;
    Ok(())
}

/// The one Redis command a standing on a `single` board sends (an `EVAL_RO`
/// of the `LOCATE` script), for benchmarks that replay it with `redis-benchmark`.
pub fn standing_command(board: &BoardId, player: &PlayerId) -> redis::Cmd {
    scripts::locate(&keys::single(board), player)
}

pub(crate) async fn standing(store: &Store, board: &BoardId, player: &PlayerId) -> Result<Option<Standing>> {
    let located = scripts::parse_locate(store.query(&standing_command(board, player)).await?)?;
    Ok(located.found.map(|f| Standing {
        score: f.score,
        rank: f.above + 1,
        total: located.card,
        percentile: percentile(located.card, f.above, f.equal),
    }))
}

pub(crate) async fn top(store: &Store, board: &BoardId, offset: u64, limit: u64) -> Result<Page> {
    let key = keys::single(board);
    let mut pipe = redis::pipe();
    pipe.add_command(scripts::page(&key, offset, limit)).cmd("ZCARD").arg(&key);
    let mut replies = store.run(&pipe).await?.into_iter();
    let rows = scripts::parse_page(replies.next().unwrap_or_default())?;
    let total = replies.next().as_ref().map(as_u64).transpose()?.unwrap_or(0);
    Ok(Page { total, entries: assign_ranks(rows.rows, offset, rows.above_first) })
}

pub(crate) async fn around(
    store: &Store,
    board: &BoardId,
    player: &PlayerId,
    radius: u64,
) -> Result<Option<Vec<Entry>>> {
    let reply = store.query(&scripts::seek(&keys::single(board), player, radius, None)).await?;
    Ok(scripts::parse_seek(reply)?
        .map(|(pos, rows)| assign_ranks(rows.rows, pos.saturating_sub(radius), rows.above_first)))
}

pub(crate) async fn shards(store: &Store, board: &BoardId) -> Result<Vec<ShardStats>> {
    let key = keys::single(board);
    let size: u64 = store.query(redis::cmd("ZCARD").arg(&key)).await?;
    Ok(vec![ShardStats { index: 0, key, min_score: None, max_score: None, size }])
}
