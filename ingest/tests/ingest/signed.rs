//! Signed events end to end: with signing required, only records signed by
//! a configured key are applied; forged, unknown-key and unsigned records go
//! to the dead letters with their codes, and keys rotate.

use std::time::Duration;

use leaderboard_contract::BoardId;
use leaderboard_contract::signature::{KEY_ID_HEADER, ProducerKey, SIGNATURE_HEADER};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use crate::helpers::{
    Topics, Worker, config_with, oracle_of, producer, random_events, read_dlq, redis_url, router, unique,
    wait_for_committed, wait_for_oracle,
};

const OLD: &str = "gs-2025:000102030405060708090a0b0c0d0e0f";
const NEW: &str = "gs-2026:f0e1d2c3b4a5968778695a4b3c2d1e0f";

#[tokio::test]
async fn only_events_signed_by_a_configured_key_are_applied() {
    let topics = Topics::create(2).await;
    let board = BoardId::new(unique("signed")).expect("board");
    let (old, new) = (ProducerKey::parse(OLD).expect("key"), ProducerKey::parse(NEW).expect("key"));
    let stranger = ProducerKey::parse("gs-2026:00000000000000000000000000000000").expect("same id, other secret");
    let valid = random_events(21, &board, 80, 600);
    let mut forged = random_events(22, &board, 80, 40);
    for e in &mut forged {
        e.score += 5000; // would top the board
    }
    let producer = producer();
    let send = |key: Vec<u8>, value: Vec<u8>, headers: Option<OwnedHeaders>| {
        let producer = producer.clone();
        let topic = topics.scores.clone();
        async move {
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&topic).key(key.as_slice()).payload(value.as_slice());
            if let Some(h) = headers {
                record = record.headers(h);
            }
            producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| e).expect("produce");
        }
    };
    let headers = |id: &str, signature: &str| {
        OwnedHeaders::new()
            .insert(Header { key: KEY_ID_HEADER, value: Some(id) })
            .insert(Header { key: SIGNATURE_HEADER, value: Some(signature) })
    };
    let mut expected_codes = Vec::new();
    for (i, e) in valid.iter().enumerate() {
        // Rotation: half signed with the old key, half with the new one, both configured.
        let signer = if i % 2 == 0 { &old } else { &new };
        let value = e.to_json().into_bytes();
        let signature = signer.sign(e.key(), &value);
        send(e.key().to_vec(), value, Some(headers(signer.id(), &signature))).await;
    }
    for (i, e) in forged.iter().enumerate() {
        let value = e.to_json().into_bytes();
        let (hdrs, code) = match i % 4 {
            // A valid signature of another value: the score was changed after signing.
            0 => (Some(headers(old.id(), &old.sign(e.key(), b"{}"))), "bad_signature"),
            1 => (Some(headers(stranger.id(), &stranger.sign(e.key(), &value))), "bad_signature"),
            2 => (Some(headers("gs-1999", &old.sign(e.key(), &value))), "bad_signature"),
            _ => (None, "unsigned"),
        };
        expected_codes.push(code);
        send(e.key().to_vec(), value, hdrs).await;
    }
    let extra = ["--producer-keys", &format!("{OLD},{NEW}"), "--require-signatures"];
    let worker = Worker::start(config_with(&topics, &redis_url(), "single", &extra));
    let reader = router(&redis_url(), "single").await;
    wait_for_oracle(&reader, &oracle_of(&valid), &board, Duration::from_secs(60)).await;
    wait_for_committed(&topics, Duration::from_secs(60)).await;
    let report = worker.stop().await;
    assert_eq!(report.dead_lettered, forged.len() as u64, "every forged or unsigned record, and only those");
    let mut codes: Vec<String> =
        read_dlq(&topics.dlq, forged.len()).await.iter().map(|d| d.header("error.code").to_string()).collect();
    codes.sort();
    expected_codes.sort_unstable();
    assert_eq!(codes, expected_codes);
}

#[test]
fn signing_required_without_keys_is_a_configuration_error() {
    let topics = Topics { scores: "s".into(), dlq: "s.dlq".into(), group: "g".into(), results: "s.seasons".into() };
    let config = config_with(&topics, &redis_url(), "single", &["--require-signatures"]);
    let error = config.validate().expect_err("no keys");
    assert!(error.to_string().contains("no producer key"), "{error}");
    let with_key = config_with(&topics, &redis_url(), "single", &["--producer-keys", OLD, "--require-signatures"]);
    assert!(with_key.validate().is_ok());
    assert!(!format!("{with_key:?}").contains("0a0b0c0d0e0f"), "the secret never shows in Debug");
}
