//! How the store connects: timeouts and the CA for `rediss://`, shared by
//! every kind of connection.

use std::time::Duration;

use redis::aio::ConnectionManagerConfig;

/// Timeouts for talking to Redis.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// How long to wait for a TCP connection.
    pub connect_timeout: Duration,
    /// How long to wait for any reply.
    pub response_timeout: Duration,
    /// `rediss://` only: the CA certificates (PEM) to verify servers with, instead of the public
    /// web roots; read once per process, so it lives as long as the process (single servers and
    /// clusters; not yet Sentinel groups, refused with [`crate::Error::Config`]).
    pub tls_root: Option<&'static [u8]>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(2), response_timeout: Duration::from_secs(2), tls_root: None }
    }
}

/// The connection manager's settings for `options` (single servers and Sentinel-managed primaries).
pub(crate) fn manager_config(options: StoreOptions) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.response_timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500))
}
