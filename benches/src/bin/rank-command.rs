//! Prints the Redis command the api's rank route sends for one player of a
//! `single` board, as shell words (`$'...'` quoting: members are binary), so
//! `scripts/bench-reads.sh` can replay exactly that command with
//! `redis-benchmark` beside the api.
//!
//! `rank-command <board> <player>` → `EVAL_RO $'...' 1 $'lb:{board}:z' $'\x8f...'`

use std::fmt::Write as _;

use anyhow::Context as _;
use leaderboard_contract::{BoardId, PlayerId};
use redis::Arg;

fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("$'");
    for &b in bytes {
        match b {
            b'\'' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('\'');
    out
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: rank-command <board> <player>";
    let board = BoardId::new(args.next().context(usage)?).context("board")?;
    let player = PlayerId::new(args.next().context(usage)?).context("player")?;
    let cmd = leaderboard_store::layout::single::standing_command(&board, &player);
    let words: Vec<String> = cmd
        .args_iter()
        .map(|arg| match arg {
            Arg::Simple(bytes) => quote(bytes),
            // A cursor argument belongs to SCAN-like commands, never to this one.
            _ => String::new(),
        })
        .collect();
    println!("{}", words.join(" "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_binary_and_special_bytes_for_bash() {
        assert_eq!(quote(b"a'b\\c\n\xff"), r"$'a\'b\\c\x0a\xff'");
    }
}
