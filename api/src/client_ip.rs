//! Who a client is, for the per-client rate limit, behind load balancers.
//!
//! Behind a balancer every connection comes from the balancer, so the peer
//! address alone would make the per-client limit one global limit. The
//! `X-Forwarded-For` header names the client, but anyone can send one, so it
//! is believed only from configured proxies (`--trusted-proxies`, addresses
//! or CIDR blocks): the client is the right-most address of the chain that is
//! not a trusted proxy (each proxy appends the address it received the
//! request from, so entries left of the last untrusted one may be forged).
//! A request whose peer is not a trusted proxy is keyed by its peer address,
//! whatever its headers say.
//!
//! The limiter keeps one small state per client key; [`prune`] drops the
//! states of clients that have been quiet long enough to be back at a full
//! burst, so a stream of new addresses cannot grow it without bound.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;

use crate::conn::Peer;
use axum::http::Request;
use governor::clock::QuantaInstant;
use governor::middleware::NoOpMiddleware;
use ipnet::IpNet;
use tokio_util::sync::CancellationToken;
use tower_governor::GovernorError;
use tower_governor::governor::SharedRateLimiter;
use tower_governor::key_extractor::KeyExtractor;

/// Most addresses read from one `X-Forwarded-For` chain (a longer chain is cut at its right end).
pub const MAX_FORWARDED_HOPS: usize = 16;

/// How often the limiter drops the state of clients back at a full burst.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// The per-client limiter the api runs.
pub type Limiter = SharedRateLimiter<IpAddr, NoOpMiddleware<QuantaInstant>>;

/// Keys requests by client address, believing `X-Forwarded-For` only from trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct ClientIp {
    trusted: Arc<[IpNet]>,
}

impl ClientIp {
    /// A key extractor trusting `proxies`.
    pub fn new(proxies: Vec<IpNet>) -> Self {
        Self { trusted: proxies.into() }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client address of `req`: its peer's ([`Peer`]), or a trusted proxy's `X-Forwarded-For`;
    /// `None` when the server put no peer on it.
    pub fn of<T>(&self, req: &Request<T>) -> Option<IpAddr> {
        Some(self.of_parts(peer_ip(req.extensions())?, req.headers()))
    }

    /// The client address of a request from `peer` with these headers.
    pub fn of_parts(&self, peer: IpAddr, headers: &axum::http::HeaderMap) -> IpAddr {
        let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        self.client(peer, forwarded)
    }

    /// The client address of a request from `peer` carrying these `X-Forwarded-For` values.
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
        let mut client = peer;
        for hop in hops.iter().rev().take(MAX_FORWARDED_HOPS) {
            let Ok(ip) = hop.parse::<IpAddr>() else { break }; // garbage: stop believing the chain
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        self.of(req).ok_or(GovernorError::UnableToExtractKey)
    }
}

/// The address of the connection a request came on ([`Peer`], put there by the server).
fn peer_ip(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions.get::<ConnectInfo<Peer>>().map(|ConnectInfo(Peer(addr))| addr.ip())
}

/// The client a request comes from, as [`ClientIp`] tells ([`crate::state::AppState::clients`]).
/// Requests without a peer (only a router called in-process, without a server) share the
/// unspecified address.
#[derive(Debug, Clone, Copy)]
pub struct Client(pub IpAddr);

impl axum::extract::FromRequestParts<crate::state::AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::state::AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = peer_ip(&parts.extensions).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(Self(state.clients.of_parts(peer, &parts.headers)))
    }
}

/// Parses `--trusted-proxies` entries: addresses (`10.0.0.7`) or CIDR blocks (`10.0.0.0/8`).
///
/// # Errors
/// The entry that is neither.
pub fn parse_proxies(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| {
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("--trusted-proxies: {e:?} is not an IP address or CIDR block"))
        })
        .collect()
}

/// Every [`PRUNE_INTERVAL`] until `shutdown`: forgets clients back at a full
/// burst and reports how many the limiter still holds (`api_rate_limit_clients`).
pub async fn prune(limiter: Limiter, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                let clients = prune_once(&limiter);
                metrics::gauge!("api_rate_limit_clients").set(clients as f64);
            }
        }
    }
}

/// Forgets clients back at a full burst; returns how many are left.
fn prune_once(limiter: &Limiter) -> usize {
    limiter.retain_recent();
    limiter.shrink_to_fit();
    limiter.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let lb = ClientIp::new(parse_proxies(&["10.0.0.0/8".into(), "192.168.1.1".into()]).expect("proxies"));
        let chain = |peer: &str, header: &str| lb.client(ip(peer), std::iter::once(header));
        assert_eq!(chain("203.0.113.9", "198.51.100.1"), ip("203.0.113.9"), "an untrusted peer's header is ignored");
        assert_eq!(chain("10.1.2.3", "198.51.100.1"), ip("198.51.100.1"));
        assert_eq!(
            chain("10.1.2.3", "6.6.6.6, 198.51.100.1, 10.9.9.9"),
            ip("198.51.100.1"),
            "right-most untrusted hop"
        );
        assert_eq!(chain("192.168.1.1", "10.0.0.4"), ip("10.0.0.4"), "all trusted: the left-most hop");
        assert_eq!(chain("10.1.2.3", "not-an-ip"), ip("10.1.2.3"), "garbage: the peer");
        assert_eq!(chain("10.1.2.3", "2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(lb.client(ip("10.1.2.3"), std::iter::empty()), ip("10.1.2.3"));
        assert!(parse_proxies(&["10.0.0.0/33".into()]).is_err() && parse_proxies(&["proxy".into()]).is_err());
        let none = ClientIp::default();
        assert_eq!(none.client(ip("10.1.2.3"), std::iter::once("198.51.100.1")), ip("10.1.2.3"), "no proxy trusted");
    }

    #[test]
    fn quiet_clients_are_forgotten() {
        let config = tower_governor::governor::GovernorConfigBuilder::default()
            .period(Duration::from_millis(1))
            .burst_size(1)
            .key_extractor(ClientIp::default())
            .finish()
            .expect("config");
        let limiter = config.limiter().clone();
        for i in 0..200u8 {
            let _ = limiter.check_key(&IpAddr::from([198, 51, 100, i]));
        }
        assert_eq!(limiter.len(), 200, "one state per client");
        // A bucket of one refills in 1 ms: well before this, every client is back at a full burst.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(prune_once(&limiter), 0, "quiet clients leave no state behind");
    }
}
