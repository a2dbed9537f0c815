//! Writing a `range` board's shards: each update added to its shard, then
//! removed from the shard it left (a player moving up is in both for the
//! length of the batch), and a generation's keys deleted.

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::model::ScoreUpdate;
use leaderboard_semantics::rules::Ties;
use redis::Value;

use super::shard_keys;
use crate::Result;
use crate::connection::store::Store;
use crate::layout::range::meta::Generation;
use crate::layout::shards::single_cmd_pipes;
use crate::layout::{keys, member, scripts};

/// What step 1 of [`write_generation`] learned.
struct Added {
    /// `(update index, target shard)` of the players new to their target shard.
    arrivals: Vec<(usize, usize)>,
    /// Indexes of the updates a closed season's fence refused.
    refused: Vec<usize>,
}

/// Step 1 of [`write_generation`]: adds every update to its shard, learning who arrived.
async fn add_step(
    store: &Store,
    board: &BoardId,
    generation: &Generation,
    keys: &[String],
    updates: &[&ScoreUpdate],
    ties: Ties,
) -> Result<Added> {
    let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
    for (i, u) in updates.iter().enumerate() {
        by_shard[generation.shard_of(u.score)].push(i);
    }
    let mut chunks = Vec::new();
    let mut pipes = Vec::new();
    for (shard, idxs) in by_shard.iter().enumerate() {
        for chunk in idxs.chunks(scripts::ADD_CHUNK) {
            let mut p = redis::pipe();
            let pending = keys::pending_moves(&keys[shard]);
            let fence = keys::fence_for(board, &keys[shard]);
            let writes: Vec<scripts::Write<'_>> = chunk.iter().map(|&i| scripts::Write::from(updates[i])).collect();
            match keys::index_for(&keys[shard], ties) {
                None => p.add_command(scripts::add(&keys[shard], &pending, fence.as_deref(), &writes)),
                Some(index) => {
                    p.add_command(scripts::timed_add(&keys[shard], &index, Some(&pending), fence.as_deref(), &writes))
                }
            };
            pipes.push(p);
            chunks.push((shard, chunk));
        }
    }
    let mut added = Added { arrivals: Vec::new(), refused: Vec::new() };
    for (&(shard, chunk), reply) in chunks.iter().zip(store.run_all(&pipes).await?) {
        let reply = reply.into_iter().next().unwrap_or_default();
        if scripts::refused_by_fence(&reply) {
            added.refused.extend_from_slice(chunk);
            continue;
        }
        for j in scripts::parse_add(reply)? {
            added.arrivals.push((chunk[j], shard));
        }
    }
    Ok(added)
}

/// Writes a batch into one generation with the add-then-remove protocol
/// (also the rebalancer's copy step); returns the indexes of the updates a
/// closed season's fence refused.
pub(crate) async fn write_generation(
    store: &Store,
    board: &BoardId,
    generation: &Generation,
    updates: &[&ScoreUpdate],
    ties: Ties,
) -> Result<Vec<usize>> {
    let keys = shard_keys(board, generation);
    let Added { arrivals, refused } = add_step(store, board, generation, &keys, updates, ties).await?;
    if arrivals.is_empty() {
        return Ok(refused);
    }
    // Step 2: remove arrivals from lower shards; look for better copies in higher ones.
    let mut pipes = Vec::new();
    let mut probes: Vec<Vec<usize>> = Vec::new(); // per pipe: arrival indexes probed by ZMSCORE
    for (shard, key) in keys.iter().enumerate() {
        let from_above: Vec<&(usize, usize)> = arrivals.iter().filter(|(_, t)| *t > shard).collect();
        let from_below: Vec<usize> = (0..arrivals.len()).filter(|&a| arrivals[a].1 < shard).collect();
        if from_above.is_empty() && from_below.is_empty() {
            continue;
        }
        let mut p = redis::pipe();
        let index = keys::index_for(key, ties);
        for chunk in from_above.chunks(scripts::ADD_CHUNK) {
            push_remove(&mut p, key, index.as_deref(), chunk.iter().map(|(i, _)| &updates[*i].player));
        }
        for chunk in from_below.chunks(scripts::ADD_CHUNK) {
            // Presence is all that matters: any copy in a higher shard has a better score.
            let cmd = match &index {
                None => p.cmd("ZMSCORE").arg(key),
                Some(index) => p.cmd("HMGET").arg(index),
            };
            for &a in chunk {
                cmd.arg(member::encode(&updates[arrivals[a].0].player));
            }
        }
        pipes.push(p);
        probes.push(from_below);
    }
    let mut stale = vec![false; arrivals.len()];
    for (probed, replies) in probes.iter().zip(store.run_all(&pipes).await?) {
        let scores = replies.into_iter().flat_map(|r| crate::connection::reply::as_array(r).unwrap_or_default());
        for (&a, score) in probed.iter().zip(scores) {
            if score != Value::Nil {
                stale[a] = true;
            }
        }
    }
    // Step 3: where a better copy exists higher up, take back the one just
    // added; then the move is complete and leaves the pending set.
    let mut pipes: Vec<redis::Pipeline> = Vec::new();
    for (shard, key) in keys.iter().enumerate() {
        let arrived: Vec<(&PlayerId, bool)> = arrivals
            .iter()
            .zip(&stale)
            .filter(|((_, target), _)| *target == shard)
            .map(|((i, _), is_stale)| (&updates[*i].player, *is_stale))
            .collect();
        if arrived.is_empty() {
            continue;
        }
        let mut p = redis::pipe();
        let stale_here: Vec<&PlayerId> = arrived.iter().filter(|(_, s)| *s).map(|(m, _)| *m).collect();
        if !stale_here.is_empty() {
            push_remove(&mut p, key, keys::index_for(key, ties).as_deref(), stale_here.into_iter());
        }
        let all: Vec<Vec<u8>> = arrived.iter().map(|(m, _)| member::encode(m)).collect();
        p.cmd("SREM").arg(keys::pending_moves(key)).arg(all).ignore();
        pipes.push(p);
    }
    store.run_all(&pipes).await?;
    Ok(refused)
}

/// Adds the removal of `players` from the shard `key` to `pipe`: their
/// members and metadata (and index entries on `earliest` boards, whose
/// members carry a time). The metadata goes after the member, so a reader
/// never sees a member without the metadata it had.
fn push_remove<'a>(
    pipe: &mut redis::Pipeline,
    key: &str,
    index: Option<&str>,
    players: impl Iterator<Item = &'a PlayerId>,
) {
    match index {
        None => {
            let members: Vec<Vec<u8>> = players.map(member::encode).collect();
            pipe.cmd("ZREM").arg(key).arg(&members).ignore();
            pipe.cmd("HDEL").arg(keys::entry_meta(key)).arg(&members).ignore();
        }
        Some(index) => {
            pipe.add_command(scripts::timed_remove(key, index, players)).ignore();
        }
    }
}

/// Deletes every key of one generation (its shards and their pending-moves sets).
pub(crate) async fn delete_generation(store: &Store, board: &BoardId, generation: &Generation) -> Result<()> {
    let pipes = single_cmd_pipes(shard_keys(board, generation).iter().map(|key| keys::unlink_shard(key)));
    store.run_all(&pipes).await?;
    Ok(())
}

/// Removes a batch's players from every shard of a retired generation.
pub(super) async fn remove_from_generation(
    store: &Store,
    board: &BoardId,
    generation: &Generation,
    players: &[&PlayerId],
    ties: Ties,
) -> Result<()> {
    let pipes: Vec<redis::Pipeline> = shard_keys(board, generation)
        .iter()
        .map(|k| {
            let mut p = redis::pipe();
            let index = keys::index_for(k, ties);
            for chunk in players.chunks(scripts::ADD_CHUNK) {
                push_remove(&mut p, k, index.as_deref(), chunk.iter().copied());
            }
            p
        })
        .collect();
    store.run_all(&pipes).await?;
    Ok(())
}
