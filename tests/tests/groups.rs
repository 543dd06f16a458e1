//! `groups:` through the running system: dev IdP (with its Microsoft Graph
//! stand-in), gateway and the todo backend.
//!
//! Erin is in one group, which her tokens list in `groups`: decided without
//! Graph. Frank is in 250, so his tokens carry the overage marker: the
//! gateway asks Graph (`checkMemberGroups`) once, then answers from its
//! cache, and refuses (`groups_unresolved`) when Graph is down, slower than
//! `--graph-timeout-ms`, or not configured. Graph is never asked for a
//! token that is not otherwise valid, nor when an earlier condition denies.
//! A token of the implicit flow marks the overage with `hasgroups: true`
//! instead, and is resolved the same way.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dev_idp::{GraphMode, MintRequest};
use e2e_tests::{Options, System};
use serde_json::Value;

const FINANCE: &str = "6f1c0000-0000-4000-8000-00000000f1a0";
const HR: &str = "6f1c0000-0000-4000-8000-0000000000b0";

fn policy() -> String {
    format!(
        "version: 1
routes:
  - {{name: finance, path: /todoitems, methods: [GET], scopes: [access_as_user], groups: [{FINANCE}]}}
  - {{name: hr, path: /todoitems, methods: [POST], scopes: [access_as_user], groups: [{HR}]}}
  - {{name: admins, path: /todoitems, methods: [DELETE], roles: [Admin], groups: [{FINANCE}]}}
"
    )
}

async fn start(graph: bool, gateway_args: &[&str]) -> (System, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, policy()).unwrap();
    let sys = System::start_with(Options {
        policy: policy_file,
        graph,
        gateway_args: gateway_args.iter().map(|a| (*a).to_owned()).collect(),
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    (sys, dir)
}

/// Status and `detail` of a request to `/todoitems`.
async fn call(sys: &System, method: reqwest::Method, token: &str) -> (u16, String) {
    let mut request = sys
        .http
        .request(method.clone(), format!("{}/todoitems", sys.gateway_url))
        .bearer_auth(token);
    if method == reqwest::Method::POST {
        request = request.json(&serde_json::json!({"title": "budget"}));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

fn denials(metrics: &str, reason: &str) -> u64 {
    let prefix = format!("authz_proxy_denials_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn a_user_in_250_groups_is_decided_by_graph_once_then_from_the_cache() {
    let (sys, _dir) = start(true, &[]).await;
    let frank = sys.token(MintRequest::user("frank"));
    assert_eq!(call(&sys, reqwest::Method::GET, &frank).await.0, 200);
    assert_eq!(sys.idp.graph_calls(), 1);
    assert_eq!(call(&sys, reqwest::Method::GET, &frank).await.0, 200);
    assert_eq!(
        sys.idp.graph_calls(),
        1,
        "the second answer comes from the cache"
    );

    // Another group: asked once (he is not in it), then known.
    let (status, detail) = call(&sys, reqwest::Method::POST, &frank).await;
    assert_eq!(status, 403);
    assert_eq!(detail, "this route admits only members of certain groups");
    assert_eq!(sys.idp.graph_calls(), 2);
    assert_eq!(call(&sys, reqwest::Method::POST, &frank).await.0, 403);
    assert_eq!(sys.idp.graph_calls(), 2);
    // A new token of the same user: the cache is per user, not per token.
    let again = sys.token(MintRequest::user("frank"));
    assert_eq!(call(&sys, reqwest::Method::GET, &again).await.0, 200);
    assert_eq!(sys.idp.graph_calls(), 2);

    let stats = sys.gateway.graph().unwrap().stats();
    assert_eq!(stats.calls, 2);
    assert_eq!(stats.token_fetches, 1, "one app token for the tenant");
    assert_eq!(stats.cache_hits, 3);
    let metrics = sys.metrics().await;
    assert_eq!(denials(&metrics, "missing_group"), 2, "{metrics}");
    for line in [
        r#"authz_proxy_graph_requests_total{kind="check_member_groups"} 2"#,
        r#"authz_proxy_graph_requests_total{kind="app_token"} 1"#,
        r#"authz_proxy_graph_lookups_total{result="cache"} 3"#,
        r#"authz_proxy_graph_lookups_total{result="unresolved"} 0"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_requests_of_one_user_share_one_lookup() {
    let (sys, _dir) = start(true, &[]).await;
    let frank = sys.token(MintRequest::user("frank"));
    let requests = (0..8).map(|_| call(&sys, reqwest::Method::GET, &frank));
    let answers = futures_util::future::join_all(requests).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    assert_eq!(sys.idp.graph_calls(), 1);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn graph_down_or_slower_than_the_timeout_is_groups_unresolved() {
    let (sys, _dir) = start(true, &["--graph-timeout-ms", "300"]).await;
    let frank = sys.token(MintRequest::user("frank"));

    sys.idp.set_graph_mode(GraphMode::Down);
    let (status, detail) = call(&sys, reqwest::Method::GET, &frank).await;
    assert_eq!(status, 403);
    assert!(
        detail.ends_with("could not be resolved: Microsoft Graph answered 503 serviceNotAvailable"),
        "{detail}"
    );
    assert_eq!(sys.idp.graph_calls(), 1);

    sys.idp.set_graph_mode(GraphMode::Hang);
    let (status, detail) = call(&sys, reqwest::Method::GET, &frank).await;
    assert_eq!(status, 403);
    assert!(
        detail.ends_with("Microsoft Graph did not answer within 300 ms (--graph-timeout-ms)"),
        "{detail}"
    );

    // A failure is not cached: Graph back, the user passes.
    sys.idp.set_graph_mode(GraphMode::Up);
    assert_eq!(call(&sys, reqwest::Method::GET, &frank).await.0, 200);
    let metrics = sys.metrics().await;
    assert_eq!(denials(&metrics, "groups_unresolved"), 2, "{metrics}");
    assert_eq!(sys.gateway.graph().unwrap().stats().failures, 2);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn without_graph_an_overage_is_refused_saying_so() {
    let (sys, _dir) = start(false, &[]).await;
    let frank = sys.token(MintRequest::user("frank"));
    let (status, detail) = call(&sys, reqwest::Method::GET, &frank).await;
    assert_eq!(status, 403);
    assert!(
        detail.ends_with("Microsoft Graph is not configured (--graph-client-id)"),
        "{detail}"
    );
    assert_eq!(sys.idp.graph_calls(), 0);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn graph_is_never_asked_for_an_invalid_token_or_when_an_earlier_condition_denies() {
    let (sys, _dir) = start(true, &[]).await;
    let expired = sys.token(MintRequest::user("frank").expired());
    assert_eq!(call(&sys, reqwest::Method::GET, &expired).await.0, 401);
    let elsewhere = sys.token(MintRequest::user("frank").audience("api://someone-else"));
    assert_eq!(call(&sys, reqwest::Method::GET, &elsewhere).await.0, 401);
    let mut forged = sys.token(MintRequest::user("frank"));
    forged.push('x');
    assert_eq!(call(&sys, reqwest::Method::GET, &forged).await.0, 401);
    // Valid, but without the route's scope, or the role checked before the groups.
    let no_scope = sys.token(MintRequest::user("frank").scopes(Vec::<String>::new()));
    let (status, detail) = call(&sys, reqwest::Method::GET, &no_scope).await;
    assert_eq!(
        (status, detail.contains("access_as_user")),
        (403, true),
        "{detail}"
    );
    let frank = sys.token(MintRequest::user("frank"));
    assert_eq!(call(&sys, reqwest::Method::DELETE, &frank).await.0, 403);
    assert_eq!(sys.idp.graph_calls(), 0);
    let stats = sys.gateway.graph().unwrap().stats();
    assert_eq!((stats.calls, stats.token_fetches), (0, 0));
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_groups_claim_is_decided_without_graph() {
    let (sys, _dir) = start(true, &[]).await;
    let erin = sys.token(MintRequest::user("erin"));
    assert_eq!(call(&sys, reqwest::Method::GET, &erin).await.0, 200);
    assert_eq!(call(&sys, reqwest::Method::POST, &erin).await.0, 403);
    // No groups claim and no overage: in no group.
    let alice = sys.token(MintRequest::user("alice"));
    assert_eq!(call(&sys, reqwest::Method::GET, &alice).await.0, 403);
    assert_eq!(sys.idp.graph_calls(), 0);
    let metrics = sys.metrics().await;
    assert_eq!(denials(&metrics, "missing_group"), 2, "{metrics}");
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn the_decision_endpoint_resolves_an_overage_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, policy()).unwrap();
    let sys = System::start_with(Options {
        policy: policy_file,
        graph: true,
        decision: true,
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    let frank = sys.token(MintRequest::user("frank"));
    let decision = sys.decision_url.clone().unwrap();
    let ask = |method: &'static str| {
        sys.http
            .get(format!("{decision}/"))
            .header("x-original-method", method)
            .header("x-original-uri", "/todoitems")
            .bearer_auth(&frank)
            .send()
    };
    assert_eq!(ask("GET").await.unwrap().status(), 200);
    assert_eq!(ask("POST").await.unwrap().status(), 403);
    assert_eq!(sys.idp.graph_calls(), 2);
    assert_eq!(ask("GET").await.unwrap().status(), 200);
    assert_eq!(sys.idp.graph_calls(), 2);
    sys.stop().await.unwrap();
}

/// A token from the implicit flow (`response_type=token` at the dev IdP's
/// authorize endpoint) carries `hasgroups: true` instead of `groups` for a
/// user in 6 groups or more, as from Entra: on a `groups:` route it is
/// resolved through Graph exactly like `_claim_names`, once, then cached.
#[tokio::test]
async fn an_implicit_flow_token_with_hasgroups_is_resolved_through_graph() {
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, policy()).unwrap();
    let mut idp_config = dev_idp::Config::embedded_default();
    idp_config
        .app_mut(e2e_tests::SWAGGER_CLIENT_ID)
        .unwrap()
        .implicit_access_tokens = true;
    let sys = System::start_with(Options {
        policy: policy_file,
        graph: true,
        idp_config,
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let scope = format!("api://{}/access_as_user", e2e_tests::API_CLIENT_ID);
    let url = reqwest::Url::parse_with_params(
        &format!(
            "{}/{}/oauth2/v2.0/authorize",
            sys.idp_url,
            e2e_tests::TENANT
        ),
        &[
            ("client_id", e2e_tests::SWAGGER_CLIENT_ID),
            ("response_type", "token"),
            ("redirect_uri", "http://localhost:8000/oauth2-redirect"),
            ("scope", scope.as_str()),
            ("login_hint", "frank@contoso.dev"),
        ],
    )
    .unwrap();
    let response = no_redirects.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let fragment = location.split_once('#').expect("a fragment").1;
    let frank = reqwest::Url::parse(&format!("http://fragment/?{fragment}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
        .expect("an access token");
    let payload = frank.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["hasgroups"], true, "{claims}");
    assert!(claims.get("groups").is_none() && claims.get("_claim_names").is_none());

    assert_eq!(call(&sys, reqwest::Method::GET, &frank).await.0, 200);
    assert_eq!(sys.idp.graph_calls(), 1);
    let (status, detail) = call(&sys, reqwest::Method::POST, &frank).await;
    assert_eq!(
        (status, detail.as_str()),
        (403, "this route admits only members of certain groups")
    );
    assert_eq!(sys.idp.graph_calls(), 2);
    assert_eq!(call(&sys, reqwest::Method::GET, &frank).await.0, 200);
    assert_eq!(sys.idp.graph_calls(), 2, "from the cache");
    sys.stop().await.unwrap();
}

/// The gateway authenticates to the token endpoint with a certificate
/// instead of a secret (a client assertion signed with the key of the
/// certificate registered on its app, found by `x5t#S256`): the overage is
/// resolved the same way. A certificate the app does not have registered is
/// refused by the token endpoint, and the request with it.
#[tokio::test]
async fn graph_credentials_can_be_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, policy()).unwrap();
    let sys = System::start_with(Options {
        policy: policy_file.clone(),
        graph: true,
        graph_certificate: true,
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    let frank = sys.token(MintRequest::user("frank"));
    assert_eq!(call(&sys, reqwest::Method::GET, &frank).await.0, 200);
    assert_eq!(call(&sys, reqwest::Method::POST, &frank).await.0, 403);
    assert_eq!(sys.idp.graph_calls(), 2);
    assert_eq!(sys.gateway.graph().unwrap().stats().token_fetches, 1);
    sys.stop().await.unwrap();

    // Another dev IdP's certificate for the same app: not registered here.
    let elsewhere = tempfile::tempdir().unwrap();
    let other =
        dev_idp::Idp::new(dev_idp::Config::embedded_default(), elsewhere.path(), None).unwrap();
    let certificate = other
        .client_certificate(e2e_tests::GRAPH_CLIENT_ID)
        .unwrap();
    let (cert, key) = (
        certificate.cert_file.display().to_string(),
        certificate.key_file.display().to_string(),
    );
    let (sys, _dir) = start(
        false,
        &[
            "--graph-client-id",
            e2e_tests::GRAPH_CLIENT_ID,
            "--graph-client-certificate-file",
            &cert,
            "--graph-client-key-file",
            &key,
        ],
    )
    .await;
    let frank = sys.token(MintRequest::user("frank"));
    let (status, detail) = call(&sys, reqwest::Method::GET, &frank).await;
    assert_eq!(status, 403);
    assert!(
        detail.ends_with(
            "the token endpoint refused the gateway's Graph credentials (401 invalid_client)"
        ),
        "{detail}"
    );
    assert_eq!(sys.idp.graph_calls(), 0);
    sys.stop().await.unwrap();
}
