//! The audit log of admin actions: who did what to which board, when, and how it ended.
//!
//! Entries go to the Redis stream `lb:audit` (capped near [`AUDIT_MAX_LEN`]
//! entries, `XADD MAXLEN ~`), whose ids are the times they were written, so
//! every process that administers boards (the api's admin routes, `lb-admin`)
//! writes one log that any of them can read back, newest first.
//!
//! Requests refused for their credentials (401, 403) go to a stream of their
//! own, `lb:audit:refused` (capped near [`REFUSED_MAX_LEN`]), and the api
//! records at most a stated number of them per second: anyone can send those,
//! and they must never push the real entries out of the log.

use redis::Value;

use crate::connection::reply::{as_array, as_bytes};
use crate::connection::store::Store;
use crate::{Error, Result};

/// The stream.
pub const AUDIT_KEY: &str = "lb:audit";

/// About how many entries the stream keeps.
pub const AUDIT_MAX_LEN: usize = 100_000;

/// The stream of requests refused for their credentials.
pub const REFUSED_KEY: &str = "lb:audit:refused";

/// About how many refused requests that stream keeps.
pub const REFUSED_MAX_LEN: usize = 10_000;

/// Which log an entry goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// Actions by authenticated administrators, whatever their result.
    Actions,
    /// Requests refused for their credentials.
    Refused,
}

impl Log {
    const fn key_and_cap(self) -> (&'static str, usize) {
        match self {
            Self::Actions => (AUDIT_KEY, AUDIT_MAX_LEN),
            Self::Refused => (REFUSED_KEY, REFUSED_MAX_LEN),
        }
    }
}

/// One admin action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    /// Who acted: a token's name, `cli:<user>`, or `anonymous` for a refused request.
    pub who: String,
    /// What: `list_boards`, `delete_board`, ...
    pub action: String,
    /// The board acted on, or empty.
    pub target: String,
    /// `ok`, or the error code the action ended with.
    pub result: String,
}

/// An entry as read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recorded {
    /// The stream id: milliseconds since the Unix epoch, a dash, a sequence number.
    pub id: String,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// Appends `entry` to the log of actions.
///
/// # Errors
/// [`Error::Redis`] when Redis fails.
pub async fn record(store: &Store, entry: &AuditEntry) -> Result<()> {
    record_in(store, Log::Actions, entry).await
}

/// Appends `entry` to `log`.
///
/// # Errors
/// [`Error::Redis`] when Redis fails.
pub async fn record_in(store: &Store, log: Log, entry: &AuditEntry) -> Result<()> {
    let (key, cap) = log.key_and_cap();
    let _: Value = store
        .query(
            redis::cmd("XADD")
                .arg(key)
                .arg("MAXLEN")
                .arg("~")
                .arg(cap)
                .arg("*")
                .arg("who")
                .arg(&entry.who)
                .arg("action")
                .arg(&entry.action)
                .arg("target")
                .arg(&entry.target)
                .arg("result")
                .arg(&entry.result),
        )
        .await?;
    Ok(())
}

/// The newest `count` entries of the log of actions, newest first.
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for an entry this module did not write.
pub async fn recent(store: &Store, count: usize) -> Result<Vec<Recorded>> {
    recent_in(store, Log::Actions, count).await
}

/// The newest `count` entries of `log`, newest first.
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for an entry this module did not write.
pub async fn recent_in(store: &Store, log: Log, count: usize) -> Result<Vec<Recorded>> {
    let (key, _) = log.key_and_cap();
    let reply: Value = store.query(redis::cmd("XREVRANGE").arg(key).arg("+").arg("-").arg("COUNT").arg(count)).await?;
    as_array(reply)?.into_iter().map(parse_entry).collect()
}

fn text(v: Value) -> Result<String> {
    String::from_utf8(as_bytes(v)?).map_err(|_| Error::Corrupt("audit entry is not UTF-8".into()))
}

fn parse_entry(v: Value) -> Result<Recorded> {
    let mut parts = as_array(v)?.into_iter();
    let id = text(parts.next().unwrap_or(Value::Nil))?;
    let mut entry =
        AuditEntry { who: String::new(), action: String::new(), target: String::new(), result: String::new() };
    let fields = parts.next().map(as_array).transpose()?.unwrap_or_default();
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let value = text(value)?;
        match text(name)?.as_str() {
            "who" => entry.who = value,
            "action" => entry.action = value,
            "target" => entry.target = value,
            "result" => entry.result = value,
            other => return Err(Error::Corrupt(format!("audit entry field {other:?}"))),
        }
    }
    Ok(Recorded { id, entry })
}
