//! Which layout each board is stored with, and the list of boards.
//!
//! `lb:{<board>}:layout` holds the layout a board was created with: `single`,
//! `hash:<n>`, or `range` (a range board's boundaries live in its metadata and
//! move with rebalances). The first write to a board records it (`SET NX`)
//! and adds the board to `lb:boards`. A router configured with another layout
//! gets [`Error::LayoutMismatch`] naming both, on reads and writes alike,
//! before it touches any key of its own layout: it can neither read the wrong
//! keys nor write a second copy of the board beside the first.
//!
//! Boards written before layouts were recorded have no record: they are read
//! with the configured layout, and their next write records it. Reading a
//! board that has no record creates nothing.
//!
//! A router remembers the boards it verified (at most [`MAX_VERIFIED`], then
//! it starts over), so the check costs one round trip per board per process.

use dashmap::DashSet;
use leaderboard_contract::BoardId;

use crate::spec::LayoutSpec;
use crate::store::Store;
use crate::{Error, Result, keys};

/// The set of every board's name.
pub const BOARDS_KEY: &str = "lb:boards";

/// Most boards a router remembers as verified.
pub const MAX_VERIFIED: usize = 100_000;

/// The recorded form of a layout: what decides the keys a board lives in.
pub fn recorded_form(spec: &LayoutSpec) -> String {
    match spec {
        LayoutSpec::Single => "single".into(),
        LayoutSpec::Hash { shards } => format!("hash:{shards}"),
        LayoutSpec::Range { .. } => "range".into(),
    }
}

/// The layout recorded for `board`, if any.
///
/// # Errors
/// [`Error::Redis`] when Redis fails.
pub async fn recorded(store: &Store, board: &BoardId) -> Result<Option<String>> {
    store.query(redis::cmd("GET").arg(keys::layout(board))).await
}

/// Every board with a recorded layout, sorted by name.
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for a name that is not a valid board.
pub async fn boards(store: &Store) -> Result<Vec<BoardId>> {
    let names: Vec<String> = store.query(redis::cmd("SMEMBERS").arg(BOARDS_KEY)).await?;
    let mut boards = names
        .into_iter()
        .map(|n| BoardId::new(n.clone()).map_err(|_| Error::Corrupt(format!("{BOARDS_KEY} holds {n:?}"))))
        .collect::<Result<Vec<_>>>()?;
    boards.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(boards)
}

/// The boards one router has checked against their records.
#[derive(Debug, Default)]
pub(crate) struct Verified {
    boards: DashSet<BoardId>,
}

impl Verified {
    /// Checks `board` against its record before a read (`write: false`) or a
    /// write (`write: true`, which records the layout of a new board).
    pub(crate) async fn check(&self, store: &Store, spec: &LayoutSpec, board: &BoardId, write: bool) -> Result<()> {
        if self.boards.contains(board) {
            return Ok(());
        }
        let mine = recorded_form(spec);
        let found: Option<String> = if write {
            let previous: Option<String> =
                store.query(redis::cmd("SET").arg(keys::layout(board)).arg(&mine).arg("NX").arg("GET")).await?;
            if previous.as_deref().is_none_or(|theirs| theirs == mine) {
                // Listed by every writer that verifies the board (once per process), so a writer
                // that died between recording and listing leaves no board unlisted for long.
                let _: i64 = store.query(redis::cmd("SADD").arg(BOARDS_KEY).arg(board.as_str())).await?;
            }
            previous
        } else {
            let found = recorded(store, board).await?;
            if found.is_none() {
                return Ok(()); // not created yet (or from before records): nothing to remember
            }
            found
        };
        match found {
            Some(theirs) if theirs != mine => {
                Err(Error::LayoutMismatch { board: board.to_string(), recorded: theirs, configured: mine })
            }
            _ => {
                if self.boards.len() >= MAX_VERIFIED {
                    self.boards.clear();
                }
                self.boards.insert(board.clone());
                Ok(())
            }
        }
    }

    /// Forgets `board` (its record changed: a migration, a deletion).
    pub(crate) fn forget(&self, board: &BoardId) {
        self.boards.remove(board);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_what_decides_the_keys() {
        assert_eq!(recorded_form(&"single".parse().expect("spec")), "single");
        assert_eq!(recorded_form(&"hash:16".parse().expect("spec")), "hash:16");
        assert_eq!(recorded_form(&"range:10,20".parse().expect("spec")), "range");
        assert_eq!(recorded_form(&"range:5".parse().expect("spec")), "range", "boundaries move; the layout does not");
    }
}
