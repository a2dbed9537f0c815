//! Helpers shared by the integration tests of every crate.
//!
//! Tests talk to the real servers that `scripts/infra.sh up` starts; their
//! addresses come from the environment that script writes, with the script's
//! defaults as fallback. Every test uses names of its own ([`unique`]) so tests
//! run in parallel against the same servers.

// Test helpers fail the test by panicking, with a message saying what is missing.
#![allow(clippy::missing_panics_doc)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The single Redis (`LB_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("LB_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6390".into())
}

/// The single Redis as one of the service's least-privilege users (`api`, `ingest`,
/// `admin`: `LB_REDIS_<ROLE>_URL`, written by `scripts/infra.sh up` with the users' passwords).
///
/// # Panics
/// When the variable is missing: the test needs `scripts/infra.sh up` and `source target/infra/env`.
pub fn redis_user_url(role: &str) -> String {
    let var = format!("LB_REDIS_{}_URL", role.to_uppercase());
    std::env::var(&var)
        .unwrap_or_else(|_| panic!("{var} is not set: run scripts/infra.sh up and source target/infra/env"))
}

/// The Redis Cluster seed nodes (`LB_REDIS_CLUSTER_URLS`).
pub fn cluster_urls() -> String {
    std::env::var("LB_REDIS_CLUSTER_URLS")
        .unwrap_or_else(|_| "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103".into())
}

/// The Sentinel-managed primary of `scripts/infra.sh` (`LB_REDIS_SENTINEL_URL`).
pub fn sentinel_url() -> String {
    std::env::var("LB_REDIS_SENTINEL_URL")
        .unwrap_or_else(|_| "redis+sentinel://127.0.0.1:26391,127.0.0.1:26392,127.0.0.1:26393/lb".into())
}

/// The Kafka-protocol broker (`LB_KAFKA_BROKERS`).
pub fn brokers() -> String {
    std::env::var("LB_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// `prefix` plus 64 random bits: a topic, group, board or key no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

/// A Redis server of one test's own, so stopping it disturbs no other test.
/// Every acknowledged write survives a kill (`appendfsync always`).
pub struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server on a free port with its own data directory.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("lb-redis"));
        std::fs::create_dir_all(&dir).expect("private redis data dir");
        let mut r = Self { port: free_port(), dir, child: None };
        r.restart();
        r
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and data directory.
    pub fn restart(&mut self) {
        self.child = Some(spawn_node(self.port, &self.dir, &[]));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "private redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A copy of the server's persisted state now: every write it acknowledged
    /// (`appendfsync always`), taken while writes wait (`CLIENT PAUSE WRITE`),
    /// so the copy is one moment's state. [`PrivateRedis::roll_back_to`] restarts from it.
    pub fn checkpoint(&self) -> Checkpoint {
        let copy = std::env::temp_dir().join(unique("lb-redis-checkpoint"));
        let paused = redis_cli(self.port, &["CLIENT", "PAUSE", "30000", "WRITE"]);
        assert_eq!(paused.trim(), "OK", "CLIENT PAUSE: {paused}");
        let copied = Command::new("cp").arg("-a").arg(&self.dir).arg(&copy).status();
        let unpaused = redis_cli(self.port, &["CLIENT", "UNPAUSE"]);
        assert!(copied.is_ok_and(|s| s.success()), "copying {}", self.dir.display());
        assert_eq!(unpaused.trim(), "OK", "CLIENT UNPAUSE: {unpaused}");
        Checkpoint { dir: copy }
    }

    /// Kills the server (SIGKILL) and restarts it from `checkpoint`'s files:
    /// a Redis that comes back from an older state (an RDB-only node, an
    /// `everysec` AOF that missed its last second, a restored VM).
    pub fn roll_back_to(&mut self, checkpoint: &Checkpoint) {
        self.kill();
        std::fs::remove_dir_all(&self.dir).expect("removing the data dir");
        let copied = Command::new("cp").arg("-a").arg(&checkpoint.dir).arg(&self.dir).status();
        assert!(copied.is_ok_and(|s| s.success()), "restoring {}", checkpoint.dir.display());
        self.restart();
    }

    /// The server's process id, while it runs (to pause it with SIGSTOP).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL): an outage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A [`PrivateRedis`]'s persisted state at one moment; deleted when dropped.
pub struct Checkpoint {
    dir: PathBuf,
}

impl Drop for Checkpoint {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A primary with two replicas and three Sentinels of one test's own (the
/// Sentinel mode of the same `redis-server`), so killing the primary disturbs
/// no other test. Sentinels judge a node down after 1 s, so a failover takes a
/// few seconds. Nodes persist every write (`appendfsync always`).
pub struct PrivateSentinel {
    /// The service name the Sentinels monitor.
    pub service: String,
    dir: PathBuf,
    nodes: Nodes,
    sentinels: Vec<(u16, Child)>,
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
            nodes.0.push((port, Some(spawn_node(port, &node_dir, replica_of))));
            wait_for_port(port);
        }
        let mut sentinels = Vec::new();
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
            sentinels.push((port, child));
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
        let hosts: Vec<String> = self.sentinels.iter().map(|(p, _)| format!("127.0.0.1:{p}")).collect();
        format!("redis+sentinel://{}/{}", hosts.join(","), self.service)
    }

    /// The port of the node the Sentinels call primary now.
    pub fn primary_port(&self) -> u16 {
        let (port, _) = &self.sentinels[0];
        let out = redis_cli(*port, &["SENTINEL", "get-master-addr-by-name", &self.service]);
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
        let slot = self.nodes.0.iter_mut().find(|(p, _)| *p == port).expect("a node of this deployment");
        slot.1 = Some(spawn_node(port, &node_dir, &["--replicaof", "127.0.0.1", &primary.to_string()]));
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

    /// What the first Sentinel knows of the replicas, for a test's failure message.
    pub fn sentinel_view(&self) -> String {
        let (port, _) = &self.sentinels[0];
        redis_cli(*port, &["SENTINEL", "replicas", &self.service])
    }

    /// Waits until every Sentinel reports `count` replicas (up or down, as Sentinel lists them).
    fn wait_until_sentinels_see_replicas(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for (port, _) in &self.sentinels {
            loop {
                let out = redis_cli(*port, &["SENTINEL", "replicas", &self.service]);
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
        for (_, child) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.nodes.kill_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Data nodes of a private deployment by port; `None` once killed.
#[derive(Default)]
struct Nodes(Vec<(u16, Option<Child>)>);

impl Nodes {
    fn running(&self) -> Vec<u16> {
        self.0.iter().filter(|(_, c)| c.is_some()).map(|(p, _)| *p).collect()
    }

    /// Kills the node on `port` (SIGKILL).
    fn kill(&mut self, port: u16) {
        if let Some((_, child)) = self.0.iter_mut().find(|(p, _)| *p == port)
            && let Some(mut c) = child.take()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn kill_all(&mut self) {
        for port in self.running() {
            self.kill(port);
        }
    }

    /// Sends `sig` (`-STOP`, `-CONT`) to the running node on `port`.
    fn signal(&self, port: u16, sig: &str) {
        let pid = self
            .0
            .iter()
            .find(|(p, _)| *p == port)
            .and_then(|(_, c)| c.as_ref())
            .map(Child::id)
            .expect("a running node of this deployment");
        let status = Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
        assert!(status.success(), "kill {sig} {pid}");
    }

    /// Pauses every replica of `primary` (SIGSTOP) and closes their replication links, so
    /// nothing written to `primary` from now on reaches them, not even into a socket buffer,
    /// until they are resumed.
    fn cut_off(&self, replicas: &[u16], primary: u16) {
        for &port in replicas {
            self.signal(port, "-STOP");
        }
        let killed = redis_cli(primary, &["CLIENT", "KILL", "TYPE", "replica"]);
        assert_eq!(killed.trim(), replicas.len().to_string(), "the replication links of {primary}");
    }
}

/// Starts a `redis-server` on `port` with its data in `dir`, persisting every write, plus `extra` arguments.
fn spawn_node(port: u16, dir: &std::path::Path, extra: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (scripts/infra.sh installs it)")
}

/// Starts a node of a [`PrivateCluster`] on `port`, its data in `dir`.
fn spawn_cluster_node(port: u16, dir: &std::path::Path) -> Child {
    let cluster = ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"];
    spawn_node(port, dir, &[&cluster[..], &["--cluster-replica-validity-factor", "0"]].concat())
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `redis-cli -p port args...` and returns its output.
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

/// The ports of `urls` (comma-separated `redis://host:port` URLs, as in `LB_REDIS_CLUSTER_URLS`).
pub fn ports_of(urls: &str) -> Vec<u16> {
    urls.split(',').filter_map(|u| u.trim().rsplit(':').next()?.trim_end_matches('/').parse().ok()).collect()
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli on PATH (scripts/infra.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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
            nodes.0.push((port, Some(spawn_cluster_node(port, &node_dir))));
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
        self.nodes.0.iter().map(|(p, _)| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(",")
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
        let slot = self.nodes.0.iter_mut().find(|(p, _)| *p == port).expect("a node of this cluster");
        slot.1 = Some(spawn_cluster_node(port, &node_dir));
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

/// A certificate authority made for one test, and a certificate for `127.0.0.1` it signed, as PEM
/// files (`ca.pem`, `cert.pem`, `key.pem`) in a fresh directory removed when dropped: for the
/// servers a test runs with TLS (Redis, the broker, the api) and the clients that trust the CA.
pub struct TestPki {
    dir: std::path::PathBuf,
    ca_pem: String,
}

impl TestPki {
    /// Makes the CA and the certificate.
    ///
    /// # Panics
    /// When the keys or the files cannot be made.
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("pki"));
        std::fs::create_dir_all(&dir).expect("pki dir");
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "leaderboard test CA");
        let ca = ca.self_signed(&ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        let leaf = leaf.signed_by(&key, &ca, &ca_key).expect("leaf");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("ca.pem");
        std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("cert.pem");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key.pem");
        Self { dir, ca_pem: ca.pem() }
    }

    /// The path of `ca.pem`, `cert.pem` or `key.pem`.
    ///
    /// # Panics
    /// When the temporary directory's path is not UTF-8.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("utf-8 path").to_string()
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
