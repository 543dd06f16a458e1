//! `authz-proxy check`: compile a policy offline and report every error and
//! warning with its place; with `--openapi`, check that the policy and the
//! backend's OpenAPI document cover each other.

use std::path::{Path, PathBuf};

use clap::Args;
use http::Method;

use super::{Output, read};
use crate::error::GatewayError;
use crate::policy::{Policy, PolicyError};
use crate::stages;

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The policy file to check.
    #[arg(long, env = "POLICY_FILE", default_value = "policy.yaml")]
    pub policy: PathBuf,
    /// Treat warnings as errors (exit code 1).
    #[arg(long)]
    pub strict: bool,
    /// The backend's OpenAPI document (JSON): every operation must be decided
    /// by a route, and every route must decide some operation (or say
    /// `extra: true`).
    #[arg(long, value_name = "FILE")]
    pub openapi: Option<PathBuf>,
}

/// One operation of an OpenAPI document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub method: Method,
    /// As written: `/todoitems/{id}`.
    pub path: String,
}

pub fn run(args: &CheckArgs) -> Output {
    let text = match read(&args.policy) {
        Ok(text) => text,
        Err(e) => return Output::failed(e),
    };
    let operations = match &args.openapi {
        None => None,
        Some(file) => match read(file).and_then(|json| operations(&json, file)) {
            Ok(operations) => Some(operations),
            Err(e) => return Output::failed(e),
        },
    };
    let globs: Vec<String> = operations
        .iter()
        .flatten()
        .map(|op| glob_form(&op.path))
        .collect();
    let file = args.policy.display().to_string();
    let (policy, warnings) = match Policy::parse_with_warnings(&text, &file, &globs) {
        Ok(checked) => checked,
        Err(errors) => return Output::policy_errors(&errors),
    };
    let mut output = Output::default();
    for warning in &warnings {
        output.err(warning_line(warning));
    }
    let mut summary = format!("ok: {} routes", policy.routes().len());
    if let (Some(operations), Some(openapi)) = (&operations, &args.openapi) {
        let problems = coverage(&policy, operations, &file, openapi);
        if problems.is_empty() {
            summary.push_str(&format!(
                ", {} operations of {} all covered",
                operations.len(),
                openapi.display()
            ));
        } else {
            for problem in &problems {
                output.err(problem);
            }
            output.code = 1;
            return output;
        }
    }
    match warnings.len() {
        0 => {}
        1 => summary.push_str(", 1 warning"),
        n => summary.push_str(&format!(", {n} warnings")),
    }
    if args.strict && !warnings.is_empty() {
        output.err(format!(
            "error: {} warning(s), and --strict makes them errors",
            warnings.len()
        ));
        output.code = 1;
        return output;
    }
    output.out(summary);
    for line in route_lines(&policy) {
        output.out(line);
    }
    output
}

/// Where each route sends and which tokens it accepts, one line a route,
/// when the policy has more than one of either (`upstreams:`,
/// `audiences:`); a single-API policy gets the summary alone.
fn route_lines(policy: &Policy) -> Vec<String> {
    let several =
        !policy.upstreams().is_empty() || policy.routes().iter().any(|r| r.audiences.is_some());
    if !several {
        return Vec::new();
    }
    policy
        .routes()
        .iter()
        .map(|route| {
            let upstream = route
                .upstream
                .and_then(|i| policy.upstreams().get(i))
                .map_or("the default upstream (--upstream)".to_owned(), |u| {
                    format!("upstream `{}`", u.name)
                });
            let audiences = match (&route.access, &route.audiences) {
                (crate::policy::Access::Anonymous, _) => "no token (anonymous)".to_owned(),
                (_, None) => {
                    "tokens for the gateway's audiences (--client-id, --audience)".to_owned()
                }
                (_, Some(list)) => format!("tokens for {}", list.join(", ")),
            };
            format!(
                "  route `{}` (line {}): {upstream}; {audiences}",
                route.name, route.line
            )
        })
        .collect()
}

/// `file:line:col: warning: message`.
fn warning_line(warning: &PolicyError) -> String {
    let mut place = PolicyError {
        message: String::new(),
        ..warning.clone()
    }
    .to_string();
    place.truncate(place.trim_end().len());
    format!("{place} warning: {}", warning.message)
}

/// The operations of an OpenAPI 3 document, in document order.
pub fn operations(json: &str, file: &Path) -> Result<Vec<Operation>, String> {
    let name = file.display();
    let document: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("{name}: not JSON: {e}"))?;
    let Some(paths) = document.get("paths").and_then(|p| p.as_object()) else {
        return Err(format!(
            "{name}: no `paths` object; is it an OpenAPI document?"
        ));
    };
    let mut operations = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for method in ["get", "put", "post", "delete", "options", "head", "patch"] {
            if item.contains_key(method) {
                operations.push(Operation {
                    method: Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                        .map_err(|e| format!("{name}: {e}"))?,
                    path: path.clone(),
                });
            }
        }
    }
    Ok(operations)
}

/// `/todoitems/{id}` as a policy glob: `/todoitems/*`.
fn glob_form(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "*"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Operations no route decides, and routes that decide no operation.
fn coverage(policy: &Policy, operations: &[Operation], file: &str, openapi: &Path) -> Vec<String> {
    let name = openapi.display();
    let mut problems = Vec::new();
    let mut used = vec![false; policy.routes().len()];
    for op in operations {
        // A parameter stands for one segment; `{id}` is matched as written.
        match stages::match_route(policy, &op.method, &op.path) {
            Ok(route) => {
                if let Some(i) = policy.routes().iter().position(|r| std::ptr::eq(r, route)) {
                    used[i] = true;
                }
            }
            Err(GatewayError::MethodNotAllowed { allow }) => problems.push(format!(
                "{name}: {} {} is not covered: routes match the path for {allow} only (405)",
                op.method, op.path
            )),
            Err(_) => problems.push(format!(
                "{name}: {} {} is not covered: no route matches the path (404)",
                op.method, op.path
            )),
        }
    }
    for (route, used) in policy.routes().iter().zip(used) {
        if !used && !route.extra {
            problems.push(format!(
                "{file}:{}: route `{}` decides no operation of {name}; mark it `extra: true` if that is intended",
                route.line, route.name
            ));
        }
    }
    problems
}
