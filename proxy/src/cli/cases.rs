//! `authz-proxy test CASES.yaml`: a table of requests and the outcome each
//! must have, run against the compiled policy; a report, and an exit code
//! for CI. Each case is decided by the same stages as `explain`.
//!
//! The file is read like `policy.yaml` (`policy::read_yaml`): into a tree
//! with places first, then every case is checked and every mistake in the
//! file (an unknown key, a value of the wrong type, a missing `method`, an
//! unknown method or expectation) is reported at once, as
//! `file:line:col: message` in file order, with exit code 1; no case runs
//! then.
//!
//! ```yaml
//! cases:
//!   - method: DELETE
//!     path: /todoitems
//!     scopes: [access_as_user]   # or roles, app: true, claims: {…}
//!     roles: [Admin]
//!     acrs: [c1]                 # authentication contexts satisfied
//!     cp1: true                  # the client handles claims challenges
//!     groups: [6f1c…]            # security-group object ids (`groups`)
//!     groups_overage: true       # an overage marker instead of `groups`:
//!                                # groups_unresolved (403), or with `groups`
//!                                # what Microsoft Graph would answer
//!     expect: allow              # allow | 400 | 401 | 403 | 404 | 405
//!     route: delete-all          # optional: which route must decide
//! ```

use std::path::PathBuf;

use clap::Args;
use http::Method;
use serde_saphyr::Spanned;

use super::decide::{self, Caller};
use super::{Output, read, unix_now};
use crate::auth::offline::{OfflineSettings, inspect_claims};
use crate::policy::{Node, Policy, Reader, read_yaml};

#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// The cases file.
    pub cases: PathBuf,
    /// The policy file the cases run against.
    #[arg(long, env = "POLICY_FILE", default_value = "policy.yaml")]
    pub policy: PathBuf,
}

/// One case as checked: every value valid, ready to run.
#[derive(Debug)]
struct Case {
    /// Where the case starts, for the report.
    line: u64,
    method: Method,
    path: String,
    /// The caller's roles (a token with a `roles` claim).
    roles: Vec<String>,
    /// The caller's delegated scopes (`scp`).
    scopes: Vec<String>,
    /// An app-only token.
    app: bool,
    /// The calling client application (`azp`), written `apps: [id]` like
    /// the policy's `apps`; a token has one.
    client_app: Option<String>,
    /// The caller's tenant (`tid`).
    tenant: Option<String>,
    /// A B2B guest (`acct: 1`).
    guest: bool,
    /// The token's audience (`aud`); without it, one every route accepts.
    aud: Option<String>,
    /// Authentication contexts the sign-in satisfied (`acrs`).
    acrs: Vec<String>,
    /// The client declares `cp1` (`xms_cc: ["cp1"]`): a missing
    /// authentication context is a claims challenge (401), not a 403.
    cp1: bool,
    /// Security-group object ids (`groups`); with `groups_overage`, what
    /// Microsoft Graph would answer.
    groups: Vec<String>,
    /// The token has a groups overage marker instead of `groups`.
    groups_overage: bool,
    /// The token's claims, instead of roles/scopes/app.
    claims: Option<serde_json::Value>,
    /// `allow` or a status code.
    expected: &'static str,
    /// The route that must decide.
    route: Option<String>,
}

/// What `expect:` may say.
const EXPECTATIONS: [&str; 6] = ["allow", "400", "401", "403", "404", "405"];

pub fn run(args: &TestArgs) -> Output {
    let policy_file = args.policy.display().to_string();
    let policy = match read(&args.policy) {
        Ok(text) => match Policy::parse(&text, &policy_file) {
            Ok(policy) => policy,
            Err(errors) => return Output::policy_errors(&errors),
        },
        Err(e) => return Output::failed(e),
    };
    let cases_file = args.cases.display().to_string();
    let text = match read(&args.cases) {
        Ok(text) => text,
        Err(e) => return Output::failed(e),
    };
    // Every mistake in the file, or every case; never some of each.
    let cases = read_yaml(&text, &cases_file, read_cases)
        .and_then(|(cases, errors)| errors.into_result().map(|()| cases));
    let cases = match cases {
        Ok(cases) => cases,
        Err(errors) => return Output::policy_errors(&errors),
    };

    let mut out = Output::default();
    let (mut passed, mut failed) = (0, 0);
    let now = unix_now();
    // Cases name no authority; the challenge's status is what they check.
    let authorization_uri = decide::offline_authorization_uri(None, None);
    for case in cases {
        let line = case.line;
        let expected = case.expected;
        let caller = caller(&case, &policy, now);
        // For a token with a groups overage, the case's `groups` are what
        // Microsoft Graph would answer.
        let graph_groups: &[String] = match &caller {
            Caller::Valid(identity) if identity.groups_overage => &case.groups,
            _ => &[],
        };
        let decision = decide::decide(
            &policy,
            &case.method,
            &case.path,
            &caller,
            graph_groups,
            &authorization_uri,
        );
        let got = decision.outcome();
        let route = decision.route.map(|r| r.name.clone());
        let request = format!("{} {}", case.method, case.path);
        let wrong_route = case
            .route
            .as_ref()
            .filter(|want| route.as_ref() != Some(*want));
        if got == expected && wrong_route.is_none() {
            passed += 1;
            let by = route.map(|r| format!(" (route {r})")).unwrap_or_default();
            out.out(format!("{cases_file}:{line}: ok    {request} -> {got}{by}"));
        } else {
            failed += 1;
            let why = match &decision.result {
                Ok(_) => String::new(),
                Err(e) => format!(" {}: {e}", e.reason()),
            };
            let by = route.as_deref().unwrap_or("none");
            let mut message = format!(
                "{cases_file}:{line}: FAIL  {request}: expected {expected}, got {got}{why} (route {by})"
            );
            if let Some(want) = wrong_route {
                message = format!(
                    "{cases_file}:{line}: FAIL  {request}: expected route {want}, got {got} by route {by}"
                );
            }
            out.out(message);
        }
    }
    out.out(format!(
        "{} cases: {passed} passed, {failed} failed",
        passed + failed
    ));
    if failed > 0 {
        out.code = 1;
    }
    out
}

/// The whole file: `cases:` and nothing else. Every mistake is recorded in
/// `r`; the cases are only run when there is none.
fn read_cases(root: &Spanned<Node>, r: &mut Reader<'_, '_, '_>) -> Vec<Case> {
    let Some(mut fields) = r.mapping(root) else {
        return Vec::new();
    };
    let mut cases = Vec::new();
    match fields.node("cases") {
        None => r.errors.at_start("missing `cases`".to_owned()),
        Some(node) => match &node.value {
            Node::Seq(items) => {
                cases = items.iter().filter_map(|item| read_case(item, r)).collect()
            }
            _ => r.errors.at(
                node.referenced,
                "`cases` must be a list of cases, each starting with `- method:`".to_owned(),
            ),
        },
    }
    r.finish(&fields);
    cases
}

/// One case, checked; `None` when it cannot be run (every reason reported).
/// The order in which keys are asked for is the order an unknown key's
/// message lists them in.
fn read_case(node: &Spanned<Node>, r: &mut Reader<'_, '_, '_>) -> Option<Case> {
    let mut fields = r.mapping(node)?;
    let method = r.string(&mut fields, "method");
    let path = r.string(&mut fields, "path");
    let roles = r.list(&mut fields, "roles");
    let scopes = r.list(&mut fields, "scopes");
    let app = r.boolean(&mut fields, "app");
    let apps = r.list(&mut fields, "apps");
    let tenant = r.string(&mut fields, "tenant");
    let guest = r.boolean(&mut fields, "guest");
    let aud = r.string(&mut fields, "aud");
    let acrs = r.list(&mut fields, "acrs");
    let cp1 = r.boolean(&mut fields, "cp1");
    let groups = r.list(&mut fields, "groups");
    let groups_overage = r.boolean(&mut fields, "groups_overage");
    let claims = fields.node("claims").and_then(|node| {
        if matches!(node.value, Node::Map(_)) {
            return r.json(node);
        }
        let found = r.describe(node);
        r.errors.at(
            node.referenced,
            format!("`claims` must be a mapping of claim names to values; found {found}"),
        );
        None
    });
    let expect = r.string(&mut fields, "expect");
    let route = r.string(&mut fields, "route");
    r.finish(&fields);

    // Required values; one of the wrong type is reported already.
    for (key, present) in [
        ("method", method.is_some()),
        ("path", path.is_some()),
        ("expect", expect.is_some()),
    ] {
        if !present && !fields.unreadable.contains(&key) {
            r.errors.at(fields.place, format!("case has no `{key}`"));
        }
    }
    let method = method.and_then(|m| match Method::from_bytes(m.value.as_bytes()) {
        Ok(method) => Some(method),
        Err(_) => {
            r.errors
                .at(m.referenced, format!("`{}` is not an HTTP method", m.value));
            None
        }
    });
    let expected = expect.and_then(|e| {
        let known = EXPECTATIONS.iter().find(|known| **known == e.value);
        if known.is_none() {
            r.errors.at(
                e.referenced,
                format!(
                    "unknown expectation `{}`; expected allow, 400, 401, 403, 404 or 405",
                    e.value
                ),
            );
        }
        known.copied()
    });
    let apps = apps.map(|apps| {
        if apps.value.len() > 1 {
            r.errors.at(
                apps.referenced,
                "a case's `apps` names the one calling app; a token has one `azp`".to_owned(),
            );
        }
        strings(Some(apps))
    });
    Some(Case {
        line: fields.place.line(),
        method: method?,
        path: path?.value,
        roles: strings(roles),
        scopes: strings(scopes),
        app: flag(app),
        client_app: apps.unwrap_or_default().into_iter().next(),
        tenant: tenant.map(|t| t.value),
        guest: flag(guest),
        aud: aud.map(|a| a.value),
        acrs: strings(acrs),
        cp1: flag(cp1),
        groups: strings(groups),
        groups_overage: flag(groups_overage),
        claims,
        expected: expected?,
        route: route.map(|r| r.value),
    })
}

/// A list's strings, or none.
fn strings(list: Option<Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
    list.map(|l| l.value.into_iter().map(|s| s.value).collect())
        .unwrap_or_default()
}

/// A boolean, `false` when absent.
fn flag(value: Option<Spanned<bool>>) -> bool {
    value.is_some_and(|b| b.value)
}

/// The case's caller; no roles, scopes, app or claims means no token.
fn caller(case: &Case, policy: &Policy, now: u64) -> Caller {
    if let Some(claims) = &case.claims {
        let claims = decide::complete_claims(claims, now);
        let settings = OfflineSettings {
            route_audiences: policy.route_audiences(),
            ..OfflineSettings::default()
        };
        return decide::caller_from(&inspect_claims(&claims, &settings, now).verdict);
    }
    if case.roles.is_empty()
        && case.scopes.is_empty()
        && !case.app
        && case.client_app.is_none()
        && case.tenant.is_none()
        && !case.guest
        && case.aud.is_none()
        && case.acrs.is_empty()
        && !case.cp1
        && case.groups.is_empty()
        && !case.groups_overage
    {
        return Caller::NoToken;
    }
    let spec = decide::CallerSpec {
        roles: &case.roles,
        scopes: &case.scopes,
        app: case.app,
        tenant: case.tenant.as_deref(),
        client_app: case.client_app.as_deref(),
        guest: case.guest,
        audience: case.aud.as_deref(),
        acrs: &case.acrs,
        cp1: case.cp1,
        groups: &case.groups,
        groups_overage: case.groups_overage,
    };
    decide::caller_for(&spec, policy, now)
}
