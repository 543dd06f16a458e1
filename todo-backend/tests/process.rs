//! The `todo-backend` binary as an operator runs it: flags, signals, and a
//! database that outlives the process, even one that is killed outright.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use serde_json::{Value, json};

/// The binary, started on a port the OS picks, logging to a pipe we read.
struct Backend {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Backend {
    /// Starts the binary and waits (by reading its log, not by sleeping)
    /// until it says where it listens.
    fn start(db: &Path) -> Backend {
        let mut child = Command::new(env!("CARGO_BIN_EXE_todo-backend"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start todo-backend");
        let (lines, log) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = log
            .iter()
            .find_map(|line| {
                let (_, rest) = line.split_once("address=")?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .expect("the backend logs its address");
        Backend { child, addr, log }
    }

    /// Reads log lines until one contains `text` (or the process exits).
    fn wait_for_log(&self, text: &str) -> bool {
        self.log.iter().any(|line| line.contains(text))
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

#[tokio::test]
async fn an_acknowledged_item_survives_the_process_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("todo.db");

    let mut backend = Backend::start(&db);
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

    let backend = Backend::start(&db);
    let listed = send(&backend, "GET", "/todoitems", None).await;
    let expected =
        json!({"items": [{"id": 1, "owner_id": "alice", "name": "durable", "is_complete": false}]});
    assert_eq!(listed, (200, expected));
}

#[tokio::test]
async fn sigterm_shuts_the_binary_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut backend = Backend::start(&dir.path().join("todo.db"));
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
