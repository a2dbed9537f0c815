//! Command line of the load generator.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};

use crate::boards::BoardSet;

/// Load generator and end-to-end verifier for the leaderboard.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", version, about)]
pub struct Cli {
    /// What the simulated world looks like (shared by every command).
    #[command(flatten)]
    pub world: World,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The simulated players and where they play.
#[derive(Debug, Clone, Args)]
pub struct World {
    /// Kafka bootstrap servers.
    #[arg(long, global = true, env = "LB_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic carrying score events.
    #[arg(long, global = true, env = "LB_TOPIC", default_value = leaderboard_contract::SCORES_TOPIC)]
    pub topic: String,
    /// Dead-letter topic (created by `topics`).
    #[arg(long, global = true, env = "LB_DLQ_TOPIC", default_value = leaderboard_contract::DEAD_LETTER_TOPIC)]
    pub dlq_topic: String,
    /// Topic of closed seasons' results (created by `topics`; ingest produces to it).
    #[arg(long, global = true, env = "LB_SEASON_RESULTS_TOPIC", default_value = leaderboard_contract::SEASON_RESULTS_TOPIC)]
    pub season_results_topic: String,
    /// Consumer group of the ingest workers (for lag).
    #[arg(long, global = true, env = "LB_INGEST_GROUP", default_value = "leaderboard-ingest")]
    pub group: String,
    /// Redis and the layout, for `seed` (the same options as ingest's and the api's).
    #[command(flatten)]
    pub store: leaderboard_runtime::StoreArgs,
    /// The board played on; with `--boards K` above 1, the prefix of `<board>-1` ... `<board>-K`.
    #[arg(long, global = true, env = "LB_LOADGEN_BOARD", default_value = leaderboard_contract::DEFAULT_BOARD)]
    pub board: String,
    /// Number of boards; player `i` plays on board `i mod K`.
    #[arg(long, global = true, env = "LB_LOADGEN_BOARDS", default_value_t = 1)]
    pub boards: usize,
    /// Number of players, spread over the boards.
    #[arg(long, global = true, env = "LB_LOADGEN_PLAYERS", default_value_t = 10_000_000)]
    pub players: usize,
    /// Seed of every random choice: initial scores, activity, results.
    #[arg(long, global = true, env = "LB_LOADGEN_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Zipf exponent of player activity (larger = more skewed).
    #[arg(long, global = true, env = "LB_LOADGEN_ZIPF", default_value_t = 1.1)]
    pub zipf: f64,
    /// Share of games that beat the player's personal best.
    #[arg(long, global = true, env = "LB_LOADGEN_IMPROVE_SHARE", default_value_t = 0.2)]
    pub improve_share: f64,
    /// Extra librdkafka settings as comma-separated `key=value` (e.g. SASL).
    #[arg(long, global = true, env = "LB_KAFKA_OPTIONS", default_value = "", hide_env_values = true)]
    pub kafka_options: String,
    /// The boards' order: `desc` (higher is better) or `asc` (lower is better;
    /// events carry lap times). `seed` creates the boards with it.
    #[arg(long, global = true, env = "LB_LOADGEN_ORDER", default_value = "desc", value_parser = ["desc", "asc"])]
    pub order: String,
    /// Sign every event with this producer key (`key-id:hex-secret`, as ingest's
    /// `--producer-keys`): the `lb-key-id` and `lb-signature` headers.
    #[arg(long, global = true, env = "LB_LOADGEN_SIGN_KEY", hide_env_values = true,
          value_parser = leaderboard_contract::signature::ProducerKey::parse)]
    pub sign_key: Option<leaderboard_contract::signature::ProducerKey>,
    /// Seasons: the boards reset every `hour` (on the hour), `day`, `week` (Mondays) or `month`, at
    /// 00:00 UTC. `seed` creates the boards with it; events are stamped by `--clock` and verified
    /// per season.
    #[arg(long, global = true, env = "LB_LOADGEN_RESET", value_parser = ["hour", "day", "week", "month"])]
    pub reset: Option<String>,
    /// How long after its end a season takes late events (with `--reset`), by `--clock`.
    #[arg(long, global = true, env = "LB_LOADGEN_LATE_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub late_grace: Duration,
    /// The boards' tie rule: `shared` or `earliest` (first to reach a score is ahead).
    #[arg(long, global = true, env = "LB_LOADGEN_TIES", default_value = "shared", value_parser = ["shared", "earliest"])]
    pub ties: String,
    /// Every event carries `meta` (docs/contract.md#entry-metadata): `mix` (the default of a bare
    /// `--meta`: about 64, 130 and 256 bytes, `loadgen::meta`) or exactly this many bytes (`--meta=64`, 40 to
    /// 512); `seed` gives the seeded scores theirs, and the end check compares every entry's
    /// metadata like its score.
    #[arg(long, global = true, env = "LB_LOADGEN_META", num_args = 0..=1, require_equals = true, default_missing_value = "mix")]
    pub meta: Option<crate::meta::MetaSize>,
    /// How the boards combine a player's events (docs/contract.md#write-operators): `best`,
    /// `last` (each game lands from half the player's score to 250 above it) or `sum` (each game
    /// adds 1 to 250). `seed` creates the boards with it; every event of a `last` or `sum` run
    /// carries an `id`. Such runs use `desc` boards without seasons.
    #[arg(long, global = true, env = "LB_LOADGEN_OPERATOR", default_value = "best", value_parser = ["best", "last", "sum"])]
    pub operator: String,
}

impl World {
    /// The boards played on.
    ///
    /// # Errors
    /// See [`BoardSet::new`].
    pub fn board_set(&self) -> anyhow::Result<BoardSet> {
        BoardSet::new(&self.board, self.boards, self.players)
    }

    /// The boards' rules (default bounds).
    pub fn rules(&self) -> leaderboard_semantics::Rules {
        leaderboard_semantics::Rules {
            order: if self.order == "asc" {
                leaderboard_semantics::Order::Asc
            } else {
                leaderboard_semantics::Order::Desc
            },
            ties: if self.ties == "earliest" {
                leaderboard_semantics::Ties::Earliest
            } else {
                leaderboard_semantics::Ties::Shared
            },
            reset: self.reset.as_deref().map(|every| leaderboard_semantics::season::Reset {
                every: match every {
                    "hour" => leaderboard_semantics::season::Every::Hour,
                    "week" => leaderboard_semantics::season::Every::Week,
                    "month" => leaderboard_semantics::season::Every::Month,
                    _ => leaderboard_semantics::season::Every::Day,
                },
                utc_offset: time::UtcOffset::UTC,
                weekday: time::Weekday::Monday,
                span: None,
            }),
            late_grace: self.late_grace,
            operator: match self.operator.as_str() {
                "last" => leaderboard_semantics::Operator::Last,
                "sum" => leaderboard_semantics::Operator::Sum,
                _ => leaderboard_semantics::Operator::Best,
            },
            ..leaderboard_semantics::Rules::default()
        }
    }

    /// The boards' operator, checked against the rest of the world.
    ///
    /// # Errors
    /// `last` and `sum` with `--order asc` or `--reset`: the oracle of such runs keeps one
    /// value per player on `desc` boards without seasons.
    pub fn operator(&self) -> anyhow::Result<leaderboard_semantics::Operator> {
        let rules = self.rules();
        anyhow::ensure!(
            !rules.operator.exactly_once()
                || (rules.order == leaderboard_semantics::Order::Desc && rules.reset.is_none()),
            "--operator {} runs use --order desc and no --reset",
            rules.operator
        );
        Ok(rules.operator)
    }

    /// The metadata events carry, with `--meta`.
    pub fn event_meta(&self) -> Option<crate::meta::EventMeta> {
        self.meta.map(|size| crate::meta::EventMeta { seed: self.seed, size })
    }

    /// How keys become event scores under [`World::rules`].
    pub fn scoring(&self) -> crate::population::Scoring {
        let rules = self.rules();
        crate::population::Scoring { order: rules.order, operator: rules.operator }
    }

    /// The extra librdkafka settings.
    ///
    /// # Errors
    /// When an item is not `key=value`.
    pub fn kafka_settings(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.kafka_options
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| match s.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
                _ => Err(anyhow::anyhow!("LB_KAFKA_OPTIONS: expected key=value, got {s:?}")),
            })
            .collect()
    }
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Creates the score and dead-letter topics (if missing).
    Topics {
        /// Partitions of the score topic (bounds useful ingest workers).
        #[arg(long, default_value_t = 12)]
        partitions: i32,
        /// Partitions of the dead-letter topic.
        #[arg(long, default_value_t = 3)]
        dlq_partitions: i32,
    },
    /// Writes every player's initial best score straight into Redis.
    Seed {
        /// Players per write batch.
        #[arg(long, default_value_t = 5000)]
        batch: usize,
    },
    /// Runs the load and the verification, then prints the report.
    Run(Box<RunArgs>),
    /// Produces events as fast as possible (to pre-fill a topic for an ingest benchmark).
    Fill {
        /// Events to produce.
        #[arg(long, default_value_t = 3_000_000)]
        count: u64,
    },
    /// Clients following the top of a board by live stream or by polling: the delay from a
    /// score's produce to each client (scripts/bench-watch.sh).
    Watch(Box<crate::watch::WatchArgs>),
    /// Waits until the ingest group committed everything; prints the drain rate.
    Drain {
        /// Records expected in the topic.
        #[arg(long)]
        expect: u64,
        /// Longest wait.
        #[arg(long, default_value = "600s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

/// How far ahead `--start-at` may be (further is taken for a mistyped date).
pub const START_AT_AHEAD: Duration = Duration::from_secs(24 * 3600);
/// How far behind `--start-at` may be when the run begins (a late start is
/// caught up in a burst; further behind is taken for a mistake).
pub const START_AT_BEHIND: Duration = Duration::from_secs(60);

/// Options of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Base URL of the api.
    #[arg(long, env = "LB_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Score events per second.
    #[arg(long, env = "LB_LOADGEN_RATE", default_value_t = 30_000.0)]
    pub rate: f64,
    /// How long to produce.
    #[arg(long, env = "LB_LOADGEN_DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Produce exactly this many events instead (overrides the duration).
    #[arg(long)]
    pub count: Option<u64>,
    /// When the load starts (RFC 3339, e.g. `2026-11-24T12:00:00.000Z`): several
    /// loadgens start together, or a run starts at a chosen moment of a
    /// simulated `--clock`. Events are due from then on whatever happens before:
    /// a run that gets ready late catches up (the lateness counts in the write
    /// latency). At most [`START_AT_AHEAD`] ahead and [`START_AT_BEHIND`]
    /// behind; default: at once.
    #[arg(long, value_parser = humantime::parse_rfc3339_weak)]
    pub start_at: Option<SystemTime>,
    /// HTTP reads per second (0 disables the read load).
    #[arg(long, env = "LB_LOADGEN_READ_RATE", default_value_t = 1000.0)]
    pub read_rate: f64,
    /// Share of reads that fetch the top 100 (the rest look up a player's rank).
    #[arg(long, default_value_t = 0.5)]
    pub top_share: f64,
    /// Most HTTP reads in flight.
    #[arg(long, default_value_t = 64)]
    pub read_concurrency: usize,
    /// Interval between freshness probes (0 disables the probe).
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    pub probe_interval: Duration,
    /// Players whose score and rank are checked against the oracle at the end.
    #[arg(long, default_value_t = 10_000)]
    pub verify_sample: usize,
    /// Longest wait for ingest to catch up (consumer lag 0) before verifying.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    pub settle_timeout: Duration,
    /// Where to write the JSON report.
    #[arg(long, env = "LB_LOADGEN_REPORT", default_value = "target/loadgen-report.json")]
    pub report: PathBuf,
    /// Name of the broker in the report's environment section.
    #[arg(long, env = "LB_KAFKA_BROKER_KIND", default_value = "kafka")]
    pub broker_kind: String,
    /// Players to erase during the load (`DELETE /v1/admin/players/{player}`), spread over it;
    /// the oracle keeps only their events stamped at or after each erasure. Erasures are
    /// store-wide: run it on a store of its own. Needs `--admin-token`.
    #[arg(long, env = "LB_LOADGEN_ERASE", default_value_t = 0)]
    pub erase: usize,
    /// Players to ban during the load (`PUT /v1/admin/players/{player}/ban`, closed seasons
    /// included; every other one from all boards, the rest from their own board), spread over
    /// it and never lifted; the oracle leaves them out of their board. Needs `--admin-token`.
    #[arg(long, env = "LB_LOADGEN_BAN", default_value_t = 0)]
    pub ban: usize,
    /// The api's admin bearer token, for `--erase` and `--ban` (never printed; prefer the
    /// environment variable to the command line, which other users of the machine can see).
    #[arg(long, env = "LB_LOADGEN_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// Share of events produced twice in a row (a producer's retry: the same record again);
    /// `last` and `sum` runs only, where ingest skips the copy by its `id`.
    #[arg(long, env = "LB_LOADGEN_DUPLICATE_SHARE", default_value_t = 0.0)]
    pub duplicate_share: f64,
    /// Share of events after which an earlier event is sent again with its `id` (a game
    /// server's re-send after a timeout); `last` and `sum` runs only.
    #[arg(long, env = "LB_LOADGEN_RESEND_SHARE", default_value_t = 0.0)]
    pub resend_share: f64,
}

/// An id for this run's events: the start time in milliseconds since the epoch.
pub fn run_id() -> u64 {
    SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A secret from the command line or the environment: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, to send.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl RunArgs {
    /// The repeats asked for, with this run's id.
    ///
    /// # Errors
    /// A share outside `0..=0.5`.
    pub fn repeats(&self) -> anyhow::Result<crate::produce::Repeats> {
        for (name, share) in [("--duplicate-share", self.duplicate_share), ("--resend-share", self.resend_share)] {
            anyhow::ensure!((0.0..=0.5).contains(&share), "{name} must be within 0..=0.5, got {share}");
        }
        Ok(crate::produce::Repeats {
            duplicate_share: self.duplicate_share,
            resend_share: self.resend_share,
            run: run_id(),
        })
    }

    /// The admin token when erasures or bans are asked for.
    ///
    /// # Errors
    /// When they are asked for without a token.
    pub fn admin_token_for_marks(&self) -> anyhow::Result<Option<&Secret>> {
        if self.erase + self.ban == 0 {
            return Ok(None);
        }
        let token = self.admin_token.as_ref().filter(|t| !t.expose().is_empty());
        anyhow::ensure!(token.is_some(), "--erase and --ban need --admin-token (LB_LOADGEN_ADMIN_TOKEN)");
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn the_admin_token_is_needed_for_marks_and_never_printed() {
        let run = |extra: &[&str]| {
            let cli = Cli::try_parse_from([&["loadgen", "run"][..], extra].concat()).expect("cli");
            let Command::Run(args) = cli.command else { panic!("run") };
            args
        };
        assert!(run(&[]).admin_token_for_marks().expect("no marks, no token").is_none());
        let err = run(&["--erase", "2"]).admin_token_for_marks().expect_err("a token is needed").to_string();
        assert!(err.contains("--admin-token"), "{err}");
        let args = run(&["--erase", "2", "--ban", "1", "--admin-token", "s3cret-value"]);
        assert_eq!(args.admin_token_for_marks().expect("token").map(Secret::expose), Some("s3cret-value"));
        assert!(!format!("{args:?}").contains("s3cret-value"), "Debug hides the token");
    }
}
