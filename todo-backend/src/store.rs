//! Durable storage of todo items: embedded SQLite (the default) or a
//! PostgreSQL server, behind one [`Store`] handle with one behaviour.
//!
//! Both keep items per tenant, hand out ids from a counter that never goes
//! back (not even after "delete all"), and acknowledge a write only once it
//! is committed. SQLite lives on one dedicated OS thread with group commit
//! (`store/sqlite.rs`); PostgreSQL is reached through a small connection
//! pool, with its schema migrated at start-up (`store/postgres.rs`). Several
//! backend instances may share one PostgreSQL database; a SQLite file
//! belongs to one process.
//!
//! This module knows nothing about HTTP or about who may see what: callers
//! pass the tenant (always) and the owner (when the listing is not an admin's).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod postgres;
mod sqlite;

/// The path that keeps a SQLite database in memory (tests only; same code path).
pub const IN_MEMORY: &str = ":memory:";

/// The PostgreSQL pool size when none is given.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// How long [`Store::ready`] waits for the database's answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// Where items are kept.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (its directory is created), or [`IN_MEMORY`].
    Sqlite(PathBuf),
    /// A PostgreSQL database, `postgres://user:password@host:port/dbname`
    /// (any libpq-style URL or key=value string tokio-postgres accepts,
    /// plus libpq's `sslmode=verify-ca|verify-full` and `sslrootcert`),
    /// reached through at most `pool_size` connections. `ca_file`: the PEM
    /// certificates to verify the server with, instead of `sslrootcert`.
    Postgres {
        url: String,
        ca_file: Option<PathBuf>,
        pool_size: usize,
    },
}

impl Database {
    /// A PostgreSQL database with the default pool size and no CA file.
    pub fn postgres(url: impl Into<String>) -> Database {
        Database::Postgres {
            url: url.into(),
            ca_file: None,
            pool_size: DEFAULT_POOL_SIZE,
        }
    }

    /// Reads the settings without connecting: the URL, its `sslmode`, and
    /// the CA file. [`Store::open`] checks the same, and then connects; this
    /// lets a program refuse a bad configuration before it binds anything.
    pub fn check(&self) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(_) => Ok(()),
            Database::Postgres { url, ca_file, .. } => {
                postgres::tls::settings(url, ca_file.as_deref())
                    .map(|_| ())
                    .map_err(StoreError::PostgresConfig)
            }
        }
    }
}

/// Shows where the data is without the password a URL may carry, so the
/// value can go to logs and error messages.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Database::Postgres { url, .. } => match postgres::url::split(url)
                .ok()
                .and_then(|split| split.rest.parse::<tokio_postgres::Config>().ok())
            {
                Some(config) => {
                    let hosts: Vec<String> = config
                        .get_hosts()
                        .iter()
                        .map(|host| match host {
                            tokio_postgres::config::Host::Tcp(name) => name.clone(),
                            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                        })
                        .collect();
                    write!(
                        f,
                        "postgres://{}/{}",
                        hosts.join(","),
                        config.get_dbname().unwrap_or("")
                    )
                }
                None => f.write_str("postgres (unparsable URL)"),
            },
        }
    }
}

/// Never prints a password either.
impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Database({self})")
    }
}

/// A stored todo item, with the tenant it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Unique across all tenants, from 1, never reused.
    pub id: i64,
    /// The tenant whose users alone may ever see this item.
    pub tenant_id: String,
    /// The user (object id) who created it.
    pub owner_id: String,
    pub name: String,
    pub is_complete: bool,
}

/// Why the store could not answer. Sources are in `Arc`s because one failure
/// can be the answer to many requests (a failed SQLite batch commit).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Creating the directory that holds the database file failed.
    #[error("cannot create the database directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The operating system would not start the store thread.
    #[error("cannot start the store thread")]
    Spawn(#[source] Arc<std::io::Error>),
    /// SQLite refused.
    #[error("sqlite: {0}")]
    Sqlite(#[source] Arc<rusqlite::Error>),
    /// The PostgreSQL URL or pool size is not usable.
    #[error("postgres configuration: {0}")]
    PostgresConfig(String),
    /// PostgreSQL refused, or the connection to it failed.
    #[error("postgres: {0}")]
    Postgres(#[source] Arc<tokio_postgres::Error>),
    /// No pooled PostgreSQL connection could be had.
    #[error("postgres pool: {0}")]
    Pool(#[source] Arc<deadpool_postgres::PoolError>),
    /// The database has a schema migration this program does not know.
    #[error("the database schema is at version {found}; this program knows up to {known}")]
    SchemaTooNew { found: i32, known: i32 },
    /// The store thread is gone (it panicked or the store was closed).
    #[error("the store thread has stopped")]
    Stopped,
    /// The database did not answer in time.
    #[error("no answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
}

impl StoreError {
    /// The message and those of its sources, each once: the whole story
    /// for a log line or a readiness answer ("postgres pool: …: TLS
    /// handshake with db failed: invalid peer certificate: …").
    pub fn reason(&self) -> String {
        let mut reason = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(error) = source {
            let message = error.to_string();
            if !reason.ends_with(&message) {
                reason.push_str(": ");
                reason.push_str(&message);
            }
            source = error.source();
        }
        reason
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Sqlite(Arc::new(error))
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        StoreError::Postgres(Arc::new(error))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        StoreError::Pool(Arc::new(error))
    }
}

/// A cheap, cloneable handle to the store, whichever database it is on.
#[derive(Clone, Debug)]
pub struct Store(Backend);

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PostgresStore),
}

/// What [`crate::run`] waits for after the server has stopped: the SQLite
/// thread to close the file, or the PostgreSQL pool to close its connections.
#[derive(Debug)]
pub(crate) struct Closer(CloserKind);

#[derive(Debug)]
enum CloserKind {
    Sqlite(sqlite::StoreThread),
    Postgres(deadpool_postgres::Pool),
}

impl Closer {
    /// Waits until every handle is gone and the database is closed.
    pub(crate) async fn close(self) {
        match self.0 {
            CloserKind::Sqlite(thread) => thread.join().await,
            CloserKind::Postgres(pool) => pool.close(),
        }
    }
}

impl Store {
    /// Opens the database, creating or migrating its schema. A SQLite store
    /// thread exits when the last handle is dropped.
    pub async fn open(database: &Database) -> Result<Store, StoreError> {
        Self::open_closable(database)
            .await
            .map(|(store, _closer)| store)
    }

    /// A SQLite store on `path` (a file, or [`IN_MEMORY`]).
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        Self::open(&Database::Sqlite(path.to_path_buf())).await
    }

    pub(crate) async fn open_closable(database: &Database) -> Result<(Store, Closer), StoreError> {
        match database {
            Database::Sqlite(path) => {
                let (store, thread) = sqlite::SqliteStore::open(path).await?;
                Ok((
                    Store(Backend::Sqlite(store)),
                    Closer(CloserKind::Sqlite(thread)),
                ))
            }
            Database::Postgres {
                url,
                ca_file,
                pool_size,
            } => {
                let store =
                    postgres::PostgresStore::open(url, ca_file.as_deref(), *pool_size).await?;
                let pool = store.pool();
                Ok((
                    Store(Backend::Postgres(store)),
                    Closer(CloserKind::Postgres(pool)),
                ))
            }
        }
    }

    /// Whether the database answers a trivial query within
    /// [`READY_TIMEOUT`]: for PostgreSQL, a pooled connection (made anew,
    /// TLS handshake and all, when the pooled ones are broken) runs
    /// `SELECT 1`; for SQLite, the store thread does.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let check = async {
            match &self.0 {
                Backend::Sqlite(s) => s.ready().await,
                Backend::Postgres(s) => s.ready().await,
            }
        };
        tokio::time::timeout(READY_TIMEOUT, check)
            .await
            .map_err(|_| StoreError::Timeout(READY_TIMEOUT))?
    }

    /// Stores a new, incomplete item and returns it with its fresh id.
    pub async fn create(
        &self,
        tenant_id: &str,
        owner_id: &str,
        name: &str,
    ) -> Result<Item, StoreError> {
        match &self.0 {
            Backend::Sqlite(s) => s.create(tenant_id, owner_id, name).await,
            Backend::Postgres(s) => s.create(tenant_id, owner_id, name).await,
        }
    }

    /// The tenant's items in id order: all of them, or only `owner_id`'s.
    pub async fn list(
        &self,
        tenant_id: &str,
        owner_id: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        match &self.0 {
            Backend::Sqlite(s) => s.list(tenant_id, owner_id).await,
            Backend::Postgres(s) => s.list(tenant_id, owner_id).await,
        }
    }

    /// The item with this id, if it exists in this tenant.
    pub async fn get(&self, tenant_id: &str, id: i64) -> Result<Option<Item>, StoreError> {
        match &self.0 {
            Backend::Sqlite(s) => s.get(tenant_id, id).await,
            Backend::Postgres(s) => s.get(tenant_id, id).await,
        }
    }

    /// Deletes the item if it exists in this tenant; tells whether it did.
    pub async fn delete(&self, tenant_id: &str, id: i64) -> Result<bool, StoreError> {
        match &self.0 {
            Backend::Sqlite(s) => s.delete(tenant_id, id).await,
            Backend::Postgres(s) => s.delete(tenant_id, id).await,
        }
    }

    /// Deletes every item of this tenant (and no other); returns how many.
    pub async fn delete_all(&self, tenant_id: &str) -> Result<u64, StoreError> {
        match &self.0 {
            Backend::Sqlite(s) => s.delete_all(tenant_id).await,
            Backend::Postgres(s) => s.delete_all(tenant_id).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_database_is_shown_without_its_password() {
        let database = Database::postgres("postgres://todo:s3cret@db.internal:5432/todo");
        assert_eq!(database.to_string(), "postgres://db.internal/todo");
        assert!(!format!("{database:?}").contains("s3cret"));
    }

    #[test]
    fn a_sqlite_database_is_shown_with_its_path() {
        let database = Database::Sqlite("data/todo.db".into());
        assert_eq!(database.to_string(), "sqlite:data/todo.db");
    }
}
