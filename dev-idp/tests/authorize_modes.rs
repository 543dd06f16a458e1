//! The authorize endpoint's other shapes: `form_post` and `prompt=none`
//! responses, a `login_hint` for someone who cannot sign in here, the
//! `common` tenant, and v1's `resource` parameter.

use crate::support;

use reqwest::StatusCode;
use support::{
    API_URI, CONTOSO, DAEMON_CLIENT_ID, SPA_CLIENT_ID, Server, location_params, param, pkce, start,
};

async fn authorize(s: &Server, tenant: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let (_, challenge) = pkce();
    let scope = format!("{API_URI}/access_as_user");
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", SPA_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", &s.redirect_uri),
        ("scope", &scope),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let url = reqwest::Url::parse_with_params(
        &s.url(&format!("/{tenant}/oauth2/v2.0/authorize")),
        &params,
    )
    .expect("authorize URL");
    s.http.get(url).send().await.expect("authorize request")
}

#[tokio::test]
async fn form_post_answers_with_a_self_submitting_form() {
    let s = start().await;
    let response = authorize(
        &s,
        CONTOSO,
        &[
            ("response_mode", "form_post"),
            ("login_hint", "alice"),
            ("state", "st"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(
        page.contains(&format!("action=\"{}\"", s.redirect_uri)),
        "{page}"
    );
    assert!(page.contains("name=\"code\""));
    assert!(page.contains("name=\"state\" value=\"st\""));
    s.stop().await;
}

#[tokio::test]
async fn prompt_none_without_a_user_is_login_required() {
    let s = start().await;
    let response = authorize(&s, CONTOSO, &[("prompt", "none")]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "error"), Some("login_required"));
    s.stop().await;
}

#[tokio::test]
async fn a_login_hint_for_another_tenants_user_shows_the_page_with_a_notice() {
    let s = start().await;
    let response = authorize(&s, CONTOSO, &[("login_hint", "carol@fabrikam.dev")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("No user &#39;carol@fabrikam.dev&#39; can sign in here"),
        "{page}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_common_endpoint_signs_in_users_of_any_tenant_into_their_home_tenant() {
    let s = start().await;
    let (verifier, challenge) = pkce();
    let scope = format!("{API_URI}/access_as_user");
    let url = reqwest::Url::parse_with_params(
        &s.url("/common/oauth2/v2.0/authorize"),
        &[
            ("client_id", SPA_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", s.redirect_uri.as_str()),
            ("scope", scope.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("login_hint", "carol"),
        ],
    )
    .unwrap();
    let response = s.http.get(url).send().await.unwrap();
    let (_, params) = location_params(&response);
    let code = param(&params, "code").expect("a code").to_owned();
    let (status, body) = s
        .post_form(
            "/common/oauth2/v2.0/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", SPA_CLIENT_ID),
                ("code", &code),
                ("redirect_uri", &s.redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let issuer = format!("{}/{}/v2.0", s.base, support::FABRIKAM);
    let claims = s
        .verify(
            body["access_token"].as_str().unwrap(),
            support::API_CLIENT_ID,
            &issuer,
        )
        .await
        .unwrap();
    assert_eq!(claims["tid"], support::FABRIKAM);
    s.stop().await;
}

#[tokio::test]
async fn v1_token_endpoint_accepts_resource_instead_of_scope() {
    let s = start().await;
    let (status, body) = s
        .post_form(
            &format!("/{CONTOSO}/oauth2/token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", DAEMON_CLIENT_ID),
                ("client_secret", "dev-daemon-secret"),
                ("resource", API_URI),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.verify_v2(body["access_token"].as_str().unwrap()).await;
    s.stop().await;
}
