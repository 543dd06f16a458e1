//! The client-credentials grant: app-only tokens for the daemon, and the
//! client-authentication failures of RFC 6749 §5.2.

use crate::support;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::json;
use support::{CONTOSO, DAEMON_CLIENT_ID, SPA_CLIENT_ID, start};

const DEFAULT_SCOPE: &str = "api://c0ffee00-0000-4000-8000-0000000000a1/.default";

#[tokio::test]
async fn the_daemon_gets_an_app_only_token_with_its_application_permissions() {
    let s = start().await;
    let (status, body) = s
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", DAEMON_CLIENT_ID),
            ("client_secret", "dev-daemon-secret"),
            ("scope", DEFAULT_SCOPE),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let c = s.verify_v2(body["access_token"].as_str().unwrap()).await;
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["roles"], json!(["User"]));
    assert!(c.get("scp").is_none());
    assert_eq!(c["azp"], DAEMON_CLIENT_ID);
    assert_eq!(c["azpacr"], "1");
    assert_eq!(c["tid"], CONTOSO);
    s.stop().await;
}

#[tokio::test]
async fn http_basic_client_authentication_works_too() {
    let s = start().await;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{DAEMON_CLIENT_ID}:dev-daemon-secret"));
    let response = s
        .http
        .post(s.url("/contoso/oauth2/v2.0/token"))
        .header("authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", DEFAULT_SCOPE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn a_bad_client_secret_is_invalid_client_with_401() {
    let s = start().await;
    let (status, body) = s
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", DAEMON_CLIENT_ID),
            ("client_secret", "guess"),
            ("scope", DEFAULT_SCOPE),
        ])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215:")
    );
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    s.stop().await;
}

#[tokio::test]
async fn a_missing_secret_or_unknown_client_is_invalid_client() {
    let s = start().await;
    let (status, body) = s
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", DAEMON_CLIENT_ID),
            ("scope", DEFAULT_SCOPE),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, body) = s
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "00000000-0000-4000-8000-000000000000"),
            ("client_secret", "x"),
            ("scope", DEFAULT_SCOPE),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    s.stop().await;
}

#[tokio::test]
async fn a_public_client_cannot_use_client_credentials() {
    let s = start().await;
    let (status, body) = s
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", SPA_CLIENT_ID),
            ("scope", DEFAULT_SCOPE),
        ])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    s.stop().await;
}

#[tokio::test]
async fn client_credentials_need_a_default_scope_and_a_tenant() {
    let s = start().await;
    let form = |scope: &'static str| {
        [
            ("grant_type", "client_credentials"),
            ("client_id", DAEMON_CLIENT_ID),
            ("client_secret", "dev-daemon-secret"),
            ("scope", scope),
        ]
    };
    let (status, body) = s
        .token_request(&form(
            "api://c0ffee00-0000-4000-8000-0000000000a1/access_as_user",
        ))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, body) = s
        .post_form("/common/oauth2/v2.0/token", &form(DEFAULT_SCOPE))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    s.stop().await;
}

#[tokio::test]
async fn unknown_or_missing_grant_types_are_refused() {
    let s = start().await;
    let (status, body) = s
        .token_request(&[("grant_type", "password"), ("client_id", SPA_CLIENT_ID)])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let (status, body) = s.token_request(&[("client_id", SPA_CLIENT_ID)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    s.stop().await;
}
