//! Where the shared servers of `scripts/infra.sh up` are: the environment that script
//! writes (`target/infra/env`), with the script's defaults as fallback.

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

/// The ports of `urls` (comma-separated `redis://host:port` URLs, as in `LB_REDIS_CLUSTER_URLS`).
pub fn ports_of(urls: &str) -> Vec<u16> {
    urls.split(',').filter_map(|u| u.trim().rsplit(':').next()?.trim_end_matches('/').parse().ok()).collect()
}
