//! `authz-proxy test CASES.yaml`: a table of requests and the outcome each
//! must have, run against the compiled policy; a report, and an exit code
//! for CI. Each case is decided by the same stages as `explain`.
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
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::decide::{self, Caller};
use super::{Output, read, unix_now};
use crate::auth::offline::{OfflineSettings, inspect_claims};
use crate::policy::{Policy, PolicyError, PolicyErrors};

#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// The cases file.
    pub cases: PathBuf,
    /// The policy file the cases run against.
    #[arg(long, env = "POLICY_FILE", default_value = "policy.yaml")]
    pub policy: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    cases: Vec<Spanned<Case>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    method: Spanned<String>,
    path: String,
    /// The caller's roles (a token with a `roles` claim).
    #[serde(default)]
    roles: Vec<String>,
    /// The caller's delegated scopes (`scp`).
    #[serde(default)]
    scopes: Vec<String>,
    /// An app-only token.
    #[serde(default)]
    app: bool,
    /// The calling client application (`azp`): one id, written as a list
    /// like the policy's `apps`.
    #[serde(default)]
    apps: Vec<String>,
    /// The caller's tenant (`tid`).
    tenant: Option<String>,
    /// A B2B guest (`acct: 1`).
    #[serde(default)]
    guest: bool,
    /// The token's audience (`aud`); without it, one every route accepts.
    aud: Option<String>,
    /// Authentication contexts the sign-in satisfied (`acrs`).
    #[serde(default)]
    acrs: Vec<String>,
    /// The client declares `cp1` (`xms_cc: ["cp1"]`): a missing
    /// authentication context is a claims challenge (401), not a 403.
    #[serde(default)]
    cp1: bool,
    /// Security-group object ids (`groups`); with `groups_overage`, what
    /// Microsoft Graph would answer.
    #[serde(default)]
    groups: Vec<String>,
    /// The token has a groups overage marker instead of `groups`.
    #[serde(default)]
    groups_overage: bool,
    /// The token's claims, instead of roles/scopes/app.
    claims: Option<serde_json::Value>,
    expect: Spanned<Expect>,
    /// The route that must decide.
    route: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expect {
    Status(u16),
    Word(String),
}

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
    let cases = match read(&args.cases)
        .and_then(|text| serde_saphyr::from_str::<CasesFile>(&text).map_err(|e| e.to_string()))
    {
        Ok(cases) => cases.cases,
        Err(e) => return Output::failed(format!("{cases_file}: {e}")),
    };

    let mut out = Output::default();
    let mut errors = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    let now = unix_now();
    // Cases name no authority; the challenge's status is what they check.
    let authorization_uri = decide::offline_authorization_uri(None, None);
    for case in cases {
        let line = usize::try_from(case.referenced.line()).unwrap_or(0);
        let case = case.value;
        let expected =
            match &case.expect.value {
                Expect::Word(w) if w == "allow" => "allow".to_owned(),
                Expect::Status(s @ (400 | 401 | 403 | 404 | 405)) => s.to_string(),
                other => {
                    let written = match other {
                        Expect::Status(s) => s.to_string(),
                        Expect::Word(w) => w.clone(),
                    };
                    errors.push(place(&cases_file, case.expect.referenced, format!(
                    "unknown expectation `{written}`; expected allow, 400, 401, 403, 404 or 405"
                )));
                    continue;
                }
            };
        if case.apps.len() > 1 {
            errors.push(place(
                &cases_file,
                case.method.referenced,
                "a case's `apps` names the one calling app; a token has one `azp`".to_owned(),
            ));
            continue;
        }
        let Ok(method) = Method::from_bytes(case.method.value.as_bytes()) else {
            errors.push(place(
                &cases_file,
                case.method.referenced,
                format!("`{}` is not an HTTP method", case.method.value),
            ));
            continue;
        };
        let caller = caller(&case, &policy, now);
        // For a token with a groups overage, the case's `groups` are what
        // Microsoft Graph would answer.
        let graph_groups: &[String] = match &caller {
            Caller::Valid(identity) if identity.groups_overage => &case.groups,
            _ => &[],
        };
        let decision = decide::decide(
            &policy,
            &method,
            &case.path,
            &caller,
            graph_groups,
            &authorization_uri,
        );
        let got = decision.outcome();
        let route = decision.route.map(|r| r.name.clone());
        let request = format!("{method} {}", case.path);
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
    if !errors.is_empty() {
        let errors = PolicyErrors { errors };
        return Output::policy_errors(&errors);
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

fn place(file: &str, location: serde_saphyr::Location, message: String) -> PolicyError {
    PolicyError {
        file: file.to_owned(),
        line: usize::try_from(location.line()).unwrap_or(0),
        column: usize::try_from(location.column()).unwrap_or(0),
        message,
    }
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
        && case.apps.is_empty()
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
        client_app: case.apps.first().map(String::as_str),
        guest: case.guest,
        audience: case.aud.as_deref(),
        acrs: &case.acrs,
        cp1: case.cp1,
        groups: &case.groups,
        groups_overage: case.groups_overage,
    };
    decide::caller_for(&spec, policy, now)
}
