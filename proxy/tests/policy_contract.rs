//! The policy and path API as the gateway uses it, from outside the crate:
//! normalise → route_for → authorize, on the shipped `policy.yaml`.

use std::path::Path;

use authz_proxy::identity::{Identity, PrincipalKind};
use authz_proxy::path::{PathError, normalize};
use authz_proxy::policy::{Access, Denial, Policy, RouteMatch};
use http::Method;

fn demo() -> Policy {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy.yaml");
    Policy::load(&file).unwrap_or_else(|errors| panic!("{errors}"))
}

fn user(roles: &[&str], scopes: &[&str]) -> Identity {
    Identity {
        object_id: "oid".to_owned(),
        tenant_id: "tid".to_owned(),
        kind: PrincipalKind::User,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        name: None,
        email: None,
        app_id: None,
        guest: false,
        audiences: Vec::new(),
        default_audience: true,
        auth_contexts: Vec::new(),
        handles_claims_challenges: false,
        groups: Vec::new(),
        groups_overage: false,
        expires_at: 0,
    }
}

/// The whole decision for one request, as a string: `allow <route>`,
/// `403 <reason>`, `anonymous <route>`, `404`, `405 <Allow>` or `400 <message>`.
fn decide(policy: &Policy, method: Method, raw_path: &str, who: &Identity) -> String {
    let path = match normalize(raw_path) {
        Ok(path) => path,
        Err(e) => return format!("400 {e}"),
    };
    match policy.route_for(&method, &path) {
        RouteMatch::NotFound => "404".to_owned(),
        RouteMatch::MethodNotAllowed { allow } => format!("405 {allow}"),
        RouteMatch::Found(route) if route.access == Access::Anonymous => {
            format!("anonymous {}", route.name)
        }
        RouteMatch::Found(route) => {
            match route.authorize(who, &authz_proxy::policy::Overage::NotAsked) {
                Ok(()) => format!("allow {}", route.name),
                Err(denial) => format!("403 {}", denial.reason()),
            }
        }
    }
}

#[test]
fn the_demo_policy_reproduces_the_sample_decisions() {
    let p = demo();
    let reader = user(&[], &["access_as_user"]);
    let admin = user(&["Admin"], &["access_as_user"]);
    let no_scope = user(&["Admin"], &[]);
    let cases = [
        (Method::GET, "/health", &reader, "anonymous health"),
        (Method::GET, "/docs/index.html", &reader, "anonymous docs"),
        (Method::GET, "/todoitems", &reader, "allow todos"),
        (Method::GET, "/todoitems", &no_scope, "403 missing_scope"),
        (Method::DELETE, "/todoitems", &reader, "403 missing_role"),
        (Method::DELETE, "/todoitems", &admin, "allow delete-all"),
        (Method::DELETE, "/todoitems/", &reader, "403 missing_role"),
        (Method::DELETE, "/todoitems/3", &reader, "allow one-todo"),
        (
            Method::DELETE,
            "/health/../todoitems",
            &reader,
            "403 missing_role",
        ),
        (Method::PUT, "/todoitems/3", &admin, "405 GET, DELETE"),
        (Method::GET, "/nothing", &admin, "404"),
        (
            Method::GET,
            "/todoitems%2F3",
            &admin,
            "400 encoded slash (%2F) in path",
        ),
    ];
    for (method, path, who, expected) in cases {
        assert_eq!(
            decide(&p, method.clone(), path, who),
            expected,
            "{method} {path}"
        );
    }
}

#[test]
fn errors_are_one_line_each_and_a_std_error() {
    let errors = Policy::parse("version: 2\nroutes: []\n", "p.yaml").unwrap_err();
    let boxed: Box<dyn std::error::Error> = Box::new(errors.clone());
    assert_eq!(
        boxed.to_string(),
        "p.yaml:1:10: unsupported version `2`; expected 1\n\
         p.yaml:2:9: `routes` is empty; every request would get 404"
    );
    assert_eq!(errors.errors[1].line, 2);
}

#[test]
fn denials_and_path_errors_describe_themselves() {
    let denial = Denial::MissingScope {
        required: vec!["access_as_user".to_owned()],
    };
    assert_eq!(denial.reason(), "missing_scope");
    assert_eq!(denial.description(), "the scope access_as_user is required");
    assert_eq!(
        PathError::AboveRoot.to_string(),
        "path climbs above the root"
    );
}
