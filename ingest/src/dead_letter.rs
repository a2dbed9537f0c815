//! Dead letters: malformed or unwritable records, set aside on `scores.dlq` with why and where from.
//!
//! A dead letter carries the original key and value and these headers
//! (docs/contract.md#dead-letters): `error` (`"<code>: <detail>"`, the detail at
//! most 256 bytes), `error.code`, `original.topic`, `original.partition`,
//! `original.offset` and `original.size` (bytes of the original value).
//!
//! A dead letter always fits: when the original key and value would make it
//! larger than [`Limits::max_record_bytes`], each is cut to
//! [`Limits::prefix_bytes`] and the letter carries `truncated: true` and
//! `original.sha256` (hex of the whole original value). Should the broker
//! still refuse it as too large (a topic limit below ours), it is sent once
//! more with no key or value at all, only the headers. So no record, whatever
//! its size, can stop the pipeline here.

use std::time::Duration;

use leaderboard_contract::Rejection;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sha2::{Digest, Sha256};

use crate::record::OwnedRecord;

/// A record set aside and why.
#[derive(Debug, Clone)]
pub struct Reject {
    /// The record as consumed.
    pub record: OwnedRecord,
    /// Why it is set aside.
    pub rejection: Rejection,
}

/// Size limits of a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest dead letter sent whole (key, value and headers).
    pub max_record_bytes: usize,
    /// Bytes of key and of value kept when a letter would exceed `max_record_bytes`.
    pub prefix_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_record_bytes: 1_000_000, prefix_bytes: 64 * 1024 }
    }
}

/// Room kept for the record's framing and the headers' names and small values.
const FRAMING_BYTES: usize = 1024;

/// How much of the original a letter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Key and value whole when they fit, prefixes otherwise.
    Fitting,
    /// Headers only: the broker refused even the prefixes.
    HeadersOnly,
}

/// One dead letter, ready to send.
#[derive(Debug)]
pub struct Letter<'a> {
    /// The key (whole, a prefix, or none).
    pub key: Option<&'a [u8]>,
    /// The value (whole, a prefix, or none).
    pub value: Option<&'a [u8]>,
    /// The headers, in order.
    pub headers: Vec<(&'static str, String)>,
}

impl Letter<'_> {
    fn to_owned_headers(&self) -> OwnedHeaders {
        self.headers.iter().fold(OwnedHeaders::new_with_capacity(self.headers.len()), |h, (key, value)| {
            h.insert(Header { key, value: Some(value.as_bytes()) })
        })
    }
}

/// Builds the letter for `reject` from `source_topic`.
fn letter<'a>(reject: &'a Reject, source_topic: &str, limits: Limits, keep: Keep) -> Letter<'a> {
    let record = &reject.record;
    let mut headers = vec![
        (leaderboard_contract::ERROR_HEADER, reject.rejection.header_value()),
        ("error.code", reject.rejection.code.as_str().to_string()),
        ("original.topic", source_topic.to_string()),
        ("original.partition", record.partition.to_string()),
        ("original.offset", record.offset.to_string()),
        ("original.size", record.value_len().to_string()),
    ];
    let (key, value) = (record.key.as_deref(), record.value.as_deref());
    let whole = key.map_or(0, <[u8]>::len) + record.value_len() + headers_len(&headers) + FRAMING_BYTES;
    if keep == Keep::Fitting && whole <= limits.max_record_bytes {
        return Letter { key, value, headers };
    }
    let cut = if keep == Keep::Fitting { limits.prefix_bytes } else { 0 };
    let prefix = |b: Option<&'a [u8]>| b.map(|b| &b[..b.len().min(cut)]).filter(|b| !b.is_empty());
    headers.push(("truncated", "true".to_string()));
    headers.push(("original.sha256", hex_sha256(value.unwrap_or_default())));
    Letter { key: prefix(key), value: prefix(value), headers }
}

fn headers_len(headers: &[(&str, String)]) -> usize {
    headers.iter().map(|(k, v)| k.len() + v.len()).sum()
}

fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Why dead letters could not be sent (the broker is unreachable, or refuses).
#[derive(Debug, thiserror::Error)]
#[error("{failed} dead letter(s) not acknowledged: {first}")]
pub struct SendError {
    /// How many letters of the call were not acknowledged.
    pub failed: usize,
    /// The first error.
    pub first: KafkaError,
}

/// The dead-letter producer.
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    source_topic: String,
    limits: Limits,
}

impl DeadLetters {
    /// Dead letters of `source_topic` go to `topic` through `producer`.
    pub fn new(producer: FutureProducer, topic: String, source_topic: String, limits: Limits) -> Self {
        Self { producer, topic, source_topic, limits }
    }

    /// Sends the letters of `rejects` still marked `false` in `sent`, waiting
    /// for every acknowledgement, and marks each one acknowledged; so a retry
    /// after a partial failure sends only what is missing.
    ///
    /// # Errors
    /// [`SendError`] when any letter was not acknowledged (they stay `false`).
    pub async fn send(&self, rejects: &[Reject], sent: &mut [bool]) -> Result<(), SendError> {
        let pending: Vec<usize> = (0..rejects.len()).filter(|&i| !sent[i]).collect();
        let results =
            futures::future::join_all(pending.iter().map(|&i| self.send_one(&rejects[i], Keep::Fitting))).await;
        let mut first = None;
        let mut failed = 0;
        for (&i, result) in pending.iter().zip(results) {
            match result {
                Ok(()) => sent[i] = true,
                Err(e) => {
                    failed += 1;
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), |first| Err(SendError { failed, first }))
    }

    async fn send_one(&self, reject: &Reject, keep: Keep) -> Result<(), KafkaError> {
        let result = self.produce(&letter(reject, &self.source_topic, self.limits, keep)).await;
        match result {
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)) if keep == Keep::Fitting => {
                metrics::counter!("ingest_dead_letters_headers_only_total").increment(1);
                self.produce(&letter(reject, &self.source_topic, self.limits, Keep::HeadersOnly)).await
            }
            other => other,
        }
    }

    async fn produce(&self, letter: &Letter<'_>) -> Result<(), KafkaError> {
        let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(letter.to_owned_headers());
        if let Some(k) = letter.key {
            out = out.key(k);
        }
        if let Some(v) = letter.value {
            out = out.payload(v);
        }
        self.producer.send(out, SEND_TIMEOUT).await.map(|_| ()).map_err(|(e, _)| e)
    }
}

/// How long one letter may wait in the producer's queue.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use leaderboard_contract::{MAX_DETAIL_BYTES, RejectionCode, decode_record};

    use super::*;

    fn reject(key: Option<Vec<u8>>, value: Option<Vec<u8>>) -> Reject {
        let rejection = decode_record(key.as_deref(), value.as_deref()).expect_err("malformed");
        Reject {
            record: OwnedRecord {
                partition: 3,
                offset: 42,
                timestamp_ms: None,
                key,
                value,
                refused_signature: None,
                unverifiable: false,
            },
            rejection,
        }
    }

    fn header<'a>(l: &'a Letter<'_>, name: &str) -> Option<&'a str> {
        l.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn small_records_keep_everything() {
        let r = reject(Some(b"p1".to_vec()), Some(b"garbage".to_vec()));
        let l = letter(&r, "scores", Limits::default(), Keep::Fitting);
        assert_eq!((l.key, l.value), (Some(&b"p1"[..]), Some(&b"garbage"[..])));
        assert_eq!(header(&l, "error.code"), Some("not_json"));
        assert_eq!(header(&l, "original.topic"), Some("scores"));
        assert_eq!(header(&l, "original.partition"), Some("3"));
        assert_eq!(header(&l, "original.offset"), Some("42"));
        assert_eq!(header(&l, "original.size"), Some("7"));
        assert_eq!(header(&l, "truncated"), None);
    }

    #[test]
    fn oversized_records_keep_prefixes_and_a_digest() {
        let limits = Limits::default();
        for (key, value) in [
            (None, vec![b'x'; 999_900]),
            (Some(vec![0x01; 200_000]), vec![b'v'; 900_000]),
            (Some(vec![b'k'; 600_000]), vec![b'v'; 600_000]),
        ] {
            let r = reject(key.clone(), Some(value.clone()));
            let l = letter(&r, "scores", limits, Keep::Fitting);
            let size = l.key.map_or(0, <[u8]>::len) + l.value.map_or(0, <[u8]>::len) + headers_len(&l.headers);
            assert!(size + FRAMING_BYTES <= limits.max_record_bytes, "{size} bytes");
            assert!(l.value.is_some_and(|v| v.len() <= limits.prefix_bytes && value.starts_with(v)));
            assert!(l.key.is_none_or(|k| k.len() <= limits.prefix_bytes));
            assert_eq!(header(&l, "truncated"), Some("true"));
            assert_eq!(header(&l, "original.sha256"), Some(hex_sha256(&value).as_str()));
            assert_eq!(header(&l, "original.size"), Some(value.len().to_string().as_str()));
            let error = header(&l, "error").expect("error header");
            assert!(error.len() <= RejectionCode::KeyMismatch.as_str().len() + 2 + MAX_DETAIL_BYTES, "{error}");
        }
    }

    #[test]
    fn records_that_fit_are_kept_whole_whatever_their_key() {
        let key = vec![0x01; 200_000];
        let r = reject(Some(key.clone()), Some(br#"{"player":"p","score":1}"#.to_vec()));
        let l = letter(&r, "scores", Limits::default(), Keep::Fitting);
        assert_eq!(l.key, Some(&key[..]));
        assert_eq!(header(&l, "error.code"), Some("key_mismatch"));
        assert!(header(&l, "error").is_some_and(|e| e.len() <= "key_mismatch: ".len() + MAX_DETAIL_BYTES));
        assert_eq!(header(&l, "truncated"), None);
    }

    #[test]
    fn headers_only_as_the_last_resort() {
        let r = reject(Some(vec![b'k'; 10]), Some(vec![b'v'; 10]));
        let l = letter(&r, "scores", Limits::default(), Keep::HeadersOnly);
        assert_eq!((l.key, l.value), (None, None));
        assert_eq!(header(&l, "truncated"), Some("true"));
        assert_eq!(header(&l, "original.sha256"), Some(hex_sha256(&[b'v'; 10]).as_str()));
        assert_eq!(hex_sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
