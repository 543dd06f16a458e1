//! The `todo-backend` binary as an operator runs it: flags, signals, and a
//! database that outlives the process, even one that is killed outright.

use crate::harness;

use harness::database::PostgresSchema;
use std::process::Command;

use harness::process::Backend;
use serde_json::{Value, json};

async fn send(backend: &Backend, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client
        .request(
            method.parse().unwrap(),
            format!("http://{}{path}", backend.addr),
        )
        .header("X-User-Id", "alice")
        .header("X-User-Tenant", "tenant-1");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

mod an_acknowledged_item_survives_the_process_being_killed {
    use super::*;

    #[tokio::test]
    async fn sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("todo.db");
        let db = db.to_str().unwrap();
        survive_kill(&["--db", db]).await;
    }

    #[tokio::test]
    async fn postgres() {
        let Some(schema) = PostgresSchema::create().await else {
            return;
        };
        let todo_backend::Database::Postgres { url, .. } = &schema.database else {
            unreachable!()
        };
        survive_kill(&["--database-url", url]).await;
    }
}

async fn survive_kill(args: &[&str]) {
    let mut backend = Backend::start(args);
    let created = send(
        &backend,
        "POST",
        "/todoitems",
        Some(json!({"item": {"name": "durable"}})),
    )
    .await;
    assert_eq!(created.0, 201);
    backend.child.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint
    backend.child.wait().unwrap();
    drop(backend);

    let backend = Backend::start(args);
    let listed = send(&backend, "GET", "/todoitems", None).await;
    let expected =
        json!({"items": [{"id": 1, "owner_id": "alice", "name": "durable", "is_complete": false}]});
    assert_eq!(listed, (200, expected));
}

#[tokio::test]
async fn sigterm_shuts_the_binary_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut backend = Backend::start(["--db".as_ref(), dir.path().join("todo.db").as_os_str()]);
    assert_eq!(
        send(&backend, "GET", "/health", None).await,
        (200, json!("OK"))
    );

    let status = Command::new("kill")
        .args(["-TERM", &backend.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    assert!(backend.wait_for_log("todo-backend stopped"));
    let exit = backend.child.wait().unwrap();
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn log_lines_are_json_and_carry_the_gateways_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(["--db".as_ref(), dir.path().join("todo.db").as_os_str()]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .get(format!("{}/todoitems", backend.url()))
        .header("X-Request-Id", "req-from-the-gateway-42")
        .header("X-User-Id", "alice")
        .header("X-User-Tenant", "tenant-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Every line of the request carries the id; warp's own per-request
    // lines are off, so the first is the access log line.
    let line = backend
        .next_log_with("req-from-the-gateway-42")
        .expect("a log line with the request id");
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        line["span"]["request_id"], "req-from-the-gateway-42",
        "{line}"
    );
    assert_eq!(line["target"], "todo_backend::access", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["user_id"], "alice", "{line}");
}

#[test]
fn gateway_assertion_mode_without_its_settings_stops_before_listening() {
    let output = Command::new(env!("CARGO_BIN_EXE_todo-backend"))
        .args(["--listen", "127.0.0.1:0", "--trust", "gateway-assertion"])
        .env_remove("TODO_GATEWAY_JWKS_URL")
        .env_remove("TODO_GATEWAY_ISSUER")
        .env_remove("TODO_ASSERTION_AUDIENCE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "--trust gateway-assertion needs --gateway-jwks-url (TODO_GATEWAY_JWKS_URL); \
             --trust gateway-assertion needs --gateway-issuer (TODO_GATEWAY_ISSUER); \
             --trust gateway-assertion needs --assertion-audience (TODO_ASSERTION_AUDIENCE)"
        ),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("listening"), "{stdout}");

    let output = Command::new(env!("CARGO_BIN_EXE_todo-backend"))
        .args(["--listen", "127.0.0.1:0", "--trust", "gateway-assertion"])
        .args(["--gateway-jwks-url", "ftp://gateway/jwks.json"])
        .args(["--gateway-issuer", "http://gateway:8080"])
        .args(["--assertion-audience", "http://backend:8081"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "--gateway-jwks-url \"ftp://gateway/jwks.json\": must be an http:// or https:// URL"
        ),
        "{stderr}"
    );
}
