//! `authz-proxy explain METHOD PATH`: which route decides a request, what it
//! requires, and what the client would get — status, headers and body, as
//! `GatewayError::into_response` builds them. With a token, each claim check.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use http::{Method, Uri};

use super::decide::{self, Caller};
use super::{Output, read, unix_now};
use crate::auth::offline::{Inspection, OfflineSettings, inspect_claims, inspect_token};
use crate::policy::{Policy, Route};
use crate::upstream::strip_prefix;

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The request method, e.g. GET (case-sensitive, as HTTP).
    pub method: String,
    /// The request path as a client sends it (query ignored).
    pub path: String,
    /// The policy file.
    #[arg(long, env = "POLICY_FILE", default_value = "policy.yaml")]
    pub policy: PathBuf,
    /// The bearer token the client sends.
    #[arg(long, conflicts_with_all = ["claims", "roles", "scopes", "app", "client_app", "guest", "aud", "acrs", "cp1", "groups_overage"])]
    pub token: Option<String>,
    /// A JSON file of token claims (a JWT payload); exp, iss, aud, tid and oid
    /// default to a valid token's.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["roles", "scopes", "app", "client_app", "guest", "aud", "acrs", "cp1", "groups_overage"])]
    pub claims: Option<PathBuf>,
    /// The caller's roles, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// The caller's delegated scopes, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// The caller is an application (app-only token: roles, no scopes).
    #[arg(long)]
    pub app: bool,
    /// The calling client application's id (`azp`), for routes with `apps`.
    #[arg(long, value_name = "CLIENT_ID")]
    pub client_app: Option<String>,
    /// The caller is a B2B guest (`acct: 1`), for routes with `guests: deny`.
    #[arg(long)]
    pub guest: bool,
    /// The caller's token audience (`aud`); without it, one every route
    /// accepts (the gateway's and each route's `audiences:`).
    #[arg(long, value_name = "AUDIENCE")]
    pub aud: Option<String>,
    /// Authentication contexts the sign-in satisfied (`acrs`), comma-separated,
    /// for routes with `auth_context`.
    #[arg(long, value_delimiter = ',')]
    pub acrs: Vec<String>,
    /// The client declares the `cp1` capability (`xms_cc: ["cp1"]`): a
    /// missing authentication context is a claims challenge (401), not a 403.
    #[arg(long)]
    pub cp1: bool,
    /// Security-group object ids of the caller (`groups`), comma-separated,
    /// for routes with `groups`. For a token with a groups overage (from
    /// --groups-overage, --token or --claims): what Microsoft Graph would
    /// answer.
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// The token has a groups overage (`_claim_names`) instead of `groups`:
    /// decided as `groups_unresolved` (needs Graph) unless --groups says
    /// what Graph would answer.
    #[arg(long)]
    pub groups_overage: bool,
    /// The tenant: the caller's with --roles/--scopes, the allowed one with --token/--claims.
    #[arg(long, env = "AAD_TENANT_ID")]
    pub tenant: Option<String>,
    /// The API's client id: `<id>` and `api://<id>` are the accepted audiences.
    #[arg(long, env = "API_CLIENT_ID")]
    pub client_id: Option<String>,
    /// v2 issuer base (`{instance}/{tid}/v2.0`), e.g. https://login.microsoftonline.com.
    #[arg(long, env = "AAD_INSTANCE")]
    pub instance: Option<String>,
    /// v1 issuer base (`{sts}/{tid}/`), e.g. https://sts.windows.net.
    #[arg(long, env = "AAD_STS_INSTANCE")]
    pub sts_instance: Option<String>,
    /// A JWKS file to verify the token's signature with (offline: not fetched).
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
}

pub fn run(args: &ExplainArgs) -> Output {
    let text = match read(&args.policy) {
        Ok(text) => text,
        Err(e) => return Output::failed(e),
    };
    let file = args.policy.display().to_string();
    let policy = match Policy::parse(&text, &file) {
        Ok(policy) => policy,
        Err(errors) => return Output::policy_errors(&errors),
    };
    let Ok(method) = Method::from_bytes(args.method.as_bytes()) else {
        return Output::failed(format!("`{}` is not an HTTP method", args.method));
    };
    let now = unix_now();
    let settings = match settings(args, &policy) {
        Ok(settings) => settings,
        Err(e) => return Output::failed(e),
    };
    let (caller, inspection) = if let Some(token) = &args.token {
        let inspection = inspect_token(token.trim(), &settings, now);
        (decide::caller_from(&inspection.verdict), Some(inspection))
    } else if let Some(claims) = &args.claims {
        let claims = match read(claims).and_then(|json| {
            serde_json::from_str::<serde_json::Value>(&json)
                .map_err(|e| format!("{}: not JSON: {e}", claims.display()))
        }) {
            Ok(claims) => decide::complete_claims(&claims, now),
            Err(e) => return Output::failed(e),
        };
        let inspection = inspect_claims(&claims, &settings, now);
        (decide::caller_from(&inspection.verdict), Some(inspection))
    } else if !args.roles.is_empty()
        || !args.scopes.is_empty()
        || args.app
        || args.client_app.is_some()
        || args.guest
        || args.aud.is_some()
        || !args.acrs.is_empty()
        || args.cp1
        || !args.groups.is_empty()
        || args.groups_overage
    {
        let spec = decide::CallerSpec {
            roles: &args.roles,
            scopes: &args.scopes,
            app: args.app,
            tenant: args.tenant.as_deref(),
            client_app: args.client_app.as_deref(),
            guest: args.guest,
            audience: args.aud.as_deref(),
            acrs: &args.acrs,
            cp1: args.cp1,
            groups: &args.groups,
            groups_overage: args.groups_overage,
        };
        (decide::caller_for(&spec, &policy, now), None)
    } else {
        (Caller::NoToken, None)
    };

    let authorization_uri =
        decide::offline_authorization_uri(args.instance.as_deref(), args.tenant.as_deref());
    // What Graph would answer, for a token with an overage (its own or
    // the described one).
    let graph_groups: &[String] = match &caller {
        Caller::Valid(identity) if identity.groups_overage => &args.groups,
        _ => &[],
    };
    let decision = decide::decide(
        &policy,
        &method,
        &args.path,
        &caller,
        graph_groups,
        &authorization_uri,
    );
    let mut out = Output::default();
    out.out(format!("request:   {method} {}", args.path));
    if let Some(path) = &decision.path {
        out.out(format!(
            "path:      {path} (normalised: matched and forwarded)"
        ));
    }
    match decision.route {
        Some(route) => {
            out.out(format!("route:     {} ({file}:{})", route.name, route.line));
            out.out(format!("requires:  {}", decide::requirement(route)));
        }
        None => out.out("route:     none"),
    }
    out.out(format!(
        "caller:    {}",
        describe_caller(&caller, decision.route)
    ));
    if let Some(inspection) = &inspection {
        token_lines(&mut out, inspection);
    }
    if let (Some(route), Caller::Valid(identity)) = (decision.route, &caller) {
        let lines = decide::condition_lines(route, identity, graph_groups);
        if !lines.is_empty() {
            out.out("conditions:");
            for line in lines {
                out.out(format!("  {line}"));
            }
        }
    }
    match decision.result {
        Ok(identity) => {
            let path = decision.path.unwrap_or_default();
            match forwarded(&policy, decision.route, &path) {
                (None, target) => out.out(format!(
                    "decision:  allow: forwarded to the upstream as {method} {target}"
                )),
                (Some(upstream), target) => out.out(format!(
                    "decision:  allow: forwarded to upstream `{upstream}` as {method} {target}"
                )),
            }
            if let Some(denial) = &decision.shadow {
                out.out(format!(
                    "           enforce: shadow: would deny ({}): {denial}",
                    denial.reason()
                ));
            }
            if let Some(identity) = identity {
                for header in decide::identity_headers(&policy, &identity) {
                    out.out(format!("           {header}"));
                }
            }
        }
        Err(error) => {
            out.out(format!("decision:  deny ({}): {error}", error.reason()));
            out.out("response:");
            for line in decide::response_text(error).lines() {
                out.out(format!("  {line}").trim_end());
            }
        }
    }
    out
}

/// Where an allowed request on `route` goes, and as what target: the
/// route's named upstream (`None`: the default one, `--upstream`) and the
/// path after that upstream's `strip_prefix`, as the forwarder rewrites it.
fn forwarded<'p>(
    policy: &'p Policy,
    route: Option<&Route>,
    path: &str,
) -> (Option<&'p str>, String) {
    let Some(upstream) = route
        .and_then(|r| r.upstream)
        .and_then(|i| policy.upstreams().get(i))
    else {
        return (None, path.to_owned());
    };
    let target = upstream
        .rewrite
        .strip_prefix
        .as_deref()
        .and_then(|prefix| strip_prefix(&path.parse::<Uri>().ok()?, prefix))
        .map_or_else(|| path.to_owned(), |stripped| stripped.to_string());
    (Some(upstream.name.as_str()), target)
}

fn settings(args: &ExplainArgs, policy: &Policy) -> Result<OfflineSettings, String> {
    let jwks = match &args.jwks {
        None => None,
        Some(file) => {
            Some(std::fs::read(file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?)
        }
    };
    let uses_token = args.token.is_some() || args.claims.is_some();
    Ok(OfflineSettings {
        audiences: args
            .client_id
            .as_deref()
            .map(|id| vec![id.to_owned(), format!("api://{id}")]),
        tenant: args.tenant.clone().filter(|_| uses_token),
        instance: args.instance.clone(),
        sts_instance: args.sts_instance.clone(),
        route_audiences: policy.route_audiences(),
        leeway: Duration::from_secs(60),
        jwks,
    })
}

fn describe_caller(caller: &Caller, route: Option<&Route>) -> String {
    let anonymous = route.is_some_and(|r| r.access == crate::policy::Access::Anonymous);
    let who = match caller {
        Caller::NoToken => "no token".to_owned(),
        Caller::Invalid(e) => format!("invalid token ({}): {e}", e.reason()),
        Caller::Valid(identity) => {
            let list = |l: &[String]| {
                if l.is_empty() {
                    "-".to_owned()
                } else {
                    l.join(", ")
                }
            };
            let acrs = if identity.auth_contexts.is_empty() {
                String::new()
            } else {
                format!(", acrs {}", identity.auth_contexts.join(", "))
            };
            let groups = if identity.groups_overage {
                ", groups overage".to_owned()
            } else if identity.groups.is_empty() {
                String::new()
            } else {
                format!(", groups {}", identity.groups.join(", "))
            };
            format!(
                "{}, roles {}, scopes {}, tenant {}, app {}{}{acrs}{groups}{}",
                identity.kind.as_str(),
                list(&identity.roles),
                list(&identity.scopes),
                identity.tenant_id,
                identity.app_id.as_deref().unwrap_or("-"),
                if identity.guest { ", guest" } else { "" },
                if identity.handles_claims_challenges {
                    ", cp1"
                } else {
                    ""
                }
            )
        }
    };
    if anonymous && !matches!(caller, Caller::NoToken) {
        format!("{who} (ignored on an anonymous route)")
    } else {
        who
    }
}

fn token_lines(out: &mut Output, inspection: &Inspection) {
    out.out("token:");
    for line in &inspection.checks {
        let check = &line.check;
        let (mark, note) = match (&check.result, line.unchecked) {
            (Ok(()), None) => ("ok  ", String::new()),
            (Ok(()), Some(why)) => ("--  ", format!("({why})")),
            (Err(e), _) => ("FAIL", format!("{e} ({})", e.reason())),
        };
        let text = match (check.value.as_str(), note.as_str()) {
            (value, "") => value.to_owned(),
            ("", note) => note.to_owned(),
            (value, note) if check.result.is_err() => format!("{value}: {note}"),
            (value, note) => format!("{value} {note}"),
        };
        out.out(format!("  {mark} {:<11} {text}", check.claim).trim_end());
    }
}
