//! A Kafka record detached from the consumer, so it can cross task boundaries.

use leaderboard_contract::Rejection;
use leaderboard_contract::signature::{KEY_ID_HEADER, SIGNATURE_HEADER, Verifier};
use rdkafka::message::{BorrowedMessage, Headers, Message};

/// Bytes charged per record on top of its key and value (the struct, the
/// allocations' headers), so the byte budget also bounds the record count.
pub const RECORD_OVERHEAD_BYTES: usize = 128;

/// The parts of a consumed record that ingest needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Partition it came from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// The record's Kafka timestamp in milliseconds, when it has one.
    pub timestamp_ms: Option<i64>,
    /// The record key, if any.
    pub key: Option<Vec<u8>>,
    /// The record value, if any.
    pub value: Option<Vec<u8>>,
    /// Why its signature headers are refused (`leaderboard_contract::signature`),
    /// checked on the poll thread while the message is still borrowed, so no
    /// header is copied; `None` when they verify or signing is off.
    pub refused_signature: Option<Rejection>,
    /// A replay's record signed with a key the replay was not given: refused,
    /// and the recovery fails (the live workers may have judged it otherwise).
    pub unverifiable: bool,
}

/// Checks `message`'s `lb-key-id` and `lb-signature` headers with `verifier`;
/// and whether the verifier lacks the key it names ([`Verifier::lacks`]).
fn check_signature(message: &BorrowedMessage<'_>, verifier: &Verifier) -> (Option<Rejection>, bool) {
    if !verifier.is_active() {
        return (None, false);
    }
    let (mut key_id, mut signature) = (None, None);
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            match header.key {
                KEY_ID_HEADER => key_id = Some(header.value.unwrap_or_default()),
                SIGNATURE_HEADER => signature = Some(header.value.unwrap_or_default()),
                _ => {}
            }
        }
    }
    let (key, value) = (message.key().unwrap_or_default(), message.payload().unwrap_or_default());
    (verifier.check(key_id, signature, key, value).err(), verifier.lacks(key_id))
}

impl OwnedRecord {
    /// Copies what ingest needs out of a borrowed message, checking its signature.
    pub fn from_message(message: &BorrowedMessage<'_>, verifier: &Verifier) -> Self {
        let (refused_signature, unverifiable) = check_signature(message, verifier);
        Self {
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            refused_signature,
            unverifiable,
        }
    }

    /// Bytes of the value (0 without one): `original.size` in a dead letter.
    pub fn value_len(&self) -> usize {
        self.value.as_ref().map_or(0, Vec::len)
    }

    /// The memory this record is charged against the byte budget.
    pub fn charge(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.value_len() + RECORD_OVERHEAD_BYTES
    }
}
