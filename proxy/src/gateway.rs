//! The life of one request, as a few named stages:
//!
//! ```text
//! normalise path → match route → authenticate (skipped for anonymous routes)
//!     → authorize → rewrite headers → forward
//! ```
//!
//! Each stage either hands on or returns a [`GatewayError`]; nothing reaches
//! the upstream unless every stage before `forward` passed. Connection
//! handling lives in `server.rs`; this module sees one request at a time.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use tracing::Instrument as _;

use crate::access::{self, RequestContext};
use crate::auth::Authenticator;
use crate::body::{self, BoxError, ProxyBody};
use crate::config::{Limits, Upstream};
use crate::docs::{Docs, DocsRequest};
use crate::error::GatewayError;
use crate::headers::{self, StripRules};
use crate::metrics::{Metrics, ReloadOutcome};
use crate::path;
use crate::policy::{Access, Policy, RouteMatch};
use crate::request_id::X_REQUEST_ID;
use crate::upstream::Link;

/// A compiled policy with what the header stage derives from it.
#[derive(Debug)]
pub struct ActivePolicy {
    pub policy: Policy,
    pub strip: StripRules,
}

impl ActivePolicy {
    pub fn new(policy: Policy) -> Self {
        let strip = StripRules::new(policy.identity_headers());
        ActivePolicy { policy, strip }
    }
}

/// Everything a request needs, shared by all connections.
pub struct Gateway {
    /// Replaced as a whole on reload: a request holds one `Arc` from start to
    /// end, so it sees either the old policy or the new one, never a mix.
    policy: RwLock<Arc<ActivePolicy>>,
    auth: Arc<Authenticator>,
    client: Client<HttpConnector, ProxyBody>,
    upstream: Upstream,
    /// `Host` for the upstream: its authority.
    upstream_host: Option<HeaderValue>,
    limits: Limits,
    tls: bool,
    /// Counters for `/metrics` and the status page.
    metrics: Arc<Metrics>,
    /// Swagger UI and the secured `/openapi.json`, answered after authorize.
    docs: Option<Docs>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(
        policy: Policy,
        auth: Arc<Authenticator>,
        upstream: Upstream,
        limits: Limits,
        tls: bool,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(limits.upstream_connect_timeout));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build(connector);
        Gateway {
            policy: RwLock::new(Arc::new(ActivePolicy::new(policy))),
            metrics: Arc::new(Metrics::new(Arc::clone(&auth))),
            auth,
            client,
            upstream_host: HeaderValue::from_str(upstream.authority.as_str()).ok(),
            upstream,
            limits,
            tls,
            docs: None,
        }
    }

    /// Serves the API docs (`docs.rs`) instead of forwarding their paths.
    pub fn with_docs(mut self, docs: Option<Docs>) -> Self {
        self.docs = docs;
        self
    }

    /// The policy requests start with from now on.
    pub fn policy(&self) -> Arc<ActivePolicy> {
        match self.policy.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps in a new policy atomically; requests already running keep theirs.
    pub fn replace_policy(&self, policy: Policy) {
        let next = Arc::new(ActivePolicy::new(policy));
        match self.policy.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// The token validator, for readiness and for tests.
    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The metrics behind `/metrics` and the status page.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// For policy reload: counts the attempt and, when applied, makes `hash`
    /// ([`crate::metrics::policy_hash`] of the file) the current policy's.
    pub fn record_reload(&self, outcome: ReloadOutcome, hash: &str) {
        self.metrics.record_reload(outcome, hash);
    }

    /// Handles one request; never fails, every error becomes a response.
    /// Its [`RequestContext`] is counted when the response headers are ready
    /// and logged when the body has been sent.
    ///
    /// `link` is how an HTTP/1 client connection borrows upstream
    /// connections from its thread's pool (see `upstream.rs`); HTTP/2
    /// requests, and requests without one, use the shared pool.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
        link: Option<&Link>,
    ) -> Response<ProxyBody> {
        let mut ctx = RequestContext::new(&req, client);
        let span = tracing::info_span!("request", request_id = ctx.id.as_str());
        let result = self
            .process(req, client, link, &mut ctx)
            .instrument(span.clone())
            .await;
        let response = match result {
            Ok(response) => {
                ctx.allowed();
                response
            }
            Err(error) => {
                ctx.failed(&error);
                if let GatewayError::UpstreamUnavailable(source) = &error {
                    span.in_scope(|| tracing::warn!(error = %source, "upstream request failed"));
                }
                error.into_response()
            }
        };
        access::finish(ctx, response, &self.metrics)
    }

    async fn process(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
        link: Option<&Link>,
        ctx: &mut RequestContext,
    ) -> Result<Response<ProxyBody>, GatewayError> {
        let active = self.policy();
        let policy = &active.policy;

        // Stage 0: refuse what must never be proxied.
        if upgrade_to_h2c(&req) {
            return Err(GatewayError::UpgradeRefused);
        }
        if let Some(problem) = ambiguous_host_or_framing(&req) {
            return Err(GatewayError::MalformedRequest(problem));
        }
        // Stage 1: normalise the path. What is matched is what is forwarded.
        let Some(path_and_query) = req.uri().path_and_query() else {
            return Err(GatewayError::BadTarget);
        };
        if !path_and_query.as_str().starts_with('/') {
            return Err(GatewayError::BadTarget);
        }
        let path = path::normalize(path_and_query.path()).map_err(GatewayError::BadPath)?;
        ctx.set_path(&path);
        // The request target as forwarded: the client's own when its path is
        // already normal (the common case, a reference count), else rebuilt.
        let target = if path == path_and_query.path() {
            path_and_query.clone()
        } else {
            let rebuilt = match path_and_query.query() {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            };
            PathAndQuery::try_from(rebuilt).map_err(|_| GatewayError::BadTarget)?
        };

        // Stage 2: match the route.
        let route = match policy.route_for(req.method(), &path) {
            RouteMatch::Found(route) => route,
            RouteMatch::MethodNotAllowed { allow } => {
                return Err(GatewayError::MethodNotAllowed { allow });
            }
            RouteMatch::NotFound => return Err(GatewayError::NoRoute),
        };
        ctx.route = Some(Arc::from(route.name.as_str()));

        // Stages 3 and 4: authenticate and authorize.
        let identity = match &route.access {
            Access::Anonymous => None,
            Access::Token { .. } => {
                let caller = self
                    .auth
                    .authenticate(req.headers())
                    .await
                    .map_err(GatewayError::Auth)?;
                ctx.caller = Some(Arc::clone(&caller));
                route.authorize(&caller).map_err(GatewayError::Denied)?;
                Some(caller)
            }
        };

        // Docs paths are answered here once the policy has let them through.
        if let Some(docs) = &self.docs {
            match docs.classify(req.method(), &path) {
                Some(DocsRequest::Static) => return Ok(docs.static_response(&path, policy)),
                Some(DocsRequest::OpenApi) => {
                    let timeout = self.limits.upstream_timeout;
                    return docs
                        .openapi_response(&self.client, &self.upstream, timeout, policy)
                        .await;
                }
                None => {}
            }
        }

        // A declared length over the limit is refused before anything is sent.
        if let Some(length) = content_length(&req)
            && length > self.limits.max_body_bytes
        {
            return Err(GatewayError::BodyTooLarge {
                limit: self.limits.max_body_bytes,
            });
        }

        // Stage 5: rewrite headers — strip, then set.
        let (mut parts, body) = req.into_parts();
        let original_host = parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        headers::strip_request(
            &mut parts.headers,
            &active.strip,
            route.forward_authorization,
        );
        headers::set_forwarded(&mut parts.headers, client, self.tls, original_host);
        if let Some(caller) = &identity {
            headers::set_identity(
                &mut parts.headers,
                policy.identity_headers(),
                &caller.header_values,
            );
        }
        if let Some(host) = &self.upstream_host {
            parts.headers.insert(header::HOST, host.clone());
        }
        parts.headers.insert(X_REQUEST_ID, ctx.id.header_value());
        // An HTTP/2 client's requests go through the shared pool, which
        // wants the absolute form; the link's connection sends the
        // origin-form as is.
        let link = link.filter(|_| parts.version <= http::Version::HTTP_11);
        parts.uri = if link.is_some() {
            Uri::from(target)
        } else {
            Uri::builder()
                .scheme(self.upstream.scheme.clone())
                .authority(self.upstream.authority.clone())
                .path_and_query(target)
                .build()
                .map_err(|_| GatewayError::BadTarget)?
        };
        // The upstream connection is HTTP/1.1 whatever the client spoke.
        parts.version = http::Version::HTTP_11;
        let upstream_req = Request::from_parts(
            parts,
            body::upstream_request_body(body, self.limits.max_body_bytes),
        );

        // Stage 6: forward.
        self.forward(upstream_req, link, ctx).await
    }

    async fn forward(
        &self,
        req: Request<ProxyBody>,
        link: Option<&Link>,
        ctx: &mut RequestContext,
    ) -> Result<Response<ProxyBody>, GatewayError> {
        let sent = Instant::now();
        let timeout = self.limits.upstream_timeout;
        let result = match link {
            Some(link) => {
                let send = link.send(req, &self.upstream, self.limits.upstream_connect_timeout);
                let result = tokio::time::timeout(timeout, send).await;
                if matches!(result, Err(_) | Ok(Err(_))) {
                    // Whatever is left on that connection belongs to no one.
                    link.reset();
                }
                result.map(|r| r.map_err(|e| (e.is_connect(), BoxError::from(e))))
            }
            None => tokio::time::timeout(timeout, self.client.request(req))
                .await
                .map(|r| r.map_err(|e| (e.is_connect(), BoxError::from(e)))),
        };
        ctx.upstream = Some(sent.elapsed());
        let response = match result {
            Err(_elapsed) => {
                ctx.upstream_error = Some("timeout");
                return Err(GatewayError::UpstreamTimeout);
            }
            Ok(Err((connect, e))) => {
                if is_body_limit(e.as_ref()) {
                    return Err(GatewayError::BodyTooLarge {
                        limit: self.limits.max_body_bytes,
                    });
                }
                ctx.upstream_error = Some(if connect { "connect" } else { "request" });
                return Err(GatewayError::UpstreamUnavailable(e));
            }
            Ok(Ok(response)) => response,
        };
        let (mut parts, body) = response.into_parts();
        headers::strip_response(&mut parts.headers);
        Ok(Response::from_parts(
            parts,
            body::client_response_body(body),
        ))
    }
}

/// `Upgrade: h2c` (RFC 7540 §3.2) would switch the connection to HTTP/2
/// behind the gateway's back: refused, as are other upgrades implicitly
/// (the `Upgrade` header is hop-by-hop and never forwarded).
fn upgrade_to_h2c<B>(req: &Request<B>) -> bool {
    req.headers().get_all(header::UPGRADE).iter().any(|v| {
        v.to_str()
            .map(|s| s.to_ascii_lowercase().contains("h2c"))
            .unwrap_or(true)
    })
}

/// What hyper accepts but a proxy should not pass on, because a server in
/// front or behind could read it differently: an HTTP/1.1 request without
/// exactly one `Host` (RFC 9112 §3.2 requires a 400), and transfer codings
/// other than a single `chunked` (`chunked, chunked`, `gzip, chunked`: §6.1
/// lets a server refuse them, and the gateway would forward the coded bytes
/// as if they were plain).
fn ambiguous_host_or_framing<B>(req: &Request<B>) -> Option<&'static str> {
    if req.version() == http::Version::HTTP_11
        && req.headers().get_all(header::HOST).iter().count() != 1
    {
        return Some("an HTTP/1.1 request needs exactly one Host header");
    }
    let mut codings = req
        .headers()
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim);
    match (codings.next(), codings.next()) {
        (None, _) => None,
        (Some(one), None) if one.eq_ignore_ascii_case("chunked") => None,
        _ => Some("only a single chunked transfer coding is supported"),
    }
}

fn content_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Whether a client error came from the request body exceeding its limit.
fn is_body_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}
