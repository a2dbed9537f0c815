//! Kafka over TLS: the broker (`nisshi`, the one scripts/infra.sh builds) listens only with TLS,
//! with a certificate signed by a CA made for the test; a worker given the CA through
//! `--kafka-option security.protocol=SSL,ssl.ca.location=...` consumes, writes dead letters and
//! commits through it, and ends equal to the oracle.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use leaderboard_contract::BoardId;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;

use crate::helpers::{
    Topics, Worker, oracle_of, produce_events, produce_raw, random_events, read_dlq_from, redis_url, router, unique,
    wait_for_oracle, worker_args,
};

/// A CA, and a certificate for 127.0.0.1 it signed, as PEM files in a fresh directory.
struct Pki {
    dir: std::path::PathBuf,
}

impl Pki {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("kafka-tls"));
        std::fs::create_dir_all(&dir).expect("dir");
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
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("utf-8 path").to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS-only broker on a free port, stopped when dropped.
struct TlsBroker {
    child: Child,
    addr: String,
}

impl TlsBroker {
    fn start(pki: &Pki) -> Self {
        let port = testkit::free_port();
        let addr = format!("127.0.0.1:{port}");
        let bin = std::env::var("LB_NISSHI_BIN").unwrap_or_else(|_| {
            format!("{}/.local/leaderboard-tools/bin/nisshi", std::env::var("HOME").expect("HOME"))
        });
        let child = Command::new(&bin)
            .args(["broker", "--cluster-id", &unique("tls")])
            .args(["--listener-url", &format!("tcp://{addr}"), "--advertised-listener-url", &format!("tcp://{addr}")])
            .args(["--storage-engine", "memory://tls/", "--group-initial-rebalance-delay", "0s"])
            .args(["--cert", &pki.path("cert.pem"), "--key", &pki.path("key.pem")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} ({e}); scripts/infra.sh builds it"));
        Self { child, addr }
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_config(broker: &TlsBroker, pki: &Pki) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.addr)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", pki.path("ca.pem"));
    config
}

#[tokio::test]
async fn a_worker_consumes_and_dead_letters_through_a_tls_only_broker() {
    let pki = Pki::new();
    let broker = TlsBroker::start(&pki);
    let topics = Topics { scores: unique("scores"), dlq: unique("dlq"), group: unique("group") };
    let admin: AdminClient<DefaultClientContext> = tls_config(&broker, &pki).create().expect("admin client");
    let new = [
        NewTopic::new(&topics.scores, 3, TopicReplication::Fixed(1)),
        NewTopic::new(&topics.dlq, 1, TopicReplication::Fixed(1)),
    ];
    // The broker may still be starting: retry for a while.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let created = admin.create_topics(&new, &AdminOptions::new()).await;
        if created.is_ok_and(|results| results.iter().all(Result::is_ok)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the TLS broker never took the topics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let producer: FutureProducer = tls_config(&broker, &pki).set("acks", "all").create().expect("producer");
    let board = BoardId::new(unique("tls")).expect("board");
    let events = random_events(9, &board, 200, 2000);
    produce_events(&producer, &topics.scores, &events).await;
    produce_raw(&producer, &topics.scores, &[(None, Some(b"not json".to_vec()))]).await;

    let options = format!("security.protocol=SSL,ssl.ca.location={}", pki.path("ca.pem"));
    let mut args = worker_args(&topics, &redis_url(), "single");
    let at = args.iter().position(|a| a == "--brokers").expect("--brokers") + 1;
    args[at].clone_from(&broker.addr);
    args.extend(["--kafka-option".to_string(), options]);
    let config = <ingest::Config as clap::Parser>::try_parse_from(std::iter::once("ingest".to_string()).chain(args))
        .expect("config");
    let worker = Worker::start(config);
    wait_for_oracle(&router(&redis_url(), "single").await, &oracle_of(&events), &board, Duration::from_secs(60)).await;
    let dead = read_dlq_from(tls_config(&broker, &pki), &topics.dlq, 1).await;
    assert_eq!(dead[0].header("error.code"), "not_json");
    let report = worker.stop().await;
    assert_eq!((report.consumed, report.dead_lettered), (events.len() as u64 + 1, 1), "{report:?}");

    // Without the CA, the broker's certificate is not trusted: nothing gets through.
    let untrusting: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("security.protocol", "SSL")
        .create()
        .expect("admin client");
    let refused = untrusting
        .create_topics(
            &[NewTopic::new(&unique("x"), 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(3))),
        )
        .await;
    assert!(
        refused.is_err() || refused.is_ok_and(|r| r.iter().any(Result::is_err)),
        "an untrusted certificate was accepted"
    );
}
