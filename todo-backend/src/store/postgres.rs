//! The PostgreSQL store: a pool of `tokio-postgres` connections
//! (`deadpool-postgres`), one autocommitted statement per operation, and the
//! schema migrated at start-up.
//!
//! Several backend instances may share one database: ids come from an
//! identity column (a sequence, which never hands a value out twice and is
//! not reset by deleting rows), and every operation is a single statement,
//! so there is nothing to coordinate between instances. Each instance keeps
//! only its own pool.
//!
//! Where PostgreSQL differs from SQLite underneath, the store hides it:
//! `TEXT` cannot hold U+0000, which a JSON string (and SQLite) can, so names
//! are kept as UTF-8 in a `BYTEA` column and come back byte for byte.
//!
//! Connections use TLS as `sslmode` in the URL says (`postgres/tls.rs`,
//! rustls); the parameters tokio-postgres does not know are taken out of
//! the URL first (`postgres/url.rs`).

use std::path::Path;
use std::time::Duration;

use deadpool_postgres::{Manager, Pool, Runtime};
use tokio_postgres::Row;

use super::{Item, StoreError};

mod migrations;
pub(super) mod tls;
pub(super) mod url;

/// How long opening one new connection may take before the request fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub(super) struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Builds the pool, checks that the server answers and brings the schema
    /// up to date, so a bad URL or an unreachable server fails start-up.
    pub(super) async fn open(
        url: &str,
        ca_file: Option<&Path>,
        pool_size: usize,
    ) -> Result<PostgresStore, StoreError> {
        let settings = tls::settings(url, ca_file).map_err(StoreError::PostgresConfig)?;
        if pool_size == 0 {
            return Err(StoreError::PostgresConfig(
                "the pool size must be at least 1".into(),
            ));
        }
        let pool = Pool::builder(Manager::new(settings.config.clone(), settings.tls.clone()))
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::PostgresConfig(e.to_string()))?;
        let mut client = pool.get().await?;
        migrations::migrate(&mut client).await?;
        tracing::info!(sslmode = settings.mode.as_str(), "connected to PostgreSQL");
        Ok(PostgresStore { pool })
    }

    /// A pooled connection answers `SELECT 1` (a new connection is made,
    /// handshake and all, when the pooled ones are gone).
    pub(super) async fn ready(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// The pool, for closing it when the server stops.
    pub(super) fn pool(&self) -> Pool {
        self.pool.clone()
    }

    pub(super) async fn create(
        &self,
        tenant_id: &str,
        owner_id: &str,
        name: &str,
    ) -> Result<Item, StoreError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "INSERT INTO todo_items (tenant_id, owner_id, name) VALUES ($1, $2, $3)
                 RETURNING id",
            )
            .await?;
        let row = client
            .query_one(&statement, &[&tenant_id, &owner_id, &name.as_bytes()])
            .await?;
        Ok(Item {
            id: row.try_get(0)?,
            tenant_id: tenant_id.to_owned(),
            owner_id: owner_id.to_owned(),
            name: name.to_owned(),
            is_complete: false,
        })
    }

    pub(super) async fn list(
        &self,
        tenant_id: &str,
        owner_id: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, tenant_id, owner_id, name, is_complete FROM todo_items
                 WHERE tenant_id = $1 AND ($2::text IS NULL OR owner_id = $2)
                 ORDER BY id",
            )
            .await?;
        client
            .query(&statement, &[&tenant_id, &owner_id])
            .await?
            .iter()
            .map(item_from_row)
            .collect()
    }

    pub(super) async fn get(&self, tenant_id: &str, id: i64) -> Result<Option<Item>, StoreError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT id, tenant_id, owner_id, name, is_complete FROM todo_items
                 WHERE tenant_id = $1 AND id = $2",
            )
            .await?;
        client
            .query_opt(&statement, &[&tenant_id, &id])
            .await?
            .as_ref()
            .map(item_from_row)
            .transpose()
    }

    pub(super) async fn delete(&self, tenant_id: &str, id: i64) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("DELETE FROM todo_items WHERE tenant_id = $1 AND id = $2")
            .await?;
        Ok(client.execute(&statement, &[&tenant_id, &id]).await? > 0)
    }

    pub(super) async fn delete_all(&self, tenant_id: &str) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("DELETE FROM todo_items WHERE tenant_id = $1")
            .await?;
        Ok(client.execute(&statement, &[&tenant_id]).await?)
    }
}

fn item_from_row(row: &Row) -> Result<Item, StoreError> {
    let name: Vec<u8> = row.try_get(3)?;
    Ok(Item {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        owner_id: row.try_get(2)?,
        // Only this store writes names, always from a `&str`.
        name: String::from_utf8(name)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        is_complete: row.try_get(4)?,
    })
}
