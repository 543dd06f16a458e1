//! The decision endpoint (`--decision-listen`): for teams that already run an
//! ingress (nginx `auth_request`, Caddy `forward_auth`, Traefik
//! `forwardAuth`, Envoy `ext_authz`) and want it to *ask* for a decision
//! instead of putting the gateway in the data path.
//!
//! ```text
//! describe (X-Original-* or X-Forwarded-*) → normalise → match route
//!     → (needs_token ? authenticate : anonymous) → authorize → answer
//! ```
//!
//! The request being decided is the one the ingress describes in headers:
//! nginx sends `X-Original-Method` and `X-Original-URI`; Caddy and Traefik
//! send `X-Forwarded-Method`, `X-Forwarded-Uri` and `X-Forwarded-Host`;
//! Envoy asks with the original method on `/envoy` + the original target.
//! Exactly one original method and one original URI, in one spelling, or the
//! answer is a 400 naming what is wrong. The question's other headers are
//! the client's (the ingress copies them), so `Authorization` is read there.
//! The deciding stages are `stages.rs`, the gateway's own: a rule is never
//! written twice.
//!
//! Answers: 200 with the identity headers the gateway would have forwarded
//! (every one of them, empty when the route is anonymous or the claim
//! absent), the signed identity assertion (`assertion.rs`) for the ingress
//! to copy upstream like the others, `X-Request-Id`, and [`X_AUTHZ_PATH`] (the normalised path the
//! decision was made on, for the ingress to forward instead of the
//! client's); every refusal is the gateway's own response
//! (`GatewayError::into_response`). nginx's `auth_request` accepts only 2xx,
//! 401 and 403 and turns anything else into a 500, so under `/nginx` (see
//! [`Dialect`]) every refusal comes as a 403 with the real status in
//! [`X_AUTHZ_STATUS`] and the body in [`X_AUTHZ_BODY`]; the shipped
//! `deploy/nginx/` configuration answers the client with them. Each answer
//! is counted in the metrics and logged like a gateway request, with the
//! gateway's status, marked `"mode":"decision"`.
//!
//! Where this module's job ends: it never reads a request body and never
//! forwards anything; the ingress does both, and strips the client's own
//! identity headers (README "Behind your own ingress").

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tracing::Instrument as _;

use crate::access::{self, RequestContext};
use crate::body::ProxyBody;
use crate::config::Limits;
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::headers;
use crate::stages;

mod describe;

pub use describe::{
    Described, X_FORWARDED_HOST, X_FORWARDED_METHOD, X_FORWARDED_URI, X_ORIGINAL_METHOD,
    X_ORIGINAL_URI, describe, describe_envoy,
};

/// On a 200: the normalised path the decision was made on. The ingress
/// forwards this path (with the client's query) rather than the client's
/// raw one, so what the backend acts on is what was decided, as through
/// the gateway.
pub const X_AUTHZ_PATH: HeaderName = HeaderName::from_static("x-authz-path");
/// Under `/nginx`: the status the gateway would have answered.
pub const X_AUTHZ_STATUS: HeaderName = HeaderName::from_static("x-authz-status");
/// Under `/nginx`: the JSON body the gateway would have answered (ASCII
/// only), since nginx discards an `auth_request` response's body.
pub const X_AUTHZ_BODY: HeaderName = HeaderName::from_static("x-authz-body");

/// How long in-flight decisions get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How the question is read and refusals are spelt for the asking ingress,
/// chosen by the path the ingress asks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Any path but those below: the request is described in headers, and
    /// refusals are the gateway's own statuses, headers and body (Caddy and
    /// Traefik pass a refusal to the client as it is).
    Plain,
    /// `/nginx` and below: `auth_request` passes 2xx, 401 and 403 only, so
    /// every refusal is a 403 carrying [`X_AUTHZ_STATUS`] and
    /// [`X_AUTHZ_BODY`], which the nginx configuration answers with (its
    /// other headers, `WWW-Authenticate` and `Allow`, are the gateway's).
    Nginx,
    /// `/envoy/...`: Envoy's `ext_authz` HTTP service asks with the original
    /// method and `path_prefix` + the original path and query, and no
    /// header naming them: the question's own method and the target after
    /// `/envoy` are the request to decide. Refusals as [`Dialect::Plain`].
    Envoy,
}

impl Dialect {
    /// The dialect of a question asked on `path`.
    pub fn of(path: &str) -> Dialect {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/nginx") {
            Dialect::Nginx
        } else if under("/envoy") {
            Dialect::Envoy
        } else {
            Dialect::Plain
        }
    }

    /// The answer to a refused request: the gateway's own response, and
    /// under `/nginx` the status and body nginx would otherwise lose.
    pub fn refusal(self, error: GatewayError) -> Response<ProxyBody> {
        let refusal = Refusal::of(&error);
        self.spell(&refusal, error.into_response())
    }

    /// `response`, the gateway's answer to `refusal`, as this ingress needs
    /// it: as it is, or under `/nginx` a 403 carrying the real status and
    /// body. Applied after the answer is counted and logged, so the metrics
    /// and the access log show the gateway's status (401, 404, …).
    fn spell(self, refusal: &Refusal, mut response: Response<ProxyBody>) -> Response<ProxyBody> {
        if self == Dialect::Nginx {
            // A 401 too: nginx would add the challenge to a 401 itself,
            // and then once more where the configuration adds it.
            *response.status_mut() = StatusCode::FORBIDDEN;
            let headers = response.headers_mut();
            headers.insert(X_AUTHZ_STATUS, HeaderValue::from(refusal.status.as_u16()));
            if let Ok(v) = HeaderValue::from_str(&ascii_json(&refusal.body)) {
                headers.insert(X_AUTHZ_BODY, v);
            }
        }
        response
    }
}

/// What the `/nginx` dialect carries of a refusal in headers.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    body: serde_json::Value,
}

impl Refusal {
    fn of(error: &GatewayError) -> Refusal {
        Refusal {
            status: error.status(),
            body: error.body(),
        }
    }
}

/// JSON with every non-ASCII character escaped (`\uXXXX`), so that it fits
/// in a header value.
fn ascii_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Answers one question; never fails, every refusal becomes a response.
/// Counted and logged like a gateway request (`access.rs`).
pub async fn handle(
    gateway: &Gateway,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Response<ProxyBody> {
    let dialect = Dialect::of(req.uri().path());
    let mut ctx = RequestContext::new(&req, client);
    ctx.decision_only = true;
    let span = tracing::info_span!("decision", request_id = ctx.id.as_str());
    // The body is never read: dropping the request discards it.
    let (parts, _body) = req.into_parts();
    let described = match dialect {
        Dialect::Envoy => describe_envoy(&parts.method, &parts.uri),
        Dialect::Plain | Dialect::Nginx => describe(&parts.headers),
    };
    let result = decide(gateway, described, &parts.headers, &mut ctx)
        .instrument(span)
        .await;
    let (response, refusal) = match result {
        Ok(response) => {
            ctx.allowed();
            (response, None)
        }
        Err(error) => {
            ctx.failed(&error);
            let refusal = Refusal::of(&error);
            (error.into_response(), Some(refusal))
        }
    };
    let response = access::finish(ctx, response, gateway.metrics());
    match refusal {
        Some(refusal) => dialect.spell(&refusal, response),
        None => response,
    }
}

/// The gateway's stages on the described request, up to authorize.
async fn decide(
    gateway: &Gateway,
    described: Result<Described, GatewayError>,
    headers: &HeaderMap,
    ctx: &mut RequestContext,
) -> Result<Response<ProxyBody>, GatewayError> {
    let described = described?;
    ctx.describe(described.method.clone(), described.target.path());
    let active = gateway.policy();
    let policy = &active.policy;

    let target = stages::normalise(described.target.path_and_query())?;
    ctx.set_path(&target.path);
    let route = stages::match_route(policy, &described.method, &target.path)?;
    ctx.route = Some(Arc::from(route.name.as_str()));

    // Every identity header, empty unless the caller has it: an ingress
    // that copies a header the answer lacks may copy something else
    // (Caddy 2.6 copies its placeholder's own text), never nothing.
    let mut response = Response::new(empty());
    for name in policy.identity_headers().all() {
        response
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(""));
    }
    if stages::needs_token(route) {
        let caller = gateway
            .authenticator()
            .authenticate(headers)
            .await
            .map_err(GatewayError::Auth)?;
        ctx.caller = Some(Arc::clone(&caller));
        let authorization_uri = gateway.authenticator().authorization_uri();
        let overage = gateway.overage(route, &caller).await;
        if let Some(denial) = stages::authorize(route, &caller, &overage, authorization_uri)? {
            ctx.shadow_denial = Some(denial.reason());
        }
        headers::set_identity(
            response.headers_mut(),
            policy.identity_headers(),
            &caller.header_values,
        );
        if let Some(value) = gateway.assertion_for(policy, route, &caller) {
            response
                .headers_mut()
                .insert(policy.identity_headers().assertion.clone(), value);
        }
    }
    // The canonical path is visible ASCII (`path.rs`).
    if let Ok(path) = HeaderValue::from_str(&target.path) {
        response.headers_mut().insert(X_AUTHZ_PATH, path);
    }
    Ok(response)
}

fn empty() -> ProxyBody {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// The decision endpoint's accept loop: HTTP/1 and HTTP/2 with the
/// gateway's header limits and connection cap, until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::server::ServeError> {
    let builder = crate::server::http_builder(&limits);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let Some((permit, stream, remote)) =
            crate::server::next_connection(&listener, &slots, &mut shutdown, "decision").await
        else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let requested = Arc::new(Notify::new());
        let service = service_fn({
            let gateway = gateway.clone();
            let requested = requested.clone();
            move |req: Request<Incoming>| {
                requested.notify_one();
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(handle(&gateway, req, remote).await) }
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let result =
                crate::server::first_request_within(header_read_timeout, &requested, conn).await;
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "decision connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
    Ok(())
}

#[cfg(test)]
mod tests;
