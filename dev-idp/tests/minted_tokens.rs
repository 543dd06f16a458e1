//! Tokens minted through the library (what `dev-idp token` runs): claims of
//! v2, v1 and app-only tokens, and the test-only shapes, each verified against
//! the served JWKS with jsonwebtoken.

use crate::support;

use std::time::Duration;

use dev_idp::{Config, MintRequest, TokenVersion};
use serde_json::json;
use support::{
    ALICE_OID, API_CLIENT_ID, API_URI, CONTOSO, DAEMON_CLIENT_ID, FABRIKAM, SPA_CLIENT_ID, header,
    start, start_with,
};

#[tokio::test]
async fn a_v2_user_token_has_entras_v2_claims() {
    let s = start().await;
    let token = s.idp.mint(&MintRequest::user("alice")).unwrap();
    let h = header(&token);
    assert_eq!(h["typ"], "JWT");
    assert_eq!(h["alg"], "RS256");
    assert_eq!(h["kid"], s.idp.current_kid().unwrap());
    assert!(h.get("x5t").is_none(), "v2 headers carry no x5t");
    let c = s.verify_v2(&token).await;
    assert_eq!(c["ver"], "2.0");
    assert_eq!(c["aud"], API_CLIENT_ID);
    assert_eq!(c["iss"], format!("{}/{CONTOSO}/v2.0", s.base));
    assert_eq!(c["tid"], CONTOSO);
    assert_eq!(c["oid"], ALICE_OID);
    assert_eq!(c["azp"], SPA_CLIENT_ID);
    assert_eq!(c["azpacr"], "0");
    assert_eq!(c["name"], "Alice Example");
    assert_eq!(c["preferred_username"], "alice@contoso.dev");
    assert_eq!(c["scp"], "access_as_user");
    assert_eq!(c["roles"], json!(["User"]));
    assert_ne!(c["sub"], c["oid"], "sub is pairwise, not the oid");
    for claim in ["aio", "rh", "uti", "iat", "nbf", "exp"] {
        assert!(c.get(claim).is_some(), "missing {claim}");
    }
    for absent in ["idtyp", "upn", "appid", "unique_name"] {
        assert!(c.get(absent).is_none(), "unexpected {absent}");
    }
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        3600
    );
    s.stop().await;
}

#[tokio::test]
async fn roles_follow_the_user_and_are_absent_when_empty() {
    let s = start().await;
    let bob = s
        .verify_v2(&s.idp.mint(&MintRequest::user("bob")).unwrap())
        .await;
    assert_eq!(bob["roles"], json!(["Admin", "User"]));
    let dave = s
        .verify_v2(&s.idp.mint(&MintRequest::user("dave")).unwrap())
        .await;
    assert!(dave.get("roles").is_none());
    assert_eq!(dave["scp"], "access_as_user");
    s.stop().await;
}

#[tokio::test]
async fn a_fabrikam_user_gets_a_fabrikam_issuer() {
    let s = start().await;
    let token = s.idp.mint(&MintRequest::user("carol")).unwrap();
    let issuer = format!("{}/{FABRIKAM}/v2.0", s.base);
    let c = s.verify(&token, API_CLIENT_ID, &issuer).await.unwrap();
    assert_eq!(c["tid"], FABRIKAM);
    assert_eq!(c["roles"], json!(["Admin"]));
    s.stop().await;
}

#[tokio::test]
async fn sub_differs_per_client_app_but_oid_does_not() {
    let s = start().await;
    let spa = s
        .verify_v2(&s.idp.mint(&MintRequest::user("alice")).unwrap())
        .await;
    let other = s
        .verify_v2(
            &s.idp
                .mint(&MintRequest::user("alice").client("daemon"))
                .unwrap(),
        )
        .await;
    assert_eq!(spa["oid"], other["oid"]);
    assert_ne!(spa["sub"], other["sub"]);
    assert_eq!(other["azpacr"], "1");
    s.stop().await;
}

#[tokio::test]
async fn an_app_only_token_has_roles_no_scp_and_idtyp_app() {
    let s = start().await;
    let c = s
        .verify_v2(&s.idp.mint(&MintRequest::app("daemon")).unwrap())
        .await;
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["roles"], json!(["User"]));
    assert!(c.get("scp").is_none());
    assert!(c.get("name").is_none() && c.get("preferred_username").is_none());
    assert_eq!(c["azp"], DAEMON_CLIENT_ID);
    assert_eq!(c["azpacr"], "1");
    assert_eq!(
        c["sub"], c["oid"],
        "an app's sub is its service principal's oid"
    );
    assert!(uuid::Uuid::parse_str(c["oid"].as_str().unwrap()).is_ok());
    s.stop().await;
}

#[tokio::test]
async fn an_api_accepting_v1_tokens_gets_v1_claims_and_an_x5t_header() {
    let mut config = Config::embedded_default();
    config
        .app_mut("todo-api")
        .unwrap()
        .api
        .as_mut()
        .unwrap()
        .access_token_accepted_version = TokenVersion::V1;
    let s = start_with(config).await;
    let token = s.idp.mint(&MintRequest::user("alice")).unwrap();
    let h = header(&token);
    assert_eq!(h["x5t"], h["kid"]);
    let issuer = format!("{}/{CONTOSO}/", s.idp.sts_base_url());
    let c = s.verify(&token, API_URI, &issuer).await.unwrap();
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["appid"], SPA_CLIENT_ID);
    assert_eq!(c["appidacr"], "0");
    assert_eq!(c["upn"], "alice@contoso.dev");
    assert_eq!(c["unique_name"], "alice@contoso.dev");
    assert_eq!(c["scp"], "access_as_user");
    for absent in ["azp", "azpacr", "preferred_username"] {
        assert!(c.get(absent).is_none(), "unexpected {absent}");
    }
    let app = s
        .verify(
            &s.idp.mint(&MintRequest::app("daemon")).unwrap(),
            API_URI,
            &issuer,
        )
        .await
        .unwrap();
    assert_eq!(app["appid"], DAEMON_CLIENT_ID);
    assert_eq!(app["idtyp"], "app");
    assert!(app.get("scp").is_none());
    s.stop().await;
}

#[tokio::test]
async fn a_configured_sts_base_url_makes_the_v1_issuer() {
    let mut config = Config::embedded_default();
    config.sts_base_url = Some("https://sts.dev.example".to_owned());
    let s = start_with(config).await;
    assert_eq!(s.idp.sts_base_url(), "https://sts.dev.example");
    let token = s
        .idp
        .mint(&MintRequest::user("alice").version(TokenVersion::V1))
        .unwrap();
    let issuer = format!("https://sts.dev.example/{CONTOSO}/");
    assert!(s.verify(&token, API_URI, &issuer).await.is_ok());
    s.stop().await;
}

#[tokio::test]
async fn test_only_shapes_verify_by_signature_but_fail_the_checks_they_name() {
    let s = start().await;
    let issuer = format!("{}/{CONTOSO}/v2.0", s.base);
    let expired = s.idp.mint(&MintRequest::user("alice").expired()).unwrap();
    assert!(
        s.verify(&expired, API_CLIENT_ID, &issuer)
            .await
            .unwrap_err()
            .contains("Expired")
    );
    let wrong_aud = s
        .idp
        .mint(&MintRequest::user("alice").audience("api://someone-else"))
        .unwrap();
    assert!(
        s.verify(&wrong_aud, API_CLIENT_ID, &issuer)
            .await
            .unwrap_err()
            .contains("Audience")
    );
    assert!(
        s.verify(&wrong_aud, "api://someone-else", &issuer)
            .await
            .is_ok()
    );
    let future = s
        .idp
        .mint(&MintRequest::user("alice").not_before_in(Duration::from_secs(600)))
        .unwrap();
    assert!(
        s.verify(&future, API_CLIENT_ID, &issuer)
            .await
            .unwrap_err()
            .contains("Immature")
    );
    let foreign = s
        .idp
        .mint(&MintRequest::user("alice").issuer("https://login.example/x/v2.0"))
        .unwrap();
    assert!(
        s.verify(&foreign, API_CLIENT_ID, &issuer)
            .await
            .unwrap_err()
            .contains("Issuer")
    );
    let other_tenant = s
        .idp
        .mint(&MintRequest::user("alice").tenant("fabrikam"))
        .unwrap();
    let c = s
        .verify(
            &other_tenant,
            API_CLIENT_ID,
            &format!("{}/{FABRIKAM}/v2.0", s.base),
        )
        .await
        .unwrap();
    assert_eq!(c["tid"], FABRIKAM);
    s.stop().await;
}

#[tokio::test]
async fn scopes_and_lifetime_are_honoured_and_unknown_names_refused() {
    let s = start().await;
    let token = s
        .idp
        .mint(
            &MintRequest::user("alice")
                .scopes([format!("{API_URI}/access_as_user")])
                .lifetime(Duration::from_secs(60)),
        )
        .unwrap();
    let c = s.verify_v2(&token).await;
    assert_eq!(c["scp"], "access_as_user");
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);
    let err = |r: &MintRequest| s.idp.mint(r).unwrap_err().to_string();
    assert_eq!(err(&MintRequest::user("mallory")), "unknown user 'mallory'");
    assert_eq!(err(&MintRequest::app("nope")), "unknown app 'nope'");
    assert_eq!(
        err(&MintRequest::user("alice").scopes(["write"])),
        "app 'todo-api' exposes no scope 'write'"
    );
    assert_eq!(
        err(&MintRequest::user("alice").tenant("x")),
        "unknown tenant 'x'"
    );
    assert_eq!(
        err(&MintRequest::default()),
        "a token needs a user or an app"
    );
    s.stop().await;
}
