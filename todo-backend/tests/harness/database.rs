//! The databases the tests run on: SQLite always, and PostgreSQL when
//! `TEST_DATABASE_URL` names a server (`.ci/run` starts one and sets it).
//!
//! Each PostgreSQL test gets a fresh schema of its own (the store's
//! connections find it through `search_path`), so tests run in parallel on
//! one database and each starts empty, ids from 1. In CI (`CI=true`) a
//! missing `TEST_DATABASE_URL` fails the test: the PostgreSQL half of the
//! suite must never be skipped there without anyone noticing.

use std::sync::atomic::{AtomicU64, Ordering};

use todo_backend::Database;

/// The variable naming the PostgreSQL server to test against.
pub const TEST_DATABASE_URL: &str = "TEST_DATABASE_URL";

/// The server's URL; `None` (and a note on stderr) when it is not set
/// outside CI. Panics in CI when it is not set.
pub fn postgres_url() -> Option<String> {
    match std::env::var(TEST_DATABASE_URL) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("{TEST_DATABASE_URL} must name a PostgreSQL server in CI (see .ci/run)")
        }
        _ => {
            eprintln!("{TEST_DATABASE_URL} is not set: the PostgreSQL run of this test is skipped");
            None
        }
    }
}

/// A fresh, empty PostgreSQL schema for one test, dropped with this value.
pub struct PostgresSchema {
    server: String,
    schema: String,
    /// The database as the store should open it: the server's URL with
    /// `search_path` set to this schema.
    pub database: Database,
}

impl PostgresSchema {
    /// A new schema on the `TEST_DATABASE_URL` server; `None` when that is
    /// not set (outside CI).
    pub async fn create() -> Option<PostgresSchema> {
        let server = postgres_url()?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let schema = format!(
            "todo_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        execute(&server, &format!("CREATE SCHEMA {schema}")).await;
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-c%20search_path%3D{schema}");
        Some(PostgresSchema {
            server,
            schema,
            database: Database::postgres(url),
        })
    }

    /// Runs `sql` in this schema, on a connection of its own.
    pub async fn execute(&self, sql: &str) {
        execute(
            &self.server,
            &format!("SET search_path TO {}; {sql}", self.schema),
        )
        .await;
    }

    /// The first column of the first row of `sql`, run in this schema.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let client = connect(&self.server).await;
        client
            .batch_execute(&format!("SET search_path TO {}", self.schema))
            .await
            .unwrap();
        client.query_one(sql, &[]).await.unwrap().get(0)
    }
}

impl Drop for PostgresSchema {
    /// Drops the schema from a thread of its own (`Drop` cannot await, and
    /// may run on a runtime that must not be blocked by a nested one). The
    /// test's runtime is blocked meanwhile, so a lock its connections still
    /// held would never be released: `lock_timeout` turns that into a
    /// warning and a leftover schema instead of a hang.
    fn drop(&mut self) {
        let (server, schema) = (self.server.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let sql = format!("SET lock_timeout = '10s'; DROP SCHEMA {schema} CASCADE");
                    connect(&server).await.batch_execute(&sql).await
                })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop the test schema {}: {error}", self.schema),
            Err(_) => eprintln!("could not drop the test schema {}", self.schema),
        }
    }
}

async fn connect(server: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {TEST_DATABASE_URL}: {e}"));
    tokio::spawn(connection);
    client
}

async fn execute(server: &str, sql: &str) {
    connect(server)
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
