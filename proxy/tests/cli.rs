//! The offline subcommands through the built binary: `check` (errors,
//! warnings, `--strict`, `--openapi`), `explain` and `test`, over real files
//! in a temporary directory, with their exact output and exit codes.

use crate::auth_common;

use std::path::Path;
use std::process::Command;

use auth_common::{CLIENT_ID, TENANT, TestKey};
use serde_json::json;

/// What the binary printed and its exit code.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `authz-proxy args…` in `dir`, with none of the gateway's environment.
fn run(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_authz-proxy"))
        .args(args)
        .current_dir(dir)
        .env_remove("POLICY_FILE")
        .env_remove("API_CLIENT_ID")
        .env_remove("AAD_TENANT_ID")
        .env_remove("AAD_INSTANCE")
        .env_remove("AAD_STS_INSTANCE")
        .output()
        .expect("run authz-proxy");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// A directory holding `files` (name, text).
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// `authz-proxy args…` over `files` must exit with `code` and print exactly
/// `stdout` and `stderr`.
#[track_caller]
fn check(files: &[(&str, &str)], args: &[&str], code: i32, stdout: &str, stderr: &str) {
    let dir = dir_with(files);
    let got = run(dir.path(), args);
    let expected = Run {
        code,
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
    };
    assert_eq!(got, expected, "authz-proxy {}", args.join(" "));
}

const DEMO: &str = include_str!("../../policy.yaml");

const SHADOWED: &str = "\
version: 1
routes:
  - name: one-todo
    path: /todoitems/*
    methods: [GET, DELETE]
    scopes: [access_as_user]
  - name: special
    path: /todoitems/special
    methods: [GET]
    roles: [admin]
  - name: admin
    path: /admin
    methods: [GET]
    roles: [Admin, Admin.Read]
  - name: more-admin
    path: /admin/users
    methods: [GET]
    roles: [Admin]
";

#[test]
fn check_prints_ok_and_the_route_count_for_a_clean_policy() {
    check(
        &[("policy.yaml", DEMO)],
        &["check"],
        0,
        "ok: 5 routes\n",
        "",
    );
    check(
        &[("p.yaml", DEMO)],
        &["check", "--strict", "--policy", "p.yaml"],
        0,
        "ok: 5 routes\n",
        "",
    );
}

#[test]
fn check_prints_every_error_with_line_and_column_and_exits_1() {
    let broken = "\
version: 2
routes:
  - name: todos
    path: todoitems
    methods: [get]
    role: [Admin]
";
    check(
        &[("policy.yaml", broken)],
        &["check"],
        1,
        "",
        // The unknown key no longer hides the other mistakes.
        "\
policy.yaml:1:10: unsupported version `2`; expected 1
policy.yaml:4:11: path `todoitems` must start with `/`
policy.yaml:5:15: unknown method `get`; did you mean GET?
policy.yaml:6:5: unknown field `role`, expected one of name, path, paths, methods, allow, roles, scopes, forward_authorization, extra, upstream, max_body_bytes, audiences, apps, tenants, callers, guests, groups, auth_context, enforce
",
    );
    let wrong_types = "\
version: 1
upstreams:
  reports: {url: http://reports, timeout_seconds: soon}
defaults:
  callers: [robot]
routes:
  - name: a
    path: /a
    methods: GET
    colour: blue
  - name: b
    path: /b/[
    methods: [GET]
";
    check(
        &[("policy.yaml", wrong_types)],
        &["check"],
        1,
        "",
        "\
policy.yaml:3:51: `timeout_seconds` must be a whole number; found `soon`
policy.yaml:5:13: unknown caller `robot`; expected `user` or `app`
policy.yaml:9:14: `methods` must be a list, like `[GET, POST]`; found `GET`
policy.yaml:10:5: unknown field `colour`, expected one of name, path, paths, methods, allow, roles, scopes, forward_authorization, extra, upstream, max_body_bytes, audiences, apps, tenants, callers, guests, groups, auth_context, enforce
policy.yaml:12:11: invalid glob `/b/[`: unclosed character class; missing ']'
",
    );
    let invalid = "\
version: 2
routes:
  - name: todos
    path: todoitems
    methods: [get]
";
    check(
        &[("policy.yaml", invalid)],
        &["check"],
        1,
        "",
        "\
policy.yaml:1:10: unsupported version `2`; expected 1
policy.yaml:4:11: path `todoitems` must start with `/`
policy.yaml:5:15: unknown method `get`; did you mean GET?
",
    );
    check(
        &[],
        &["check"],
        1,
        "",
        "error: policy.yaml: cannot read: No such file or directory (os error 2)\n",
    );
}

#[test]
fn check_prints_warnings_with_their_places_and_strict_makes_them_fail() {
    let warnings = "\
policy.yaml:8:11: warning: `/todoitems/special` in route `special` can never match: route `one-todo` (line 3) comes first and covers it
policy.yaml:10:13: warning: role `admin` looks like a misspelling of `Admin` (line 14)
";
    check(
        &[("policy.yaml", SHADOWED)],
        &["check"],
        0,
        "ok: 4 routes, 2 warnings\n",
        warnings,
    );
    check(
        &[("policy.yaml", SHADOWED)],
        &["check", "--strict"],
        1,
        "",
        &format!("{warnings}error: 2 warning(s), and --strict makes them errors\n"),
    );
}

const OPENAPI: &str = r#"{
  "openapi": "3.0.3",
  "paths": {
    "/todoitems": {"get": {}, "post": {}},
    "/todoitems/{id}": {"get": {}, "put": {}},
    "/todoitems/{id}/tags": {"get": {}}
  }
}"#;

#[test]
fn check_openapi_lists_uncovered_operations_and_routes_without_one() {
    let policy = "\
version: 1
routes:
  - name: todos
    path: /todoitems
    methods: [GET, POST]
  - name: one-todo
    path: /todoitems/*
    methods: [GET]
  - name: health
    path: /health
    methods: [GET]
    allow: anonymous
  - name: metrics
    path: /metrics
    methods: [GET]
    extra: true
";
    check(
        &[("policy.yaml", policy), ("openapi.json", OPENAPI)],
        &["check", "--openapi", "openapi.json"],
        1,
        "",
        "\
policy.yaml:7:11: warning: `/todoitems/*` in route `one-todo` matches one segment only, but operation path `/todoitems/*/tags` is deeper; write `/todoitems/**` if that was meant
openapi.json: PUT /todoitems/{id} is not covered: routes match the path for GET only (405)
openapi.json: GET /todoitems/{id}/tags is not covered: no route matches the path (404)
policy.yaml:9: route `health` decides no operation of openapi.json; mark it `extra: true` if that is intended
",
    );
    check(
        &[("policy.yaml", DEMO), ("openapi.json", "[1, 2")],
        &["check", "--openapi", "openapi.json"],
        1,
        "",
        "error: openapi.json: not JSON: EOF while parsing a list at line 1 column 5\n",
    );
}

#[test]
fn explain_shows_the_route_requirement_and_the_exact_denial() {
    check(
        &[("policy.yaml", DEMO)],
        &["explain", "DELETE", "/todoitems/", "--scopes", "access_as_user"],
        0,
        "\
request:   DELETE /todoitems/
path:      /todoitems/ (normalised: matched and forwarded)
route:     delete-all (policy.yaml:71)
requires:  a valid token with scope access_as_user and role Admin
caller:    user, roles -, scopes access_as_user, tenant 00000000-0000-0000-0000-000000000000, app -
conditions:
  ok   scopes   scope access_as_user
  FAIL roles    role Admin: the role Admin is required (missing_role)
decision:  deny (missing_role): the role Admin is required
response:
  HTTP/1.1 403 Forbidden
  content-type: application/json
  www-authenticate: Bearer error=\"insufficient_scope\", error_description=\"the role Admin is required\"

  {\"detail\":\"the role Admin is required\"}
",
        "",
    );
}

#[test]
fn explain_an_allowed_request_lists_the_identity_headers_forwarded() {
    check(
        &[("policy.yaml", DEMO)],
        &[
            "explain",
            "GET",
            "/todoitems/../todoitems/7",
            "--scopes",
            "access_as_user",
            "--roles",
            "Admin",
            "--tenant",
            TENANT,
        ],
        0,
        &format!(
            "\
request:   GET /todoitems/../todoitems/7
path:      /todoitems/7 (normalised: matched and forwarded)
route:     one-todo (policy.yaml:78)
requires:  a valid token with scope access_as_user
caller:    user, roles Admin, scopes access_as_user, tenant {TENANT}, app -
conditions:
  ok   scopes   scope access_as_user
decision:  allow: forwarded to the upstream as GET /todoitems/7
           x-user-id: 00000000-0000-0000-0000-0000000000aa
           x-user-tenant: {TENANT}
           x-user-roles: Admin
           x-user-scopes: access_as_user
           x-user-type: user
"
        ),
        "",
    );
}

#[test]
fn explain_without_a_route_or_with_a_bad_path_shows_404_and_400() {
    check(
        &[("policy.yaml", DEMO)],
        &["explain", "GET", "/nowhere"],
        0,
        "\
request:   GET /nowhere
path:      /nowhere (normalised: matched and forwarded)
route:     none
caller:    no token
decision:  deny (no_route): Not Found
response:
  HTTP/1.1 404 Not Found
  content-type: application/json

  {\"detail\":\"Not Found\"}
",
        "",
    );
    check(
        &[("policy.yaml", DEMO)],
        &["explain", "GET", "/a/%2F/b"],
        0,
        "\
request:   GET /a/%2F/b
route:     none
caller:    no token
decision:  deny (bad_path): invalid path: encoded slash (%2F) in path
response:
  HTTP/1.1 400 Bad Request
  content-type: application/json

  {\"detail\":\"invalid path: encoded slash (%2F) in path\"}
",
        "",
    );
}

/// Claims with fixed times, so the output is the same every day until 2100.
fn claims() -> serde_json::Value {
    json!({
        "aud": CLIENT_ID,
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "nbf": 1_700_000_000,
        "exp": 4_102_444_800_u64,
        "oid": "00000000-0000-0000-0000-0000000000aa",
        "scp": "access_as_user",
        "tid": TENANT,
    })
}

#[test]
fn explain_a_token_reports_each_claim_check_and_the_signature_as_unchecked() {
    let key = TestKey::generate("key-1");
    let token = key.sign(&claims());
    check(
        &[("policy.yaml", DEMO)],
        &["explain", "GET", "/todoitems", "--token", &token, "--client-id", "other-api"],
        0,
        &format!(
            "\
request:   GET /todoitems
path:      /todoitems (normalised: matched and forwarded)
route:     todos (policy.yaml:65)
requires:  a valid token with scope access_as_user
caller:    invalid token (wrong_audience): the token is not meant for this API (wrong audience)
token:
  ok   header      alg=RS256 kid=key-1
  --   signature   (not checked offline: give --jwks FILE)
  ok   exp         4102444800
  ok   nbf         1700000000
  --   iss         \"https://login.microsoftonline.com/{TENANT}/v2.0\" (not checked: give --instance)
  --   tid         \"{TENANT}\" (not checked: give --tenant)
  FAIL aud         \"{CLIENT_ID}\": the token is not meant for this API (wrong audience) (wrong_audience)
  ok   oid         \"00000000-0000-0000-0000-0000000000aa\"
  ok   permissions scp=\"access_as_user\" roles=absent
decision:  deny (wrong_audience): the token is not meant for this API (wrong audience)
response:
  HTTP/1.1 401 Unauthorized
  content-type: application/json
  www-authenticate: Bearer error=\"invalid_token\", error_description=\"the token is not meant for this API (wrong audience)\"

  {{\"detail\":\"the token is not meant for this API (wrong audience)\"}}
"
        ),
        "",
    );
}

#[test]
fn explain_a_token_with_jwks_verifies_the_signature() {
    let key = TestKey::generate("key-1");
    let other = TestKey::generate("key-1");
    let jwks = json!({"keys": [key.jwk()]}).to_string();
    let args = |token: &str| -> Vec<String> {
        [
            "explain",
            "GET",
            "/todoitems",
            "--jwks",
            "jwks.json",
            "--client-id",
            CLIENT_ID,
            "--tenant",
            TENANT,
            "--instance",
            "https://login.microsoftonline.com",
            "--token",
            token,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let dir = dir_with(&[("policy.yaml", DEMO), ("jwks.json", &jwks)]);

    let good = key.sign(&claims());
    let out = run(
        dir.path(),
        &args(&good).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains("  ok   signature   kid=key-1\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("not checked"), "{}", out.stdout);
    assert!(
        out.stdout.contains("decision:  allow: forwarded"),
        "{}",
        out.stdout
    );

    let forged = other.sign(&claims());
    let out = run(
        dir.path(),
        &args(&forged).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        out.stdout.contains(
            "  FAIL signature   kid=key-1: the token signature is invalid (bad_signature)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("decision:  deny (bad_signature)"),
        "{}",
        out.stdout
    );
}

#[test]
fn explain_refuses_an_unknown_method_and_a_broken_policy() {
    check(
        &[("policy.yaml", DEMO)],
        &["explain", "G T", "/"],
        1,
        "",
        "error: `G T` is not an HTTP method\n",
    );
    check(
        &[("policy.yaml", "version: 1\n")],
        &["explain", "GET", "/"],
        1,
        "",
        "policy.yaml:1:1: missing `routes`\n",
    );
}

const CASES: &str = "\
cases:
  - {method: GET, path: /health, expect: allow, route: health}
  - {method: GET, path: /todoitems, expect: 401}
  - {method: DELETE, path: /todoitems, scopes: [access_as_user], expect: allow}
  - {method: GET, path: /todoitems/7, scopes: [access_as_user], expect: allow, route: todos}
  - method: GET
    path: /todoitems
    claims: {scp: access_as_user, exp: 1000000000}
    expect: 401
  - {method: PUT, path: /todoitems, expect: 405}
";

#[test]
fn test_reports_each_case_and_exits_1_when_one_fails() {
    check(
        &[("policy.yaml", DEMO), ("cases.yaml", CASES)],
        &["test", "cases.yaml"],
        1,
        "\
cases.yaml:2: ok    GET /health -> allow (route health)
cases.yaml:3: ok    GET /todoitems -> 401 (route todos)
cases.yaml:4: FAIL  DELETE /todoitems: expected allow, got 403 missing_role: the role Admin is required (route delete-all)
cases.yaml:5: FAIL  GET /todoitems/7: expected route todos, got allow by route one-todo
cases.yaml:6: ok    GET /todoitems -> 401 (route todos)
cases.yaml:10: ok    PUT /todoitems -> 405
6 cases: 4 passed, 2 failed
",
        "",
    );
}

#[test]
fn test_of_the_shipped_cases_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = run(
        &root,
        &["test", "--policy", "policy.yaml", "policy.cases.yaml"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.ends_with(" passed, 0 failed\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn test_refuses_unknown_expectations_and_keys_with_their_places() {
    let cases = "\
cases:
  - {method: GET, path: /health, expect: 402}
  - {method: GET, path: /health, expect: allowed}
";
    check(
        &[("policy.yaml", DEMO), ("cases.yaml", cases)],
        &["test", "cases.yaml"],
        1,
        "",
        "\
cases.yaml:2:42: unknown expectation `402`; expected allow, 400, 401, 403, 404 or 405
cases.yaml:3:42: unknown expectation `allowed`; expected allow, 400, 401, 403, 404 or 405
",
    );
    check(
        &[
            ("policy.yaml", DEMO),
            (
                "cases.yaml",
                "cases:\n  - {method: GET, path: /health, expect: allow, role: [Admin]}\n",
            ),
        ],
        &["test", "cases.yaml"],
        1,
        "",
        &format!("cases.yaml:2:49: unknown field `role`, expected one of {CASE_KEYS}\n"),
    );
}

/// The keys of a case, in the order an unknown key's message lists them.
const CASE_KEYS: &str = "method, path, roles, scopes, app, apps, tenant, guest, aud, acrs, \
cp1, groups, groups_overage, claims, expect, route";

#[test]
fn test_reports_every_mistake_in_the_cases_file_at_once_and_runs_nothing() {
    // Three different mistakes in three cases: each would have hidden the
    // others when the file was read with serde.
    let broken = "\
cases:
  - method: GET
    path: /health
    colour: blue
    expect: allow
  - method: DELETE
    path: /todoitems
    scopes: access_as_user
    expect: 403
  - method: G ET
    path: /todoitems
    expect: 401
";
    check(
        &[("policy.yaml", DEMO), ("cases.yaml", broken)],
        &["test", "cases.yaml"],
        1,
        "",
        &format!(
            "\
cases.yaml:4:5: unknown field `colour`, expected one of {CASE_KEYS}
cases.yaml:8:13: `scopes` must be a list; found `access_as_user`
cases.yaml:10:13: `G ET` is not an HTTP method
"
        ),
    );
    // The same file with the three mistakes corrected runs.
    let fixed = broken
        .replace("    colour: blue\n", "")
        .replace("scopes: access_as_user", "scopes: [access_as_user]")
        .replace("G ET", "GET");
    check(
        &[("policy.yaml", DEMO), ("cases.yaml", &fixed)],
        &["test", "cases.yaml"],
        0,
        "\
cases.yaml:2: ok    GET /health -> allow (route health)
cases.yaml:5: ok    DELETE /todoitems -> 403 (route delete-all)
cases.yaml:9: ok    GET /todoitems -> 401 (route todos)
3 cases: 3 passed, 0 failed
",
        "",
    );
}

#[test]
fn test_reports_missing_values_wrong_types_and_bad_claims_with_their_places() {
    let broken = "\
cases:
  - {method: GET, expect: allow}
  - {method: GET, path: /todoitems, app: maybe, apps: [a, b], expect: 403}
  - {method: GET, path: /todoitems, claims: [scp], expect: 401}
  - {method: GET, path: /todoitems, claims: {scp: {[a]: b}}, expect: 401}
  - {method: [GET], path: /health, expect: allow}
  - just a string
colour: blue
";
    check(
        &[("policy.yaml", DEMO), ("cases.yaml", broken)],
        &["test", "cases.yaml"],
        1,
        "",
        "\
cases.yaml:2:5: case has no `path`
cases.yaml:3:42: `app` must be `true` or `false`; found `maybe`
cases.yaml:3:55: a case's `apps` names the one calling app; a token has one `azp`
cases.yaml:4:45: `claims` must be a mapping of claim names to values; found a list
cases.yaml:5:52: expected string scalar
cases.yaml:6:14: expected string scalar
cases.yaml:7:5: expected mapping start
cases.yaml:8:1: unknown field `colour`, expected one of cases
",
    );
    check(
        &[("policy.yaml", DEMO), ("cases.yaml", "tests: []\n")],
        &["test", "cases.yaml"],
        1,
        "",
        "\
cases.yaml:1:1: missing `cases`
cases.yaml:1:1: unknown field `tests`, expected one of cases
",
    );
    // A YAML syntax error is the one mistake that stops the reading.
    check(
        &[
            ("policy.yaml", DEMO),
            ("cases.yaml", "cases:\n  - {method: GET, path: /health\n"),
        ],
        &["test", "cases.yaml"],
        1,
        "",
        "cases.yaml:2:5: unclosed bracket '{'\n",
    );
}

const CONDITIONS: &str = "version: 1
defaults:
  guests: deny
routes:
  - name: reports
    path: /reports/**
    methods: [GET]
    scopes: [access_as_user]
    apps: [c0ffee00-0000-4000-8000-0000000000c3]
    tenants: [aaaaaaaa-0000-4000-8000-000000000001]
    callers: [user]
  - name: jobs
    path: /jobs
    methods: [POST]
    callers: [app]
    guests: allow
";

#[test]
fn explain_lists_each_condition_with_ok_or_fail() {
    check(
        &[("policy.yaml", CONDITIONS)],
        &[
            "explain",
            "GET",
            "/reports/q1",
            "--scopes",
            "access_as_user",
            "--client-app",
            "c0ffee00-0000-4000-8000-0000000000c3",
            "--tenant",
            "bbbbbbbb-0000-4000-8000-000000000002",
            "--guest",
        ],
        0,
        "\
request:   GET /reports/q1
path:      /reports/q1 (normalised: matched and forwarded)
route:     reports (policy.yaml:5)
requires:  a valid token with scope access_as_user and calling app c0ffee00-0000-4000-8000-0000000000c3 and tenant aaaaaaaa-0000-4000-8000-000000000001 and user (delegated) tokens only and no guest accounts
caller:    user, roles -, scopes access_as_user, tenant bbbbbbbb-0000-4000-8000-000000000002, app c0ffee00-0000-4000-8000-0000000000c3, guest
conditions:
  ok   scopes   scope access_as_user
  ok   apps     calling app c0ffee00-0000-4000-8000-0000000000c3
  FAIL tenants  tenant aaaaaaaa-0000-4000-8000-000000000001: this route admits only certain tenants (wrong_tenant_for_route)
  ok   callers  user (delegated) tokens only
  FAIL guests   no guest accounts: guest accounts may not use this route (guest_denied)
decision:  deny (wrong_tenant_for_route): this route admits only certain tenants
response:
  HTTP/1.1 403 Forbidden
  content-type: application/json
  www-authenticate: Bearer error=\"insufficient_scope\", error_description=\"this route admits only certain tenants\"

  {\"detail\":\"this route admits only certain tenants\"}
",
        "",
    );
}

#[test]
fn test_cases_can_name_the_calling_app_the_tenant_and_a_guest() {
    let cases = "cases:
  - {method: GET, path: /reports/q1, scopes: [access_as_user], apps: [c0ffee00-0000-4000-8000-0000000000c3], tenant: aaaaaaaa-0000-4000-8000-000000000001, expect: allow}
  - {method: GET, path: /reports/q1, scopes: [access_as_user], apps: [c0ffee00-0000-4000-8000-0000000000c3], tenant: aaaaaaaa-0000-4000-8000-000000000001, guest: true, expect: 403}
  - {method: GET, path: /reports/q1, scopes: [access_as_user], tenant: aaaaaaaa-0000-4000-8000-000000000001, expect: 403}
  - {method: POST, path: /jobs, app: true, roles: [Jobs.Run], guest: true, expect: allow}
  - {method: POST, path: /jobs, scopes: [access_as_user], expect: allow}
";
    check(
        &[("policy.yaml", CONDITIONS), ("cases.yaml", cases)],
        &["test", "cases.yaml"],
        1,
        "\
cases.yaml:2: ok    GET /reports/q1 -> allow (route reports)
cases.yaml:3: ok    GET /reports/q1 -> 403 (route reports)
cases.yaml:4: ok    GET /reports/q1 -> 403 (route reports)
cases.yaml:5: ok    POST /jobs -> allow (route jobs)
cases.yaml:6: FAIL  POST /jobs: expected allow, got 403 wrong_caller_type: this route admits only app-only tokens (route jobs)
5 cases: 4 passed, 1 failed
",
        "",
    );
}

#[test]
fn explain_a_shadow_route_allows_and_says_what_would_deny() {
    let policy = "version: 1
routes:
  - {name: reports, path: /reports, methods: [GET], callers: [app], enforce: shadow}
";
    check(
        &[("policy.yaml", policy)],
        &["explain", "GET", "/reports", "--scopes", "access_as_user"],
        0,
        "\
request:   GET /reports
path:      /reports (normalised: matched and forwarded)
route:     reports (policy.yaml:3)
requires:  a valid token with app-only tokens only
caller:    user, roles -, scopes access_as_user, tenant 00000000-0000-0000-0000-000000000000, app -
conditions:
  FAIL callers  app-only tokens only: this route admits only app-only tokens (wrong_caller_type)
decision:  allow: forwarded to the upstream as GET /reports
           enforce: shadow: would deny (wrong_caller_type): this route admits only app-only tokens
           x-user-id: 00000000-0000-0000-0000-0000000000aa
           x-user-tenant: 00000000-0000-0000-0000-000000000000
           x-user-roles: \n           x-user-scopes: access_as_user
           x-user-type: user
",
        "",
    );
}

#[test]
fn explain_names_the_upstream_and_the_path_after_its_strip_prefix() {
    let policy = "version: 1
upstreams:
  reports: {url: 'http://reports:8081', strip_prefix: /reports}
routes:
  - {name: reports, path: /reports/**, methods: [GET], allow: anonymous, upstream: reports}
  - {name: orders, path: /orders, methods: [GET], allow: anonymous}
";
    let dir = dir_with(&[("policy.yaml", policy)]);
    for (path, forwarded) in [
        ("/reports/q1/", "to upstream `reports` as GET /q1/"),
        ("/reports/q1/../q2", "to upstream `reports` as GET /q2"),
        ("/orders", "to the upstream as GET /orders"),
    ] {
        let output = run(dir.path(), &["explain", "GET", path]);
        assert_eq!(output.code, 0, "{}", output.stderr);
        assert!(
            output
                .stdout
                .contains(&format!("decision:  allow: forwarded {forwarded}\n")),
            "{path}: {}",
            output.stdout
        );
    }
}

const STEP_UP: &str = "version: 1
routes:
  - {name: wipe, path: /todoitems, methods: [DELETE], scopes: [access_as_user], auth_context: [c1]}
";

#[test]
fn explain_auth_context_shows_the_claims_challenge_for_a_cp1_client() {
    check(
        &[("policy.yaml", STEP_UP)],
        &[
            "explain",
            "DELETE",
            "/todoitems",
            "--scopes",
            "access_as_user",
            "--cp1",
            "--tenant",
            "aaaaaaaa-0000-4000-8000-000000000001",
        ],
        0,
        "\
request:   DELETE /todoitems
path:      /todoitems (normalised: matched and forwarded)
route:     wipe (policy.yaml:3)
requires:  a valid token with scope access_as_user and authentication context c1
caller:    user, roles -, scopes access_as_user, tenant aaaaaaaa-0000-4000-8000-000000000001, app -, cp1
conditions:
  ok   scopes   scope access_as_user
  FAIL auth_context authentication context c1: this route needs authentication context c1; sign in again with the claims of the WWW-Authenticate challenge (auth_context_required)
decision:  deny (auth_context_required): this route needs authentication context c1; sign in again with the claims of the WWW-Authenticate challenge
response:
  HTTP/1.1 401 Unauthorized
  content-type: application/json
  www-authenticate: Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/aaaaaaaa-0000-4000-8000-000000000001/oauth2/v2.0/authorize\", error=\"insufficient_claims\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19\"

  {\"detail\":\"this route needs authentication context c1; sign in again with the claims of the WWW-Authenticate challenge\"}
",
        "",
    );
}

#[test]
fn test_cases_give_acrs_and_cp1_for_auth_context() {
    let cases = "cases:
  - {method: DELETE, path: /todoitems, scopes: [access_as_user], acrs: [c1], expect: allow}
  - {method: DELETE, path: /todoitems, scopes: [access_as_user], acrs: [c2], cp1: true, expect: 401}
  - {method: DELETE, path: /todoitems, scopes: [access_as_user], expect: 403}
";
    check(
        &[("policy.yaml", STEP_UP), ("cases.yaml", cases)],
        &["test", "cases.yaml"],
        0,
        "\
cases.yaml:2: ok    DELETE /todoitems -> allow (route wipe)
cases.yaml:3: ok    DELETE /todoitems -> 401 (route wipe)
cases.yaml:4: ok    DELETE /todoitems -> 403 (route wipe)
3 cases: 3 passed, 0 failed
",
        "",
    );
}

const TWO_APIS: &str = "\
version: 1
upstreams:
  reports: {url: 'http://reports:8080'}
routes:
  - {name: health, path: /health, methods: [GET], allow: anonymous}
  - {name: orders, path: /orders, methods: [GET]}
  - {name: reports, path: /reports, methods: [GET], upstream: reports, audiences: [api://reports]}
";

#[test]
fn check_lists_where_each_route_sends_and_which_tokens_it_accepts() {
    check(
        &[("policy.yaml", TWO_APIS)],
        &["check"],
        0,
        "ok: 3 routes
  route `health` (line 5): the default upstream (--upstream); no token (anonymous)
  route `orders` (line 6): the default upstream (--upstream); tokens for the gateway's audiences (--client-id, --audience)
  route `reports` (line 7): upstream `reports`; tokens for api://reports
",
        "",
    );
}

#[test]
fn explain_says_a_token_for_another_api_is_refused_on_a_route() {
    let dir = dir_with(&[("policy.yaml", TWO_APIS)]);
    let refused = run(
        dir.path(),
        &[
            "explain",
            "GET",
            "/reports",
            "--aud",
            "api://orders",
            "--scopes",
            "x",
        ],
    );
    assert_eq!(refused.code, 0, "{refused:?}");
    assert!(
        refused
            .stdout
            .contains("requires:  a valid token for api://reports\n"),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stdout.contains(
            "decision:  deny (wrong_audience): the token is not meant for this API \
             (wrong audience for route `reports`)\n"
        ),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stdout.contains("HTTP/1.1 401 Unauthorized"),
        "{}",
        refused.stdout
    );

    // A described caller with no `--aud` holds a token every route accepts.
    let allowed = run(
        dir.path(),
        &["explain", "GET", "/reports", "--roles", "Reader"],
    );
    assert!(
        allowed.stdout.contains("decision:  allow"),
        "{}",
        allowed.stdout
    );

    // A real token for the reports API, checked as the gateway would: it
    // passes authentication (a route accepts its audience) and the reports
    // route, and is refused on the orders route.
    let key = TestKey::generate("key-1");
    let mut claims = claims();
    claims["aud"] = json!("api://reports");
    let token = key.sign(&claims);
    let base = [
        "--token",
        token.as_str(),
        "--client-id",
        CLIENT_ID,
        "--tenant",
        TENANT,
    ];
    let on_reports = run(
        dir.path(),
        &[&["explain", "GET", "/reports"][..], &base].concat(),
    );
    assert!(
        on_reports.stdout.contains("decision:  allow"),
        "{}",
        on_reports.stdout
    );
    let on_orders = run(
        dir.path(),
        &[&["explain", "GET", "/orders"][..], &base].concat(),
    );
    assert!(
        on_orders
            .stdout
            .contains("wrong audience for route `orders`"),
        "{}",
        on_orders.stdout
    );
}

const GROUPS: &str = "\
version: 1
routes:
  - {name: finance, path: /budget, methods: [GET], scopes: [access_as_user], groups: [6f1c0000-0000-4000-8000-00000000f1a0]}
";

#[test]
fn explain_a_groups_overage_needs_graph_unless_its_answer_is_given() {
    check(
        &[("policy.yaml", GROUPS)],
        &[
            "explain",
            "GET",
            "/budget",
            "--scopes",
            "access_as_user",
            "--groups-overage",
        ],
        0,
        "\
request:   GET /budget
path:      /budget (normalised: matched and forwarded)
route:     finance (policy.yaml:3)
requires:  a valid token with scope access_as_user and group 6f1c0000-0000-4000-8000-00000000f1a0
caller:    user, roles -, scopes access_as_user, tenant 00000000-0000-0000-0000-000000000000, app -, groups overage
conditions:
  ok   scopes   scope access_as_user
  FAIL groups   group 6f1c0000-0000-4000-8000-00000000f1a0: this route admits only members of certain groups, and the token has a groups overage (more groups than a token lists) that could not be resolved: explain and test do not ask Microsoft Graph (needs Graph; give the groups Graph would answer) (groups_unresolved)
decision:  deny (groups_unresolved): this route admits only members of certain groups, and the token has a groups overage (more groups than a token lists) that could not be resolved: explain and test do not ask Microsoft Graph (needs Graph; give the groups Graph would answer)
response:
  HTTP/1.1 403 Forbidden
  content-type: application/json
  www-authenticate: Bearer error=\"insufficient_scope\", error_description=\"this route admits only members of certain groups, and the token has a groups overage (more groups than a token lists) that could not be resolved: explain and test do not ask Microsoft Graph (needs Graph; give the groups Graph would answer)\"

  {\"detail\":\"this route admits only members of certain groups, and the token has a groups overage (more groups than a token lists) that could not be resolved: explain and test do not ask Microsoft Graph (needs Graph; give the groups Graph would answer)\"}
",
        "",
    );
}

#[test]
fn test_cases_give_groups_and_a_groups_overage() {
    let cases = "cases:
  - {method: GET, path: /budget, scopes: [access_as_user], groups: [6f1c0000-0000-4000-8000-00000000f1a0], expect: allow}
  - {method: GET, path: /budget, scopes: [access_as_user], groups: [6f1c0000-0000-4000-8000-0000000000b0], expect: 403}
  - {method: GET, path: /budget, scopes: [access_as_user], groups_overage: true, expect: 403}
  - {method: GET, path: /budget, scopes: [access_as_user], groups_overage: true, groups: [6F1C0000-0000-4000-8000-00000000F1A0], expect: allow}
  - {method: GET, path: /budget, scopes: [access_as_user], groups_overage: true, groups: [6f1c0000-0000-4000-8000-0000000000b0], expect: 403}
  - {method: GET, path: /budget, scopes: [access_as_user], groups_overage: true, expect: allow}
";
    check(
        &[("policy.yaml", GROUPS), ("cases.yaml", cases)],
        &["test", "cases.yaml"],
        1,
        "\
cases.yaml:2: ok    GET /budget -> allow (route finance)
cases.yaml:3: ok    GET /budget -> 403 (route finance)
cases.yaml:4: ok    GET /budget -> 403 (route finance)
cases.yaml:5: ok    GET /budget -> allow (route finance)
cases.yaml:6: ok    GET /budget -> 403 (route finance)
cases.yaml:7: FAIL  GET /budget: expected allow, got 403 groups_unresolved: this route admits only members of certain groups, and the token has a groups overage (more groups than a token lists) that could not be resolved: explain and test do not ask Microsoft Graph (needs Graph; give the groups Graph would answer) (route finance)
6 cases: 5 passed, 1 failed
",
        "",
    );
}
