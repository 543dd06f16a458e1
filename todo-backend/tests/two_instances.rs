//! Two `todo-backend` processes on one PostgreSQL database, as behind a load
//! balancer: they share the data and nothing else, so writes through both
//! interleave without loss or collision, and each sees what the other did.

use crate::harness;

use std::collections::{BTreeMap, BTreeSet};

use harness::database::PostgresSchema;
use harness::process::Backend;
use serde_json::{Value, json};
use todo_backend::Database;

const POSTS: usize = 500;
const USERS: usize = 20;

/// User `n` of tenant `n % 2`; `admin-0` and `admin-1` are the tenants' admins.
fn user(n: usize) -> (String, String) {
    (format!("user-{n}"), format!("tenant-{}", n % 2))
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    (user, tenant): (&str, &str),
    roles: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .header("X-User-Id", user)
        .header("X-User-Tenant", tenant)
        .header("X-User-Roles", roles);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn ids(listing: &Value) -> Vec<i64> {
    listing["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_share_every_write_and_every_delete() {
    let Some(schema) = PostgresSchema::create().await else {
        return;
    };
    let Database::Postgres { url, .. } = &schema.database else {
        unreachable!()
    };
    // Both start at once on the empty schema: the migration lock serialises them.
    let args = ["--database-url", url.as_str(), "--db-pool-size", "4"];
    let (one, two) = std::thread::scope(|scope| {
        let one = scope.spawn(|| Backend::start(args));
        let two = scope.spawn(|| Backend::start(args));
        (one.join().unwrap(), two.join().unwrap())
    });
    let instances = [one.url(), two.url()];
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // 500 POSTs, alternating between the instances, all in flight together.
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..POSTS {
        let (client, base) = (client.clone(), instances[n % 2].clone());
        posts.spawn(async move {
            let (user, tenant) = user(n % USERS);
            let name = format!("task {n}");
            let (status, body) = send(
                &client,
                &base,
                "POST",
                "/todoitems",
                (&user, &tenant),
                "User",
                Some(json!({"item": {"name": name}})),
            )
            .await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["item"]["name"], name.as_str());
            (user, body["item"]["id"].as_i64().unwrap())
        });
    }
    let mut created: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut all_ids = BTreeSet::new();
    while let Some(result) = posts.join_next().await {
        let (user, id) = result.unwrap();
        assert!(all_ids.insert(id), "id {id} handed out twice");
        created.entry(user).or_default().insert(id);
    }
    assert_eq!(all_ids.len(), POSTS, "{POSTS} distinct ids");
    assert_eq!(
        schema
            .query_i64("SELECT count(DISTINCT name) FROM todo_items")
            .await,
        POSTS as i64,
        "every item stored once"
    );
    assert_eq!(
        schema.query_i64("SELECT count(*) FROM todo_items").await,
        POSTS as i64
    );

    // Each user lists exactly their own items, the same through either instance.
    for n in 0..USERS {
        let (user, tenant) = user(n);
        for base in &instances {
            let (status, listing) = send(
                &client,
                base,
                "GET",
                "/todoitems",
                (&user, &tenant),
                "User",
                None,
            )
            .await;
            assert_eq!(status, 200);
            let listed = ids(&listing);
            assert_eq!(listed.len(), POSTS / USERS, "{user} through {base}");
            assert_eq!(
                listed.iter().copied().collect::<BTreeSet<_>>(),
                created[&user],
                "{user} through {base}"
            );
        }
    }

    // A delete-all through one instance is seen through the other, in its
    // tenant only.
    let admin = |tenant: usize| (format!("admin-{tenant}"), format!("tenant-{tenant}"));
    let (name, tenant) = admin(0);
    let (status, _) = send(
        &client,
        &instances[0],
        "DELETE",
        "/todoitems",
        (&name, &tenant),
        "Admin",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, after) = send(
        &client,
        &instances[1],
        "GET",
        "/todoitems",
        (&name, &tenant),
        "Admin",
        None,
    )
    .await;
    assert_eq!(
        ids(&after),
        Vec::<i64>::new(),
        "tenant-0 is empty on instance two"
    );
    let (name_1, tenant_1) = admin(1);
    let (_, other) = send(
        &client,
        &instances[1],
        "GET",
        "/todoitems",
        (&name_1, &tenant_1),
        "Admin",
        None,
    )
    .await;
    assert_eq!(ids(&other).len(), POSTS / 2, "tenant-1 keeps its items");

    // And the ids deleted there are not handed out again, by either instance.
    let highest = *all_ids.last().unwrap();
    for base in &instances {
        let (status, body) = send(
            &client,
            base,
            "POST",
            "/todoitems",
            (&name, &tenant),
            "Admin",
            Some(json!({"item": {"name": "after delete-all"}})),
        )
        .await;
        assert_eq!(status, 201);
        let id = body["item"]["id"].as_i64().unwrap();
        assert!(id > highest, "id {id} reused (highest was {highest})");
    }
}
