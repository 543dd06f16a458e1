//! The access log: one line per request, written when the response body has
//! been sent (or the client went away), from one per-request context that the
//! stages fill in as they go.
//!
//! [`RequestContext`] carries what the log line, the metrics and the status
//! page need: request id, client, method, normalised path, route, decision and
//! its fixed reason, who the caller is (object id, tenant, app — never a token,
//! never a claim set), status, and the gateway's and the upstream's time. The
//! gateway fills it in; [`finish`] counts it in the metrics when the response
//! headers are ready, stamps `X-Request-Id` on the response, and hands the
//! context to the response body, which writes the log line once it ends, with
//! the number of body bytes sent. Field by field in README "Operating".

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, SizeHint};

use crate::body::{BoxError, ProxyBody};
use crate::error::GatewayError;
use crate::identity::Authenticated;
use crate::metrics::Metrics;
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::server::StreamGuard;
use crate::upstream::Failure;

/// Longest path written to the log and kept for the status page; the rest is
/// cut (at a character boundary) and marked with `…`.
pub const MAX_LOGGED_PATH: usize = 1024;

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Authorised and forwarded; the status is the upstream's.
    Allow,
    /// Refused by the gateway, with one of the fixed denial reasons.
    Deny,
    /// Authorised, but forwarding failed (502 / 504).
    Error,
}

impl Decision {
    /// `allow`, `deny` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Error => "error",
        }
    }
}

/// Everything the access log line says about one request.
#[derive(Debug)]
pub struct RequestContext {
    pub id: RequestId,
    pub started: Instant,
    pub client: SocketAddr,
    pub method: Method,
    /// The normalised path once normalisation succeeded, the raw path before
    /// (and when it failed). Never the query: it may carry secrets.
    pub path: String,
    /// The route that decided, once one matched.
    pub route: Option<Arc<str>>,
    /// The caller of a validated token (shared with the token cache).
    pub caller: Option<Arc<Authenticated>>,
    pub decision: Decision,
    /// `allowed`, a denial reason, or `upstream_unavailable` /
    /// `upstream_timeout` (see [`GatewayError::reason`]).
    pub reason: &'static str,
    pub status: u16,
    /// Time in the gateway until the response headers, upstream excluded.
    pub gateway: Duration,
    /// Time from sending upstream to the response headers (to its end for a
    /// small response read whole), when forwarded.
    pub upstream: Option<Duration>,
    /// How forwarding failed, if it did.
    pub upstream_error: Option<Failure>,
    /// On an `enforce: shadow` route, the reason the request would have been
    /// denied: logged as `"enforce":"shadow"` with `would_deny`, counted in
    /// `authz_proxy_shadow_denials_total`, while the request is allowed.
    pub shadow_denial: Option<&'static str>,
    /// Answered by the decision endpoint (`decision.rs`) for an ingress,
    /// nothing forwarded: logged as `"mode":"decision"`, and `method` and
    /// `path` are those of the request the ingress described.
    pub decision_only: bool,
    /// An HTTP/2 request's stream, counted open until this context is
    /// dropped with the response body (`server/idle.rs`).
    pub stream: Option<StreamGuard>,
    /// The request's place among its upstream's requests in flight, while
    /// its response is streamed (`upstream.rs`, [`crate::upstream::InFlight`]).
    pub in_flight: crate::upstream::InFlight,
}

impl RequestContext {
    /// The context of a request that just arrived.
    pub fn new<B>(req: &Request<B>, client: SocketAddr) -> RequestContext {
        RequestContext {
            id: RequestId::from_headers(req.headers()),
            started: Instant::now(),
            client,
            method: req.method().clone(),
            path: bounded_path(req.uri().path()),
            route: None,
            caller: None,
            decision: Decision::Deny,
            reason: "",
            status: 0,
            gateway: Duration::ZERO,
            upstream: None,
            upstream_error: None,
            shadow_denial: None,
            decision_only: false,
            stream: None,
            in_flight: None,
        }
    }

    /// For the decision endpoint: the request being decided is the one the
    /// ingress described, not the question itself.
    pub fn describe(&mut self, method: Method, raw_path: &str) {
        self.method = method;
        self.path = bounded_path(raw_path);
    }

    /// `oid` of a validated token.
    pub fn user_id(&self) -> Option<&str> {
        self.caller.as_deref().map(|c| c.object_id.as_str())
    }

    /// `tid` of a validated token.
    pub fn tenant_id(&self) -> Option<&str> {
        self.caller.as_deref().map(|c| c.tenant_id.as_str())
    }

    /// `azp` / `appid` of a validated token: the calling client application.
    pub fn app_id(&self) -> Option<&str> {
        self.caller.as_deref().and_then(|c| c.app_id.as_deref())
    }

    /// Records the normalised path (if it differs from the raw one).
    pub fn set_path(&mut self, normalized: &str) {
        if self.path != normalized {
            self.path = bounded_path(normalized);
        }
    }

    /// Records that the request was forwarded and answered.
    pub fn allowed(&mut self) {
        self.decision = Decision::Allow;
        self.reason = "allowed";
    }

    /// Records why the gateway answered instead of the upstream.
    pub fn failed(&mut self, error: &GatewayError) {
        self.reason = error.reason();
        self.decision = match error {
            GatewayError::Upstream(e) => {
                self.upstream_error = Some(e.kind());
                Decision::Error
            }
            _ => Decision::Deny,
        };
    }
}

/// Completes a request whose response headers are ready: counts it, puts the
/// request id on the response, and arranges for the access log line to be
/// written when the body ends.
pub fn finish(
    mut ctx: RequestContext,
    response: Response<ProxyBody>,
    metrics: &Arc<Metrics>,
) -> Response<ProxyBody> {
    ctx.status = response.status().as_u16();
    let elapsed = ctx.started.elapsed();
    ctx.gateway = elapsed.saturating_sub(ctx.upstream.unwrap_or_default());
    metrics.record(&ctx);
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(X_REQUEST_ID, ctx.id.header_value());
    let metrics = ctx.upstream.is_some().then(|| Arc::clone(metrics));
    let body = LoggedBody {
        inner: body,
        bytes: 0,
        ctx: Some(ctx),
        metrics,
    };
    Response::from_parts(parts, body.boxed())
}

/// The response body, counting the bytes sent; writes the access log line
/// when it is dropped, that is when hyper has sent it all or the client has
/// gone away.
struct LoggedBody {
    inner: ProxyBody,
    bytes: u64,
    ctx: Option<RequestContext>,
    /// To count an upstream body that breaks off (forwarded responses only).
    metrics: Option<Arc<Metrics>>,
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(ctx) = &mut this.ctx
                    && ctx.upstream_error.is_none()
                {
                    ctx.upstream_error = Some(Failure::ResponseBody);
                    if let Some(metrics) = &this.metrics {
                        metrics.record_upstream_error(Failure::ResponseBody);
                    }
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            log(&ctx, self.bytes);
        }
    }
}

/// The access log line (target `access`, level INFO).
fn log(ctx: &RequestContext, bytes: u64) {
    tracing::info!(
        target: "access",
        request_id = ctx.id.as_str(),
        client = %ctx.client.ip(),
        method = ctx.method.as_str(),
        path = ctx.path.as_str(),
        route = ctx.route.as_deref(),
        decision = ctx.decision.as_str(),
        reason = ctx.reason,
        user_id = ctx.user_id(),
        tenant_id = ctx.tenant_id(),
        app_id = ctx.app_id(),
        status = ctx.status,
        bytes,
        gateway_us = micros(ctx.gateway),
        upstream_us = ctx.upstream.map(micros),
        total_us = micros(ctx.started.elapsed()),
        upstream_error = ctx.upstream_error.map(Failure::as_str),
        enforce = ctx.shadow_denial.map(|_| "shadow"),
        would_deny = ctx.shadow_denial,
        mode = ctx.decision_only.then_some("decision"),
    );
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// At most [`MAX_LOGGED_PATH`] bytes of `path`.
fn bounded_path(path: &str) -> String {
    if path.len() <= MAX_LOGGED_PATH {
        return path.to_owned();
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::UpstreamError;

    #[test]
    fn long_paths_are_cut_for_the_log() {
        let long = format!("/{}", "é".repeat(MAX_LOGGED_PATH));
        let cut = bounded_path(&long);
        assert!(cut.len() <= MAX_LOGGED_PATH + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(bounded_path("/todoitems"), "/todoitems");
    }

    #[test]
    fn upstream_failures_are_errors_and_everything_else_is_a_denial() {
        let req = Request::new(());
        let mut ctx = RequestContext::new(&req, ([127, 0, 0, 1], 1).into());
        let timeout = UpstreamError::timeout(Duration::from_secs(1));
        ctx.failed(&GatewayError::Upstream(timeout));
        assert_eq!(
            (ctx.decision, ctx.reason, ctx.upstream_error),
            (Decision::Error, "upstream_timeout", Some(Failure::Timeout))
        );
        ctx.failed(&GatewayError::NoRoute);
        assert_eq!((ctx.decision, ctx.reason), (Decision::Deny, "no_route"));
        ctx.allowed();
        assert_eq!((ctx.decision, ctx.reason), (Decision::Allow, "allowed"));
    }
}
