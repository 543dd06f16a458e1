//! Durable storage of todo items in SQLite.
//!
//! One dedicated OS thread owns the only `rusqlite::Connection` (see
//! `store/sqlite.rs`); async code talks to it through a bounded channel and
//! gets answers on oneshot channels, so no SQLite call ever runs on (or
//! blocks) a tokio worker. An answer comes only after the write is committed
//! to disk.
//!
//! This module knows nothing about HTTP or about who may see what: callers
//! pass the tenant (always) and the owner (when the listing is not an admin's).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

mod sqlite;

/// The path that keeps the database in memory (tests only; same code path).
pub const IN_MEMORY: &str = ":memory:";

/// How many commands may wait for the store thread before senders wait too.
const QUEUE_DEPTH: usize = 1024;

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

/// Why the store could not answer.
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
    /// SQLite refused; `Arc` because one failed commit fails a whole batch.
    #[error("sqlite: {0}")]
    Sqlite(#[source] Arc<rusqlite::Error>),
    /// The store thread is gone (it panicked or the store was closed).
    #[error("the store thread has stopped")]
    Stopped,
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Sqlite(Arc::new(error))
    }
}

/// A cheap, cloneable handle to the store thread.
#[derive(Clone, Debug)]
pub struct Store {
    commands: mpsc::Sender<Command>,
}

/// Joins the store thread once every [`Store`] handle is gone, so that
/// `run` returns only after the database file is closed.
#[derive(Debug)]
pub(crate) struct StoreThread(std::thread::JoinHandle<()>);

impl StoreThread {
    /// Waits (off the async runtime) until the store thread has exited.
    pub(crate) async fn join(self) {
        let _ = tokio::task::spawn_blocking(move || self.0.join()).await;
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One request to the store thread; each carries where to send its answer.
#[derive(Debug)]
pub(crate) enum Command {
    Create {
        tenant_id: String,
        owner_id: String,
        name: String,
        reply: Reply<Item>,
    },
    List {
        tenant_id: String,
        owner_id: Option<String>,
        reply: Reply<Vec<Item>>,
    },
    Get {
        tenant_id: String,
        id: i64,
        reply: Reply<Option<Item>>,
    },
    Delete {
        tenant_id: String,
        id: i64,
        reply: Reply<bool>,
    },
    DeleteAll {
        tenant_id: String,
        reply: Reply<u64>,
    },
}

impl Store {
    /// Opens (creating if needed) the database at `path`, or an in-memory
    /// one for [`IN_MEMORY`]. The store thread exits when the last handle
    /// is dropped.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_joinable(path)
            .await
            .map(|(store, _thread)| store)
    }

    pub(crate) async fn open_joinable(path: &Path) -> Result<(Store, StoreThread), StoreError> {
        let path = path.to_path_buf();
        let (opened_tx, opened_rx) = oneshot::channel();
        let (commands, queue) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("todo-store".into())
            .spawn(move || match sqlite::open(&path) {
                Ok(conn) => {
                    let _ = opened_tx.send(Ok(()));
                    sqlite::serve(conn, queue);
                }
                Err(error) => {
                    let _ = opened_tx.send(Err(error));
                }
            })
            .map_err(|e| StoreError::Spawn(Arc::new(e)))?;
        opened_rx.await.map_err(|_| StoreError::Stopped)??;
        Ok((Store { commands }, StoreThread(thread)))
    }

    /// Stores a new, incomplete item and returns it with its fresh id.
    pub async fn create(
        &self,
        tenant_id: &str,
        owner_id: &str,
        name: &str,
    ) -> Result<Item, StoreError> {
        self.ask(|reply| Command::Create {
            tenant_id: tenant_id.to_owned(),
            owner_id: owner_id.to_owned(),
            name: name.to_owned(),
            reply,
        })
        .await
    }

    /// The tenant's items in id order: all of them, or only `owner_id`'s.
    pub async fn list(
        &self,
        tenant_id: &str,
        owner_id: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        self.ask(|reply| Command::List {
            tenant_id: tenant_id.to_owned(),
            owner_id: owner_id.map(str::to_owned),
            reply,
        })
        .await
    }

    /// The item with this id, if it exists in this tenant.
    pub async fn get(&self, tenant_id: &str, id: i64) -> Result<Option<Item>, StoreError> {
        self.ask(|reply| Command::Get {
            tenant_id: tenant_id.to_owned(),
            id,
            reply,
        })
        .await
    }

    /// Deletes the item if it exists in this tenant; tells whether it did.
    pub async fn delete(&self, tenant_id: &str, id: i64) -> Result<bool, StoreError> {
        self.ask(|reply| Command::Delete {
            tenant_id: tenant_id.to_owned(),
            id,
            reply,
        })
        .await
    }

    /// Deletes every item of this tenant (and no other); returns how many.
    pub async fn delete_all(&self, tenant_id: &str) -> Result<u64, StoreError> {
        self.ask(|reply| Command::DeleteAll {
            tenant_id: tenant_id.to_owned(),
            reply,
        })
        .await
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn memory() -> Store {
        Store::open(Path::new(IN_MEMORY))
            .await
            .expect("open in-memory store")
    }

    #[tokio::test]
    async fn ids_start_at_one_and_are_not_reused_after_delete_all() {
        let store = memory().await;
        assert_eq!(store.create("t", "u", "a").await.unwrap().id, 1);
        assert_eq!(store.create("t", "u", "b").await.unwrap().id, 2);
        assert_eq!(store.delete_all("t").await.unwrap(), 2);
        assert_eq!(store.create("t", "u", "c").await.unwrap().id, 3);
    }

    #[tokio::test]
    async fn tenants_never_see_each_others_items() {
        let store = memory().await;
        let a = store.create("ta", "u", "a").await.unwrap();
        let b = store.create("tb", "u", "b").await.unwrap();
        assert_eq!(store.list("ta", None).await.unwrap(), vec![a.clone()]);
        assert_eq!(store.get("ta", b.id).await.unwrap(), None);
        assert!(!store.delete("ta", b.id).await.unwrap());
        assert_eq!(store.delete_all("ta").await.unwrap(), 1);
        assert_eq!(store.list("tb", None).await.unwrap(), vec![b]);
    }

    #[tokio::test]
    async fn listing_by_owner_returns_only_that_owners_items_in_id_order() {
        let store = memory().await;
        let first = store.create("t", "alice", "1").await.unwrap();
        store.create("t", "bob", "2").await.unwrap();
        let third = store.create("t", "alice", "3").await.unwrap();
        assert_eq!(
            store.list("t", Some("alice")).await.unwrap(),
            vec![first, third]
        );
        assert_eq!(store.list("t", None).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_missing_parent_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/todo.db");
        let store = Store::open(&path).await.unwrap();
        store.create("t", "u", "x").await.unwrap();
        assert!(path.exists());
    }
}
