//! What a Redis node says of itself, through `redis-cli` (on `PATH`: `scripts/infra.sh` installs
//! it): command counts, keys, role. For assertions and failure messages.

use std::process::Command;

/// How many times the Redis node on `port` ran `command` (lowercase, as `INFO commandstats` names it).
pub fn command_calls(port: u16, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:calls=");
    redis_cli(port, &["INFO", "commandstats"])
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).and_then(|rest| rest.split(',').next()).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The keys matching `pattern` on the Redis node on `port` (`SCAN`), e.g. to see which copies of
/// a per-primary key a node holds.
pub fn keys_matching(port: u16, pattern: &str) -> Vec<String> {
    redis_cli(port, &["--scan", "--pattern", pattern]).lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
}

/// Whether the Redis node on `port` is a replica now.
pub fn is_replica(port: u16) -> bool {
    replication_info(port).lines().any(|l| l.trim() == "role:slave")
}

/// `INFO replication` of the Redis node on `port`, for a test's failure message.
pub fn replication_info(port: u16) -> String {
    redis_cli(port, &["INFO", "replication"])
}

/// Runs `redis-cli -p port args...` and returns its output.
pub(crate) fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli on PATH (scripts/infra.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
