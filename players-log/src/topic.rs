//! Creating the log's topic when it is missing: compacted, so it keeps the
//! newest record per player for as long as the topic lives.
//!
//! Deployments create it beforehand with their replication
//! (`docker-compose.yml`, docs/deployment.md); a publisher that finds it
//! missing creates it with the broker's default replication, so an erasure
//! is never refused for want of the topic.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::{PlayersLog, Result};

impl PlayersLog {
    /// Creates the topic (one partition, `cleanup.policy=compact`) unless it exists.
    ///
    /// # Errors
    /// [`crate::Error::Kafka`] when the broker refuses or does not answer.
    pub async fn ensure_topic(&self) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> = self.client().create().map_err(|e| self.kafka(e))?;
        // -1: the broker's default replication factor (KIP-464).
        let topic = NewTopic::new(&self.topic, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
        let options = AdminOptions::new().operation_timeout(Some(self.timeout)).request_timeout(Some(self.timeout));
        let results = admin.create_topics(&[topic], &options).await.map_err(|e| self.kafka(e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(self.kafka(rdkafka::error::KafkaError::AdminOp(code))),
            }
        }
        Ok(())
    }
}
