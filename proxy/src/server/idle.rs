//! Closing client connections that hold a slot and do nothing, and the
//! gateway's own graceful shutdown, in the one loop that drives a client
//! connection ([`drive`]).
//!
//! hyper closes an idle HTTP/1.1 connection itself (its header read
//! timeout is the keep-alive timeout), but an HTTP/2 connection with no
//! open stream would stay open for ever: a client could hold every
//! connection slot with idle HTTP/2 connections. [`Streams`] counts the
//! open streams of a connection (a stream is open from its request until
//! its response body has been sent or dropped: the [`StreamGuard`] rides in
//! the request's `RequestContext`, which the access log's response body
//! drops at that moment) and [`drive`] sends GOAWAY once an HTTP/2
//! connection has had none for the header read timeout.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::Version;
use tokio::sync::{Notify, watch};

/// The open streams of one client connection.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    open: AtomicUsize,
    /// Set by the first HTTP/2 request: only HTTP/2 connections are closed
    /// here (HTTP/1.1 idles are hyper's).
    http2: AtomicBool,
    changed: Notify,
}

impl Streams {
    /// A request starts: an HTTP/2 one is an open stream until the guard,
    /// carried in its `RequestContext` to the end of its response body, is
    /// dropped. HTTP/1 requests cost one
    /// comparison.
    pub(crate) fn open(self: &Arc<Self>, version: Version) -> Option<StreamGuard> {
        if version != Version::HTTP_2 {
            return None;
        }
        self.http2.store(true, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
        Some(StreamGuard(Arc::clone(self)))
    }

    /// Resolves once the connection is HTTP/2 and has had no open stream
    /// for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            // Registered before looking, so a change in between wakes it.
            let changed = self.changed.notified();
            let idle = self.http2.load(Ordering::Relaxed) && self.open.load(Ordering::Acquire) == 0;
            if idle {
                tokio::select! {
                    () = tokio::time::sleep(limit) => return,
                    () = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

/// One open HTTP/2 stream.
#[derive(Debug)]
pub struct StreamGuard(Arc<Streams>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// The gateway's graceful shutdown (what hyper-util's `GracefulShutdown`
/// does, kept here so that [`drive`] can also start a connection's
/// shutdown for idleness): [`Drain::shutdown`] tells every connection to
/// finish and waits until they all have.
#[derive(Debug)]
pub(crate) struct Drain(watch::Sender<()>);

impl Drain {
    pub(crate) fn new() -> Drain {
        Drain(watch::channel(()).0)
    }

    /// What a connection holds while it lives.
    pub(crate) fn watcher(&self) -> watch::Receiver<()> {
        self.0.subscribe()
    }

    /// Asks every connection to finish, and waits until all have.
    pub(crate) async fn shutdown(self) {
        let _ = self.0.send(());
        self.0.closed().await;
    }
}

/// Serves `conn` until it ends. Its graceful shutdown (`begin_shutdown`:
/// GOAWAY on HTTP/2, close after the response in flight on HTTP/1) starts
/// when the gateway shuts down, or when an HTTP/2 connection has had no
/// open stream for `idle_limit`; then the connection finishes what it has.
pub(crate) async fn drive<C, E>(
    conn: C,
    mut shutdown: watch::Receiver<()>,
    streams: &Streams,
    idle_limit: Duration,
    begin_shutdown: impl Fn(Pin<&mut C>),
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return result,
        _ = shutdown.changed() => {}
        () = streams.idle_for(idle_limit) => {
            tracing::debug!("HTTP/2 connection idle for the header read timeout; GOAWAY");
        }
    }
    begin_shutdown(conn.as_mut());
    let result = conn.await;
    // Held until the connection has ended: the drain waits for it.
    drop(shutdown);
    result
}
