//! The API's behaviour on the wire, endpoint by endpoint, as the sample
//! behaved (minus its bugs). Every scenario runs four times: through
//! `warp::test` and over a real loopback socket, each on SQLite and on
//! PostgreSQL (see `harness/database.rs`).

use crate::harness;

use harness::database::PostgresSchema;
use harness::*;
use serde_json::{Value, json};

/// Runs `scenario` once per transport and store, as four tests named after it.
macro_rules! on_both_transports_and_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test]
            async fn through_warp_test() {
                let api = Api::filter().await;
                $scenario(&api).await;
            }

            #[tokio::test]
            async fn over_a_socket() {
                let api = Api::socket().await;
                $scenario(&api).await;
                api.stop().await;
            }

            #[tokio::test]
            async fn on_postgres_through_warp_test() {
                let Some(schema) = PostgresSchema::create().await else { return };
                let api = Api::filter_on(&schema.database).await;
                $scenario(&api).await;
            }

            #[tokio::test]
            async fn on_postgres_over_a_socket() {
                let Some(schema) = PostgresSchema::create().await else { return };
                let api = Api::socket_on(&schema.database).await;
                $scenario(&api).await;
                api.stop().await;
            }
        }
    )*};
}

on_both_transports_and_stores!(
    every_row_of_the_table_behaves_like_the_sample,
    unknown_paths_are_404_and_wrong_methods_405_with_allow,
    bad_bodies_are_422_like_fastapi,
    bodies_over_64_kib_are_413,
    tenants_are_isolated_even_from_each_others_admins,
    ids_are_never_reused_even_after_delete_all,
    identity_is_checked_before_the_body_and_the_id,
    any_json_string_is_a_name_that_comes_back_byte_for_byte,
);

/// The issue's table, row by row, in one sequence on a fresh store:
/// (request, expected status, expected JSON body or `None` for empty).
#[rustfmt::skip]
fn table() -> Vec<(Req, u16, Option<Value>)> {
    let walk = || item(1, "alice", "Walk the dog");
    let feed = || item(2, "bob", "Feed the cat");
    let water = || item(3, "bob", "Water the plants");
    let missing_name = json!({"detail": [{"loc": ["body", "item", "name"], "msg": "field required", "type": "value_error.missing"}]});
    let not_an_integer = json!({"detail": [{"loc": ["path", "id"], "msg": "value is not a valid integer", "type": "type_error.integer"}]});
    let unauthenticated = || Some(detail("Not authenticated"));
    let not_allowed = || Some(detail("User is not allowed to access the item"));
    let no_item = || Some(detail("Item does not exist"));
    vec![
        // GET /health
        (get("/health"),                          200, Some(json!("OK"))),
        // GET /todoitems, POST /todoitems
        (get("/todoitems"),                       401, unauthenticated()),
        (get("/todoitems").by(ALICE),             200, Some(json!({"items": []}))),
        (create("Walk the dog").by(ALICE),        201, Some(json!({"item": walk()}))),
        (create("Feed the cat").by(BOB),          201, Some(json!({"item": feed()}))),
        (create("x"),                             401, unauthenticated()),
        (post_json(json!({"item": {}})).by(ALICE), 422, Some(missing_name)),
        (get("/todoitems").by(ALICE),             200, Some(json!({"items": [walk()]}))),
        (get("/todoitems").by(BOB),               200, Some(json!({"items": [feed()]}))),
        (get("/todoitems").by(ADMIN),             200, Some(json!({"items": [walk(), feed()]}))),
        // GET /todoitems/{id}
        (get("/todoitems/1").by(ALICE),           200, Some(json!({"item": walk()}))),
        (get("/todoitems/1").by(ADMIN),           200, Some(json!({"item": walk()}))),
        (get("/todoitems/1").by(BOB),             403, not_allowed()),
        (get("/todoitems/99").by(ALICE),          404, no_item()),
        (get("/todoitems/1"),                     401, unauthenticated()),
        (get("/todoitems/abc").by(ALICE),         422, Some(not_an_integer.clone())),
        // DELETE /todoitems/{id}
        (delete("/todoitems/1").by(BOB),          403, not_allowed()),
        (delete("/todoitems/1"),                  401, unauthenticated()),
        (delete("/todoitems/abc").by(ALICE),      422, Some(not_an_integer)),
        (delete("/todoitems/1").by(ALICE),        204, None),
        (delete("/todoitems/1").by(ALICE),        404, no_item()),
        (get("/todoitems/1").by(ALICE),           404, no_item()),
        (delete("/todoitems/2").by(ADMIN),        204, None),
        // DELETE /todoitems
        (create("Water the plants").by(BOB),      201, Some(json!({"item": water()}))),
        (delete("/todoitems").by(BOB),            403, Some(detail("Admin privileges required"))),
        (delete("/todoitems"),                    401, unauthenticated()),
        (get("/todoitems").by(BOB),               200, Some(json!({"items": [water()]}))),
        (delete("/todoitems").by(ADMIN),          204, None),
        (get("/todoitems").by(ADMIN),             200, Some(json!({"items": []}))),
    ]
}

async fn every_row_of_the_table_behaves_like_the_sample(api: &Api) {
    for (req, status, body) in table() {
        match body {
            Some(body) => api.check(req, status, body).await,
            None => api.check_empty(req, status).await,
        };
    }
    // What the rows cannot say: headers and the exact bytes.
    let denied = api.send(get("/todoitems")).await;
    assert_eq!(denied.header("www-authenticate"), Some("Bearer"));
    let forbidden = api.send(delete("/todoitems").by(BOB)).await;
    assert_eq!(forbidden.header("www-authenticate"), Some("Bearer"));
    let created = api.send(create("Walk the dog").by(ALICE)).await;
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert_eq!(
        String::from_utf8(created.body).unwrap(),
        r#"{"item":{"id":4,"owner_id":"alice","name":"Walk the dog","is_complete":false}}"#,
        "keys in the sample's order"
    );
    let deleted = api.send(delete("/todoitems/4").by(ALICE)).await;
    // RFC 9110 §8.6: no Content-Length (nor any body framing) on a 204.
    assert_eq!(deleted.status, 204);
    for framing in ["content-length", "transfer-encoding", "content-type"] {
        assert_eq!(deleted.header(framing), None, "{framing} on a 204");
    }
}

fn post_json(body: Value) -> Req {
    request("POST", "/todoitems").json(&body)
}

async fn unknown_paths_are_404_and_wrong_methods_405_with_allow(api: &Api) {
    let paths = [
        "/",
        "/nope",
        "/todoitems/1/extra",
        "/todoitems/",
        "//todoitems",
        "/todoitems//1",
        "/health/",
        "/TODOITEMS",
    ];
    for path in paths {
        api.check(get(path).by(ALICE), 404, detail("Not Found"))
            .await;
        api.check(get(path), 404, detail("Not Found")).await;
    }
    let cases = [
        ("POST", "/health", "GET"),
        ("DELETE", "/openapi.json", "GET"),
        ("PUT", "/todoitems", "GET, POST, DELETE"),
        ("PATCH", "/todoitems", "GET, POST, DELETE"),
        ("POST", "/todoitems/1", "GET, DELETE"),
        ("PUT", "/todoitems/abc", "GET, DELETE"),
    ];
    for (method, path, allow) in cases {
        // The method is wrong whoever asks: 405 comes before 401.
        for req in [request(method, path), request(method, path).by(ALICE)] {
            let response = api.check(req, 405, detail("Method Not Allowed")).await;
            assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
        }
    }
}

/// Each bad body with pydantic v1's report of it: (request, loc, msg, type, ctx).
#[rustfmt::skip]
fn bad_bodies() -> Vec<(Req, Value, &'static str, &'static str, Option<Value>)> {
    let post = || request("POST", "/todoitems").by(ALICE);
    let item = || json!(["body", "item"]);
    let name = || json!(["body", "item", "name"]);
    vec![
        (post(),                                        item(), "field required", "value_error.missing", None),
        (post().json(&json!({})),                       item(), "field required", "value_error.missing", None),
        (post().json(&json!({"item": null})),           item(), "field required", "value_error.missing", None),
        (post().body(r#"{"item":{"name":"x"}}"#, "text/plain"), item(), "field required", "value_error.missing", None),
        (post().json(&json!({"item": "x"})),            item(), "value is not a valid dict", "type_error.dict", None),
        (post().json(&json!({"item": {}})),             name(), "field required", "value_error.missing", None),
        (post().json(&json!({"item": {"name": null}})), name(), "none is not an allowed value", "type_error.none.not_allowed", None),
        (post().json(&json!({"item": {"name": 42}})),   name(), "str type expected", "type_error.str", None),
        (post().json(&json!({"item": {"name": ""}})),   name(), "ensure this value has at least 1 characters",
            "value_error.any_str.min_length", Some(json!({"limit_value": 1}))),
        (post().json(&json!({"item": {"name": "n".repeat(1001)}})), name(), "ensure this value has at most 1000 characters",
            "value_error.any_str.max_length", Some(json!({"limit_value": 1000}))),
        (post().body(r#"{"item": {"name": "x",}}"#, "application/json"), json!(["body", 22]),
            "trailing comma: line 1 column 23 (char 22)", "value_error.jsondecode",
            Some(json!({"msg": "trailing comma", "pos": 22, "lineno": 1, "colno": 23}))),
    ]
}

async fn bad_bodies_are_422_like_fastapi(api: &Api) {
    let cases = bad_bodies().into_iter().map(|(req, loc, msg, kind, ctx)| {
        let mut error = json!({"loc": loc, "msg": msg, "type": kind});
        if let Some(ctx) = ctx {
            error["ctx"] = ctx;
        }
        (req, json!({ "detail": [error] }))
    });
    for (req, expected) in cases {
        api.check(req, 422, expected).await;
    }
    // Nothing above was stored; the limits' edges and unknown fields are fine.
    api.check(get("/todoitems").by(ALICE), 200, json!({"items": []}))
        .await;
    let longest = "ü".repeat(1000);
    api.check(
        create(&longest).by(ALICE),
        201,
        json!({"item": item(1, "alice", &longest)}),
    )
    .await;
    api.check(
        request("POST", "/todoitems").by(ALICE).json(&json!({"item": {"name": "x", "id": 77, "is_complete": true, "owner_id": "mallory"}, "more": 1})),
        201,
        json!({"item": item(2, "alice", "x")}),
    )
    .await;
}

async fn bodies_over_64_kib_are_413(api: &Api) {
    // Padding in an ignored field brings the body to an exact size.
    let sized = |size: usize| {
        let skeleton = r#"{"item":{"name":"big"},"pad":""}"#;
        let pad = "p".repeat(size - skeleton.len());
        format!(r#"{{"item":{{"name":"big"}},"pad":"{pad}"}}"#)
    };
    let post = |body: String| {
        request("POST", "/todoitems")
            .by(ALICE)
            .body(body, "application/json")
    };
    api.check(
        post(sized(64 * 1024 + 1)),
        413,
        detail("Request Entity Too Large"),
    )
    .await;
    // Refused by its Content-Length, unread. (Kept under the loopback's
    // receive buffer: a client still writing when the server closes would
    // see a TCP reset instead of the 413.)
    api.check(
        post(sized(100 * 1024)),
        413,
        detail("Request Entity Too Large"),
    )
    .await;
    api.check(
        post(sized(64 * 1024)),
        201,
        json!({"item": item(1, "alice", "big")}),
    )
    .await;
}

async fn tenants_are_isolated_even_from_each_others_admins(api: &Api) {
    api.check(
        create("tenant 1 item").by(ALICE),
        201,
        json!({"item": item(1, "alice", "tenant 1 item")}),
    )
    .await;
    api.check(
        create("tenant 2 item").by(CAROL),
        201,
        json!({"item": item(2, "carol", "tenant 2 item")}),
    )
    .await;

    api.check(
        get("/todoitems").by(ADMIN),
        200,
        json!({"items": [item(1, "alice", "tenant 1 item")]}),
    )
    .await;
    api.check(
        get("/todoitems").by(ADMIN_2),
        200,
        json!({"items": [item(2, "carol", "tenant 2 item")]}),
    )
    .await;

    // Another tenant's item is absent, not forbidden, for admins and users.
    for (user, id) in [(ADMIN, 2), (ALICE, 2), (ADMIN_2, 1), (CAROL, 1)] {
        let path = format!("/todoitems/{id}");
        api.check(get(&path).by(user), 404, detail("Item does not exist"))
            .await;
        api.check(delete(&path).by(user), 404, detail("Item does not exist"))
            .await;
    }

    // The same user id in another tenant is another user.
    let alice_elsewhere = User {
        tenant: "tenant-2",
        ..ALICE
    };
    api.check(
        get("/todoitems").by(alice_elsewhere),
        200,
        json!({"items": []}),
    )
    .await;
    api.check(
        get("/todoitems/1").by(alice_elsewhere),
        404,
        detail("Item does not exist"),
    )
    .await;

    // "Delete all" by one tenant's admin leaves the other tenant alone.
    api.check_empty(delete("/todoitems").by(ADMIN), 204).await;
    api.check(get("/todoitems").by(ADMIN), 200, json!({"items": []}))
        .await;
    api.check(
        get("/todoitems").by(ADMIN_2),
        200,
        json!({"items": [item(2, "carol", "tenant 2 item")]}),
    )
    .await;
    api.check(
        get("/todoitems/2").by(CAROL),
        200,
        json!({"item": item(2, "carol", "tenant 2 item")}),
    )
    .await;
}

async fn ids_are_never_reused_even_after_delete_all(api: &Api) {
    for id in 1..=3 {
        api.check(
            create("x").by(ALICE),
            201,
            json!({"item": item(id, "alice", "x")}),
        )
        .await;
    }
    api.check_empty(delete("/todoitems/3").by(ALICE), 204).await;
    api.check(
        create("y").by(ALICE),
        201,
        json!({"item": item(4, "alice", "y")}),
    )
    .await;
    api.check_empty(delete("/todoitems").by(ADMIN), 204).await;
    api.check(
        create("z").by(ALICE),
        201,
        json!({"item": item(5, "alice", "z")}),
    )
    .await;
    api.check(
        get("/todoitems").by(ALICE),
        200,
        json!({"items": [item(5, "alice", "z")]}),
    )
    .await;
}

async fn identity_is_checked_before_the_body_and_the_id(api: &Api) {
    let no_tenant = |req: Req| req.header("X-User-Id", "alice");
    let cases = [
        request("POST", "/todoitems").body("{not json", "application/json"),
        request("POST", "/todoitems").body("x".repeat(100 * 1024), "application/json"),
        get("/todoitems/abc"),
        delete("/todoitems/abc"),
        no_tenant(get("/todoitems")),
        no_tenant(create("x")),
        get("/todoitems").header("X-User-Tenant", "tenant-1"),
    ];
    for req in cases {
        api.check(req, 401, detail("Not authenticated")).await;
    }
}

/// PostgreSQL's `TEXT` cannot hold U+0000; the store keeps names so that
/// every JSON string SQLite keeps comes back the same from PostgreSQL too.
async fn any_json_string_is_a_name_that_comes_back_byte_for_byte(api: &Api) {
    let names = [
        "nul \u{0} inside",
        "\u{0}",
        "emoji 🐕 and combining e\u{301}",
        "quotes \" and \\ backslash",
        "  spaces kept  ",
        "\u{7f}\u{1b}[31m control",
    ];
    for (index, name) in names.into_iter().enumerate() {
        let id = index as i64 + 1;
        api.check(
            create(name).by(ALICE),
            201,
            json!({"item": item(id, "alice", name)}),
        )
        .await;
        api.check(
            get(&format!("/todoitems/{id}")).by(ALICE),
            200,
            json!({"item": item(id, "alice", name)}),
        )
        .await;
    }
    let listed = api.send(get("/todoitems").by(ALICE)).await.json();
    let listed: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, names);
}
