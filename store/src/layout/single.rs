//! The `single` layout: one sorted set per board.
//!
//! Writes: one `BEST` script per 1000 players (on `ties: earliest` boards one
//! `TIMED_ADD` script), all in one pipeline (1 round trip). Reads: every
//! query is one server-side script on the one key (1 round trip).

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::model::{Entry, Page, ScoreUpdate, ShardStats, Standing, assign_ranks};
use leaderboard_semantics::rules::Ties;

use crate::Result;
use crate::connection::reply::as_u64;
use crate::connection::store::Store;
use crate::layout::{keys, scripts};

/// Adds the best-score writes of `updates` into the shard `key` to `pipe`:
/// one `BEST` script per chunk (a plain `ZADD GT` where the shard keeps no
/// metadata and the chunk brings none), or `TIMED_ADD` on `earliest` boards.
/// A season's shard (`fence` given) is written behind its closed marker and
/// each chunk's reply is kept: [`refused_chunks`] reads which the fence
/// refused. Other replies are ignored.
pub(crate) fn push_writes(
    pipe: &mut redis::Pipeline,
    key: &str,
    fence: Option<&str>,
    updates: &[&ScoreUpdate],
    ties: Ties,
) {
    let index = keys::index_for(key, ties);
    for chunk in updates.chunks(scripts::ADD_CHUNK) {
        let writes: Vec<scripts::Write<'_>> = chunk.iter().map(|u| scripts::Write::from(*u)).collect();
        match &index {
            None => pipe.add_command(scripts::best(key, fence, &writes)),
            Some(index) => pipe.add_command(scripts::timed_add(key, index, None, fence, &writes)),
        };
        if fence.is_none() {
            pipe.ignore();
        }
    }
}

/// The indexes in `updates` whose chunk [`push_writes`] wrote behind a fence
/// that was up (`replies`: the pipeline's replies, one per chunk).
pub(crate) fn refused_chunks(replies: &[redis::Value], updates: usize) -> Vec<usize> {
    let mut refused = Vec::new();
    for (i, reply) in replies.iter().enumerate() {
        if scripts::refused_by_fence(reply) {
            let start = i * scripts::ADD_CHUNK;
            refused.extend(start..(start + scripts::ADD_CHUNK).min(updates));
        }
    }
    refused
}

/// Writes `updates`; returns the indexes of those a closed season's fence refused.
pub(crate) async fn apply(store: &Store, board: &BoardId, updates: &[&ScoreUpdate], ties: Ties) -> Result<Vec<usize>> {
    let key = keys::single(board);
    let fence = keys::fence_for(board, &key);
    let mut pipe = redis::pipe();
    push_writes(&mut pipe, &key, fence.as_deref(), updates, ties);
    let replies = store.run(&pipe).await?;
    Ok(refused_chunks(&replies, updates.len()))
}

/// The one Redis command a standing on a `single` board with shared ties
/// sends (an `EVAL_RO` of the `LOCATE` script), for benchmarks that replay
/// it with `redis-benchmark`.
pub fn standing_command(board: &BoardId, player: &PlayerId) -> redis::Cmd {
    scripts::locate(&keys::single(board), None, player)
}

pub(crate) async fn standing(
    store: &Store,
    board: &BoardId,
    player: &PlayerId,
    ties: Ties,
) -> Result<Option<Standing>> {
    let key = keys::single(board);
    let index = keys::index_for(&key, ties);
    let located = scripts::parse_locate(store.query(&scripts::locate(&key, index.as_deref(), player)).await?)?;
    Ok(located.found.map(|f| Standing::ranked(f.score, f.ahead(ties), f.equal, located.card, ties).with_meta(f.meta)))
}

pub(crate) async fn top(store: &Store, board: &BoardId, offset: u64, limit: u64, ties: Ties) -> Result<Page> {
    let key = keys::single(board);
    let mut pipe = redis::pipe();
    pipe.add_command(scripts::page(&key, offset, limit)).cmd("ZCARD").arg(&key);
    let mut replies = store.run(&pipe).await?.into_iter();
    let rows = scripts::parse_page(replies.next().unwrap_or_default())?;
    let total = replies.next().as_ref().map(as_u64).transpose()?.unwrap_or(0);
    Ok(Page { total, entries: assign_ranks(rows.rows, offset, rows.above_first, ties) })
}

pub(crate) async fn around(
    store: &Store,
    board: &BoardId,
    player: &PlayerId,
    radius: u64,
    ties: Ties,
) -> Result<Option<Vec<Entry>>> {
    let key = keys::single(board);
    let index = keys::index_for(&key, ties);
    let reply = store.query(&scripts::seek(&key, index.as_deref(), scripts::Anchor::Player(player), radius)).await?;
    Ok(scripts::parse_seek(reply)?
        .map(|(pos, rows)| assign_ranks(rows.rows, pos.saturating_sub(radius), rows.above_first, ties)))
}

pub(crate) async fn shards(store: &Store, board: &BoardId) -> Result<Vec<ShardStats>> {
    let key = keys::single(board);
    let size: u64 = store.query(redis::cmd("ZCARD").arg(&key)).await?;
    Ok(vec![ShardStats { index: 0, key, min_score: None, max_score: None, size }])
}
