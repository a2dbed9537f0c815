//! Reading a board's members in pages (`ZSCAN`), with their metadata, as
//! rebalances, migrations and snapshots do.

use leaderboard_contract::BoardId;
use leaderboard_semantics::ScoreUpdate;
use redis::Value;

use crate::connection::reply::{as_array, as_bytes, as_scan, as_score, as_u64};
use crate::connection::store::Store;
use crate::layout::{keys, member, scripts};
use crate::{Error, Result};

/// One page of a shard: the cursor after it (`0`: the key is done) and its players.
pub(crate) struct ScanPage {
    /// The `ZSCAN` cursor after this page.
    pub cursor: u64,
    /// The players, each with their metadata.
    pub updates: Vec<ScoreUpdate>,
}

/// Reads one page of the shard `key` of `board` from `cursor` (`ZSCAN`,
/// about `count` members), then the page's metadata from the shard's
/// metadata hash (a second round trip, only when the shard keeps metadata
/// and the page is not empty). A member removed in between keeps no
/// metadata in the page: a copy of it is as a removal would leave it.
pub(crate) async fn scan_page(
    store: &Store,
    board: &BoardId,
    key: &str,
    cursor: u64,
    count: usize,
) -> Result<ScanPage> {
    let reply: Vec<Value> = store.query(redis::cmd("ZSCAN").arg(key).arg(cursor).arg("COUNT").arg(count)).await?;
    let (cursor, members) = as_scan(reply)?;
    let mut updates = decode_members(board, &members)?;
    if !updates.is_empty() {
        let meta_key = keys::entry_meta(key);
        let fields: Vec<Vec<u8>> = updates.iter().map(|u| member::encode(&u.player)).collect();
        let mut pipe = redis::pipe();
        pipe.cmd("EXISTS").arg(&meta_key).cmd("HMGET").arg(&meta_key).arg(&fields);
        let replies = store.run(&pipe).await?;
        if replies.first().map(as_u64).transpose()? == Some(1) {
            let metas = replies.into_iter().nth(1).map(as_array).transpose()?.unwrap_or_default();
            for (update, meta) in updates.iter_mut().zip(&metas) {
                update.meta = scripts::decode_meta(meta)?;
            }
        }
    }
    Ok(ScanPage { cursor, updates })
}

/// The updates a page of `member, score` pairs of `board` holds (without metadata).
fn decode_members(board: &BoardId, flat: &[Value]) -> Result<Vec<ScoreUpdate>> {
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
                meta: None,
                source: None,
            })
        })
        .collect()
}
