//! Integration tests of ingest against the real broker and Redis
//! (started by `scripts/infra.sh up`).

mod acl;
mod as_of;
mod failover;
mod faults;
mod helpers;
mod hostile;
mod kafka;
mod manual;
mod operators;
mod pipeline;
mod players;
mod rebalance;
mod replica_reads;
mod results;
mod rules;
mod seasons;
mod signed;
mod tls;
