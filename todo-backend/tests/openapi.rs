//! `/openapi.json` is generated from the code; these tests tie it to the
//! routes that are actually served, so neither can drift from the other.

use crate::harness;

use harness::*;
use serde_json::Value;
use todo_backend::ROUTES;

fn document() -> Value {
    serde_json::to_value(todo_backend::openapi()).unwrap()
}

#[test]
fn every_route_and_method_is_in_the_document_and_nothing_else() {
    let document = document();
    let paths = document["paths"].as_object().expect("paths");
    let documented_routes = || ROUTES.iter();
    for route in documented_routes() {
        let operations = paths
            .get(route.path)
            .unwrap_or_else(|| panic!("{} missing from the document", route.path));
        let mut documented: Vec<String> = operations.as_object().unwrap().keys().cloned().collect();
        documented.sort();
        let mut served: Vec<String> = route
            .methods
            .iter()
            .map(|m| m.as_str().to_lowercase())
            .collect();
        served.sort();
        assert_eq!(documented, served, "methods of {}", route.path);
    }
    let mut documented_paths: Vec<&str> = paths.keys().map(String::as_str).collect();
    documented_paths.sort();
    let mut served_paths: Vec<&str> = documented_routes().map(|r| r.path).collect();
    served_paths.sort();
    assert_eq!(documented_paths, served_paths);
}

/// `/ready` is served (200 `{"status": "ready"}` in header mode, 405 with `Allow` for
/// another method) but is no API operation: not in the document.
#[tokio::test]
async fn probes_are_served_and_not_documented() {
    let paths = document()["paths"].as_object().unwrap().clone();
    let api = Api::filter().await;
    for probe in todo_backend::PROBES {
        assert!(!paths.contains_key(probe.path), "{} documented", probe.path);
        let response = api.send(get(probe.path)).await;
        assert_eq!(response.status, 200, "{}", probe.path);
        assert_eq!(response.json(), serde_json::json!({"status": "ready"}));
        let response = api.send(request("POST", probe.path)).await;
        assert_eq!(response.status, 405, "{}", probe.path);
        assert_eq!(response.header("allow"), Some("GET"));
    }
}

#[tokio::test]
async fn every_route_in_the_table_is_served() {
    let api = Api::filter().await;
    for route in ROUTES {
        let path = route.path.replace("{id}", "1");
        for method in route.methods {
            let response = api.send(request(method.as_str(), &path).by(ADMIN)).await;
            let body = String::from_utf8_lossy(&response.body);
            assert!(
                response.status != 405 && !body.contains(r#""Not Found""#),
                "{method} {path} is not served: {} {body}",
                response.status
            );
        }
    }
}

#[test]
fn the_document_has_the_wire_schemas_and_no_security_schemes() {
    let document = document();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for name in [
        "TodoItem",
        "TodoItemInCreate",
        "CreateTodoBody",
        "TodoItemInResponse",
        "TodoItemsInList",
        "ErrorDetail",
        "HttpValidationError",
        "ValidationError",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let todo_item: Vec<&str> = schemas["TodoItem"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(todo_item, ["id", "owner_id", "name", "is_complete"]);
    assert!(document["components"].get("securitySchemes").is_none());
    assert!(document.get("security").is_none());
    assert!(!document.to_string().contains("\"security\""));
}

#[tokio::test]
async fn get_openapi_json_serves_the_generated_document() {
    let api = Api::filter().await;
    let response = api.send(get("/openapi.json")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.json(), document());
}

#[test]
fn health_is_documented_as_the_json_string_it_returns() {
    let document = document();
    let ok = &document["paths"]["/health"]["get"]["responses"]["200"]["content"];
    assert_eq!(ok["application/json"]["example"], "OK", "{ok}");
}
