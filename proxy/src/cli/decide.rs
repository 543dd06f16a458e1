//! One request decided offline, by the gateway's own stage functions
//! (`stages.rs`): normalise the path, match the route, authenticate (here:
//! an identity judged by the auth module's claim rules), authorize. Failures
//! are [`GatewayError`]s, so the status, headers and body shown are what
//! `into_response` gives a client.

use std::fmt::Write as _;
use std::sync::Arc;

use http::{HeaderMap, Method};
use http_body_util::BodyExt as _;

use crate::auth::AuthError;
use crate::auth::offline::{OfflineSettings, inspect_claims};
use crate::error::GatewayError;
use crate::headers;
use crate::identity::Identity;
use crate::policy::{Access, Condition, Denial, Overage, Policy, Route};
use crate::stages;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No `Authorization` header.
    NoToken,
    /// A token the auth module accepted, reduced to its identity.
    Valid(Box<Identity>),
    /// A token the auth module refused.
    Invalid(AuthError),
}

/// How the gateway would treat a request.
#[derive(Debug)]
pub struct Decision<'p> {
    /// The normalised path: what is matched and forwarded.
    pub path: Option<String>,
    /// The route that decides, if any.
    pub route: Option<&'p Route>,
    /// `Ok`: forwarded to the upstream (with this identity, if any).
    pub result: Result<Option<Identity>, GatewayError>,
    /// Allowed by `enforce: shadow` although this would have denied it.
    pub shadow: Option<Denial>,
}

impl Decision<'_> {
    /// `allow`, or the status code the gateway answers with.
    pub fn outcome(&self) -> String {
        match &self.result {
            Ok(_) => "allow".to_owned(),
            Err(e) => e.status().as_u16().to_string(),
        }
    }
}

/// The `authorization_uri` of a claims challenge offline: the authorize
/// endpoint of `instance` (default: Entra's public cloud) for `tenant`
/// (default: `common`), as the gateway names its own.
pub fn offline_authorization_uri(instance: Option<&str>, tenant: Option<&str>) -> Arc<str> {
    let instance = instance
        .unwrap_or("https://login.microsoftonline.com")
        .trim_end_matches('/');
    let tenant = tenant.unwrap_or("common");
    Arc::from(format!("{instance}/{tenant}/oauth2/v2.0/authorize"))
}

/// Why an overage token's groups are unknown offline.
pub const OFFLINE_OVERAGE: &str =
    "explain and test do not ask Microsoft Graph (needs Graph; give the groups Graph would answer)";

/// What stands in for Microsoft Graph offline: for a token with a groups
/// overage on a route whose groups decide ([`stages::groups_to_resolve`]),
/// `graph_groups` are the groups Graph would answer (`explain
/// --groups-overage --groups …`, a case's `groups_overage` with `groups`);
/// without them the overage is unresolved, as in a gateway without Graph.
pub fn offline_overage(route: &Route, identity: &Identity, graph_groups: &[String]) -> Overage {
    let Some(wanted) = stages::groups_to_resolve(route, identity) else {
        return Overage::NotAsked;
    };
    if graph_groups.is_empty() {
        return Overage::Unresolved(OFFLINE_OVERAGE.to_owned());
    }
    Overage::Resolved {
        member: graph_groups
            .iter()
            .any(|g| wanted.iter().any(|w| w.eq_ignore_ascii_case(g))),
    }
}

/// Decides a request; a claims challenge names `authorization_uri`.
/// `graph_groups`: what Microsoft Graph would answer for an overage token
/// ([`offline_overage`]).
pub fn decide<'p>(
    policy: &'p Policy,
    method: &Method,
    raw_path: &str,
    caller: &Caller,
    graph_groups: &[String],
    authorization_uri: &Arc<str>,
) -> Decision<'p> {
    let mut decision = Decision {
        path: None,
        route: None,
        result: Ok(None),
        shadow: None,
    };
    let path = match stages::normalise_path(raw_path) {
        Ok(path) => path,
        Err(e) => {
            decision.result = Err(e);
            return decision;
        }
    };
    decision.path = Some(path.clone());
    let route = match stages::match_route(policy, method, &path) {
        Ok(route) => route,
        Err(e) => {
            decision.result = Err(e);
            return decision;
        }
    };
    decision.route = Some(route);
    decision.result = if stages::needs_token(route) {
        authenticate(caller).and_then(|identity| {
            let overage = offline_overage(route, identity, graph_groups);
            decision.shadow = stages::authorize(route, identity, &overage, authorization_uri)?;
            Ok(Some(identity.clone()))
        })
    } else {
        Ok(None)
    };
    decision
}

/// Stage 3 offline: the caller's identity, or the error the gateway's
/// authenticator gives for it.
fn authenticate(caller: &Caller) -> Result<&Identity, GatewayError> {
    match caller {
        Caller::NoToken => Err(GatewayError::Auth(AuthError::MissingToken)),
        Caller::Invalid(e) => Err(GatewayError::Auth(e.clone())),
        Caller::Valid(identity) => Ok(identity),
    }
}

/// What a route asks of the caller, in words.
pub fn requirement(route: &Route) -> String {
    match &route.access {
        Access::Anonymous => {
            "nothing (anonymous: no token needed, a token sent is ignored)".to_owned()
        }
        Access::Token { .. } => {
            let parts: Vec<String> = Condition::ALL
                .into_iter()
                .filter_map(|c| route.describe(c))
                .collect();
            let token = match &route.audiences {
                None => "a valid token".to_owned(),
                Some(list) => format!("a valid token for {}", list.join(" or ")),
            };
            if parts.is_empty() {
                token
            } else {
                format!("{token} with {}", parts.join(" and "))
            }
        }
    }
}

/// Each condition of the route judged on its own for `identity`, in the
/// order the gateway checks them, as `ok   <key> <requirement>` or
/// `FAIL <key> <requirement>: <why> (<reason>)` lines: the first FAIL is
/// the decision.
pub fn condition_lines(route: &Route, identity: &Identity, graph_groups: &[String]) -> Vec<String> {
    // Every condition is listed, so Graph's stand-in is asked whenever the
    // route has groups and the token an overage, even past a FAIL.
    let overage = match (route.conditions.groups.is_empty(), identity.groups_overage) {
        (false, true) if graph_groups.is_empty() => Overage::Unresolved(OFFLINE_OVERAGE.to_owned()),
        (false, true) => Overage::Resolved {
            member: graph_groups.iter().any(|g| {
                route
                    .conditions
                    .groups
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(g))
            }),
        },
        _ => Overage::NotAsked,
    };
    route
        .checks(identity, &overage)
        .map(|(condition, result)| {
            let wants = route.describe(condition).unwrap_or_default();
            match result {
                Ok(()) => format!("ok   {:<8} {wants}", condition.key()),
                Err(denial) => format!(
                    "FAIL {:<8} {wants}: {denial} ({})",
                    condition.key(),
                    denial.reason()
                ),
            }
        })
        .collect()
}

/// The response a client gets for `error`, as it goes on the wire: status
/// line, headers, blank line, body.
pub fn response_text(error: GatewayError) -> String {
    let response = error.into_response();
    let (parts, body) = response.into_parts();
    let body = tokio::runtime::Builder::new_current_thread()
        .build()
        .ok()
        .and_then(|rt| rt.block_on(body.collect()).ok())
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let mut text = format!(
        "HTTP/1.1 {} {}\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &parts.headers {
        let _ = writeln!(text, "{name}: {}", value.to_str().unwrap_or("<binary>"));
    }
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&body));
    text
}

/// The identity headers the backend would get, as `name: value` lines.
pub fn identity_headers(policy: &Policy, identity: &Identity) -> Vec<String> {
    let mut map = HeaderMap::new();
    headers::set_identity(
        &mut map,
        policy.identity_headers(),
        &headers::IdentityValues::render(identity),
    );
    map.iter()
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("<binary>")))
        .collect()
}

/// A caller described by hand (`explain --roles …`, a `test` case).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallerSpec<'a> {
    /// `roles`.
    pub roles: &'a [String],
    /// `scp`, joined with spaces.
    pub scopes: &'a [String],
    /// An app-only token (`idtyp: app`).
    pub app: bool,
    /// `tid` (and the `iss` made for it).
    pub tenant: Option<&'a str>,
    /// The calling client application: `azp`.
    pub client_app: Option<&'a str>,
    /// A B2B guest: `acct: 1`.
    pub guest: bool,
    /// `aud`; `None`: a token every route accepts (see [`caller_for`]).
    pub audience: Option<&'a str>,
    /// Satisfied authentication contexts: `acrs`.
    pub acrs: &'a [String],
    /// The client declares that it handles claims challenges: `xms_cc: ["cp1"]`.
    pub cp1: bool,
    /// Security-group object ids: `groups` (with `groups_overage`: what
    /// Microsoft Graph would answer instead, see [`offline_overage`]).
    pub groups: &'a [String],
    /// The token has a groups overage marker (`_claim_names`) instead of
    /// `groups`.
    pub groups_overage: bool,
}

/// The claims of the token `spec` describes.
pub fn claims_for(spec: &CallerSpec<'_>) -> serde_json::Value {
    let CallerSpec {
        roles,
        scopes,
        app,
        tenant,
        client_app,
        guest,
        audience,
        acrs,
        cp1,
        groups,
        groups_overage,
    } = *spec;
    let mut claims = serde_json::Map::new();
    if !roles.is_empty() {
        claims.insert("roles".into(), roles.into());
    }
    if !scopes.is_empty() {
        claims.insert("scp".into(), scopes.join(" ").into());
    }
    if app {
        claims.insert("idtyp".into(), "app".into());
    }
    if let Some(tenant) = tenant {
        claims.insert("tid".into(), tenant.into());
    }
    if let Some(client_app) = client_app {
        claims.insert("azp".into(), client_app.into());
    }
    if guest {
        claims.insert("acct".into(), 1.into());
    }
    if let Some(audience) = audience {
        claims.insert("aud".into(), audience.into());
    }
    if !acrs.is_empty() {
        claims.insert("acrs".into(), acrs.into());
    }
    if cp1 {
        claims.insert("xms_cc".into(), vec!["cp1"].into());
    }
    if groups_overage {
        // As Entra marks it in a JWT; the source is never called.
        claims.insert("_claim_names".into(), serde_json::json!({"groups": "src1"}));
        claims.insert(
            "_claim_sources".into(),
            serde_json::json!({"src1": {"endpoint": "https://graph.windows.net/common/users/me/getMemberObjects"}}),
        );
    } else if !groups.is_empty() {
        claims.insert("groups".into(), groups.into());
    }
    serde_json::Value::Object(claims)
}

/// The caller `spec` describes, judged by the claim rules as of `now`. With
/// no `audience` it holds a token for this API whatever the route: the
/// gateway's own audience and every route's `audiences:`, so that a
/// described caller is judged on its roles and conditions; give an
/// audience to see a token for another API refused.
pub fn caller_for(spec: &CallerSpec<'_>, policy: &Policy, now: u64) -> Caller {
    let claims = complete_claims(&claims_for(spec), now);
    let inspection = inspect_claims(&claims, &OfflineSettings::default(), now);
    match caller_from(&inspection.verdict) {
        Caller::Valid(mut identity) if spec.audience.is_none() => {
            identity.audiences.extend(policy.route_audiences());
            Caller::Valid(identity)
        }
        caller => caller,
    }
}

/// Fills in what a valid token always has (`exp` an hour from `now`, `tid`,
/// a v2 `iss` for it, `aud`, `oid`) where `claims` leaves it out, so a case
/// or an explanation can name only the claims it is about.
pub fn complete_claims(claims: &serde_json::Value, now: u64) -> serde_json::Value {
    let mut claims = claims.clone();
    if let Some(map) = claims.as_object_mut() {
        let tid = map
            .get("tid")
            .and_then(|t| t.as_str())
            .unwrap_or("00000000-0000-0000-0000-000000000000")
            .to_owned();
        let defaults = [
            ("exp", serde_json::Value::from(now + 3600)),
            ("tid", tid.clone().into()),
            (
                "iss",
                format!("https://login.microsoftonline.com/{tid}/v2.0").into(),
            ),
            ("aud", "api://authz-proxy".into()),
            ("oid", "00000000-0000-0000-0000-0000000000aa".into()),
        ];
        for (claim, value) in defaults {
            map.entry(claim).or_insert(value);
        }
    }
    claims
}

/// The caller a claim set makes, judged by the auth module's claim rules.
pub fn caller_from(verdict: &Result<Identity, AuthError>) -> Caller {
    match verdict {
        Ok(identity) => Caller::Valid(Box::new(identity.clone())),
        Err(e) => Caller::Invalid(e.clone()),
    }
}
