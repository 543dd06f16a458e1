//! The per-thread idle pool of upstream connections and the link through
//! which an HTTP/1 client connection borrows from it.
//!
//! An HTTP/1 client sends its requests one after the other. For each request
//! its connection borrows an upstream connection from its serving thread's
//! idle pool ([`IdlePool`], or opens one) through its [`Link`], and the
//! gateway's own HTTP/1.1 client (`h1.rs`) writes the request and reads the
//! response in the client connection's task: the request, its response and
//! their bodies cross no task or thread boundary, which a pool with a task
//! per pooled connection cannot avoid (a channel hand-off and a wakeup of
//! another worker on every request). The response body owns the connection
//! while it streams and puts it back into the idle pool once it has been
//! read to its end, so the backend sees as many connections as there are
//! requests in flight, not one per client connection (10,000 idle
//! keep-alive clients cost it nothing).
//!
//! HTTP/2 clients multiplex requests on one connection and go through the
//! forwarder's shared client instead (`upstream.rs`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use hyper::body::Body as _;

use super::h1::{self, Conn, Exchange};
use super::{Upstream, UpstreamError};
use crate::body::ProxyBody;
use crate::metrics::Metrics;

/// Idle upstream connections kept longest (nginx's `keepalive_timeout` for
/// upstreams is 60 s as well); older ones are closed when next looked at.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Idle upstream connections kept per serving thread; more are closed. As
/// many as the default `--upstream-max-connections`: an idle connection
/// costs ~350 bytes here, while closing the ones beyond a smaller limit
/// after a burst and opening them again for the next one (256 did: 1,400 to
/// 5,000 connects in 4 s at 1,000 clients) leaves a TIME_WAIT per close and
/// can run a gateway out of local ports towards one upstream address.
const MAX_IDLE: usize = 1024;

/// One serving thread's idle upstream connections, most recently used last.
/// Only that thread's connections use it (their sockets are registered with
/// its IO driver): the lock is never contended.
#[derive(Default)]
pub struct IdlePool {
    idle: Mutex<VecDeque<Idle>>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

impl std::fmt::Debug for IdlePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdlePool")
            .field("idle", &self.lock().len())
            .finish()
    }
}

impl IdlePool {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Idle>> {
        match self.idle.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The most recently used idle connection still young enough.
    fn take(&self) -> Option<Conn> {
        self.reap();
        self.lock().pop_back().map(|i| i.conn)
    }

    pub(super) fn put(&self, conn: Conn) {
        let mut idle = self.lock();
        if idle.len() >= MAX_IDLE {
            idle.pop_front();
        }
        idle.push_back(Idle {
            conn,
            since: Instant::now(),
        });
    }

    #[cfg(test)]
    pub(super) fn idle_count(&self) -> usize {
        self.lock().len()
    }

    /// Closes the connections idle for longer than [`IDLE_TIMEOUT`].
    fn reap(&self) {
        let mut idle = self.lock();
        while idle
            .front()
            .is_some_and(|front| front.since.elapsed() >= IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
    }

    /// A new pool for the thread of `runtime`, reaped every half idle
    /// timeout while it exists, so that a quiet gateway does not keep
    /// sockets the upstream has long closed.
    pub fn start_on(runtime: &tokio::runtime::Handle) -> Arc<IdlePool> {
        let pool = Arc::new(IdlePool::default());
        runtime.spawn(IdlePool::reap_while_alive(Arc::downgrade(&pool)));
        pool
    }

    async fn reap_while_alive(pool: Weak<IdlePool>) {
        loop {
            tokio::time::sleep(IDLE_TIMEOUT / 2).await;
            match pool.upgrade() {
                Some(pool) => pool.reap(),
                None => return,
            }
        }
    }
}

/// A client connection's borrower from its thread's idle pool. It holds no
/// connection itself: a request's exchange holds one until its response
/// head, then the response body until its end.
pub struct Link {
    pool: Arc<IdlePool>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("pool", &self.pool).finish()
    }
}

impl Link {
    /// A link borrowing from (and returning to) `pool`: the idle pool of the
    /// thread the client connection is served on. New connections are
    /// counted in `metrics`.
    pub(super) fn new(pool: Arc<IdlePool>, metrics: Arc<Metrics>) -> Link {
        Link { pool, metrics }
    }

    /// Sends `req` (origin-form target, `Host` set) on an idle upstream
    /// connection, or a new one when none is idle or the idle ones turn out
    /// to have been closed by the upstream.
    ///
    /// The retry rule: an idle connection found closed (or with bytes nobody
    /// asked for) before anything is written is dropped and the next one
    /// tried, for any request. Once written, a request is sent again only
    /// when it is idempotent and has no body, went out on a reused
    /// connection, and the upstream closed that connection before a single
    /// byte of a response (it had timed the connection out just as the
    /// request was sent): once more, on a new connection. Nothing else is
    /// sent twice, and nothing partly written ever is.
    pub async fn send(
        &self,
        req: Request<ProxyBody>,
        upstream: &Upstream,
        connect_timeout: Duration,
    ) -> Result<Response<h1::Body>, UpstreamError> {
        let (mut parts, body) = req.into_parts();
        let head_request = parts.method == Method::HEAD;
        let (head, framing) = h1::encode_head(&mut parts, &body);
        let bodiless = body.is_end_stream();
        let retryable = h1::retryable(&parts.method, bodiless);
        let mut body = (!bodiless).then_some(body);
        while let Some(mut conn) = self.pool.take() {
            if !conn.is_alive() {
                continue;
            }
            match h1::exchange(&mut conn, &head, body.take(), framing, head_request).await {
                Ok(response) => return Ok(self.respond(conn, response)),
                Err(Exchange::Unanswered(e)) if retryable => {
                    tracing::debug!(error = %e, "reused upstream connection closed unanswered; sending again");
                    break;
                }
                Err(e) => return Err(e.into_error()),
            }
        }
        let stream = upstream.connect(connect_timeout).await?;
        self.metrics.upstream_connection_opened();
        let mut conn = Conn::new(stream);
        match h1::exchange(&mut conn, &head, body.take(), framing, head_request).await {
            Ok(response) => Ok(self.respond(conn, response)),
            Err(e) => Err(e.into_error()),
        }
    }

    fn respond(&self, conn: Conn, head: h1::Head) -> Response<h1::Body> {
        let body = h1::Body::new(conn, &head, Arc::clone(&self.pool));
        let (parts, ()) = head.response.into_parts();
        Response::from_parts(parts, body)
    }
}
