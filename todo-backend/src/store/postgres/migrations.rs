//! Versioned schema migrations, applied at start-up.
//!
//! Each migration is a numbered SQL file embedded in the binary; the
//! `schema_migrations` table records which have run. All of it happens in
//! one transaction that first takes a transaction-scoped advisory lock, so
//! instances starting at the same moment take turns: the first applies what
//! is missing, the others then find nothing to do. (Without the lock, two
//! concurrent `CREATE TABLE`s can both pass "does it exist?" and one fails.)
//! A migration is never edited once released: a change is a new file.

use deadpool_postgres::Client;

use crate::store::StoreError;

/// Every migration in order: (version, what it does, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "todo items",
    include_str!("migrations/0001_todo_items.sql"),
)];

/// The advisory lock that serialises migrations (any constant shared by all
/// instances; this one spells "todo" in ASCII).
const LOCK_KEY: i64 = 0x746f_646f;

/// Applies the migrations the database lacks, in order, atomically.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    match apply(&tx).await {
        Ok(()) => Ok(tx.commit().await?),
        Err(error) => {
            // Roll back now rather than when `tx` is dropped: a dropped
            // transaction only queues its ROLLBACK, and until it is sent the
            // session keeps the lock that other instances are waiting for.
            let _ = tx.rollback().await;
            Err(error)
        }
    }
}

async fn apply(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
    let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     INTEGER     PRIMARY KEY,
             description TEXT        NOT NULL,
             applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let found: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    if found > known {
        // A newer release has migrated this database; running older code on
        // it could break what that release relies on.
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (version, description, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > found) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[version, description],
        )
        .await?;
        tracing::info!(version, description, "database migration applied");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (index, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, index + 1);
        }
    }
}
