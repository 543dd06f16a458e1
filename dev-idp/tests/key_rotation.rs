//! Key rotation: a new kid signs at once, the old one stays in the JWKS for
//! the grace period and then disappears. Grace periods of one hour and zero
//! stand in for a clock (the key store's own unit tests move time itself).

use crate::support;

use std::time::Duration;

use dev_idp::{Config, MintRequest};
use reqwest::StatusCode;
use support::{Server, header, start, start_with};

async fn published_kids(s: &Server) -> Vec<String> {
    s.jwks("contoso")
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

async fn rotate_over_http(s: &Server) -> String {
    let response = s
        .http
        .post(s.url("/_admin/rotate-keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    body["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn after_rotation_the_new_kid_signs_and_the_old_stays_published_during_grace() {
    let s = start().await;
    let old_kid = s.idp.current_kid().unwrap();
    let old_token = s.idp.mint(&MintRequest::user("alice")).unwrap();

    let new_kid = rotate_over_http(&s).await;
    assert_ne!(new_kid, old_kid);
    assert_eq!(s.idp.current_kid().unwrap(), new_kid);
    assert_eq!(published_kids(&s).await, [new_kid.clone(), old_kid]);

    let new_token = s.idp.mint(&MintRequest::user("alice")).unwrap();
    assert_eq!(header(&new_token)["kid"], new_kid.as_str());
    s.verify_v2(&new_token).await;
    s.verify_v2(&old_token).await;
    s.stop().await;
}

#[tokio::test]
async fn after_the_grace_period_the_old_kid_is_gone() {
    let mut config = Config::embedded_default();
    config.key_rotation_grace = Duration::ZERO;
    let s = start_with(config).await;
    let old_token = s.idp.mint(&MintRequest::user("alice")).unwrap();
    s.idp.rotate_keys().unwrap();
    let new_kid = s.idp.current_kid().unwrap();
    assert_eq!(published_kids(&s).await, [new_kid]);
    let issuer = format!("{}/{}/v2.0", s.base, support::CONTOSO);
    let err = s
        .verify(&old_token, support::API_CLIENT_ID, &issuer)
        .await
        .unwrap_err();
    assert!(err.contains("not published"), "{err}");
    s.stop().await;
}

#[tokio::test]
async fn keys_survive_a_restart_of_the_server() {
    let s = start().await;
    let token = s.idp.mint(&MintRequest::user("bob")).unwrap();
    let kid = s.idp.current_kid().unwrap();
    let issuer = format!("{}/{}/v2.0", s.base, support::CONTOSO);
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_file() {
            continue; // client-certificates/: not signing keys
        }
        std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    s.stop().await;

    let again = support::start_in(Config::embedded_default(), copy).await;
    assert_eq!(again.idp.current_kid().unwrap(), kid);
    // The restarted server has another port; the token names the old issuer.
    again
        .verify(&token, support::API_CLIENT_ID, &issuer)
        .await
        .unwrap();
    again.stop().await;
}
