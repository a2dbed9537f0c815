//! loadgen: drives the leaderboard the way the scenario describes and checks the result.
//!
//! `run` produces score events at a fixed rate (open loop, coordinated-omission
//! corrected latency), reads the api at its own fixed rate, measures
//! produce-to-visible freshness with a probe player, then waits for ingest to
//! catch up and compares the api with its own oracle. With `--erase` and
//! `--ban` it also erases and bans players while the load runs, and the
//! oracle learns it. `seed` writes every player's initial score straight into
//! Redis; `topics` creates the topics.
//!
//! # Layout
//! - [`config`]: the command line; [`population`]: players, scores, the oracle;
//!   [`boards`]: which board each player plays on.
//! - [`pacer`]: open-loop scheduling; [`produce`], [`read`], [`probe`]: the three loads.
//! - [`marks`]: erasures and bans, what the oracle learns from them, the
//!   judging of answers around them; [`admin`]: the calls and the reads after them.
//! - [`meta`]: the metadata events carry with `--meta`.
//! - [`lag`]: consumer lag; [`verify`]: the end check; [`report`]: the report.
//! - [`seed`], [`topics`]: preparation; [`bench`]: ingest throughput (fill a topic, time the drain).
//! - [`watch`]: many clients following a board's top by live stream or by polling, and the
//!   delay from a score's produce to each of them.

pub mod admin;
pub mod bench;
pub mod boards;
pub mod config;
pub mod lag;
pub mod marks;
pub mod meta;
pub mod pacer;
pub mod population;
pub mod probe;
pub mod produce;
pub mod read;
pub mod report;
pub mod results;
pub mod seasons;
pub mod seed;
pub mod topics;
pub mod verify;
pub mod watch;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use leaderboard_contract::PlayerId;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::boards::BoardSet;
use crate::config::{RunArgs, World};
use crate::pacer::Pacer;
use crate::population::Population;
use crate::report::{Environment, Freshness, Latency, Reads, Report, Writes};

/// A librdkafka configuration: the brokers, then `defaults`, then the
/// pass-through settings (`LB_KAFKA_OPTIONS`), which override the defaults.
///
/// # Errors
/// When `LB_KAFKA_OPTIONS` is malformed.
pub fn kafka_config(world: &World, defaults: &[(&str, &str)]) -> anyhow::Result<ClientConfig> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &world.brokers);
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in world.kafka_settings()? {
        config.set(k, v);
    }
    Ok(config)
}

/// The producer: durable acknowledgements, batching tuned for a steady
/// stream; `LB_KAFKA_OPTIONS` overrides any of it.
pub(crate) fn producer(world: &World) -> anyhow::Result<FutureProducer> {
    let mut defaults = vec![
        ("acks", "all"),
        // Fewer, larger produce requests: measured to cut the broker's CPU per
        // event and the ack latency by an order of magnitude here.
        ("linger.ms", "20"),
        ("batch.size", "1000000"),
        ("compression.type", "lz4"),
        ("queue.buffering.max.messages", "500000"),
    ];
    if world.operator()?.exactly_once() {
        // `last` and the ids ingest remembers depend on each partition's order: an idempotent
        // producer keeps it across retries.
        defaults.push(("enable.idempotence", "true"));
    }
    kafka_config(world, &defaults)?.create().context("creating the producer")
}

/// Samples the consumer lag every second until `stop`; keeps the maximum.
fn spawn_lag_monitor(
    world: &World,
    current: Arc<AtomicI64>,
    max: Arc<AtomicI64>,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let probe = Arc::new(lag::LagProbe::new(world)?);
    Ok(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let p = probe.clone();
            if let Ok(Ok(lag)) = tokio::task::spawn_blocking(move || p.lag()).await {
                current.store(lag, Ordering::Relaxed);
                max.fetch_max(lag, Ordering::Relaxed);
            }
        }
    }))
}

/// The api's description of the first board (every board has the same
/// layout); `None` when the api does not answer or the board is unknown.
async fn board_stats(client: &reqwest::Client, api: &str, boards: &BoardSet) -> Option<serde_json::Value> {
    let response = client.get(format!("{api}/v1/boards/{}", boards.ids()[0])).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Waits until ingest committed every record (consumer lag 0); returns the
/// seconds it took, or `None` when interrupted first.
async fn settle(world: &World, args: &RunArgs, shutdown: &CancellationToken) -> anyhow::Result<Option<f64>> {
    let load_end = Instant::now();
    let lag_probe = Arc::new(lag::LagProbe::new(world)?);
    loop {
        let p = lag_probe.clone();
        let lag = tokio::task::spawn_blocking(move || p.lag()).await??;
        if lag == 0 {
            return Ok(Some(load_end.elapsed().as_secs_f64()));
        }
        anyhow::ensure!(
            load_end.elapsed() < args.settle_timeout,
            "consumer lag still {lag} after {:?}",
            args.settle_timeout
        );
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Checks every season the run played in against its oracle, each on every
/// board, with the players erased or banned (`marked`); a season's state and
/// end come from the api's seasons route.
async fn verify_seasons(
    client: &reqwest::Client,
    args: &RunArgs,
    world: &World,
    boards: &BoardSet,
    oracle: &seasons::SeasonOracle,
    probe: Option<&probe::ProbeOutcome>,
    marked: &[usize],
) -> anyhow::Result<Vec<report::SeasonCheck>> {
    let listed: serde_json::Value = client
        .get(format!("{}/v1/boards/{}/seasons", args.api, boards.ids()[0]))
        .send()
        .await
        .context("the seasons route")?
        .json()
        .await
        .context("the seasons route")?;
    let entry = |id: &str| listed["seasons"].as_array().and_then(|l| l.iter().find(|s| s["id"] == id).cloned());
    let mut checks = Vec::new();
    let mut closed: Vec<(usize, Vec<verify::Expected>)> = Vec::new();
    let mut wanted = Vec::new();
    for (id, bests) in oracle.seasons() {
        let players = verify::Players {
            best: &bests.best,
            reached: bests.reached.as_deref(),
            scoring: world.scoring(),
            meta: world.event_meta(),
            sparse: true,
            marked,
        };
        let probe_keys: Option<Vec<u64>> =
            probe.map(|p| p.season_scores.iter().map(|keys| keys.get(id).copied().unwrap_or(0)).collect());
        let probe_scores = probe.zip(probe_keys.as_deref()).map(|(p, keys)| (p.player.as_str(), keys));
        let expected = verify::Expected::for_boards(boards, &players, world.rules().ties, probe_scores);
        let listed = entry(id);
        let end = listed.as_ref().and_then(|e| verify::time_of_rfc3339(e["end"].as_str()?));
        let scope = verify::Scope { season: Some(id.to_string()), end };
        let verification =
            verify::verify(client, &args.api, boards, &expected, &players, args.verify_sample, world.seed, &scope)
                .await?;
        let state = listed.as_ref().and_then(|e| e["state"].as_str().map(str::to_string)).unwrap_or_default();
        if state == "closed" {
            let amended_at = listed.as_ref().and_then(|e| e["amended_at"].as_str().map(str::to_string));
            wanted.extend(boards.ids().iter().map(|b| results::Wanted {
                id: leaderboard_semantics::season_result::SeasonResult::id_of(b.as_str(), id),
                amended_at: amended_at.clone(),
            }));
            closed.push((checks.len(), expected));
        }
        checks.push(report::SeasonCheck { season: id.to_string(), state, verification, result: None });
    }
    // Every closed season's result, as a reward service reads it: on the results topic, equal to the oracle.
    let produced = results::read(world, wanted, RESULTS_WAIT).await?;
    for (at, expected) in closed {
        let check = &mut checks[at];
        let mut result = report::ResultCheck::default();
        for (k, board) in boards.ids().iter().enumerate() {
            let found =
                produced.get(&leaderboard_semantics::season_result::SeasonResult::id_of(board.as_str(), &check.season));
            result.records += u64::from(found.is_some());
            result.revision = result.revision.max(found.map_or(0, |r| r.revision));
            result.rows += found.map_or(0, |r| r.top.len() as u64);
            for what in results::compare(found, &expected[k]) {
                result.mismatches += 1;
                check.verification.mismatch(k, &what);
            }
        }
        check.result = Some(result);
    }
    Ok(checks)
}

/// How long a run waits for the closed seasons' results to be on the results topic.
const RESULTS_WAIT: Duration = Duration::from_secs(60);

/// The report's part on erasures and bans: the calls, and the answers about
/// their players (the checks after each call and the read load's) judged.
fn marks_report(
    calls: &mut admin::AdminOutcome,
    reads: Option<&mut read::ReadOutcome>,
    population: &Population,
    world: &World,
) -> report::Marks {
    let mut observations = std::mem::take(&mut calls.observations);
    observations.extend(reads.map(|r| std::mem::take(&mut r.observations)).unwrap_or_default());
    let judged = marks::judge(&observations, &calls.done, population, world.scoring());
    let made = |ban: bool| calls.done.iter().filter(|d| d.failure.is_none() && d.call.kind.is_ban() == ban).count();
    let failures: Vec<String> = calls
        .done
        .iter()
        .filter_map(|d| d.failure.as_ref().map(|f| format!("{}: {f}", population::player_id(d.call.player))))
        .collect();
    report::Marks {
        erased: made(false) as u64,
        banned: made(true) as u64,
        failed_calls: failures.len() as u64,
        failures: failures.into_iter().take(10).collect(),
        answers_after: judged.after,
        answers_during: judged.during,
        answers_before: judged.before,
        unanswered: calls.unanswered,
        violations: judged.violations,
        examples: judged.examples,
    }
}

/// Runs the load, then verifies; returns the report. When `shutdown` fires,
/// the load stops and the report covers what ran, marked interrupted and
/// unverified.
///
/// # Errors
/// Bad configuration, an unreachable broker or api, or an api that never
/// catches up within the settle timeout.
#[allow(clippy::too_many_lines, reason = "the run's sequence reads best in one place")]
pub async fn run(world: &World, args: &RunArgs, shutdown: CancellationToken) -> anyhow::Result<Report> {
    let boards = world.board_set()?;
    anyhow::ensure!(args.rate > 0.0, "--rate must be positive");
    let rules = world.rules();
    let repeats = args.repeats()?;
    anyhow::ensure!(
        world.operator()?.exactly_once() || repeats.duplicate_share + repeats.resend_share == 0.0,
        "--duplicate-share and --resend-share need --operator last or sum (events with ids)"
    );
    let start = pacer::start_instant(args.start_at, (Instant::now(), std::time::SystemTime::now()))?;
    let mut population =
        Population::with_times(world.seed, world.players, world.zipf, world.improve_share, rules.earliest())?
            .with_operator(rules.operator);
    if let Some(reset) = rules.reset {
        population = population.with_seasons(reset);
    }
    let producer = producer(world)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.read_concurrency.max(8))
        .timeout(Duration::from_secs(10))
        .build()?;
    let stop = shutdown.child_token();
    let count = args.count.unwrap_or((args.rate * args.duration.as_secs_f64()).round() as u64);
    let token = args.admin_token_for_marks()?;
    let load = Duration::from_secs_f64(count as f64 / args.rate);
    let plan = marks::Plan::new(world.seed, world.players, args.erase, args.ban, load)?;
    let admin = match token {
        Some(token) => {
            let admin = admin::Admin {
                api: args.api.clone(),
                token: token.clone(),
                boards: boards.clone(),
                season: rules.reset.map(|_| "all".to_string()),
            };
            // Before any event: a refused token fails the run at once, not at its first call.
            admin.check_token(&client, plan.calls[0].player).await.context("the api's admin routes")?;
            Some(admin)
        }
        None => None,
    };
    population.watch(plan.erased());
    let watched: Arc<HashSet<usize>> = Arc::new(plan.players());
    let counters = Arc::new(produce::WriteCounters::default());
    let (lag_now, lag_max) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicI64::new(0)));
    let monitor_stop = shutdown.child_token();
    let monitor = spawn_lag_monitor(world, lag_now.clone(), lag_max.clone(), monitor_stop.clone())?;
    // Asked before the load too, so an interrupted run (whose api may be
    // stopping as well) still reports the layout.
    let stats_before = board_stats(&client, &args.api, &boards).await;

    eprintln!(
        "loadgen: {} players, {:.0} events/s for {} events, reads {:.0}/s, board {boards}",
        world.players, args.rate, count, args.read_rate
    );
    if !plan.is_empty() {
        eprintln!("loadgen: erasing {} and banning {} players during the load", args.erase, args.ban);
    }
    let wait = start.saturating_duration_since(Instant::now());
    if !wait.is_zero() {
        eprintln!("loadgen: starting in {:.1}s (--start-at)", wait.as_secs_f64());
    }
    // A stop while waiting ends the run before any event (the tasks below see it at once).
    tokio::select! {
        () = shutdown.cancelled() => stop.cancel(),
        () = tokio::time::sleep_until(start) => {}
    }
    let writes = tokio::spawn(produce::run(
        producer.clone(),
        produce::Target {
            topic: world.topic.clone(),
            boards: boards.clone(),
            scoring: world.scoring(),
            signer: world.sign_key.clone(),
            clock: world.store.clock,
            meta: world.event_meta(),
            repeats,
        },
        population,
        Pacer::new(start, args.rate, Some(count)),
        counters.clone(),
        stop.clone(),
    ));
    let read_stop = stop.child_token();
    let reads = (args.read_rate > 0.0).then(|| {
        let plan = read::ReadPlan {
            api: args.api.clone(),
            boards: boards.clone(),
            players: world.players,
            season: rules.reset.map(|_| "all".to_string()),
            rate: args.read_rate,
            top_share: args.top_share,
            concurrency: args.read_concurrency,
            seed: world.seed,
            watched: watched.clone(),
        };
        tokio::spawn(read::run(client.clone(), plan, read_stop.clone()))
    });
    let calls = admin.map(|admin| tokio::spawn(admin.run(client.clone(), plan.clone(), start, stop.clone())));
    let probe_stop = stop.child_token();
    let probe_player = PlayerId::new(format!("probe-{}", world.seed)).context("probe id")?;
    let probe = (!args.probe_interval.is_zero()).then(|| {
        tokio::spawn(probe::run(
            producer.clone(),
            client.clone(),
            world.topic.clone(),
            args.api.clone(),
            boards.clone(),
            probe_player.clone(),
            args.probe_interval,
            world.scoring(),
            world.sign_key.clone(),
            rules.reset.map(|reset| (world.store.clock, reset)),
            probe_stop.clone(),
        ))
    });

    // Progress, once a second, until the writes finish.
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let mut last_acked = 0;
    while !writes.is_finished() {
        tokio::select! {
            () = shutdown.cancelled() => { stop.cancel(); break; }
            _ = ticker.tick() => {}
        }
        let acked = counters.acked.load(Ordering::Relaxed);
        eprintln!(
            "t={:>3.0}s sent={:>9} acked={:>9} rate={:>6}/s errors={} lag={}",
            started.elapsed().as_secs_f64(),
            counters.sent.load(Ordering::Relaxed),
            acked,
            acked - last_acked,
            counters.errors.load(Ordering::Relaxed),
            lag_now.load(Ordering::Relaxed)
        );
        last_acked = acked;
    }
    let written = writes.await.context("write task")??;
    // The calls are due before the load ends; one that runs late still counts for the oracle.
    let mut calls = match calls {
        Some(c) => Some(c.await.context("admin task")?),
        None => None,
    };
    read_stop.cancel();
    probe_stop.cancel();
    let mut read_outcome = match reads {
        Some(r) => Some(r.await.context("read task")??),
        None => None,
    };
    let probe_outcome = match probe {
        Some(p) => Some(p.await.context("probe task")??),
        None => None,
    };

    // Settle (ingest committed every record), then check; an interrupted run skips both.
    let drain_s = if shutdown.is_cancelled() { None } else { settle(world, args, &shutdown).await? };
    monitor_stop.cancel();
    let _ = monitor.await;
    let produce::WriteOutcome { mut population, ack_latency_us, send_window, elapsed } = written;
    let marks_report = calls.as_mut().map(|calls| marks_report(calls, read_outcome.as_mut(), &population, world));
    let marked: Vec<usize> = plan.calls.iter().map(|c| c.player).collect();
    if let Some(calls) = &calls {
        marks::amend(&mut population, &calls.done)?;
    }
    let (verification, season_checks) = match drain_s {
        Some(_) => {
            let players = verify::Players {
                best: population.best(),
                reached: population.reached(),
                scoring: world.scoring(),
                meta: world.event_meta(),
                sparse: false,
                marked: &marked,
            };
            let probe_scores = probe_outcome.as_ref().map(|p| (p.player.as_str(), p.last_scores.as_slice()));
            let expected = verify::Expected::for_boards(&boards, &players, rules.ties, probe_scores);
            // Boards with a reset answer for the current season by default: the all-time check asks for `all`.
            let scope = verify::Scope { season: rules.reset.map(|_| "all".to_string()), end: None };
            let sample = args.verify_sample;
            let all_time =
                verify::verify(&client, &args.api, &boards, &expected, &players, sample, world.seed, &scope).await?;
            let seasons = match population.seasons() {
                Some(oracle) => {
                    verify_seasons(&client, args, world, &boards, oracle, probe_outcome.as_ref(), &marked).await?
                }
                None => Vec::new(),
            };
            (all_time, seasons)
        }
        None => (verify::Verification::default(), Vec::new()),
    };

    let stats = board_stats(&client, &args.api, &boards).await.or(stats_before).unwrap_or_default();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let acked = counters.acked.load(Ordering::Relaxed);
    let sent = counters.sent.load(Ordering::Relaxed);
    let reads_of = |r: &read::RouteStats, elapsed: Duration| Reads {
        rate: r.latency_us.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        errors: r.errors,
        error_kinds: r.error_kinds.clone(),
        latency: Latency::from_us(&r.latency_us),
    };
    let (reads_top, reads_rank) =
        read_outcome.map_or_else(Default::default, |r| (reads_of(&r.top, r.elapsed), reads_of(&r.rank, r.elapsed)));
    let freshness = probe_outcome.map_or_else(Freshness::default, |p| {
        let l = Latency::from_us(&p.freshness_us);
        let acked = Latency::from_us(&p.acked_us);
        Freshness {
            samples: l.count,
            timeouts: p.timeouts,
            as_of_violations: p.as_of_violations,
            violation_examples: p.violation_examples,
            p50_ms: l.p50_ms,
            p99_ms: l.p99_ms,
            max_ms: l.max_ms,
            acked_p50_ms: acked.p50_ms,
            acked_p99_ms: acked.p99_ms,
        }
    });
    Ok(Report {
        writes: Writes {
            target_rate: args.rate,
            // The last event is due at (sent - 1) / rate, so that is the send window's ideal length.
            achieved_rate: sent.saturating_sub(1) as f64 / send_window.as_secs_f64().max(1e-9),
            acked_rate: acked as f64 / secs,
            sent,
            acked,
            errors: counters.errors.load(Ordering::Relaxed),
            duplicated: counters.duplicated.load(Ordering::Relaxed),
            resent: counters.resent.load(Ordering::Relaxed),
            ack_latency: Latency::from_us(&ack_latency_us),
        },
        reads_top,
        reads_rank,
        freshness,
        max_consumer_lag: lag_max.load(Ordering::Relaxed),
        drain_s: drain_s.unwrap_or(0.0),
        interrupted: drain_s.is_none(),
        verification,
        seasons: season_checks,
        marks: marks_report,
        environment: Environment {
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            layout: stats["layout"].as_str().unwrap_or("unknown").to_string(),
            shards: stats["shards"].as_array().map_or(0, |s| s.len() as u64),
            rules: format!(
                "order {}, ties {}{}{}",
                stats["rules"]["order"].as_str().unwrap_or("unknown"),
                stats["rules"]["ties"].as_str().unwrap_or("unknown"),
                stats["rules"]["reset"]["every"].as_str().map_or_else(String::new, |every| format!(", reset {every}")),
                stats["rules"]["operator"]
                    .as_str()
                    .filter(|o| *o != "best")
                    .map_or_else(String::new, |o| format!(", operator {o}"))
            ),
            broker: args.broker_kind.clone(),
            players: world.players,
            boards: boards.len(),
            meta: world.meta.map(|m| match m {
                meta::MetaSize::Mix => "mix".to_string(),
                meta::MetaSize::Exactly(bytes) => format!("{bytes} B"),
            }),
            duration_s: secs,
        },
    })
}
