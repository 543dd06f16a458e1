//! `/metrics` after a scripted mix of requests: every counter exactly.

use super::*;

#[tokio::test]
async fn metrics_move_exactly_as_a_scripted_mix_of_requests_says() {
    let sys = start().await;
    let client = reqwest::Client::new();
    let alice = sys.token(MintRequest::user("alice"));
    let expired = sys.token(MintRequest {
        expired: true,
        ..MintRequest::user("alice")
    });
    use reqwest::Method as M;
    let script: [(M, &str, Option<&str>, u16); 8] = [
        (M::GET, "/todoitems", Some(&alice), 200), // cache miss, verified
        (M::GET, "/todoitems", Some(&alice), 200), // cache hit
        (M::GET, "/todoitems", None, 401),         // missing_token
        (M::GET, "/todoitems", Some(&expired), 401), // cache miss, expired
        (M::DELETE, "/todoitems", Some(&alice), 403), // cache hit, missing_role
        (M::GET, "/nowhere", Some(&alice), 404),   // no_route: no lookup
        (M::PUT, "/todoitems", None, 405),         // method_not_allowed
        (M::GET, "/health", None, 200),            // anonymous: no lookup
    ];
    for (method, path, token, expected) in script {
        let (status, _, body) = send(&sys, &client, method.clone(), path, token, None).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }

    let m = scrape(&sys).await;
    let expect = [
        (requests("todos", "GET", "allow", 200), 2.0),
        (requests("todos", "GET", "deny", 401), 2.0),
        (requests("delete-all", "DELETE", "deny", 403), 1.0),
        (requests("", "GET", "deny", 404), 1.0),
        (requests("", "PUT", "deny", 405), 1.0),
        (requests("health", "GET", "allow", 200), 1.0),
        (
            r#"authz_proxy_denials_total{reason="missing_token"}"#.into(),
            1.0,
        ),
        (r#"authz_proxy_denials_total{reason="expired"}"#.into(), 1.0),
        (
            r#"authz_proxy_denials_total{reason="missing_role"}"#.into(),
            1.0,
        ),
        (
            r#"authz_proxy_denials_total{reason="no_route"}"#.into(),
            1.0,
        ),
        (
            r#"authz_proxy_denials_total{reason="method_not_allowed"}"#.into(),
            1.0,
        ),
        (
            r#"authz_proxy_denials_total{reason="bad_signature"}"#.into(),
            0.0,
        ),
        (
            r#"authz_proxy_upstream_errors_total{kind="connect"}"#.into(),
            0.0,
        ),
        (
            r#"authz_proxy_upstream_duration_seconds_count{route="todos"}"#.into(),
            2.0,
        ),
        (
            r#"authz_proxy_upstream_duration_seconds_count{route="health"}"#.into(),
            1.0,
        ),
        (
            r#"authz_proxy_gateway_duration_seconds_count{route="todos"}"#.into(),
            4.0,
        ),
        (
            r#"authz_proxy_gateway_duration_seconds_count{route=""}"#.into(),
            2.0,
        ),
        (
            r#"authz_proxy_jwks_fetches_total{outcome="success"}"#.into(),
            1.0,
        ),
        (
            r#"authz_proxy_jwks_fetches_total{outcome="failure"}"#.into(),
            0.0,
        ),
        (
            r#"authz_proxy_token_cache_lookups_total{result="hit"}"#.into(),
            2.0,
        ),
        (
            r#"authz_proxy_token_cache_lookups_total{result="miss"}"#.into(),
            2.0,
        ),
        ("authz_proxy_token_cache_size".into(), 1.0),
        (
            r#"authz_proxy_policy_reloads_total{outcome="applied"}"#.into(),
            0.0,
        ),
    ];
    for (series, value) in &expect {
        assert_eq!(m.get(series), Some(value), "{series}");
    }
    let requests_total: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("authz_proxy_requests_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(requests_total, 8.0, "one count per request");
    // Whether the client reused one connection is its business; the gateway
    // counts each it accepted, and none of them has closed.
    let accepted = m["authz_proxy_connections_total"];
    assert!(accepted >= 1.0);
    assert_eq!(m["authz_proxy_open_connections"], accepted);
    assert!(m["authz_proxy_jwks_keys"] >= 1.0);
    assert!(m["authz_proxy_jwks_seconds_since_last_refresh"] >= 0.0);
    let policy = std::fs::read(e2e_tests::repo_policy()).unwrap();
    let hash = authz_proxy::metrics::policy_hash(&policy);
    assert_eq!(
        m.get(&format!("authz_proxy_policy_info{{hash=\"{hash}\"}}")),
        Some(&1.0)
    );

    // The reload hook moves the reload counter and the hash.
    sys.gateway
        .record_reload(authz_proxy::metrics::ReloadOutcome::Applied, "abc123");
    let m = scrape(&sys).await;
    assert_eq!(
        m.get(r#"authz_proxy_policy_reloads_total{outcome="applied"}"#),
        Some(&1.0)
    );
    assert_eq!(
        m.get(r#"authz_proxy_policy_info{hash="abc123"}"#),
        Some(&1.0)
    );
    sys.stop().await.unwrap();
}
