//! Consumer lag of the ingest group: records produced but not yet committed.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::config::World;

/// Reads the group's committed offsets and the topic's end offsets.
pub struct LagProbe {
    consumer: BaseConsumer,
    topic: String,
}

impl LagProbe {
    /// A probe for `world.group` on `world.topic`. It never joins the group.
    ///
    /// # Errors
    /// When the client cannot be created.
    pub fn new(world: &World) -> anyhow::Result<Self> {
        let mut config = crate::kafka_config(world, &[])?;
        config.set("group.id", &world.group).set("enable.auto.commit", "false");
        Ok(Self { consumer: config.create().context("lag probe client")?, topic: world.topic.clone() })
    }

    /// Total lag over all partitions (blocking: call from a blocking thread).
    ///
    /// # Errors
    /// When the broker does not answer.
    pub fn lag(&self) -> anyhow::Result<i64> {
        let wait = Duration::from_secs(5);
        let metadata = self.consumer.fetch_metadata(Some(&self.topic), wait).context("metadata")?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(rdkafka::metadata::MetadataPartition::id))
            .collect();
        let mut tpl = TopicPartitionList::new();
        for &p in &partitions {
            tpl.add_partition(&self.topic, p);
        }
        let committed = self.consumer.committed_offsets(tpl, wait).context("committed offsets")?;
        let mut lag = 0;
        for p in partitions {
            let (low, high) = self.consumer.fetch_watermarks(&self.topic, p, wait).context("watermarks")?;
            let at = match committed.find_partition(&self.topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => low,
            };
            lag += (high - at).max(0);
        }
        Ok(lag)
    }
}
