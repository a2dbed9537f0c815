//! Integration tests of the store against a real Redis and a real
//! 3-node Redis Cluster (started by `scripts/infra.sh up`).

mod bounds;
mod equivalence;
mod helpers;
mod lookup;
mod manual;
mod migrate;
mod operators;
mod players;
mod rebalance;
mod records;
mod replicas;
mod rules;
mod seasons;
mod snapshot;
mod tls;
