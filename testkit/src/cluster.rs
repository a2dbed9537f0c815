//! [`PrivateCluster`]: a Redis Cluster of a test's own (three primaries, one replica each), for
//! failovers and cut-off replicas in cluster mode.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::inspect::{redis_cli, replication_info};
use crate::names::{free_port, unique};
use crate::nodes::{Nodes, spawn_cluster_node, wait_for_port};

/// A Redis Cluster of one test's own: three primaries, each with one replica, nodes judged
/// failed after 1 s (`cluster-node-timeout 1000`), so killing a primary disturbs no other test
/// and its replica takes over within a few seconds.
pub struct PrivateCluster {
    dir: PathBuf,
    nodes: Nodes,
}

impl PrivateCluster {
    /// Starts six nodes and forms the cluster (`redis-cli --cluster create --cluster-replicas 1`).
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("lb-cluster"));
        std::fs::create_dir_all(&dir).expect("private cluster dir");
        let mut nodes = Nodes::default();
        for _ in 0..6 {
            let port = free_port();
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("node dir");
            nodes.add(port, spawn_cluster_node(port, &node_dir));
        }
        for port in nodes.running() {
            wait_for_port(port);
        }
        let addrs: Vec<String> = nodes.running().iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let c = Self { dir, nodes };
        c.wait_until_ok();
        c
    }

    /// Seed URLs of every node, for `RedisTarget::parse`.
    pub fn url(&self) -> String {
        self.nodes.ports().iter().map(|p| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
    }

    /// Ports of the nodes that are primaries now.
    pub fn primaries(&self) -> Vec<u16> {
        self.nodes
            .running()
            .into_iter()
            .filter(|p| redis_cli(*p, &["ROLE"]).lines().next().is_some_and(|l| l.trim() == "master"))
            .collect()
    }

    /// Kills the node on `port` (SIGKILL).
    pub fn kill_node(&mut self, port: u16) {
        self.nodes.kill(port);
    }

    /// Restarts a killed node with its data and `nodes.conf`; after a failover it rejoins as a
    /// replica of the node that took over from it.
    pub fn restart_node(&mut self, port: u16) {
        let node_dir = self.dir.join(port.to_string());
        self.nodes.restarted(port, spawn_cluster_node(port, &node_dir));
        wait_for_port(port);
    }

    /// The replica of the primary on `primary` (`ROLE`: `slave`, host, the primary's port, ...).
    pub fn replica_of(&self, primary: u16) -> Option<u16> {
        self.nodes.running().into_iter().find(|&p| {
            let role = redis_cli(p, &["ROLE"]);
            let lines: Vec<&str> = role.lines().map(str::trim).collect();
            lines.first() == Some(&"slave") && lines.get(2) == Some(&primary.to_string().as_str())
        })
    }

    /// Cuts the replica on `replica` off from `primary`: it is paused (SIGSTOP) and its
    /// replication link closed, so nothing written to `primary` from now on reaches it until
    /// [`PrivateCluster::resume_node`].
    pub fn cut_off(&self, replica: u16, primary: u16) {
        self.nodes.cut_off(&[replica], primary);
    }

    /// Resumes a paused node (SIGCONT).
    pub fn resume_node(&self, port: u16) {
        self.nodes.signal(port, "-CONT");
    }

    /// The primary that holds `key` (it exists there).
    pub fn owner_of(&self, key: &str) -> Option<u16> {
        self.primaries().into_iter().find(|p| redis_cli(*p, &["EXISTS", key]).trim() == "1")
    }

    /// Waits until the replica of the primary on `primary` is streaming from it and has
    /// acknowledged everything the primary held when this was called: a failover from then on
    /// promotes a replica that lacks only what was written after (what `WAIT` covers). On a
    /// loaded machine a replica can stop streaming for seconds; a primary killed then takes
    /// with it writes no replica has, which is another fault than the one a failover test means.
    pub fn wait_replica_caught_up(&self, primary: u16) {
        let field = |info: &str, name: &str| -> Option<i64> {
            info.lines().find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':')?.parse().ok())
        };
        let target = field(&replication_info(primary), "master_repl_offset").expect("a primary's offset");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let info = replication_info(primary);
            let replica = info.lines().find(|l| l.starts_with("slave0:")).unwrap_or_default();
            let acked = replica
                .split(',')
                .find_map(|kv| kv.strip_prefix("offset="))
                .and_then(|o| o.trim().parse::<i64>().ok())
                .unwrap_or(-1);
            if replica.contains("state=online") && acked >= target {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the replica of {primary} never caught up: {}",
                info.replace("\r\n", " ")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the running nodes report `cluster_state:ok` again after `dead` failed (its
    /// replica promoted: three primaries, none of them `dead`).
    pub fn wait_until_ok_without(&self, dead: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let running = self.nodes.running();
            let ok = running.iter().all(|p| redis_cli(*p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            let primaries = self.primaries();
            if ok && primaries.len() == 3 && !primaries.contains(&dead) {
                return;
            }
            assert!(Instant::now() < deadline, "no replica took over from {dead}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running node reports `cluster_state:ok` and each primary streams to a synced replica.
    pub fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let running = self.nodes.running();
            let ok = running.iter().all(|p| redis_cli(*p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            let synced = self.primaries().iter().all(|p| {
                redis_cli(*p, &["INFO", "replication"]).lines().any(|l| l.starts_with("slave0") && l.contains("online"))
            });
            if ok && synced {
                return;
            }
            if Instant::now() >= deadline {
                let state: Vec<String> = running
                    .iter()
                    .map(|p| {
                        let info = redis_cli(*p, &["CLUSTER", "INFO"]);
                        let state = info.lines().find(|l| l.starts_with("cluster_state")).unwrap_or("no reply");
                        format!("{p} {state} {}", replication_info(*p).replace("\r\n", " "))
                    })
                    .collect();
                panic!("the private cluster never became ok:\n{}", state.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.nodes.kill_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
