//! Gateway replicas share nothing: two gateways, each in front of its own
//! todo backend, requests alternating between them, make the same decisions;
//! and a key rotation at the IdP is picked up by each replica on its own,
//! from its own fetch, with no signal from the other.

use dev_idp::MintRequest;
use e2e_tests::System;
use e2e_tests::replica::Replica;

/// A second todo backend (its own SQLite file) on loopback port 0.
async fn second_backend(dir: &std::path::Path) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = todo_backend::Config::sqlite(dir.join("todo.db"));
    let task = tokio::spawn(async move {
        todo_backend::run(listener, config, std::future::pending())
            .await
            .unwrap();
    });
    (url, task)
}

async fn status(http: &reqwest::Client, method: &str, url: &str, token: Option<&str>) -> u16 {
    let mut request = http.request(method.parse().unwrap(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_decide_alike_and_each_picks_up_a_key_rotation_on_its_own() {
    let sys = System::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (backend_two, backend_task) = second_backend(dir.path()).await;
    let replica = Replica::start(&sys, &backend_two, &e2e_tests::repo_policy())
        .await
        .unwrap();
    sys.first_key_fetch().await;
    replica.key_fetches(1).await;
    let gateways = [sys.gateway_url.clone(), replica.url.clone()];

    let alice = sys.token(MintRequest::user("alice"));
    let bob = sys.token(MintRequest::user("bob"));
    let expired = sys.token(MintRequest::user("alice").expired());
    let cases: [(&str, &str, Option<&str>, u16); 7] = [
        ("GET", "/todoitems", None, 401),
        ("GET", "/todoitems", Some(&alice), 200),
        ("GET", "/todoitems", Some(&expired), 401),
        ("DELETE", "/todoitems", Some(&alice), 403),
        ("DELETE", "/todoitems", Some(&bob), 204),
        ("GET", "/nowhere", Some(&alice), 404),
        ("PUT", "/todoitems", Some(&alice), 405),
    ];
    // Every case through both, alternating which goes first.
    for (n, (method, path, token, expected)) in cases.iter().enumerate() {
        for turn in 0..2 {
            let gateway = &gateways[(n + turn) % 2];
            let got = status(&sys.http, method, &format!("{gateway}{path}"), *token).await;
            assert_eq!(got, *expected, "{method} {path} through {gateway}");
        }
    }

    // A new key at the IdP: each replica meets the unknown kid and fetches
    // the key set itself.
    let before = [
        *sys.gateway.authenticator().watch_fetches().borrow(),
        *replica.gateway.authenticator().watch_fetches().borrow(),
    ];
    sys.idp.rotate_keys().unwrap();
    let rotated = sys.token(MintRequest::user("alice"));
    for gateway in &gateways {
        let url = format!("{gateway}/todoitems");
        assert_eq!(
            status(&sys.http, "GET", &url, Some(&rotated)).await,
            200,
            "{gateway}"
        );
    }
    let after = [
        *sys.gateway.authenticator().watch_fetches().borrow(),
        *replica.gateway.authenticator().watch_fetches().borrow(),
    ];
    assert!(
        after[0] > before[0],
        "the first replica fetched: {before:?} -> {after:?}"
    );
    assert!(
        after[1] > before[1],
        "the second replica fetched: {before:?} -> {after:?}"
    );
    // And tokens signed before the rotation still pass both (grace period).
    for gateway in &gateways {
        let url = format!("{gateway}/todoitems");
        assert_eq!(status(&sys.http, "GET", &url, Some(&alice)).await, 200);
    }

    replica.stop().await.unwrap();
    backend_task.abort();
    sys.stop().await.unwrap();
}
