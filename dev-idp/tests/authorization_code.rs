//! The browser flow without a browser: authorize (with `login_hint` and
//! PKCE) → redirect with a code → token, over a real socket with redirects
//! not followed; and each way it must fail.

use crate::support;

use reqwest::StatusCode;
use serde_json::Value;
use support::{API_URI, CONTOSO, SPA_CLIENT_ID, Server, location_params, param, pkce, start};

const SCOPE: &str = "api://c0ffee00-0000-4000-8000-0000000000a1/access_as_user offline_access";

/// Sends an authorize request with these parameters.
async fn authorize(s: &Server, params: &[(&str, &str)]) -> reqwest::Response {
    let url = reqwest::Url::parse_with_params(
        &s.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize")),
        params,
    )
    .expect("authorize URL");
    s.http.get(url).send().await.expect("authorize request")
}

/// Signs alice in with PKCE; returns (code, verifier).
async fn code_for_alice(s: &Server) -> (String, String) {
    let (verifier, challenge) = pkce();
    let response = authorize(
        s,
        &[
            ("client_id", SPA_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", &s.redirect_uri),
            ("scope", SCOPE),
            ("state", "xyz"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", "alice@contoso.dev"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let (target, params) = location_params(&response);
    assert_eq!(target, s.redirect_uri);
    assert_eq!(param(&params, "state"), Some("xyz"));
    (param(&params, "code").expect("a code").to_owned(), verifier)
}

async fn redeem(s: &Server, code: &str, verifier: &str, redirect_uri: &str) -> (StatusCode, Value) {
    s.token_request(&[
        ("grant_type", "authorization_code"),
        ("client_id", SPA_CLIENT_ID),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ])
    .await
}

#[tokio::test]
async fn login_hint_and_pkce_yield_a_verifiable_token_and_a_refresh_token() {
    let s = start().await;
    let (code, verifier) = code_for_alice(&s).await;
    let (status, body) = redeem(&s, &code, &verifier, &s.redirect_uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["scope"],
        format!("{API_URI}/access_as_user offline_access")
    );
    assert_eq!(body["expires_in"], 3600);
    let claims = s.verify_v2(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["preferred_username"], "alice@contoso.dev");
    assert_eq!(claims["scp"], "access_as_user");
    assert_eq!(claims["azp"], SPA_CLIENT_ID);
    assert_eq!(claims["azpacr"], "0");

    let refresh = body["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token");
    let (status, renewed) = s
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", SPA_CLIENT_ID),
            ("refresh_token", refresh),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let again = s.verify_v2(renewed["access_token"].as_str().unwrap()).await;
    assert_eq!(again["oid"], claims["oid"]);
    assert!(renewed["refresh_token"].is_string());
    s.stop().await;
}

#[tokio::test]
async fn token_responses_are_not_cacheable() {
    let s = start().await;
    let (code, verifier) = code_for_alice(&s).await;
    let response = s
        .http
        .post(s.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", SPA_CLIENT_ID),
            ("code", &code),
            ("redirect_uri", &s.redirect_uri),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    s.stop().await;
}

#[tokio::test]
async fn a_code_is_single_use() {
    let s = start().await;
    let (code, verifier) = code_for_alice(&s).await;
    assert_eq!(
        redeem(&s, &code, &verifier, &s.redirect_uri).await.0,
        StatusCode::OK
    );
    let (status, body) = redeem(&s, &code, &verifier, &s.redirect_uri).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS54005:")
    );
    s.stop().await;
}

#[tokio::test]
async fn a_wrong_code_verifier_is_invalid_grant() {
    let s = start().await;
    let (code, _) = code_for_alice(&s).await;
    let (other_verifier, _) = pkce();
    let (status, body) = redeem(&s, &code, &other_verifier, &s.redirect_uri).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_codes"][0], 501_481);
    s.stop().await;
}

#[tokio::test]
async fn a_missing_code_verifier_is_invalid_grant() {
    let s = start().await;
    let (code, _) = code_for_alice(&s).await;
    let (status, body) = s
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("client_id", SPA_CLIENT_ID),
            ("code", &code),
            ("redirect_uri", &s.redirect_uri),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    s.stop().await;
}

#[tokio::test]
async fn a_redirect_uri_differing_from_the_authorize_request_is_invalid_grant() {
    let s = start().await;
    let (code, verifier) = code_for_alice(&s).await;
    let (status, body) = redeem(
        &s,
        &code,
        &verifier,
        "http://localhost:8000/oauth2-redirect",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    s.stop().await;
}

#[tokio::test]
async fn a_public_client_without_pkce_is_sent_back_an_invalid_request() {
    let s = start().await;
    let response = authorize(
        &s,
        &[
            ("client_id", SPA_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", &s.redirect_uri),
            ("scope", SCOPE),
            ("state", "s1"),
            ("login_hint", "alice"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "error"), Some("invalid_request"));
    assert!(
        param(&params, "error_description")
            .unwrap()
            .starts_with("AADSTS9002325:")
    );
    assert_eq!(param(&params, "state"), Some("s1"));
    assert_eq!(param(&params, "code"), None);
    s.stop().await;
}

#[tokio::test]
async fn a_plain_pkce_challenge_is_refused() {
    let s = start().await;
    let (verifier, _) = pkce();
    let response = authorize(
        &s,
        &[
            ("client_id", SPA_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", &s.redirect_uri),
            ("scope", SCOPE),
            ("code_challenge", &verifier),
            ("code_challenge_method", "plain"),
            ("login_hint", "alice"),
        ],
    )
    .await;
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "error"), Some("invalid_request"));
    s.stop().await;
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_not_a_redirect() {
    let s = start().await;
    let (_, challenge) = pkce();
    let response = authorize(
        &s,
        &[
            ("client_id", SPA_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example/steal"),
            ("scope", SCOPE),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", "alice"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    let page = response.text().await.unwrap();
    assert!(page.contains("AADSTS50011"), "{page}");
    assert!(!page.contains("<script"), "the error page runs nothing");
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_client_gets_an_error_page() {
    let s = start().await;
    let response = authorize(
        &s,
        &[
            ("client_id", "00000000-0000-4000-8000-000000000000"),
            ("response_type", "code"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("AADSTS700016"));
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_scope_is_redirected_as_invalid_scope() {
    let s = start().await;
    let (_, challenge) = pkce();
    let bad_scope = format!("{API_URI}/delete_everything");
    let response = authorize(
        &s,
        &[
            ("client_id", SPA_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", &s.redirect_uri),
            ("scope", &bad_scope),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "error"), Some("invalid_scope"));
    s.stop().await;
}

#[tokio::test]
async fn without_login_hint_the_page_lists_the_tenants_users_as_sign_in_links() {
    let s = start().await;
    let (_, challenge) = pkce();
    let response = authorize(
        &s,
        &[
            ("client_id", SPA_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", &s.redirect_uri),
            ("scope", SCOPE),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("Never trust it in production"));
    for user in ["alice@contoso.dev", "bob@contoso.dev", "dave@contoso.dev"] {
        assert!(page.contains(user), "{user} missing");
    }
    assert!(
        !page.contains("carol@fabrikam.dev"),
        "another tenant's user is not listed"
    );
    assert!(page.contains("login_hint=alice%40contoso.dev"));
    s.stop().await;
}

#[tokio::test]
async fn the_code_can_come_back_in_the_fragment() {
    let s = start().await;
    let (_, challenge) = pkce();
    let response = authorize(
        &s,
        &[
            ("client_id", SPA_CLIENT_ID),
            ("response_type", "code"),
            ("response_mode", "fragment"),
            ("redirect_uri", &s.redirect_uri),
            ("scope", SCOPE),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", "bob"),
        ],
    )
    .await;
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{}#code=", s.redirect_uri)),
        "{location}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_token_endpoint_answers_cors_for_registered_spa_origins_only() {
    let s = start().await;
    let token_url = s.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
    let preflight = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, &token_url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("http://localhost:8000").await.unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:8000"
    );
    assert!(
        allowed.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(
        allowed.headers()["access-control-allow-headers"],
        "content-type"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let post = s
        .http
        .post(&token_url)
        .header("origin", "http://127.0.0.1:8000")
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", SPA_CLIENT_ID),
            ("code", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        post.headers()["access-control-allow-origin"],
        "http://127.0.0.1:8000"
    );
    assert_eq!(
        post.status(),
        StatusCode::BAD_REQUEST,
        "errors carry CORS headers too"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_refresh_token_is_bound_to_its_client() {
    let s = start().await;
    let (code, verifier) = code_for_alice(&s).await;
    let (_, body) = redeem(&s, &code, &verifier, &s.redirect_uri).await;
    let refresh = body["refresh_token"].as_str().unwrap();
    let (status, err) = s
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", support::DAEMON_CLIENT_ID),
            ("client_secret", "dev-daemon-secret"),
            ("refresh_token", refresh),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    let (status, err) = s
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", SPA_CLIENT_ID),
            ("refresh_token", "1.bogus"),
        ])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    s.stop().await;
}

#[tokio::test]
async fn openid_adds_an_id_token_for_the_client_with_the_nonce() {
    let s = start().await;
    let (verifier, challenge) = pkce();
    let scope = format!("openid profile {API_URI}/access_as_user");
    let response = authorize(
        &s,
        &[
            ("client_id", SPA_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", &s.redirect_uri),
            ("scope", &scope),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", "bob@contoso.dev"),
        ],
    )
    .await;
    let (_, params) = location_params(&response);
    let code = param(&params, "code").unwrap().to_owned();
    let (status, body) = redeem(&s, &code, &verifier, &s.redirect_uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let issuer = format!("{}/{CONTOSO}/v2.0", s.base);
    let id = s
        .verify(body["id_token"].as_str().unwrap(), SPA_CLIENT_ID, &issuer)
        .await
        .unwrap();
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["preferred_username"], "bob@contoso.dev");
    assert!(id.get("scp").is_none() && id.get("roles").is_none());
    s.stop().await;
}

/// Signs alice in with `claims` as the authorize request's `claims`
/// parameter and redeems the code: the token endpoint's answer.
async fn sign_in_with_claims(s: &Server, claims: &str) -> (StatusCode, Value) {
    let (verifier, challenge) = pkce();
    let response = authorize(
        s,
        &[
            ("client_id", SPA_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", &s.redirect_uri),
            ("scope", SCOPE),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", "alice@contoso.dev"),
            ("claims", claims),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let (_, params) = location_params(&response);
    let Some(code) = param(&params, "code") else {
        let redirected = params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        return (StatusCode::FOUND, Value::Object(redirected));
    };
    redeem(s, code, &verifier, &s.redirect_uri).await
}

#[tokio::test]
async fn the_claims_parameter_puts_acrs_and_xms_cc_in_the_access_token_and_its_refreshes() {
    let s = start().await;
    // As MSAL sends it when answering a claims challenge with cp1 declared.
    let (status, body) = sign_in_with_claims(
        &s,
        r#"{"access_token":{"acrs":{"essential":true,"value":"c1"},"xms_cc":{"values":["cp1"]}}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = s.verify_v2(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["acrs"], serde_json::json!(["c1"]));
    assert_eq!(claims["xms_cc"], serde_json::json!(["cp1"]));

    let (status, renewed) = s
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", SPA_CLIENT_ID),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let again = s.verify_v2(renewed["access_token"].as_str().unwrap()).await;
    assert_eq!(again["acrs"], serde_json::json!(["c1"]));

    let (status, body) = sign_in_with_claims(
        &s,
        r#"{"access_token":{"acrs":{"essential":true,"values":["c2","c3"]}}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = s.verify_v2(body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["acrs"], serde_json::json!(["c2", "c3"]));
    assert!(claims.get("xms_cc").is_none());

    // Without the parameter: neither claim.
    let (code, verifier) = code_for_alice(&s).await;
    let (_, body) = redeem(&s, &code, &verifier, &s.redirect_uri).await;
    let claims = s.verify_v2(body["access_token"].as_str().unwrap()).await;
    assert!(claims.get("acrs").is_none() && claims.get("xms_cc").is_none());
    s.stop().await;
}

#[tokio::test]
async fn a_malformed_claims_parameter_is_redirected_as_invalid_request() {
    let s = start().await;
    for bad in [
        "not json",
        r#"{"access_token":{"acrs":{"value":"step-up"}}}"#,
    ] {
        let (status, params) = sign_in_with_claims(&s, bad).await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(params["error"], "invalid_request", "{params}");
    }
    s.stop().await;
}
