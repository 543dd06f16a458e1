//! The server as a process sees it: a real database (a SQLite file, or a
//! PostgreSQL schema), restarts, concurrency and graceful shutdown, all over
//! loopback sockets on port 0.

use crate::harness;

use std::collections::{BTreeMap, BTreeSet};

use harness::database::PostgresSchema;
use harness::*;
use serde_json::json;
use todo_backend::Database;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

mod acknowledged_items_survive_a_restart_on_the_same_database {
    use super::*;

    #[tokio::test]
    async fn sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        restart(&sqlite(&dir.path().join("data/todo.db"))).await;
    }

    #[tokio::test]
    async fn postgres() {
        let Some(schema) = PostgresSchema::create().await else {
            return;
        };
        restart(&schema.database).await;
    }
}

async fn restart(db: &Database) {
    let api = Api::socket_on(db).await;
    api.check(
        create("Walk the dog").by(ALICE),
        201,
        json!({"item": item(1, "alice", "Walk the dog")}),
    )
    .await;
    api.check(
        create("Feed the cat").by(CAROL),
        201,
        json!({"item": item(2, "carol", "Feed the cat")}),
    )
    .await;
    api.check_empty(delete("/todoitems").by(ADMIN_2), 204).await;
    api.stop().await;

    let api = Api::socket_on(db).await;
    api.check(
        get("/todoitems").by(ALICE),
        200,
        json!({"items": [item(1, "alice", "Walk the dog")]}),
    )
    .await;
    api.check(get("/todoitems").by(ADMIN_2), 200, json!({"items": []}))
        .await;
    // The id counter survives too: 2 was used (and deleted) before the restart.
    api.check(
        create("Water the plants").by(ALICE),
        201,
        json!({"item": item(3, "alice", "Water the plants")}),
    )
    .await;
    api.stop().await;
}

mod acknowledged_items_survive_reopening_the_store_through_warp_test {
    use super::*;

    #[tokio::test]
    async fn sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        reopen(&sqlite(&dir.path().join("todo.db"))).await;
    }

    #[tokio::test]
    async fn postgres() {
        let Some(schema) = PostgresSchema::create().await else {
            return;
        };
        reopen(&schema.database).await;
    }
}

async fn reopen(db: &Database) {
    let open = || Api::filter_on(db);

    let api = open().await;
    api.check(
        create("kept").by(ALICE),
        201,
        json!({"item": item(1, "alice", "kept")}),
    )
    .await;
    drop(api);

    let api = open().await;
    api.check(
        get("/todoitems").by(ALICE),
        200,
        json!({"items": [item(1, "alice", "kept")]}),
    )
    .await;
    api.check(
        create("next").by(ALICE),
        201,
        json!({"item": item(2, "alice", "next")}),
    )
    .await;
}

mod two_hundred_concurrent_posts_from_twenty_users_get_distinct_ids_each_listed_once {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn over_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let api = Api::socket_on(&sqlite(&dir.path().join("todo.db"))).await;
        post_concurrently(api).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn through_warp_test() {
        let dir = tempfile::tempdir().unwrap();
        let api = Api::filter_on(&sqlite(&dir.path().join("todo.db"))).await;
        post_concurrently(api).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_postgres_over_a_socket() {
        let Some(schema) = PostgresSchema::create().await else {
            return;
        };
        post_concurrently(Api::socket_on(&schema.database).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn on_postgres_through_warp_test() {
        let Some(schema) = PostgresSchema::create().await else {
            return;
        };
        post_concurrently(Api::filter_on(&schema.database).await).await;
    }
}

async fn post_concurrently(api: Api) {
    let api = std::sync::Arc::new(api);
    let users: Vec<String> = (0..20).map(|n| format!("user-{n}")).collect();
    let by = |req: Req, user: &str| {
        req.header("X-User-Id", user)
            .header("X-User-Tenant", "tenant-1")
    };

    let mut posts = tokio::task::JoinSet::new();
    for n in 0..200 {
        let (api, user) = (api.clone(), users[n % 20].clone());
        posts.spawn(async move {
            let response = api.send(by(create(&format!("task {n}")), &user)).await;
            assert_eq!(response.status, 201, "{:?}", response.json());
            (user, response.json()["item"]["id"].as_i64().unwrap())
        });
    }
    let mut created: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut all_ids = BTreeSet::new();
    while let Some(result) = posts.join_next().await {
        let (user, id) = result.unwrap();
        assert!(all_ids.insert(id), "id {id} handed out twice");
        created.entry(user).or_default().insert(id);
    }
    assert_eq!(all_ids, (1..=200).collect(), "200 distinct ids, from 1");

    for user in &users {
        let listed = api.send(by(get("/todoitems"), user)).await.json();
        let ids: Vec<i64> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                assert_eq!(item["owner_id"], user.as_str());
                item["id"].as_i64().unwrap()
            })
            .collect();
        assert_eq!(ids.len(), 10, "{user} lists exactly its 10 items");
        assert_eq!(ids.iter().copied().collect::<BTreeSet<_>>(), created[user]);
    }
    let everything = api.send(get("/todoitems").by(ADMIN)).await.json();
    assert_eq!(everything["items"].as_array().unwrap().len(), 200);

    std::sync::Arc::into_inner(api).unwrap().stop().await;
}

/// The request is provably in flight (the server asked for its body with
/// `100 Continue`) when shutdown starts; the shutdown future reports back
/// once the server has acted on it. The single-threaded runtime makes that
/// report mean "the listener is closed and connections are draining".
mod graceful_shutdown_lets_an_in_flight_request_finish {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        shut_down_gracefully(&memory()).await;
    }

    #[tokio::test]
    async fn postgres() {
        let Some(schema) = PostgresSchema::create().await else {
            return;
        };
        shut_down_gracefully(&schema.database).await;
    }
}

async fn shut_down_gracefully(database: &Database) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_requested) = tokio::sync::oneshot::channel::<()>();
    let (acted, shutdown_started) = tokio::sync::oneshot::channel::<()>();
    let config = todo_backend::Config::new(database.clone());
    let server = tokio::spawn(todo_backend::run(listener, config, async move {
        let _ = stop_requested.await;
        let _ = acted.send(());
    }));

    let body = r#"{"item":{"name":"in flight"}}"#;
    let head = format!(
        "POST /todoitems HTTP/1.1\r\nHost: {addr}\r\nX-User-Id: alice\r\nX-User-Tenant: tenant-1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    let mut connection = BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    connection
        .get_mut()
        .write_all(head.as_bytes())
        .await
        .unwrap();
    let mut interim = String::new();
    connection.read_line(&mut interim).await.unwrap();
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n");
    let mut blank = String::new();
    connection.read_line(&mut blank).await.unwrap();
    assert_eq!(blank, "\r\n");

    stop.send(()).unwrap();
    shutdown_started.await.unwrap();
    assert!(
        !server.is_finished(),
        "run must wait for the in-flight request"
    );

    connection
        .get_mut()
        .write_all(body.as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    connection.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201 Created\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with(
            r#"{"item":{"id":1,"owner_id":"alice","name":"in flight","is_complete":false}}"#
        ),
        "{response}"
    );
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_chunked_body_over_64_kib_is_cut_off_with_413() {
    let api = Api::socket().await;
    let Api::Socket { server, .. } = &api else {
        unreachable!()
    };
    let mut connection = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /todoitems HTTP/1.1\r\nHost: test\r\nX-User-Id: alice\r\nX-User-Tenant: tenant-1\r\n\
                Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    connection.write_all(head.as_bytes()).await.unwrap();
    // 17 chunks of 4 KiB: the server answers once it has read past 64 KiB,
    // without waiting for the terminating chunk.
    let chunk = format!("1000\r\n{}\r\n", "a".repeat(4096));
    for _ in 0..17 {
        connection.write_all(chunk.as_bytes()).await.unwrap();
    }
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = connection.read(&mut buffer).await.unwrap_or(0);
        response.extend_from_slice(&buffer[..n]);
        if n == 0 || response.ends_with(br#"{"detail":"Request Entity Too Large"}"#) {
            break;
        }
    }
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with(r#"{"detail":"Request Entity Too Large"}"#),
        "{response}"
    );
    api.stop().await;
}

#[tokio::test]
async fn a_database_path_that_cannot_be_opened_is_an_error_from_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a directory").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = todo_backend::Config::sqlite(file.join("todo.db"));
    let error = todo_backend::run(listener, config, std::future::pending())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("plain-file"), "{error}");
}

#[tokio::test]
async fn a_postgres_server_that_refuses_connections_is_an_error_from_run() {
    // A port bound and never listened on: connections are refused, and no
    // other test can take the port meanwhile.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = todo_backend::Config::new(Database::postgres(format!(
        "postgres://todo:secret@127.0.0.1:{port}/todo"
    )));
    let error = todo_backend::run(listener, config, std::future::pending())
        .await
        .unwrap_err();
    let message = format!("{error}: {:?}", std::error::Error::source(&error));
    assert!(message.contains("postgres://127.0.0.1/todo"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test]
async fn an_invalid_database_url_is_an_error_from_run() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = todo_backend::Config::new(Database::postgres("postgres://host:notaport/db"));
    let error = todo_backend::run(listener, config, std::future::pending())
        .await
        .unwrap_err();
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert!(source.contains("invalid database URL"), "{source}");
}
