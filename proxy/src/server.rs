//! Connections: the accept loops of the gateway and of its admin listener,
//! with the limits on what a client may hold open, and graceful shutdown.
//!
//! Both loops take an already-bound listener, so tests bind port 0 and run
//! every server in one process.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};

use crate::auth::Authenticator;
use crate::body::ProxyBody;
use crate::config::{Config, Limits};
use crate::docs::Docs;
use crate::error::json_response;
use crate::gateway::Gateway;
use crate::metrics::ConnectionGuard;
use crate::reload::Reloader;
use crate::upstream::IdlePool;

mod h1;
mod idle;

pub use h1::decode_request;

pub use idle::StreamGuard;
use idle::{Drain, Streams, drive};

/// How long in-flight requests get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest start-up waits for the first signing-key fetch.
const FIRST_FETCH_WAIT: Duration = Duration::from_secs(15);

/// Why serving stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot set up token validation: {0}")]
    Auth(String),
    #[error("listener failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A gateway built from its configuration, not yet serving: tests keep the
/// [`Gateway`] to look inside (key fetches, the token cache).
#[derive(Debug)]
pub struct Prepared {
    pub gateway: Arc<Gateway>,
    /// Hot reload of the policy file (SIGHUP, changes on disk).
    pub reloader: Arc<Reloader>,
    policy_poll: Option<Duration>,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    threads: usize,
    /// The decision endpoint's listener (`decision.rs`), when there is one.
    decision: Option<TcpListener>,
}

impl Prepared {
    /// Also answers the decision endpoint (`--decision-listen`) on
    /// `listener`, with the same gateway: the same policy, keys, metrics.
    pub fn with_decision(mut self, listener: Option<TcpListener>) -> Prepared {
        self.decision = listener;
        self
    }
}

/// Builds the gateway; binds nothing and fetches nothing.
pub fn prepare(config: Config) -> Result<Prepared, ServeError> {
    let authenticator = Arc::new(
        Authenticator::new(config.auth.clone()).map_err(|e| ServeError::Auth(e.to_string()))?,
    );
    let gateway = Arc::new(
        Gateway::new(
            config.policy,
            authenticator,
            config.upstream.clone(),
            config.limits.clone(),
            config.tls.is_some(),
        )
        .with_docs(config.docs.map(Docs::new))
        .with_assertion(config.assertion)
        .with_graph(config.graph),
    );
    // Named as `sha256sum policy.yaml` names it, for /metrics and the status page.
    if let Ok(text) = std::fs::read(&config.policy_path) {
        let hash = crate::metrics::policy_hash(&text);
        gateway.metrics().set_policy_hash(&hash);
    }
    let reloader = Arc::new(Reloader::new(gateway.clone(), &config.policy_path));
    Ok(Prepared {
        gateway,
        reloader,
        policy_poll: config.policy_poll,
        tls: config.tls,
        limits: config.limits,
        threads: config.threads,
        decision: None,
    })
}

/// Runs the gateway on `listener` and the admin endpoints on `admin` until
/// `shutdown` completes, then drains in-flight requests.
pub async fn run(
    listener: TcpListener,
    admin: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    run_prepared(prepare(config)?, listener, admin, shutdown).await
}

/// [`run`] for a gateway built with [`prepare`].
pub async fn run_prepared(
    prepared: Prepared,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let Prepared {
        gateway,
        reloader,
        policy_poll,
        tls,
        limits,
        threads,
        decision,
    } = prepared;
    let reload = reloader.spawn(policy_poll);
    // Wait for the first key fetch (bounded) before accepting: clients queue
    // on the bound listener instead of meeting a 503 in the first instant.
    // If the IdP is down, serving starts anyway: anonymous routes work and
    // protected ones answer 503 until the keys load.
    let mut fetches = gateway.authenticator().watch_fetches();
    let refresh = gateway.authenticator().spawn_refresh_task();
    let _ = tokio::time::timeout(FIRST_FETCH_WAIT, fetches.wait_for(|done| *done >= 1)).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let admin_task = admin.map(|admin| {
        let gateway = gateway.clone();
        let stop = stop_rx.clone();
        tokio::spawn(serve_admin(admin, gateway, stopped(stop)))
    });
    let decision_task = decision.map(|decision| {
        let gateway = gateway.clone();
        let stop = stop_rx.clone();
        let limits = limits.clone();
        tokio::spawn(crate::decision::serve(
            decision,
            gateway,
            limits,
            stopped(stop),
        ))
    });
    let result = serve(listener, gateway, tls, limits, threads, stopped(stop_rx)).await;
    refresh.abort();
    reload.abort();
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    if let Some(task) = decision_task {
        let _ = task.await;
    }
    result
}

/// Resolves once the watch flips to `true` (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// The gateway's accept loop. Connections are served on `threads` threads
/// (see [`Workers`]); the calling runtime's is one of them.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    threads: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let workers = Workers::start(threads).await?;
    let builder = http_builder(&limits);
    let graceful = Drain::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let Some((permit, stream, remote)) =
            next_connection(&listener, &slots, &mut shutdown, "gateway").await
        else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let (worker, open, pool) = workers.pick();
        let conn = Connection {
            gateway: gateway.clone(),
            remote,
            builder: builder.clone(),
            watcher: graceful.watcher(),
            acceptor: acceptor.clone(),
            header_read_timeout: limits.header_read_timeout,
            max_head: limits.max_header_bytes.max(8192),
            max_headers: limits.max_headers,
            pool,
            // Released with the connection: counted open while it lives.
            held: (permit, gateway.metrics().open_connection(), open),
        };
        match worker {
            None => {
                tokio::spawn(conn.serve(stream));
            }
            Some(handle) => {
                // Registered again with the chosen thread's own IO driver.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::debug!(%remote, error = %e, "cannot hand the connection over");
                        continue;
                    }
                };
                handle.spawn(async move {
                    match TcpStream::from_std(stream) {
                        Ok(stream) => conn.serve(stream).await,
                        Err(e) => {
                            tracing::debug!(%remote, error = %e, "cannot take the connection over")
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    workers.stop().await;
    Ok(())
}

/// One accepted client connection and what serving it needs.
struct Connection {
    gateway: Arc<Gateway>,
    remote: SocketAddr,
    builder: auto::Builder<TokioExecutor>,
    /// Held while the connection lives; says when the gateway shuts down.
    watcher: watch::Receiver<()>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    header_read_timeout: Duration,
    /// hyper's read buffer limit (`http_builder`): a head longer is hyper's
    /// to refuse.
    max_head: usize,
    max_headers: usize,
    /// The serving thread's idle upstream connections.
    pool: Arc<IdlePool>,
    /// Dropped when the connection ends: its connection slot, its count in
    /// the metrics and in its thread's load.
    held: (OwnedSemaphorePermit, ConnectionGuard, OpenOnWorker),
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let Connection {
            gateway,
            remote,
            builder,
            watcher,
            acceptor,
            header_read_timeout,
            max_head,
            max_headers,
            pool,
            held,
        } = self;
        // Signalled by every request: a connection that sends none within
        // the header read timeout is closed (see `first_request_within`).
        let requested = Arc::new(Notify::new());
        // Its open HTTP/2 streams: one idle for the header read timeout is
        // closed with GOAWAY (`idle.rs`).
        let streams = Arc::new(Streams::default());
        // Its requests' borrower from the thread's idle upstream connections
        // (HTTP/1 clients; each exchange runs in this task): see `link.rs`.
        let link = Arc::new(gateway.forwarder().link(pool));
        let service = {
            let requested = requested.clone();
            let streams = streams.clone();
            let link = link.clone();
            let gateway = gateway.clone();
            move |req: Request<Incoming>| {
                requested.notify_one();
                let stream = streams.open(req.version());
                let gateway = gateway.clone();
                let link = link.clone();
                async move {
                    Ok::<_, Infallible>(gateway.handle(req, remote, Some(&link), stream).await)
                }
            }
        };
        // Each variant's state is boxed at its own size: inline, the task's
        // cell would be as large as the largest (the TLS one's, or hyper's
        // after a handover) for every plain connection too.
        let result = match acceptor {
            None => {
                // The gateway's own HTTP/1.1 server first (`h1.rs`); hyper's
                // for whatever it leaves.
                let settings = h1::Settings {
                    header_read_timeout,
                    max_head,
                    max_headers,
                };
                let conn = async {
                    let mut watcher = watcher;
                    let ended = h1::serve(stream, settings, &requested, &mut watcher, |req| {
                        gateway.handle(req, remote, Some(&link), None)
                    })
                    .await;
                    let h1::Ended::Handover {
                        io,
                        fresh,
                        draining,
                    } = ended
                    else {
                        return Ok(());
                    };
                    // A connection that has carried a request stays HTTP/1.
                    // Boxed apart: the own server's state above stays small.
                    let builder = if fresh { builder } else { builder.http1_only() };
                    let mut conn = Box::pin(
                        builder
                            .serve_connection(TokioIo::new(io), service_fn(service))
                            .into_owned(),
                    );
                    if draining {
                        conn.as_mut().graceful_shutdown();
                    }
                    drive(conn, watcher, &streams, header_read_timeout, |c| {
                        c.get_mut().as_mut().graceful_shutdown();
                    })
                    .await
                };
                first_request_within(header_read_timeout, &requested, Box::pin(conn)).await
            }
            Some(acceptor) => {
                // Boxed: rustls's handshake state would otherwise size
                // every connection's task, plain ones included.
                let handshake = Box::pin(acceptor.accept(stream));
                let stream = match tokio::time::timeout(header_read_timeout, handshake).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, error = %e, "tls handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let conn = builder
                    .serve_connection(TokioIo::new(stream), service_fn(service))
                    .into_owned();
                let conn = drive(conn, watcher, &streams, header_read_timeout, |c| {
                    c.graceful_shutdown();
                });
                first_request_within(header_read_timeout, &requested, Box::pin(conn)).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%remote, error = %e, "connection ended with an error");
        }
        drop(held);
    }
}

/// The threads connections are served on: the accepting runtime's own and,
/// with `--threads` above 1, single-threaded runtimes on threads of their
/// own. A new connection goes to the thread with the fewest open ones and
/// stays there for its whole life; its requests borrow upstream connections
/// from that thread's idle pool: nothing a request does wakes another thread
/// (nginx's worker model; with tokio's work-stealing scheduler, waking idle
/// workers took a quarter of the gateway's CPU).
struct Workers {
    local: Seat,
    threads: Vec<WorkerThread>,
}

struct WorkerThread {
    handle: Handle,
    seat: Seat,
    stop: oneshot::Sender<()>,
    stopped: oneshot::Receiver<()>,
}

/// What a serving thread's connections share: their count, and the idle
/// upstream connections they borrow from.
struct Seat {
    open: Arc<AtomicUsize>,
    pool: Arc<IdlePool>,
}

impl Seat {
    /// The seat of `runtime`'s thread: no connection yet, an empty pool.
    fn on(runtime: &Handle) -> Seat {
        Seat {
            open: Arc::default(),
            pool: IdlePool::start_on(runtime),
        }
    }
}

/// One open connection in its thread's count.
struct OpenOnWorker(Arc<AtomicUsize>);

impl Drop for OpenOnWorker {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Workers {
    async fn start(threads: usize) -> Result<Workers, ServeError> {
        let local = Seat::on(&Handle::current());
        let mut workers = Workers {
            local,
            threads: Vec::new(),
        };
        for i in 1..threads {
            let (handle_tx, handle_rx) = oneshot::channel();
            let (stop, stop_rx) = oneshot::channel::<()>();
            let (stopped_tx, stopped) = oneshot::channel();
            std::thread::Builder::new()
                .name(format!("authz-proxy-{i}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = handle_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = handle_tx.send(Ok(runtime.handle().clone()));
                    runtime.block_on(async {
                        let _ = stop_rx.await;
                    });
                    // Connections have drained by now; a DNS lookup still
                    // running on the blocking pool is not waited for.
                    runtime.shutdown_timeout(Duration::from_secs(1));
                    let _ = stopped_tx.send(());
                })?;
            let handle = match handle_rx.await {
                Ok(Ok(handle)) => handle,
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(std::io::Error::other("a serving thread died").into()),
            };
            let seat = Seat::on(&handle);
            workers.threads.push(WorkerThread {
                handle,
                seat,
                stop,
                stopped,
            });
        }
        Ok(workers)
    }

    /// The least loaded thread (`None`: the accepting runtime), the count
    /// the new connection adds to, and that thread's idle upstream pool.
    fn pick(&self) -> (Option<&Handle>, OpenOnWorker, Arc<IdlePool>) {
        let mut best: (Option<&Handle>, &Seat) = (None, &self.local);
        let mut least = self.local.open.load(Ordering::Relaxed);
        for thread in &self.threads {
            let open = thread.seat.open.load(Ordering::Relaxed);
            if open < least {
                least = open;
                best = (Some(&thread.handle), &thread.seat);
            }
        }
        let (handle, seat) = best;
        seat.open.fetch_add(1, Ordering::Relaxed);
        (handle, OpenOnWorker(seat.open.clone()), seat.pool.clone())
    }

    async fn stop(self) {
        for thread in self.threads {
            let _ = thread.stop.send(());
            let _ = thread.stopped.await;
        }
    }
}

/// Serves `conn`, but drops it if no request arrives within `limit`.
///
/// hyper's `header_read_timeout` only starts once `auto` has chosen HTTP/1
/// from the first bytes: a client that connects and sends nothing, or stops
/// inside the HTTP/2 preface, would otherwise hold a connection slot for
/// ever (a slowloris needing no bytes at all).
pub(crate) async fn first_request_within<E>(
    limit: Duration,
    requested: &Notify,
    conn: impl Future<Output = Result<(), E>>,
) -> Result<(), E> {
    tokio::pin!(conn);
    tokio::select! {
        result = &mut conn => return result,
        first = tokio::time::timeout(limit, requested.notified()) => {
            if first.is_err() {
                tracing::debug!("no request within the header read timeout; closing");
                return Ok(());
            }
        }
    }
    conn.await
}

/// The next connection of an accept loop: first a slot under the connection
/// cap, then a connection, which holds the slot until it closes. A failed
/// accept (EMFILE and friends) backs off 50 ms instead of spinning. `None`
/// once `shutdown` completes. Shared by the gateway's and the decision
/// endpoint's loops (`name` says which in the log).
pub(crate) async fn next_connection<F: Future<Output = ()>>(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    shutdown: &mut std::pin::Pin<&mut F>,
    name: &'static str,
) -> Option<(OwnedSemaphorePermit, TcpStream, SocketAddr)> {
    let permit = tokio::select! {
        permit = Arc::clone(slots).acquire_owned() => permit.ok()?,
        () = shutdown.as_mut() => return None,
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => return Some((permit, stream, remote)),
                Err(e) => {
                    tracing::warn!(error = %e, listener = name, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = shutdown.as_mut() => return None,
        }
    }
}

/// HTTP/1.1 and HTTP/2 with the configured limits.
pub(crate) fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256);
    builder
}

/// The admin listener: `/health` (the process is alive), `/ready` (keys
/// loaded and the upstream accepting connections), `/metrics` (Prometheus)
/// and `/` (the status page).
pub async fn serve_admin(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
            () = &mut shutdown => break,
        };
        let gateway = gateway.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let gateway = gateway.clone();
            async move { Ok::<_, Infallible>(admin(req, &gateway).await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

async fn admin(req: Request<Incoming>, gateway: &Gateway) -> Response<ProxyBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"detail": "Method Not Allowed"}),
        );
    }
    match req.uri().path() {
        "/health" => json_response(StatusCode::OK, &serde_json::json!("OK")),
        "/ready" => ready(gateway).await,
        "/metrics" => crate::metrics::response(gateway.metrics()),
        "/" => crate::status_page::response(gateway),
        crate::assertion::JWKS_PATH if let Some(signer) = gateway.assertion() => {
            signer.jwks_response()
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"detail": "Not Found"}),
        ),
    }
}

/// `/ready`: the keys are loaded and the default upstream accepts a
/// connection (a TLS handshake for an https one). The policy's named
/// upstreams are checked alike and reported, but do not make the gateway
/// unready: one backend down must not take the others' routes out of
/// service (their requests get a 502 that names it).
async fn ready(gateway: &Gateway) -> Response<ProxyBody> {
    let keys = gateway.authenticator().keys_loaded();
    let active = gateway.policy();
    let targets: Vec<(&str, &crate::upstream::Forwarder)> =
        std::iter::once(("default", gateway.forwarder()))
            .chain(active.forwarders())
            .collect();
    let mut probes = tokio::task::JoinSet::new();
    for (i, (_, forwarder)) in targets.iter().enumerate() {
        let url = forwarder.upstream().to_string();
        let probe = forwarder.probe();
        probes.spawn(async move { (i, url, probe.await) });
    }
    let mut reports = vec![serde_json::Value::Null; targets.len()];
    while let Some(Ok((i, url, result))) = probes.join_next().await {
        reports[i] = match result {
            Ok(()) => serde_json::json!({"url": url, "reachable": true}),
            Err(e) => serde_json::json!({"url": url, "reachable": false, "error": e.to_string()}),
        };
    }
    let upstream = reports[0]["reachable"] == true;
    let upstreams: serde_json::Map<_, _> = targets
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .zip(reports)
        .collect();
    let body = serde_json::json!({
        "ready": keys && upstream,
        "policy_loaded": true,
        "keys_loaded": keys,
        "upstream_reachable": upstream,
        "upstreams": upstreams,
        "routes": active.policy.routes().len(),
    });
    let status = if keys && upstream {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body)
}

/// The address the gateway ends up listening on, for logs.
pub fn describe(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{addr}", if tls { "https" } else { "http" })
}
