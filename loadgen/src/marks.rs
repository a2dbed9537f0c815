//! Erasures and bans during a run (the registry's marks, docs/players.md):
//! which players, when, what the oracle learns from them, and how the answers
//! read around them are judged. No I/O here: [`crate::admin`] makes the calls
//! and the reads.
//!
//! - [`Plan`]: `--erase N` and `--ban M` as calls spread over the load, on
//!   players picked by the seed, every one with a seeded score: half among
//!   the most active players (events of theirs are in flight on both sides
//!   of the erasure's time), half among the highest seeded scores (they are
//!   on the top pages).
//! - [`amend`]: the oracle after the run. An erased player keeps only their
//!   events whose Kafka timestamp is at or after the erasure's time as the
//!   api returned it (a new start), on the all-time board and in every
//!   season; none: absent. A banned player is absent from their board and
//!   its seasons (bans reach closed seasons).
//! - [`judge`]: every answer read during the run that names one of those
//!   players. An answer read entirely before the call is an ordinary read;
//!   one sent while the call ran is not judged (either side is right); one
//!   sent after the call returned is judged exactly: a banned player is on no
//!   answer, an erased one shows only a score one of their new events
//!   carries, and at least every such event stamped before the answer's
//!   `as_of` (the freshness promise). The api that took the call forgets its
//!   cached pages before answering, so no staleness is tolerated beyond the
//!   ingest lag that `as_of` already states.
//!
//! Bans are never lifted during a run: ingest judges a ban when it reads a
//! record, whatever the record's timestamp, so an event produced before an
//! unban and read after it would be applied, and one read before it
//! dead-lettered; the oracle could not tell which.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::hash::BuildHasher;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::population::{Population, Scoring, player_id, player_index};

/// Most violations described in the report.
const MAX_EXAMPLES: usize = 10;

/// What a call does to a player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `DELETE /v1/admin/players/{player}`.
    Erase,
    /// `PUT /v1/admin/players/{player}/ban` from every board (`"all"`), closed seasons included.
    BanAll,
    /// The same ban listing the player's own board only.
    BanOwnBoard,
}

impl Kind {
    /// Whether the call is a ban.
    pub fn is_ban(self) -> bool {
        self != Self::Erase
    }
}

/// One call of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    /// The player's index.
    pub player: usize,
    /// What is done.
    pub kind: Kind,
    /// When, after the load starts.
    pub after: Duration,
}

/// The calls of a run, in time order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The calls.
    pub calls: Vec<Planned>,
}

impl Plan {
    /// `erase` erasures and `ban` bans of distinct players of `players`,
    /// picked by `seed`, the `k`-th of all of them due `load * k / (calls + 1)`
    /// after the load starts. Bans alternate between every board and the
    /// player's own.
    ///
    /// # Errors
    /// When more than half the players would be picked.
    pub fn new(seed: u64, players: usize, erase: usize, ban: usize, load: Duration) -> anyhow::Result<Self> {
        let total = erase + ban;
        if total == 0 {
            return Ok(Self::default());
        }
        anyhow::ensure!(
            total <= players / 2,
            "--erase {erase} and --ban {ban}: at most half of the {players} players may be picked"
        );
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x00e7_a5ed);
        // The most active players, past the first few (a ban of those would dead-letter a
        // large share of the load), and the highest seeded scores.
        let first = 10.min(players / 2);
        let mut active: Vec<usize> = (first..players.min(first + 50 * total)).collect();
        let mut visible = highest_seeded(seed, players, 2 * total);
        active.shuffle(&mut rng);
        visible.shuffle(&mut rng);
        let mut pools = [active.into_iter(), visible.into_iter()];
        let mut taken = HashSet::with_capacity(total);
        let mut players_picked = Vec::with_capacity(total);
        for k in 0..total {
            let from_pools =
                [k % 2, 1 - k % 2].into_iter().find_map(|p| pools[p].by_ref().find(|i| !taken.contains(i)));
            let player = from_pools.unwrap_or_else(|| {
                loop {
                    let i = rng.random_range(0..players);
                    if !taken.contains(&i) {
                        break i;
                    }
                }
            });
            taken.insert(player);
            players_picked.push(player);
        }
        let mut kinds: Vec<Kind> = std::iter::repeat_n(Kind::Erase, erase)
            .chain((0..ban).map(|b| if b % 2 == 0 { Kind::BanAll } else { Kind::BanOwnBoard }))
            .collect();
        kinds.shuffle(&mut rng);
        let calls = players_picked
            .into_iter()
            .zip(kinds)
            .enumerate()
            .map(|(k, (player, kind))| Planned {
                player,
                kind,
                after: load.mul_f64((k + 1) as f64 / (total + 1) as f64),
            })
            .collect();
        Ok(Self { calls })
    }

    /// Whether nothing is planned.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The players to erase.
    pub fn erased(&self) -> impl Iterator<Item = usize> + '_ {
        self.calls.iter().filter(|c| c.kind == Kind::Erase).map(|c| c.player)
    }

    /// Every player of the plan.
    pub fn players(&self) -> HashSet<usize> {
        self.calls.iter().map(|c| c.player).collect()
    }
}

/// The `n` players with the highest seeded scores (ties: the lower index).
fn highest_seeded(seed: u64, players: usize, n: usize) -> Vec<usize> {
    let mut heap: BinaryHeap<Reverse<(u64, Reverse<usize>)>> = BinaryHeap::with_capacity(n + 1);
    for i in 0..players {
        heap.push(Reverse((Population::initial_score(seed, i), Reverse(i))));
        if heap.len() > n {
            heap.pop();
        }
    }
    heap.into_iter().map(|Reverse((_, Reverse(i)))| i).collect()
}

/// One call as it went.
#[derive(Debug, Clone)]
pub struct Done {
    /// The planned call.
    pub call: Planned,
    /// When its first attempt was sent.
    pub started: Instant,
    /// When its last attempt was answered.
    pub returned: Instant,
    /// Erasures: the erasure's time as the api returned it (`erased_at`), ms since the Unix epoch.
    pub erased_at_ms: Option<i64>,
    /// Why it failed, when it did (the oracle cannot know what it changed).
    pub failure: Option<String>,
}

/// What an answer showed of a player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A row or standing with this score, in an answer dated `as_of_ms`.
    Shown {
        /// The score.
        score: u64,
        /// The answer's `as_of`, ms since the Unix epoch.
        as_of_ms: Option<i64>,
    },
    /// 404: no score.
    Missing,
}

/// One answer about a player of the plan.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The player's index.
    pub player: usize,
    /// The route read (`top`, `player`, `around`).
    pub route: &'static str,
    /// When the request was sent.
    pub sent: Instant,
    /// When its answer arrived.
    pub done: Instant,
    /// What it showed.
    pub seen: Seen,
}

/// What a player route answered, as an observation: 200 shows the score,
/// 404 `player_not_found` (or `board_not_found`) is missing; anything else
/// is not an answer about the player (`None`).
pub fn seen_in_standing(status: u16, body: &serde_json::Value) -> Option<Seen> {
    match status {
        200 => Some(Seen::Shown { score: body["score"].as_u64()?, as_of_ms: as_of_ms(body) }),
        404 if matches!(body["error"]["code"].as_str(), Some("player_not_found" | "board_not_found")) => {
            Some(Seen::Missing)
        }
        _ => None,
    }
}

/// The players of `watched` on a page of rows (`top`, `around`), with what it shows of them.
pub fn seen_on_page<S: BuildHasher>(body: &serde_json::Value, watched: &HashSet<usize, S>) -> Vec<(usize, Seen)> {
    let as_of = as_of_ms(body);
    body["entries"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|row| {
                    let i = player_index(row["player"].as_str()?).filter(|i| watched.contains(i))?;
                    Some((i, Seen::Shown { score: row["score"].as_u64()?, as_of_ms: as_of }))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An answer's `as_of`, ms since the Unix epoch.
pub fn as_of_ms(body: &serde_json::Value) -> Option<i64> {
    let at = crate::verify::time_of_rfc3339(body["as_of"].as_str()?)?;
    i64::try_from(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// The oracle after the run's calls: see the module docs. A failed call
/// leaves its player as the oracle had them (the run fails on it anyway).
///
/// # Errors
/// An erasure of a player whose events were not kept, or one without a time.
pub fn amend(population: &mut Population, done: &[Done]) -> anyhow::Result<()> {
    for d in done.iter().filter(|d| d.failure.is_none()) {
        match d.call.kind {
            Kind::Erase => {
                let at = d.erased_at_ms.ok_or_else(|| anyhow::anyhow!("an erasure without its time"))?;
                population.erase(d.call.player, at)?;
            }
            Kind::BanAll | Kind::BanOwnBoard => population.remove(d.call.player),
        }
    }
    Ok(())
}

/// How the answers about the plan's players fared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judgement {
    /// Answers sent after the call about their player returned: judged.
    pub after: u64,
    /// Answers sent while the call ran: not judged.
    pub during: u64,
    /// Answers read before the call started: ordinary reads (a player with a
    /// seeded score must not be missing).
    pub before: u64,
    /// Answers that broke the rules (must be 0).
    pub violations: u64,
    /// The first few, described.
    pub examples: Vec<String>,
}

impl Judgement {
    fn violation(&mut self, what: String) {
        self.violations += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(what);
        }
    }
}

/// Judges `observations` against the calls `done` and the events the run
/// produced (`population`'s logs of the erased players); see the module docs.
pub fn judge(observations: &[Observation], done: &[Done], population: &Population, scoring: Scoring) -> Judgement {
    let mut out = Judgement::default();
    for o in observations {
        // A failed call's player is not judged: what it changed is unknown.
        let Some(d) = done.iter().find(|d| d.call.player == o.player && d.failure.is_none()) else { continue };
        let who = player_id(o.player);
        if o.done < d.started {
            out.before += 1;
            if o.seen == Seen::Missing {
                out.violation(format!("{who}: {} read before any call about them found no score", o.route));
            }
            continue;
        }
        if o.sent < d.returned {
            out.during += 1;
            continue;
        }
        out.after += 1;
        let Seen::Shown { score, as_of_ms } = o.seen else { continue };
        match (d.call.kind, d.erased_at_ms) {
            (Kind::Erase, Some(at)) => {
                let key = scoring.key(score);
                let new_start: Vec<(u64, i64)> = population
                    .played(o.player)
                    .iter()
                    .filter(|e| e.delivered && e.kafka_ms >= at)
                    .map(|e| (e.key, e.kafka_ms))
                    .collect();
                if !new_start.iter().any(|&(k, _)| k == key) {
                    out.violation(format!(
                        "{who}: {} read after their erasure (at {at} ms) returned shows score {score}, which no event \
                         stamped at or after the erasure carries",
                        o.route
                    ));
                } else if let Some(floor) = as_of_ms
                    .and_then(|as_of| new_start.iter().filter(|&&(_, t)| t < as_of).map(|&(k, _)| k).max())
                    .filter(|&floor| key < floor)
                {
                    out.violation(format!(
                        "{who}: {} dated {} ms shows score {score}, though an event stamped after the erasure and \
                         before that date carried {}",
                        o.route,
                        as_of_ms.unwrap_or_default(),
                        scoring.score(floor)
                    ));
                }
            }
            (Kind::Erase, None) => {}
            (Kind::BanAll | Kind::BanOwnBoard, _) => {
                out.violation(format!("{who}: {} read after their ban returned still shows score {score}", o.route));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use leaderboard_semantics::Order;

    use super::*;
    use crate::population::Game;

    const DESC: Scoring = Scoring { order: Order::Desc, operator: leaderboard_semantics::Operator::Best };

    #[test]
    fn a_plan_is_seeded_spread_over_the_load_and_picks_distinct_players() {
        let plan = Plan::new(5, 1000, 3, 4, Duration::from_secs(8)).expect("plan");
        assert_eq!(plan.calls.len(), 7);
        assert_eq!(plan.players().len(), 7, "distinct players");
        assert_eq!(plan.erased().count(), 3);
        let bans: Vec<Kind> = plan.calls.iter().map(|c| c.kind).filter(|k| k.is_ban()).collect();
        assert_eq!(bans.iter().filter(|&&k| k == Kind::BanAll).count(), 2);
        assert_eq!(bans.iter().filter(|&&k| k == Kind::BanOwnBoard).count(), 2);
        let times: Vec<Duration> = plan.calls.iter().map(|c| c.after).collect();
        assert_eq!(times, (1..=7).map(Duration::from_secs).collect::<Vec<_>>());
        let top = highest_seeded(5, 1000, 14);
        assert!(plan.calls.iter().any(|c| top.contains(&c.player)), "some are on the top pages");
        assert!(plan.calls.iter().any(|c| (10..360).contains(&c.player)), "some are among the most active");
        let again = Plan::new(5, 1000, 3, 4, Duration::from_secs(8)).expect("plan");
        assert_eq!(again.calls, plan.calls, "the seed decides");
        assert!(Plan::new(5, 1000, 0, 0, Duration::from_secs(8)).expect("plan").is_empty());
        assert!(Plan::new(5, 10, 3, 3, Duration::from_secs(8)).is_err(), "more than half the players");
        // A world too small for the pools still gets distinct players.
        assert_eq!(Plan::new(1, 8, 2, 2, Duration::from_secs(1)).expect("plan").players().len(), 4);
    }

    /// A population of 10 players where player 3's events are kept: keys 5000
    /// (stamped 100), 7000 (stamped 200), then 3000 (stamped 300) and 4000 (stamped 400).
    fn played() -> Population {
        let mut pop = Population::with_times(1, 10, 1.1, 0.2, true).expect("population");
        pop.watch([3]);
        for (key, stamp) in [(5000, 100), (7000, 200), (3000, 300), (4000, 400)] {
            let game = Game { player: 3, score: key, improved: false };
            let slot = pop.record_game(game, 1_000 + stamp, i64::try_from(stamp).expect("ms")).expect("record");
            pop.delivered(3, slot.expect("watched"), None);
        }
        pop
    }

    #[test]
    fn an_erasure_keeps_only_the_new_start_and_a_ban_removes_the_player() {
        let mut pop = played();
        let initial = Population::initial_score(1, 3);
        assert!(pop.best()[3] >= initial);
        pop.erase(3, 300).expect("erase");
        assert_eq!(pop.best()[3], 4000, "the best of the events stamped at or after the erasure");
        assert_eq!(pop.reached().expect("times")[3], 1_400, "reached by the event that carries it");
        pop.erase(3, 401).expect("erase");
        assert_eq!(pop.best()[3], 0, "nothing after: absent");
        pop.remove(5);
        assert_eq!(pop.best()[5], 0);
        assert!(pop.erase(4, 1).is_err(), "an unwatched player's events are unknown");
    }

    fn done(player: usize, kind: Kind, base: Instant, erased_at_ms: Option<i64>) -> Done {
        Done {
            call: Planned { player, kind, after: Duration::ZERO },
            started: base + Duration::from_millis(10),
            returned: base + Duration::from_millis(20),
            erased_at_ms,
            failure: None,
        }
    }

    fn seen(player: usize, base: Instant, sent_ms: u64, seen: Seen) -> Observation {
        let sent = base + Duration::from_millis(sent_ms);
        Observation { player, route: "player", sent, done: sent + Duration::from_millis(1), seen }
    }

    #[test]
    fn an_answer_after_an_erasure_shows_only_the_new_start_and_the_oracle_flags_an_ignored_one() {
        let pop = played();
        let base = Instant::now();
        let calls = [done(3, Kind::Erase, base, Some(300)), done(5, Kind::BanAll, base, None)];
        let shown = |score, as_of_ms| Seen::Shown { score, as_of_ms };
        let faithful = [
            seen(3, base, 0, shown(7000, None)),       // before: the old best
            seen(3, base, 15, shown(7000, None)),      // during the call: not judged
            seen(3, base, 25, Seen::Missing),          // after, nothing new applied yet
            seen(3, base, 25, shown(3000, Some(350))), // after: the first new event
            seen(3, base, 26, shown(4000, Some(500))), // after: the best of the new start
            seen(5, base, 30, Seen::Missing),          // banned: gone
        ];
        let j = judge(&faithful, &calls, &pop, DESC);
        assert_eq!((j.before, j.during, j.after, j.violations), (1, 1, 4, 0), "{:?}", j.examples);

        // A store that ignored the erasure shows the old best after the call returned.
        let ignored = [seen(3, base, 25, shown(7000, Some(350)))];
        let j = judge(&ignored, &calls, &pop, DESC);
        assert_eq!(j.violations, 1);
        assert!(j.examples[0].contains("p-00000003") && j.examples[0].contains("7000"), "{:?}", j.examples);
        // An answer dated after the new event stamped 400 must reflect it.
        let stale = [seen(3, base, 25, shown(3000, Some(401)))];
        assert_eq!(judge(&stale, &calls, &pop, DESC).violations, 1);
        // A banned player on an answer sent after the ban returned; missing before any call.
        let wrong = [seen(5, base, 21, shown(1234, None)), seen(5, base, 0, Seen::Missing)];
        let j = judge(&wrong, &calls, &pop, DESC);
        assert_eq!((j.after, j.before, j.violations), (1, 1, 2), "{:?}", j.examples);
        // A failed call's player is not judged.
        let mut failed = calls.clone();
        failed[1].failure = Some("503".into());
        assert_eq!(judge(&wrong, &failed, &pop, DESC), Judgement::default());
    }

    #[test]
    fn the_end_oracle_differs_from_one_that_ignores_the_erasure() {
        let mut pop = played();
        let ignoring = pop.best()[3];
        let d = done(3, Kind::Erase, Instant::now(), Some(300));
        amend(&mut pop, std::slice::from_ref(&d)).expect("amend");
        assert_ne!(pop.best()[3], ignoring, "an api that kept the old best would be a mismatch");
        let mut no_time = d;
        no_time.erased_at_ms = None;
        assert!(amend(&mut played(), &[no_time]).is_err());
    }

    #[test]
    fn answers_become_observations() {
        let body = serde_json::json!({"score": 42, "as_of": "2025-11-22T08:26:40.123Z"});
        assert_eq!(seen_in_standing(200, &body), Some(Seen::Shown { score: 42, as_of_ms: Some(1_763_800_000_123) }));
        let missing = serde_json::json!({"error": {"code": "player_not_found"}});
        assert_eq!(seen_in_standing(404, &missing), Some(Seen::Missing));
        assert_eq!(seen_in_standing(503, &missing), None);
        let page = serde_json::json!({"as_of": "2025-11-22T08:26:40.123Z", "entries": [
            {"rank": 1, "player": "p-00000003", "score": 9}, {"rank": 2, "player": "p-00000004", "score": 8},
            {"rank": 3, "player": "probe-1", "score": 1}]});
        let watched: HashSet<usize> = [3, 7].into();
        assert_eq!(seen_on_page(&page, &watched), [(3, Seen::Shown { score: 9, as_of_ms: Some(1_763_800_000_123) })]);
    }
}
