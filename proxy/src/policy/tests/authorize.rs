//! `Route::authorize`: roles, scopes, app tokens, anonymous routes.

use super::policy;
use crate::identity::{Identity, PrincipalKind};
use crate::policy::{Denial, Policy};

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
    let actual = match route.authorize(&identity(who)) {
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
        route.authorize(&identity("user roles= scopes=access_as_user")),
        Err(Denial::MissingRole {
            required: vec!["Admin".to_owned(), "Owner".to_owned()]
        })
    );
}
