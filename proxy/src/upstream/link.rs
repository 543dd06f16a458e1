//! The per-thread idle pool of upstream connections and the link through
//! which an HTTP/1 client connection borrows from it.
//!
//! An HTTP/1 client sends its requests one after the other. For each request
//! its connection borrows an upstream connection ([`Link`]) from its serving
//! thread's idle pool ([`IdlePool`], or opens one) and drives it in its own
//! task ([`Linked`]): the request, its response and their bodies cross no
//! task or thread boundary, which a pool with a task per pooled connection
//! cannot avoid (a channel hand-off and a wakeup of another worker on every
//! request). Once the response has been read to its end, the upstream
//! connection goes back to the idle pool, so the backend sees as many
//! connections as there are requests in flight, not one per client
//! connection (10,000 idle keep-alive clients cost it nothing).
//!
//! HTTP/2 clients multiplex requests on one connection and go through the
//! forwarder's shared client instead (`upstream.rs`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{Failure, Upstream, UpstreamError};
use crate::body::ProxyBody;
use crate::metrics::Metrics;

type UpstreamConnection = Connection<TokioIo<TcpStream>, ProxyBody>;

/// Idle upstream connections kept longest (nginx's `keepalive_timeout` for
/// upstreams is 60 s as well); older ones are closed when next looked at.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Idle upstream connections kept per serving thread; more are closed.
const MAX_IDLE: usize = 256;

/// One serving thread's idle upstream connections, most recently used last.
/// Only that thread's connections use it (their sockets are registered with
/// its IO driver): the lock is never contended.
#[derive(Default)]
pub struct IdlePool {
    idle: Mutex<VecDeque<Idle>>,
}

struct Idle {
    sender: SendRequest<ProxyBody>,
    conn: Pin<Box<UpstreamConnection>>,
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
    fn take(&self) -> Option<(SendRequest<ProxyBody>, Pin<Box<UpstreamConnection>>)> {
        self.reap();
        self.lock().pop_back().map(|i| (i.sender, i.conn))
    }

    fn put(&self, sender: SendRequest<ProxyBody>, conn: Pin<Box<UpstreamConnection>>) {
        let mut idle = self.lock();
        if idle.len() >= MAX_IDLE {
            idle.pop_front();
        }
        idle.push_back(Idle {
            sender,
            conn,
            since: Instant::now(),
        });
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

/// The upstream connection a client connection has borrowed, if any.
pub struct Link {
    pool: Arc<IdlePool>,
    metrics: Arc<Metrics>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Where the next request goes; taken out while a request is in flight.
    sender: Option<SendRequest<ProxyBody>>,
    /// The connection itself, polled by [`Link::poll_drive`].
    conn: Option<Pin<Box<UpstreamConnection>>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("connected", &self.lock().conn.is_some())
            .finish()
    }
}

impl Link {
    /// A link borrowing from (and returning to) `pool`: the idle pool of the
    /// thread the client connection is served on. New connections are
    /// counted in `metrics`.
    pub(super) fn new(pool: Arc<IdlePool>, metrics: Arc<Metrics>) -> Link {
        Link {
            pool,
            metrics,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Only the owning task locks it, never across an await: no contention,
        // and a panic while holding it leaves nothing half-written that matters.
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Makes progress on the upstream connection (writing the request,
    /// reading the response and its body); forgets it once it has closed,
    /// and hands it back to the idle pool once its response has been read
    /// to the end.
    pub fn poll_drive(&self, cx: &mut Context<'_>) {
        let mut state = self.lock();
        let Some(conn) = state.conn.as_mut() else {
            return;
        };
        if let Poll::Ready(result) = conn.as_mut().poll(cx) {
            if let Err(e) = result {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
            state.conn = None;
            state.sender = None;
            return;
        }
        // `sender` is here only between requests; ready means the response
        // has been read to its end and the connection is idle.
        if state.sender.as_ref().is_some_and(SendRequest::is_ready)
            && let (Some(sender), Some(conn)) = (state.sender.take(), state.conn.take())
        {
            self.pool.put(sender, conn);
        }
    }

    /// Closes the upstream connection (after a timeout or a failed request,
    /// when what is left on it is unknown); the next request takes another.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.conn = None;
        state.sender = None;
    }

    /// Sends `req` (origin-form target, `Host` set) on an idle upstream
    /// connection, or a new one when none is idle or the idle ones turn out
    /// to have been closed by the upstream before the request went out.
    pub async fn send(
        &self,
        mut req: Request<ProxyBody>,
        upstream: &Upstream,
        connect_timeout: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        loop {
            let kept = {
                let mut state = self.lock();
                match state.sender.take() {
                    Some(sender) => Some(sender),
                    None => self.pool.take().map(|(sender, conn)| {
                        state.conn = Some(conn);
                        sender
                    }),
                }
            };
            let Some(mut sender) = kept else { break };
            if sender.ready().await.is_ok() {
                match sender.try_send_request(req).await {
                    Ok(response) => {
                        self.lock().sender = Some(sender);
                        return Ok(response);
                    }
                    Err(mut e) => match e.take_message() {
                        // Never written: safe to send again on another connection.
                        Some(unsent) => req = unsent,
                        None => {
                            self.reset();
                            return Err(UpstreamError::from_hyper(e.into_error()));
                        }
                    },
                }
            }
            self.reset();
        }
        let mut sender = self.connect(upstream, connect_timeout).await?;
        match sender.send_request(req).await {
            Ok(response) => {
                self.lock().sender = Some(sender);
                Ok(response)
            }
            Err(e) => {
                self.reset();
                Err(UpstreamError::from_hyper(e))
            }
        }
    }

    async fn connect(
        &self,
        upstream: &Upstream,
        timeout: Duration,
    ) -> Result<SendRequest<ProxyBody>, UpstreamError> {
        let stream = upstream.connect(timeout).await?;
        // HTTP/1 needs no exchange before the first request: the request is
        // queued now and written when the task next drives the connection.
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::new(Failure::Connect, e))?;
        self.lock().conn = Some(Box::pin(conn));
        self.metrics.upstream_connection_opened();
        Ok(sender)
    }
}

impl Drop for Link {
    /// A client connection that ends between requests leaves its idle
    /// upstream connection to the others.
    fn drop(&mut self) {
        let mut state = self.lock();
        if state.sender.as_ref().is_some_and(SendRequest::is_ready)
            && let (Some(sender), Some(conn)) = (state.sender.take(), state.conn.take())
        {
            self.pool.put(sender, conn);
        }
    }
}

/// A client connection's future together with the upstream connection its
/// link has borrowed, if any: both are polled whenever the task wakes, the
/// upstream side first so that a response read from it is written to the
/// client in the same pass.
pub struct Linked<F> {
    conn: Pin<Box<F>>,
    link: Arc<Link>,
}

impl<F> Linked<F> {
    pub fn new(conn: F, link: Arc<Link>) -> Self {
        Linked {
            conn: Box::pin(conn),
            link,
        }
    }
}

impl<F: Future> Future for Linked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.link.poll_drive(cx);
        if let Poll::Ready(output) = self.conn.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        // A request handed over just now is written in this pass too.
        self.link.poll_drive(cx);
        Poll::Pending
    }
}
