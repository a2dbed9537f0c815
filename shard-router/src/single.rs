//! The `single` layout: one sorted set per board.
//!
//! Writes: one `ZADD GT` per 1000 players (on `ties: earliest` boards one
//! `TIMED_ADD` script), all in one pipeline (1 round trip). Reads: every
//! query is one server-side script on the one key (1 round trip).

use leaderboard_contract::{BoardId, PlayerId};

use crate::model::{Entry, Page, ScoreUpdate, ShardStats, Standing, assign_ranks};
use crate::rules::Ties;
use crate::store::{Store, as_u64};
use crate::{Result, keys, member, scripts};

/// Adds the best-score writes of `updates` into the shard `key` to `pipe`:
/// `ZADD key GT s1 m1 ...` per chunk, or `TIMED_ADD` on `earliest` boards.
pub(crate) fn push_writes(pipe: &mut redis::Pipeline, key: &str, updates: &[&ScoreUpdate], ties: Ties) {
    let index = keys::index_for(key, ties);
    for chunk in updates.chunks(scripts::ADD_CHUNK) {
        match &index {
            None => {
                let cmd = pipe.cmd("ZADD").arg(key).arg("GT");
                for u in chunk {
                    cmd.arg(u.score).arg(member::encode(&u.player));
                }
            }
            Some(index) => {
                pipe.add_command(scripts::timed_add(
                    key,
                    index,
                    None,
                    chunk.iter().map(|u| (u.score, u.time_ms, &u.player)),
                ));
            }
        }
        pipe.ignore();
    }
}

pub(crate) async fn apply(store: &Store, board: &BoardId, updates: &[&ScoreUpdate], ties: Ties) -> Result<()> {
    let mut pipe = redis::pipe();
    push_writes(&mut pipe, &keys::single(board), updates, ties);
    store.run(&pipe).await?;
    Ok(())
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
    Ok(located.found.map(|f| Standing::ranked(f.score, f.ahead(ties), f.equal, located.card, ties)))
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
