//! Upstream connections for HTTP/1 clients.
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
//! HTTP/2 clients multiplex requests on one connection and still go through
//! the shared pool (`Gateway::forward`).

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

use crate::body::ProxyBody;
use crate::config::Upstream;
use crate::metrics::Metrics;

type UpstreamConnection = Connection<TokioIo<TcpStream>, ProxyBody>;

/// Why a request could not be sent to the upstream or answered by it.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot connect to the upstream {authority}: {source}")]
    Connect {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to the upstream {0} timed out")]
    ConnectTimeout(String),
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

impl LinkError {
    /// Whether no connection to the upstream could be made at all.
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            LinkError::Connect { .. } | LinkError::ConnectTimeout(_)
        )
    }
}

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

    /// Reaps `pool` every half idle timeout while it exists, so that a quiet
    /// gateway does not keep sockets the upstream has long closed. Spawned
    /// on the pool's own thread.
    pub async fn reap_while_alive(pool: Weak<IdlePool>) {
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
    pub fn new(pool: Arc<IdlePool>, metrics: Arc<Metrics>) -> Link {
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
    ) -> Result<Response<Incoming>, LinkError> {
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
                            return Err(e.into_error().into());
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
                Err(e.into())
            }
        }
    }

    async fn connect(
        &self,
        upstream: &Upstream,
        timeout: Duration,
    ) -> Result<SendRequest<ProxyBody>, LinkError> {
        let authority = upstream.authority.as_str();
        let host = upstream
            .authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = upstream.authority.port_u16().unwrap_or(80);
        let stream = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(LinkError::Connect {
                    authority: authority.to_string(),
                    source,
                });
            }
            Err(_) => return Err(LinkError::ConnectTimeout(authority.to_string())),
        };
        let _ = stream.set_nodelay(true);
        // HTTP/1 needs no exchange before the first request: the request is
        // queued now and written when the task next drives the connection.
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
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
