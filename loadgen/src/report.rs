//! The report: a table for humans on stdout, JSON for machines.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::verify::Verification;

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Latency {
    /// Quantiles of a histogram recorded in microseconds.
    pub fn from_us(h: &Histogram<u64>) -> Self {
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// The write side.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Writes {
    /// Target events per second.
    pub target_rate: f64,
    /// Events sent per second over the send window (first due event to last send).
    pub achieved_rate: f64,
    /// Events acknowledged per second, from the first due event to the last acknowledgement.
    pub acked_rate: f64,
    /// Events sent.
    pub sent: u64,
    /// Events acknowledged.
    pub acked: u64,
    /// Events that failed.
    pub errors: u64,
    /// Of the events sent, copies produced right after their original (`--duplicate-share`).
    pub duplicated: u64,
    /// Of the events sent, earlier events re-sent with their `id` (`--resend-share`).
    pub resent: u64,
    /// Produce-ack latency from each event's due time (coordinated-omission corrected).
    pub ack_latency: Latency,
}

/// One read route.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reads {
    /// Requests per second achieved.
    pub rate: f64,
    /// Requests without a 2xx answer.
    pub errors: u64,
    /// Errors by kind.
    pub error_kinds: std::collections::BTreeMap<String, u64>,
    /// Latency from each request's due time.
    pub latency: Latency,
}

/// Produce-to-visible freshness.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Freshness {
    /// Markers seen.
    pub samples: u64,
    /// Markers never seen within 30 s.
    pub timeouts: u64,
    /// Answers dated (`as_of`) after a marker's timestamp that did not show it: broken promises, must be 0.
    pub as_of_violations: u64,
    /// A few of them, described.
    pub violation_examples: Vec<String>,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// Of the above, produce to the broker's acknowledgement (the producer's linger and the
    /// broker's append): median, ms. The rest is ingest's fetch, batch and write, and the
    /// probe's 20 ms polls.
    pub acked_p50_ms: f64,
    /// 99th percentile of the same, ms.
    pub acked_p99_ms: f64,
}

/// Erasures and bans made during the load ([`crate::marks`]), and how the
/// answers read around them fared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Marks {
    /// Players erased.
    pub erased: u64,
    /// Players banned (never lifted during the run).
    pub banned: u64,
    /// Calls that failed (the oracle cannot know what they changed: must be 0).
    pub failed_calls: u64,
    /// Why, for the first few.
    pub failures: Vec<String>,
    /// Answers about those players sent after the call about them returned: judged exactly.
    pub answers_after: u64,
    /// Answers sent while the call ran: either side is right, not judged.
    pub answers_during: u64,
    /// Answers read before the call started (ordinary reads).
    pub answers_before: u64,
    /// Reads of the checks after each call that got no usable answer.
    pub unanswered: u64,
    /// Answers that broke the rules (must be 0).
    pub violations: u64,
    /// The first few, described.
    pub examples: Vec<String>,
}

impl Marks {
    /// Whether every call went through and no answer broke the rules.
    pub fn passed(&self) -> bool {
        self.failed_calls == 0 && self.violations == 0
    }
}

/// Where the run happened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Environment {
    /// CPU cores available.
    pub cores: usize,
    /// Board layout as reported by the api.
    pub layout: String,
    /// Shards of the board.
    pub shards: u64,
    /// The board's rules as the api reports them, e.g. `order asc, ties earliest`.
    pub rules: String,
    /// The broker.
    pub broker: String,
    /// Players simulated.
    pub players: usize,
    /// Boards the players are spread over.
    pub boards: usize,
    /// The metadata events carried (`--meta`: `mix` or a size in bytes), verified with the scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
    /// Seconds of load.
    pub duration_s: f64,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Writes.
    pub writes: Writes,
    /// Reads of the top 100.
    pub reads_top: Reads,
    /// Reads of a player's rank.
    pub reads_rank: Reads,
    /// Freshness probe.
    pub freshness: Freshness,
    /// Largest consumer lag seen during the run (records).
    pub max_consumer_lag: i64,
    /// Seconds from the end of the load until the lag reached 0.
    pub drain_s: f64,
    /// Whether the run was stopped early (Ctrl-C, SIGTERM): nothing was verified.
    pub interrupted: bool,
    /// The end check.
    pub verification: Verification,
    /// Runs with seasons: the end check of each season the run played in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seasons: Vec<SeasonCheck>,
    /// Runs with `--erase` or `--ban`: the calls made and the answers read around them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marks: Option<Marks>,
    /// The environment.
    pub environment: Environment,
}

impl Report {
    /// Whether the run met its contract: it ran to the end, the target write
    /// rate within 2%, no produce errors, no verification mismatch, no
    /// answer dated after an event it did not reflect, and every erasure and
    /// ban made, with no answer after one breaking its rules.
    pub fn passed(&self) -> bool {
        !self.interrupted
            && self.writes.achieved_rate >= self.writes.target_rate * 0.98
            && self.writes.errors == 0
            && self.verification.mismatches == 0
            && self.seasons.iter().all(|s| s.verification.mismatches == 0)
            && self.freshness.as_of_violations == 0
            && self.marks.as_ref().is_none_or(Marks::passed)
    }

    /// The human-readable table.
    #[allow(clippy::many_single_char_names, reason = "short local aliases keep the format lines readable")]
    pub fn table(&self) -> String {
        let mut t = String::new();
        let w = &self.writes;
        let e = &self.environment;
        let _ = writeln!(
            t,
            "leaderboard load report ({} cores, layout {}, {} shards, {}, broker {}, {} players on {} board{}{}, {:.0}s)",
            e.cores,
            e.layout,
            e.shards,
            e.rules,
            e.broker,
            e.players,
            e.boards,
            if e.boards == 1 { "" } else { "s" },
            e.meta.as_ref().map_or_else(String::new, |m| format!(", metadata ({m}) on every event")),
            e.duration_s
        );
        let _ =
            writeln!(t, "{:<26}{:>12}{:>12}{:>12}{:>12}{:>12}", "", "rate/s", "p50 ms", "p99 ms", "p999 ms", "errors");
        let _ = writeln!(
            t,
            "{:<26}{:>12.0}{:>12.2}{:>12.2}{:>12.2}{:>12}",
            format!("writes (target {:.0}/s)", w.target_rate),
            w.achieved_rate,
            w.ack_latency.p50_ms,
            w.ack_latency.p99_ms,
            w.ack_latency.p999_ms,
            w.errors
        );
        let _ = writeln!(
            t,
            "{:<26}{:>12.0}   ({} of {} events acknowledged)",
            "writes acknowledged", w.acked_rate, w.acked, w.sent
        );
        if w.duplicated + w.resent > 0 {
            let _ = writeln!(
                t,
                "{:<26}{:>12}   ({} produced twice in a row, {} earlier events re-sent with their id)",
                "writes repeated",
                w.duplicated + w.resent,
                w.duplicated,
                w.resent
            );
        }
        for (name, r) in [("reads: top 100", &self.reads_top), ("reads: player rank", &self.reads_rank)] {
            let _ = writeln!(
                t,
                "{name:<26}{:>12.0}{:>12.2}{:>12.2}{:>12.2}{:>12}",
                r.rate, r.latency.p50_ms, r.latency.p99_ms, r.latency.p999_ms, r.errors
            );
            for (kind, n) in &r.error_kinds {
                let _ = writeln!(t, "  {n} x {kind}");
            }
        }
        let f = &self.freshness;
        let _ = writeln!(
            t,
            "{:<26}{:>12}{:>12.1}{:>12.1}{:>12}{:>12}",
            "freshness (produce→api)",
            f.samples,
            f.p50_ms,
            f.p99_ms,
            format!("max {:.0}", f.max_ms),
            f.timeouts
        );
        let _ = writeln!(
            t,
            "  of which produce→ack (producer linger, broker append): p50 {:.1} ms, p99 {:.1} ms",
            f.acked_p50_ms, f.acked_p99_ms
        );
        let _ = writeln!(t, "as_of promise: {} violations over {} markers", f.as_of_violations, f.samples);
        for ex in &f.violation_examples {
            let _ = writeln!(t, "  violation: {ex}");
        }
        if let Some(m) = &self.marks {
            let _ = writeln!(
                t,
                "erasures and bans: {} erased, {} banned during the load, {} calls failed; {} answers about them \
                 judged after the calls returned ({} during the calls not judged, {} before): {} violations",
                m.erased, m.banned, m.failed_calls, m.answers_after, m.answers_during, m.answers_before, m.violations
            );
            for ex in m.failures.iter().map(|f| format!("failed call: {f}")).chain(m.examples.iter().cloned()) {
                let _ = writeln!(t, "  {ex}");
            }
        }
        if self.interrupted {
            let _ = writeln!(t, "max consumer lag: {} records; not waited for", self.max_consumer_lag);
            let _ = writeln!(t, "interrupted: the load stopped early and nothing was verified — INCOMPLETE");
            return t;
        }
        let _ = writeln!(
            t,
            "max consumer lag: {} records; drained {:.1}s after the load stopped",
            self.max_consumer_lag, self.drain_s
        );
        self.verification_lines(&mut t);
        t
    }

    /// The end checks: all-time (each board when there are several) and each season, with the first differences.
    fn verification_lines(&self, t: &mut String) {
        let v = &self.verification;
        let _ = writeln!(
            t,
            "verification: {} sampled players{} (+ {} again in lookup lists) + {} top rows, total {} vs {}: {} mismatches{}",
            v.sampled,
            marked(v),
            v.looked_up,
            v.top_rows,
            v.total.0,
            v.total.1,
            v.mismatches,
            if self.passed() { " — PASS" } else { " — FAIL" }
        );
        if v.boards.len() > 1 {
            for b in &v.boards {
                let _ = writeln!(
                    t,
                    "  {}: {} sampled + {} top rows, total {} vs {}: {} mismatches",
                    b.board, b.sampled, b.top_rows, b.total.0, b.total.1, b.mismatches
                );
            }
        }
        for ex in &v.examples {
            let _ = writeln!(t, "  mismatch: {ex}");
        }
        for season in &self.seasons {
            let v = &season.verification;
            let _ = writeln!(
                t,
                "season {} ({}): {} sampled{} (+ {} in lookup lists) + {} top rows, total {} vs {}: {} mismatches",
                season.season,
                season.state,
                v.sampled,
                marked(v),
                v.looked_up,
                v.top_rows,
                v.total.0,
                v.total.1,
                v.mismatches
            );
            if let Some(r) = &season.result {
                let _ = writeln!(
                    t,
                    "  result records: {} (revision {}), {} rows compared with the oracle: {} mismatches",
                    r.records, r.revision, r.rows, r.mismatches
                );
            }
            for ex in &v.examples {
                let _ = writeln!(t, "  mismatch: {ex}");
            }
        }
    }
}

/// ` + N erased or banned` when the check covered such players.
fn marked(v: &Verification) -> String {
    if v.marked == 0 { String::new() } else { format!(" + {} erased or banned", v.marked) }
}

/// The end check of one season.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SeasonCheck {
    /// The season id.
    pub season: String,
    /// `open` or `closed` when it was checked (on the first board).
    pub state: String,
    /// The comparison.
    pub verification: Verification,
    /// A closed season's result records, compared with the oracle (their
    /// differences are among the verification's mismatches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultCheck>,
}

/// A closed season's results on the results topic (docs/contract.md#season-results).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResultCheck {
    /// Boards whose result record was read.
    pub records: u64,
    /// The highest revision read.
    pub revision: u32,
    /// Top rows compared.
    pub rows: u64,
    /// Differences from the oracle (a missing record is one).
    pub mismatches: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::BoardCheck;

    fn sample() -> Report {
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        for v in [1000, 2000, 3000] {
            h.record(v).expect("record");
        }
        Report {
            writes: Writes {
                target_rate: 30_000.0,
                achieved_rate: 29_990.0,
                acked_rate: 29_900.0,
                sent: 10,
                acked: 10,
                errors: 0,
                duplicated: 0,
                resent: 0,
                ack_latency: Latency::from_us(&h),
            },
            environment: Environment { players: 1000, boards: 1, ..Environment::default() },
            ..Report::default()
        }
    }

    #[test]
    fn latency_is_reported_in_ms() {
        let r = sample();
        assert_eq!(r.writes.ack_latency.count, 3);
        assert!((r.writes.ack_latency.p50_ms - 2.0).abs() < 0.01);
        assert!((r.writes.ack_latency.max_ms - 3.0).abs() < 0.01);
    }

    #[test]
    fn table_and_json_carry_the_figures() {
        let mut r = sample();
        assert!(r.passed());
        let table = r.table();
        assert!(table.contains("writes (target 30000/s)"));
        assert!(table.contains("29990"));
        assert!(table.contains("10 of 10 events acknowledged"));
        assert!(table.contains("PASS"));
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["writes"]["achieved_rate"], 29_990.0);
        assert!(json["verification"]["mismatches"].is_u64());
        assert!(table.contains("1000 players on 1 board,"), "{table}");
        assert!(!table.contains("  lt-2:"), "one board needs no per-board lines");
        r.verification.mismatches = 1;
        r.verification.examples.push("lt-2: p-00000001: wrong".into());
        r.environment.boards = 2;
        r.verification.boards = ["lt-1", "lt-2"]
            .map(|b| BoardCheck { board: b.into(), mismatches: u64::from(b == "lt-2"), ..BoardCheck::default() })
            .into();
        assert!(!r.passed());
        let table = r.table();
        assert!(table.contains("FAIL") && table.contains("mismatch: lt-2: p-00000001"), "{table}");
        assert!(
            table.contains("on 2 boards")
                && table.contains("  lt-2: 0 sampled + 0 top rows, total 0 vs 0: 1 mismatches")
        );
        r.verification = Verification::default();
        r.interrupted = true;
        assert!(!r.passed(), "an interrupted run never passes");
        let table = r.table();
        assert!(table.contains("INCOMPLETE") && table.contains("not waited for"), "{table}");
        assert!(!table.contains("verification:") && !table.contains("drained"), "{table}");
        assert_eq!(serde_json::to_value(&r).expect("json")["interrupted"], true);
    }

    #[test]
    fn erasures_and_bans_are_reported_and_a_violation_or_failed_call_fails_the_run() {
        let mut r = sample();
        r.verification.sampled = 500;
        r.verification.marked = 8;
        r.marks = Some(Marks { erased: 4, banned: 4, answers_after: 120, answers_during: 3, ..Marks::default() });
        assert!(r.passed());
        let table = r.table();
        assert!(table.contains("erasures and bans: 4 erased, 4 banned during the load, 0 calls failed"), "{table}");
        assert!(table.contains("120 answers about them judged") && table.contains(": 0 violations"), "{table}");
        assert!(table.contains("500 sampled players + 8 erased or banned (+"), "{table}");
        assert_eq!(serde_json::to_value(&r).expect("json")["marks"]["erased"], 4);
        let marks = r.marks.as_mut().expect("marks");
        marks.violations = 1;
        marks.examples.push("p-00000003: top read after their ban returned still shows score 9".into());
        assert!(!r.passed());
        assert!(r.table().contains("  p-00000003: top read after"), "{}", r.table());
        let marks = r.marks.as_mut().expect("marks");
        (marks.violations, marks.failed_calls) = (0, 1);
        assert!(!r.passed(), "a failed call leaves the oracle unsure");
        r.marks = None;
        assert!(!serde_json::to_value(&r).expect("json").as_object().expect("object").contains_key("marks"));
    }
}
