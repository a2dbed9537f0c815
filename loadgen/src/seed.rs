//! Seeding: every player's initial best score, written straight into Redis,
//! on the player's board.

use std::time::Instant;

use anyhow::Context as _;
use futures::stream::{self, StreamExt, TryStreamExt};
use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::{LayoutSpec, Router, RouterOptions, Store};

use crate::config::World;
use crate::population::Population;

/// Writes the initial score of every player through the store.
///
/// # Errors
/// Invalid layout or board, or Redis failing.
pub async fn seed(world: &World, batch: usize) -> anyhow::Result<()> {
    let layout: LayoutSpec = world.store.layout()?;
    let boards = world.board_set()?;
    let store = Store::connect(&world.store.target()?, world.store.store_options()?).await.context("redis")?;
    // Seeding makes a new store: give it the epoch a deployment's first ingest worker would.
    leaderboard_store::marker::epoch::create_new(&store).await.context("creating the store's epoch")?;
    let router = Router::new(store, layout, RouterOptions::default());
    // The rules first: order and ties are fixed when a board is created.
    let rules = world.rules();
    for board in boards.ids() {
        router.set_rules(board, rules).await.with_context(|| format!("setting the rules of board {board}"))?;
    }
    let scoring = world.scoring();
    let meta = world.event_meta();
    let started = Instant::now();
    let players = world.players;
    let batches = (0..players).step_by(batch.max(1));
    stream::iter(batches)
        .map(|from| {
            let (router, boards) = (&router, &boards);
            async move {
                let updates: Vec<ScoreUpdate> = (from..(from + batch).min(players))
                    .map(|i| {
                        let key = Population::initial_score(world.seed, i);
                        ScoreUpdate {
                            board: boards.of(i).clone(),
                            player: crate::population::player(i),
                            score: scoring.score(key),
                            // Seeded scores were reached before the run: at the epoch.
                            time_ms: 0,
                            meta: meta.map(|m| m.of(i, key)),
                            source: None,
                        }
                    })
                    .collect();
                // Each player's score as it is before the run, whatever the operator.
                router.load(&updates).await
            }
        })
        .buffer_unordered(4)
        .try_for_each(|_closed| async { Ok(()) })
        .await
        .context("seeding")?;
    for board in boards.ids() {
        router.refresh_sizes(board).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!("seeded {players} players on {boards} in {secs:.1}s ({:.0} players/s)", players as f64 / secs);
    Ok(())
}
