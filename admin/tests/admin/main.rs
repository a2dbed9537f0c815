//! `lb-admin` against the real Redis of `scripts/infra.sh`: every command, in text and JSON.

mod players;
mod recovery;

use clap::Parser as _;
use leaderboard_contract::{BoardId, PlayerId};
use leaderboard_semantics::ScoreUpdate;
use leaderboard_store::{RebalanceOptions, RebalanceOutcome, RedisTarget, Router, RouterOptions, Store, StoreOptions};

async fn admin(args: &[&str]) -> anyhow::Result<String> {
    admin_as(&testkit::redis_url(), args).await
}

/// `lb-admin` against `redis` (a URL with a user, or the open default user).
async fn admin_as(redis: &str, args: &[&str]) -> anyhow::Result<String> {
    let cli = admin::Cli::try_parse_from(["lb-admin", "--redis", redis].iter().chain(args)).expect("command line");
    let mut out = Vec::new();
    admin::run(cli, &mut out).await?;
    Ok(String::from_utf8(out).expect("utf-8"))
}

async fn json(args: &[&str]) -> serde_json::Value {
    let text = admin(&[args, &["--json"]].concat()).await.expect("command");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A board on `layout` with 1,000 players, most of them in the lowest shard.
async fn skewed_board(layout: &str) -> (Router, BoardId) {
    let store = Store::connect(&RedisTarget::parse(&testkit::redis_url()).expect("url"), StoreOptions::default())
        .await
        .expect("redis");
    let router = Router::new(store, layout.parse().expect("layout"), RouterOptions::default());
    let board = BoardId::new(testkit::unique("admin")).expect("board");
    let updates: Vec<ScoreUpdate> = (0..1000u64)
        .map(|i| ScoreUpdate {
            board: board.clone(),
            player: PlayerId::new(format!("p{i}")).expect("id"),
            score: i,
            time_ms: 0,
            meta: None,
            source: None,
        })
        .collect();
    router.apply(&updates).await.expect("apply");
    (router, board)
}

fn sizes(board: &serde_json::Value) -> Vec<u64> {
    board["shards"].as_array().expect("shards").iter().map(|s| s["size"].as_u64().expect("size")).collect()
}

#[tokio::test]
async fn lists_proposes_and_rebalances_a_range_board() {
    let (_, board) = skewed_board("range:5000").await;
    let name = board.as_str();
    let listed = json(&["boards"]).await;
    let line = listed.as_array().expect("boards").iter().find(|b| b["board"] == name).expect("listed").clone();
    assert_eq!(line["layout"], "range:5000");
    assert_eq!(line["total"], 1000);
    assert_eq!(sizes(&line), [1000, 0]);
    assert!(admin(&["boards"]).await.expect("text").contains(&format!("{name}  range:5000  1000 players")));

    let proposed = json(&["propose", name, "--shards", "4"]).await;
    assert_eq!(proposed["boundaries"], serde_json::json!([250, 500, 750]));
    let skip = json(&["rebalance", name, "--shards", "2", "--only-if-skewed", "3"]).await;
    assert!(skip["result"].as_str().expect("result").starts_with("not skewed"), "{skip}");

    let done = json(&["rebalance", name, "--shards", "4", "--grace", "50ms", "--chunk", "100"]).await;
    assert!(done["result"].as_str().expect("result").contains("250,500,750"), "{done}");
    let listed = json(&["boards"]).await;
    let line = listed.as_array().expect("boards").iter().find(|b| b["board"] == name).expect("listed").clone();
    assert_eq!(sizes(&line), [250, 250, 250, 250]);
    assert_eq!(line["layout"], "range:250,500,750");
}

#[tokio::test]
async fn resumes_and_aborts_an_interrupted_rebalance() {
    let (router, board) = skewed_board("range:5000").await;
    let name = board.as_str();
    let paused = RebalanceOptions { chunk: 50, max_chunks: Some(2), ..RebalanceOptions::default() };
    assert!(matches!(
        router.rebalance(&board, vec![100, 600], paused).await.expect("start"),
        RebalanceOutcome::Paused { .. }
    ));
    let watched = tokio::spawn({
        let name = name.to_string();
        async move { admin(&["watch", &name]).await }
    });
    let resumed = json(&["resume", name, "--grace", "50ms"]).await;
    assert!(resumed["result"].as_str().expect("result").contains("100,600"), "{resumed}");
    assert!(watched.await.expect("watch task").expect("watch").contains("no rebalance or migration in progress"));

    assert!(matches!(
        router.rebalance(&board, vec![300], paused).await.expect("start"),
        RebalanceOutcome::Paused { .. }
    ));
    let aborted = json(&["abort", name, "--grace", "50ms"]).await;
    assert_eq!(aborted["result"], "rebalance abandoned; its generation deleted");
    let meta = router.range_meta(&board).await.expect("meta");
    assert!(meta.migration.is_none() && meta.retired.is_empty(), "{meta:?}");
    assert_eq!(meta.active.boundaries, [100, 600]);
    assert_eq!(router.total(&board).await.expect("total"), 1000, "nothing lost");
    assert!(json(&["abort", name]).await["result"] == "no rebalance or migration in progress");
}

#[tokio::test]
async fn refuses_what_a_layout_cannot_do() {
    let (_, board) = skewed_board("hash:4").await;
    let error = admin(&["rebalance", board.as_str(), "--shards", "2"]).await.expect_err("hash boards do not rebalance");
    assert!(error.to_string().contains("uses layout hash:4, not range"), "{error}");
    let error = admin(&["propose", "no-such-board", "--shards", "2"]).await.expect_err("unknown board");
    assert!(error.to_string().contains("no recorded layout"), "{error}");
}

/// A board moves hash -> range (equal-population boundaries) -> single with
/// `migrate`; an interrupted migration is resumed and another one abandoned.
#[tokio::test]
async fn migrates_resumes_and_aborts_layout_migrations() {
    let (router, board) = skewed_board("hash:4").await;
    let name = board.as_str();
    let done = json(&["migrate", name, "--to", "range", "--shards", "4", "--grace", "1100ms", "--chunk", "100"]).await;
    assert!(done["result"].as_str().expect("result").contains("now on layout range:250,500,750"), "{done}");
    let listed = json(&["boards"]).await;
    let line = listed.as_array().expect("boards").iter().find(|b| b["board"] == name).expect("listed").clone();
    assert_eq!((line["layout"].as_str(), sizes(&line)), (Some("range:250,500,750"), vec![250, 250, 250, 250]));

    // Interrupted (as a killed process leaves it), then resumed by the command line.
    let paused = RebalanceOptions { chunk: 50, max_chunks: Some(2), grace: std::time::Duration::from_millis(1100) };
    let single = "single".parse().expect("spec");
    assert!(matches!(
        router.migrate_layout(&board, &single, paused).await.expect("start"),
        leaderboard_store::MigrationOutcome::Paused { .. }
    ));
    assert!(
        admin(&["boards"])
            .await
            .expect("text")
            .contains(&format!("{name}  range:250,500,750  1000 players  (migrating to single)"))
    );
    let error = admin(&["migrate", name, "--to", "hash:8"]).await.expect_err("busy");
    assert!(error.to_string().contains("a migration to single is in progress"), "{error}");
    let resumed = json(&["resume", name, "--grace", "1100ms"]).await;
    assert!(resumed["result"].as_str().expect("result").contains("now on layout single"), "{resumed}");

    // Started, then abandoned: the board stays single, the half-built target goes.
    assert!(matches!(
        router.migrate_layout(&board, &"hash:8".parse().expect("spec"), paused).await.expect("start"),
        leaderboard_store::MigrationOutcome::Paused { .. }
    ));
    let aborted = json(&["abort", name, "--grace", "1100ms"]).await;
    assert_eq!(aborted["result"], "migration abandoned; its target deleted");
    let listed = json(&["boards"]).await;
    let line = listed.as_array().expect("boards").iter().find(|b| b["board"] == name).expect("listed").clone();
    assert_eq!((line["layout"].as_str(), line["total"].as_u64()), (Some("single"), Some(1000)));
    assert!(line.get("migrating_to").is_none(), "{line}");
}

/// `delete` removes the board; changes made from the command line are in the audit log.
#[tokio::test]
async fn deletes_boards_and_audits_what_it_changes() {
    let (router, board) = skewed_board("single").await;
    let name = board.as_str();
    let deleted = json(&["delete", name]).await;
    assert!(deleted["result"].as_str().expect("result").starts_with("deleted"), "{deleted}");
    assert_eq!(router.total(&board).await.expect("total"), 0);
    let error = admin(&["delete", name]).await.expect_err("gone");
    assert!(error.to_string().contains("no recorded layout"), "{error}");
    let log = json(&["audit", "--count", "1000"]).await;
    let mine: Vec<(&str, &str)> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["target"] == name)
        .map(|e| (e["action"].as_str().expect("action"), e["result"].as_str().expect("result")))
        .collect();
    assert_eq!(mine, [("delete_board", "error"), ("delete_board", "ok")], "newest first");
    assert!(log[0]["who"].as_str().expect("who").starts_with("cli:"));
}

/// A board deleted while `boards` runs (listed in `lb:boards`, its record already gone: the state
/// a deletion passes through) is skipped, not an error that hides every other board.
#[tokio::test]
async fn boards_skips_a_board_deleted_meanwhile() {
    let (router, board) = skewed_board("single").await;
    let ghost = testkit::unique("deleted-meanwhile");
    let store = router.store();
    let _: i64 = store
        .query(redis::cmd("SADD").arg(leaderboard_store::layout::record::BOARDS_KEY).arg(&ghost))
        .await
        .expect("sadd");
    let listed = json(&["boards"]).await;
    let _: i64 = store
        .query(redis::cmd("SREM").arg(leaderboard_store::layout::record::BOARDS_KEY).arg(&ghost))
        .await
        .expect("srem");
    let names: Vec<&str> = listed.as_array().expect("boards").iter().filter_map(|b| b["board"].as_str()).collect();
    assert!(names.contains(&board.as_str()) && !names.contains(&ghost.as_str()), "{names:?}");
}

/// `rules`: creates a board with its rules, shows them, narrows the bounds,
/// refuses to change order or ties, and audits the changes.
/// `lb-admin rules --reset manual` starts a board's first season, `lb-admin reset` ends it and
/// opens the next (a retry with `--ending` answers the same reset), and the players log keeps
/// the board's season starts.
#[tokio::test]
async fn a_manual_board_is_reset_by_hand_and_its_resets_kept() {
    let board = testkit::unique("cli-manual");
    let (topic, brokers) = (testkit::unique("players"), testkit::brokers());
    let log = ["--brokers", brokers.as_str(), "--players-topic", topic.as_str()];
    let created =
        json(&[&["rules", &board, "--reset", "manual", "--late-grace", "1h", "--layout", "single"], &log[..]].concat())
            .await;
    assert_eq!(created["rules"]["reset"], serde_json::json!({"every": "manual"}));
    let first = json(&[&["reset", &board], &log[..]].concat()).await;
    assert_eq!((first["ended"]["id"].as_str(), first["current"]["id"].as_str()), (Some("m1"), Some("m2")), "{first}");
    let retried = json(&[&["reset", &board, "--ending", "m1"], &log[..]].concat()).await;
    assert_eq!(retried, first, "a retry answers the reset that ended m1, and resets nothing");
    let text = admin(&[&["reset", &board], &log[..]].concat()).await.expect("reset");
    assert!(text.contains("season m2 ended at") && text.contains("season m3 is current from"), "{text}");
    let unknown = admin(&["reset", &board, "--ending", "m9"]).await.expect_err("not open");
    assert!(unknown.to_string().contains("the open season is m3"), "{unknown}");
    let plain = testkit::unique("cli-manual-none");
    admin(&["rules", &plain, "--min-score", "1", "--layout", "single"]).await.expect("a board without seasons");
    let refused = admin(&["reset", &plain]).await.expect_err("not manual");
    assert!(refused.to_string().contains("only a manual board"), "{refused}");
    let kept = leaderboard_players_log::PlayersLog::new(brokers.clone(), Vec::new(), topic.clone())
        .read_contents()
        .await
        .expect("read")
        .expect("the topic exists");
    let starts: Vec<&str> = kept.resets.iter().flat_map(|(_, s)| s.iter().map(|s| s.id.as_str())).collect();
    assert_eq!(starts, ["m1", "m2", "m3"], "{kept:?}");
}

#[tokio::test]
async fn rules_create_show_change_and_refuse() {
    let board = testkit::unique("cli-rules");
    let name = board.as_str();
    let missing = admin(&["rules", name, "--ties", "earliest"]).await.expect_err("needs a layout");
    assert!(missing.to_string().contains("--layout"), "{missing}");
    let created = json(&["rules", name, "--order", "asc", "--ties", "earliest", "--layout", "hash:3"]).await;
    assert_eq!(created["rules"]["order"], "asc");
    assert_eq!(created["rules"]["ties"], "earliest");
    let narrowed = json(&["rules", name, "--max-score", "5000"]).await;
    assert_eq!(
        (narrowed["rules"]["ties"].as_str(), narrowed["rules"]["max_score"].as_u64()),
        (Some("earliest"), Some(5000))
    );
    let shown = admin(&["rules", name]).await.expect("show");
    assert_eq!(shown.trim(), format!("{name}  order=asc ties=earliest scores 0..=5000"));
    let fixed = admin(&["rules", name, "--order", "desc"]).await.expect_err("fixed");
    assert!(fixed.to_string().contains("cannot change"), "{fixed}");
    let listed = admin(&["boards"]).await.expect("boards");
    assert!(
        listed.lines().any(|l| l.starts_with(name) && l.contains("hash:3") && l.contains("ties=earliest")),
        "{listed}"
    );
    let points = testkit::unique("cli-rules-sum");
    let created = json(&["rules", &points, "--operator", "sum", "--dedup-window", "2h", "--layout", "hash:2"]).await;
    assert_eq!(
        (created["rules"]["operator"].as_str(), created["rules"]["dedup_window"].as_str()),
        (Some("sum"), Some("2h"))
    );
    let shown = admin(&["rules", &points]).await.expect("show");
    assert!(shown.contains("operator=sum dedup_window=2h"), "{shown}");
    let fixed = admin(&["rules", &points, "--operator", "last"]).await.expect_err("fixed");
    assert!(fixed.to_string().contains("cannot change"), "{fixed}");
    let summed = testkit::unique("cli-rules-sum-range");
    let ranged_sum = json(&["rules", &summed, "--operator", "sum", "--layout", "range:500"]).await;
    assert_eq!(ranged_sum["rules"]["operator"].as_str(), Some("sum"), "range takes sum boards: {ranged_sum}");
    let ranged = testkit::unique("cli-rules-range");
    admin(&["rules", &ranged, "--min-score", "1", "--layout", "range:500,900"]).await.expect("range board");
    let listed = admin(&["boards"]).await.expect("boards");
    assert!(listed.lines().any(|l| l.starts_with(&ranged) && l.contains("range:500,900")), "boundaries kept: {listed}");
    let seasonal = testkit::unique("cli-rules-seasons");
    let weekly = [
        "rules",
        &seasonal,
        "--reset",
        "week",
        "--weekday",
        "tue",
        "--utc-offset",
        "-05:00",
        "--keep-seasons",
        "3",
        "--late-grace",
        "1m",
        "--layout",
        "single",
    ];
    let set = json(&weekly).await;
    assert_eq!(set["rules"]["reset"], serde_json::json!({"every": "week", "utc_offset": "-05:00", "weekday": "tue"}));
    assert_eq!((set["rules"]["keep_seasons"].as_u64(), set["rules"]["late_grace"].as_str()), (Some(3), Some("1m")));
    let shown = admin(&["rules", &seasonal]).await.expect("show");
    assert!(shown.contains("reset weekly on tue at 00:00 -05:00 keep_seasons=3 late_grace=1m"), "{shown}");
    let changed = admin(&["rules", &seasonal, "--reset", "day"]).await.expect_err("fixed");
    assert!(changed.to_string().contains("cannot change once set"), "{changed}");
    let tournament = testkit::unique("cli-rules-span");
    let span = [
        "rules",
        &tournament,
        "--reset",
        "span",
        "--start",
        "2027-01-30T18:00:00Z",
        "--length",
        "3d",
        "--layout",
        "single",
    ];
    let set = json(&span).await;
    assert_eq!(
        set["rules"]["reset"],
        serde_json::json!({"every": "span", "start": "2027-01-30T18:00:00Z", "length": "3days"})
    );
    let hourly = testkit::unique("cli-rules-hour");
    let refused = admin(&["rules", &hourly, "--reset", "hour", "--late-grace", "2h", "--layout", "single"]).await;
    assert!(refused.expect_err("grace beyond an hour").to_string().contains("shortest season"));
    let set = json(&["rules", &hourly, "--reset", "hour", "--layout", "single"]).await;
    assert_eq!(set["rules"]["reset"], serde_json::json!({"every": "hour"}));
    let grace = json(&["rules", &seasonal, "--late-grace", "30s"]).await;
    assert_eq!(
        (grace["rules"]["late_grace"].as_str(), grace["rules"]["reset"]["every"].as_str()),
        (Some("30s"), Some("week"))
    );
    let log = json(&["audit", "--count", "1000"]).await;
    let mine: Vec<&str> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["target"] == name && e["action"] == "set_rules")
        .map(|e| e["result"].as_str().expect("result"))
        .collect();
    assert_eq!(mine, ["error", "ok", "ok", "error"], "newest first: refused change, bounds, creation, missing layout");
}

/// As the `lb-admin` Redis user (scripts/lib/redis-acl.sh): boards, rules (seasons too), layout
/// work, deletion and the audit log all work; the `lb-api` user, read-only, gets a refusal.
#[tokio::test]
async fn the_admin_user_runs_every_command_and_the_api_user_cannot_change_anything() {
    let (user, reader) = (testkit::redis_user_url("admin"), testkit::redis_user_url("api"));
    let (_, board) = skewed_board("range:500").await;
    let name = board.as_str();
    admin_as(&user, &["boards"]).await.expect("boards");
    admin_as(&user, &["rules", name, "--reset", "day", "--max-score", "100000"]).await.expect("rules");
    admin_as(&user, &["propose", name, "--shards", "3"]).await.expect("propose");
    admin_as(&user, &["rebalance", name, "--boundaries", "100,300"]).await.expect("rebalance");
    admin_as(&user, &["migrate", name, "--to", "hash:2"]).await.expect("migrate");
    let audit = admin_as(&user, &["audit", "--count", "50"]).await.expect("audit");
    assert!(audit.contains(name), "{audit}");
    let refused = admin_as(&reader, &["rules", name, "--max-score", "5"]).await.expect_err("lb-api cannot write");
    assert!(format!("{refused:#}").to_lowercase().contains("noperm"), "{refused:#}");
    admin_as(&user, &["delete", name]).await.expect("delete");
}
