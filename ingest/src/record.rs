//! A Kafka record detached from the consumer, so it can cross task boundaries.

use rdkafka::message::{BorrowedMessage, Message};

/// The parts of a consumed record that ingest needs.
#[derive(Debug, Clone)]
pub struct OwnedRecord {
    /// Partition it came from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
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
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
        }
    }
}
