//! A Kafka record detached from the consumer, so it can cross task boundaries.

use rdkafka::message::{BorrowedMessage, Message};

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
