//! The store on its own, on SQLite and on PostgreSQL: the same answers from
//! both, and what only PostgreSQL has (migrations, shared by instances).

use crate::harness;

use harness::database::PostgresSchema;
use harness::memory;
use todo_backend::{Database, Store, StoreError};

/// Runs `check` on a fresh in-memory SQLite store and on a fresh PostgreSQL
/// schema, as two tests named after it.
macro_rules! on_both_stores {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                $check(&Store::open(&memory()).await.unwrap()).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(schema) = PostgresSchema::create().await else { return };
                $check(&Store::open(&schema.database).await.unwrap()).await;
            }
        }
    )*};
}

on_both_stores!(
    ids_start_at_one_and_are_not_reused_after_delete_all,
    tenants_never_see_each_others_items,
    listing_by_owner_returns_only_that_owners_items_in_id_order,
    a_missing_item_is_none_and_deleting_it_reports_false,
);

async fn ids_start_at_one_and_are_not_reused_after_delete_all(store: &Store) {
    assert_eq!(store.create("t", "u", "a").await.unwrap().id, 1);
    assert_eq!(store.create("t", "u", "b").await.unwrap().id, 2);
    assert_eq!(store.delete_all("t").await.unwrap(), 2);
    assert_eq!(store.create("t", "u", "c").await.unwrap().id, 3);
}

async fn tenants_never_see_each_others_items(store: &Store) {
    let a = store.create("ta", "u", "a").await.unwrap();
    let b = store.create("tb", "u", "b").await.unwrap();
    assert_eq!(store.list("ta", None).await.unwrap(), vec![a.clone()]);
    assert_eq!(store.get("ta", b.id).await.unwrap(), None);
    assert!(!store.delete("ta", b.id).await.unwrap());
    assert_eq!(store.delete_all("ta").await.unwrap(), 1);
    assert_eq!(store.list("tb", None).await.unwrap(), vec![b]);
}

async fn listing_by_owner_returns_only_that_owners_items_in_id_order(store: &Store) {
    let first = store.create("t", "alice", "1").await.unwrap();
    store.create("t", "bob", "2").await.unwrap();
    let third = store.create("t", "alice", "3").await.unwrap();
    assert_eq!(
        store.list("t", Some("alice")).await.unwrap(),
        vec![first, third]
    );
    assert_eq!(store.list("t", None).await.unwrap().len(), 3);
}

async fn a_missing_item_is_none_and_deleting_it_reports_false(store: &Store) {
    assert_eq!(store.get("t", 1).await.unwrap(), None);
    assert!(!store.delete("t", 1).await.unwrap());
    assert_eq!(store.delete_all("t").await.unwrap(), 0);
    let item = store.create("t", "u", "x").await.unwrap();
    assert_eq!(store.get("t", item.id).await.unwrap(), Some(item.clone()));
    assert!(store.delete("t", item.id).await.unwrap());
    assert!(!store.delete("t", item.id).await.unwrap());
}

/// Instances starting at the same moment on an empty database: the advisory
/// lock lets one create the schema while the others wait, so all start and
/// the migration is recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_instances_starting_at_once_migrate_the_schema_once() {
    let Some(schema) = PostgresSchema::create().await else {
        return;
    };
    let mut opens = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let database = schema.database.clone();
        opens.spawn(async move { Store::open(&database).await });
    }
    let mut stores = Vec::new();
    while let Some(opened) = opens.join_next().await {
        stores.push(opened.unwrap().expect("every instance starts"));
    }
    assert_eq!(
        schema
            .query_i64("SELECT count(*) FROM schema_migrations")
            .await,
        1
    );
    // They are one store: ids are shared and distinct.
    let mut ids = Vec::new();
    for store in &stores {
        ids.push(store.create("t", "u", "x").await.unwrap().id);
    }
    assert_eq!(ids, (1..=8).collect::<Vec<_>>());
}

#[tokio::test]
async fn reopening_a_migrated_database_applies_nothing_and_keeps_the_items() {
    let Some(schema) = PostgresSchema::create().await else {
        return;
    };
    let first = Store::open(&schema.database).await.unwrap();
    let kept = first.create("t", "u", "kept").await.unwrap();
    drop(first);
    let again = Store::open(&schema.database).await.unwrap();
    assert_eq!(again.list("t", None).await.unwrap(), vec![kept]);
    assert_eq!(
        schema
            .query_i64("SELECT count(*) FROM schema_migrations")
            .await,
        1
    );
}

/// An older release must not run on a schema a newer one has migrated.
#[tokio::test]
async fn a_schema_newer_than_the_program_is_refused() {
    let Some(schema) = PostgresSchema::create().await else {
        return;
    };
    Store::open(&schema.database).await.unwrap();
    schema
        .execute(
            "INSERT INTO schema_migrations (version, description) VALUES (999, 'from the future')",
        )
        .await;
    let error = Store::open(&schema.database).await.unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooNew { found: 999, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_pool_size_of_zero_is_refused() {
    let error = Store::open(&Database::Postgres {
        url: "postgres://todo@127.0.0.1/todo".into(),
        ca_file: None,
        pool_size: 0,
    })
    .await
    .unwrap_err();
    assert!(matches!(error, StoreError::PostgresConfig(_)), "{error}");
}
