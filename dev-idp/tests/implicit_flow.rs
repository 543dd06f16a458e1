//! The implicit flow (`response_type=token`): only for an app that enables
//! it, the access token in the redirect URI's fragment, and, as from Entra,
//! `hasgroups: true` instead of `groups` for a user in 6 groups or more
//! (the fragment's limit), never the code flow's `_claim_names`.

use crate::support;

use dev_idp::Config;
use reqwest::StatusCode;
use support::{API_URI, CONTOSO, SPA_CLIENT_ID, Server, start, start_with};

/// The embedded configuration with implicit access tokens enabled for the
/// SPA; Erin in 5 groups (the most a fragment's token lists), Dave in 6.
fn implicit_config() -> Config {
    let mut config = Config::embedded_default();
    config.app_mut("swagger-ui").unwrap().implicit_access_tokens = true;
    let groups = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| format!("6f1c0000-0000-4000-8000-0000000{i:05}"))
            .collect()
    };
    for user in &mut config.users {
        match user.name.as_str() {
            "erin" => user.groups = groups(5),
            "dave" => user.groups = groups(6),
            _ => {}
        }
    }
    config
}

async fn authorize(s: &Server, extra: &[(&str, &str)]) -> reqwest::Response {
    let scope = format!("{API_URI}/access_as_user");
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", SPA_CLIENT_ID),
        ("response_type", "token"),
        ("redirect_uri", &s.redirect_uri),
        ("scope", &scope),
        ("state", "st"),
    ];
    params.extend_from_slice(extra);
    let url = reqwest::Url::parse_with_params(
        &s.url(&format!("/{CONTOSO}/oauth2/v2.0/authorize")),
        &params,
    )
    .unwrap();
    s.http.get(url).send().await.unwrap()
}

/// The redirect's `Location` before its fragment, and the fragment's
/// parameters.
fn fragment(response: &reqwest::Response) -> (String, Vec<(String, String)>) {
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap();
    let (before, fragment) = location.split_once('#').expect("a fragment");
    let params = reqwest::Url::parse(&format!("http://fragment/?{fragment}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (before.to_owned(), params)
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    support::param(params, name)
}

async fn implicit_token(s: &Server, user: &str) -> serde_json::Value {
    let response = authorize(s, &[("login_hint", user)]).await;
    let (to, params) = fragment(&response);
    assert_eq!(to, s.redirect_uri);
    assert_eq!(get(&params, "token_type"), Some("Bearer"));
    assert_eq!(get(&params, "state"), Some("st"));
    assert_eq!(
        get(&params, "scope"),
        Some(format!("{API_URI}/access_as_user").as_str())
    );
    assert!(get(&params, "code").is_none());
    s.verify_v2(get(&params, "access_token").expect("an access token"))
        .await
}

#[tokio::test]
async fn an_app_that_does_not_enable_it_is_refused_aadsts700051() {
    let s = start().await;
    let response = authorize(&s, &[("login_hint", "erin")]).await;
    let (_, params) = fragment(&response);
    assert_eq!(get(&params, "error"), Some("unsupported_response_type"));
    assert!(
        get(&params, "error_description")
            .unwrap()
            .starts_with("AADSTS700051: response_type 'token' is not enabled"),
        "{params:?}"
    );
    assert!(get(&params, "access_token").is_none());
    s.stop().await;
}

#[tokio::test]
async fn a_token_never_goes_in_a_query_string() {
    let s = start_with(implicit_config()).await;
    let response = authorize(&s, &[("login_hint", "erin"), ("response_mode", "query")]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(location.contains("error=invalid_request"), "{location}");
    assert!(!location.contains("access_token"), "{location}");
    s.stop().await;
}

#[tokio::test]
async fn the_token_lists_up_to_5_groups_and_says_hasgroups_from_6() {
    let s = start_with(implicit_config()).await;
    let erin = implicit_token(&s, "erin").await;
    assert_eq!(erin["groups"].as_array().map(Vec::len), Some(5), "{erin}");
    assert!(erin.get("hasgroups").is_none());
    assert_eq!(erin["scp"], "access_as_user");
    assert_eq!(erin["azpacr"], "0", "no client authentication");

    for user in ["dave", "frank"] {
        let claims = implicit_token(&s, user).await;
        assert_eq!(claims["hasgroups"], true, "{user}: {claims}");
        for absent in ["groups", "_claim_names", "_claim_sources"] {
            assert!(claims.get(absent).is_none(), "{user}: {absent} in {claims}");
        }
    }
    // No groups: neither claim.
    let alice = implicit_token(&s, "alice").await;
    assert!(alice.get("groups").is_none() && alice.get("hasgroups").is_none());
    s.stop().await;
}

#[tokio::test]
async fn the_code_flow_keeps_the_200_group_limit() {
    // Dave's 6 groups fit in a token from the token endpoint.
    let s = start_with(implicit_config()).await;
    let token = s.idp.mint(&dev_idp::MintRequest::user("dave")).unwrap();
    let claims = s.verify_v2(&token).await;
    assert_eq!(claims["groups"].as_array().map(Vec::len), Some(6));
    assert!(claims.get("hasgroups").is_none());
    let frank = s.idp.mint(&dev_idp::MintRequest::user("frank")).unwrap();
    let frank = s.verify_v2(&frank).await;
    assert_eq!(frank["_claim_names"]["groups"], "src1");
    assert!(frank.get("hasgroups").is_none());
    assert!(frank["groups"].is_null());
    s.stop().await;
}
