//! The broker itself: a consumer group commits offsets and resumes exactly there.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};

use crate::helpers::{brokers, create_topic, produce_raw, producer, unique};

fn group_consumer(group: &str, topic: &str) -> StreamConsumer {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    c
}

async fn take(consumer: &StreamConsumer, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {n} records", out.len()))
            .expect("record");
        out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
    }
    out
}

#[tokio::test]
async fn group_commits_and_resumes_exactly() {
    let topic = unique("roundtrip");
    create_topic(&topic, 1).await;
    let group = unique("group");
    let records: Vec<_> = (0..300).map(|i| (Some(b"k".to_vec()), Some(format!("r{i}").into_bytes()))).collect();
    produce_raw(&producer(), &topic, &records).await;

    let first = group_consumer(&group, &topic);
    let got = take(&first, 120).await;
    assert_eq!(got, (0..120).map(|i| format!("r{i}")).collect::<Vec<_>>());
    first.commit_consumer_state(CommitMode::Sync).expect("commit");
    drop(first);

    let second = group_consumer(&group, &topic);
    let rest = take(&second, 180).await;
    assert_eq!(rest, (120..300).map(|i| format!("r{i}")).collect::<Vec<_>>(), "resumed exactly after the commit");
    // Nothing more: no record was delivered twice.
    let extra = tokio::time::timeout(Duration::from_secs(2), second.recv()).await;
    assert!(extra.is_err(), "unexpected extra record");
}
