//! The sample's behaviour, reproduced through the gateway: every row of the
//! todo API's table, with tokens from the dev IdP, and the sample's 401/403s.

use dev_idp::MintRequest;
use e2e_tests::System;
use reqwest::Method;
use serde_json::{Value, json};

/// One call through the gateway: status, `WWW-Authenticate`, body as JSON
/// (or `Null` when empty).
async fn call(
    sys: &System,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut req = sys
        .http
        .request(method, format!("{}{path}", sys.gateway_url));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let response = req.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, challenge, body)
}

fn walk_the_dog() -> Option<Value> {
    Some(json!({"item": {"name": "Walk the dog"}}))
}

#[tokio::test]
async fn health_is_public_and_answered_by_the_backend() {
    let sys = System::start().await.unwrap();
    assert_eq!(
        call(&sys, Method::GET, "/health", None, None).await,
        (200, String::new(), json!("OK"))
    );
    // A token on an anonymous route is ignored, even a garbage one.
    assert_eq!(
        call(&sys, Method::GET, "/health", Some("garbage"), None)
            .await
            .0,
        200
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn the_todo_api_works_end_to_end_with_tokens_from_the_dev_idp() {
    let sys = System::start().await.unwrap();
    let alice = sys.token(MintRequest::user("alice"));
    let bob = sys.token(MintRequest::user("bob"));
    let dave = sys.token(MintRequest::user("dave"));

    // POST → 201 with the caller as owner.
    let (status, _, created) = call(
        &sys,
        Method::POST,
        "/todoitems",
        Some(&alice),
        walk_the_dog(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created,
        json!({"item": {"id": 1, "owner_id": "a11ce000-0000-4000-8000-000000000001", "name": "Walk the dog", "is_complete": false}})
    );
    let (status, _, _) = call(
        &sys,
        Method::POST,
        "/todoitems",
        Some(&dave),
        walk_the_dog(),
    )
    .await;
    assert_eq!(status, 201);

    // GET /todoitems: own items for a user, all of the tenant for an admin.
    let (status, _, list) = call(&sys, Method::GET, "/todoitems", Some(&alice), None).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 1));
    let (status, _, list) = call(&sys, Method::GET, "/todoitems", Some(&bob), None).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 2));

    // GET /todoitems/{id}: owner 200; another user 403 (backend); admin 200; missing 404.
    assert_eq!(
        call(&sys, Method::GET, "/todoitems/1", Some(&alice), None)
            .await
            .0,
        200
    );
    let (status, _, body) = call(&sys, Method::GET, "/todoitems/1", Some(&dave), None).await;
    assert_eq!(
        (status, body),
        (
            403,
            json!({"detail": "User is not allowed to access the item"})
        )
    );
    assert_eq!(
        call(&sys, Method::GET, "/todoitems/1", Some(&bob), None)
            .await
            .0,
        200
    );
    let (status, _, body) = call(&sys, Method::GET, "/todoitems/99", Some(&alice), None).await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "Item does not exist"}))
    );

    // DELETE /todoitems/{id}: 204, empty body.
    assert_eq!(
        call(&sys, Method::DELETE, "/todoitems/1", Some(&alice), None).await,
        (204, String::new(), Value::Null)
    );

    // DELETE /todoitems: the gateway's role rule says 403 before the backend is asked.
    let (status, challenge, body) =
        call(&sys, Method::DELETE, "/todoitems", Some(&alice), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(body["detail"].as_str().unwrap().contains("Admin"), "{body}");
    assert_eq!(
        call(&sys, Method::DELETE, "/todoitems", Some(&bob), None)
            .await
            .0,
        204
    );
    let (_, _, list) = call(&sys, Method::GET, "/todoitems", Some(&bob), None).await;
    assert_eq!(list, json!({"items": []}));
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn no_token_is_401_with_a_bare_bearer_challenge() {
    let sys = System::start().await.unwrap();
    for (method, path) in [
        (Method::GET, "/todoitems"),
        (Method::POST, "/todoitems"),
        (Method::GET, "/todoitems/1"),
        (Method::DELETE, "/todoitems"),
    ] {
        let (status, challenge, body) = call(&sys, method.clone(), path, None, None).await;
        assert_eq!(
            (status, challenge.as_str()),
            (401, "Bearer"),
            "{method} {path}"
        );
        assert!(body["detail"].is_string(), "{body}");
    }
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405_without_reaching_the_backend() {
    let sys = System::start().await.unwrap();
    let alice = sys.token(MintRequest::user("alice"));
    assert_eq!(
        call(&sys, Method::GET, "/nope", Some(&alice), None).await.2,
        json!({"detail": "Not Found"})
    );
    let response = sys
        .http
        .put(format!("{}/todoitems", sys.gateway_url))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, POST, DELETE");
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn an_app_only_token_never_satisfies_a_scope_rule() {
    let sys = System::start().await.unwrap();
    let daemon = sys.token(MintRequest::app("daemon"));
    let (status, challenge, _) = call(&sys, Method::GET, "/todoitems", Some(&daemon), None).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("scope=\"access_as_user\""),
        "{challenge}"
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn an_admin_of_another_tenant_is_rejected_as_wrong_tenant() {
    let sys = System::start().await.unwrap();
    // carol is Admin in fabrikam: a perfectly signed token from the same keys.
    let carol = sys.token(MintRequest::user("carol"));
    let (status, challenge, body) =
        call(&sys, Method::DELETE, "/todoitems", Some(&carol), None).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("tenant"),
        "{body}"
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn v1_tokens_are_accepted_like_v2_tokens() {
    let sys = System::start().await.unwrap();
    let v1 = sys.token(MintRequest::user("alice").version(dev_idp::TokenVersion::V1));
    let (status, _, body) = call(&sys, Method::POST, "/todoitems", Some(&v1), walk_the_dog()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["item"]["owner_id"],
        "a11ce000-0000-4000-8000-000000000001"
    );
    sys.stop().await.unwrap();
}
