//! PostgreSQL over TLS, against a throw-away server of each test's own that
//! takes TCP clients over TLS only (`harness/tls_postgres.rs`): each
//! `sslmode` does what libpq users expect, a certificate that does not
//! match is refused with a message that says why, and `/ready` follows the
//! database.

use crate::harness;

use harness::process::Backend;
use harness::tls_postgres::TlsPostgres;
use harness::{ALICE, Api, create, get, item};
use serde_json::json;
use todo_backend::{Database, Store};

/// The store opens on `url` (creating the schema through TLS) and keeps an
/// item (in a tenant named after the URL, so that calls on one server do
/// not see each other's); with `hostssl`-only access, a working store
/// means TLS was used.
async fn works(url: String) {
    let store = Store::open(&Database::postgres(url.clone()))
        .await
        .unwrap_or_else(|e| panic!("{url}: {}", e.reason()));
    let created = store.create(&url, "u", "over TLS").await.unwrap();
    assert_eq!(store.list(&url, None).await.unwrap(), vec![created]);
    store.ready().await.unwrap();
}

/// Opening the store on `url` fails, and says `expected`.
async fn refused(database: Database, expected: &str) {
    let error = Store::open(&database).await.unwrap_err();
    let reason = error.reason();
    assert!(reason.contains(expected), "{reason}");
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_works_through_the_api() {
    let Some(server) = TlsPostgres::start() else {
        return;
    };
    let url = server.url(
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            server.ca_file().display()
        ),
    );
    let api = Api::socket_on(&Database::postgres(url)).await;
    api.check(
        create("encrypted").by(ALICE),
        201,
        json!({"item": item(1, "alice", "encrypted")}),
    )
    .await;
    api.check(
        get("/todoitems").by(ALICE),
        200,
        json!({"items": [item(1, "alice", "encrypted")]}),
    )
    .await;
    api.check(get("/ready"), 200, json!({"status": "ready"}))
        .await;
    api.stop().await;
}

#[tokio::test]
async fn verify_full_checks_an_ip_address_and_takes_the_ca_as_a_separate_file() {
    let Some(server) = TlsPostgres::start() else {
        return;
    };
    let url = server.url("127.0.0.1", "sslmode=verify-full");
    let store = Store::open(&Database::Postgres {
        url,
        ca_file: Some(server.ca_file()),
        pool_size: 2,
    })
    .await
    .unwrap_or_else(|e| panic!("{}", e.reason()));
    store.create("t", "u", "x").await.unwrap();
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_host_name() {
    let Some(server) = TlsPostgres::start() else {
        return;
    };
    let ca = server.ca_file();
    // Reaches 127.0.0.1, but expects the certificate to name db.example.
    let url = server.url(
        "db.example",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    refused(
        Database::postgres(url),
        "TLS handshake with db.example failed: invalid peer certificate: certificate not valid for name \"db.example\"",
    )
    .await;
    // verify-ca checks the chain only: the same server is accepted.
    works(server.url(
        "db.example",
        &format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    ))
    .await;
}

/// With a CA given, even `require` checks the chain (as libpq does).
#[tokio::test]
async fn a_certificate_from_another_ca_than_the_one_given_is_refused() {
    let Some(server) = TlsPostgres::start() else {
        return;
    };
    for mode in ["verify-ca", "verify-full", "require"] {
        let url = server.url("localhost", &format!("sslmode={mode}"));
        refused(
            Database::Postgres {
                url,
                ca_file: Some(server.unknown_ca_file()),
                pool_size: 1,
            },
            "invalid peer certificate: UnknownIssuer",
        )
        .await;
    }
}

#[tokio::test]
async fn require_and_prefer_encrypt_without_checking_the_certificate() {
    let Some(server) = TlsPostgres::start() else {
        return;
    };
    works(server.url("db.example", "sslmode=require")).await;
    // SCRAM bound to the TLS session: the server checks the certificate
    // hash the client computed.
    works(server.url("db.example", "sslmode=require&channel_binding=require")).await;
    works(server.url("db.example", "sslmode=prefer")).await;
    // prefer is the default.
    works(server.url("db.example", "application_name=default")).await;
    // Over a Unix socket the server declines TLS: prefer goes on in plain,
    // require does not.
    works(server.socket_url("sslmode=prefer")).await;
    refused(
        Database::postgres(server.socket_url("sslmode=require")),
        "server does not support TLS",
    )
    .await;
}

#[tokio::test]
async fn disable_is_refused_by_a_server_that_takes_tls_only() {
    let Some(server) = TlsPostgres::start() else {
        return;
    };
    refused(
        Database::postgres(server.url("localhost", "sslmode=disable")),
        "no encryption",
    )
    .await;
}

#[tokio::test]
async fn ready_is_503_while_the_database_is_down_and_200_once_it_is_back() {
    let Some(mut server) = TlsPostgres::start() else {
        return;
    };
    let url = server.url(
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            server.ca_file().display()
        ),
    );
    let api = Api::socket_on(&Database::postgres(url)).await;
    api.check(get("/ready"), 200, json!({"status": "ready"}))
        .await;
    server.stop();
    let response = api.send(get("/ready")).await;
    let detail = response.json()["detail"].as_str().unwrap().to_owned();
    assert_eq!(response.status, 503, "{detail}");
    assert!(detail.starts_with("database unavailable: "), "{detail}");
    assert!(detail.contains("error connecting to server"), "{detail}");
    // /health does not touch the database.
    api.check(get("/health"), 200, json!("OK")).await;
    server.restart();
    api.check(get("/ready"), 200, json!({"status": "ready"}))
        .await;
    api.stop().await;
}

/// The binary: a certificate that does not match stops start-up with the
/// reason (as an unreachable database does), and a bad CA file stops it
/// before it listens.
#[tokio::test]
async fn the_binary_refuses_to_start_on_a_mismatched_certificate_or_a_bad_ca_file() {
    let Some(server) = TlsPostgres::start() else {
        return;
    };
    let binary = env!("CARGO_BIN_EXE_todo-backend");
    let run = |url: String, ca: &std::path::Path| {
        std::process::Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--database-url", &url])
            .arg("--database-ca-file")
            .arg(ca)
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let mismatch = run(
        server.url("db.example", "sslmode=verify-full"),
        &server.ca_file(),
    );
    let stderr = String::from_utf8_lossy(&mismatch.stderr);
    assert!(!mismatch.status.success(), "{stderr}");
    assert!(
        stderr.contains("certificate not valid for name \"db.example\""),
        "{stderr}"
    );
    let missing = server.ca_file().with_file_name("missing.pem");
    let bad_ca = run(server.url("localhost", "sslmode=verify-full"), &missing);
    let stderr = String::from_utf8_lossy(&bad_ca.stderr);
    assert!(!bad_ca.status.success(), "{stderr}");
    assert!(stderr.contains("cannot read the CA file"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&bad_ca.stdout).contains("listening"),
        "it listened before checking the CA file"
    );
    // And with the right CA, it serves.
    let backend = Backend::start([
        "--database-url",
        &server.url("localhost", "sslmode=verify-full"),
        "--database-ca-file",
        server.ca_file().to_str().unwrap(),
    ]);
    let ready = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/ready", backend.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}
