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

use crate::auth::Authenticator;
use crate::body::{self, ProxyBody};
use crate::config::{Limits, Upstream};
use crate::docs::{Docs, DocsRequest};
use crate::error::GatewayError;
use crate::headers::{self, StripRules};
use crate::path;
use crate::policy::{Access, Policy, RouteMatch};

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
    limits: Limits,
    tls: bool,
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

/// What the access log line says about a request.
#[derive(Debug, Default)]
struct Outcome {
    route: Option<String>,
    user: Option<String>,
    tenant: Option<String>,
    reason: &'static str,
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
            auth,
            client,
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

    /// Handles one request; never fails, every error becomes a response.
    pub async fn handle(&self, req: Request<Incoming>, client: SocketAddr) -> Response<ProxyBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let raw_path = req.uri().path().to_owned();
        let mut outcome = Outcome::default();
        let response = match self.process(req, client, &mut outcome).await {
            Ok(response) => {
                outcome.reason = "allowed";
                response
            }
            Err(error) => {
                outcome.reason = error.reason();
                if let GatewayError::UpstreamUnavailable(source) = &error {
                    tracing::warn!(error = %source, "upstream request failed");
                }
                error.into_response()
            }
        };
        tracing::info!(
            target: "access",
            client = %client.ip(),
            method = %method,
            path = %raw_path,
            route = outcome.route.as_deref().unwrap_or("-"),
            decision = if outcome.reason == "allowed" { "allow" } else { "deny" },
            reason = outcome.reason,
            user = outcome.user.as_deref().unwrap_or("-"),
            tenant = outcome.tenant.as_deref().unwrap_or("-"),
            status = response.status().as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
        );
        response
    }

    async fn process(
        &self,
        req: Request<Incoming>,
        client: SocketAddr,
        outcome: &mut Outcome,
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
        let query = path_and_query.query().map(str::to_owned);

        // Stage 2: match the route.
        let route = match policy.route_for(req.method(), &path) {
            RouteMatch::Found(route) => route,
            RouteMatch::MethodNotAllowed { allow } => {
                return Err(GatewayError::MethodNotAllowed { allow });
            }
            RouteMatch::NotFound => return Err(GatewayError::NoRoute),
        };
        outcome.route = Some(route.name.clone());

        // Stages 3 and 4: authenticate and authorize.
        let identity = match &route.access {
            Access::Anonymous => None,
            Access::Token { .. } => {
                let identity = self
                    .auth
                    .authenticate(req.headers())
                    .await
                    .map_err(GatewayError::Auth)?;
                outcome.user = Some(identity.object_id.clone());
                outcome.tenant = Some(identity.tenant_id.clone());
                route.authorize(&identity).map_err(GatewayError::Denied)?;
                Some(identity)
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
        if let Some(identity) = &identity {
            headers::set_identity(&mut parts.headers, policy.identity_headers(), identity);
        }
        if let Ok(host) = HeaderValue::from_str(self.upstream.authority.as_str()) {
            parts.headers.insert(header::HOST, host);
        }
        let target = match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        parts.uri = Uri::builder()
            .scheme(self.upstream.scheme.clone())
            .authority(self.upstream.authority.clone())
            .path_and_query(PathAndQuery::try_from(target).map_err(|_| GatewayError::BadTarget)?)
            .build()
            .map_err(|_| GatewayError::BadTarget)?;
        // The upstream connection is HTTP/1.1 whatever the client spoke.
        parts.version = http::Version::HTTP_11;
        let upstream_req = Request::from_parts(
            parts,
            body::upstream_request_body(body, self.limits.max_body_bytes),
        );

        // Stage 6: forward.
        self.forward(upstream_req).await
    }

    async fn forward(&self, req: Request<ProxyBody>) -> Result<Response<ProxyBody>, GatewayError> {
        let response = match tokio::time::timeout(
            self.limits.upstream_timeout,
            self.client.request(req),
        )
        .await
        {
            Err(_elapsed) => return Err(GatewayError::UpstreamTimeout),
            Ok(Err(e)) => {
                if is_body_limit(&e) {
                    return Err(GatewayError::BodyTooLarge {
                        limit: self.limits.max_body_bytes,
                    });
                }
                return Err(GatewayError::UpstreamUnavailable(Box::new(e)));
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
