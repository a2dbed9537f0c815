//! The audit log of admin actions: who did what to which board, when, and how it ended.
//!
//! Entries go to the Redis stream `lb:audit` (capped near [`AUDIT_MAX_LEN`]
//! entries, `XADD MAXLEN ~`), whose ids are the times they were written, so
//! every process that administers boards (the api's admin routes, `lb-admin`)
//! writes one log that any of them can read back, newest first.

use redis::Value;

use crate::store::{Store, as_array, as_bytes};
use crate::{Error, Result};

/// The stream.
pub const AUDIT_KEY: &str = "lb:audit";

/// About how many entries the stream keeps.
pub const AUDIT_MAX_LEN: usize = 100_000;

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

/// Appends `entry` to the log.
///
/// # Errors
/// [`Error::Redis`] when Redis fails.
pub async fn record(store: &Store, entry: &AuditEntry) -> Result<()> {
    let _: Value = store
        .query(
            redis::cmd("XADD")
                .arg(AUDIT_KEY)
                .arg("MAXLEN")
                .arg("~")
                .arg(AUDIT_MAX_LEN)
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

/// The newest `count` entries, newest first.
///
/// # Errors
/// [`Error::Redis`] when Redis fails; [`Error::Corrupt`] for an entry this module did not write.
pub async fn recent(store: &Store, count: usize) -> Result<Vec<Recorded>> {
    let reply: Value =
        store.query(redis::cmd("XREVRANGE").arg(AUDIT_KEY).arg("+").arg("-").arg("COUNT").arg(count)).await?;
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
