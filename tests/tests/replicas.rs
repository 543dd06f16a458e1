//! Gateway replicas share nothing: two gateways, each in front of its own
//! todo backend (both on one PostgreSQL database when `TEST_DATABASE_URL`
//! names one, as `.ci/run` sets it), requests alternating between them, make
//! the same decisions and see the same items; and a key rotation at the IdP
//! is picked up by each replica on its own, from its own fetch.

use dev_idp::MintRequest;
use e2e_tests::replica::Replica;
use e2e_tests::{Options, System};
use todo_backend::Database;

/// A fresh schema on the `TEST_DATABASE_URL` server, as a database for the
/// backends, and the server's URL (to drop it); `None` outside CI without it.
async fn postgres_schema() -> Option<(Database, String, String)> {
    let server = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("TEST_DATABASE_URL must name a PostgreSQL server in CI (see .ci/run)")
        }
        _ => return None,
    };
    let schema = format!("e2e_replicas_{}", std::process::id());
    sql(
        &server,
        &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
    )
    .await;
    let separator = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{separator}options=-c%20search_path%3D{schema}");
    Some((Database::postgres(url), server, schema))
}

async fn sql(server: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
}

/// A second todo backend on loopback port 0: on `database`, or on its own
/// SQLite file in `dir`.
async fn second_backend(
    database: Option<Database>,
    dir: &std::path::Path,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = match database {
        Some(database) => todo_backend::Config::new(database),
        None => todo_backend::Config::sqlite(dir.join("todo.db")),
    };
    let task = tokio::spawn(async move {
        todo_backend::run(listener, config, std::future::pending())
            .await
            .unwrap();
    });
    (url, task)
}

async fn status(http: &reqwest::Client, method: &str, url: &str, token: Option<&str>) -> u16 {
    let mut request = http.request(method.parse().unwrap(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_decide_alike_and_each_picks_up_a_key_rotation_on_its_own() {
    let postgres = postgres_schema().await;
    let database = postgres.as_ref().map(|(database, _, _)| database.clone());
    let sys = System::start_with(Options {
        database: database.clone(),
        ..Options::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (backend_two, backend_task) = second_backend(database, dir.path()).await;
    let replica = Replica::start(&sys, &backend_two, &e2e_tests::repo_policy())
        .await
        .unwrap();
    sys.first_key_fetch().await;
    replica.key_fetches(1).await;
    let gateways = [sys.gateway_url.clone(), replica.url.clone()];

    let alice = sys.token(MintRequest::user("alice"));
    let bob = sys.token(MintRequest::user("bob"));
    let expired = sys.token(MintRequest::user("alice").expired());
    let cases: [(&str, &str, Option<&str>, u16); 7] = [
        ("GET", "/todoitems", None, 401),
        ("GET", "/todoitems", Some(&alice), 200),
        ("GET", "/todoitems", Some(&expired), 401),
        ("DELETE", "/todoitems", Some(&alice), 403),
        ("DELETE", "/todoitems", Some(&bob), 204),
        ("GET", "/nowhere", Some(&alice), 404),
        ("PUT", "/todoitems", Some(&alice), 405),
    ];
    // Every case through both, alternating which goes first.
    for (n, (method, path, token, expected)) in cases.iter().enumerate() {
        for turn in 0..2 {
            let gateway = &gateways[(n + turn) % 2];
            let got = status(&sys.http, method, &format!("{gateway}{path}"), *token).await;
            assert_eq!(got, *expected, "{method} {path} through {gateway}");
        }
    }

    // On one database, what is written through one replica is read through
    // the other.
    if postgres.is_some() {
        let created = sys
            .http
            .post(format!("{}/todoitems", gateways[0]))
            .bearer_auth(&alice)
            .json(&serde_json::json!({"item": {"name": "through the first"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let id = created.json::<serde_json::Value>().await.unwrap()["item"]["id"].clone();
        let listed: serde_json::Value = sys
            .http
            .get(format!("{}/todoitems", gateways[1]))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["items"][0]["id"], id, "{listed}");
    }

    // A new key at the IdP: each replica meets the unknown kid and fetches
    // the key set itself.
    let before = [
        *sys.gateway.authenticator().watch_fetches().borrow(),
        *replica.gateway.authenticator().watch_fetches().borrow(),
    ];
    sys.idp.rotate_keys().unwrap();
    let rotated = sys.token(MintRequest::user("alice"));
    for gateway in &gateways {
        let url = format!("{gateway}/todoitems");
        assert_eq!(
            status(&sys.http, "GET", &url, Some(&rotated)).await,
            200,
            "{gateway}"
        );
    }
    let after = [
        *sys.gateway.authenticator().watch_fetches().borrow(),
        *replica.gateway.authenticator().watch_fetches().borrow(),
    ];
    assert!(
        after[0] > before[0],
        "the first replica fetched: {before:?} -> {after:?}"
    );
    assert!(
        after[1] > before[1],
        "the second replica fetched: {before:?} -> {after:?}"
    );
    // And tokens signed before the rotation still pass both (grace period).
    for gateway in &gateways {
        let url = format!("{gateway}/todoitems");
        assert_eq!(status(&sys.http, "GET", &url, Some(&alice)).await, 200);
    }

    replica.stop().await.unwrap();
    backend_task.abort();
    sys.stop().await.unwrap();
    if let Some((_, server, schema)) = postgres {
        sql(&server, &format!("DROP SCHEMA {schema} CASCADE")).await;
    }
}
