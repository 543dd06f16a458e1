//! One request decided offline, by the gateway's own stages: normalise the
//! path, match the route, authenticate (an identity judged by the auth
//! module's claim rules), authorize. Failures are [`GatewayError`]s, so the
//! status, headers and body shown are what `into_response` gives a client.

use std::fmt::Write as _;

use http::{HeaderMap, Method};
use http_body_util::BodyExt as _;

use crate::auth::AuthError;
use crate::error::GatewayError;
use crate::headers;
use crate::identity::Identity;
use crate::path;
use crate::policy::{Access, Policy, Route, RouteMatch};

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No `Authorization` header.
    NoToken,
    /// A token the auth module accepted, reduced to its identity.
    Valid(Identity),
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

pub fn decide<'p>(
    policy: &'p Policy,
    method: &Method,
    raw_path: &str,
    caller: &Caller,
) -> Decision<'p> {
    let mut decision = Decision {
        path: None,
        route: None,
        result: Ok(None),
    };
    let path = match path::normalize(raw_path) {
        Ok(path) => path,
        Err(e) => {
            decision.result = Err(GatewayError::BadPath(e));
            return decision;
        }
    };
    decision.path = Some(path.clone());
    let route = match policy.route_for(method, &path) {
        RouteMatch::Found(route) => route,
        RouteMatch::MethodNotAllowed { allow } => {
            decision.result = Err(GatewayError::MethodNotAllowed { allow });
            return decision;
        }
        RouteMatch::NotFound => {
            decision.result = Err(GatewayError::NoRoute);
            return decision;
        }
    };
    decision.route = Some(route);
    decision.result = match (&route.access, caller) {
        (Access::Anonymous, _) => Ok(None),
        (Access::Token { .. }, Caller::NoToken) => Err(GatewayError::Auth(AuthError::MissingToken)),
        (Access::Token { .. }, Caller::Invalid(e)) => Err(GatewayError::Auth(e.clone())),
        (Access::Token { .. }, Caller::Valid(identity)) => route
            .authorize(identity)
            .map(|()| Some(identity.clone()))
            .map_err(GatewayError::Denied),
    };
    decision
}

/// What a route asks of the caller, in words.
pub fn requirement(route: &Route) -> String {
    match &route.access {
        Access::Anonymous => {
            "nothing (anonymous: no token needed, a token sent is ignored)".to_owned()
        }
        Access::Token { roles, scopes } => {
            let any = |kind: &str, list: &[String]| match list {
                [one] => format!("{kind} {one}"),
                many => format!("one of the {kind}s {}", many.join(", ")),
            };
            let mut parts = Vec::new();
            if !scopes.is_empty() {
                parts.push(any("scope", scopes));
            }
            if !roles.is_empty() {
                parts.push(any("role", roles));
            }
            if parts.is_empty() {
                "a valid token".to_owned()
            } else {
                format!("a valid token with {}", parts.join(" and "))
            }
        }
    }
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

/// The claims of a token holding `roles` and `scopes` (an app-only token
/// when `app`), issued by `tenant`.
pub fn claims_for(
    roles: &[String],
    scopes: &[String],
    app: bool,
    tenant: Option<&str>,
) -> serde_json::Value {
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
    serde_json::Value::Object(claims)
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
        Ok(identity) => Caller::Valid(identity.clone()),
        Err(e) => Caller::Invalid(e.clone()),
    }
}
