//! Erasures and bans made through any process reach this api's caches: the
//! registry's version (`leaderboard_store::marker::registry`) is read every
//! `--watermark-refresh`, and a change drops every cached page and closed
//! season total, as the process that took the admin call did at once.
//!
//! An erasure raises the version when it marks the player and again once the
//! player is removed everywhere, so a replica that shows the second raise
//! also holds the removal (single Redis and Sentinel groups replicate one
//! node in order): a page read after the drop never shows the player.

use std::time::Duration;

use leaderboard_store::marker::registry;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Watches the registry's version every `every` until `shutdown`.
pub async fn watch(state: AppState, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen: Option<u64> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                match registry::version(state.backend.router().store()).await {
                    Ok(version) => {
                        if seen.is_some_and(|s| s != version) {
                            tracing::info!(version, "players were erased or banned: cached answers dropped");
                            state.forget_answers();
                        }
                        seen = Some(version);
                    }
                    Err(e) => tracing::debug!(class = e.failure().as_str(), "player registry not readable"),
                }
            }
        }
    }
}
