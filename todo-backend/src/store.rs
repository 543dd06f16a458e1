//! Durable storage of todo items in SQLite.
//!
//! One dedicated OS thread owns the only `rusqlite::Connection`; async code
//! talks to it through a bounded channel and gets answers on oneshot channels,
//! so no SQLite call ever runs on (or blocks) a tokio worker. The thread takes
//! every command that is already queued, runs the batch in one transaction
//! and answers only after `COMMIT` returns: with `synchronous=FULL` in WAL
//! mode an acknowledged write has reached the disk, and many concurrent
//! writes share one fsync (group commit).
//!
//! This module knows nothing about HTTP or about who may see what: callers
//! pass the tenant (always) and the owner (when the listing is not an admin's).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

/// The path that keeps the database in memory (tests only; same code path).
pub const IN_MEMORY: &str = ":memory:";

/// How many queued commands at most share one transaction.
const MAX_BATCH: usize = 256;

/// How many commands may wait for the store thread before senders wait too.
const QUEUE_DEPTH: usize = 1024;

/// `AUTOINCREMENT` makes SQLite remember the highest id ever handed out (in
/// `sqlite_sequence`), so ids are never reused, not even after "delete all".
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS todo_items (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL,
    owner_id    TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    is_complete INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS todo_items_by_owner ON todo_items (tenant_id, owner_id, id);
";

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
            .spawn(move || match open_connection(&path) {
                Ok(conn) => {
                    let _ = opened_tx.send(Ok(()));
                    serve(conn, queue);
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

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = if path == Path::new(IN_MEMORY) {
        Connection::open_in_memory()?
    } else {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source: Arc::new(e),
            })?;
        }
        Connection::open(path)?
    };
    // WAL lets readers in other processes (backups, sqlite3) work alongside;
    // FULL makes every COMMIT durable before we acknowledge it.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// A command that has run inside the open transaction and waits to be
/// answered with its result, or with the commit's error.
type Pending = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

fn pending<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Pending {
    Box::new(move |commit| {
        let answer = match commit {
            Ok(()) => result,
            Err(error) => Err(error.clone()),
        };
        let _ = reply.send(answer);
    })
}

/// The store thread's loop: batch what is queued, run it, commit, answer.
fn serve(mut conn: Connection, mut queue: mpsc::Receiver<Command>) {
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(error) => {
                let error = StoreError::from(error);
                tracing::error!(%error, "cannot begin a transaction");
                for command in batch {
                    fail(command, &error);
                }
                continue;
            }
        };
        let answers: Vec<Pending> = batch
            .into_iter()
            .map(|command| execute(&tx, command))
            .collect();
        let commit = tx.commit().map_err(StoreError::from);
        if let Err(error) = &commit {
            tracing::error!(%error, "commit failed; the whole batch is reported as failed");
        }
        for answer in answers {
            answer(commit.as_ref().map(|_| ()));
        }
    }
}

/// Answers a command that could not run with `error`.
fn fail(command: Command, error: &StoreError) {
    let error = error.clone();
    // The caller may have gone away; then nobody is waiting for the answer.
    let _ = match command {
        Command::Create { reply, .. } => reply.send(Err(error)).is_ok(),
        Command::List { reply, .. } => reply.send(Err(error)).is_ok(),
        Command::Get { reply, .. } => reply.send(Err(error)).is_ok(),
        Command::Delete { reply, .. } => reply.send(Err(error)).is_ok(),
        Command::DeleteAll { reply, .. } => reply.send(Err(error)).is_ok(),
    };
}

fn execute(conn: &Connection, command: Command) -> Pending {
    match command {
        Command::Create {
            tenant_id,
            owner_id,
            name,
            reply,
        } => {
            let result = conn
                .query_row(
                    "INSERT INTO todo_items (tenant_id, owner_id, name, is_complete)
                     VALUES (?1, ?2, ?3, 0) RETURNING id",
                    params![tenant_id, owner_id, name],
                    |row| row.get(0),
                )
                .map(|id| Item {
                    id,
                    tenant_id,
                    owner_id,
                    name,
                    is_complete: false,
                })
                .map_err(StoreError::from);
            pending(reply, result)
        }
        Command::List {
            tenant_id,
            owner_id,
            reply,
        } => pending(reply, list(conn, &tenant_id, owner_id.as_deref())),
        Command::Get {
            tenant_id,
            id,
            reply,
        } => {
            let result = conn
                .query_row(
                    "SELECT id, tenant_id, owner_id, name, is_complete FROM todo_items
                     WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant_id, id],
                    item_from_row,
                )
                .optional()
                .map_err(StoreError::from);
            pending(reply, result)
        }
        Command::Delete {
            tenant_id,
            id,
            reply,
        } => {
            let result = conn
                .execute(
                    "DELETE FROM todo_items WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant_id, id],
                )
                .map(|n| n > 0)
                .map_err(StoreError::from);
            pending(reply, result)
        }
        Command::DeleteAll { tenant_id, reply } => {
            let result = conn
                .execute(
                    "DELETE FROM todo_items WHERE tenant_id = ?1",
                    params![tenant_id],
                )
                .map(|n| n as u64)
                .map_err(StoreError::from);
            pending(reply, result)
        }
    }
}

fn list(
    conn: &Connection,
    tenant_id: &str,
    owner_id: Option<&str>,
) -> Result<Vec<Item>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, tenant_id, owner_id, name, is_complete FROM todo_items
         WHERE tenant_id = ?1 AND (?2 IS NULL OR owner_id = ?2)
         ORDER BY id",
    )?;
    let items = statement
        .query_map(params![tenant_id, owner_id], item_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(items)
}

fn item_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    Ok(Item {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        owner_id: row.get(2)?,
        name: row.get(3)?,
        is_complete: row.get(4)?,
    })
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
