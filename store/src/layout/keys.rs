//! Redis key names.
//!
//! Every key carries a hash tag (`{...}`) naming its board and shard, so in a
//! Redis Cluster each shard lives in exactly one slot while the shards of one
//! board spread over the nodes. Board names cannot contain `{`, `}` or `:`, so
//! tags never collide.
//!
//! | key | holds |
//! |---|---|
//! | `lb:{<board>}:z` | the `single` layout's sorted set |
//! | `lb:{<board>:h<n>.<i>}:z` | shard `i` of the `hash:<n>` layout |
//! | `lb:{<board>:r<gen>.<i>}:z` | shard `i` of generation `gen` of the `range` layout |
//! | `lb:{<board>:r<gen>.<i>}:moving` | players whose move into that `range` shard is not cleaned up yet |
//! | `lb:{<board>:k16.<i>}:z` | home `i` of a `range` board of `last` or `sum`: every player's value, by a hash of their id ([`crate::layout::range`]) |
//! | `lb:{<tag>}:v` | beside each home and each shard of a `range` board of `last` or `sum`: each player's version there |
//! | `lb:{<tag>}:u` | beside each home of a `range` board of `last` or `sum`: players whose newest version is not placed in the shards yet |
//! | `lb:{<tag>}:t` | beside each sorted set of a `ties: earliest` board: the time prefix of each player's member |
//! | `lb:{<tag>}:m` | beside each sorted set holding a player with metadata: each such player's `meta` (field: the plain member) |
//! | `lb:{<tag>}:o` | beside each sorted set of a `last` or `sum` board: per `<topic>:<partition>`, the offset after the last record the shard took ([`crate::layout::scripts`]) |
//! | `lb:{<tag>}:i` | beside each sorted set of a `last` or `sum` board: each player's recent idempotency keys |
//! | `lb:{<tag>}:x` | beside each sorted set of a `sum` board: records refused for overflowing whose dead letter is not confirmed yet |
//! | `lb:{<tag>}:closed` | beside each sorted set of a closed season (`<board>@<id>`): the fence its writes check |
//! | `lb:{<board>}:seasons` | a board's seasons and their state ([`crate::board::seasons`]) |
//! | `lb:{<board>}:resets` | a `manual` board's season starts: member the season id, score its start ([`crate::board::manual`]) |
//! | `lb:{<board>}:viewed` | a `manual` board's latest event time a writer assigned to a season (a reset ends a season after it) |
//! | `lb:seasonal` | the names of the boards with a reset schedule |
//! | `lb:{<board>}:range` | the `range` layout's metadata (boundaries, generation, rebalance progress) |
//! | `lb:{<board>}:layout` | the layout the board is stored with ([`crate::layout::record`]) |
//! | `lb:boards` | the names of every board with a recorded layout |
//! | `lb:epoch` | the store's epoch ([`crate::marker::epoch`]; on a Cluster one copy per primary, `lb:epoch:{n}`) |
//! | `lb:loss` | why a process marked the store lost (beside each epoch copy, `lb:loss:{n}`) |
//! | `lb:applied` | per `<topic>:<partition>`, the offset after the last record applied ([`crate::marker::applied`]; beside each epoch copy, `lb:applied:{n}`) |
//! | `lb:players` | erased and banned players, and the registry's version ([`crate::marker::registry`]) |
//! | `lb:audit`, `lb:audit:refused` | the audit log of admin actions, and of requests refused for their credentials ([`crate::marker::audit`]) |

use leaderboard_contract::BoardId;

/// The `single` layout's sorted set.
pub fn single(board: &BoardId) -> String {
    format!("lb:{{{board}}}:z")
}

/// Shard `index` of the `hash:<shards>` layout.
pub fn hash_shard(board: &BoardId, shards: usize, index: usize) -> String {
    format!("lb:{{{board}:h{shards}.{index}}}:z")
}

/// Shard `index` of generation `gen` of the `range` layout.
pub fn range_shard(board: &BoardId, generation: u64, index: usize) -> String {
    format!("lb:{{{board}:r{generation}.{index}}}:z")
}

/// How many homes a `range` board of `last` or `sum` keeps its players' values in
/// ([`tally_home`]); part of the key names, so a later count could never read another's.
pub const HOMES: usize = 16;

/// Home `index` (of [`HOMES`]) of a `range` board of `last` or `sum`: the
/// players whose id hashes there ([`crate::layout::hash::shard_of`]), with
/// their values, applied offsets and idempotency keys beside it, as a `hash`
/// board's shard holds them.
pub fn tally_home(board: &BoardId, index: usize) -> String {
    format!("lb:{{{board}:k{HOMES}.{index}}}:z")
}

/// Every home of a `range` board of `last` or `sum`.
pub fn tally_homes(board: &BoardId) -> Vec<String> {
    (0..HOMES).map(|i| tally_home(board, i)).collect()
}

/// The versions beside a home or a shard of a `range` board of `last` or
/// `sum` (same hash tag): per player, how many changes of their value the home
/// made; in a shard, the version of the copy it holds.
pub fn versions(shard_key: &str) -> String {
    beside(shard_key, "v")
}

/// The players of a home whose newest version is not placed in every shard
/// yet, with that version (same hash tag as the home).
pub fn unplaced(shard_key: &str) -> String {
    beside(shard_key, "u")
}

/// The pending-moves set of a `range` shard key (same hash tag as the shard).
pub fn pending_moves(shard_key: &str) -> String {
    match shard_key.strip_suffix(":z") {
        Some(base) => format!("{base}:moving"),
        None => format!("{shard_key}:moving"),
    }
}

/// The player index of a shard key on a `ties: earliest` board (same hash
/// tag as the shard): plain member → time prefix ([`crate::layout::member`]).
pub fn player_index(shard_key: &str) -> String {
    match shard_key.strip_suffix(":z") {
        Some(base) => format!("{base}:t"),
        None => format!("{shard_key}:t"),
    }
}

/// The entry metadata of a shard key (same hash tag as the shard): plain
/// member → the `meta` of the event that set the player's score there
/// ([`crate::layout::scripts`]). It exists only once a player of the shard has metadata.
pub fn entry_meta(shard_key: &str) -> String {
    match shard_key.strip_suffix(":z") {
        Some(base) => format!("{base}:m"),
        None => format!("{shard_key}:m"),
    }
}

/// The shard key with its `:z` replaced by `suffix`: a key beside it, in its slot.
fn beside(shard_key: &str, suffix: &str) -> String {
    format!("{}:{suffix}", shard_key.strip_suffix(":z").unwrap_or(shard_key))
}

/// The applied offsets of a shard of a `last` or `sum` board (same hash tag):
/// per `<topic>:<partition>`, the offset after the last record it took.
pub fn applied_offsets(shard_key: &str) -> String {
    beside(shard_key, "o")
}

/// The recent idempotency keys of a shard of a `last` or `sum` board (same hash tag), per player.
pub fn recent_ids(shard_key: &str) -> String {
    beside(shard_key, "i")
}

/// The records of a shard of a `sum` board refused for overflowing whose dead
/// letter is not confirmed yet (same hash tag).
pub fn overflow_refusals(shard_key: &str) -> String {
    beside(shard_key, "x")
}

/// The closed marker of a shard key of a season (same hash tag as the shard):
/// once it exists, the shard's write scripts refuse every write ([`crate::board::seasons`]).
pub fn closed_marker(shard_key: &str) -> String {
    match shard_key.strip_suffix(":z") {
        Some(base) => format!("{base}:closed"),
        None => format!("{shard_key}:closed"),
    }
}

/// `UNLINK` of a shard's sorted set and every key beside it (its pending
/// moves, its player index, its entry metadata, its closed marker, its
/// applied offsets, idempotency keys, refusals, versions and unplaced players,
/// whichever exist): the one
/// way a shard is deleted.
pub(crate) fn unlink_shard(shard_key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("UNLINK");
    cmd.arg(pending_moves(shard_key))
        .arg(player_index(shard_key))
        .arg(entry_meta(shard_key))
        .arg(closed_marker(shard_key))
        .arg(applied_offsets(shard_key))
        .arg(recent_ids(shard_key))
        .arg(overflow_refusals(shard_key))
        .arg(versions(shard_key))
        .arg(unplaced(shard_key))
        .arg(shard_key);
    cmd
}

/// The closed marker `shard_key` is written behind: `Some` for the shards of a season.
pub(crate) fn fence_for(board: &BoardId, shard_key: &str) -> Option<String> {
    board.is_season().then(|| closed_marker(shard_key))
}

/// The seasons of a board: a hash of season id → [`crate::board::seasons::SeasonEntry`].
pub fn seasons(board: &BoardId) -> String {
    format!("lb:{{{board}}}:seasons")
}

/// A `manual` board's season starts: member the season id (`m<k>`), score its start.
pub fn resets(board: &BoardId) -> String {
    format!("lb:{{{board}}}:resets")
}

/// A `manual` board's latest event time a writer assigned to a season by its resets.
pub fn viewed(board: &BoardId) -> String {
    format!("lb:{{{board}}}:viewed")
}

/// The set of the boards that have a reset schedule (what closers look at).
pub const SEASONAL_BOARDS: &str = "lb:seasonal";

/// The player index a shard key has under `ties`: `Some` on `earliest` boards only.
pub(crate) fn index_for(shard_key: &str, ties: leaderboard_semantics::rules::Ties) -> Option<String> {
    (ties == leaderboard_semantics::rules::Ties::Earliest).then(|| player_index(shard_key))
}

/// The `range` layout's metadata key.
pub fn range_meta(board: &BoardId) -> String {
    format!("lb:{{{board}}}:range")
}

/// The board's recorded layout.
pub fn layout(board: &BoardId) -> String {
    format!("lb:{{{board}}}:layout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_distinct_hash_tags() {
        let b = BoardId::new("global").expect("valid");
        assert_eq!(single(&b), "lb:{global}:z");
        assert_eq!(hash_shard(&b, 16, 3), "lb:{global:h16.3}:z");
        assert_eq!(range_shard(&b, 2, 0), "lb:{global:r2.0}:z");
        assert_eq!(range_meta(&b), "lb:{global}:range");
        assert_eq!(layout(&b), "lb:{global}:layout");
        assert_eq!(pending_moves(&range_shard(&b, 2, 0)), "lb:{global:r2.0}:moving");
        assert_eq!(player_index(&hash_shard(&b, 4, 1)), "lb:{global:h4.1}:t");
        assert_eq!(entry_meta(&single(&b)), "lb:{global}:m");
        assert_eq!(tally_home(&b, 3), "lb:{global:k16.3}:z");
        assert_eq!(versions(&tally_home(&b, 3)), "lb:{global:k16.3}:v");
        assert_eq!(unplaced(&tally_home(&b, 3)), "lb:{global:k16.3}:u");
    }
}
