//! Property tests (proptest) of the pure parts the gateway's safety rests on:
//!
//! - random policies × random requests decide exactly like a reference
//!   evaluator written here from the documented rules (`policy.yaml`'s
//!   comments), so the compiled `GlobSet` matcher, the first-match order,
//!   405 vs 404, the role/scope rules and the caller conditions (`apps`,
//!   `tenants`, `callers`, `guests`, `groups` with a groups overage decided
//!   by what Microsoft Graph answers (or fails closed when it cannot),
//!   `auth_context` with its claims challenge, `defaults:`), the per-route `audiences:` (a token for
//!   another API is a 401 `wrong_audience`), the route's `upstream:` and
//!   the path forwarded after its `strip_prefix` cannot drift from what is
//!   documented; the gateway's stage functions and `explain`/`test`'s
//!   `decide` agree on every case;
//! - random client header sets (any case, `_` `.` `-` variants, duplicates,
//!   named in `Connection`) never get a client value into an identity header
//!   through `strip_request` + `set_identity`;
//! - identity values round-trip through their header encoding;
//! - path normalisation is canonical and idempotent, and the route decided
//!   for a path is the route decided for its normal form.
//!
//! Case counts are moderate so the suite stays fast in CI; the fuzz targets
//! in `fuzz/` run the same bodies for longer.

use authz_proxy::cli::decide::{Caller, decide};
use authz_proxy::error::GatewayError;
use authz_proxy::headers::{IdentityValues, StripRules, set_identity, strip_request};
use authz_proxy::identity::{Identity, PrincipalKind};
use authz_proxy::path::normalize;
use authz_proxy::policy::{IdentityHeaders, Overage, Policy};
use authz_proxy::stages;
use authz_proxy::upstream::strip_prefix;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use std::sync::Arc;

// ---------------------------------------------------------------- policies

const METHODS: [&str; 5] = ["GET", "POST", "DELETE", "PUT", "PATCH"];
const ROLES: [&str; 3] = ["Admin", "User", "admin"];
const SCOPES: [&str; 3] = ["read", "write", "Read"];
const SEGMENTS: [&str; 4] = ["a", "b", "c", "x"];
/// Request path segments: those of the globs, one no glob names, and one
/// that only begins like a prefix (`/ab` is not under `strip_prefix: /a`).
const REQUEST_SEGMENTS: [&str; 5] = ["a", "b", "c", "x", "ab"];
/// `strip_prefix` values the generated upstreams declare.
const PREFIXES: [&str; 3] = ["/a", "/a/b", "/b"];
/// The `aud` the gateway accepts on every route (`--client-id`): a token
/// naming it has `default_audience`.
const GATEWAY_AUDIENCE: &str = "api://gateway";
/// What routes list in `audiences:`: other APIs' registrations.
const ROUTE_AUDIENCES: [&str; 3] = [
    "api://reports",
    "c0ffee00-0000-4000-8000-0000000000d4",
    "api://orders",
];
/// What tokens carry in `aud`: the gateway's, the routes' (one in another
/// case, which never matches: audiences compare exactly), and one nobody's.
const TOKEN_AUDIENCES: [&str; 6] = [
    GATEWAY_AUDIENCE,
    "api://reports",
    "c0ffee00-0000-4000-8000-0000000000d4",
    "api://orders",
    "API://REPORTS",
    "api://someone-else",
];
const APPS: [&str; 2] = [
    "c0ffee00-0000-4000-8000-0000000000a1",
    "C0FFEE00-0000-4000-8000-0000000000B2",
];
const TENANTS: [&str; 2] = [
    "aaaaaaaa-0000-4000-8000-000000000001",
    "bbbbbbbb-0000-4000-8000-000000000002",
];
const CALLERS: [Option<&str>; 3] = [None, Some("user"), Some("app")];
const GUESTS: [Option<&str>; 3] = [None, Some("allow"), Some("deny")];
const AUTH_CONTEXTS: [&str; 2] = ["c1", "c2"];
const GROUPS: [&str; 3] = [
    "6f1c0000-0000-4000-8000-000000000001",
    "6f1c0000-0000-4000-8000-000000000002",
    "6F1C0000-0000-4000-8000-000000000003",
];
/// What tokens list in `groups` (and Graph answers): the policies' in
/// another case too, and one no policy names.
const TOKEN_GROUPS: [&str; 4] = [
    "6f1c0000-0000-4000-8000-000000000001",
    "6F1C0000-0000-4000-8000-000000000002",
    "6f1c0000-0000-4000-8000-000000000003",
    "6f1c0000-0000-4000-8000-0000000000ff",
];
/// What tokens carry in `acrs`: one the policies never ask for too.
const ACRS: [&str; 3] = ["c1", "c2", "c3"];
const AUTHORIZE: &str = "https://login.example/common/oauth2/v2.0/authorize";

/// The caller conditions of a route or of `defaults:`; `None` = not written.
#[derive(Debug, Clone, Default)]
struct ConditionSpec {
    apps: Option<Vec<&'static str>>,
    tenants: Option<Vec<&'static str>>,
    callers: Option<&'static str>,
    guests: Option<&'static str>,
    groups: Option<Vec<&'static str>>,
    auth_context: Option<Vec<&'static str>>,
}

#[derive(Debug, Clone)]
struct RouteSpec {
    globs: Vec<Vec<&'static str>>,
    methods: Vec<&'static str>,
    anonymous: bool,
    roles: Vec<&'static str>,
    scopes: Vec<&'static str>,
    conditions: ConditionSpec,
    /// `enforce: shadow`.
    shadow: bool,
    /// `audiences:`; `None`: the gateway's own (token routes only).
    audiences: Option<Vec<&'static str>>,
    /// `upstream:`, an index into the generated [`UpstreamSpec`]s (taken
    /// modulo their number; ignored when none is declared).
    upstream: Option<usize>,
}

/// One entry of `upstreams:`, named `u<index>`.
#[derive(Debug, Clone)]
struct UpstreamSpec {
    strip_prefix: Option<&'static str>,
}

fn upstreams() -> impl Strategy<Value = Vec<UpstreamSpec>> {
    prop::collection::vec(
        proptest::option::of(proptest::sample::select(&PREFIXES[..]))
            .prop_map(|strip_prefix| UpstreamSpec { strip_prefix }),
        0..=3,
    )
}

fn conditions() -> impl Strategy<Value = ConditionSpec> {
    let list = |items: &'static [&'static str]| {
        prop_oneof![
            2 => Just(None),
            1 => proptest::sample::subsequence(items, 1..=items.len()).prop_map(Some),
        ]
    };
    (
        list(&APPS),
        list(&TENANTS),
        proptest::sample::select(&CALLERS[..]),
        proptest::sample::select(&GUESTS[..]),
        list(&GROUPS),
        list(&AUTH_CONTEXTS),
    )
        .prop_map(
            |(apps, tenants, callers, guests, groups, auth_context)| ConditionSpec {
                apps,
                tenants,
                callers,
                guests,
                groups,
                auth_context,
            },
        )
}

fn conditions_yaml(c: &ConditionSpec, indent: &str) -> String {
    let mut text = String::new();
    if let Some(apps) = &c.apps {
        text.push_str(&format!("{indent}apps: [{}]\n", apps.join(", ")));
    }
    if let Some(tenants) = &c.tenants {
        text.push_str(&format!("{indent}tenants: [{}]\n", tenants.join(", ")));
    }
    if let Some(callers) = c.callers {
        text.push_str(&format!("{indent}callers: [{callers}]\n"));
    }
    if let Some(guests) = c.guests {
        text.push_str(&format!("{indent}guests: {guests}\n"));
    }
    if let Some(ids) = &c.groups {
        text.push_str(&format!("{indent}groups: [{}]\n", ids.join(", ")));
    }
    if let Some(ids) = &c.auth_context {
        text.push_str(&format!("{indent}auth_context: [{}]\n", ids.join(", ")));
    }
    text
}

fn subset<T: Clone + std::fmt::Debug>(items: &'static [T]) -> impl Strategy<Value = Vec<T>> {
    proptest::sample::subsequence(items, 0..=items.len())
}

fn glob() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(&SEGMENTS[..3]),
            2 => Just("*"),
            1 => Just("**"),
        ],
        1..=3,
    )
}

fn route() -> impl Strategy<Value = RouteSpec> {
    (
        prop::collection::vec(glob(), 1..=2),
        proptest::sample::subsequence(&METHODS[..], 1..=3),
        any::<bool>(),
        subset(&ROLES),
        subset(&SCOPES),
        conditions(),
        any::<bool>(),
        (
            prop_oneof![
                2 => Just(None),
                1 => proptest::sample::subsequence(&ROUTE_AUDIENCES[..], 1..=2).prop_map(Some),
            ],
            proptest::option::of(0..3usize),
        ),
    )
        .prop_map(
            |(
                globs,
                methods,
                anonymous,
                roles,
                scopes,
                conditions,
                shadow,
                (audiences, upstream),
            )| RouteSpec {
                globs,
                methods,
                anonymous,
                roles: if anonymous { vec![] } else { roles },
                scopes: if anonymous { vec![] } else { scopes },
                conditions: if anonymous {
                    ConditionSpec::default()
                } else {
                    conditions
                },
                shadow: shadow && !anonymous,
                // `audiences` cannot be used with `allow: anonymous`.
                audiences: if anonymous { None } else { audiences },
                upstream,
            },
        )
}

/// The upstream a route sends to: `Some(index)` of a declared one, `None`
/// for the default upstream.
fn upstream_of(r: &RouteSpec, upstreams: &[UpstreamSpec]) -> Option<usize> {
    match (r.upstream, upstreams.len()) {
        (Some(_), 0) | (None, _) => None,
        (Some(i), n) => Some(i % n),
    }
}

fn policy_yaml(
    defaults: &ConditionSpec,
    upstreams: &[UpstreamSpec],
    routes: &[RouteSpec],
) -> String {
    let mut text = String::from("version: 1\n");
    if !upstreams.is_empty() {
        text.push_str("upstreams:\n");
        for (i, u) in upstreams.iter().enumerate() {
            text.push_str(&format!("  u{i}:\n    url: http://u{i}.internal:8080\n"));
            if let Some(prefix) = u.strip_prefix {
                text.push_str(&format!("    strip_prefix: {prefix}\n"));
            }
        }
    }
    let written = conditions_yaml(defaults, "  ");
    if !written.is_empty() {
        text.push_str("defaults:\n");
        text.push_str(&written);
    }
    text.push_str("routes:\n");
    for (i, r) in routes.iter().enumerate() {
        let paths: Vec<String> = r
            .globs
            .iter()
            .map(|g| format!("/{}", g.join("/")))
            .collect();
        text.push_str(&format!(
            "  - name: r{i}\n    paths: [{}]\n    methods: [{}]\n",
            paths.join(", "),
            r.methods.join(", ")
        ));
        if r.anonymous {
            text.push_str("    allow: anonymous\n");
        }
        if !r.roles.is_empty() {
            text.push_str(&format!("    roles: [{}]\n", r.roles.join(", ")));
        }
        if !r.scopes.is_empty() {
            text.push_str(&format!("    scopes: [{}]\n", r.scopes.join(", ")));
        }
        text.push_str(&conditions_yaml(&r.conditions, "    "));
        if r.shadow {
            text.push_str("    enforce: shadow\n");
        }
        if let Some(audiences) = &r.audiences {
            text.push_str(&format!("    audiences: [{}]\n", audiences.join(", ")));
        }
        if let Some(u) = upstream_of(r, upstreams) {
            text.push_str(&format!("    upstream: u{u}\n"));
        }
    }
    text
}

/// The documented glob rules on whole segments: `*` is exactly one
/// (non-empty) segment; `**` is any number of segments, but at the end of
/// a glob at least one (`/a/**` is what is under `/a`, not `/a` itself) —
/// except that a catch-all (`/**`, `/**/**`) also matches the root `/`.
fn glob_matches(glob: &[&str], path: &[&str]) -> bool {
    if path.is_empty() && glob.iter().all(|g| *g == "**") {
        return true;
    }
    segments_match(glob, path)
}

fn segments_match(glob: &[&str], path: &[&str]) -> bool {
    match glob.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => {
            let min = usize::from(rest.is_empty());
            (min..=path.len()).any(|skip| segments_match(rest, &path[skip..]))
        }
        Some((&g, rest)) => match path.split_first() {
            Some((&p, path_rest)) => (g == "*" || g == p) && segments_match(rest, path_rest),
            None => false,
        },
    }
}

/// What the reference evaluator says: `allow rN`, `anonymous rN`,
/// `403 <reason>`, `401 wrong_audience`, `401 auth_context_required` (a
/// claims challenge),
/// `405 <Allow>`, `404`. Conditions in the documented order: scopes, roles,
/// apps, tenants, callers, guests, groups, auth_context; each caller
/// condition is the route's own when written, else `defaults:`'s. `graph`
/// is what Microsoft Graph answers for a token with a groups overage
/// (`None`: it cannot be asked).
fn reference(
    defaults: &ConditionSpec,
    routes: &[RouteSpec],
    method: &str,
    segments: &[&str],
    who: &Identity,
    graph: Option<&[&str]>,
) -> String {
    let mut allowed: Vec<&str> = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        if !r.globs.iter().any(|g| glob_matches(g, segments)) {
            continue;
        }
        if !r.methods.contains(&method) {
            allowed.extend(&r.methods);
            continue;
        }
        if r.anonymous {
            return format!("anonymous r{i}");
        }
        // The audience first, and never shadowed: a token for another API
        // is a token problem, not a permission.
        let audience_ok = match &r.audiences {
            None => who.audiences.iter().any(|a| a == GATEWAY_AUDIENCE),
            Some(listed) => who.audiences.iter().any(|a| listed.contains(&a.as_str())),
        };
        if !audience_ok {
            return "401 wrong_audience".into();
        }
        return match first_denial(defaults, r, who, graph) {
            None => format!("allow r{i}"),
            Some(reason) if r.shadow => format!("allow r{i} (shadow {reason})"),
            // Only a client declaring cp1 is sent the claims challenge.
            Some(reason @ "auth_context_required") if who.handles_claims_challenges => {
                format!("401 {reason}")
            }
            Some(reason) => format!("403 {reason}"),
        };
    }
    if allowed.is_empty() {
        return "404".into();
    }
    // `Allow` lists methods in a fixed order, each once.
    let order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let listed: Vec<&str> = order.into_iter().filter(|m| allowed.contains(m)).collect();
    format!("405 {}", listed.join(", "))
}

/// The first condition of `r` that `who` fails, in the documented order.
fn first_denial(
    defaults: &ConditionSpec,
    r: &RouteSpec,
    who: &Identity,
    graph: Option<&[&str]>,
) -> Option<&'static str> {
    let has_scope = who.kind == PrincipalKind::User
        && who.scopes.iter().any(|s| r.scopes.contains(&s.as_str()));
    if !r.scopes.is_empty() && !has_scope {
        return Some("missing_scope");
    }
    if !r.roles.is_empty() && !who.roles.iter().any(|h| r.roles.contains(&h.as_str())) {
        return Some("missing_role");
    }
    let c = &r.conditions;
    let apps = c.apps.as_ref().or(defaults.apps.as_ref());
    if let Some(apps) = apps {
        let ok = who
            .app_id
            .as_deref()
            .is_some_and(|id| apps.iter().any(|a| a.to_lowercase() == id.to_lowercase()));
        if !ok {
            return Some("wrong_app");
        }
    }
    let tenants = c.tenants.as_ref().or(defaults.tenants.as_ref());
    if let Some(tenants) = tenants
        && !tenants
            .iter()
            .any(|t| t.to_lowercase() == who.tenant_id.to_lowercase())
    {
        return Some("wrong_tenant_for_route");
    }
    match c.callers.or(defaults.callers) {
        Some("user") if who.kind != PrincipalKind::User => {
            return Some("wrong_caller_type");
        }
        Some("app") if who.kind != PrincipalKind::App => {
            return Some("wrong_caller_type");
        }
        _ => {}
    }
    if c.guests.or(defaults.guests) == Some("deny") && who.guest {
        return Some("guest_denied");
    }
    if let Some(ids) = c.groups.as_ref().or(defaults.groups.as_ref()) {
        let listed = |held: &[&str]| {
            held.iter()
                .any(|h| ids.iter().any(|g| g.to_lowercase() == h.to_lowercase()))
        };
        if who.groups_overage {
            match graph {
                None => return Some("groups_unresolved"),
                Some(answer) if !listed(answer) => return Some("missing_group"),
                Some(_) => {}
            }
        } else {
            let held: Vec<&str> = who.groups.iter().map(String::as_str).collect();
            if !listed(&held) {
                return Some("missing_group");
            }
        }
    }
    if let Some(ids) = c.auth_context.as_ref().or(defaults.auth_context.as_ref())
        && !who.auth_contexts.iter().any(|a| ids.contains(&a.as_str()))
    {
        return Some("auth_context_required");
    }
    None
}

/// What the gateway's stage functions decide (`stages.rs`), with Graph
/// answering `graph` (`None`: down) when the stages ask it.
fn actual(
    policy: &Policy,
    method: &str,
    path: &str,
    who: &Identity,
    graph: Option<&[&str]>,
) -> String {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let outcome = |e: GatewayError| match e {
        GatewayError::NoRoute => "404".to_owned(),
        GatewayError::MethodNotAllowed { allow } => format!("405 {allow}"),
        e @ (GatewayError::Denied(_)
        | GatewayError::ClaimsChallenge { .. }
        | GatewayError::WrongAudience { .. }) => {
            format!("{} {}", e.status().as_u16(), e.reason())
        }
        other => format!("unexpected {other:?}"),
    };
    let route = match stages::match_route(policy, &method, path) {
        Ok(route) => route,
        Err(e) => return outcome(e),
    };
    if !stages::needs_token(route) {
        return format!("anonymous {}", route.name);
    }
    let overage = match (stages::groups_to_resolve(route, who), graph) {
        (None, _) => Overage::NotAsked,
        (Some(_), None) => Overage::Unresolved("Microsoft Graph answered 503".into()),
        (Some(wanted), Some(answer)) => Overage::Resolved {
            member: answer
                .iter()
                .any(|a| wanted.iter().any(|w| w.eq_ignore_ascii_case(a))),
        },
    };
    // As the gateway does: a challengeable refusal names the authority.
    match stages::authorize(route, who, &overage, &Arc::from(AUTHORIZE)) {
        Ok(None) => format!("allow {}", route.name),
        Ok(Some(shadow)) => format!("allow {} (shadow {})", route.name, shadow.reason()),
        Err(e) => outcome(e),
    }
}

/// What `explain` and `test` decide (`cli/decide.rs`), in the same words:
/// `graph` is what a case says Graph would answer (`None`: nothing, which
/// leaves an overage unresolved offline).
fn offline(
    policy: &Policy,
    method: &str,
    path: &str,
    who: &Identity,
    graph: Option<&[&str]>,
) -> String {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let graph: Vec<String> = graph
        .unwrap_or_default()
        .iter()
        .map(|g| (*g).to_owned())
        .collect();
    let decision = decide(
        policy,
        &method,
        path,
        &Caller::Valid(Box::new(who.clone())),
        &graph,
        &Arc::from(AUTHORIZE),
    );
    match (decision.result, decision.route) {
        (Ok(None), Some(route)) => format!("anonymous {}", route.name),
        (Ok(Some(_)), Some(route)) => match decision.shadow {
            None => format!("allow {}", route.name),
            Some(d) => format!("allow {} (shadow {})", route.name, d.reason()),
        },
        (Err(GatewayError::NoRoute), _) => "404".into(),
        (Err(GatewayError::MethodNotAllowed { allow }), _) => format!("405 {allow}"),
        (
            Err(
                e @ (GatewayError::Denied(_)
                | GatewayError::ClaimsChallenge { .. }
                | GatewayError::WrongAudience { .. }),
            ),
            _,
        ) => format!("{} {}", e.status().as_u16(), e.reason()),
        (other, _) => format!("unexpected {other:?}"),
    }
}

/// Where the reference sends a request that a route matches, whoever
/// asks: `default <target>` or `u<N> <target>`, the target after the
/// upstream's `strip_prefix` (removed only on a segment boundary; the bare
/// prefix becomes `/`; the query kept); `None` when no route matches.
fn reference_destination(
    upstreams: &[UpstreamSpec],
    routes: &[RouteSpec],
    method: &str,
    segments: &[&str],
    trailing_slash: bool,
    query: bool,
) -> Option<String> {
    let r = routes.iter().find(|r| {
        r.globs.iter().any(|g| glob_matches(g, segments)) && r.methods.contains(&method)
    })?;
    let upstream = upstream_of(r, upstreams);
    let prefix: Vec<&str> = upstream
        .and_then(|u| upstreams[u].strip_prefix)
        .map(|p| p.split('/').skip(1).collect())
        .unwrap_or_default();
    let rest = match segments.strip_prefix(prefix.as_slice()) {
        Some(rest) if !prefix.is_empty() => rest,
        _ => segments,
    };
    let mut path = format!("/{}", rest.join("/"));
    if trailing_slash && !rest.is_empty() {
        path.push('/');
    }
    if query {
        path.push_str("?q=/a");
    }
    Some(match upstream {
        Some(u) => format!("u{u} {path}"),
        None => format!("default {path}"),
    })
}

/// Where the gateway sends it: the matched route's upstream, and the
/// normalised target as the forwarder rewrites it (`upstream::strip_prefix`,
/// or unchanged when the path is not under the prefix).
fn actual_destination(policy: &Policy, method: &str, target: &str) -> Option<String> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let target = stages::normalise(Some(&PathAndQuery::try_from(target).unwrap())).unwrap();
    let route = stages::match_route(policy, &method, &target.path).ok()?;
    let Some(index) = route.upstream else {
        return Some(format!("default {}", target.forward));
    };
    let decl = &policy.upstreams()[index];
    let forwarded = match &decl.rewrite.strip_prefix {
        Some(prefix) => {
            strip_prefix(&Uri::from(target.forward.clone()), prefix).unwrap_or(target.forward)
        }
        None => target.forward,
    };
    Some(format!("{} {forwarded}", decl.name))
}

/// A caller, and what Microsoft Graph answers of its groups (`None`: it
/// cannot be asked; never an empty answer, which a case cannot write).
fn identity() -> impl Strategy<Value = (Identity, Option<Vec<&'static str>>)> {
    (
        (
            subset(&TOKEN_GROUPS),
            any::<bool>(),
            proptest::option::of(proptest::sample::subsequence(
                &TOKEN_GROUPS[..],
                1..=TOKEN_GROUPS.len(),
            )),
        ),
        (any::<bool>(), subset(&ROLES), subset(&SCOPES)),
        (
            proptest::option::of(prop_oneof![
                proptest::sample::select(&APPS[..]).prop_map(str::to_owned),
                // The same client id in the other case: ids compare case-insensitively.
                proptest::sample::select(&APPS[..]).prop_map(|a| a.to_uppercase()),
                Just("dddddddd-0000-4000-8000-0000000000d4".to_owned()),
            ]),
            prop_oneof![
                proptest::sample::select(&TENANTS[..]).prop_map(str::to_owned),
                proptest::sample::select(&TENANTS[..]).prop_map(|t| t.to_uppercase()),
                Just("cccccccc-0000-4000-8000-000000000003".to_owned()),
            ],
            any::<bool>(),
        ),
        (subset(&ACRS), any::<bool>()),
        // Mostly the gateway's own audience, so the other conditions get
        // their turn; else any of the audiences, the gateway's included.
        prop_oneof![
            3 => Just(vec![GATEWAY_AUDIENCE]),
            2 => proptest::sample::subsequence(&TOKEN_AUDIENCES[..], 1..=2),
        ],
    )
        .prop_map(
            |(
                (groups, overage, graph),
                (app, roles, scopes),
                (app_id, tenant_id, guest),
                (acrs, cp1),
                aud,
            )| {
                (
                    Identity {
                        object_id: "oid".into(),
                        tenant_id,
                        kind: if app {
                            PrincipalKind::App
                        } else {
                            PrincipalKind::User
                        },
                        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                        // Only user tokens carry scopes, as claims.rs guarantees.
                        scopes: if app {
                            vec![]
                        } else {
                            scopes.iter().map(|s| (*s).to_owned()).collect()
                        },
                        name: None,
                        email: None,
                        app_id,
                        guest,
                        // As claims.rs decides it: whether a listed `aud` is one
                        // the gateway accepts on every route.
                        default_audience: aud.contains(&GATEWAY_AUDIENCE),
                        audiences: aud.iter().map(|a| (*a).to_owned()).collect(),
                        auth_contexts: acrs.iter().map(|a| (*a).to_owned()).collect(),
                        handles_claims_challenges: cp1,
                        // An overage token lists no groups (claims.rs).
                        groups: if overage {
                            vec![]
                        } else {
                            groups.iter().map(|g| g.to_lowercase()).collect()
                        },
                        groups_overage: overage,
                        expires_at: 0,
                    },
                    graph,
                )
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn random_policies_decide_like_the_reference_evaluator(
        defaults in conditions(),
        upstreams in upstreams(),
        routes in prop::collection::vec(route(), 1..=6),
        requests in prop::collection::vec(
            (
                proptest::sample::select(&METHODS[..]),
                prop::collection::vec(proptest::sample::select(&REQUEST_SEGMENTS[..]), 0..=4),
                any::<bool>(),
                identity(),
                any::<bool>(),
            ),
            1..=16,
        ),
    ) {
        let text = policy_yaml(&defaults, &upstreams, &routes);
        let policy = Policy::parse(&text, "random.yaml")
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        for (method, segments, trailing_slash, (who, graph), query) in &requests {
            let graph = graph.as_deref();
            let mut path = format!("/{}", segments.join("/"));
            if *trailing_slash && !segments.is_empty() {
                path.push('/');
            }
            let expected = reference(&defaults, &routes, method, segments, who, graph);
            let target = if *query { format!("{path}?q=/a") } else { path.clone() };
            prop_assert_eq!(
                actual_destination(&policy, method, &target),
                reference_destination(&upstreams, &routes, method, segments, *trailing_slash, *query),
                "destination: {} {}\n{}", method, target, text
            );
            prop_assert_eq!(
                actual(&policy, method, &path, who, graph),
                expected.clone(),
                "{} {}\n{}", method, path, text
            );
            prop_assert_eq!(
                offline(&policy, method, &path, who, graph),
                expected,
                "explain/test: {} {}\n{}", method, path, text
            );
        }
    }
}

// ------------------------------------------------------------ header sets

/// The default identity header names and a custom set, as a policy names them.
fn identity_header_sets() -> Vec<IdentityHeaders> {
    let custom = Policy::parse(
        "version: 1\nidentity_headers:\n  user_id: Remote-User\n  roles: X-Auth.Roles\n  \
         type: Principal_Kind\nroutes:\n  - name: a\n    path: /a\n    methods: [GET]\n",
        "custom.yaml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    vec![
        IdentityHeaders::default(),
        custom.identity_headers().clone(),
    ]
}

fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A spelling of `name` a backend could fold into it: each letter in either
/// case, each separator `-`, `_`, `.` or nothing, and extra separators.
fn look_alike(name: &'static str) -> impl Strategy<Value = String> {
    let n = name.len();
    (
        prop::collection::vec(any::<bool>(), n),
        prop::collection::vec(0..5u8, n + 1),
    )
        .prop_map(move |(upper, seps)| {
            let sep = |k: u8| match k {
                0 => "-",
                1 => "_",
                2 => ".",
                _ => "",
            };
            let mut out = String::new();
            for (i, c) in name.chars().enumerate() {
                if matches!(c, '-' | '_' | '.') {
                    out.push_str(sep(seps[i]));
                } else {
                    if i > 0 && seps[i] == 4 {
                        out.push('_');
                    }
                    out.push(if upper[i] { c.to_ascii_uppercase() } else { c });
                }
            }
            out
        })
}

const TARGETS: [&str; 11] = [
    "x-user-id",
    "x-user-tenant",
    "x-user-roles",
    "x-user-scopes",
    "x-user-name",
    "x-user-email",
    "x-user-type",
    "x-user-assertion",
    "remote-user",
    "x-auth.roles",
    "principal_kind",
];

fn client_header() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        6 => proptest::sample::select(&TARGETS[..]).prop_flat_map(look_alike),
        1 => "[a-zA-Z][a-zA-Z0-9_.-]{0,12}",
    ];
    (name, "[ -~]{0,8}").prop_map(|(n, v)| (n, format!("forged{v}")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_client_identity_header_survives_strip_then_set(
        headers in prop::collection::vec(client_header(), 0..24),
        connection in prop::collection::vec(proptest::sample::select(&TARGETS[..]).prop_flat_map(look_alike), 0..4),
        (who, _) in identity(),
        protected in any::<bool>(),
        set in 0..2usize,
    ) {
        let names = &identity_header_sets()[set];
        let identity_folded: Vec<String> = names.all().iter().map(|n| fold(n.as_str())).collect();
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else {
                continue;
            };
            map.append(name, value);
        }
        if !connection.is_empty() {
            map.append(http::header::CONNECTION, HeaderValue::from_str(&connection.join(", ")).unwrap());
        }
        strip_request(&mut map, &StripRules::new(names), false);
        if protected {
            set_identity(&mut map, names, &IdentityValues::render(&who));
        }
        for (name, value) in &map {
            let folded = fold(name.as_str());
            if identity_folded.contains(&folded) {
                prop_assert!(protected, "{} reached an anonymous route", name);
                prop_assert!(
                    names.all().contains(&name),
                    "look-alike {} survived", name
                );
                prop_assert!(!value.as_bytes().starts_with(b"forged"), "{}: {:?}", name, value);
                prop_assert_eq!(map.get_all(name).iter().count(), 1, "{} twice", name);
            }
        }
        if protected {
            prop_assert_eq!(map.get(&names.user_id).unwrap(), "oid");
            prop_assert_eq!(map.get(&names.kind).unwrap(), who.kind.as_str());
        }
    }

    #[test]
    fn identity_values_round_trip_through_their_header_encoding(
        name in "\\PC{0,24}",
        email in "[a-z0-9._%+\u{e9}\u{4e2d}@ ,\"-]{0,24}",
        roles in prop::collection::vec("[ -~\u{e9}]{1,10}", 0..4),
        scopes in prop::collection::vec("[!-~\u{e9}]{1,10}", 0..4),
        object_id in "[ -~\u{e9}\t]{1,40}",
    ) {
        let who = Identity {
            object_id: object_id.clone(),
            tenant_id: "tid".into(),
            kind: PrincipalKind::User,
            roles: roles.clone(),
            scopes: scopes.clone(),
            name: Some(name.clone()),
            email: Some(email.clone()),
            app_id: None,
            guest: false,
            audiences: Vec::new(),
            default_audience: true,
            auth_contexts: Vec::new(),
            handles_claims_challenges: false,
            groups: Vec::new(),
            groups_overage: false,
            expires_at: 0,
        };
        let names = IdentityHeaders::default();
        let mut map = HeaderMap::new();
        set_identity(&mut map, &names, &IdentityValues::render(&who));
        let decode = |v: &HeaderValue| -> String {
            let text = v.to_str().expect("visible ASCII");
            percent_decode_str(text).decode_utf8().expect("UTF-8").into_owned()
        };
        let list = |v: &HeaderValue, sep: char| -> Vec<String> {
            let text = v.to_str().expect("visible ASCII");
            if text.is_empty() {
                return vec![];
            }
            text.split(sep)
                .map(|item| percent_decode_str(item).decode_utf8().expect("UTF-8").into_owned())
                .collect()
        };
        prop_assert_eq!(decode(&map[&names.name]), name);
        prop_assert_eq!(decode(&map[&names.email]), email);
        prop_assert_eq!(decode(&map[&names.user_id]), object_id);
        prop_assert_eq!(list(&map[&names.roles], ','), roles);
        prop_assert_eq!(list(&map[&names.scopes], ' '), scopes);
    }
}

// ------------------------------------------------------------------- paths

/// Pieces that exercise every rule of `path.rs`.
fn raw_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E".to_owned()),
        Just(";".to_owned()),
        Just("%3b".to_owned()),
        Just("%".to_owned()),
        "%[0-9a-fA-F]{2}",
        "[a-c]{1,3}",
        "\\PC",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| format!("/{}", pieces.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn path_normalisation_is_canonical_and_idempotent(raw in raw_path()) {
        if let Ok(once) = normalize(&raw) {
            let twice = normalize(&once);
            prop_assert_eq!(twice.as_ref(), Ok(&once), "input {:?}", raw);
            prop_assert!(once.starts_with('/') && once.is_ascii());
            prop_assert!(!once.contains("//"), "{:?} -> {:?}", raw, once);
            for segment in once.split('/') {
                prop_assert!(segment != "." && segment != "..", "{:?} -> {:?}", raw, once);
            }
        }
    }

    #[test]
    fn a_path_and_its_normal_form_are_decided_by_the_same_route(raw in raw_path()) {
        let policy = Policy::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../policy.yaml")))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Ok(once) = normalize(&raw) {
            for method in [Method::GET, Method::DELETE] {
                prop_assert_eq!(
                    policy.route_for(&method, &once),
                    policy.route_for(&method, &normalize(&once).unwrap())
                );
            }
        }
    }
}

// ---------------------------------------------------------- policy parsing

/// Lines of policy-like YAML, shuffled and broken: keys, lists, anchors,
/// odd indentation, bad values.
fn policy_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("version: 1".to_owned()),
        Just("version: x".to_owned()),
        Just("routes:".to_owned()),
        Just("  - name: a".to_owned()),
        Just("  - name: a\n    path: /a\n    methods: [GET]".to_owned()),
        Just("    path: /a/**b".to_owned()),
        Just("    paths: [/a, /a//b, /%2e]".to_owned()),
        Just("    methods: [get, GET, BREW]".to_owned()),
        Just("    allow: anonymous".to_owned()),
        Just("    roles: [Admin]".to_owned()),
        Just("    role: [Admin]".to_owned()),
        Just("    forward_authorization: maybe".to_owned()),
        Just("identity_headers:\n  user_id: Host".to_owned()),
        Just("    upstream: reports".to_owned()),
        Just("    upstream: nowhere".to_owned()),
        Just("    audiences: [api://reports, c0ffee00-0000-4000-8000-0000000000d4]".to_owned()),
        Just("    audiences: []".to_owned()),
        Just("    audiences: [' ', api://reports, api://reports]".to_owned()),
        Just(
            "upstreams:\n  reports:\n    url: http://reports:8080\n    strip_prefix: /reports"
                .to_owned()
        ),
        Just("upstreams:\n  reports: {url: 'https://r.example/x', strip_prefix: /r/}".to_owned()),
        Just("  bad name: {strip_prefix: /a/../b, host: nobody, timeout_seconds: 0}".to_owned()),
        Just("routes: &r [*r]".to_owned()),
        // Schema mistakes, which no longer stop the reading.
        Just("    methods: GET".to_owned()),
        Just("    max_body_bytes: lots".to_owned()),
        Just("    colour: blue".to_owned()),
        Just("    <<: {extra: true, path: [x]}".to_owned()),
        Just("    ? [a]\n    : b".to_owned()),
        Just("upstreams:\n  u: {url: http://u, timeout_seconds: -1}\n  u: x".to_owned()),
        Just("defaults: {guests: [deny], apps: x}".to_owned()),
        Just("version: 1\nversion: [1]".to_owned()),
        Just("- - -".to_owned()),
        Just("{".to_owned()),
        Just("\t".to_owned()),
        "[ -~]{0,20}",
        "\\PC{0,10}",
    ];
    prop::collection::vec(line, 0..10).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The `policy_parse` fuzz target's body: no panic, and every error
    /// points at a line of the file, in file order.
    #[test]
    fn policy_errors_never_panic_and_always_carry_a_line(text in policy_text()) {
        if let Err(errors) = Policy::parse(&text, "random.yaml") {
            prop_assert!(!errors.errors.is_empty());
            for error in &errors.errors {
                prop_assert!(error.line >= 1, "no line for {} in {:?}", error, text);
                prop_assert!(error.line <= text.lines().count() + 1, "{} beyond the end of {:?}", error, text);
            }
            let places: Vec<_> = errors.errors.iter().map(|e| (e.line, e.column)).collect();
            prop_assert!(places.is_sorted(), "not in file order: {} for {:?}", errors, text);
        }
    }
}
