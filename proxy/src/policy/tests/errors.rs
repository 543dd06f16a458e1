//! Every error a policy file can produce, with its exact text and place.

use super::dedent;
use crate::policy::Policy;

/// `yaml` must fail with exactly `expected` (one error per line).
#[track_caller]
fn check(yaml: &str, expected: &str) {
    let errors = match Policy::parse(&dedent(yaml), "policy.yaml") {
        Ok(_) => panic!("policy compiled, expected:\n{expected}"),
        Err(errors) => errors.to_string(),
    };
    assert_eq!(errors, dedent(expected).trim_end());
}

#[test]
fn yaml_syntax_errors_have_line_and_column() {
    check(
        "
        version: 1
        routes: [
        ",
        "policy.yaml:2:9: unclosed bracket '['",
    );
    check(
        "
        version: 1
        routes:
          - name: a
             path: /a
        ",
        "policy.yaml:4:10: mapping values are not allowed in this context",
    );
}

#[test]
fn unknown_keys_are_errors() {
    check(
        "
        version: 1
        routes:
          - name: todos
            path: /todoitems
            methods: [GET]
            role: [Admin]
        ",
        "policy.yaml:6:5: unknown field `role`, expected one of name, path, paths, methods, allow, roles, scopes, forward_authorization, extra, upstream, max_body_bytes, audiences, apps, tenants, callers, guests, groups, auth_context, enforce",
    );
    check(
        "
        version: 1
        rules: []
        ",
        "
        policy.yaml:1:1: missing `routes`
        policy.yaml:2:1: unknown field `rules`, expected one of version, identity_headers, upstreams, routes, defaults
        ",
    );
    check(
        "
        version: 1
        identity_headers:
          user: X-User
        routes: []
        ",
        "
        policy.yaml:3:3: unknown field `user`, expected one of user_id, tenant, roles, scopes, name, email, type, assertion
        policy.yaml:4:9: `routes` is empty; every request would get 404
        ",
    );
}

#[test]
fn wrong_types_are_errors() {
    check(
        "
        version: 1
        routes:
          - name: [a]
        ",
        "policy.yaml:3:11: expected string scalar",
    );
    check("- a\n", "policy.yaml:1:1: expected mapping start");
    check(
        "
        version: 1
        routes:
          - name: a
            path: /a
            methods: [GET]
            scopes: access_as_user
          - wrong
        ",
        "
        policy.yaml:6:13: `scopes` must be a list; found `access_as_user`
        policy.yaml:7:5: expected mapping start
        ",
    );
}

#[test]
fn duplicate_keys_are_errors() {
    check(
        "
        version: 1
        version: 1
        ",
        // Reported with the file's other errors, no longer alone.
        "
        policy.yaml:1:1: missing `routes`
        policy.yaml:2:1: duplicate mapping key `version` is not allowed here
        ",
    );
}

#[test]
fn version_must_be_1() {
    check(
        "
        version: 2
        routes:
          - {name: a, path: /a, methods: [GET]}
        ",
        "policy.yaml:1:10: unsupported version `2`; expected 1",
    );
    check(
        "
        routes:
          - {name: a, path: /a, methods: [GET]}
        ",
        "policy.yaml:1:1: missing `version: 1`",
    );
}

#[test]
fn an_empty_file_reports_everything_missing() {
    check(
        "",
        "
        policy.yaml:1:1: missing `version: 1`
        policy.yaml:1:1: missing `routes`
        ",
    );
    check(
        "
        version: 1
        routes: []
        ",
        "policy.yaml:2:9: `routes` is empty; every request would get 404",
    );
}

#[test]
fn routes_need_a_name_a_path_or_paths_and_methods() {
    check(
        "
        version: 1
        routes:
          - path: /a
            methods: [GET]
          - name: b
            methods: [GET]
          - name: c
            path: /c
            paths: [/c]
            methods: [GET]
          - name: d
            paths: []
            methods: [GET]
          - name: e
            path: /e
          - name: f
            path: /f
            methods: []
        ",
        "
        policy.yaml:3:5: route has no `name`
        policy.yaml:5:5: route `b` has no `path` or `paths`
        policy.yaml:9:12: `path` and `paths` cannot both be given
        policy.yaml:12:12: `paths` is empty
        policy.yaml:14:5: route `e` has no `methods`
        policy.yaml:18:14: `methods` is empty
        ",
    );
}

#[test]
fn duplicate_route_names_point_at_the_second() {
    check(
        "
        version: 1
        routes:
          - name: todos
            path: /todoitems
            methods: [GET]
          - name: todos
            path: /todoitems
            methods: [POST]
          - name: ' '
            path: /x
            methods: [GET]
        ",
        "
        policy.yaml:6:11: duplicate route name `todos` (first on line 3)
        policy.yaml:9:11: empty route name
        ",
    );
}

#[test]
fn bad_globs_are_errors() {
    check(
        "
        version: 1
        routes:
          - name: a
            paths:
              - todoitems
              - /todoitems/[
              - /todoitems/{a,b
              - /a**
              - /a\\*
            methods: [GET]
        ",
        r"
        policy.yaml:5:9: path `todoitems` must start with `/`
        policy.yaml:6:9: invalid glob `/todoitems/[`: unclosed character class; missing ']'
        policy.yaml:7:9: invalid glob `/todoitems/{a,b`: unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)
        policy.yaml:8:9: invalid glob `/a**`: `**` must be a whole segment
        policy.yaml:9:9: path `/a\*` contains a backslash; requests with one are refused (to match a literal `*`, write `[*]`)
        ",
    );
}

#[test]
fn globs_must_be_in_normalised_form() {
    check(
        "
        version: 1
        routes:
          - name: a
            paths:
              - /health/../todoitems
              - //todoitems
              - /./todoitems
              - /todoitems%2F1
              - /%74odoitems
              - /a%3fb
              - /café
              - /a b
              - /health/..;/todoitems
              - /%zz
              - /todoitems/
              - /caf%E9
              - /ok/*/**/{a,b}/[0-9]?
              - /
            methods: [GET]
        ",
        "
        policy.yaml:5:9: path `/health/../todoitems` is not normalised: dot-segment `..`
        policy.yaml:6:9: path `//todoitems` is not normalised: `//` is merged into `/`
        policy.yaml:7:9: path `/./todoitems` is not normalised: dot-segment `.`
        policy.yaml:8:9: path `/todoitems%2F1` can never match: requests containing `%2F` are refused
        policy.yaml:9:9: path `/%74odoitems` is not normalised: write `t` for `%74`
        policy.yaml:10:9: path `/a%3fb` is not normalised: write `%3F` for `%3f`
        policy.yaml:11:9: path `/café` is not normalised: write `%C3%A9` for `é`
        policy.yaml:12:9: path `/a b` is not normalised: write `%20` for ` `
        policy.yaml:13:9: path `/health/..;/todoitems` can never match: requests with `;` on an empty or dot-segment are refused
        policy.yaml:14:9: invalid percent-escape `%zz` in path `/%zz`
        policy.yaml:15:9: path `/todoitems/` ends with `/`; trailing slashes are ignored when matching, write `/todoitems`
        policy.yaml:16:9: path `/caf%E9` can never match: its escapes are not valid UTF-8
        ",
    );
}

#[test]
fn unknown_methods_and_lowercase_ones() {
    check(
        "
        version: 1
        routes:
          - name: a
            path: /a
            methods: [get, FETCH, GET, GET, CONNECT]
        ",
        "
        policy.yaml:5:15: unknown method `get`; did you mean GET?
        policy.yaml:5:20: unknown method `FETCH`; expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
        policy.yaml:5:32: duplicate method `GET`
        policy.yaml:5:37: unknown method `CONNECT`; expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
        ",
    );
}

#[test]
fn role_and_scope_names() {
    check(
        "
        version: 1
        routes:
          - name: a
            path: /a
            methods: [GET]
            roles: ['', Task Admin, Admin, Admin]
            scopes: [api://1234/access_as_user]
          - name: b
            path: /b
            methods: [GET]
            roles: []
        ",
        "
        policy.yaml:6:13: empty role name
        policy.yaml:6:17: role `Task Admin` contains whitespace
        policy.yaml:6:36: duplicate role `Admin`
        policy.yaml:7:14: scope `api://1234/access_as_user` never appears in tokens; write `access_as_user`
        policy.yaml:11:12: `roles` is empty; omit it to admit any valid token
        ",
    );
}

#[test]
fn anonymous_cannot_be_combined_with_requirements() {
    check(
        "
        version: 1
        routes:
          - name: a
            path: /a
            methods: [GET]
            allow: anonymous
            roles: [Admin]
            forward_authorization: true
          - name: b
            path: /b
            methods: [GET]
            allow: public
        ",
        "
        policy.yaml:6:12: `allow: anonymous` cannot be combined with `roles`, `scopes`, `apps`, `tenants`, `callers`, `guests`, `groups`, `auth_context` or `enforce`
        policy.yaml:8:28: `forward_authorization` cannot be used with `allow: anonymous`
        policy.yaml:12:12: unknown `allow` value `public`; expected `anonymous` or `authenticated`
        ",
    );
}

#[test]
fn identity_header_names_are_validated() {
    check(
        "
        version: 1
        identity_headers:
          user_id: X User
          tenant: Host
          roles: X-Roles
          scopes: x-roles
          name: X_User.Email
        routes:
          - {name: a, path: /a, methods: [GET]}
        ",
        "
        policy.yaml:3:12: invalid header name `X User`
        policy.yaml:4:11: header name `Host` is reserved
        policy.yaml:5:10: header name `X-Roles` is used for two identity fields
        policy.yaml:6:11: header name `x-roles` is used for two identity fields
        policy.yaml:7:9: header name `X_User.Email` is used for two identity fields
        ",
    );
}

#[test]
fn all_errors_are_reported_at_once_in_file_order() {
    check(
        "
        version: 3
        routes:
          - name: a
            path: a
            methods: [get]
          - name: a
            path: /b
            methods: [GET]
            scopes: ['']
        ",
        "
        policy.yaml:1:10: unsupported version `3`; expected 1
        policy.yaml:4:11: path `a` must start with `/`
        policy.yaml:5:15: unknown method `get`; did you mean GET?
        policy.yaml:6:11: duplicate route name `a` (first on line 3)
        policy.yaml:9:14: empty scope name
        ",
    );
}

#[test]
fn an_unreadable_file_names_the_file() {
    let errors = Policy::load(std::path::Path::new("/nonexistent/policy.yaml")).unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    assert!(
        errors
            .to_string()
            .starts_with("/nonexistent/policy.yaml: cannot read policy: "),
        "{errors}"
    );
}

#[test]
fn caller_conditions_are_validated_where_written() {
    check(
        "
        version: 1
        defaults:
          guests: maybe
          callers: []
        routes:
          - name: a
            path: /a
            methods: [GET]
            apps: [c0ffee00-0000-4000-8000-0000000000a1, api://client, C0FFEE00-0000-4000-8000-0000000000A1]
            tenants: [contoso.onmicrosoft.com]
            callers: [user, robot, user]
            guests: never
          - name: b
            path: /b
            methods: [GET]
            allow: anonymous
            guests: deny
          - name: c
            path: /c
            methods: [GET]
            apps: []
        ",
        "
        policy.yaml:3:11: unknown `guests` value `maybe`; expected `allow` or `deny`
        policy.yaml:4:12: `callers` is empty; omit it to admit users and apps
        policy.yaml:9:50: app `api://client` is not a client id (Entra admin center: App registrations → the client app → Application (client) ID)
        policy.yaml:9:64: duplicate app `C0FFEE00-0000-4000-8000-0000000000A1`
        policy.yaml:10:15: tenant `contoso.onmicrosoft.com` is not a tenant id (Entra admin center: Overview → Tenant ID)
        policy.yaml:11:21: unknown caller `robot`; expected `user` or `app`
        policy.yaml:11:28: duplicate caller `user`
        policy.yaml:12:13: unknown `guests` value `never`; expected `allow` or `deny`
        policy.yaml:16:12: `allow: anonymous` cannot be combined with `roles`, `scopes`, `apps`, `tenants`, `callers`, `guests`, `groups`, `auth_context` or `enforce`
        policy.yaml:21:11: `apps` is empty; omit it to admit any app
        ",
    );
}

#[test]
fn enforce_is_deny_or_shadow_on_token_routes() {
    check(
        "
        version: 1
        routes:
          - {name: a, path: /a, methods: [GET], roles: [Admin], enforce: shadow}
          - {name: b, path: /b, methods: [GET], enforce: dry-run}
          - {name: c, path: /c, methods: [GET], allow: anonymous, enforce: shadow}
        ",
        "
        policy.yaml:4:50: unknown `enforce` value `dry-run`; expected `deny` or `shadow`
        policy.yaml:5:48: `allow: anonymous` cannot be combined with `roles`, `scopes`, `apps`, `tenants`, `callers`, `guests`, `groups`, `auth_context` or `enforce`
        ",
    );
}

#[test]
fn auth_context_ids_are_validated_where_written() {
    check(
        "
        version: 1
        defaults:
          auth_context: [c100]
        routes:
          - name: a
            path: /a
            methods: [GET]
            auth_context: [c1, C2, c0, c07, step-up, c1]
          - name: b
            path: /b
            methods: [GET]
            auth_context: []
          - {name: c, path: /c, methods: [GET], allow: anonymous, auth_context: [c1]}
        ",
        "
        policy.yaml:3:18: authentication context `c100` is not an id from c1 to c99 (Entra admin center: Conditional Access → Authentication context)
        policy.yaml:8:24: authentication context `C2` is not an id from c1 to c99 (Entra admin center: Conditional Access → Authentication context)
        policy.yaml:8:28: authentication context `c0` is not an id from c1 to c99 (Entra admin center: Conditional Access → Authentication context)
        policy.yaml:8:32: authentication context `c07` is not an id from c1 to c99 (Entra admin center: Conditional Access → Authentication context)
        policy.yaml:8:37: authentication context `step-up` is not an id from c1 to c99 (Entra admin center: Conditional Access → Authentication context)
        policy.yaml:8:46: duplicate authentication context `c1`
        policy.yaml:12:19: `auth_context` is empty; omit it to need no authentication context
        policy.yaml:13:48: `allow: anonymous` cannot be combined with `roles`, `scopes`, `apps`, `tenants`, `callers`, `guests`, `groups`, `auth_context` or `enforce`
        ",
    );
}

#[test]
fn group_ids_are_validated_where_written() {
    check(
        "
        version: 1
        defaults:
          groups: [not-a-guid]
        routes:
          - name: a
            path: /a
            methods: [GET]
            groups: [6F1C0000-0000-4000-8000-00000000000A, 'Finance Team', 6f1c0000-0000-4000-8000-00000000000a]
          - name: b
            path: /b
            methods: [GET]
            groups: []
          - {name: c, path: /c, methods: [GET], allow: anonymous, groups: [6f1c0000-0000-4000-8000-00000000000a]}
          - {name: d, path: /d, methods: [GET], groups: 6f1c0000-0000-4000-8000-00000000000a}
        ",
        "
        policy.yaml:3:12: group `not-a-guid` is not a group object id (Entra admin center: Groups → All groups → the group → Object ID)
        policy.yaml:8:52: group `Finance Team` is not a group object id (Entra admin center: Groups → All groups → the group → Object ID)
        policy.yaml:8:68: duplicate group `6f1c0000-0000-4000-8000-00000000000a`
        policy.yaml:12:13: `groups` is empty; omit it to admit any group
        policy.yaml:13:48: `allow: anonymous` cannot be combined with `roles`, `scopes`, `apps`, `tenants`, `callers`, `guests`, `groups`, `auth_context` or `enforce`
        policy.yaml:14:49: `groups` must be a list; found `6f1c0000-0000-4000-8000-00000000000a`
        ",
    );
}

#[test]
fn audiences_are_validated_where_written() {
    check(
        "
        version: 1
        routes:
          - name: a
            path: /a
            methods: [GET]
            audiences: [api://reports, '', 'api://a b', api://reports]
          - name: b
            path: /b
            methods: [GET]
            audiences: []
          - name: c
            path: /c
            methods: [GET]
            allow: anonymous
            audiences: [api://reports]
        ",
        "
        policy.yaml:6:32: empty audience
        policy.yaml:6:36: audience \"api://a b\" contains whitespace
        policy.yaml:6:49: duplicate audience `api://reports`
        policy.yaml:10:16: `audiences` is empty; omit it to accept the gateway's audiences
        policy.yaml:15:16: `audiences` cannot be used with `allow: anonymous` (no token is read)
        ",
    );
}

#[test]
fn an_unknown_key_hides_no_other_error() {
    // The issue's example: `colour` on one route, a bad glob on another, an
    // unknown method on a third — all three, in file order.
    check(
        "
        version: 1
        routes:
          - name: a
            path: /a
            methods: [GET]
            colour: blue
          - name: b
            path: /b/[
            methods: [GET]
          - name: c
            path: /c
            methods: [FETCH]
        ",
        "
        policy.yaml:6:5: unknown field `colour`, expected one of name, path, paths, methods, allow, roles, scopes, forward_authorization, extra, upstream, max_body_bytes, audiences, apps, tenants, callers, guests, groups, auth_context, enforce
        policy.yaml:8:11: invalid glob `/b/[`: unclosed character class; missing ']'
        policy.yaml:12:15: unknown method `FETCH`; expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS
        ",
    );
}

#[test]
fn a_wrong_type_hides_no_other_error() {
    // The route with the wrong type is left out (its other values would
    // only give follow-up errors); upstreams and defaults are still checked.
    check(
        "
        version: 1
        upstreams:
          reports:
            url: ftp://reports
            timeout_seconds: soon
          billing:
            url: http://billing:8080
            colour: blue
        defaults:
          guests: maybe
        routes:
          - name: a
            path: /a
            methods: GET
          - name: b
            path: /b
            methods: [GET]
            max_body_bytes: lots
            extra: yes please
          - name: c
            path: /c
            methods: [GET]
            upstream: reports
            roles: [Admin, [x]]
          - name: d
            path: d
            methods: [GET]
            upstream: billing
        ",
        "
        policy.yaml:5:22: `timeout_seconds` must be a whole number; found `soon`
        policy.yaml:8:5: unknown field `colour`, expected one of url, host, strip_prefix, timeout_seconds, ca, client_cert, client_key, assertion_audience
        policy.yaml:10:11: unknown `guests` value `maybe`; expected `allow` or `deny`
        policy.yaml:14:14: `methods` must be a list, like `[GET, POST]`; found `GET`
        policy.yaml:18:21: `max_body_bytes` must be a whole number; found `lots`
        policy.yaml:19:12: `extra` must be `true` or `false`; found `yes please`
        policy.yaml:24:20: an item of `roles` must be a string; found a list
        policy.yaml:26:11: path `d` must start with `/`
        ",
    );
}

#[test]
fn duplicate_keys_are_reported_with_the_other_errors() {
    check(
        "
        version: 1
        routes:
          - name: a
            path: /a
            path: /b
            methods: [get]
        upstreams:
          x: {url: http://x}
          x: {url: http://y}
        ",
        "
        policy.yaml:5:5: duplicate mapping key `path` is not allowed here
        policy.yaml:6:15: unknown method `get`; did you mean GET?
        policy.yaml:9:3: duplicate mapping key `x` is not allowed here
        ",
    );
}

#[test]
fn top_level_values_of_the_wrong_type() {
    check(
        "
        version: one
        identity_headers: X-User
        routes: /a
        defaults: [guests]
        ",
        "
        policy.yaml:1:10: `version` must be a whole number; found `one`
        policy.yaml:2:19: expected mapping start
        policy.yaml:3:9: `routes` must be a list of routes, each starting with `- name:`
        policy.yaml:4:11: expected mapping start
        ",
    );
    // A route naming an upstream is not blamed for a broken `upstreams:`.
    check(
        "
        version: 1
        upstreams: [reports]
        routes:
          - {name: a, path: /a, methods: [GET], upstream: reports}
          - {name: b, path: /b, methods: [GET], upstream: reports, colour: blue}
        ",
        "
        policy.yaml:2:12: expected mapping start
        policy.yaml:5:60: unknown field `colour`, expected one of name, path, paths, methods, allow, roles, scopes, forward_authorization, extra, upstream, max_body_bytes, audiences, apps, tenants, callers, guests, groups, auth_context, enforce
        ",
    );
}
