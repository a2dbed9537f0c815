//! The web page in a real headless Chromium, driven over the `DevTools` protocol
//! (scripts/browser/dom.py): each look at the page waits for a condition to hold in it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use leaderboard_semantics::ScoreUpdate;

use crate::helpers::{TestApi, board, router, seed};

/// A page open in Chromium; [`Page::look`] returns its DOM once the next condition holds.
struct Page {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    looked: bool,
}

impl Page {
    fn open(url: &str, conditions: &[&str]) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/browser/dom.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(url)
            .args(conditions)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs scripts/browser/dom.py (Chromium: scripts/infra.sh install)");
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        Self { child, input, output, looked: false }
    }

    /// The DOM once the next condition holds (blocking: call from `spawn_blocking`).
    fn look(&mut self) -> String {
        if self.looked {
            self.input.write_all(b"\n").and_then(|()| self.input.flush()).expect("go on");
        }
        self.looked = true;
        let mut line = String::new();
        self.output.read_line(&mut line).expect("read the DOM");
        if line.is_empty() {
            let status = self.child.wait().expect("wait");
            panic!("the condition never held in the page ({status}; its DOM is on stderr)");
        }
        serde_json::from_str(&line).expect("the DOM as a JSON string")
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The DOM of `url` once `condition` holds.
async fn rendered_dom(url: String, condition: &'static str) -> String {
    tokio::task::spawn_blocking(move || Page::open(&url, &[condition]).look()).await.expect("browser task")
}

#[tokio::test]
async fn page_shows_rows_and_a_lookup() {
    let redis = testkit::redis_url();
    let b = board("page");
    let oracle = seed(&router(&redis, "range:100,200").await, &b, 150).await;
    // The test plays ingest's part: everything stamped before now is applied.
    let topic = testkit::unique("page-topic");
    let now_ms =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis())
            .expect("ms");
    let claim = leaderboard_store::marker::watermark::Claim { partition: 0, applied_before_ms: now_ms };
    let store = router(&redis, "single").await.store().clone();
    leaderboard_store::marker::watermark::publish(&store, &topic, 1, &[claim]).await.expect("publish");
    let api = TestApi::start(&redis, "range:100,200", |c| c.topic = topic.clone()).await;
    let player = leaderboard_contract::PlayerId::new("p0042").expect("id");
    let want = oracle.board(&b).expect("seeded").standing(&player).expect("seeded");
    let url = format!("{}/?board={b}&player={player}", api.base);
    let ready = "document.querySelectorAll('#top-rows tr').length === 100 && document.getElementById('lookup-rank') \
        && document.getElementById('freshness-line').getAttribute('points').includes(',') \
        && document.getElementById('board-stats').textContent.includes('equal scores')";
    // Then live: p0042 takes the lead, and both streams show it without a reload.
    let moved = "document.getElementById('lookup-rank')?.textContent === '1' \
        && document.querySelector('#top-rows tr')?.textContent.includes('p0042')";
    let mut page = Page::open(&url, &[ready, moved]);
    let (mut page, dom) = tokio::task::spawn_blocking(move || {
        let dom = page.look();
        (page, dom)
    })
    .await
    .expect("browser task");
    let rows = dom.matches("<tr").count();
    assert!(rows > 100, "top rows rendered ({rows} <tr>): {dom}");
    let rank = format!(r#"<dd id="lookup-rank">{}</dd>"#, want.rank);
    assert!(dom.contains(&rank), "lookup shows rank {}: {dom}", want.rank);
    // p0042's name is markup: shown as text, with the flag of its country (JP).
    let name = r#"<dd id="lookup-name">🇯🇵 &lt;b&gt;Zoë&lt;/b&gt; &amp; co</dd>"#;
    assert!(dom.contains(name), "the lookup shows the name as text, with its flag: {dom}");
    assert!(!dom.contains("<b>Zoë</b>"), "a name is never markup");
    let top = oracle.board(&b).expect("seeded").top(0, 100).entries;
    let named = top.iter().find(|e| e.meta.is_some() && e.player.as_str() != "p0042").expect("a named player");
    let meta: serde_json::Value = serde_json::from_str(named.meta.as_ref().expect("meta").as_str()).expect("json");
    let (name, country) = (meta["name"].as_str().expect("name"), meta["country"].as_str().expect("country"));
    let flag: String =
        country.chars().map(|c| char::from_u32(0x1f1e6 + (c as u32 - 'A' as u32)).expect("flag")).collect();
    let cell = format!(
        r#"<td><span class="flag" title="{country}">{flag}</span> {name} <span class="id">{}</span></td>"#,
        named.player
    );
    assert!(dom.contains(&cell), "rows show names and flags ({cell}): {dom}");
    let plain = top.iter().find(|e| e.meta.is_none()).expect("a player without metadata");
    assert!(dom.contains(&format!("<td>{}</td>", plain.player)), "a player without metadata shows the id: {dom}");
    assert!(dom.contains("150 players"), "freshness line with the total");
    assert!(dom.contains("Every score event stamped before"), "the watermark, in words: {dom}");
    let points =
        dom.split(r#"id="freshness-line" points=""#).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("");
    assert!(points.contains(','), "the freshness chart has points: {points:?}");
    assert!(dom.contains("<dd>equal scores share a rank</dd>"), "the board's rules are shown: {dom}");
    assert!(dom.contains("<dd>higher score (descending)</dd>"), "the board's order is shown");
    let lead =
        ScoreUpdate { board: b.clone(), player: player.clone(), score: 10_000, time_ms: 0, meta: None, source: None };
    router(&redis, "range:100,200").await.apply(&[lead]).await.expect("apply");
    let dom = tokio::task::spawn_blocking(move || page.look()).await.expect("browser task");
    assert!(dom.contains("watching: rank and score update as they change"), "{dom}");
    api.stop().await;
}

/// A board with seasons: the picker lists them, the countdown runs, and a
/// closed season says its standings are final.
#[tokio::test]
async fn page_picks_seasons_and_counts_down_to_the_reset() {
    // A Redis of the test's own: ingest workers of other tests on the shared Redis
    // close every season their (real) clock says is over, and these seasons are
    // dated (2026-11-24 and 25) whatever the real date is.
    let private = testkit::PrivateRedis::start();
    let redis = private.url();
    let b = board("page-seasons");
    let writer = router(&redis, "single").await;
    let reset = leaderboard_semantics::season::Reset {
        every: leaderboard_semantics::season::Every::Day,
        utc_offset: time::UtcOffset::UTC,
        weekday: time::Weekday::Monday,
        span: None,
    };
    let rules = leaderboard_semantics::Rules { reset: Some(reset), ..leaderboard_semantics::Rules::default() };
    leaderboard_store::layout::record::set_rules(
        writer.store(),
        &b,
        leaderboard_store::layout::record::RecordedLayout::Single,
        rules,
    )
    .await
    .expect("rules");
    // 2026-11-24 (closed) and 2026-11-25 (current: the api's clock reads 10:00 that day).
    let day = |d: i64| reset.season_at(1_795_392_000_000 + d * 86_400_000).expect("season");
    let (closed, current) = (day(1), day(2));
    for (season, players) in [(&closed, 30), (&current, 12)] {
        let stored = writer.open_season(&b, &rules, season).await.expect("open");
        seed(&writer, &stored, players).await;
    }
    writer.close_season(&b, &closed.id, closed.end_ms + 20_000).await.expect("close");
    let offset = current.start_ms + 10 * 3_600_000 - leaderboard_semantics::clock::system_ms();
    let api =
        TestApi::start(&redis, "single", |c| c.store.clock = leaderboard_semantics::Clock::Offset { ms: offset }).await;
    let url = format!("{}/?board={b}&season={}", api.base, closed.id);
    let ready = "document.getElementById('countdown').textContent.includes('next reset') \
        && document.getElementById('season-picker').options.length > 2 \
        && document.getElementById('freshness').textContent.includes('30 players') \
        && document.getElementById('watermark').textContent.includes('closed') \
        && document.getElementById('board-stats').textContent.includes('daily')";
    let dom = rendered_dom(url, ready).await;
    assert!(dom.contains(r#"<option value="2026-11-24">2026-11-24 · closed · 30 players</option>"#), "picker: {dom}");
    assert!(dom.contains(r#"<option value="2026-11-25">2026-11-25 · open · 12 players</option>"#), "picker: {dom}");
    assert!(dom.contains(r#"<option value="all">all-time</option>"#), "picker: {dom}");
    assert!(dom.contains("next reset in 13:59:") || dom.contains("next reset in 14:00:00"), "countdown: {dom}");
    assert!(dom.contains("30 players · "), "the chosen season's rows and total: {dom}");
    assert!(dom.contains("This season is closed: its standings are final"), "frozen: {dom}");
    assert!(dom.contains("daily at 00:00 +00:00"), "the schedule: {dom}");
    api.stop().await;
}

/// The countdown follows the new schedules: an hourly board counts down to
/// the next hour; a span board before its first season counts down to its
/// start, with no current season to pick.
#[tokio::test]
async fn page_counts_down_to_the_next_hour_and_to_a_spans_first_season_and_not_on_a_manual_board() {
    let private = testkit::PrivateRedis::start();
    let redis = private.url();
    let writer = router(&redis, "single").await;
    // The api's clock reads 2026-11-25T10:15:00Z.
    let now = 1_795_392_000_000 + 2 * 86_400_000 + 10 * 3_600_000 + 15 * 60_000;
    let schedules = [
        ("page-hourly", r#"{"every":"hour"}"#),
        ("page-span", r#"{"every":"span","start":"2026-11-25T12:15:00Z","length":"3d"}"#),
    ];
    let mut boards = Vec::new();
    for (name, reset) in schedules {
        let b = board(name);
        let rules = leaderboard_semantics::Rules {
            reset: Some(serde_json::from_str(reset).expect("reset")),
            ..leaderboard_semantics::Rules::default()
        };
        let layout = leaderboard_store::layout::record::RecordedLayout::Single;
        leaderboard_store::layout::record::set_rules(writer.store(), &b, layout, rules).await.expect("rules");
        seed(&writer, &b, 5).await;
        boards.push(b);
    }
    let offset = now - leaderboard_semantics::clock::system_ms();
    let api =
        TestApi::start(&redis, "single", |c| c.store.clock = leaderboard_semantics::Clock::Offset { ms: offset }).await;
    let url = format!("{}/?board={}", api.base, boards[0]);
    let ready = "document.getElementById('countdown').textContent.includes('next reset') \
        && document.getElementById('season-picker').textContent.includes('current (') \
        && document.getElementById('board-stats').textContent.includes('hourly')";
    let dom = rendered_dom(url, ready).await;
    assert!(dom.contains("next reset in 00:44:") || dom.contains("next reset in 00:45:00"), "countdown: {dom}");
    assert!(dom.contains("current (2026-11-25T10)"), "picker: {dom}");
    assert!(dom.contains("hourly, on the hour (UTC)"), "the schedule: {dom}");
    // All-time (the stats of a season nobody has played yet are a 404): the schedule, the countdown.
    let url = format!("{}/?board={}&season=all", api.base, boards[1]);
    let ready = "document.getElementById('countdown').textContent.includes('first season') \
        && document.getElementById('season-picker').textContent.includes('current (') \
        && document.getElementById('board-stats').textContent.includes('every')";
    let dom = rendered_dom(url, ready).await;
    assert!(dom.contains("first season in 01:59:") || dom.contains("first season in 02:00:00"), "countdown: {dom}");
    assert!(dom.contains("current (none yet)"), "picker: {dom}");
    assert!(dom.contains("every 3days from 2026-11-25T12:15:00Z"), "the schedule: {dom}");
    // A manual board: nothing to count down to; its first season started an hour ago.
    let manual = board("page-manual");
    let rules = leaderboard_semantics::Rules {
        reset: Some(serde_json::from_str(r#"{"every":"manual"}"#).expect("reset")),
        ..leaderboard_semantics::Rules::default()
    };
    let layout = leaderboard_store::layout::record::RecordedLayout::Single;
    leaderboard_store::layout::record::set_rules(writer.store(), &manual, layout, rules).await.expect("rules");
    writer.start_manual(&manual, now - 3_600_000).await.expect("first season");
    seed(&writer, &manual, 5).await;
    let url = format!("{}/?board={manual}&season=all", api.base);
    let ready = "document.getElementById('countdown').textContent.includes('admin') \
        && document.getElementById('season-picker').textContent.includes('current (') \
        && document.getElementById('board-stats').textContent.includes('admin')";
    let dom = rendered_dom(url, ready).await;
    assert!(dom.contains("the season lasts until an admin resets it"), "countdown: {dom}");
    assert!(dom.contains("current (m1)"), "picker: {dom}");
    api.stop().await;
}
