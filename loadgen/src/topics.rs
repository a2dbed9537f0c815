//! Creating the topics.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::World;

/// Creates the score topic, the dead-letter topic and the season results
/// topic (one partition: a few records a day, in order); existing topics are kept.
///
/// # Errors
/// When the broker is unreachable or refuses.
pub async fn create(world: &World, partitions: i32, dlq_partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = crate::kafka_config(world, &[])?.create().context("admin client")?;
    let topics = [
        NewTopic::new(&world.topic, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&world.dlq_topic, dlq_partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&world.season_results_topic, 1, TopicReplication::Fixed(1)),
    ];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&topics, &options).await.context("creating topics")? {
        match result {
            Ok(t) => tracing::info!(topic = %t, "topic created"),
            Err((t, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::info!(topic = %t, "topic exists"),
            Err((t, e)) => anyhow::bail!("creating topic {t}: {e}"),
        }
    }
    Ok(())
}
