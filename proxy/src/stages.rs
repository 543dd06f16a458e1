//! The decision stages of a request, as functions that every decider calls:
//!
//! ```text
//! normalise → match_route → (needs_token ? authenticate : anonymous) → authorize
//! ```
//!
//! The gateway (`gateway.rs`) runs them on live requests, with the real
//! authenticator in between; `explain` and `test` (`cli/decide.rs`) run them
//! on a described request with an identity judged offline; the OpenAPI
//! document (`docs/openapi.rs`) and `check --openapi` ask [`match_route`]
//! which route decides each operation. A rule added to a stage is therefore
//! written once and seen by all of them.
//!
//! Where this module's job ends: it decides, it does no IO and holds no
//! state. Authentication (async, keys, cache) stays in `auth.rs`; asking
//! Microsoft Graph about a groups overage stays in `graph.rs` (the stage
//! only says when to: [`groups_to_resolve`]); rewriting headers and
//! forwarding stay in the gateway.

use std::sync::Arc;

use http::Method;
use http::uri::PathAndQuery;

use crate::error::GatewayError;
use crate::identity::Identity;
use crate::path;
use crate::policy::{Access, Denial, Overage, Policy, Route, RouteMatch};

/// The request target after [`normalise`]: the path that is matched, and
/// the target that is forwarded (the same path, the query kept).
#[derive(Debug, Clone)]
pub struct Target {
    /// The canonical path: what routes are matched against.
    pub path: String,
    /// What is forwarded upstream: the client's own target when its path was
    /// already canonical (the common case, a reference count), else rebuilt.
    pub forward: PathAndQuery,
}

/// Stage 1: the request target in origin form, normalised. What is matched
/// is what is forwarded.
pub fn normalise(path_and_query: Option<&PathAndQuery>) -> Result<Target, GatewayError> {
    let Some(path_and_query) = path_and_query else {
        return Err(GatewayError::BadTarget);
    };
    if !path_and_query.as_str().starts_with('/') {
        return Err(GatewayError::BadTarget);
    }
    let path = normalise_path(path_and_query.path())?;
    let forward = if path == path_and_query.path() {
        path_and_query.clone()
    } else {
        let rebuilt = match path_and_query.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        PathAndQuery::try_from(rebuilt).map_err(|_| GatewayError::BadTarget)?
    };
    Ok(Target { path, forward })
}

/// Stage 1 for a bare path (`explain`, `test`): the canonical form, or why
/// the gateway refuses it.
pub fn normalise_path(raw: &str) -> Result<String, GatewayError> {
    path::normalize(raw).map_err(GatewayError::BadPath)
}

/// Stage 2: the route that decides `method` on the canonical `path`; no
/// route for the path is 404, a route for the path but not the method 405.
pub fn match_route<'p>(
    policy: &'p Policy,
    method: &Method,
    path: &str,
) -> Result<&'p Route, GatewayError> {
    match policy.route_for(method, path) {
        RouteMatch::Found(route) => Ok(route),
        RouteMatch::MethodNotAllowed { allow } => Err(GatewayError::MethodNotAllowed { allow }),
        RouteMatch::NotFound => Err(GatewayError::NoRoute),
    }
}

/// Whether stage 3 runs: anonymous routes skip authentication (a token sent
/// to them is ignored and no identity is forwarded).
pub fn needs_token(route: &Route) -> bool {
    !matches!(route.access, Access::Anonymous)
}

/// Between stages 3 and 4: the groups to ask Microsoft Graph about before
/// [`authorize`], when the route has `groups`, the token a groups overage,
/// and nothing decided earlier (the audience and every condition before
/// `groups` hold). `None` — no Graph call — for every other request, at the
/// cost of one emptiness check on routes without `groups`.
pub fn groups_to_resolve<'r>(route: &'r Route, identity: &Identity) -> Option<&'r [String]> {
    if route.conditions.groups.is_empty() || !route.accepts_audience(identity) {
        return None;
    }
    route.groups_to_resolve(identity)
}

/// Stage 4: whether the authenticated `identity` satisfies the route. A
/// token issued for another API than the route's (`audiences:`, else the
/// gateway's own) is a 401 `invalid_token`, never shadowed: it is a token
/// problem, not a permission. Otherwise a refusal is a 403 with the route's
/// unmet requirement — except a missing authentication context for a client
/// that declared `cp1`, which is Microsoft's claims challenge (401) naming
/// `authorization_uri`, the authority's authorize endpoint. `overage` is
/// what Microsoft Graph said of an overage token's groups
/// ([`groups_to_resolve`]); [`Overage::NotAsked`] otherwise. On an
/// `enforce: shadow` route the refusal is returned as `Ok(Some(denial))`
/// instead: the request goes on, and the caller records what would have
/// denied it.
pub fn authorize(
    route: &Route,
    identity: &Identity,
    overage: &Overage,
    authorization_uri: &Arc<str>,
) -> Result<Option<Denial>, GatewayError> {
    if !route.accepts_audience(identity) {
        return Err(GatewayError::WrongAudience {
            route: route.name.clone(),
        });
    }
    match route.authorize(identity, overage) {
        Ok(()) => Ok(None),
        Err(denial) if route.shadow => Ok(Some(denial)),
        Err(denial) => Err(GatewayError::Denied(denial).challenge_at(authorization_uri)),
    }
}
