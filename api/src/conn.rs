//! Accepted connections: `TCP_NODELAY`, a write timeout that drops slow
//! clients, and the peer's address for handlers ([`Peer`]).
//!
//! A client that stops reading (a stalled phone, a watcher that never drains
//! its live stream) would otherwise keep its connection, and with it a stream's
//! slot and its buffers, for as long as it likes: hyper queues at most 16
//! writes of a response (about 400 KiB), the kernel its socket buffer, and then
//! the connection waits for the socket. A write, flush or shutdown that makes
//! no progress for `--write-timeout` fails the connection instead; hyper closes
//! it and drops the response, a live stream's subscription with it
//! (`api_slow_clients_dropped_total`). A client that reads slowly but reads is
//! never cut: the timeout restarts at every write that makes progress
//! (`tokio-io-timeout`, whose timer is the one hyper's task already polls).
//!
//! Plain HTTP is served through [`Listener`] (axum's `serve`), HTTPS through
//! [`SlowClients`], the inner acceptor of `axum_server`'s TLS acceptor: both
//! wrap every accepted socket in [`Accepted`].

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_io_timeout::TimeoutStream;

/// The address a connection came from, as handlers and the rate limiter see it
/// (`ConnectInfo<Peer>`, on HTTP and HTTPS alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, Listener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// `axum_server` (HTTPS) hands the make-service the peer's address.
impl Connected<SocketAddr> for Peer {
    fn connect_info(addr: SocketAddr) -> Self {
        Self(addr)
    }
}

/// An accepted socket whose writes time out.
#[derive(Debug)]
pub struct Accepted {
    inner: Pin<Box<TimeoutStream<TcpStream>>>,
}

impl Accepted {
    /// Wraps `stream`: no Nagle delay (answers are written whole), writes stuck for `write_timeout` fail.
    pub fn new(stream: TcpStream, write_timeout: Duration) -> Self {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on an accepted connection");
        }
        let mut inner = TimeoutStream::new(stream);
        inner.set_write_timeout(Some(write_timeout));
        Self { inner: Box::pin(inner) }
    }
}

/// Counts a write that timed out: the connection is dropped with it.
fn counted<T>(polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
    if let Poll::Ready(Err(e)) = &polled
        && e.kind() == io::ErrorKind::TimedOut
    {
        metrics::counter!("api_slow_clients_dropped_total").increment(1);
    }
    polled
}

impl AsyncRead for Accepted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        counted(self.inner.as_mut().poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        counted(self.inner.as_mut().poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        counted(self.inner.as_mut().poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        counted(self.inner.as_mut().poll_shutdown(cx))
    }
}

/// A TCP listener whose connections are [`Accepted`] (plain HTTP, axum's `serve`).
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    write_timeout: Duration,
}

impl Listener {
    /// Serves `inner`, dropping connections whose writes are stuck for `write_timeout`.
    pub fn new(inner: TcpListener, write_timeout: Duration) -> Self {
        Self { inner, write_timeout }
    }
}

impl axum::serve::Listener for Listener {
    type Io = Accepted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => return (Accepted::new(stream, self.write_timeout), addr),
                // The peer gave up before we took it: nothing to do.
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) => {}
                // Out of descriptors or memory: accepting again at once would spin.
                Err(e) => {
                    tracing::error!(error = %e, "accepting a connection failed; retrying in 1s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The inner acceptor of `axum_server`'s TLS acceptor: wraps each socket in [`Accepted`]
/// before the handshake, so TLS connections time out as plain ones do.
#[derive(Debug, Clone, Copy)]
pub struct SlowClients {
    /// How long a write may make no progress.
    pub write_timeout: Duration,
}

impl<S> axum_server::accept::Accept<TcpStream, S> for SlowClients {
    type Stream = Accepted;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Accepted, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(Ok((Accepted::new(stream, self.write_timeout), service)))
    }
}
