//! What commands print: lines of text, or with `--json` one JSON document, for scripts.

use std::io::{self, Write};

use leaderboard_contract::BoardId;
use serde::Serialize;

/// Where a command writes its report, and in which form.
pub(crate) struct Output<W> {
    w: W,
    /// `--json`: one JSON document instead of text (and no progress bar).
    pub(crate) json: bool,
}

impl<W: Write> Output<W> {
    /// Reports written to `w`, as JSON when `json`.
    pub(crate) fn new(w: W, json: bool) -> Self {
        Self { w, json }
    }

    /// The one-line result of a command on `board`: `board: what`, or `{"board":..,"result":..}`.
    pub(crate) fn report(&mut self, board: &BoardId, what: &str) -> io::Result<()> {
        if self.json {
            writeln!(self.w, "{}", serde_json::json!({ "board": board.as_str(), "result": what }))
        } else {
            writeln!(self.w, "{board}: {what}")
        }
    }

    /// `value` as one pretty-printed JSON document.
    pub(crate) fn document(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        writeln!(self.w, "{}", serde_json::to_string_pretty(value)?)?;
        Ok(())
    }

    /// `value` as one pretty-printed JSON document with its object keys sorted: the recovery
    /// commands' reports have always been printed so, and scripts read them.
    pub(crate) fn sorted_document(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        self.document(&serde_json::to_value(value)?)
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.w.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Boundaries as the command line takes them: comma-separated.
pub(crate) fn join(values: &[u64]) -> String {
    values.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}
