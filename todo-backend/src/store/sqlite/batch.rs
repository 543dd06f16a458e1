//! Everything that touches SQLite, all of it on the store thread.
//!
//! The thread takes every command already queued, runs the batch in one
//! transaction and answers only after `COMMIT` returns: with
//! `synchronous=FULL` in WAL mode an acknowledged write is on disk, and many
//! concurrent writes share one fsync (group commit). Each command is a
//! single statement, so a failing one fails alone; a failed `COMMIT` fails
//! the whole batch and nobody is told "done".

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;

use super::{Command, Reply};
use crate::store::{IN_MEMORY, Item, StoreError};

/// How many queued commands at most share one transaction.
const MAX_BATCH: usize = 256;

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

/// Opens the database and prepares it: WAL, `synchronous=FULL`, schema.
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
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
pub(super) fn serve(mut conn: Connection, mut queue: mpsc::Receiver<Command>) {
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
        Command::Ping { reply } => reply.send(Err(error)).is_ok(),
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
        Command::Ping { reply } => {
            let result = conn
                .query_row("SELECT 1", [], |_| Ok(()))
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
