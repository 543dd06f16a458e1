//! The life of one request, as a few named stages:
//!
//! ```text
//! normalise path → match route → authenticate (skipped for anonymous routes)
//!     → authorize → rewrite headers → forward
//! ```
//!
//! Each stage either hands on or returns a [`GatewayError`]; nothing reaches
//! the upstream unless every stage before `forward` passed. The deciding
//! stages (normalise to authorize) are the functions of `stages.rs`, which
//! `explain`, `test` and the OpenAPI document call too. Connection
//! handling lives in `server.rs`; this module sees one request at a time.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, Uri};

use tracing::Instrument as _;

use crate::access::{self, RequestContext};
use crate::assertion::{self, Signer};
use crate::auth::Authenticator;
use crate::body::{self, BoxError, ProxyBody};
use crate::config::Limits;
use crate::docs::{Docs, DocsRequest};
use crate::error::GatewayError;
use crate::graph::{self, Graph};
use crate::headers::{self, StripRules};
use crate::identity::{Authenticated, Identity};
use crate::metrics::{Metrics, ReloadOutcome};
use crate::policy::{Overage, Policy, Route};
use crate::request_id::X_REQUEST_ID;
use crate::server::StreamGuard;
use crate::stages;
use crate::upstream::{Failure, Forwarder, Link, Timeouts, Upstream};

/// A compiled policy with what the header and forward stages derive from
/// it: a request holds one for its whole life, so its route and the
/// upstream that route names come from the same policy.
#[derive(Debug)]
pub struct ActivePolicy {
    pub policy: Policy,
    pub strip: StripRules,
    /// One per [`Policy::upstreams`], same order: dropped with the policy
    /// once the last request holding it has finished, so a reload drains
    /// the connections of a changed or removed upstream, it never cuts them.
    forwarders: Vec<Forwarder>,
}

impl ActivePolicy {
    pub fn new(policy: Policy, timeouts: Timeouts, metrics: &Arc<Metrics>) -> Self {
        let strip = StripRules::new(policy.identity_headers());
        let forwarders = policy
            .upstreams()
            .iter()
            .map(|decl| {
                let timeouts = Timeouts {
                    response: decl.timeout.unwrap_or(timeouts.response),
                    ..timeouts
                };
                let target = decl.target.clone();
                Forwarder::named(target, decl.rewrite.clone(), timeouts, Arc::clone(metrics))
            })
            .collect();
        ActivePolicy {
            policy,
            strip,
            forwarders,
        }
    }

    /// The named upstreams' forwarders, with their names.
    pub fn forwarders(&self) -> impl Iterator<Item = (&str, &Forwarder)> {
        self.policy
            .upstreams()
            .iter()
            .map(|decl| decl.name.as_str())
            .zip(&self.forwarders)
    }

    /// Where `route` sends: its named upstream, else `default`.
    fn forwarder_for<'a>(&'a self, route: &Route, default: &'a Forwarder) -> &'a Forwarder {
        route
            .upstream
            .and_then(|i| self.forwarders.get(i))
            .unwrap_or(default)
    }
}

/// Everything a request needs, shared by all connections.
pub struct Gateway {
    /// Replaced as a whole on reload: a request holds one `Arc` from start to
    /// end, so it sees either the old policy or the new one, never a mix.
    policy: RwLock<Arc<ActivePolicy>>,
    auth: Arc<Authenticator>,
    /// The default upstream's forwarder (`upstream.rs`); the policy's named
    /// upstreams have theirs in [`ActivePolicy`].
    forwarder: Forwarder,
    /// The forwarders' timeouts unless an upstream sets its own.
    timeouts: Timeouts,
    limits: Limits,
    tls: bool,
    /// Counters for `/metrics` and the status page.
    metrics: Arc<Metrics>,
    /// Swagger UI and the secured `/openapi.json`, answered after authorize.
    docs: Option<Docs>,
    /// Signs the identity assertion and serves its JWKS; `None` when off.
    assertion: Option<Arc<Signer>>,
    /// Microsoft Graph, for tokens with a groups overage on routes with
    /// `groups:`; `None` without `--graph-client-id`.
    graph: Option<Arc<Graph>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("forwarder", &self.forwarder)
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
        let metrics = Arc::new(Metrics::new(Arc::clone(&auth)));
        auth.set_route_audiences(policy.route_audiences());
        let timeouts = Timeouts {
            connect: limits.upstream_connect_timeout,
            response: limits.upstream_timeout,
            max_in_flight: limits.upstream_max_connections,
            queue: limits.upstream_queue_timeout,
        };
        Gateway {
            policy: RwLock::new(Arc::new(ActivePolicy::new(policy, timeouts, &metrics))),
            forwarder: Forwarder::new(upstream, timeouts, Arc::clone(&metrics)),
            timeouts,
            metrics,
            auth,
            limits,
            tls,
            docs: None,
            assertion: None,
            graph: None,
        }
    }

    /// Signs an identity assertion for every authorized token request and
    /// serves the JWKS at [`assertion::JWKS_PATH`] (`assertion.rs`).
    pub fn with_assertion(mut self, signer: Option<Arc<Signer>>) -> Self {
        self.assertion = signer;
        self
    }

    /// Resolves groups overages through Microsoft Graph (`graph.rs`).
    pub fn with_graph(mut self, graph: Option<Arc<Graph>>) -> Self {
        if let Some(graph) = &graph {
            self.metrics.set_graph(Arc::clone(graph));
        }
        self.graph = graph;
        self
    }

    /// The Graph client, for tests and the decision endpoint.
    pub fn graph(&self) -> Option<&Arc<Graph>> {
        self.graph.as_ref()
    }

    /// Between authenticate and authorize: Graph's answer for a token with
    /// a groups overage when the route's groups decide
    /// ([`stages::groups_to_resolve`]); [`Overage::NotAsked`], without any
    /// work, for every other request.
    pub async fn overage(&self, route: &Route, caller: &Identity) -> Overage {
        match stages::groups_to_resolve(route, caller) {
            None => Overage::NotAsked,
            // Boxed: the lookup's state stays out of every request's future.
            Some(groups) => Box::pin(graph::resolve(self.graph.as_deref(), caller, groups)).await,
        }
    }

    /// The assertion signer, for the admin listener's JWKS and for tests.
    pub fn assertion(&self) -> Option<&Arc<Signer>> {
        self.assertion.as_ref()
    }

    /// The signed identity assertion for `caller` on `route` (`None` when
    /// assertions are off): `aud` is the route's named upstream's
    /// `assertion_audience` or name, else the default upstream's audience. The gateway forwards it; the decision
    /// endpoint hands it to the ingress.
    pub fn assertion_for(
        &self,
        policy: &Policy,
        route: &Route,
        caller: &Arc<Authenticated>,
    ) -> Option<HeaderValue> {
        let signer = self.assertion.as_ref()?;
        let audience = route
            .upstream
            .and_then(|i| policy.upstreams().get(i))
            .map_or(signer.default_audience(), |decl| {
                decl.assertion_audience.as_deref().unwrap_or(&decl.name)
            });
        signer.assertion(caller, &route.name, audience)
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
        // Requests still on the old policy may carry tokens for its route
        // audiences: accept both sets while the swap happens, then the new.
        let audiences = policy.route_audiences();
        let mut both = self.policy().policy.route_audiences();
        both.extend(audiences.iter().cloned());
        both.sort_unstable();
        both.dedup();
        self.auth.set_route_audiences(both);
        let next = Arc::new(ActivePolicy::new(policy, self.timeouts, &self.metrics));
        match self.policy.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        self.auth.set_route_audiences(audiences);
    }

    /// The token validator, for readiness and for tests.
    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    pub fn upstream(&self) -> &Upstream {
        self.forwarder.upstream()
    }

    /// Where every request to the upstream goes through.
    pub fn forwarder(&self) -> &Forwarder {
        &self.forwarder
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
    /// requests, and requests without one, use the shared pool. `stream`:
    /// an HTTP/2 request's place in its connection's open streams, held
    /// until the response body is done (`server/idle.rs`).
    pub async fn handle<B>(
        &self,
        req: Request<B>,
        client: SocketAddr,
        link: Option<&Link>,
        stream: Option<StreamGuard>,
    ) -> Response<ProxyBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let mut ctx = RequestContext::new(&req, client);
        ctx.stream = stream;
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
                if let GatewayError::Upstream(e) = &error
                    && e.kind() != Failure::Timeout
                {
                    span.in_scope(|| tracing::warn!(error = %e, "upstream request failed"));
                }
                error.into_response()
            }
        };
        access::finish(ctx, response, &self.metrics)
    }

    async fn process<B>(
        &self,
        req: Request<B>,
        client: SocketAddr,
        link: Option<&Link>,
        ctx: &mut RequestContext,
    ) -> Result<Response<ProxyBody>, GatewayError>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let active = self.policy();
        let policy = &active.policy;

        // Stage 0: refuse what must never be proxied.
        if upgrade_to_h2c(&req) {
            return Err(GatewayError::UpgradeRefused);
        }
        if let Some(problem) = ambiguous_host_or_framing(&req) {
            return Err(GatewayError::MalformedRequest(problem));
        }
        // The decision stages (`stages.rs`), shared with `explain`, `test`
        // and the OpenAPI document.
        let stages::Target {
            path,
            forward: target,
        } = stages::normalise(req.uri().path_and_query())?;
        ctx.set_path(&path);
        // The assertion's public key, before routing: a backend needs it
        // without a token, and it is the same for every caller.
        if let Some(signer) = &self.assertion
            && path == assertion::JWKS_PATH
            && (req.method() == http::Method::GET || req.method() == http::Method::HEAD)
        {
            return Ok(signer.jwks_response());
        }
        let route = stages::match_route(policy, req.method(), &path)?;
        ctx.route = Some(Arc::from(route.name.as_str()));
        let identity = if stages::needs_token(route) {
            let caller = self
                .auth
                .authenticate(req.headers())
                .await
                .map_err(GatewayError::Auth)?;
            ctx.caller = Some(Arc::clone(&caller));
            let overage = self.overage(route, &caller).await;
            if let Some(denial) =
                stages::authorize(route, &caller, &overage, self.auth.authorization_uri())?
            {
                ctx.shadow_denial = Some(denial.reason());
            }
            Some(caller)
        } else {
            None
        };

        // Docs paths are answered here once the policy has let them through.
        if let Some(docs) = &self.docs {
            match docs.classify(req.method(), &path) {
                Some(DocsRequest::Static) => return Ok(docs.static_response(&path, policy)),
                Some(DocsRequest::OpenApi) => {
                    return docs.openapi_response(&self.forwarder, policy).await;
                }
                None => {}
            }
        }

        // A declared length over the limit is refused before anything is sent.
        let body_limit = route.max_body_bytes.unwrap_or(self.limits.max_body_bytes);
        if let Some(length) = content_length(&req)
            && length > body_limit
        {
            return Err(GatewayError::BodyTooLarge { limit: body_limit });
        }

        // Stage 5: rewrite headers — strip, then set.
        let (mut parts, body) = req.into_parts();
        // Grown at most once here rather than by each header added; the
        // gateway's own server makes the map with this room already.
        parts.headers.reserve(ADDED_HEADERS);
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
        if !parts.headers.contains_key(header::HOST)
            && let Some(host) = &original_host
        {
            // An HTTP/2 client's `:authority`, for an upstream that wants
            // the client's `Host` (`host: client`).
            parts.headers.insert(header::HOST, host.clone());
        }
        headers::set_forwarded(&mut parts.headers, client, self.tls, original_host);
        if let Some(caller) = &identity {
            headers::set_identity(
                &mut parts.headers,
                policy.identity_headers(),
                &caller.header_values,
            );
            if let Some(value) = self.assertion_for(policy, route, caller) {
                parts
                    .headers
                    .insert(policy.identity_headers().assertion.clone(), value);
            }
        }
        parts.headers.insert(X_REQUEST_ID, ctx.id.header_value());
        // Origin-form; `Host`, the URI form and the version are the forwarder's.
        parts.uri = Uri::from(target);
        let upstream_req =
            Request::from_parts(parts, body::upstream_request_body(body, body_limit));

        // Stage 6: forward.
        let forwarder = active.forwarder_for(route, &self.forwarder);
        self.forward(forwarder, upstream_req, link, body_limit, ctx)
            .await
    }

    /// Stage 6: sends the request through the forwarder and hands the
    /// response back with its hop-by-hop headers removed.
    async fn forward(
        &self,
        forwarder: &Forwarder,
        req: Request<ProxyBody>,
        link: Option<&Link>,
        body_limit: u64,
        ctx: &mut RequestContext,
    ) -> Result<Response<ProxyBody>, GatewayError> {
        let in_flight = forwarder.admit().await.map_err(GatewayError::Upstream)?;
        let sent = Instant::now();
        let result = forwarder.send(req, link).await;
        let result = match result {
            Ok(response) => forwarder.relay(response).await,
            Err(e) => Err(e),
        };
        ctx.upstream = Some(sent.elapsed());
        let (response, read_whole) = match result {
            Ok(relayed) => relayed,
            Err(e) if e.is_body_limit() => {
                return Err(GatewayError::BodyTooLarge { limit: body_limit });
            }
            Err(e) => return Err(GatewayError::Upstream(e)),
        };
        // A response read whole gives its place back now; a streamed one
        // when the client has it all (the access log's body drops `ctx`).
        if !read_whole {
            ctx.in_flight = in_flight;
        }
        let (mut parts, body) = response.into_parts();
        headers::strip_response(&mut parts.headers);
        Ok(Response::from_parts(parts, body))
    }
}

/// The most headers the gateway adds to a request before forwarding it:
/// `X-Forwarded-For`, `-Proto` and `-Host`, seven identity headers, the
/// identity assertion and `X-Request-Id` (stage 5 above),
/// `X-Forwarded-Prefix` (`upstream.rs`). A request's header map is given
/// this much room once, instead of growing (reallocated and rehashed) two
/// or three times as they go in.
pub(crate) const ADDED_HEADERS: usize = 13;

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
    headers::content_length(req.headers().get(header::CONTENT_LENGTH)?.as_bytes())
}
