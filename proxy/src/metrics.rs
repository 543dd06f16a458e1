//! Prometheus metrics, served at `/metrics` on the admin listener in the
//! Prometheus text format (0.0.4), and the counts the status page shows.
//!
//! One [`Metrics`] per [`Gateway`](crate::gateway::Gateway), no global
//! registry: tests run many gateways in one process. Per request the gateway
//! calls [`Metrics::record`] once with its finished
//! [`RequestContext`]; every label value there is a static string or a route
//! name from the policy, so no client can grow the series count. What
//! authentication knows (key fetches, the token cache) and the policy hash
//! are read at scrape time by a collector instead of being copied per request.
//!
//! Every metric is listed in README "Operating".

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use http::{Method, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::access::{Decision, RequestContext};
use crate::auth::Authenticator;
use crate::body::ProxyBody;
use crate::graph::Graph;
use crate::upstream::Failure;

/// Every reason a request can be denied, as the access log and
/// `authz_proxy_denials_total` spell them. Fixed: README "Operating" lists
/// them, and a test checks that every error maps into this list.
pub const DENIAL_REASONS: &[&str] = &[
    "bad_path",
    "bad_target",
    "malformed_request",
    "upgrade_refused",
    "no_original_request",
    "no_route",
    "method_not_allowed",
    "missing_token",
    "invalid_request",
    "malformed_token",
    "graph_token",
    "disallowed_algorithm",
    "unknown_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "wrong_issuer",
    "wrong_tenant",
    "missing_claim",
    "invalid_claim",
    "no_permissions",
    "keys_unavailable",
    "missing_scope",
    "missing_role",
    "wrong_app",
    "wrong_tenant_for_route",
    "wrong_caller_type",
    "guest_denied",
    "missing_group",
    "groups_unresolved",
    "auth_context_required",
    "body_too_large",
];

/// How many denials the status page keeps.
pub const RECENT_DENIALS: usize = 50;

/// Gateway overhead: around ten microseconds with a cached token (release
/// build), tens to hundreds when a signature is verified, seconds only while a
/// key fetch is awaited.
const GATEWAY_BUCKETS: [f64; 14] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.05, 0.25, 2.5,
];
/// Upstream time to response headers, up to the 30 s default timeout.
const UPSTREAM_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: Option<Arc<str>>,
    method: &'static str,
    decision: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Option<Arc<str>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteDecision {
    route: Arc<str>,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// How a policy reload ended, for [`Metrics::record_reload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The new policy compiled and is now in use.
    Applied,
    /// The new policy was rejected; the previous one stays in use.
    Rejected,
}

impl ReloadOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ReloadOutcome::Applied => "applied",
            ReloadOutcome::Rejected => "rejected",
        }
    }
}

/// One denial as the status page lists it: never a token, never a claim set.
#[derive(Debug, Clone)]
pub struct DenialRecord {
    pub time: SystemTime,
    pub request_id: String,
    pub method: String,
    pub path: String,
    pub route: Option<Arc<str>>,
    pub reason: &'static str,
    pub user_id: Option<String>,
}

/// The policy in use, as the metrics and the status page name it.
#[derive(Debug, Clone, Default)]
struct PolicyInfo {
    /// SHA-256 of the policy file, lowercase hex.
    hash: String,
    loaded_at: Option<SystemTime>,
}

/// All of the gateway's metrics; owned by the `Gateway`.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    denials: Family<ReasonLabels, Counter>,
    /// Requests an `enforce: shadow` route allowed but would have denied.
    shadow_denials: Family<ReasonLabels, Counter>,
    gateway_seconds: HistogramFamily,
    upstream_seconds: HistogramFamily,
    upstream_errors: Family<KindLabels, Counter>,
    upstream_connections: Counter,
    reloads: Family<OutcomeLabels, Counter>,
    open_connections: Gauge,
    connections: Counter,
    /// Hits per route and decision, for the status page (not exported: the
    /// same numbers are sums over `authz_proxy_requests_total`).
    route_hits: Family<RouteDecision, Counter>,
    recent_denials: Mutex<VecDeque<DenialRecord>>,
    policy: Arc<Mutex<PolicyInfo>>,
    auth: Arc<Authenticator>,
    /// Microsoft Graph's counters, read at scrape time, once it is set.
    graph: Arc<OnceLock<Arc<Graph>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics for a unit test that counts without a gateway: their
    /// authenticator knows no keys and fetches none.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Metrics {
        let settings = crate::auth::AuthSettings::new(
            crate::auth::TenantMode::Single("aaaaaaaa-0000-4000-8000-000000000001".into()),
            vec!["api://x".into()],
            "http://127.0.0.1:1",
            "http://127.0.0.1:1/meta",
        );
        Metrics::new(Arc::new(
            Authenticator::new(settings).expect("authenticator"),
        ))
    }

    /// The metrics of one gateway; `auth` is read at scrape time.
    pub fn new(auth: Arc<Authenticator>) -> Metrics {
        let mut registry = Registry::with_prefix("authz_proxy");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by route, method, decision (allow, deny, error) and status",
            requests.clone(),
        );
        let denials = Family::<ReasonLabels, Counter>::default();
        for &reason in DENIAL_REASONS {
            drop(denials.get_or_create(&ReasonLabels { reason }));
        }
        registry.register("denials", "Requests denied, by reason", denials.clone());
        let shadow_denials = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "shadow_denials",
            "Requests an enforce: shadow route allowed but would have denied, by reason",
            shadow_denials.clone(),
        );
        let gateway_seconds: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(GATEWAY_BUCKETS));
        registry.register(
            "gateway_duration_seconds",
            "Time spent in the gateway itself until the response headers, upstream wait excluded",
            gateway_seconds.clone(),
        );
        let upstream_seconds: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(UPSTREAM_BUCKETS));
        registry.register(
            "upstream_duration_seconds",
            "Time from sending a request upstream to its response headers",
            upstream_seconds.clone(),
        );
        let upstream_errors = Family::<KindLabels, Counter>::default();
        for kind in Failure::ALL {
            drop(upstream_errors.get_or_create(&KindLabels {
                kind: kind.as_str(),
            }));
        }
        registry.register(
            "upstream_errors",
            "Failed forwards, by kind (connect, tls, timeout, protocol, closed_early, request_body, response_body)",
            upstream_errors.clone(),
        );
        let reloads = Family::<OutcomeLabels, Counter>::default();
        for outcome in [ReloadOutcome::Applied, ReloadOutcome::Rejected] {
            drop(reloads.get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            }));
        }
        registry.register(
            "policy_reloads",
            "Policy reloads, by outcome (applied, rejected)",
            reloads.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "open_connections",
            "Client connections open now",
            open_connections.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "connections",
            "Client connections accepted",
            connections.clone(),
        );
        let upstream_connections = Counter::default();
        registry.register(
            "upstream_connections",
            "Upstream connections opened for HTTP/1 clients' requests (a request reuses an idle one when it can)",
            upstream_connections.clone(),
        );
        let policy = Arc::new(Mutex::new(PolicyInfo::default()));
        let graph = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(ScrapeTime {
            auth: Arc::clone(&auth),
            policy: Arc::clone(&policy),
            graph: Arc::clone(&graph),
        }));
        Metrics {
            registry,
            requests,
            denials,
            shadow_denials,
            gateway_seconds,
            upstream_seconds,
            upstream_errors,
            reloads,
            open_connections,
            connections,
            upstream_connections,
            route_hits: Family::default(),
            recent_denials: Mutex::new(VecDeque::with_capacity(RECENT_DENIALS)),
            policy,
            auth,
            graph,
        }
    }

    /// Counts one request whose response headers are ready.
    pub fn record(&self, ctx: &RequestContext) {
        let decision = ctx.decision.as_str();
        self.requests
            .get_or_create(&RequestLabels {
                route: ctx.route.clone(),
                method: method_label(&ctx.method),
                decision,
                status: ctx.status,
            })
            .inc();
        let route = RouteLabels {
            route: ctx.route.clone(),
        };
        self.gateway_seconds
            .get_or_create(&route)
            .observe(ctx.gateway.as_secs_f64());
        if let Some(upstream) = ctx.upstream {
            self.upstream_seconds
                .get_or_create(&route)
                .observe(upstream.as_secs_f64());
        }
        if let Some(kind) = ctx.upstream_error {
            self.record_upstream_error(kind);
        }
        if let Some(name) = &ctx.route {
            self.route_hits
                .get_or_create(&RouteDecision {
                    route: Arc::clone(name),
                    decision,
                })
                .inc();
        }
        if let Some(reason) = ctx.shadow_denial {
            self.shadow_denials
                .get_or_create(&ReasonLabels { reason })
                .inc();
        }
        if ctx.decision == Decision::Deny {
            self.denials
                .get_or_create(&ReasonLabels { reason: ctx.reason })
                .inc();
            let mut recent = self
                .recent_denials
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if recent.len() == RECENT_DENIALS {
                recent.pop_front();
            }
            recent.push_back(DenialRecord {
                time: SystemTime::now(),
                request_id: ctx.id.as_str().to_owned(),
                method: ctx.method.as_str().chars().take(32).collect(),
                path: ctx.path.clone(),
                route: ctx.route.clone(),
                reason: ctx.reason,
                user_id: ctx.user_id().map(str::to_owned),
            });
        }
    }

    /// Counts a failed forward.
    pub fn record_upstream_error(&self, kind: Failure) {
        self.upstream_errors
            .get_or_create(&KindLabels {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// An upstream connection was opened (see `upstream.rs`).
    pub fn upstream_connection_opened(&self) {
        self.upstream_connections.inc();
    }

    /// Upstream connections opened so far.
    pub fn upstream_connections_opened(&self) -> u64 {
        self.upstream_connections.get()
    }

    /// A client connection opened; it counts as open until the guard drops.
    pub fn open_connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.inc();
        self.open_connections.inc();
        ConnectionGuard(Arc::clone(self))
    }

    /// Records a policy reload. On [`ReloadOutcome::Applied`], `hash` (see
    /// [`policy_hash`]) becomes the current policy's; a rejected policy's
    /// hash is not shown anywhere.
    pub fn record_reload(&self, outcome: ReloadOutcome, hash: &str) {
        self.reloads
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
        if outcome == ReloadOutcome::Applied {
            self.set_policy_hash(hash);
        }
    }

    /// Exports Microsoft Graph's counters (`authz_proxy_graph_*`) from now on.
    pub fn set_graph(&self, graph: Arc<Graph>) {
        let _ = self.graph.set(graph);
    }

    /// Names the policy in use (at start-up; reloads go through
    /// [`Metrics::record_reload`]).
    pub fn set_policy_hash(&self, hash: &str) {
        let mut policy = self.policy.lock().unwrap_or_else(|p| p.into_inner());
        policy.hash = hash.to_owned();
        policy.loaded_at = Some(SystemTime::now());
    }

    /// The current policy's hash (empty if never set) and when it was loaded.
    pub fn policy_hash(&self) -> (String, Option<SystemTime>) {
        let policy = self.policy.lock().unwrap_or_else(|p| p.into_inner());
        (policy.hash.clone(), policy.loaded_at)
    }

    /// Requests of `route` that got `decision` since start-up.
    pub fn route_hits(&self, route: &str, decision: Decision) -> u64 {
        self.route_hits
            .get(&RouteDecision {
                route: Arc::from(route),
                decision: decision.as_str(),
            })
            .map_or(0, |c| c.get())
    }

    /// Denials so far, per reason, in [`DENIAL_REASONS`] order.
    pub fn denials_by_reason(&self) -> Vec<(&'static str, u64)> {
        DENIAL_REASONS
            .iter()
            .map(|&reason| {
                let count = self
                    .denials
                    .get(&ReasonLabels { reason })
                    .map_or(0, |c| c.get());
                (reason, count)
            })
            .collect()
    }

    /// The most recent denials, newest first.
    pub fn recent_denials(&self) -> Vec<DenialRecord> {
        let recent = self
            .recent_denials
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().cloned().collect()
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> i64 {
        self.open_connections.get()
    }

    /// Policy reloads so far: (applied, rejected).
    pub fn reloads(&self) -> (u64, u64) {
        let count = |outcome: ReloadOutcome| {
            self.reloads
                .get(&OutcomeLabels {
                    outcome: outcome.as_str(),
                })
                .map_or(0, |c| c.get())
        };
        (
            count(ReloadOutcome::Applied),
            count(ReloadOutcome::Rejected),
        )
    }

    /// The whole registry in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        text
    }

    /// The authenticator whose stats the metrics read.
    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }
}

/// Marks a client connection as open while it lives.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<Metrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open_connections.dec();
    }
}

/// The `/metrics` response.
pub fn response(metrics: &Metrics) -> Response<ProxyBody> {
    use http_body_util::BodyExt as _;
    let body = http_body_util::Full::new(bytes::Bytes::from(metrics.encode()))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    response
}

/// SHA-256 of a policy file's bytes, lowercase hex: what `sha256sum` prints,
/// so an operator can tell which file is in force.
pub fn policy_hash(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest.as_ref() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// A bounded label for the method: the standard ones, else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// What is read, not counted, at scrape time: the authenticator's stats and
/// the policy hash.
#[derive(Debug)]
struct ScrapeTime {
    auth: Arc<Authenticator>,
    policy: Arc<Mutex<PolicyInfo>>,
    graph: Arc<OnceLock<Arc<Graph>>>,
}

impl Collector for ScrapeTime {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.auth.stats();
        let now = SystemTime::now();
        counter_family(
            &mut encoder,
            "jwks_fetches",
            "Signing-key fetches (discovery + JWKS), by outcome",
            "outcome",
            &[
                ("success", stats.fetches_succeeded),
                ("failure", stats.fetches_failed),
            ],
        )?;
        gauge(
            &mut encoder,
            "jwks_keys",
            "Signing keys in the current key set",
            stats.keys as f64,
        )?;
        if let Some(last) = stats.last_refresh {
            gauge(
                &mut encoder,
                "jwks_last_refresh_timestamp_seconds",
                "When the signing keys were last fetched successfully (Unix time)",
                unix_seconds(last),
            )?;
            gauge(
                &mut encoder,
                "jwks_seconds_since_last_refresh",
                "Seconds since the signing keys were last fetched successfully",
                now.duration_since(last).unwrap_or_default().as_secs_f64(),
            )?;
        }
        counter_family(
            &mut encoder,
            "token_cache_lookups",
            "Verified-token cache lookups, by result (hit, miss)",
            "result",
            &[("hit", stats.cache_hits), ("miss", stats.cache_misses)],
        )?;
        gauge(
            &mut encoder,
            "token_cache_size",
            "Verified tokens in the cache",
            stats.cached_tokens as f64,
        )?;
        if let Some(graph) = self.graph.get() {
            let graph = graph.stats();
            counter_family(
                &mut encoder,
                "graph_requests",
                "Requests to Microsoft Graph for groups overage, by kind (check_member_groups, app_token)",
                "kind",
                &[
                    ("check_member_groups", graph.calls),
                    ("app_token", graph.token_fetches),
                ],
            )?;
            counter_family(
                &mut encoder,
                "graph_lookups",
                "Groups overage lookups answered from the cache, or left unresolved (groups_unresolved)",
                "result",
                &[("cache", graph.cache_hits), ("unresolved", graph.failures)],
            )?;
        }
        let policy = self
            .policy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let info = ConstGauge::new(1i64);
        let mut family = encoder.encode_descriptor(
            "policy_info",
            "The policy in force: its SHA-256 in the hash label, value 1",
            None,
            info.metric_type(),
        )?;
        info.encode(family.encode_family(&[("hash", policy.hash.as_str())])?)?;
        if let Some(loaded) = policy.loaded_at {
            gauge(
                &mut encoder,
                "policy_loaded_timestamp_seconds",
                "When the policy in force was loaded (Unix time)",
                unix_seconds(loaded),
            )?;
        }
        Ok(())
    }
}

fn counter_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&'static str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for &(value, count) in values {
        ConstCounter::new(count).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

fn unix_seconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthError;
    use crate::error::GatewayError;
    use crate::path::PathError;
    use crate::policy::Denial;

    /// Every way the gateway can refuse a request has its reason in the
    /// documented list, so the list, the metric and README stay one set.
    #[test]
    fn every_denial_reason_is_in_the_fixed_list() {
        let auth = AuthError::one_of_each();
        let mut errors = vec![
            GatewayError::BadPath(PathError::EncodedSlash),
            GatewayError::BadTarget,
            GatewayError::MalformedRequest("x"),
            GatewayError::UpgradeRefused,
            GatewayError::NoOriginalRequest("x"),
            GatewayError::NoRoute,
            GatewayError::MethodNotAllowed {
                allow: "GET".into(),
            },
            GatewayError::Denied(Denial::MissingScope { required: vec![] }),
            GatewayError::Denied(Denial::MissingRole { required: vec![] }),
            GatewayError::Denied(Denial::WrongApp),
            GatewayError::Denied(Denial::WrongTenantForRoute),
            GatewayError::Denied(Denial::WrongCallerType {
                required: crate::identity::PrincipalKind::User,
            }),
            GatewayError::Denied(Denial::GuestDenied),
            GatewayError::Denied(Denial::MissingGroup),
            GatewayError::Denied(Denial::GroupsUnresolved { why: "x".into() }),
            GatewayError::Denied(Denial::AuthContextRequired {
                required: vec![],
                challenge: false,
            }),
            GatewayError::ClaimsChallenge {
                required: vec![],
                authorization_uri: Arc::from(""),
            },
            GatewayError::BodyTooLarge { limit: 1 },
        ];
        errors.extend(auth.into_iter().map(GatewayError::Auth));
        let mut reasons: Vec<_> = errors.iter().map(GatewayError::reason).collect();
        reasons.sort_unstable();
        reasons.dedup();
        let mut listed = DENIAL_REASONS.to_vec();
        listed.sort_unstable();
        assert_eq!(reasons, listed);
    }

    fn context(route: Option<&str>, decision: Decision, reason: &'static str) -> RequestContext {
        let req = http::Request::get("/todoitems").body(()).unwrap();
        let mut ctx = RequestContext::new(&req, ([127, 0, 0, 1], 9).into());
        ctx.route = route.map(Arc::from);
        ctx.decision = decision;
        ctx.reason = reason;
        ctx.status = if decision == Decision::Allow {
            200
        } else {
            401
        };
        ctx
    }

    #[test]
    fn shadow_denials_are_counted_apart_from_denials() {
        let m = Metrics::for_tests();
        let mut ctx = context(Some("reports"), Decision::Allow, "allowed");
        ctx.shadow_denial = Some("wrong_app");
        m.record(&ctx);
        let text = m.encode();
        for line in [
            r#"authz_proxy_shadow_denials_total{reason="wrong_app"} 1"#,
            r#"authz_proxy_requests_total{route="reports",method="GET",decision="allow",status="200"} 1"#,
            r#"authz_proxy_denials_total{reason="wrong_app"} 0"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn a_request_moves_its_counters_and_nothing_else() {
        let m = Metrics::for_tests();
        m.record(&context(Some("list"), Decision::Allow, "allowed"));
        m.record(&context(Some("list"), Decision::Deny, "expired"));
        m.record(&context(None, Decision::Deny, "no_route"));
        let text = m.encode();
        for line in [
            r#"authz_proxy_requests_total{route="list",method="GET",decision="allow",status="200"} 1"#,
            r#"authz_proxy_requests_total{route="list",method="GET",decision="deny",status="401"} 1"#,
            r#"authz_proxy_requests_total{route="",method="GET",decision="deny",status="401"} 1"#,
            r#"authz_proxy_denials_total{reason="expired"} 1"#,
            r#"authz_proxy_denials_total{reason="no_route"} 1"#,
            r#"authz_proxy_denials_total{reason="bad_signature"} 0"#,
            r#"authz_proxy_upstream_errors_total{kind="connect"} 0"#,
            r#"authz_proxy_gateway_duration_seconds_count{route="list"} 2"#,
            r#"authz_proxy_jwks_fetches_total{outcome="failure"} 0"#,
            r#"authz_proxy_token_cache_lookups_total{result="hit"} 0"#,
            r#"authz_proxy_policy_reloads_total{outcome="applied"} 0"#,
            "authz_proxy_open_connections 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert_eq!(m.route_hits("list", Decision::Allow), 1);
        assert_eq!(m.route_hits("list", Decision::Deny), 1);
        let recent = m.recent_denials();
        assert_eq!(
            recent.iter().map(|d| d.reason).collect::<Vec<_>>(),
            ["no_route", "expired"]
        );
    }

    #[test]
    fn recent_denials_are_bounded() {
        let m = Metrics::for_tests();
        for _ in 0..RECENT_DENIALS + 5 {
            m.record(&context(None, Decision::Deny, "no_route"));
        }
        assert_eq!(m.recent_denials().len(), RECENT_DENIALS);
    }

    #[test]
    fn an_applied_reload_replaces_the_policy_hash() {
        let m = Metrics::for_tests();
        m.set_policy_hash(&policy_hash(b"routes: []\n"));
        m.record_reload(ReloadOutcome::Rejected, "ignored");
        m.record_reload(ReloadOutcome::Applied, &policy_hash(b"v2"));
        let text = m.encode();
        let expected = format!(
            "authz_proxy_policy_info{{hash=\"{}\"}} 1",
            policy_hash(b"v2")
        );
        assert!(text.lines().any(|l| l == expected), "{text}");
        assert_eq!(m.reloads(), (1, 1));
    }

    #[test]
    fn connections_count_while_their_guard_lives() {
        let m = Arc::new(Metrics::for_tests());
        let guard = m.open_connection();
        assert_eq!(m.open_connections(), 1);
        drop(guard);
        assert_eq!(m.open_connections(), 0);
        assert!(
            m.encode()
                .lines()
                .any(|l| l == "authz_proxy_connections_total 1")
        );
    }

    #[test]
    fn policy_hash_is_sha256_hex() {
        assert_eq!(
            policy_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
