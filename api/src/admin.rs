//! Who may administer: bearer tokens, scopes, and the audit log. The admin
//! routes themselves are in [`crate::routes::admin`].
//!
//! Tokens are configured as SHA-256 hashes with a name and scopes
//! (`--admin-tokens name:hex:scope+scope`), never in clear. A request's token is
//! hashed and compared with every configured hash in constant time (no early
//! exit, so timing tells nothing about which hash is close). No or an unknown
//! token: 401 with `WWW-Authenticate: Bearer`; a token without the `admin`
//! scope: 403. Every admin request is written to the audit log
//! ([`leaderboard_store::marker::audit`]) with the token's name, never the token; requests
//! refused for their credentials go to the log of refusals instead, at most
//! [`REFUSALS_RECORDED_PER_SECOND`] a second per process (the rest are only
//! counted, `api_admin_refusals_total{recorded="false"}`), so anonymous
//! requests can neither push real entries out nor grow the log's work without bound.
//!
//! Admin writes go to the primary through their own connection: the read path
//! may be reading from replicas.
//!
//! A change (erase, ban, lift a ban, delete a board, set rules) runs in a task
//! of its own ([`Admin::detach`]): it finishes, writes the players log, drops
//! the caches and is audited even when its request times out
//! (`--admin-timeout`) or its client goes away. At most
//! [`OPERATIONS_AT_ONCE`] run at once; beyond, a change is refused with 503
//! `overloaded` (audited), and shutdown waits for the ones running.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use leaderboard_store::Store;
use leaderboard_store::marker::audit::{self, AuditEntry};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::error::ApiError;

/// The scope the admin routes need.
pub const ADMIN_SCOPE: &str = "admin";

/// Most refused admin requests a process writes to the log of refusals (and
/// logs) per second; a burst of as many is allowed.
pub const REFUSALS_RECORDED_PER_SECOND: u32 = 10;

/// Most admin changes running at once: each may walk every board of the store.
pub const OPERATIONS_AT_ONCE: usize = 4;

/// The limiter of recorded refusals.
type RefusalLimiter = governor::DefaultDirectRateLimiter;

/// One configured token.
#[derive(Clone)]
pub struct Token {
    name: String,
    digest: [u8; 32],
    scopes: Vec<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("name", &self.name).field("scopes", &self.scopes).finish_non_exhaustive()
    }
}

impl Token {
    /// Parses `name:sha256-hex:scope+scope`.
    ///
    /// # Errors
    /// A message naming what is wrong (never echoing the hash).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.splitn(3, ':');
        let (Some(name), Some(hash), Some(scopes)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("an admin token is name:sha256-hex:scopes".into());
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(format!("admin token name {name:?} must be [A-Za-z0-9_.-]+"));
        }
        let digest: [u8; 32] = hex::decode(hash)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| format!("admin token {name}: the hash must be 64 hex digits (SHA-256)"))?;
        let scopes: Vec<String> = scopes.split('+').filter(|s| !s.is_empty()).map(String::from).collect();
        if scopes.is_empty() {
            return Err(format!("admin token {name}: no scope"));
        }
        Ok(Self { name: name.to_string(), digest, scopes })
    }
}

/// The admin side of the api: tokens and a connection to the primary.
pub struct Admin {
    tokens: Vec<Token>,
    store: Store,
    refusals: RefusalLimiter,
    /// Where erasures and bans are kept outside Redis; `None`: Redis only.
    #[cfg(feature = "players-log")]
    players_log: Option<leaderboard_players_log::publish::Publisher>,
    /// Permits of the changes running ([`OPERATIONS_AT_ONCE`]).
    operations: Arc<Semaphore>,
    /// The changes running, waited for at shutdown.
    tasks: TaskTracker,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("tokens", &self.tokens).finish_non_exhaustive()
    }
}

impl Admin {
    /// Admin routes over `store` (a primary connection) accepting `tokens`.
    pub fn new(tokens: Vec<Token>, store: Store) -> Self {
        let per_second = std::num::NonZeroU32::new(REFUSALS_RECORDED_PER_SECOND).unwrap_or(std::num::NonZeroU32::MIN);
        Self {
            tokens,
            store,
            refusals: governor::RateLimiter::direct(governor::Quota::per_second(per_second)),
            #[cfg(feature = "players-log")]
            players_log: None,
            operations: Arc::new(Semaphore::new(OPERATIONS_AT_ONCE)),
            tasks: TaskTracker::new(),
        }
    }

    /// Starts `change` (which audits itself) in a task of its own at once, and returns a future
    /// of its result: the change finishes even when that future is dropped (the request timed
    /// out, the client went away). With [`OPERATIONS_AT_ONCE`] changes running, `change` is
    /// dropped unstarted, and the future answers 503 `overloaded`, audited for `who` as `action`
    /// on `target`.
    ///
    /// # Errors
    /// What `change` returns; [`ApiError::Overloaded`] when too many run; [`ApiError::Internal`]
    /// when it panicked.
    pub fn detach<'a, T, F>(
        &'a self,
        who: &str,
        action: &'static str,
        target: &str,
        change: F,
    ) -> impl Future<Output = Result<T, ApiError>> + Send + 'a
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        let started = match self.operations.clone().try_acquire_owned() {
            Ok(permit) => {
                #[cfg(feature = "testing")]
                let held = (action, target.to_string());
                Ok(self.tasks.spawn(async move {
                    let _permit = permit;
                    #[cfg(feature = "testing")]
                    crate::testing::admin_change(held.0, &held.1).await;
                    change.await
                }))
            }
            Err(_) => Err((who.to_string(), target.to_string())),
        };
        async move {
            match started {
                Ok(task) => task.await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, action, "an admin change panicked");
                    Err(ApiError::Internal)
                }),
                Err((who, target)) => {
                    metrics::counter!("api_admin_busy_total").increment(1);
                    self.audit(&who, action, &target, &status_code(&ApiError::Overloaded)).await;
                    Err(ApiError::Overloaded)
                }
            }
        }
    }

    /// Waits up to `grace` for the changes running to finish (at shutdown); new ones may still
    /// start meanwhile, from requests in flight.
    pub async fn drain(&self, grace: Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_err() {
            tracing::error!(
                running = self.tasks.len(),
                "admin changes still running after the grace period are cut short: check them (GET /v1/admin/players/...)"
            );
        }
    }

    /// Keeps every erasure and ban in the players log as well.
    #[cfg(feature = "players-log")]
    #[must_use]
    pub fn with_players_log(mut self, publisher: leaderboard_players_log::publish::Publisher) -> Self {
        self.players_log = Some(publisher);
        self
    }

    /// Writes `player`'s marks to the players log, if this api keeps one.
    ///
    /// # Errors
    /// [`crate::error::ApiError::NotKept`] when the log did not take them (the cause is logged).
    #[cfg(feature = "players-log")]
    pub async fn keep(&self, player: &leaderboard_contract::PlayerId) -> Result<(), crate::error::ApiError> {
        let Some(publisher) = &self.players_log else { return Ok(()) };
        publisher.publish(&self.store, player).await.map_err(|e| {
            tracing::error!(error = %e, "the players log did not keep a change");
            crate::error::ApiError::NotKept
        })
    }

    /// Without the `players-log` feature there is no log to write (`--brokers` is refused at start).
    ///
    /// # Errors
    /// Never.
    #[cfg(not(feature = "players-log"))]
    #[allow(clippy::unused_async)]
    pub async fn keep(&self, _player: &leaderboard_contract::PlayerId) -> Result<(), crate::error::ApiError> {
        Ok(())
    }

    /// Writes the `manual` board `board`'s resets to the players log, if this
    /// api keeps one (a tombstone once the board has none: it was deleted).
    ///
    /// # Errors
    /// [`crate::error::ApiError::NotKept`] when the log did not take them (the cause is logged).
    #[cfg(feature = "players-log")]
    pub async fn keep_resets(&self, board: &leaderboard_contract::BoardId) -> Result<(), crate::error::ApiError> {
        let Some(publisher) = &self.players_log else { return Ok(()) };
        publisher.publish_resets(&self.store, board).await.map_err(|e| {
            tracing::error!(error = %e, "the players log did not keep a board's resets");
            crate::error::ApiError::NotKept
        })
    }

    /// Without the `players-log` feature there is no log to write.
    ///
    /// # Errors
    /// Never.
    #[cfg(not(feature = "players-log"))]
    #[allow(clippy::unused_async)]
    pub async fn keep_resets(&self, _board: &leaderboard_contract::BoardId) -> Result<(), crate::error::ApiError> {
        Ok(())
    }

    /// The name of the token presented, if it is one of ours (constant time over all of them).
    fn identify(&self, headers: &HeaderMap) -> Option<&Token> {
        let presented = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for token in &self.tokens {
            if bool::from(token.digest.ct_eq(&digest)) {
                found = Some(token);
            }
        }
        found
    }

    /// The primary connection admin writes go through.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Checks the request's token for the admin scope, auditing a refusal;
    /// the token's name on success (what the audit log records).
    ///
    /// # Errors
    /// 401 without a known token, 403 without the admin scope.
    pub async fn authorize(&self, headers: &HeaderMap, action: &str, target: &str) -> Result<String, ApiError> {
        let refused = match self.identify(headers) {
            None => ("anonymous".to_string(), ApiError::Unauthorized),
            Some(t) if !t.scopes.iter().any(|s| s == ADMIN_SCOPE) => {
                (t.name.clone(), ApiError::Forbidden { scope: ADMIN_SCOPE })
            }
            Some(t) => return Ok(t.name.clone()),
        };
        let (who, error) = refused;
        let recorded = self.refusals.check().is_ok();
        metrics::counter!("api_admin_refusals_total", "recorded" => if recorded { "true" } else { "false" })
            .increment(1);
        if recorded {
            let entry = AuditEntry { who, action: action.into(), target: target.into(), result: status_code(&error) };
            tracing::info!(target: "audit", who = entry.who, action, target, result = entry.result, "admin request refused");
            if let Err(e) = audit::record_in(&self.store, audit::Log::Refused, &entry).await {
                tracing::error!(error = %e, action, "could not write the log of refusals");
            }
        }
        Err(error)
    }

    /// Writes one audit entry; a failure to write is logged (the action's own result stands).
    pub async fn audit(&self, who: &str, action: &str, target: &str, result: &str) {
        let entry = AuditEntry { who: who.into(), action: action.into(), target: target.into(), result: result.into() };
        tracing::info!(target: "audit", who, action, target, result, "admin action");
        if let Err(e) = audit::record(&self.store, &entry).await {
            tracing::error!(error = %e, action, "could not write the audit log");
        }
    }
}

/// How the audit log records a failed request: its HTTP status code.
pub fn status_code(e: &ApiError) -> String {
    e.status().as_u16().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_specs_parse_and_errors_never_echo_the_hash() {
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let token = Token::parse(&format!("ops:{hash}:admin+metrics")).expect("valid");
        assert_eq!(
            (token.name.as_str(), token.scopes.as_slice()),
            ("ops", &["admin".to_string(), "metrics".into()][..])
        );
        assert!(!format!("{token:?}").contains(hash), "Debug hides the hash");
        for bad in
            ["ops", &format!("ops:{hash}"), &format!("ops:{hash}:"), "ops:abcd:admin", &format!("o ps:{hash}:admin")]
        {
            let error = Token::parse(bad).expect_err(bad);
            assert!(!error.contains(hash), "{error}");
        }
    }
}
