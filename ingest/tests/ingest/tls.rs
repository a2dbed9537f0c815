//! Kafka over TLS, and with SASL: the broker (`nisshi`, the one scripts/infra.sh builds) listens
//! only with TLS, with a certificate signed by a CA made for the test, and may require SCRAM
//! authentication. A worker given the CA (and its user) through `--kafka-option` consumes, writes
//! dead letters and commits through it, and ends equal to the oracle; clients without the CA, or
//! with a wrong password, get nothing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use leaderboard_contract::BoardId;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;

use crate::helpers::{
    Topics, Worker, counter, oracle_of, produce_events, produce_raw, random_events, read_dlq_from, redis_url, router,
    unique, wait_for_oracle, worker_args,
};

/// Waits until `worker` received `records` records: the board can equal its
/// oracle before the last records (ones that improve nobody) are consumed.
async fn wait_for_consumed(worker: &Worker, records: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while counter(&worker.get("/metrics").await.1, "ingest_events_consumed_total") < records as f64 {
        assert!(tokio::time::Instant::now() < deadline, "the worker never consumed {records} records");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

use testkit::TestPki as Pki;

/// A TLS-only broker on a free port, stopped when dropped.
struct TlsBroker {
    child: Child,
    addr: String,
}

fn nisshi() -> String {
    std::env::var("LB_NISSHI_BIN")
        .unwrap_or_else(|_| format!("{}/.local/leaderboard-tools/bin/nisshi", std::env::var("HOME").expect("HOME")))
}

/// A broker on `addr` storing in `pki`'s directory; `tls` and `authentication` as its flags.
fn spawn_broker(pki: &Pki, addr: &str, storage: &str, tls: bool, authentication: bool) -> Child {
    let mut broker = Command::new(nisshi());
    broker
        .current_dir(std::path::Path::new(&pki.path("ca.pem")).parent().expect("the pki directory"))
        .args(["broker", "--cluster-id", "tls-test"])
        .args(["--listener-url", &format!("tcp://{addr}"), "--advertised-listener-url", &format!("tcp://{addr}")])
        .args(["--storage-engine", storage, "--group-initial-rebalance-delay", "0s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if tls {
        broker.args(["--cert", &pki.path("cert.pem"), "--key", &pki.path("key.pem")]);
    }
    if authentication {
        broker.arg("--authentication");
    }
    broker.spawn().unwrap_or_else(|e| panic!("cannot start {} ({e}); scripts/infra.sh builds it", nisshi()))
}

impl TlsBroker {
    /// TLS only, any client.
    fn start(pki: &Pki) -> Self {
        let addr = format!("127.0.0.1:{}", testkit::free_port());
        Self { child: spawn_broker(pki, &addr, "memory://tls/", true, false), addr }
    }

    /// TLS only, SCRAM-SHA-512 user `user` required. Users live in `SQLite`; the broker's own
    /// tool creates them over a plain, open listener, so the broker is started once that way first.
    fn start_with_user(pki: &Pki, user: &str, password: &str) -> Self {
        let addr = format!("127.0.0.1:{}", testkit::free_port());
        let storage = "sqlite://broker.db";
        let mut open = spawn_broker(pki, &addr, storage, false, false);
        let mut created = false;
        for _ in 0..50 {
            let status = Command::new(nisshi())
                .args([
                    "user",
                    "create",
                    "--broker",
                    &format!("tcp://{addr}"),
                    "--mechanism",
                    "scram512",
                    user,
                    password,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("nisshi user create");
            if status.success() {
                created = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = open.kill();
        let _ = open.wait();
        assert!(created, "nisshi user create never succeeded");
        Self { child: spawn_broker(pki, &addr, storage, true, true), addr }
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the test's topics through `config` (the broker may still be starting: retried for a while).
async fn create_topics(config: &ClientConfig, topics: &Topics) {
    let admin: AdminClient<DefaultClientContext> = config.create().expect("admin client");
    let new = [
        NewTopic::new(&topics.scores, 3, TopicReplication::Fixed(1)),
        NewTopic::new(&topics.dlq, 1, TopicReplication::Fixed(1)),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let created = admin.create_topics(&new, &AdminOptions::new()).await;
        if created.is_ok_and(|results| results.iter().all(Result::is_ok)) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the broker never took the topics");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A worker's configuration for `broker` with the librdkafka `options`.
fn tls_worker(topics: &Topics, broker: &TlsBroker, options: String) -> ingest::Config {
    let mut args = worker_args(topics, &redis_url(), "single");
    let at = args.iter().position(|a| a == "--brokers").expect("--brokers") + 1;
    args[at].clone_from(&broker.addr);
    args.extend(["--kafka-option".to_string(), options]);
    <ingest::Config as clap::Parser>::try_parse_from(std::iter::once("ingest".to_string()).chain(args)).expect("config")
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
    let topics =
        Topics { scores: unique("scores"), dlq: unique("dlq"), group: unique("group"), results: unique("results") };
    create_topics(&tls_config(&broker, &pki), &topics).await;
    let producer: FutureProducer = tls_config(&broker, &pki).set("acks", "all").create().expect("producer");
    let board = BoardId::new(unique("tls")).expect("board");
    let events = random_events(9, &board, 200, 2000);
    produce_events(&producer, &topics.scores, &events).await;
    produce_raw(&producer, &topics.scores, &[(None, Some(b"not json".to_vec()))]).await;

    let options = format!("security.protocol=SSL,ssl.ca.location={}", pki.path("ca.pem"));
    let config = tls_worker(&topics, &broker, options);
    let worker = Worker::start(config);
    wait_for_oracle(&router(&redis_url(), "single").await, &oracle_of(&events), &board, Duration::from_secs(60)).await;
    let dead = read_dlq_from(tls_config(&broker, &pki), &topics.dlq, 1).await;
    assert_eq!(dead[0].header("error.code"), "not_json");
    wait_for_consumed(&worker, events.len() + 1).await;
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

#[tokio::test]
async fn a_worker_authenticates_with_scram_over_tls() {
    let pki = Pki::new();
    // The canary password scripts/secrets-check.sh looks for in every log of the suite.
    let password = "canary-password-6c1f9d".to_string();
    let broker = TlsBroker::start_with_user(&pki, "lb-ingest", &password);
    let sasl = |config: &mut ClientConfig, password: &str| {
        config
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", "SCRAM-SHA-512")
            .set("sasl.username", "lb-ingest")
            .set("sasl.password", password);
    };
    let mut admin_config = tls_config(&broker, &pki);
    sasl(&mut admin_config, &password);
    let topics =
        Topics { scores: unique("scores"), dlq: unique("dlq"), group: unique("group"), results: unique("results") };
    create_topics(&admin_config, &topics).await;
    let mut producer_config = tls_config(&broker, &pki);
    sasl(&mut producer_config, &password);
    let producer: FutureProducer = producer_config.set("acks", "all").create().expect("producer");
    let board = BoardId::new(unique("scram")).expect("board");
    let events = random_events(10, &board, 100, 1000);
    produce_events(&producer, &topics.scores, &events).await;

    let options = format!(
        "security.protocol=SASL_SSL,sasl.mechanisms=SCRAM-SHA-512,sasl.username=lb-ingest,sasl.password={password},ssl.ca.location={}",
        pki.path("ca.pem")
    );
    let worker = Worker::start(tls_worker(&topics, &broker, options));
    wait_for_oracle(&router(&redis_url(), "single").await, &oracle_of(&events), &board, Duration::from_secs(60)).await;
    wait_for_consumed(&worker, events.len()).await;
    let report = worker.stop().await;
    assert_eq!(report.consumed, events.len() as u64, "{report:?}");

    let mut wrong = tls_config(&broker, &pki);
    sasl(&mut wrong, "not-the-password");
    let intruder: AdminClient<DefaultClientContext> = wrong.create().expect("admin client");
    let refused = intruder
        .create_topics(
            &[NewTopic::new(&unique("x"), 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(3))),
        )
        .await;
    assert!(refused.is_err() || refused.is_ok_and(|r| r.iter().any(Result::is_err)), "a wrong password got through");
}
