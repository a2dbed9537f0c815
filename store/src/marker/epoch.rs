//! The store's epoch: how ingest and the api notice a Redis that lost its data.
//!
//! Redis keeps only results; Kafka keeps the events and the ingest group's
//! offsets. A wiped store (`FLUSHALL`, a node restarted without its files, an
//! AOF that failed to load) looks exactly like a new, empty one. So the store
//! carries a marker, `lb:epoch`, on every node that can be wiped alone (one
//! copy per Cluster primary, like the watermark): an id, how it was made
//! ([`Origin`]) and when.
//!
//! - Ingest creates it only for a new deployment: when there is none *and*
//!   its consumer group has committed no offset (nothing was ever applied).
//!   An epoch missing while the group has offsets means the data was lost.
//! - Every process remembers the epoch it started with. Ingest reads it again
//!   after every batch, before storing the batch's offsets; the api every
//!   second. A copy missing, or an id other than the remembered one, is a
//!   loss: ingest stops storing offsets (so nothing applied to the wiped
//!   store counts as done) and both say so in `/readyz` and their metrics.
//! - Only recovery installs a new epoch: the admin tool's restore, rebuild or
//!   `adopt` (an operator accepting the store as it is). Processes adopt an
//!   epoch made that way and carry on; never one made by another ingest
//!   deployment's start (`new`), which may be an unrelated group meeting the
//!   wiped store.
//!
//! On a Cluster, resharding can leave a primary without its copy: run
//! `lb-admin epoch adopt` after moving slots.

use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::Pipeline;
use serde::{Deserialize, Serialize};

use crate::connection::store::Store;
use crate::{Error, Result};

/// The marker's key (on a Cluster, the base of one key per primary).
pub const KEY: &str = "lb:epoch";

/// How an epoch was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A new deployment's first ingest worker (nothing applied before).
    New,
    /// `lb-admin restore`: snapshots loaded and the events since replayed.
    Restore,
    /// `lb-admin rebuild`: every retained event replayed.
    Rebuild,
    /// `lb-admin epoch adopt`: an operator accepted the store as it is.
    Adopt,
    /// `lb-admin catch-up`: a store that went back in time replayed from its own applied offsets.
    CatchUp,
}

impl Origin {
    /// Whether running processes take an epoch of this origin in place of the
    /// one they knew (only recovery's are).
    pub const fn is_recovery(self) -> bool {
        !matches!(self, Self::New)
    }
}

/// One epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Epoch {
    /// Random, 16 hex digits.
    pub id: String,
    /// How it was made.
    pub origin: Origin,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

impl Epoch {
    fn fresh(origin: Origin) -> Self {
        let at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Self { id: format!("{:016x}", rand::random::<u64>()), origin, at_ms }
    }

    /// The epoch of a snapshot file written before snapshots recorded one.
    pub fn unknown() -> Self {
        Self { id: "unknown".into(), origin: Origin::Adopt, at_ms: 0 }
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Every copy, all the same epoch.
    Intact(Epoch),
    /// No copy at all: a new store, or one that lost everything.
    Missing,
    /// Some copies missing or different: a node lost its data.
    Damaged,
}

impl State {
    /// The epoch, when intact.
    pub fn epoch(&self) -> Option<&Epoch> {
        match self {
            Self::Intact(e) => Some(e),
            _ => None,
        }
    }
}

/// What a process that remembers `known` should make of `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The store is the one it knew.
    Same,
    /// Recovery installed a new epoch: forget cached state and carry on with it.
    Recovered(Epoch),
    /// The store lost data.
    Lost,
}

/// Judges `now` against the epoch a process remembers (see the module docs).
pub fn judge(known: &Epoch, now: &State) -> Verdict {
    match now {
        State::Intact(e) if e.id == known.id => Verdict::Same,
        State::Intact(e) if e.origin.is_recovery() && e.at_ms >= known.at_ms => Verdict::Recovered(e.clone()),
        _ => Verdict::Lost,
    }
}

/// The epoch a process writes or serves, and how it moves to a new one: the
/// part ingest's loss guard and the api's loss check share.
#[derive(Debug)]
pub struct Known {
    epoch: Mutex<Option<Epoch>>,
    /// With no epoch known, whether any intact one is taken (the api, which
    /// may start before ingest set the store up), or only a recovery's (ingest).
    takes_any_first: bool,
}

impl Known {
    /// Remembers `epoch` (none: the store had none, or a broken one, when the process started).
    pub fn new(epoch: Option<Epoch>, takes_any_first: bool) -> Self {
        Self { epoch: Mutex::new(epoch), takes_any_first }
    }

    /// Whether an epoch is known.
    pub fn is_known(&self) -> bool {
        self.epoch.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }

    /// The known epoch.
    pub fn get(&self) -> Option<Epoch> {
        self.epoch.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Judges `now` against the known epoch ([`judge`]); an epoch judged
    /// [`Verdict::Recovered`] becomes the known one.
    pub fn judge(&self, now: &State) -> Verdict {
        let mut known = self.epoch.lock().unwrap_or_else(PoisonError::into_inner);
        let verdict = match (&*known, now) {
            (Some(k), _) => judge(k, now),
            (None, State::Intact(e)) if self.takes_any_first || e.origin.is_recovery() => Verdict::Recovered(e.clone()),
            (None, _) => Verdict::Lost,
        };
        if let Verdict::Recovered(e) = &verdict {
            *known = Some(e.clone());
        }
        verdict
    }
}

/// Reads every copy.
///
/// # Errors
/// [`Error::Redis`] when a node fails; [`Error::Corrupt`] for a copy that is not an epoch.
pub async fn read(store: &Store) -> Result<State> {
    let keys = crate::connection::node::per_primary(store, KEY).await?;
    crate::failpoint::hold_here("store::epoch_read_between_slots_and_copies");
    let copies = read_copies(store, &keys).await?;
    let state = judge_copies(&copies);
    if !matches!(state, State::Intact(_)) {
        // Which node's copy is missing or other: what an operator checks first.
        let held: Vec<String> = keys
            .iter()
            .zip(&copies)
            .map(|(key, copy)| format!("{key}={}", copy.as_ref().map_or("missing", |e| e.id.as_str())))
            .collect();
        tracing::warn!(copies = ?held, "the store's epoch copies are not all the same epoch");
    }
    Ok(state)
}

/// The copy under each of `keys` (`None` where it is missing).
async fn read_copies(store: &Store, keys: &[String]) -> Result<Vec<Option<Epoch>>> {
    let pipes: Vec<Pipeline> = keys
        .iter()
        .map(|key| {
            let mut pipe = redis::pipe();
            pipe.cmd("GET").arg(key);
            pipe
        })
        .collect();
    let mut copies = Vec::with_capacity(keys.len());
    for replies in store.run_all(&pipes).await? {
        let copy = match replies.into_iter().next() {
            None | Some(redis::Value::Nil) => None,
            Some(v) => {
                let bytes = crate::connection::reply::as_bytes(v)?;
                Some(serde_json::from_slice::<Epoch>(&bytes).map_err(|e| Error::Corrupt(format!("{KEY}: {e}")))?)
            }
        };
        copies.push(copy);
    }
    Ok(copies)
}

fn judge_copies(copies: &[Option<Epoch>]) -> State {
    match copies.first() {
        _ if copies.iter().all(Option::is_none) => State::Missing,
        Some(Some(first)) if copies.iter().all(|c| c.as_ref() == Some(first)) => State::Intact(first.clone()),
        _ => State::Damaged,
    }
}

/// The `new` epoch some copies hold when every other copy is missing: a
/// creation cut short (the creator stopped, or a primary failed over before
/// its copy reached a replica).
fn unfinished_new(copies: &[Option<Epoch>]) -> Option<&Epoch> {
    let mut present = copies.iter().flatten();
    let first = present.next()?;
    (first.origin == Origin::New && present.all(|c| c == first)).then_some(first)
}

/// Creates the epoch of a new deployment unless the store has one, and
/// returns the store's state after. Call it only when nothing was ever
/// applied to the store (ingest: its group has committed no offset).
///
/// Racing creators agree on one id (the first copy's `SET NX GET` decides,
/// the others are written with its value), and a creation cut short (some
/// copies of one `new` epoch, the others missing) is finished with that
/// epoch. A store with any other mix of copies is left damaged: that is a
/// loss, not a new store.
///
/// # Errors
/// [`Error::Redis`] when a node fails.
pub async fn create_new(store: &Store) -> Result<State> {
    let keys = crate::connection::node::per_primary(store, KEY).await?;
    let copies = read_copies(store, &keys).await?;
    let state = judge_copies(&copies);
    let mine = match (&state, unfinished_new(&copies)) {
        (State::Missing, _) => Epoch::fresh(Origin::New).to_json(),
        (State::Damaged, Some(started)) => started.to_json(),
        _ => return Ok(state),
    };
    let Some((first, rest)) = keys.split_first() else { return read(store).await };
    let previous: Option<String> = store.query(redis::cmd("SET").arg(first).arg(&mine).arg("NX").arg("GET")).await?;
    // The winner's value on every other copy: a creator that lost the race writes it too, so
    // it never reads the copies half-written by the winner (a damaged epoch, a loss).
    let winner = previous.unwrap_or(mine);
    for key in rest {
        let _: Option<String> = store.query(redis::cmd("SET").arg(key).arg(&winner).arg("NX")).await?;
    }
    read(store).await
}

/// Installs a new epoch of `origin` on every node (recovery's last step),
/// and removes the loss note ([`crate::marker::loss::mark_lost`]).
///
/// # Errors
/// [`Error::Redis`] when a node fails.
pub async fn install(store: &Store, origin: Origin) -> Result<Epoch> {
    let epoch = Epoch::fresh(origin);
    let json = epoch.to_json();
    for [key, note] in crate::connection::node::per_primary_each(store, [KEY, LOSS_KEY]).await? {
        let mut pipe = redis::pipe();
        pipe.cmd("SET").arg(key).arg(&json).ignore().cmd("DEL").arg(note).ignore();
        store.run(&pipe).await?;
    }
    Ok(epoch)
}

/// The note a process that found the store lost leaves beside it (on a
/// Cluster, one copy per primary): what `lb-admin epoch` shows and what
/// `lb-admin catch-up` needs to know before it replays.
pub const LOSS_KEY: &str = "lb:loss";

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(id: &str, origin: Origin, at_ms: i64) -> Epoch {
        Epoch { id: id.into(), origin, at_ms }
    }

    #[test]
    fn only_recovery_replaces_a_known_epoch() {
        let known = epoch("a", Origin::New, 10);
        assert_eq!(judge(&known, &State::Intact(known.clone())), Verdict::Same);
        assert_eq!(judge(&known, &State::Missing), Verdict::Lost);
        assert_eq!(judge(&known, &State::Damaged), Verdict::Lost);
        assert_eq!(judge(&known, &State::Intact(epoch("b", Origin::New, 20))), Verdict::Lost, "another deployment");
        let restored = epoch("c", Origin::Restore, 20);
        assert_eq!(judge(&known, &State::Intact(restored.clone())), Verdict::Recovered(restored));
        assert_eq!(judge(&known, &State::Intact(epoch("d", Origin::Adopt, 5))), Verdict::Lost, "older than known");
    }

    #[test]
    fn a_known_epoch_follows_recoveries_and_a_first_one_is_taken_by_policy() {
        let new = State::Intact(epoch("a", Origin::New, 10));
        let restored = epoch("b", Origin::Restore, 20);
        // Ingest, which started on a lost store: only a recovery's epoch ends that.
        let ingest = Known::new(None, false);
        assert_eq!(ingest.judge(&new), Verdict::Lost);
        assert!(!ingest.is_known());
        assert_eq!(ingest.judge(&State::Intact(restored.clone())), Verdict::Recovered(restored.clone()));
        assert_eq!(ingest.judge(&State::Intact(restored.clone())), Verdict::Same, "the recovery's epoch is known now");
        // The api, which may start before ingest made the first epoch.
        let api = Known::new(None, true);
        assert_eq!(api.judge(&State::Missing), Verdict::Lost);
        assert!(matches!(api.judge(&new), Verdict::Recovered(_)));
        assert_eq!(api.judge(&new), Verdict::Same);
        assert_eq!(api.judge(&State::Missing), Verdict::Lost, "a wipe after that is a loss");
        assert_eq!(api.judge(&new), Verdict::Same, "and the known epoch stays");
    }

    #[test]
    fn only_a_new_epoch_cut_short_is_finished() {
        let new = epoch("a", Origin::New, 10);
        assert_eq!(unfinished_new(&[None, Some(new.clone()), None]), Some(&new));
        assert_eq!(unfinished_new(&[None, None]), None, "nothing started");
        assert_eq!(unfinished_new(&[Some(new.clone()), Some(epoch("b", Origin::New, 10))]), None, "two ids");
        assert_eq!(unfinished_new(&[None, Some(epoch("c", Origin::Restore, 10))]), None, "a recovery's epoch");
        assert_eq!(judge_copies(&[None, Some(new.clone())]), State::Damaged);
        assert_eq!(judge_copies(&[Some(new.clone()), Some(new.clone())]), State::Intact(new));
    }

    #[test]
    fn epochs_round_trip_as_json() {
        let e = Epoch::fresh(Origin::Rebuild);
        assert_eq!(e.id.len(), 16);
        assert_eq!(serde_json::from_str::<Epoch>(&e.to_json()).expect("json"), e);
        assert!(e.to_json().contains("\"origin\":\"rebuild\""));
    }
}
