//! The backend's OpenAPI document with the gateway's security added.
//!
//! Pure: takes the document the backend serves and the loaded [`Policy`],
//! returns what `/openapi.json` shows. Every operation is decided with the
//! same stage function the request path uses ([`stages::match_route`]), so
//! the docs cannot disagree with what the gateway enforces:
//! - an anonymous route leaves the operation public;
//! - a token route adds `security` (the `oauth2` scheme with the route's
//!   scopes) and says in the description which scopes and roles it requires;
//! - an operation no route admits is removed: the gateway would answer it
//!   with 404 or 405, never forward it.

use http::Method;
use serde_json::{Map, Value, json};

use crate::policy::{Access, Condition, Conditions, Policy, Route};
use crate::stages;

use super::DocsSettings;

/// The name of the security scheme added to `components.securitySchemes`.
pub const SCHEME: &str = "oauth2";

/// OpenAPI 3 operation keys of a path item (everything else is shared data).
const OPERATIONS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The fully qualified scope a policy scope name is requested as
/// (`access_as_user` → `api://<client id>/access_as_user`).
pub fn qualified_scope(settings: &DocsSettings, scope: &str) -> String {
    format!("api://{}/{scope}", settings.api_client_id)
}

/// Every scope the policy names, once each, in file order.
pub fn policy_scopes(policy: &Policy) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for route in policy.routes() {
        if let Access::Token { scopes: listed, .. } = &route.access {
            for scope in listed {
                if !scopes.contains(scope) {
                    scopes.push(scope.clone());
                }
            }
        }
    }
    scopes
}

/// The backend's document as the gateway publishes it (see the module docs).
pub fn secure_document(mut document: Value, policy: &Policy, settings: &DocsSettings) -> Value {
    let Some(root) = document.as_object_mut() else {
        return document;
    };
    // The backend's own idea of where it lives is wrong behind the gateway:
    // without `servers`, Swagger UI calls the origin the document came from.
    root.remove("servers");

    if let Some(Value::Object(paths)) = root.get_mut("paths") {
        paths.retain(|path, item| match item.as_object_mut() {
            Some(item) => secure_path_item(path, item, policy, settings),
            None => true,
        });
    }

    let scopes: Map<String, Value> = policy_scopes(policy)
        .iter()
        .map(|s| (qualified_scope(settings, s), Value::String(s.clone())))
        .collect();
    let scheme = json!({
        "type": "oauth2",
        "description": "Microsoft Entra ID, authorization code with PKCE. The gateway \
                        validates the access token and decides every call from policy.yaml.",
        "flows": {
            "authorizationCode": {
                "authorizationUrl": settings.authorize_url,
                "tokenUrl": settings.token_url,
                "scopes": scopes,
            }
        }
    });
    let components = root
        .entry("components")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(components) = components.as_object_mut() {
        let schemes = components
            .entry("securitySchemes")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(schemes) = schemes.as_object_mut() {
            schemes.insert(SCHEME.into(), scheme);
        }
    }
    document
}

/// Secures each operation of one path item; `false` when none is left.
fn secure_path_item(
    path: &str,
    item: &mut Map<String, Value>,
    policy: &Policy,
    settings: &DocsSettings,
) -> bool {
    let mut left = 0;
    for key in OPERATIONS {
        let Some(operation) = item.get_mut(key) else {
            continue;
        };
        let Ok(method) = Method::from_bytes(key.to_ascii_uppercase().as_bytes()) else {
            continue;
        };
        // `{id}` stays as written: a literal segment only `*` or `**` matches,
        // which is what the backend's template means.
        let Ok(route) = stages::match_route(policy, &method, path) else {
            item.remove(key);
            continue;
        };
        left += 1;
        let Access::Token { roles, scopes } = &route.access else {
            continue;
        };
        let Some(operation) = operation.as_object_mut() else {
            continue;
        };
        let requested: Vec<String> = scopes
            .iter()
            .map(|s| qualified_scope(settings, s))
            .collect();
        operation.insert("security".into(), json!([{ SCHEME: requested }]));
        let mut text = operation
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        for line in requirements(roles, scopes)
            .into_iter()
            .chain(caller_requirements(route))
        {
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            text.push_str(&line);
        }
        operation.insert("description".into(), Value::String(text));
        let responses = operation
            .entry("responses")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(responses) = responses.as_object_mut() {
            let unauthorized = if route.conditions.auth_contexts.is_empty() {
                "No valid access token (answered by the gateway)"
            } else {
                "No valid access token, or a claims challenge (WWW-Authenticate: \
                 error=\"insufficient_claims\") to sign in again with the authentication \
                 context, for clients that declare cp1 (answered by the gateway)"
            };
            responses
                .entry("401")
                .or_insert_with(|| json!({ "description": unauthorized }));
            if !roles.is_empty() || !scopes.is_empty() {
                responses.entry("403").or_insert_with(|| {
                    json!({"description": "The token lacks a required scope or role (answered by the gateway)"})
                });
            } else if route.conditions != Conditions::default() {
                responses.entry("403").or_insert_with(|| {
                    json!({"description": "The caller does not meet the route's conditions (answered by the gateway)"})
                });
            }
        }
    }
    left > 0
}

/// "Requires calling app …", "Requires user (delegated) tokens only", …:
/// the route's conditions beyond scopes and roles, as `explain` words them.
pub fn caller_requirements(route: &Route) -> Vec<String> {
    [
        Condition::Apps,
        Condition::Tenants,
        Condition::Callers,
        Condition::Guests,
        Condition::Groups,
        Condition::AuthContext,
    ]
    .into_iter()
    .filter_map(|c| route.describe(c))
    .map(|wants| format!("Requires {wants}"))
    .collect()
}

/// "Requires scope: access_as_user", "Requires role: Admin", … for a route.
pub fn requirements(roles: &[String], scopes: &[String]) -> Vec<String> {
    fn line(what: &str, values: &[String]) -> String {
        match values {
            [one] => format!("Requires {what}: {one}"),
            many => format!("Requires one of the {what}s: {}", many.join(", ")),
        }
    }
    let mut lines = Vec::new();
    if !scopes.is_empty() {
        lines.push(line("scope", scopes));
    }
    if !roles.is_empty() {
        lines.push(line("role", roles));
    }
    if lines.is_empty() {
        lines.push("Requires a signed-in caller (any valid access token)".into());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DocsSettings {
        DocsSettings {
            spa_client_id: "c0ffee00-0000-4000-8000-0000000000b2".into(),
            api_client_id: "c0ffee00-0000-4000-8000-0000000000a1".into(),
            authorize_url: "https://login.example/t/oauth2/v2.0/authorize".into(),
            token_url: "https://login.example/t/oauth2/v2.0/token".into(),
        }
    }

    const POLICY: &str = "version: 1
routes:
  - {name: health, path: /health, methods: [GET], allow: anonymous}
  - {name: todos, path: /todoitems, methods: [GET, POST], scopes: [access_as_user]}
  - {name: delete-all, path: /todoitems, methods: [DELETE], scopes: [access_as_user], roles: [Admin]}
  - {name: one, path: /todoitems/*, methods: [GET], roles: [Admin, User]}
  - {name: any, path: /me, methods: [GET]}
";

    fn secured(document: Value) -> Value {
        let policy = Policy::parse(POLICY, "policy.yaml").expect("test policy");
        secure_document(document, &policy, &settings())
    }

    fn op(path: &str, method: &str) -> Value {
        json!({"paths": {path: {method: {"description": "Backend text.", "responses": {"200": {"description": "ok"}}}}}})
    }

    #[test]
    fn caller_conditions_are_described_and_answer_403() {
        let policy = Policy::parse(
            "version: 1
defaults: {guests: deny}
routes:
  - {name: jobs, path: /jobs, methods: [POST], callers: [app], tenants: [aaaaaaaa-0000-4000-8000-000000000001]}
",
            "policy.yaml",
        )
        .expect("test policy");
        let doc = secure_document(op("/jobs", "post"), &policy, &settings());
        let operation = &doc["paths"]["/jobs"]["post"];
        assert_eq!(
            operation["description"],
            "Backend text.\n\nRequires a signed-in caller (any valid access token)\n\n\
             Requires tenant aaaaaaaa-0000-4000-8000-000000000001\n\n\
             Requires app-only tokens only\n\nRequires no guest accounts"
        );
        assert!(operation["responses"]["403"].is_object());
    }

    #[test]
    fn auth_context_is_described_with_its_claims_challenge() {
        let policy = Policy::parse(
            "version: 1
routes:
  - {name: wipe, path: /todoitems, methods: [DELETE], scopes: [access_as_user], auth_context: [c1]}
",
            "policy.yaml",
        )
        .expect("test policy");
        let doc = secure_document(op("/todoitems", "delete"), &policy, &settings());
        let operation = &doc["paths"]["/todoitems"]["delete"];
        assert_eq!(
            operation["description"],
            "Backend text.\n\nRequires scope: access_as_user\n\nRequires authentication context c1"
        );
        let unauthorized = operation["responses"]["401"]["description"]
            .as_str()
            .unwrap();
        assert!(
            unauthorized.contains("insufficient_claims"),
            "{unauthorized}"
        );
        assert!(operation["responses"]["403"].is_object());
    }

    #[test]
    fn groups_are_described_like_the_other_conditions() {
        let policy = Policy::parse(
            "version: 1
routes:
  - {name: finance, path: /todoitems, methods: [GET], groups: [6f1c0000-0000-4000-8000-000000000001]}
",
            "policy.yaml",
        )
        .expect("test policy");
        let doc = secure_document(op("/todoitems", "get"), &policy, &settings());
        let operation = &doc["paths"]["/todoitems"]["get"];
        assert_eq!(
            operation["description"],
            "Backend text.\n\nRequires a signed-in caller (any valid access token)\n\nRequires group 6f1c0000-0000-4000-8000-000000000001"
        );
        assert!(operation["responses"]["403"].is_object());
    }

    #[test]
    fn anonymous_operation_stays_public() {
        let doc = secured(op("/health", "get"));
        let operation = &doc["paths"]["/health"]["get"];
        assert!(operation.get("security").is_none(), "{operation}");
        assert_eq!(operation["description"], "Backend text.");
    }

    #[test]
    fn scoped_operation_requires_the_qualified_scope() {
        let doc = secured(op("/todoitems", "post"));
        let operation = &doc["paths"]["/todoitems"]["post"];
        assert_eq!(
            operation["security"],
            json!([{"oauth2": ["api://c0ffee00-0000-4000-8000-0000000000a1/access_as_user"]}])
        );
        assert_eq!(
            operation["description"],
            "Backend text.\n\nRequires scope: access_as_user"
        );
        assert!(operation["responses"]["401"].is_object());
        assert!(operation["responses"]["403"].is_object());
    }

    #[test]
    fn role_requirement_is_described() {
        let doc = secured(op("/todoitems", "delete"));
        let text = doc["paths"]["/todoitems"]["delete"]["description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            text.ends_with("Requires scope: access_as_user\n\nRequires role: Admin"),
            "{text}"
        );
    }

    #[test]
    fn templated_segment_is_decided_by_the_star_route() {
        let doc = secured(op("/todoitems/{id}", "get"));
        let operation = &doc["paths"]["/todoitems/{id}"]["get"];
        assert_eq!(operation["security"], json!([{"oauth2": []}]));
        assert!(
            operation["description"]
                .as_str()
                .unwrap_or_default()
                .ends_with("Requires one of the roles: Admin, User")
        );
    }

    #[test]
    fn token_route_without_requirements_says_any_token() {
        let doc = secured(op("/me", "get"));
        assert!(
            doc["paths"]["/me"]["get"]["description"]
                .as_str()
                .unwrap_or_default()
                .ends_with("Requires a signed-in caller (any valid access token)")
        );
    }

    #[test]
    fn operations_the_gateway_never_forwards_are_removed() {
        let doc = secured(json!({"paths": {
            "/todoitems": {"put": {}, "get": {}, "parameters": []},
            "/internal": {"get": {}},
        }}));
        let paths = doc["paths"].as_object().expect("paths");
        assert!(!paths.contains_key("/internal"));
        assert!(paths["/todoitems"].get("put").is_none());
        assert!(paths["/todoitems"].get("get").is_some());
        assert!(paths["/todoitems"].get("parameters").is_some());
    }

    #[test]
    fn scheme_names_the_tenant_endpoints_and_the_policy_scopes() {
        let doc = secured(json!({"paths": {}, "servers": [{"url": "http://backend:8081"}]}));
        assert!(doc.get("servers").is_none());
        let flow = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
        assert_eq!(
            flow["authorizationUrl"],
            "https://login.example/t/oauth2/v2.0/authorize"
        );
        assert_eq!(
            flow["tokenUrl"],
            "https://login.example/t/oauth2/v2.0/token"
        );
        assert_eq!(
            flow["scopes"],
            json!({"api://c0ffee00-0000-4000-8000-0000000000a1/access_as_user": "access_as_user"})
        );
    }

    #[test]
    fn existing_components_are_kept() {
        let doc = secured(json!({"paths": {}, "components": {"schemas": {"A": {}}}}));
        assert!(doc["components"]["schemas"]["A"].is_object());
        assert!(doc["components"]["securitySchemes"]["oauth2"].is_object());
    }
}
