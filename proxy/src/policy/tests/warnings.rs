//! The warnings of `authz-proxy check`, with their exact text and place.

use super::dedent;
use crate::policy::Policy;

/// `yaml` must compile with exactly the warnings `expected` (one per line,
/// `file:line:col: message`; empty for none).
#[track_caller]
fn check(yaml: &str, expected: &str) {
    check_with_operations(yaml, &[], expected);
}

#[track_caller]
fn check_with_operations(yaml: &str, operations: &[&str], expected: &str) {
    let operations: Vec<String> = operations.iter().map(|&o| o.to_owned()).collect();
    let (_, warnings) = Policy::parse_with_warnings(&dedent(yaml), "policy.yaml", &operations)
        .unwrap_or_else(|errors| panic!("policy does not compile:\n{errors}"));
    let got: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(got.join("\n"), dedent(expected).trim());
}

#[test]
fn the_demo_policy_has_no_warnings() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../policy.yaml"))
        .expect("policy.yaml");
    let (_, warnings) = Policy::parse_with_warnings(&text, "policy.yaml", &[]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn literal_path_after_a_glob_that_covers_it_is_shadowed() {
    check(
        "
        version: 1
        routes:
          - name: one-todo
            path: /todoitems/*
            methods: [GET, DELETE]
          - name: special
            path: /todoitems/special
            methods: [GET]
        ",
        "policy.yaml:7:11: `/todoitems/special` in route `special` can never match: route `one-todo` (line 3) comes first and covers it",
    );
}

#[test]
fn shadowing_is_per_method_and_may_take_several_earlier_routes() {
    check(
        "
        version: 1
        routes:
          - name: read
            path: /a/**
            methods: [GET]
          - name: write
            path: /a/*/b
            methods: [POST]
          - name: both
            path: /a/x/b
            methods: [GET, POST, DELETE]
          - name: later
            path: /a/y/b
            methods: [GET, POST]
        ",
        "
        policy.yaml:10:11: GET, POST `/a/x/b` in route `both` can never match: route `read` (line 3) comes first and covers it
        policy.yaml:13:11: `/a/y/b` in route `later` can never match: route `read` (line 3) comes first and covers it
        ",
    );
}

#[test]
fn different_methods_or_a_later_glob_do_not_shadow() {
    check(
        "
        version: 1
        routes:
          - name: exact
            path: /a/b
            methods: [GET]
          - name: glob
            path: /a/*
            methods: [GET]
          - name: other-method
            path: /a/c
            methods: [POST]
        ",
        "",
    );
}

#[test]
fn identical_paths_shadow_even_when_the_glob_is_unusual() {
    check(
        "
        version: 1
        routes:
          - name: first
            paths: [/b, '/a/{c,d}']
            methods: [GET]
          - name: again
            path: '/a/{c,d}'
            methods: [GET]
          - name: braces-cover-one
            path: /a/c
            methods: [GET]
        ",
        "policy.yaml:7:11: `/a/{c,d}` in route `again` can never match: route `first` (line 3) comes first and covers it",
    );
}

#[test]
fn trailing_star_beside_deeper_paths_suggests_double_star() {
    check(
        "
        version: 1
        routes:
          - name: docs
            path: /docs/*
            methods: [GET]
            allow: anonymous
          - name: assets
            path: /docs/assets/app.js
            methods: [HEAD]
            allow: anonymous
        ",
        "policy.yaml:4:11: `/docs/*` in route `docs` matches one segment only, but `/docs/assets/app.js` of route `assets` (line 7) is deeper; write `/docs/**` if that was meant",
    );
}

#[test]
fn trailing_star_beside_deeper_openapi_operations_suggests_double_star() {
    check_with_operations(
        "
        version: 1
        routes:
          - name: one-todo
            path: /todoitems/*
            methods: [GET]
        ",
        &["/todoitems/{id}", "/todoitems/{id}/tags"],
        "policy.yaml:4:11: `/todoitems/*` in route `one-todo` matches one segment only, but operation path `/todoitems/{id}/tags` is deeper; write `/todoitems/**` if that was meant",
    );
}

#[test]
fn anonymous_route_overlapping_a_protected_one_is_flagged_both_ways() {
    check(
        "
        version: 1
        routes:
          - name: public-item
            path: /items/public
            methods: [GET]
            allow: anonymous
          - name: items
            path: /items/*
            methods: [GET]
            scopes: [access_as_user]
          - name: open-everything
            path: /admin/**
            methods: [GET]
            allow: anonymous
          - name: admin
            path: /admin/users
            methods: [POST, GET]
            roles: [Admin]
          - name: health
            path: /health
            methods: [GET]
            allow: anonymous
          - name: health-write
            path: /health
            methods: [POST]
        ",
        "
        policy.yaml:4:11: anonymous route `public-item` overlaps `/items/*` of route `items` (line 7), which requires a token
        policy.yaml:12:11: anonymous route `open-everything` overlaps `/admin/users` of route `admin` (line 15), which requires a token
        policy.yaml:16:11: GET `/admin/users` in route `admin` can never match: route `open-everything` (line 11) comes first and covers it
        ",
    );
}

#[test]
fn roles_and_scopes_that_look_misspelt_are_flagged_where_written() {
    check(
        "
        version: 1
        routes:
          - name: a
            path: /a
            methods: [GET]
            roles: [Admin]
            scopes: [access_as_user]
          - name: b
            path: /b
            methods: [GET]
            roles: [Admin, Reader]
            scopes: [access_as_user]
          - name: c
            path: /c
            methods: [GET]
            roles: [admin, Admn, Writer]
            scopes: [acess_as_user]
        ",
        "
        policy.yaml:16:13: role `admin` looks like a misspelling of `Admin` (line 6)
        policy.yaml:16:20: role `Admn` looks like a misspelling of `Admin` (line 6)
        policy.yaml:17:14: scope `acess_as_user` looks like a misspelling of `access_as_user` (line 7)
        ",
    );
}
