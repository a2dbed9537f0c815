//! Placing a `range` board's `last` and `sum` values in its shards.
//!
//! Such a board keeps each player's value in their home ([`keys::tally_home`],
//! fixed by their id), where `TALLY` applies each record once and counts the
//! player's changes (their version). The shards are an index of the homes:
//! after each write the writer places the new states, each shard keeping the
//! version of the copy it holds ([`scripts::place`]), in the three steps of
//! every `range` write (add, then remove older copies elsewhere, then take
//! back an add that a newer copy beat). So placing is idempotent and needs no
//! order: a retried or redelivered batch (its records skipped by the home)
//! places the home's current state again, and a writer that places an older
//! state after a newer one changes nothing.
//!
//! A home also lists its players whose newest version is not placed yet
//! (`:u`, [`keys::unplaced`]), cleared once every generation holds them:
//! closing a season places what a writer that died mid-batch left there
//! before the season's results are read.

use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::model::ScoreUpdate;
use leaderboard_semantics::rules::Ties;

use super::{RangeBoards, shard_keys};
use crate::connection::reply::{as_bytes, as_scan};
use crate::connection::store::Store;
use crate::layout::hash::shard_of;
use crate::layout::range::meta::Generation;
use crate::layout::scripts::place::{self, Placement};
use crate::layout::single::{push_writes, refused_chunks};
use crate::layout::tally::HomeState;
use crate::layout::{keys, member, scripts};
use crate::{Error, Result};

/// Players read from a home's unplaced set per round trip.
const UNPLACED_PAGE: usize = 1000;

/// Places `placements` in one generation's shards (add, clean, take back).
pub(crate) async fn place_generation(
    store: &Store,
    board: &BoardId,
    generation: &Generation,
    placements: &[&Placement],
    ties: Ties,
) -> Result<()> {
    if placements.is_empty() {
        return Ok(());
    }
    let keys = shard_keys(board, generation);
    let index = |shard: usize| keys::index_for(&keys[shard], ties);
    // Step 1: each placement in the shard of its value.
    let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
    for (i, p) in placements.iter().enumerate() {
        by_shard[generation.shard_of(p.key)].push(i);
    }
    let mut chunks = Vec::new();
    let mut pipes = Vec::new();
    for (shard, idxs) in by_shard.iter().enumerate() {
        for chunk in idxs.chunks(scripts::ADD_CHUNK) {
            let mut pipe = redis::pipe();
            pipe.add_command(place::place(&keys[shard], index(shard).as_deref(), chunk.iter().map(|&i| placements[i])));
            pipes.push(pipe);
            chunks.push((shard, chunk));
        }
    }
    let mut arrivals: Vec<(usize, usize)> = Vec::new(); // (placement, its shard)
    for (&(shard, chunk), reply) in chunks.iter().zip(store.run_all(&pipes).await?) {
        let reply = reply.into_iter().next().unwrap_or_default();
        arrivals.extend(place::parse_indexes(reply)?.into_iter().map(|j| (chunk[j], shard)));
    }
    if arrivals.is_empty() {
        return Ok(());
    }
    // Step 2: older copies of the arrivals leave every other shard; a newer one makes the arrival stale.
    let mut pipes = Vec::new();
    let mut asked: Vec<Vec<usize>> = Vec::new(); // per pipe: the arrivals, by index in `arrivals`
    for (shard, key) in keys.iter().enumerate() {
        let elsewhere: Vec<usize> = (0..arrivals.len()).filter(|&a| arrivals[a].1 != shard).collect();
        if elsewhere.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for chunk in elsewhere.chunks(scripts::ADD_CHUNK) {
            let cmd = place::clean(key, index(shard).as_deref(), chunk.iter().map(|&a| placements[arrivals[a].0]));
            pipe.add_command(cmd);
        }
        pipes.push(pipe);
        asked.push(elsewhere);
    }
    let mut stale = vec![false; arrivals.len()];
    for (asked, replies) in asked.iter().zip(store.run_all(&pipes).await?) {
        for (chunk, reply) in asked.chunks(scripts::ADD_CHUNK).zip(replies) {
            for j in place::parse_indexes(reply)? {
                stale[chunk[j]] = true;
            }
        }
    }
    // Step 3: a stale arrival is taken back; every move ends.
    let mut pipes = Vec::new();
    for (shard, key) in keys.iter().enumerate() {
        let here: Vec<(&Placement, bool)> = arrivals
            .iter()
            .zip(&stale)
            .filter(|((_, target), _)| *target == shard)
            .map(|((i, _), is_stale)| (placements[*i], *is_stale))
            .collect();
        for chunk in here.chunks(scripts::ADD_CHUNK) {
            let mut pipe = redis::pipe();
            pipe.add_command(place::take_back(key, index(shard).as_deref(), chunk.iter().copied())).ignore();
            pipes.push(pipe);
        }
    }
    store.run_all(&pipes).await?;
    Ok(())
}

impl RangeBoards {
    /// Places the homes' states a `last` or `sum` write read in every
    /// generation, then takes them out of their homes' unplaced sets.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails (placing again is harmless).
    pub(crate) async fn place(&self, store: &Store, board: &BoardId, homes: &[HomeState], ties: Ties) -> Result<()> {
        let placements: Vec<&Placement> = homes.iter().flat_map(|h| &h.placements).collect();
        if placements.is_empty() {
            return Ok(());
        }
        let state = self.created(store, board).await?;
        let players: Vec<&PlayerId> = placements.iter().map(|p| &p.player).collect();
        let placements = &placements;
        let write = |generation: Generation| async move {
            place_generation(store, board, &generation, placements, ties).await.map(|()| Vec::new())
        };
        self.each_generation(store, board, &state, &players, ties, write).await?;
        let pipes: Vec<redis::Pipeline> = homes
            .iter()
            .filter(|h| !h.placements.is_empty())
            .map(|h| {
                let mut pipe = redis::pipe();
                pipe.add_command(place::placed(&h.home, h.placements.iter())).ignore();
                pipe
            })
            .collect();
        store.run_all(&pipes).await?;
        Ok(())
    }

    /// Places every player a home lists as unplaced (a writer stopped between
    /// its write and its placement); how many. Closing a season runs it after
    /// the fences are up, so the season's shards hold every value its homes took.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails (running it again is harmless).
    pub(crate) async fn place_unplaced(&self, store: &Store, board: &BoardId, ties: Ties) -> Result<u64> {
        let mut placed = 0;
        for home in keys::tally_homes(board) {
            let mut cursor = 0u64;
            loop {
                let mut scan = redis::cmd("HSCAN");
                scan.arg(keys::unplaced(&home)).arg(cursor).arg("COUNT").arg(UNPLACED_PAGE);
                let (next, fields) = as_scan(store.query(&scan).await?)?;
                cursor = next;
                let players: Vec<PlayerId> = fields
                    .into_iter()
                    .step_by(2)
                    .map(|m| as_bytes(m).map(|m| member::decode_any(&m).map(|d| d.player)))
                    .collect::<Result<Vec<_>>>()?
                    .into_iter()
                    .flatten()
                    .collect();
                if !players.is_empty() {
                    let refs: Vec<&PlayerId> = players.iter().collect();
                    let placements = states(store, &home, &refs, ties).await?;
                    placed += placements.len() as u64;
                    self.place(store, board, &[HomeState { home: home.clone(), placements }], ties).await?;
                }
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(placed)
    }

    /// Loads players with the values given into a `last` or `sum` board's
    /// homes, as [`crate::Router::load`] does into other boards (a restore),
    /// and places them; returns the indexes a closed season's fence refused.
    ///
    /// # Errors
    /// [`Error::Redis`] when Redis fails.
    pub(crate) async fn load_tally(
        &self,
        store: &Store,
        board: &BoardId,
        rows: &[&ScoreUpdate],
        ties: Ties,
    ) -> Result<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); keys::HOMES];
        for (i, u) in rows.iter().enumerate() {
            groups[shard_of(&u.player, keys::HOMES)].push(i);
        }
        let groups: Vec<(String, Vec<usize>)> = groups
            .into_iter()
            .enumerate()
            .filter(|(_, g)| !g.is_empty())
            .map(|(i, g)| (keys::tally_home(board, i), g))
            .collect();
        let pipes: Vec<redis::Pipeline> = groups
            .iter()
            .map(|(home, group)| {
                let writes: Vec<&ScoreUpdate> = group.iter().map(|&i| rows[i]).collect();
                let players = writes.iter().map(|u| &u.player);
                let mut pipe = redis::pipe();
                push_writes(&mut pipe, home, keys::fence_for(board, home).as_deref(), &writes, ties);
                pipe.add_command(place::state(home, keys::index_for(home, ties).as_deref(), players));
                pipe
            })
            .collect();
        let replies = store.run_all(&pipes).await?;
        let mut refused = Vec::new();
        let mut homes = Vec::new();
        for ((home, group), mut replies) in groups.iter().zip(replies) {
            let state = replies.pop().ok_or_else(|| Error::Corrupt(format!("{home}: no state reply")))?;
            refused.extend(refused_chunks(&replies, group.len()).into_iter().map(|j| group[j]));
            let players: Vec<&PlayerId> = group.iter().map(|&i| &rows[i].player).collect();
            homes.push(HomeState { home: home.clone(), placements: place::parse_state(state, &players)? });
        }
        self.place(store, board, &homes, ties).await?;
        Ok(refused)
    }
}

/// The current states of `players` in `home` (those with a value).
///
/// # Errors
/// [`Error::Redis`] when Redis fails.
pub(crate) async fn states(store: &Store, home: &str, players: &[&PlayerId], ties: Ties) -> Result<Vec<Placement>> {
    let mut out = Vec::with_capacity(players.len());
    for chunk in players.chunks(scripts::ADD_CHUNK) {
        let cmd = place::state(home, keys::index_for(home, ties).as_deref(), chunk.iter().copied());
        let reply: redis::Value = store.query(&cmd).await?;
        out.extend(place::parse_state(reply, chunk)?);
    }
    Ok(out)
}
