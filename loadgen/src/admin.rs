//! The erasures and bans of a run ([`crate::marks::Plan`]) through the api's
//! admin routes, and the reads that check them while the load runs.
//!
//! Each call is made when due, with the admin token as a bearer token (never
//! printed), and retried on a transport error or a 5xx (erasing and banning
//! are idempotent; an erasure made again moves its time forward, and the
//! oracle takes the time of the answer that came back). After each call,
//! every player called about so far is read again: their standing, the rows
//! around them and the top page of their board; each answer is an
//! [`Observation`] that [`crate::marks::judge`] judges after the run.

use std::collections::HashSet;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::boards::BoardSet;
use crate::config::Secret;
use crate::marks::{Done, Kind, Observation, Plan, Planned, Seen};
use crate::population::player_id;

/// Attempts of one call (transport errors and 5xx are tried again).
const ATTEMPTS: u32 = 3;
/// Wait before the second attempt; doubled for each next one.
const RETRY_AFTER: Duration = Duration::from_millis(250);
/// Reads in flight during a round of checks.
const CHECK_CONCURRENCY: usize = 8;

/// Where the calls go.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Base URL of the api.
    pub api: String,
    /// The bearer token of its admin routes.
    pub token: Secret,
    /// The boards, each player on one.
    pub boards: BoardSet,
    /// The `season` every read asks for (`all` on boards with a reset), as in [`crate::read`].
    pub season: Option<String>,
}

/// The reads after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// A player's standing.
    Player(usize),
    /// The rows around a player.
    Around(usize),
    /// A board's top page.
    Top,
}

impl Check {
    fn route(self) -> &'static str {
        match self {
            Self::Player(_) => "player",
            Self::Around(_) => "around",
            Self::Top => "top",
        }
    }
}

/// What the calls and their reads gave.
#[derive(Debug, Default)]
pub struct AdminOutcome {
    /// Each call made, in order.
    pub done: Vec<Done>,
    /// What the reads after the calls showed of the plan's players.
    pub observations: Vec<Observation>,
    /// Reads after the calls that got no usable answer (not judged).
    pub unanswered: u64,
}

impl Admin {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    fn season_param(&self, separator: char) -> String {
        self.season.as_ref().map_or_else(String::new, |s| format!("{separator}season={s}"))
    }

    /// Checks that the api takes the token: `GET /v1/admin/players/{player}`.
    ///
    /// # Errors
    /// When the api refuses the token, has no admin routes, or does not answer.
    pub async fn check_token(&self, client: &reqwest::Client, player: usize) -> anyhow::Result<()> {
        let url = self.url(&format!("/v1/admin/players/{}", player_id(player)));
        let response = client.get(&url).bearer_auth(self.token.expose()).send().await?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "the api answered {status} to an admin request: --admin-token (LB_LOADGEN_ADMIN_TOKEN) must be one of \
             the api's admin tokens (--admin-tokens there, with the admin scope)"
        );
        Ok(())
    }

    /// Makes the calls of `plan`, each when due after `start`, checking after
    /// each; stops early at `stop`.
    pub async fn run(
        self,
        client: reqwest::Client,
        plan: Plan,
        start: Instant,
        stop: CancellationToken,
    ) -> AdminOutcome {
        let watched = plan.players();
        let mut out = AdminOutcome::default();
        for planned in plan.calls {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep_until(start + planned.after) => {}
            }
            let done = self.call(&client, planned).await;
            if let Some(failure) = &done.failure {
                tracing::warn!(player = %player_id(planned.player), failure, "an erasure or ban failed");
            }
            out.done.push(done);
            self.check(&client, &watched, &mut out).await;
        }
        out
    }

    /// One call, tried again on a transport error or a 5xx.
    async fn call(&self, client: &reqwest::Client, call: Planned) -> Done {
        let id = player_id(call.player);
        let url = match call.kind {
            Kind::Erase => self.url(&format!("/v1/admin/players/{id}")),
            Kind::BanAll | Kind::BanOwnBoard => self.url(&format!("/v1/admin/players/{id}/ban")),
        };
        let boards = match call.kind {
            Kind::BanOwnBoard => serde_json::json!([self.boards.of(call.player).as_str()]),
            Kind::Erase | Kind::BanAll => serde_json::json!("all"),
        };
        let body = serde_json::json!({"boards": boards, "closed_seasons": true, "reason": "loadgen: banned mid-load"});
        let started = Instant::now();
        let mut failure = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(RETRY_AFTER * 2_u32.pow(attempt - 1)).await;
            }
            let request = match call.kind {
                Kind::Erase => client.delete(&url),
                Kind::BanAll | Kind::BanOwnBoard => client.put(&url).json(&body),
            };
            let (status, answer) = match request.bearer_auth(self.token.expose()).send().await {
                Ok(r) => (r.status(), r.json::<serde_json::Value>().await.unwrap_or_default()),
                Err(e) => {
                    failure = format!("transport: {e}");
                    continue;
                }
            };
            if status.is_success() {
                let erased_at_ms = crate::verify::time_of_rfc3339(answer["erased_at"].as_str().unwrap_or(""))
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_millis()).ok());
                let failure = (call.kind == Kind::Erase && erased_at_ms.is_none())
                    .then(|| format!("an erasure answered without its time: {answer}"));
                return Done { call, started, returned: Instant::now(), erased_at_ms, failure };
            }
            failure = format!("HTTP {status} {}", answer["error"]["code"].as_str().unwrap_or(""));
            if !status.is_server_error() {
                break;
            }
        }
        Done { call, started, returned: Instant::now(), erased_at_ms: None, failure: Some(failure) }
    }

    /// Reads every player called about so far (`out.done`): their standing,
    /// the rows around them, and the top page of each of their boards.
    async fn check(&self, client: &reqwest::Client, watched: &HashSet<usize>, out: &mut AdminOutcome) {
        let mut reads: Vec<(String, Check)> = Vec::new();
        let mut boards = HashSet::new();
        for d in &out.done {
            let (p, id) = (d.call.player, player_id(d.call.player));
            let board = self.boards.of(p);
            let base = format!("/v1/boards/{board}/players/{id}");
            reads.push((self.url(&format!("{base}{}", self.season_param('?'))), Check::Player(p)));
            reads.push((self.url(&format!("{base}/around{}", self.season_param('?'))), Check::Around(p)));
            if boards.insert(board.clone()) {
                let top = format!("/v1/boards/{board}/top?limit=100{}", self.season_param('&'));
                reads.push((self.url(&top), Check::Top));
            }
        }
        let answers: Vec<_> = stream::iter(reads)
            .map(|(url, check)| async move {
                let sent = Instant::now();
                let answer = match client.get(&url).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        r.json::<serde_json::Value>().await.ok().map(|body| (status, body))
                    }
                    Err(_) => None,
                };
                (check, sent, Instant::now(), answer)
            })
            .buffer_unordered(CHECK_CONCURRENCY)
            .collect()
            .await;
        for (check, sent, done, answer) in answers {
            let route = check.route();
            let observe = |(player, seen): (usize, Seen)| Observation { player, route, sent, done, seen };
            let Some((status, body)) = answer else {
                out.unanswered += 1;
                continue;
            };
            match check {
                // The player's own standing: shown or missing.
                Check::Player(p) => match crate::marks::seen_in_standing(status, &body) {
                    Some(seen) => out.observations.push(observe((p, seen))),
                    None => out.unanswered += 1,
                },
                // The rows around a player: missing when they are, else every watched row.
                Check::Around(p) if status == 404 => match crate::marks::seen_in_standing(status, &body) {
                    Some(seen) => out.observations.push(observe((p, seen))),
                    None => out.unanswered += 1,
                },
                _ if status == 200 => {
                    out.observations.extend(crate::marks::seen_on_page(&body, watched).into_iter().map(observe));
                }
                _ => out.unanswered += 1,
            }
        }
    }
}
