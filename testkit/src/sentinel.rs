//! [`PrivateSentinel`]: a primary, two replicas and three Sentinels of a test's own, for
//! failovers, paused replicas and cut replication links.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::inspect::redis_cli;
use crate::names::{free_port, unique};
use crate::nodes::{Nodes, spawn_node, wait_for_port};

/// A primary with two replicas and three Sentinels of one test's own (the
/// Sentinel mode of the same `redis-server`), so killing the primary disturbs
/// no other test. Sentinels judge a node down after 1 s, so a failover takes a
/// few seconds. Nodes persist every write (`appendfsync always`).
pub struct PrivateSentinel {
    /// The service name the Sentinels monitor.
    pub service: String,
    dir: PathBuf,
    nodes: Nodes,
    sentinels: Nodes,
}

impl PrivateSentinel {
    /// Starts the primary, its replicas and the Sentinels, and waits until
    /// every Sentinel sees both replicas.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("lb-sentinel"));
        std::fs::create_dir_all(&dir).expect("private sentinel dir");
        let service = unique("lb");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Nodes::default();
        for (i, &port) in ports.iter().enumerate() {
            let node_dir = dir.join(format!("node-{port}"));
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let primary = ports[0].to_string();
            let replica_of: &[&str] = if i > 0 { &["--replicaof", "127.0.0.1", &primary] } else { &[] };
            nodes.add(port, spawn_node(port, &node_dir, replica_of));
            wait_for_port(port);
        }
        let mut sentinels = Nodes::default();
        for _ in 0..3 {
            let port = free_port();
            let conf = dir.join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nsentinel monitor {service} 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds {service} 1000\nsentinel failover-timeout {service} 10000\n\
                     sentinel parallel-syncs {service} 1\n",
                    ports[0]
                ),
            )
            .expect("sentinel config");
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server --sentinel");
            wait_for_port(port);
            sentinels.add(port, child);
        }
        let s = Self { service, dir, nodes, sentinels };
        s.wait_until_sentinels_see_replicas(2);
        s.wait_until_replicas_online(ports[0], 2);
        s
    }

    /// Waits until the primary on `port` streams to `count` replicas (state `online`: synced).
    pub fn wait_until_replicas_online(&self, port: u16, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = redis_cli(port, &["INFO", "replication"]);
            if info.lines().filter(|l| l.starts_with("slave") && l.contains("state=online")).count() >= count {
                return;
            }
            assert!(Instant::now() < deadline, "the primary never had {count} replicas online: {info}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The target URL: `redis+sentinel://<sentinels>/<service>`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.sentinels.ports().iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!("redis+sentinel://{}/{}", hosts.join(","), self.service)
    }

    /// The port of the node the Sentinels call primary now.
    pub fn primary_port(&self) -> u16 {
        let out = redis_cli(self.first_sentinel(), &["SENTINEL", "get-master-addr-by-name", &self.service]);
        out.lines().nth(1).and_then(|p| p.trim().parse().ok()).expect("sentinel knows the primary")
    }

    /// The ports of the data nodes still running.
    pub fn node_ports(&self) -> Vec<u16> {
        self.nodes.running()
    }

    /// Kills the data node on `port` (SIGKILL).
    pub fn kill_node(&mut self, port: u16) {
        self.nodes.kill(port);
    }

    /// Restarts a killed data node; it rejoins as a replica of the current primary.
    pub fn restart_node(&mut self, port: u16) {
        let primary = self.primary_port();
        let node_dir = self.dir.join(format!("node-{port}"));
        self.nodes.restarted(port, spawn_node(port, &node_dir, &["--replicaof", "127.0.0.1", &primary.to_string()]));
        wait_for_port(port);
    }

    /// Cuts every replica off from the primary: each is paused (SIGSTOP) and its replication
    /// link closed, so the primary has no replica connected and writes reach only it, until
    /// [`PrivateSentinel::resume_replicas`].
    pub fn cut_off_replicas(&self) {
        let primary = self.primary_port();
        let replicas: Vec<u16> = self.node_ports().into_iter().filter(|&p| p != primary).collect();
        self.nodes.cut_off(&replicas, primary);
    }

    /// Pauses the data node on `port` (SIGSTOP); its connections stay open.
    pub fn pause_node(&self, port: u16) {
        self.nodes.signal(port, "-STOP");
    }

    /// Resumes a paused data node (SIGCONT).
    pub fn resume_node(&self, port: u16) {
        self.nodes.signal(port, "-CONT");
    }

    /// Resumes every paused replica (SIGCONT); they reconnect to the primary by themselves.
    pub fn resume_replicas(&self) {
        let primary = self.primary_port();
        for port in self.node_ports().into_iter().filter(|&p| p != primary) {
            self.nodes.signal(port, "-CONT");
        }
    }

    /// The port of the first Sentinel started.
    fn first_sentinel(&self) -> u16 {
        self.sentinels.ports()[0]
    }

    /// What the first Sentinel knows of the replicas, for a test's failure message.
    pub fn sentinel_view(&self) -> String {
        redis_cli(self.first_sentinel(), &["SENTINEL", "replicas", &self.service])
    }

    /// Waits until every Sentinel reports `count` replicas (up or down, as Sentinel lists them).
    fn wait_until_sentinels_see_replicas(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in self.sentinels.ports() {
            loop {
                let out = redis_cli(port, &["SENTINEL", "replicas", &self.service]);
                if out.lines().filter(|l| l.trim() == "name").count() >= count {
                    break;
                }
                assert!(Instant::now() < deadline, "sentinel {port} never saw {count} replicas: {out}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for PrivateSentinel {
    fn drop(&mut self) {
        self.sentinels.kill_all();
        self.nodes.kill_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
