//! The decision endpoint on its own (`--decision-listen`): what an ingress
//! gets back for each kind of question, and that nothing is ever forwarded.

use dev_idp::MintRequest;
use e2e_tests::recorder::Recorder;
use e2e_tests::{Options, System};
use serde_json::{Value, json};

/// Asks the decision endpoint (on `path`) about `method target`, nginx style.
async fn ask(
    sys: &System,
    path: &str,
    method: &str,
    target: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut req = sys
        .http
        .get(format!("{}{path}", sys.decision_url.as_ref().unwrap()))
        .header("X-Original-Method", method)
        .header("X-Original-URI", target);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn decision_endpoint_answers_like_the_gateway_and_forwards_nothing() {
    let upstream = Recorder::start().await;
    let sys = System::start_with(Options {
        decision: true,
        upstream: Some(upstream.url.clone()),
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    let alice = sys.token(MintRequest::user("alice"));
    let decision = sys.decision_url.clone().unwrap();

    // Allowed: 200 with the identity headers, the request id, the path decided.
    let allowed = ask(
        &sys,
        "/",
        "GET",
        "/todoitems/../todoitems?x=1",
        Some(&alice),
    )
    .await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        header(&allowed, "x-user-id").as_deref(),
        Some("a11ce000-0000-4000-8000-000000000001")
    );
    assert_eq!(header(&allowed, "x-user-type").as_deref(), Some("user"));
    assert_eq!(
        header(&allowed, "x-authz-path").as_deref(),
        Some("/todoitems")
    );
    assert!(header(&allowed, "x-request-id").is_some());
    // The signed assertion, for the ingress to copy upstream like the rest:
    // it verifies against the gateway's JWKS, for the default upstream.
    let assertion = header(&allowed, "x-user-assertion").expect("an assertion");
    let jwks: jsonwebtoken::jwk::JwkSet = sys
        .http
        .get(format!(
            "{}/.well-known/authz-proxy/jwks.json",
            sys.admin_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(&assertion)
        .unwrap()
        .kid
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[&sys.gateway_url]);
    validation.set_audience(&[&upstream.url]);
    let claims = jsonwebtoken::decode::<Value>(&assertion, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["oid"], "a11ce000-0000-4000-8000-000000000001");
    assert_eq!(claims["route"], "todos");

    // An anonymous route: 200, no identity even with a token (every
    // identity header present and empty, for the ingress to copy).
    let anonymous = ask(&sys, "/", "GET", "/health", Some(&alice)).await;
    assert_eq!(anonymous.status(), 200);
    assert_eq!(header(&anonymous, "x-user-id").as_deref(), Some(""));
    assert_eq!(header(&anonymous, "x-user-roles").as_deref(), Some(""));
    assert_eq!(header(&anonymous, "x-user-assertion").as_deref(), Some(""));

    // Refusals are the gateway's own.
    let missing = ask(&sys, "/", "GET", "/todoitems", None).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(
        header(&missing, "www-authenticate").as_deref(),
        Some("Bearer")
    );
    let no_route = ask(&sys, "/", "GET", "/nowhere", Some(&alice)).await;
    assert_eq!(no_route.status(), 404);
    assert_eq!(
        no_route.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
    let no_method = ask(&sys, "/", "PUT", "/todoitems", Some(&alice)).await;
    assert_eq!(no_method.status(), 405);
    assert!(header(&no_method, "allow").unwrap().contains("POST"));

    // For nginx, which passes only 2xx, 401 and 403: 403 and the real status.
    let for_nginx = ask(&sys, "/nginx", "GET", "/nowhere", Some(&alice)).await;
    assert_eq!(for_nginx.status(), 403);
    assert_eq!(header(&for_nginx, "x-authz-status").as_deref(), Some("404"));
    assert_eq!(
        header(&for_nginx, "x-authz-body").as_deref(),
        Some(r#"{"detail":"Not Found"}"#)
    );
    let bad_path = ask(&sys, "/nginx", "GET", "/a%2fb", None).await;
    assert_eq!(bad_path.status(), 403);
    assert_eq!(header(&bad_path, "x-authz-status").as_deref(), Some("400"));

    // Envoy's ext_authz asks with the request itself under `/envoy`.
    let envoy = sys
        .http
        .delete(format!("{decision}/envoy/todoitems"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(envoy.status(), 403, "alice may not delete everything");
    let envoy = sys
        .http
        .post(format!("{decision}/envoy/todoitems"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(envoy.status(), 200);
    assert_eq!(
        header(&envoy, "x-authz-path").as_deref(),
        Some("/todoitems")
    );

    // A question that describes no request, or two: 400 saying so.
    let none = sys.http.get(&decision).send().await.unwrap();
    assert_eq!(none.status(), 400);
    let detail = none.json::<Value>().await.unwrap()["detail"].to_string();
    assert!(detail.contains("X-Original-URI"), "{detail}");
    let both = sys
        .http
        .get(&decision)
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/health")
        .header("X-Forwarded-Method", "DELETE")
        .header("X-Forwarded-Uri", "/todoitems")
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);

    // Counted like the gateway's requests; nothing reached the upstream.
    let denials = sys.gateway.metrics().denials_by_reason();
    let count = |reason: &str| denials.iter().find(|(r, _)| *r == reason).unwrap().1;
    assert_eq!(count("no_original_request"), 2);
    assert_eq!(count("no_route"), 2);
    assert_eq!(count("missing_token"), 1);
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    sys.stop().await.unwrap();
}
