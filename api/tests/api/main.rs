//! Integration tests of the api on port 0 against real Redis servers.

mod acl;
mod admin;
mod bounds;
mod browser;
mod faults;
mod helpers;
mod lookup;
mod loss;
mod openapi;
mod players;
mod probes;
mod routes;
mod seasons;
mod secrets;
mod tls;
mod watch;
