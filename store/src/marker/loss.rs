//! Why the store was marked lost: the note a process leaves beside each copy
//! of the epoch ([`crate::marker::epoch`]) when it finds the store behind what
//! Kafka says was applied ([`crate::marker::applied`]), and the marking itself.
//!
//! Marking removes the epoch copies, so every reader pauses exactly as after
//! a wipe; the note says why, for `lb-admin epoch` and `lb-admin catch-up`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::connection::node::{per_primary, per_primary_each};
use crate::connection::store::Store;
use crate::marker::applied::Behind;
use crate::marker::epoch::{Epoch, KEY, LOSS_KEY};
use crate::{Error, Result};

/// What made a process mark the store lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A node's applied offsets are below the group's committed offsets.
    Rollback,
}

impl Cause {
    /// As the note and `lb-admin epoch` spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rollback => "rollback",
        }
    }
}

/// Why the store was marked lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loss {
    /// The cause.
    pub cause: Cause,
    /// The topic whose offsets showed it.
    pub topic: String,
    /// The first partition found behind.
    pub behind: Behind,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

impl Loss {
    /// A rollback found on `topic`.
    pub fn rollback(topic: &str, behind: Behind) -> Self {
        let at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Self { cause: Cause::Rollback, topic: topic.into(), behind, at_ms }
    }
}

/// Marks the store lost for every process: leaves `loss` beside each copy of
/// the epoch, then removes the copies that still hold `known` (never a newer
/// recovery's). Readers then find no epoch and pause, exactly as after a wipe,
/// until recovery installs a new one.
///
/// # Errors
/// [`Error::Redis`] when a node fails.
pub async fn mark_lost(store: &Store, known: &Epoch, loss: &Loss) -> Result<()> {
    let note = serde_json::to_string(loss).unwrap_or_default();
    for [key, note_key] in per_primary_each(store, [KEY, LOSS_KEY]).await? {
        let _: i64 = store
            .query(redis::cmd("EVAL").arg(MARK_LOST).arg(2).arg(key).arg(note_key).arg(&known.id).arg(&note))
            .await?;
    }
    Ok(())
}

/// The loss note, if any primary holds one.
///
/// # Errors
/// [`Error::Redis`] when a node fails; [`Error::Corrupt`] for a note that is not one.
pub async fn loss(store: &Store) -> Result<Option<Loss>> {
    for key in per_primary(store, LOSS_KEY).await? {
        let note: Option<String> = store.query(redis::cmd("GET").arg(key)).await?;
        if let Some(note) = note {
            return serde_json::from_str(&note).map(Some).map_err(|e| Error::Corrupt(format!("{LOSS_KEY}: {e}")));
        }
    }
    Ok(None)
}

/// KEYS: a node's epoch copy and loss note; ARGV: the epoch id to remove, the note.
/// The first note stays (the first cause found is the one to act on).
const MARK_LOST: &str = r"
redis.call('SET', KEYS[2], ARGV[2], 'NX')
local copy = redis.call('GET', KEYS[1])
if copy then
  local ok, epoch = pcall(cjson.decode, copy)
  if ok and type(epoch) == 'table' and epoch['id'] == ARGV[1] then redis.call('DEL', KEYS[1]) end
end
return 1
";
