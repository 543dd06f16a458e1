//! Which route decides a request: order, globs, methods, 404 vs 405.

use std::fmt::Write as _;
use std::path::Path;

use super::{decide, policy};
use crate::policy::{Access, Policy};

/// The demo policy shipped at the repository root.
fn demo() -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy.yaml");
    match Policy::load(&path) {
        Ok(policy) => policy,
        Err(errors) => panic!("{errors}"),
    }
}

#[track_caller]
fn check(policy: &Policy, request: &str, expected: &str) {
    assert_eq!(decide(policy, request), expected, "request: {request}");
}

#[test]
fn the_shipped_policy_yaml_loads() {
    let policy = demo();
    let summary: Vec<String> = policy
        .routes()
        .iter()
        .map(|r| format!("{}@{} {} {:?}", r.name, r.line, r.allow_header(), r.paths))
        .collect();
    assert_eq!(
        summary,
        [
            r#"health@52 GET, HEAD ["/health"]"#,
            r#"docs@59 GET ["/docs", "/docs/**", "/openapi.json", "/oauth2-redirect"]"#,
            r#"todos@65 GET, POST ["/todoitems"]"#,
            r#"delete-all@71 DELETE ["/todoitems"]"#,
            r#"one-todo@78 GET, DELETE ["/todoitems/*"]"#,
        ]
    );
    assert_eq!(policy.routes()[0].access, Access::Anonymous);
    assert_eq!(
        policy.routes()[3].access,
        Access::Token {
            roles: vec!["Admin".to_owned()],
            scopes: vec!["access_as_user".to_owned()]
        }
    );
    assert!(policy.routes().iter().all(|r| !r.forward_authorization));
    let headers: Vec<&str> = policy
        .identity_headers()
        .all()
        .iter()
        .map(|h| h.as_str())
        .collect();
    assert_eq!(
        headers,
        [
            "x-user-id",
            "x-user-tenant",
            "x-user-roles",
            "x-user-scopes",
            "x-user-name",
            "x-user-email",
            "x-user-type",
            "x-user-assertion"
        ]
    );
}

#[test]
fn the_demo_policy_decides_the_sample_requests() {
    let p = demo();
    check(&p, "GET /health", "route health");
    check(&p, "HEAD /health", "route health");
    check(&p, "POST /health", "405 GET, HEAD");
    check(&p, "GET /health/", "route health");
    check(&p, "GET /docs", "route docs");
    check(&p, "GET /docs/", "route docs");
    check(&p, "GET /docs/swagger-ui.css", "route docs");
    check(&p, "GET /docs/a/b/c.js", "route docs");
    check(&p, "HEAD /docs", "405 GET");
    check(&p, "GET /docsx", "404");
    check(&p, "GET /openapi.json", "route docs");
    check(&p, "GET /oauth2-redirect", "route docs");
    check(&p, "GET /todoitems", "route todos");
    check(&p, "POST /todoitems", "route todos");
    check(&p, "DELETE /todoitems", "route delete-all");
    check(&p, "PUT /todoitems", "405 GET, POST, DELETE");
    check(&p, "HEAD /todoitems", "405 GET, POST, DELETE");
    check(&p, "GET /todoitems/1", "route one-todo");
    check(&p, "DELETE /todoitems/1", "route one-todo");
    check(&p, "POST /todoitems/1", "405 GET, DELETE");
    check(&p, "GET /todoitems/1/x", "404");
    check(&p, "GET /todoitems/1/", "route one-todo");
    check(&p, "GET /TodoItems", "404");
    check(&p, "GET /", "404");
    check(&p, "BREW /todoitems", "405 GET, POST, DELETE");
}

#[test]
fn bypass_attempts_decide_on_the_normalised_path() {
    let p = demo();
    check(&p, "DELETE /health/../todoitems", "route delete-all");
    check(&p, "GET //todoitems", "route todos");
    check(&p, "GET /%74odoitems", "route todos");
    check(&p, "GET /./todoitems/%31", "route one-todo");
    check(
        &p,
        "GET /%2e%2e/todoitems",
        "400 path climbs above the root",
    );
    check(&p, "GET /todoitems%2F1", "400 encoded slash (%2F) in path");
    check(
        &p,
        "GET /health/..;/todoitems",
        "400 path parameter on an empty or dot-segment",
    );
    check(
        &p,
        "GET /health%2f..%2ftodoitems",
        "400 encoded slash (%2F) in path",
    );
    check(
        &p,
        "GET /docs/..%2F..%2Ftodoitems",
        "400 encoded slash (%2F) in path",
    );
    check(&p, "GET /docs/../todoitems", "route todos");
    check(&p, "GET /todoitems/..", "404");
    check(&p, "GET /health;x", "404");
}

#[test]
fn a_trailing_slash_is_decided_like_the_path_without_it() {
    // warp serves `/todoitems/` as `/todoitems`: `DELETE /todoitems/` must
    // need Admin, not just the scope of `/todoitems/*`.
    let p = demo();
    check(&p, "DELETE /todoitems/", "route delete-all");
    check(&p, "POST /todoitems/", "route todos");
    check(&p, "PUT /todoitems/", "405 GET, POST, DELETE");
    check(&p, "DELETE /todoitems//", "route delete-all");
    check(&p, "DELETE /todoitems/1/..", "route delete-all");
    // Tomcat-style backends strip `;x` and would see `/todoitems/`.
    check(
        &p,
        "DELETE /todoitems/;x",
        "400 path parameter on an empty or dot-segment",
    );
}

#[test]
fn a_star_segment_never_matches_an_empty_one() {
    let p = policy(
        "
        version: 1
        routes:
          - {name: any, path: /*, methods: [GET]}
          - {name: below, path: /a/*/c, methods: [GET]}
          - {name: all, path: /b/**, methods: [GET]}
        ",
    );
    check(&p, "GET /x", "route any");
    check(&p, "GET /", "404");
    check(&p, "GET /a/b/c", "route below");
    check(&p, "GET /a//c", "404");
    check(&p, "GET /b/", "route any");
    check(&p, "GET /b/x/y", "route all");
}

#[test]
fn the_first_route_in_file_order_wins() {
    let p = policy(
        "
        version: 1
        routes:
          - {name: specific, path: /a/b, methods: [GET]}
          - {name: general, path: /a/*, methods: [GET, POST]}
          - {name: shadowed, path: /a/b, methods: [GET, PUT]}
        ",
    );
    check(&p, "GET /a/b", "route specific");
    check(&p, "POST /a/b", "route general");
    check(&p, "PUT /a/b", "route shadowed");
    check(&p, "GET /a/c", "route general");
    check(&p, "PUT /a/c", "405 GET, POST");
}

#[test]
fn star_stays_in_its_segment_and_double_star_crosses() {
    let p = policy(
        "
        version: 1
        routes:
          - {name: one, path: /one/*, methods: [GET]}
          - {name: many, path: /many/**, methods: [GET]}
          - {name: middle, path: /x/**/end, methods: [GET]}
          - {name: ext, path: /files/*.json, methods: [GET]}
          - {name: alt, path: '/{a,b}/[0-9]', methods: [GET]}
        ",
    );
    check(&p, "GET /one/1", "route one");
    check(&p, "GET /one/1/2", "404");
    check(&p, "GET /one", "404");
    check(&p, "GET /many/1", "route many");
    check(&p, "GET /many/1/2/3", "route many");
    check(&p, "GET /many", "404");
    check(&p, "GET /x/end", "route middle");
    check(&p, "GET /x/1/2/end", "route middle");
    check(&p, "GET /files/a.json", "route ext");
    check(&p, "GET /files/a/b.json", "404");
    check(&p, "GET /b/7", "route alt");
    check(&p, "GET /c/7", "404");
}

#[test]
fn head_is_not_implied_by_get_and_allow_is_in_a_fixed_order() {
    let p = policy(
        "
        version: 1
        routes:
          - {name: a, path: /r, methods: [OPTIONS, DELETE]}
          - {name: b, path: '/r', methods: [PATCH, GET]}
          - {name: c, path: /*, methods: [PUT]}
        ",
    );
    check(&p, "HEAD /r", "405 GET, PUT, PATCH, DELETE, OPTIONS");
    check(&p, "PUT /r", "route c");
}

#[test]
fn a_route_with_several_matching_globs_is_counted_once() {
    let p = policy(
        "
        version: 1
        routes:
          - {name: a, paths: [/a, '/*', '/**'], methods: [GET]}
          - {name: b, path: /a, methods: [POST]}
        ",
    );
    check(&p, "POST /a", "route b");
    check(&p, "PUT /a", "405 GET, POST");
}

#[test]
fn ten_thousand_routes_compile_and_decide() {
    // Even routes: a literal and a deep glob each, all in different places.
    // Odd routes: 5,000 globs under the same literal segment, more than one
    // `GlobSet` can hold.
    let mut yaml = String::from("version: 1\nroutes:\n");
    for i in 0..10_000 {
        let v = i % 7;
        let paths = if i % 2 == 0 {
            format!("/api/v{v}/r{i}, /api/v{v}/r{i}/*/items/**")
        } else {
            format!("'/shared/*/r{i}', '/shared/{{a,b}}/r{i}/*'")
        };
        let _ = writeln!(
            yaml,
            "  - {{name: r{i}, paths: [{paths}], methods: [GET, POST], scopes: [s{i}]}}"
        );
    }
    yaml.push_str("  - {name: fallback, path: /**, methods: [GET], allow: anonymous}\n");
    let p = match Policy::parse(&yaml, "big.yaml") {
        Ok(p) => p,
        Err(errors) => panic!("{errors}"),
    };
    assert_eq!(p.routes().len(), 10_001);
    check(&p, "GET /api/v2/r9998", "route r9998");
    check(&p, "GET /api/v6/r9998", "route fallback");
    check(&p, "POST /api/v0/r0/1/items/2/3", "route r0");
    check(&p, "PUT /api/v0/r0", "405 GET, POST");
    check(&p, "GET /api/v1/r0", "route fallback");
    check(&p, "POST /api/v1/r0", "405 GET");
    check(&p, "GET /shared/x/r1", "route r1");
    check(&p, "GET /shared/x/r9999", "route r9999");
    check(&p, "POST /shared/b/r5001/7", "route r5001");
    check(&p, "POST /shared/c/r5001/7", "405 GET");
    check(&p, "GET /shared/x/r2", "route fallback");
    assert_eq!(p.routes()[9999].line, 10_002);
}

#[test]
fn policy_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Policy>();
}
