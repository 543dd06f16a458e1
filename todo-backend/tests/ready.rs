//! `/ready` on SQLite (the PostgreSQL side, down and back up, is in
//! `postgres_tls.rs`), and what it shares with every route.

use crate::harness;

use harness::*;
use serde_json::json;

#[tokio::test]
async fn ready_answers_once_the_store_does() {
    for api in [Api::filter().await, Api::socket().await] {
        api.check(get("/ready"), 200, json!({"status": "ready"}))
            .await;
        api.stop().await;
    }
}

#[tokio::test]
async fn ready_takes_get_only() {
    let api = Api::filter().await;
    let response = api
        .check(request("POST", "/ready"), 405, detail("Method Not Allowed"))
        .await;
    assert_eq!(response.header("allow"), Some("GET"));
}

#[test]
fn ready_is_served_but_left_out_of_the_openapi_document() {
    let document = serde_json::to_value(todo_backend::openapi()).unwrap();
    assert!(document["paths"].get("/ready").is_none());
    assert!(todo_backend::PROBES.iter().any(|r| r.path == "/ready"));
}
