//! Reading a `range` board's shards: the standing of a player (`LOCATE` on
//! every shard, and a lowest-first pass on a Cluster's primaries when it is
//! found nowhere), the shards' sizes, pages that make up for rows that moved,
//! and the window around a player.

use leaderboard_contract::PlayerId;
use leaderboard_semantics::model::{Entry, assign_ranks};
use leaderboard_semantics::rules::Ties;

use crate::Result;
use crate::connection::store::Store;
use crate::layout::shards::single_cmd_pipes;
use crate::layout::{keys, scripts};

/// Prefix sums from the top: `above[i]` is the number of members in shards
/// `i+1..`, the part of a rank contributed by higher shards.
pub fn sizes_above(cards: &[u64]) -> Vec<u64> {
    let mut above = vec![0; cards.len()];
    for i in (0..cards.len().saturating_sub(1)).rev() {
        above[i] = above[i + 1] + cards[i + 1];
    }
    above
}

/// `LOCATE` on every shard in one round trip: each shard's size, and the
/// highest shard holding the player (their best score) with their place in it.
///
/// A player moving up is added to the higher shard before leaving the lower
/// one. On one Redis the round trip's scripts run lowest shard first, so it
/// finds the player wherever the move stands. A Redis Cluster keeps no order
/// between nodes, nor do its replicas, whose lags differ: a player may be
/// found in no shard. So on a Cluster a player found nowhere is looked for
/// again one shard at a time, lowest first, on the primaries: a shard read
/// after the player left it comes after the add above it, which that later
/// read then sees. It costs one round trip per shard, only when the player
/// was found nowhere (unknown players, and those moves).
pub(super) async fn locate_everywhere(
    store: &Store,
    keys: &[String],
    player: &PlayerId,
    ties: Ties,
) -> Result<(Vec<u64>, Option<(usize, scripts::InShard)>)> {
    let pipes = single_cmd_pipes(keys.iter().map(|k| {
        let index = keys::index_for(k, ties);
        scripts::locate(k, index.as_deref(), player)
    }));
    let mut cards = Vec::with_capacity(keys.len());
    let mut best = None;
    for (index, reply) in store.run_all(&pipes).await?.into_iter().enumerate() {
        let located = scripts::parse_locate(reply.into_iter().next().unwrap_or_default())?;
        cards.push(located.card);
        if let Some(found) = located.found {
            best = Some((index, found));
        }
    }
    if best.is_none() && store.is_cluster() {
        for (index, key) in keys.iter().enumerate() {
            let locate = scripts::locate(key, keys::index_for(key, ties).as_deref(), player);
            if let Some(found) = scripts::parse_locate(store.query_primary(key, &locate).await?)?.found {
                // The sizes are the first round trip's: the rank is off by at most the batch in flight.
                best = Some((index, found));
            }
        }
    }
    Ok((cards, best))
}

/// Rows at global positions `offset..offset + limit`, given each shard's size.
/// Most extra round trips a page makes to make up for rows that moved (see [`page`]).
const MAX_TOP_UPS: usize = 4;

/// Where a page's reading stands inside one shard.
#[derive(Debug, Clone, Copy)]
struct ShardSlice {
    /// The shard.
    index: usize,
    /// Rows of all higher shards (by the sizes read first): the shard's first global position.
    shard_start: u64,
    /// First row read, inside the shard.
    local_offset: u64,
    /// Rows asked for.
    limit: u64,
}

/// The last slice a round trip read.
#[derive(Debug, Clone, Copy)]
struct LastRead {
    slice: ShardSlice,
    /// Rows it returned, before those already seen were skipped.
    got: u64,
    /// Where its rows begin in the page.
    first_row: usize,
}

/// Rows at global positions `offset..offset + limit`, given the shard sizes
/// `cards` read just before.
///
/// Players moving up while the page is read (in two shards for the length of
/// a batch, or arrived after the sizes were read) would leave it short: the
/// lower copy of a player is skipped, and positions shift. A short page reads
/// on until it has `min(limit, total - offset)` rows or the board ends (at
/// most [`MAX_TOP_UPS`] more round trips), so every page has its full length:
/// in the next lower shard when its last shard ended (every score there is
/// below those read), else its last shard again, from the same first row with
/// more rows, replacing what it gave before. Reading on from the row after
/// would mix two moments of one shard: players that rose in between would
/// come after rows they had passed, out of order.
pub(super) async fn page(
    store: &Store,
    keys: &[String],
    cards: &[u64],
    offset: u64,
    limit: u64,
    ties: Ties,
) -> Result<Vec<Entry>> {
    let end = offset.saturating_add(limit);
    let wanted = limit.min(cards.iter().sum::<u64>().saturating_sub(offset)) as usize;
    let mut slices = Vec::new();
    let mut start = 0u64;
    for index in (0..keys.len()).rev() {
        let card = cards[index];
        let (lo, hi) = (offset.max(start), end.min(start + card));
        if lo < hi {
            slices.push(ShardSlice { index, shard_start: start, local_offset: lo - start, limit: hi - lo });
        }
        start += card;
    }
    let mut out: Vec<Entry> = Vec::with_capacity(wanted);
    let mut seen = std::collections::HashSet::new();
    let mut last = read_slices(store, keys, &slices, &mut out, &mut seen, ties).await?;
    for _ in 0..MAX_TOP_UPS {
        let short = wanted.saturating_sub(out.len()) as u64;
        let Some(LastRead { slice, got, first_row }) = last else { break };
        if short == 0 {
            break;
        }
        crate::failpoint::hold_here("store::range_page_before_top_up");
        let next = if got < slice.limit {
            // The shard ended: go on at the top of the next lower one.
            match slice.index.checked_sub(1) {
                Some(index) => ShardSlice {
                    index,
                    shard_start: slice.shard_start + slice.local_offset + got,
                    local_offset: 0,
                    limit: short,
                },
                None => break,
            }
        } else {
            out.truncate(first_row);
            seen = out.iter().map(|e| e.player.clone()).collect();
            ShardSlice { limit: slice.limit + short, ..slice }
        };
        last = read_slices(store, keys, &[next], &mut out, &mut seen, ties).await?;
    }
    out.truncate(limit as usize);
    Ok(out)
}

/// An around's board as its first round trip found it.
pub(super) struct Around<'a> {
    /// The shards of the active generation, lowest scores first.
    pub keys: &'a [String],
    /// Their sizes.
    pub cards: &'a [u64],
    /// The highest shard holding the player.
    pub own: usize,
    /// Rows wanted on each side of the player.
    pub radius: u64,
    /// The board's ties.
    pub ties: Ties,
}

/// One read of an around's second round trip, in board order.
#[derive(Debug, Clone, Copy)]
enum AroundRead {
    /// The lowest `rows` of a shard above the player's.
    Bottom { shard: usize, rows: u64 },
    /// The player's shard, around them.
    Own,
    /// The highest `rows` of a shard below the player's.
    Top { shard: usize, rows: u64 },
}

/// The rows around `player` in one round trip: their own shard's window is
/// read around them by one script, so the player is in it however the board
/// moved since the first round trip (a window at a global position from those
/// sizes missed them once players arrived above), and the edges of the
/// neighbouring shards (the lowest rows of those above, the highest of those
/// below, up to `radius` rows each way) fill the window across boundaries.
/// Each read also returns its shard's size at that moment: rows are placed by
/// those sizes below the shards not read, whose sizes come from the first
/// round trip, so positions are contiguous and ranks ordered. `None` when the
/// player left their shard meanwhile (moved up): the caller starts again.
pub(super) async fn around_in(store: &Store, at: &Around<'_>, player: &PlayerId) -> Result<Option<Vec<Entry>>> {
    let (radius, shards) = (at.radius, at.keys.len());
    // Shards next to the player's, as far as `radius` rows reach by the sizes.
    let reach = |shards: &mut dyn Iterator<Item = usize>| {
        let mut covered = 0;
        shards
            .take_while(|&shard| {
                let more = covered < radius;
                covered += at.cards[shard];
                more
            })
            .map(|shard| (shard, radius.min(at.cards[shard])))
            .collect::<Vec<_>>()
    };
    let mut plan: Vec<AroundRead> = reach(&mut (at.own + 1..shards))
        .into_iter()
        .rev()
        .map(|(shard, rows)| AroundRead::Bottom { shard, rows })
        .collect();
    plan.push(AroundRead::Own);
    plan.extend(reach(&mut (0..at.own).rev()).into_iter().map(|(shard, rows)| AroundRead::Top { shard, rows }));
    let pipes = single_cmd_pipes(plan.iter().map(|read| match *read {
        AroundRead::Bottom { shard, rows } => scripts::edge_sized(&at.keys[shard], scripts::Edge::Bottom, rows),
        AroundRead::Own => {
            let key = &at.keys[at.own];
            scripts::seek_sized(key, keys::index_for(key, at.ties).as_deref(), player, radius)
        }
        AroundRead::Top { shard, rows } => scripts::edge_sized(&at.keys[shard], scripts::Edge::Top, rows),
    }));
    let replies = store.run_all(&pipes).await?;
    // Where the highest shard read starts: the sizes of the shards above it, from the first round trip.
    let highest = match plan[0] {
        AroundRead::Bottom { shard, .. } | AroundRead::Top { shard, .. } => shard,
        AroundRead::Own => at.own,
    };
    let mut shard_start = sizes_above(at.cards)[highest];
    let mut out: Vec<Entry> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (read, reply) in plan.iter().zip(replies) {
        let (card, reply) = scripts::parse_sized(reply.into_iter().next().unwrap_or_default())?;
        let (rows, first_local) = match *read {
            AroundRead::Bottom { .. } => {
                let rows = scripts::parse_page(reply)?;
                let first = card.saturating_sub(rows.rows.len() as u64);
                (rows, first)
            }
            AroundRead::Own => {
                let Some((position, rows)) = scripts::parse_seek(reply)? else { return Ok(None) };
                (rows, position.saturating_sub(radius))
            }
            AroundRead::Top { .. } => (scripts::parse_page(reply)?, 0),
        };
        let ranked = assign_ranks(rows.rows, shard_start + first_local, shard_start + rows.above_first, at.ties);
        // A player moving up is briefly in two shards: the higher copy came first and is theirs.
        out.extend(ranked.into_iter().filter(|e| seen.insert(e.player.clone())));
        shard_start += card;
    }
    let Some(at_player) = out.iter().position(|e| &e.player == player) else { return Ok(None) };
    let from = at_player.saturating_sub(radius as usize);
    let to = out.len().min(at_player + radius as usize + 1);
    Ok(Some(out.drain(from..to).collect()))
}

/// Reads `slices` in one round trip, appending rows not `seen` yet (a player
/// moving up is briefly in two shards; the higher copy is listed first).
/// Returns the last slice, how many rows it had and where they begin in `out`.
async fn read_slices(
    store: &Store,
    keys: &[String],
    slices: &[ShardSlice],
    out: &mut Vec<Entry>,
    seen: &mut std::collections::HashSet<PlayerId>,
    ties: Ties,
) -> Result<Option<LastRead>> {
    let pipes = single_cmd_pipes(slices.iter().map(|s| scripts::page(&keys[s.index], s.local_offset, s.limit)));
    let mut last = None;
    for (slice, reply) in slices.iter().zip(store.run_all(&pipes).await?) {
        let rows = scripts::parse_page(reply.into_iter().next().unwrap_or_default())?;
        let got = rows.rows.len() as u64;
        let first = slice.shard_start + slice.local_offset;
        let ranked = assign_ranks(rows.rows, first, slice.shard_start + rows.above_first, ties);
        let first_row = out.len();
        out.extend(ranked.into_iter().filter(|e| seen.insert(e.player.clone())));
        last = Some(LastRead { slice: *slice, got, first_row });
    }
    Ok(last)
}
