//! Groups: the `groups` claim of an API with `group_membership_claims`,
//! the overage marker above 200 groups, and the Microsoft Graph stand-in
//! (`checkMemberGroups`, `getMemberObjects`) with its app-token check.

use crate::support;

use dev_idp::{GraphMode, MintRequest};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{CONTOSO, DAEMON_CLIENT_ID, start};

const GATEWAY_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-0000000000e5";
const GATEWAY_SECRET: &str = "dev-gateway-graph-secret";
const FINANCE: &str = "6f1c0000-0000-4000-8000-00000000f1a0";
const ERIN: &str = "e2170000-0000-4000-8000-000000000005";
const FRANK: &str = "f2a40000-0000-4000-8000-000000000006";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

async fn graph_token(s: &support::Server, client: &str, secret: &str) -> (StatusCode, Value) {
    s.token_request(&[
        ("grant_type", "client_credentials"),
        ("client_id", client),
        ("client_secret", secret),
        ("scope", GRAPH_SCOPE),
    ])
    .await
}

async fn graph_call(
    s: &support::Server,
    token: Option<&str>,
    user: &str,
    action: &str,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = s
        .http
        .post(s.url(&format!("/v1.0/users/{user}/{action}")))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn few_groups_are_listed_and_more_than_200_are_an_overage_marker() {
    let s = start().await;
    let erin = s
        .verify_v2(&s.idp.mint(&MintRequest::user("erin")).unwrap())
        .await;
    assert_eq!(erin["groups"], json!([FINANCE]));
    assert!(erin.get("_claim_names").is_none());

    let frank = s
        .verify_v2(&s.idp.mint(&MintRequest::user("frank")).unwrap())
        .await;
    assert!(frank.get("groups").is_none());
    assert_eq!(frank["_claim_names"], json!({"groups": "src1"}));
    assert_eq!(
        frank["_claim_sources"]["src1"]["endpoint"],
        format!("https://graph.windows.net/{CONTOSO}/users/{FRANK}/getMemberObjects")
    );
    // Users in no group, and app-only tokens, carry neither.
    let alice = s
        .verify_v2(&s.idp.mint(&MintRequest::user("alice")).unwrap())
        .await;
    assert!(alice.get("groups").is_none() && alice.get("_claim_names").is_none());
    let daemon = s
        .verify_v2(&s.idp.mint(&MintRequest::app("daemon")).unwrap())
        .await;
    assert!(daemon.get("groups").is_none());
    s.stop().await;
}

#[tokio::test]
async fn the_graph_stand_in_answers_memberships_to_an_app_token_with_the_permission() {
    let s = start().await;
    let (status, body) = graph_token(&s, GATEWAY_CLIENT_ID, GATEWAY_SECRET).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let claims = s
        .verify(
            &token,
            "https://graph.microsoft.com",
            &format!("{}/{CONTOSO}/", s.base),
        )
        .await
        .unwrap();
    assert_eq!(claims["roles"], json!(["GroupMember.Read.All"]));
    assert_eq!(claims["idtyp"], "app");

    let other = "6f1c0000-0000-4000-8000-0000000000ff";
    let (status, body) = graph_call(
        &s,
        Some(&token),
        FRANK,
        "checkMemberGroups",
        json!({"groupIds": [other, FINANCE.to_uppercase()]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"], json!([FINANCE]));
    let (status, body) = graph_call(
        &s,
        Some(&token),
        FRANK,
        "getMemberObjects",
        json!({"securityEnabledOnly": true}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"].as_array().unwrap().len(), 250);
    let (_, body) = graph_call(&s, Some(&token), ERIN, "getMemberObjects", json!({})).await;
    assert_eq!(body["value"], json!([FINANCE]));
    assert_eq!(s.idp.graph_calls(), 3);

    // Graph's limit: 20 ids a call.
    let many: Vec<String> = (0..21)
        .map(|i| format!("6f1c0000-0000-4000-8000-{i:012}"))
        .collect();
    let (status, body) = graph_call(
        &s,
        Some(&token),
        FRANK,
        "checkMemberGroups",
        json!({ "groupIds": many }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    s.stop().await;
}

#[tokio::test]
async fn the_graph_stand_in_refuses_like_graph() {
    let s = start().await;
    let (status, body) = graph_call(
        &s,
        None,
        FRANK,
        "checkMemberGroups",
        json!({"groupIds": []}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    // A token for the API, not for Graph.
    let api_token = s.idp.mint(&MintRequest::app("daemon")).unwrap();
    let (status, _) = graph_call(
        &s,
        Some(&api_token),
        FRANK,
        "checkMemberGroups",
        json!({"groupIds": []}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A Graph token without a membership permission.
    let (status, body) = graph_token(&s, DAEMON_CLIENT_ID, "dev-daemon-secret").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = graph_call(
        &s,
        body["access_token"].as_str(),
        FRANK,
        "checkMemberGroups",
        json!({"groupIds": []}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    // An unknown user, and a user of another tenant than the token's.
    let (_, body) = graph_token(&s, GATEWAY_CLIENT_ID, GATEWAY_SECRET).await;
    let token = body["access_token"].as_str().unwrap().to_owned();
    for user in [
        "00000000-0000-4000-8000-0000000000ff",
        "ca201000-0000-4000-8000-000000000003",
    ] {
        let (status, body) = graph_call(
            &s,
            Some(&token),
            user,
            "checkMemberGroups",
            json!({"groupIds": [FINANCE]}),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{user}");
        assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
    }
    // Down: 503, counted.
    s.idp.set_graph_mode(GraphMode::Down);
    let before = s.idp.graph_calls();
    let (status, body) = graph_call(
        &s,
        Some(&token),
        FRANK,
        "checkMemberGroups",
        json!({"groupIds": [FINANCE]}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "serviceNotAvailable");
    assert_eq!(s.idp.graph_calls(), before + 1);
    s.stop().await;
}
