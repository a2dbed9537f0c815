//! A Kafka record detached from the consumer, so it can cross task boundaries.

use leaderboard_contract::signature::{KEY_ID_HEADER, SIGNATURE_HEADER};
use rdkafka::message::{BorrowedMessage, Headers, Message};

/// Longest signature header value kept (longer ones are cut, and then do not verify).
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 128;

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
    /// The `lb-key-id` and `lb-signature` headers, when present (cut at
    /// [`MAX_SIGNATURE_HEADER_BYTES`]; other headers are not kept).
    pub signature: Signature,
}

/// A record's signature headers (`leaderboard_contract::signature`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signature {
    /// `lb-key-id`.
    pub key_id: Option<Vec<u8>>,
    /// `lb-signature`.
    pub signature: Option<Vec<u8>>,
}

impl Signature {
    fn of(message: &BorrowedMessage<'_>) -> Self {
        let mut found = Self::default();
        let Some(headers) = message.headers() else { return found };
        for header in headers.iter() {
            let slot = match header.key {
                KEY_ID_HEADER => &mut found.key_id,
                SIGNATURE_HEADER => &mut found.signature,
                _ => continue,
            };
            let value = header.value.unwrap_or_default();
            *slot = Some(value[..value.len().min(MAX_SIGNATURE_HEADER_BYTES)].to_vec());
        }
        found
    }

    fn len(&self) -> usize {
        self.key_id.as_ref().map_or(0, Vec::len) + self.signature.as_ref().map_or(0, Vec::len)
    }
}

impl OwnedRecord {
    /// Copies what ingest needs out of a borrowed message.
    pub fn from_message(message: &BorrowedMessage<'_>) -> Self {
        Self {
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            signature: Signature::of(message),
        }
    }

    /// Bytes of the value (0 without one): `original.size` in a dead letter.
    pub fn value_len(&self) -> usize {
        self.value.as_ref().map_or(0, Vec::len)
    }

    /// The memory this record is charged against the byte budget.
    pub fn charge(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.value_len() + self.signature.len() + RECORD_OVERHEAD_BYTES
    }
}
