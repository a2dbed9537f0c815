//! Reading a board's members in pages (`ZSCAN`), as rebalances, migrations
//! and snapshots do.

use leaderboard_contract::BoardId;
use leaderboard_semantics::ScoreUpdate;
use redis::Value;

use crate::connection::reply::{as_array, as_bytes, as_score, as_u64};
use crate::layout::member;
use crate::{Error, Result};

/// A `ZSCAN` reply: the next cursor and the flat `member, score` pairs.
pub(crate) fn parse_scan(reply: Vec<Value>) -> Result<(u64, Vec<Value>)> {
    let mut it = reply.into_iter();
    let cursor = it.next().map(|c| as_u64(&c)).transpose()?.unwrap_or(0);
    let members = it.next().map(as_array).transpose()?.unwrap_or_default();
    Ok((cursor, members))
}

/// The updates a page of `member, score` pairs of `board` holds.
pub(crate) fn decode_members(board: &BoardId, flat: &[Value]) -> Result<Vec<ScoreUpdate>> {
    flat.chunks_exact(2)
        .map(|pair| {
            let bytes = as_bytes(pair[0].clone())?;
            let decoded =
                member::decode_any(&bytes).ok_or_else(|| Error::Corrupt("foreign member in a shard".into()))?;
            Ok(ScoreUpdate {
                board: board.clone(),
                player: decoded.player,
                score: as_score(&pair[1])?,
                time_ms: decoded.time_ms.unwrap_or(0),
            })
        })
        .collect()
}
