//! Season results as a reward service reads them (docs/contract.md#season-results):
//! the results topic from its start, the latest revision of each `id` kept,
//! compared with the oracle's top rows and total of each closed season.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use leaderboard_semantics::season_result::SeasonResult;
use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

use crate::config::World;
use crate::verify::Expected;

/// One wanted result: its `id` and, for an amended season, the `amended_at` its revision must carry.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// `<board>/<season>`.
    pub id: String,
    /// The seasons route's `amended_at` (RFC 3339), if the season was amended.
    pub amended_at: Option<String>,
}

/// Reads the results topic from its start until every wanted result has
/// arrived (amended ones at their amendment's revision) or `timeout` passed;
/// returns the latest revision of each id read. Off the runtime's threads.
///
/// # Errors
/// When the consumer cannot be created or the topic cannot be read.
pub async fn read(
    world: &World,
    wanted: Vec<Wanted>,
    timeout: Duration,
) -> anyhow::Result<HashMap<String, SeasonResult>> {
    let group = format!("loadgen-results-{}-{}", std::process::id(), rand::random::<u32>());
    let consumer: BaseConsumer = crate::kafka_config(
        world,
        &[("group.id", &group), ("auto.offset.reset", "earliest"), ("enable.auto.commit", "false")],
    )?
    .create()
    .context("results consumer")?;
    consumer.subscribe(&[&world.season_results_topic]).context("subscribing to the results topic")?;
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        let mut latest: HashMap<String, SeasonResult> = HashMap::new();
        let done = |latest: &HashMap<String, SeasonResult>| {
            wanted
                .iter()
                .all(|w| latest.get(&w.id).is_some_and(|r| w.amended_at.is_none() || r.amended_at == w.amended_at))
        };
        while !done(&latest) && Instant::now() < deadline {
            let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
            // A topic not created yet, a broker restarting: the client retries.
            let Ok(message) = message else { continue };
            let Some(payload) = message.payload() else { continue };
            let Ok(result) = serde_json::from_slice::<SeasonResult>(payload) else { continue };
            // The latest record of the highest revision: a record of an earlier run with the same id comes first.
            if latest.get(&result.id).is_none_or(|held| held.revision <= result.revision) {
                latest.insert(result.id.clone(), result);
            }
        }
        latest
    })
    .await
    .context("the results reader")
}

/// The differences between a season's result on one board and the oracle (empty: equal).
pub fn compare(result: Option<&SeasonResult>, expected: &Expected) -> Vec<String> {
    let Some(result) = result else { return vec!["no result record".into()] };
    let mut out = Vec::new();
    if result.total != expected.total() {
        out.push(format!("result total {} vs {}", result.total, expected.total()));
    }
    if result.top.len() != expected.top.len() {
        out.push(format!("result has {} top rows vs {}", result.top.len(), expected.top.len()));
    }
    for (got, want) in result.top.iter().zip(&expected.top) {
        let meta = got.meta.as_ref().and_then(|m| serde_json::to_value(m).ok());
        if (got.rank, got.player.as_str(), got.score, &meta)
            != (want.rank, want.player.as_str(), want.score, &want.meta)
        {
            out.push(format!(
                "result row {}: {} {} rank {} vs {} {} rank {}",
                want.rank, got.player, got.score, got.rank, want.player, want.score, want.rank
            ));
        }
    }
    out
}
