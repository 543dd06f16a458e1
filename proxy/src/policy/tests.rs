//! Tests of the policy module, over real YAML text. Helpers live here; the
//! cases are in `tests/`, one line each where possible.

mod authorize;
mod errors;
mod matching;
mod upstreams;
mod warnings;

use http::Method;

use super::{Policy, RouteMatch};
use crate::path::normalize;

/// Strips the indentation common to all non-blank lines, and a leading
/// newline, so YAML can be written indented inside a test.
fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[track_caller]
fn policy(yaml: &str) -> Policy {
    match Policy::parse(&dedent(yaml), "policy.yaml") {
        Ok(policy) => policy,
        Err(errors) => panic!("policy does not compile:\n{errors}"),
    }
}

/// How the gateway would treat `request` ("GET /path"): `route <name>`,
/// `404`, `405 <Allow>`, or `400 <message>` for a path normalisation refuses.
fn decide(policy: &Policy, request: &str) -> String {
    let (method, raw_path) = request.split_once(' ').expect("\"METHOD /path\"");
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let path = match normalize(raw_path) {
        Ok(path) => path,
        Err(e) => return format!("400 {e}"),
    };
    match policy.route_for(&method, &path) {
        RouteMatch::Found(route) => format!("route {}", route.name),
        RouteMatch::MethodNotAllowed { allow } => format!("405 {allow}"),
        RouteMatch::NotFound => "404".to_owned(),
    }
}

#[test]
fn dedent_strips_common_indentation() {
    assert_eq!(dedent("\n    a:\n      - b\n"), "a:\n  - b\n");
}
