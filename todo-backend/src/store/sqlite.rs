//! The SQLite store's async side: a handle that sends commands to the one
//! dedicated OS thread owning the only `rusqlite::Connection`
//! (`sqlite/batch.rs`), and gets answers on oneshot channels. No SQLite call
//! ever runs on (or blocks) a tokio worker, and an answer comes only after
//! the write is committed to disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Item, StoreError};

mod batch;

/// How many commands may wait for the store thread before senders wait too.
const QUEUE_DEPTH: usize = 1024;

/// A cheap, cloneable handle to the store thread.
#[derive(Clone, Debug)]
pub(super) struct SqliteStore {
    commands: mpsc::Sender<Command>,
}

/// Joins the store thread once every handle is gone, so that `run` returns
/// only after the database file is closed.
#[derive(Debug)]
pub(crate) struct StoreThread(std::thread::JoinHandle<()>);

impl StoreThread {
    /// Waits (off the async runtime) until the store thread has exited.
    pub(crate) async fn join(self) {
        let _ = tokio::task::spawn_blocking(move || self.0.join()).await;
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One request to the store thread; each carries where to send its answer.
#[derive(Debug)]
enum Command {
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
    /// Runs `SELECT 1`, for the readiness check.
    Ping { reply: Reply<()> },
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, or an in-memory
    /// one for [`super::IN_MEMORY`], on a new store thread.
    pub(super) async fn open(path: &Path) -> Result<(SqliteStore, StoreThread), StoreError> {
        let path: PathBuf = path.to_path_buf();
        let (opened_tx, opened_rx) = oneshot::channel();
        let (commands, queue) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("todo-store".into())
            .spawn(move || match batch::open(&path) {
                Ok(conn) => {
                    let _ = opened_tx.send(Ok(()));
                    batch::serve(conn, queue);
                }
                Err(error) => {
                    let _ = opened_tx.send(Err(error));
                }
            })
            .map_err(|e| StoreError::Spawn(Arc::new(e)))?;
        opened_rx.await.map_err(|_| StoreError::Stopped)??;
        Ok((SqliteStore { commands }, StoreThread(thread)))
    }

    pub(super) async fn create(
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

    pub(super) async fn list(
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

    pub(super) async fn get(&self, tenant_id: &str, id: i64) -> Result<Option<Item>, StoreError> {
        self.ask(|reply| Command::Get {
            tenant_id: tenant_id.to_owned(),
            id,
            reply,
        })
        .await
    }

    pub(super) async fn delete(&self, tenant_id: &str, id: i64) -> Result<bool, StoreError> {
        self.ask(|reply| Command::Delete {
            tenant_id: tenant_id.to_owned(),
            id,
            reply,
        })
        .await
    }

    pub(super) async fn delete_all(&self, tenant_id: &str) -> Result<u64, StoreError> {
        self.ask(|reply| Command::DeleteAll {
            tenant_id: tenant_id.to_owned(),
            reply,
        })
        .await
    }

    pub(super) async fn ready(&self) -> Result<(), StoreError> {
        self.ask(|reply| Command::Ping { reply }).await
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

    #[tokio::test]
    async fn a_missing_parent_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/todo.db");
        let (store, _thread) = SqliteStore::open(&path).await.unwrap();
        store.create("t", "u", "x").await.unwrap();
        assert!(path.exists());
    }
}
