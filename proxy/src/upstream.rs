//! The forwarder: the one owner of everything on the upstream side of the
//! gateway — where the upstream is, its connections (the per-thread idle
//! pools that HTTP/1 clients borrow from, `upstream/link.rs`, and the shared
//! multiplexing client for HTTP/2 clients), the connect and response
//! timeouts, the retry of a request whose idle connection turned out to be
//! closed, the `Host` and prefix rewriting an upstream asks for
//! ([`Rewrite`]), TLS to https upstreams (`upstream/tls.rs`), and the typed
//! [`Failure`] every failed forward is reported with (`upstream/failure.rs`).
//!
//! Where its job ends: it sends a request that the gateway's stages have
//! decided and rewritten, and returns the upstream's response or an
//! [`UpstreamError`]; what a failure means for the client (status, log,
//! metrics) is decided by reading the error's [`Failure`].

mod failure;
mod h1;
mod link;
mod target;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::body::{self, ProxyBody};
use crate::headers::X_FORWARDED_PREFIX;
use crate::metrics::Metrics;

pub use failure::{Failure, UpstreamError};
/// For the differential fuzz target (`fuzz/fuzz_targets/upstream_response.rs`).
#[doc(hidden)]
pub use h1::{Malformed, decode_response};
pub use link::{IdlePool, Link};
pub use target::Upstream;
pub use tls::{Setting as TlsSetting, TlsFiles, TlsProblem};

/// Idle connections of the shared client are kept this long (as the
/// per-thread pools keep theirs).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The origin-form `uri` without `prefix` at the front of its path, when its
/// path is the prefix or continues it with `/` (`/reports` → `/`,
/// `/reports/2026?q=1` → `/2026?q=1`); `None` otherwise (`/reportsx`), and
/// the target is then forwarded unchanged. What [`Forwarder::send`] applies
/// for an upstream's `strip_prefix`; public so the property tests can hold
/// it against their reference.
pub fn strip_prefix(uri: &Uri, prefix: &str) -> Option<PathAndQuery> {
    let target = uri.path_and_query()?;
    let rest = target.path().strip_prefix(prefix)?;
    let path = match rest {
        "" => "/",
        rest if rest.starts_with('/') => rest,
        _ => return None,
    };
    let stripped = match target.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    PathAndQuery::try_from(stripped).ok()
}

/// How long readiness waits for a connection to the upstream.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The `Host` an upstream gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostHeader {
    /// The upstream's own authority (`host: upstream`, the default).
    #[default]
    Upstream,
    /// The client's, as the gateway received it (`host: client`), for
    /// backends that serve several names.
    Client,
}

/// How one upstream is reached, beyond its address (`upstreams:` in
/// `policy.yaml`; the defaults for `--upstream`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrite {
    pub host: HostHeader,
    /// Removed from the front of the forwarded path (after matching), and
    /// sent as `X-Forwarded-Prefix`; written `/x` (no trailing slash).
    pub strip_prefix: Option<String>,
}

/// How long the forwarder waits, and for how many requests at once.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To establish a connection (502 when it runs out).
    pub connect: Duration,
    /// From sending a request to its response headers (504).
    pub response: Duration,
    /// Requests in flight to the upstream at most (`None`: no cap); one
    /// more waits for a free place at most `queue` (503 after).
    pub max_in_flight: Option<usize>,
    pub queue: Duration,
}

/// Responses whose `Content-Length` is at most this many bytes are read
/// whole before they are relayed, so the upstream connection and its place
/// under `--upstream-max-connections` are free again before a slow client
/// has read the response.
pub const BUFFERED_RESPONSE_MAX: u64 = 64 * 1024;

/// A request's place among the upstream's requests in flight: held until
/// the response has been relayed (or read whole), then given back.
pub type InFlight = Option<tokio::sync::OwnedSemaphorePermit>;

/// Sends requests to the upstream; one per gateway, shared by all
/// connections and threads.
pub struct Forwarder {
    upstream: Upstream,
    /// `Host` for the upstream: its authority.
    host: Option<HeaderValue>,
    /// For HTTP/2 clients (whose requests multiplex on one connection), for
    /// the gateway's own requests (the docs' document), and for every
    /// request to an https upstream.
    shared: Shared,
    timeouts: Timeouts,
    /// `Host` and path rewriting for this upstream.
    rewrite: Rewrite,
    /// `X-Forwarded-Prefix` when a prefix is stripped.
    prefix_header: Option<HeaderValue>,
    /// Whether HTTP/1 clients' links may carry this upstream's requests:
    /// the per-thread idle pools hold plain connections to the default
    /// upstream only; the named upstreams of `policy.yaml` and https
    /// upstreams use the shared client.
    per_thread: bool,
    /// Counts the connections the links open.
    metrics: Arc<Metrics>,
    /// The places of requests in flight, when capped.
    in_flight: Option<Arc<tokio::sync::Semaphore>>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("upstream", &self.upstream)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// The forwarder of the default upstream (`--upstream`), whose
    /// connections HTTP/1 clients borrow from their thread's idle pool;
    /// connects to nothing yet.
    pub fn new(upstream: Upstream, timeouts: Timeouts, metrics: Arc<Metrics>) -> Forwarder {
        Forwarder::build(upstream, Rewrite::default(), timeouts, metrics, true)
    }

    /// The forwarder of an upstream named in `policy.yaml`; its requests all
    /// go through its own shared client, which lives as long as the policy
    /// that declared it and the requests that still hold that policy.
    pub fn named(
        upstream: Upstream,
        rewrite: Rewrite,
        timeouts: Timeouts,
        metrics: Arc<Metrics>,
    ) -> Forwarder {
        Forwarder::build(upstream, rewrite, timeouts, metrics, false)
    }

    fn build(
        upstream: Upstream,
        rewrite: Rewrite,
        timeouts: Timeouts,
        metrics: Arc<Metrics>,
        per_thread: bool,
    ) -> Forwarder {
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(1024);
        let shared = match &upstream.tls {
            None => {
                let mut connector = HttpConnector::new();
                connector.set_connect_timeout(Some(timeouts.connect));
                connector.set_nodelay(true);
                connector.set_keepalive(Some(IDLE_TIMEOUT));
                Shared::Plain(builder.build(connector))
            }
            // ALPN decides: one multiplexed connection when the upstream
            // picks h2, pooled HTTP/1.1 connections otherwise.
            Some(config) => Shared::Tls(builder.build(tls::TlsConnect {
                upstream: upstream.clone(),
                config: Arc::clone(config),
                timeout: timeouts.connect,
            })),
        };
        let per_thread = per_thread && !upstream.is_tls();
        Forwarder {
            host: HeaderValue::from_str(upstream.authority.as_str()).ok(),
            upstream,
            shared,
            timeouts,
            prefix_header: rewrite
                .strip_prefix
                .as_deref()
                .and_then(|p| HeaderValue::from_str(p).ok()),
            rewrite,
            per_thread,
            metrics,
            in_flight: timeouts
                .max_in_flight
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
        }
    }

    /// The borrower for one HTTP/1 client connection served on the thread
    /// whose idle pool is `pool` ([`IdlePool::start_on`]); the connection's
    /// requests go through it. Unused for an https upstream.
    pub fn link(&self, pool: Arc<IdlePool>) -> Link {
        Link::new(pool, Arc::clone(&self.metrics))
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// A place among the upstream's requests in flight, waiting for one at
    /// most the queue timeout (then [`Failure::Busy`]: nothing was sent).
    pub async fn admit(&self) -> Result<InFlight, UpstreamError> {
        let Some(places) = &self.in_flight else {
            return Ok(None);
        };
        if let Ok(permit) = Arc::clone(places).try_acquire_owned() {
            return Ok(Some(permit));
        }
        let queue = self.timeouts.queue;
        match tokio::time::timeout(queue, Arc::clone(places).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            // The semaphore is never closed.
            Ok(Err(closed)) => Err(UpstreamError::new(Failure::Busy, closed)),
            Err(_elapsed) => Err(UpstreamError::new(
                Failure::Busy,
                format!(
                    "all {} places of the upstream stayed in use for {} ms",
                    self.timeouts.max_in_flight.unwrap_or_default(),
                    queue.as_millis()
                ),
            )),
        }
    }

    /// Reads a response whose `Content-Length` is at most
    /// [`BUFFERED_RESPONSE_MAX`] whole, within the response timeout, so its
    /// connection is back in its pool before the client reads it; any other
    /// response is streamed as it arrives.
    pub async fn relay(
        &self,
        response: Response<ResponseBody>,
    ) -> Result<(Response<ProxyBody>, bool), UpstreamError> {
        let (parts, body) = response.into_parts();
        let small = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| crate::headers::content_length(v.as_bytes()))
            .is_some_and(|length| length <= BUFFERED_RESPONSE_MAX);
        if !small {
            return Ok((
                Response::from_parts(parts, body::client_response_body(body)),
                false,
            ));
        }
        let limit = self.timeouts.response;
        let bytes = match tokio::time::timeout(limit, body.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) => return Err(UpstreamError::new(Failure::ResponseBody, e)),
            Err(_elapsed) => return Err(UpstreamError::timeout(limit)),
        };
        Ok((Response::from_parts(parts, body::full(bytes)), true))
    }

    /// Sends `req` — its URI the origin-form target, its headers final but
    /// for `Host` (the client's, or none) and the prefix — and waits for the
    /// response headers.
    ///
    /// An HTTP/1 client's request to a plain upstream goes through `link`,
    /// its connection's borrower from the serving thread's idle pool; an
    /// HTTP/2 client's (or one without a link, or any to an https upstream)
    /// through the shared client. A plain upstream always gets HTTP/1.1; an
    /// https one HTTP/2 when it chose `h2` by ALPN. After a timeout or a
    /// failure the link's connection is closed: what is left on it belongs
    /// to no one.
    pub async fn send(
        &self,
        mut req: Request<ProxyBody>,
        link: Option<&Link>,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        if self.rewrite.host == HostHeader::Upstream
            && let Some(host) = &self.host
        {
            req.headers_mut().insert(header::HOST, host.clone());
        }
        if let (Some(prefix), Some(value)) = (&self.rewrite.strip_prefix, &self.prefix_header)
            && let Some(stripped) = strip_prefix(req.uri(), prefix)
        {
            *req.uri_mut() = Uri::from(stripped);
            req.headers_mut().insert(X_FORWARDED_PREFIX, value.clone());
        }
        let link = link.filter(|_| self.per_thread && req.version() <= Version::HTTP_11);
        *req.version_mut() = Version::HTTP_11;
        let limit = self.timeouts.response;
        match link {
            Some(link) => {
                // On a timeout the exchange is dropped, and its connection
                // with it: what is left on it belongs to no one.
                let send = link.send(req, &self.upstream, self.timeouts.connect);
                match tokio::time::timeout(limit, send).await {
                    Ok(result) => result.map(|r| r.map(ResponseBody::Own)),
                    Err(_elapsed) => Err(UpstreamError::timeout(limit)),
                }
            }
            None => {
                // The shared client wants the absolute form.
                let target = req
                    .uri()
                    .path_and_query()
                    .cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/"));
                *req.uri_mut() = Uri::from_parts({
                    let mut parts = http::uri::Parts::default();
                    parts.scheme = Some(self.upstream.scheme.clone());
                    parts.authority = Some(self.upstream.authority.clone());
                    parts.path_and_query = Some(target);
                    parts
                })
                .map_err(|e| UpstreamError::new(Failure::Protocol, e))?;
                match tokio::time::timeout(limit, self.shared.request(req)).await {
                    Ok(result) => result
                        .map(|r| r.map(ResponseBody::Hyper))
                        .map_err(|e| UpstreamError::from_client(e, self.upstream.is_tls())),
                    Err(_elapsed) => Err(UpstreamError::timeout(limit)),
                }
            }
        }
    }

    /// The gateway's own `GET path` (the docs' document): its status and at
    /// most `max_bytes` of its body, all within the response timeout.
    pub async fn get(
        &self,
        path: &'static str,
        accept: HeaderValue,
        max_bytes: usize,
    ) -> Result<(StatusCode, Bytes), UpstreamError> {
        let mut request = Request::new(body::empty());
        *request.uri_mut() = Uri::from_static(path);
        request.headers_mut().insert(header::ACCEPT, accept);
        let limit = self.timeouts.response;
        let fetch = async {
            let response = self.send(request, None).await?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), max_bytes)
                .collect()
                .await
                .map_err(|e| UpstreamError::new(Failure::ResponseBody, e))?
                .to_bytes();
            Ok((status, bytes))
        };
        match tokio::time::timeout(limit, fetch).await {
            Ok(result) => result,
            Err(_elapsed) => Err(UpstreamError::timeout(limit)),
        }
    }

    /// Whether the upstream accepts a connection now (readiness): TCP, and
    /// for an https upstream the whole TLS handshake with its certificate
    /// checked, so a wrong `ca` shows here and not only on the first
    /// request. Owns what it needs, so probes can run side by side.
    pub fn probe(&self) -> impl Future<Output = Result<(), UpstreamError>> + Send + 'static {
        let upstream = self.upstream.clone();
        async move {
            match upstream.tls.clone() {
                None => upstream.connect(READY_TIMEOUT).await.map(drop),
                Some(config) => tls::TlsConnect {
                    upstream,
                    config,
                    timeout: READY_TIMEOUT,
                }
                .connect()
                .await
                .map(drop),
            }
        }
    }
}

/// An upstream response's body: read by the gateway's own HTTP/1.1 client
/// (an HTTP/1 client's request to the plain default upstream, `h1.rs`) or
/// by hyper's (everything else).
#[derive(Debug)]
pub enum ResponseBody {
    Own(h1::Body),
    Hyper(Incoming),
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = body::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, body::BoxError>>> {
        match self.get_mut() {
            ResponseBody::Own(own) => std::pin::Pin::new(own).poll_frame(cx),
            ResponseBody::Hyper(incoming) => std::pin::Pin::new(incoming)
                .poll_frame(cx)
                .map_err(body::BoxError::from),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Own(own) => own.is_end_stream(),
            ResponseBody::Hyper(incoming) => incoming.is_end_stream(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ResponseBody::Own(own) => own.size_hint(),
            ResponseBody::Hyper(incoming) => incoming.size_hint(),
        }
    }
}

/// The forwarder's shared hyper-util client, for a plain or an https
/// upstream.
enum Shared {
    Plain(Client<HttpConnector, ProxyBody>),
    Tls(Client<tls::TlsConnect, ProxyBody>),
}

impl Shared {
    async fn request(
        &self,
        req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        match self {
            Shared::Plain(client) => client.request(req).await,
            Shared::Tls(client) => client.request(req).await,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_pki;
#[cfg(test)]
mod tests;
