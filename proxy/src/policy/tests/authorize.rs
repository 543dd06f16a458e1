//! `Route::authorize`: roles, scopes, app tokens, anonymous routes, and the
//! caller conditions (`apps`, `tenants`, `callers`, `guests`, `defaults:`).

use super::policy;
use crate::identity::{Identity, PrincipalKind};
use crate::policy::{Denial, Overage, Policy};

const POLICY: &str = "
    version: 1
    routes:
      - {name: open, path: /open, methods: [GET], allow: anonymous}
      - {name: any-token, path: /any, methods: [GET]}
      - {name: explicit, path: /explicit, methods: [GET], allow: authenticated}
      - {name: scope, path: /scope, methods: [GET], scopes: [access_as_user, read]}
      - {name: role, path: /role, methods: [GET], roles: [Admin]}
      - {name: both, path: /both, methods: [GET], scopes: [access_as_user], roles: [Admin, Owner]}
";

/// A user identity from "user roles=A,B scopes=x y" or "app roles=A".
fn identity(spec: &str) -> Identity {
    let mut words = spec.split(' ');
    let kind = match words.next() {
        Some("user") => PrincipalKind::User,
        Some("app") => PrincipalKind::App,
        other => panic!("bad kind {other:?}"),
    };
    let mut roles = Vec::new();
    let mut scopes = Vec::new();
    let mut in_scopes = false;
    for word in words {
        if let Some(list) = word.strip_prefix("roles=") {
            roles = list
                .split(',')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
            in_scopes = false;
        } else if let Some(first) = word.strip_prefix("scopes=") {
            scopes.push(first.to_owned());
            in_scopes = true;
        } else if in_scopes {
            scopes.push(word.to_owned());
        }
    }
    Identity {
        object_id: "00000000-0000-0000-0000-000000000001".to_owned(),
        tenant_id: "00000000-0000-0000-0000-0000000000aa".to_owned(),
        kind,
        roles,
        scopes,
        name: None,
        email: None,
        app_id: None,
        guest: false,
        audiences: Vec::new(),
        default_audience: true,
        auth_contexts: Vec::new(),
        handles_claims_challenges: false,
        groups: Vec::new(),
        groups_overage: false,
        expires_at: 0,
    }
}

/// `ok`, or `<reason>: <description>`.
#[track_caller]
fn check(policy: &Policy, route: &str, who: &str, expected: &str) {
    let route = policy
        .routes()
        .iter()
        .find(|r| r.name == route)
        .expect("route");
    let actual = match route.authorize(&identity(who), &Overage::NotAsked) {
        Ok(()) => "ok".to_owned(),
        Err(denial) => format!("{}: {}", denial.reason(), denial.description()),
    };
    assert_eq!(actual, expected, "route {} for {who}", route.name);
}

#[test]
fn anonymous_and_token_only_routes_admit_any_identity() {
    let p = policy(POLICY);
    check(&p, "open", "app roles=", "ok");
    check(&p, "any-token", "user roles= scopes=x", "ok");
    check(&p, "any-token", "app roles=Reader", "ok");
    check(&p, "explicit", "app roles=Reader", "ok");
}

#[test]
fn scopes_are_any_of_and_match_exact_words() {
    let p = policy(POLICY);
    check(&p, "scope", "user scopes=access_as_user", "ok");
    check(&p, "scope", "user scopes=openid read", "ok");
    check(
        &p,
        "scope",
        "user scopes=Access_As_User",
        "missing_scope: one of the scopes access_as_user, read is required",
    );
    check(
        &p,
        "scope",
        "user scopes=access_as_user2",
        "missing_scope: one of the scopes access_as_user, read is required",
    );
    check(
        &p,
        "scope",
        "user roles=Admin",
        "missing_scope: one of the scopes access_as_user, read is required",
    );
}

#[test]
fn app_tokens_never_satisfy_a_scope_rule() {
    let p = policy(POLICY);
    check(
        &p,
        "scope",
        "app roles=access_as_user",
        "missing_scope: one of the scopes access_as_user, read is required",
    );
    // Even an app identity that somehow carries scope words does not pass.
    check(
        &p,
        "scope",
        "app scopes=access_as_user",
        "missing_scope: one of the scopes access_as_user, read is required",
    );
    check(&p, "role", "app roles=Admin", "ok");
}

#[test]
fn roles_are_any_of_and_case_sensitive() {
    let p = policy(POLICY);
    check(&p, "role", "user roles=Reader,Admin", "ok");
    check(
        &p,
        "role",
        "user roles=admin",
        "missing_role: the role Admin is required",
    );
    check(
        &p,
        "role",
        "user roles=",
        "missing_role: the role Admin is required",
    );
    check(
        &p,
        "role",
        "user roles=Admin2",
        "missing_role: the role Admin is required",
    );
}

#[test]
fn scopes_and_roles_must_both_hold() {
    let p = policy(POLICY);
    check(&p, "both", "user roles=Owner scopes=access_as_user", "ok");
    check(
        &p,
        "both",
        "user roles=Reader scopes=access_as_user",
        "missing_role: one of the roles Admin, Owner is required",
    );
    check(
        &p,
        "both",
        "user roles=Admin scopes=other",
        "missing_scope: the scope access_as_user is required",
    );
    check(
        &p,
        "both",
        "app roles=Admin",
        "missing_scope: the scope access_as_user is required",
    );
}

#[test]
fn denials_carry_what_was_required() {
    let p = policy(POLICY);
    let route = &p.routes()[5];
    assert_eq!(
        route.authorize(
            &identity("user roles= scopes=access_as_user"),
            &Overage::NotAsked
        ),
        Err(Denial::MissingRole {
            required: vec!["Admin".to_owned(), "Owner".to_owned()]
        })
    );
}

const CONDITIONS: &str = "
    version: 1
    defaults:
      guests: deny
    routes:
      - {name: open, path: /open, methods: [GET], allow: anonymous}
      - {name: members, path: /members, methods: [GET]}
      - {name: guests-ok, path: /guests, methods: [GET], guests: allow}
      - {name: app, path: /app, methods: [GET], guests: allow, apps: [c0ffee00-0000-4000-8000-0000000000a1]}
      - {name: tenant, path: /tenant, methods: [GET], guests: allow, tenants: [BBBBBBBB-0000-4000-8000-000000000002]}
      - {name: users, path: /users, methods: [GET], guests: allow, callers: [user]}
      - {name: apps-only, path: /apps, methods: [GET], guests: allow, callers: [app]}
      - {name: either, path: /either, methods: [GET], guests: allow, callers: [app, user]}
      - {name: all, path: /all, methods: [GET], roles: [Admin], callers: [user], apps: [c0ffee00-0000-4000-8000-0000000000a1]}
";

/// An identity of `who` with a client app, tenant and guest flag.
fn caller(who: &str, app: Option<&str>, tenant: &str, guest: bool) -> Identity {
    Identity {
        app_id: app.map(str::to_owned),
        tenant_id: tenant.to_owned(),
        guest,
        ..identity(who)
    }
}

#[track_caller]
fn check_caller(policy: &Policy, route: &str, who: &Identity, expected: &str) {
    let route = policy
        .routes()
        .iter()
        .find(|r| r.name == route)
        .expect("route");
    let actual = match route.authorize(who, &Overage::NotAsked) {
        Ok(()) => "ok".to_owned(),
        Err(denial) => format!("{}: {}", denial.reason(), denial.description()),
    };
    assert_eq!(actual, expected, "route {}", route.name);
    // The explanation's first failure is the verdict.
    let first = route
        .checks(who, &Overage::NotAsked)
        .find_map(|(_, r)| r.err());
    assert_eq!(
        first,
        route.authorize(who, &Overage::NotAsked).err(),
        "route {}",
        route.name
    );
}

const A1: &str = "c0ffee00-0000-4000-8000-0000000000a1";
const T1: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const T2: &str = "bbbbbbbb-0000-4000-8000-000000000002";

#[test]
fn guests_are_denied_by_default_and_allowed_where_a_route_says() {
    let p = policy(CONDITIONS);
    let guest = caller("user scopes=x", None, T1, true);
    let member = caller("user scopes=x", None, T1, false);
    check_caller(&p, "members", &member, "ok");
    check_caller(
        &p,
        "members",
        &guest,
        "guest_denied: guest accounts may not use this route",
    );
    check_caller(&p, "guests-ok", &guest, "ok");
    check_caller(&p, "open", &guest, "ok");
}

#[test]
fn apps_match_azp_or_appid_in_any_case() {
    let p = policy(CONDITIONS);
    let upper = A1.to_uppercase();
    check_caller(&p, "app", &caller("user", Some(A1), T1, false), "ok");
    check_caller(&p, "app", &caller("user", Some(&upper), T1, false), "ok");
    let denied = "wrong_app: this route admits only certain client applications";
    check_caller(&p, "app", &caller("user", None, T1, false), denied);
    check_caller(
        &p,
        "app",
        &caller(
            "user",
            Some("dddddddd-0000-4000-8000-0000000000d4"),
            T1,
            false,
        ),
        denied,
    );
}

#[test]
fn tenants_match_tid_in_any_case() {
    let p = policy(CONDITIONS);
    check_caller(&p, "tenant", &caller("app roles=R", None, T2, false), "ok");
    check_caller(
        &p,
        "tenant",
        &caller("app roles=R", None, T1, false),
        "wrong_tenant_for_route: this route admits only certain tenants",
    );
}

#[test]
fn callers_admit_user_or_app_tokens() {
    let p = policy(CONDITIONS);
    let user = caller("user scopes=x", None, T1, false);
    let app = caller("app roles=R", None, T1, false);
    check_caller(&p, "users", &user, "ok");
    check_caller(
        &p,
        "users",
        &app,
        "wrong_caller_type: this route admits only user (delegated) tokens",
    );
    check_caller(&p, "apps-only", &app, "ok");
    check_caller(
        &p,
        "apps-only",
        &user,
        "wrong_caller_type: this route admits only app-only tokens",
    );
    check_caller(&p, "either", &user, "ok");
    check_caller(&p, "either", &app, "ok");
}

#[test]
fn conditions_are_checked_in_order_and_explained_each() {
    let p = policy(CONDITIONS);
    let route = p.routes().iter().find(|r| r.name == "all").unwrap();
    let guest_app = caller("app roles=Reader", None, T1, true);
    let checks: Vec<String> = route
        .checks(&guest_app, &Overage::NotAsked)
        .map(|(c, r)| format!("{} {}", c.key(), r.map_or_else(|d| d.reason(), |()| "ok")))
        .collect();
    assert_eq!(
        checks,
        [
            "roles missing_role",
            "apps wrong_app",
            "callers wrong_caller_type",
            "guests guest_denied"
        ]
    );
    check_caller(
        &p,
        "all",
        &guest_app,
        "missing_role: the role Admin is required",
    );
    let good = caller("user roles=Admin scopes=x", Some(A1), T2, false);
    assert!(
        route
            .checks(&good, &Overage::NotAsked)
            .all(|(_, r)| r.is_ok())
    );
}

const STEP_UP: &str = "
version: 1
defaults: {auth_context: [c1]}
routes:
  - {name: wipe, path: /wipe, methods: [DELETE], roles: [Admin]}
  - {name: either, path: /either, methods: [DELETE], auth_context: [c2, c3]}
  - {name: watch, path: /watch, methods: [DELETE], auth_context: [c4], enforce: shadow}
";

/// A user with these `acrs`, declaring `cp1` or not.
fn stepped(roles: &str, acrs: &[&str], cp1: bool) -> Identity {
    Identity {
        auth_contexts: acrs.iter().map(|c| (*c).to_owned()).collect(),
        handles_claims_challenges: cp1,
        ..identity(&format!("user {roles} scopes=x"))
    }
}

#[test]
fn auth_context_needs_one_of_the_ids_in_acrs() {
    let p = policy(STEP_UP);
    check_caller(&p, "wipe", &stepped("roles=Admin", &["c1"], false), "ok");
    check_caller(
        &p,
        "wipe",
        &stepped("roles=Admin", &["c9", "c1"], true),
        "ok",
    );
    check_caller(&p, "either", &stepped("", &["c3"], false), "ok");
    check_caller(
        &p,
        "either",
        &stepped("", &["c1"], true),
        "auth_context_required: this route needs one of the authentication contexts c2, c3; \
         sign in again with the claims of the WWW-Authenticate challenge",
    );
    check_caller(
        &p,
        "wipe",
        &stepped("roles=Admin", &[], false),
        "auth_context_required: this route needs authentication context c1, and the client \
         does not declare the cp1 capability (xms_cc) that would let it be asked to sign in \
         again with it",
    );
}

#[test]
fn auth_context_is_checked_last_so_no_step_up_is_asked_for_a_caller_denied_anyway() {
    let p = policy(STEP_UP);
    check_caller(
        &p,
        "wipe",
        &stepped("roles=Reader", &[], true),
        "missing_role: the role Admin is required",
    );
    let route = p.routes().iter().find(|r| r.name == "wipe").unwrap();
    let keys: Vec<&str> = route
        .checks(&stepped("roles=Reader", &[], true), &Overage::NotAsked)
        .map(|(c, _)| c.key())
        .collect();
    assert_eq!(keys, ["roles", "auth_context"]);
}

#[test]
fn auth_context_on_a_shadow_route_is_a_would_deny() {
    let p = policy(STEP_UP);
    let route = p.routes().iter().find(|r| r.name == "watch").unwrap();
    let uri: std::sync::Arc<str> =
        std::sync::Arc::from("https://login.example/common/oauth2/v2.0/authorize");
    let shadow =
        crate::stages::authorize(route, &stepped("", &["c1"], true), &Overage::NotAsked, &uri);
    assert_eq!(
        shadow.map(|d| d.map(|d| d.reason())).ok(),
        Some(Some("auth_context_required"))
    );
}

#[test]
fn a_route_with_audiences_accepts_only_tokens_for_them() {
    let policy = policy(
        "
        version: 1
        routes:
          - {name: own, path: /own, methods: [GET]}
          - {name: reports, path: /reports, methods: [GET], audiences: [api://reports, r-id]}
          - {name: orders, path: /orders, methods: [GET], audiences: [api://orders]}
        ",
    );
    let route = |name: &str| policy.routes().iter().find(|r| r.name == name).unwrap();
    let token = |audiences: &[&str], default_audience: bool| Identity {
        audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        default_audience,
        ..identity("user scopes=access_as_user")
    };
    // The gateway's own audience: routes without `audiences:` only.
    let own = token(&["api://gateway"], true);
    assert!(route("own").accepts_audience(&own));
    assert!(!route("reports").accepts_audience(&own));
    // A route's audience, in any of the forms listed: that route only.
    for aud in ["api://reports", "r-id"] {
        let reports = token(&[aud], false);
        assert!(route("reports").accepts_audience(&reports), "{aud}");
        assert!(!route("orders").accepts_audience(&reports), "{aud}");
        assert!(!route("own").accepts_audience(&reports), "{aud}");
    }
    // `aud` as an array: any-of, compared exactly.
    assert!(route("orders").accepts_audience(&token(&["x", "api://orders"], false)));
    assert!(!route("orders").accepts_audience(&token(&["API://ORDERS"], false)));
    assert_eq!(
        policy.route_audiences(),
        ["api://orders", "api://reports", "r-id"]
    );
}

const G1: &str = "6f1c0000-0000-4000-8000-000000000001";
const G2: &str = "6f1c0000-0000-4000-8000-000000000002";

const GROUPS: &str = "
version: 1
defaults: {groups: [6f1c0000-0000-4000-8000-000000000001]}
routes:
  - {name: finance, path: /finance, methods: [GET]}
  - {name: either, path: /either, methods: [GET], roles: [Admin], groups: [6F1C0000-0000-4000-8000-000000000002, 6f1c0000-0000-4000-8000-000000000003]}
  - {name: watch, path: /watch, methods: [GET], groups: [6f1c0000-0000-4000-8000-000000000009], enforce: shadow}
";

/// A user in `groups` (or with a groups overage instead).
fn grouped(roles: &str, groups: &[&str], overage: bool) -> Identity {
    Identity {
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        groups_overage: overage,
        ..identity(&format!("user {roles} scopes=x"))
    }
}

/// `ok` or `<reason>` of `route` for `who`, with `overage`.
fn verdict(policy: &Policy, route: &str, who: &Identity, overage: &Overage) -> String {
    let route = policy.routes().iter().find(|r| r.name == route).unwrap();
    let first = route.checks(who, overage).find_map(|(_, r)| r.err());
    assert_eq!(first, route.authorize(who, overage).err());
    match route.authorize(who, overage) {
        Ok(()) => "ok".to_owned(),
        Err(d) => d.reason().to_owned(),
    }
}

#[test]
fn groups_need_one_of_the_ids_in_the_groups_claim() {
    let p = policy(GROUPS);
    let not_asked = Overage::NotAsked;
    assert_eq!(
        verdict(&p, "finance", &grouped("", &[G1], false), &not_asked),
        "ok"
    );
    assert_eq!(
        verdict(&p, "finance", &grouped("", &[G2], false), &not_asked),
        "missing_group"
    );
    assert_eq!(
        verdict(&p, "finance", &grouped("", &[], false), &not_asked),
        "missing_group"
    );
    // Ids are compared whatever their case; the route's own list replaces the default.
    let upper = G2.to_ascii_uppercase();
    assert_eq!(
        verdict(
            &p,
            "either",
            &grouped("roles=Admin", &[&upper], false),
            &not_asked
        ),
        "ok"
    );
    assert_eq!(
        verdict(
            &p,
            "either",
            &grouped("roles=Admin", &[G1], false),
            &not_asked
        ),
        "missing_group"
    );
    check_caller(
        &p,
        "finance",
        &grouped("", &[G2], false),
        "missing_group: this route admits only members of certain groups",
    );
}

#[test]
fn an_overage_is_decided_by_what_graph_said_and_fails_closed_without_it() {
    let p = policy(GROUPS);
    let over = grouped("", &[], true);
    let member = Overage::Resolved { member: true };
    let outsider = Overage::Resolved { member: false };
    let down = Overage::Unresolved("Microsoft Graph answered 503".to_owned());
    assert_eq!(verdict(&p, "finance", &over, &member), "ok");
    assert_eq!(verdict(&p, "finance", &over, &outsider), "missing_group");
    assert_eq!(verdict(&p, "finance", &over, &down), "groups_unresolved");
    assert_eq!(
        verdict(&p, "finance", &over, &Overage::NotAsked),
        "groups_unresolved"
    );
    let route = p.routes().iter().find(|r| r.name == "finance").unwrap();
    assert_eq!(
        route.authorize(&over, &down).unwrap_err().to_string(),
        "this route admits only members of certain groups, and the token has a groups overage \
         (more groups than a token lists) that could not be resolved: Microsoft Graph answered 503"
    );
    // A token that lists its groups is never judged by Graph's answer.
    assert_eq!(
        verdict(&p, "finance", &grouped("", &[G2], false), &member),
        "missing_group"
    );
}

#[test]
fn graph_is_asked_only_when_the_groups_decide() {
    let p = policy(GROUPS);
    let route = |name: &str| p.routes().iter().find(|r| r.name == name).unwrap();
    let over = grouped("roles=Admin", &[], true);
    assert_eq!(
        route("finance").groups_to_resolve(&over),
        Some(&[G1.to_owned()][..])
    );
    assert!(crate::stages::groups_to_resolve(route("finance"), &over).is_some());
    // An earlier condition already denies: no lookup.
    assert_eq!(
        route("either").groups_to_resolve(&grouped("roles=Reader", &[], true)),
        None
    );
    assert!(route("either").groups_to_resolve(&over).is_some());
    // No overage, or a token for another API: no lookup.
    assert_eq!(
        route("finance").groups_to_resolve(&grouped("", &[G1], false)),
        None
    );
    let elsewhere = Identity {
        default_audience: false,
        ..over.clone()
    };
    assert!(crate::stages::groups_to_resolve(route("finance"), &elsewhere).is_none());
    // A route without groups.
    let plain = policy(POLICY);
    let any = plain
        .routes()
        .iter()
        .find(|r| r.name == "any-token")
        .unwrap();
    assert_eq!(crate::stages::groups_to_resolve(any, &over), None);
}

#[test]
fn groups_come_after_the_token_conditions_and_before_auth_context() {
    use crate::policy::Condition;
    let at = |c: Condition| Condition::ALL.iter().position(|x| *x == c).unwrap();
    assert!(at(Condition::Guests) < at(Condition::Groups));
    assert!(at(Condition::Groups) < at(Condition::AuthContext));
    let p = policy(GROUPS);
    let route = p.routes().iter().find(|r| r.name == "watch").unwrap();
    let uri: std::sync::Arc<str> =
        std::sync::Arc::from("https://login.example/common/oauth2/v2.0/authorize");
    let shadow =
        crate::stages::authorize(route, &grouped("", &[G1], false), &Overage::NotAsked, &uri);
    assert_eq!(
        shadow.map(|d| d.map(|d| d.reason())).ok(),
        Some(Some("missing_group"))
    );
}
