//! The signing-key set and the token cache, end to end: discovery and JWKS
//! from a test IdP on 127.0.0.1:0, rotation, outages, the unknown-kid
//! cooldown, and cached tokens that must die with their key.

use crate::auth_common;

use std::sync::Arc;
use std::time::Duration;

use auth_common::*;
use authz_proxy::auth::{AuthError, Authenticator, KeyFetchError};
use http::StatusCode;

fn reason(r: Result<Arc<authz_proxy::identity::Authenticated>, AuthError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.reason(),
    }
}

#[tokio::test]
async fn before_any_key_loads_requests_get_503_then_recover() {
    let key = TestKey::generate("k1");
    let idp = TestIdp::start(JwksMode::Status(500)).await;
    let auth = Arc::new(Authenticator::new(idp.settings()).unwrap());
    let task = auth.spawn_refresh_task();
    let token = key.sign(&v2_claims(&idp.instance(), TENANT));

    wait_for_fetches(&auth, |a| a.fetches_completed() >= 1).await;
    assert!(!auth.keys_loaded());
    let err = auth.authenticate(&bearer(&token)).await.unwrap_err();
    assert_eq!(err.reason(), "keys_unavailable");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A malformed token is still the client's fault.
    let err = auth.authenticate(&bearer("x.y")).await.unwrap_err();
    assert_eq!(err.reason(), "malformed_token");

    // The IdP comes back: the task's backoff retry (1 s) picks the keys up.
    idp.set_keys(&[&key]);
    wait_for_fetches(&auth, |a| a.keys_loaded()).await;
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    task.abort();
}

#[tokio::test]
async fn jwks_failures_after_start_keep_the_last_good_keys() {
    let key = TestKey::generate("k1");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let mut settings = idp.settings();
    settings.http_timeout = Duration::from_millis(300);
    settings.token_cache_size = 0; // every request verifies against the key set
    let auth = loaded(settings).await;
    let token = key.sign(&v2_claims(&idp.instance(), TENANT));

    let outages = [
        JwksMode::Status(500),
        JwksMode::Status(404),
        JwksMode::Html,
        JwksMode::EmptySet,
        JwksMode::Huge,
        JwksMode::Hang,
    ];
    for mode in outages {
        idp.set_mode(mode.clone());
        let err = auth.refresh_keys().await.unwrap_err();
        match (&mode, &err) {
            (JwksMode::Status(_), KeyFetchError::Status { .. })
            | (JwksMode::Html, KeyFetchError::Json { .. })
            | (JwksMode::EmptySet, KeyFetchError::NoUsableKeys { .. })
            | (JwksMode::Huge, KeyFetchError::TooLarge { .. })
            | (JwksMode::Hang, KeyFetchError::Http { .. }) => {}
            _ => panic!("{mode:?} gave {err:?}"),
        }
        assert!(auth.keys_loaded());
        assert_eq!(
            reason(auth.authenticate(&bearer(&token)).await),
            "ok",
            "{mode:?}"
        );
    }

    // The IdP goes away entirely.
    let instance = idp.instance();
    drop(idp);
    assert!(matches!(
        auth.refresh_keys().await,
        Err(KeyFetchError::Http { .. })
    ));
    let token = key.sign(&v2_claims(&instance, TENANT));
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
}

#[tokio::test]
async fn unknown_kid_triggers_one_fetch_and_picks_up_rotation() {
    let old = TestKey::generate("old");
    let new = TestKey::generate("new");
    let idp = TestIdp::start(JwksMode::Keys(vec![old.jwk()])).await;
    let auth = Arc::new(Authenticator::new(idp.settings()).unwrap());
    let task = auth.spawn_refresh_task();
    wait_for_fetches(&auth, |a| a.keys_loaded()).await;
    assert_eq!(auth.fetch_count(), 1);

    // The IdP rotates: the new key appears, the old one is gone.
    idp.set_keys(&[&new]);
    let token = new.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    assert_eq!(
        auth.fetch_count(),
        2,
        "exactly one fetch for the unknown kid"
    );

    // Within the cooldown, another unknown kid fails fast without a fetch.
    let stranger = TestKey::generate("stranger");
    let token = stranger.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(
        reason(auth.authenticate(&bearer(&token)).await),
        "unknown_key"
    );
    let token = old.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(
        reason(auth.authenticate(&bearer(&token)).await),
        "unknown_key"
    );
    assert_eq!(auth.fetch_count(), 2);
    assert_eq!(idp.jwks_hits(), 2);
    task.abort();
}

#[tokio::test]
async fn a_thousand_concurrent_random_kids_cause_at_most_one_fetch() {
    let key = TestKey::generate("real");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let auth = Arc::new(Authenticator::new(idp.settings()).unwrap());
    let task = auth.spawn_refresh_task();
    wait_for_fetches(&auth, |a| a.keys_loaded()).await;
    let before = (auth.fetch_count(), idp.discovery_hits(), idp.jwks_hits());

    // One signature reused under 1,000 kids: only the header differs.
    let claims = v2_claims(&idp.instance(), TENANT);
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(format!("random-{i}-{}", now()));
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap();
        let auth = Arc::clone(&auth);
        requests.spawn(async move { reason(auth.authenticate(&bearer(&token)).await) });
    }
    while let Some(outcome) = requests.join_next().await {
        assert_eq!(outcome.unwrap(), "unknown_key");
    }
    let after = (auth.fetch_count(), idp.discovery_hits(), idp.jwks_hits());
    assert!(after.0 - before.0 <= 1, "fetches {before:?} -> {after:?}");
    assert!(
        after.1 - before.1 <= 1 && after.2 - before.2 <= 1,
        "{before:?} -> {after:?}"
    );

    // The valid token still works, and more random kids still cost nothing.
    let token = key.sign(&claims);
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("one-more".into());
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap();
    assert_eq!(
        reason(auth.authenticate(&bearer(&token)).await),
        "unknown_key"
    );
    assert_eq!(auth.fetch_count(), after.0);
    task.abort();
}

#[tokio::test]
async fn rejected_tokens_with_known_kids_never_fetch_keys() {
    let key = TestKey::generate("real");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let auth = Arc::new(Authenticator::new(idp.settings()).unwrap());
    let task = auth.spawn_refresh_task();
    wait_for_fetches(&auth, |a| a.keys_loaded()).await;
    let before = auth.fetch_count();

    let instance = idp.instance();
    let mut expired = v2_claims(&instance, TENANT);
    expired["exp"] = (now() - 3600).into();
    let mut foreign = v2_claims(&instance, OTHER_TENANT);
    foreign["roles"] = serde_json::json!(["Admin"]);
    let forged = TestKey::generate("real").sign(&v2_claims(&instance, TENANT));
    let tokens = [key.sign(&expired), key.sign(&foreign), forged];
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..300 {
        let token = tokens[i % tokens.len()].clone();
        let auth = Arc::clone(&auth);
        requests.spawn(async move { reason(auth.authenticate(&bearer(&token)).await) });
    }
    while let Some(outcome) = requests.join_next().await {
        let outcome = outcome.unwrap();
        assert!(
            ["expired", "wrong_tenant", "bad_signature"].contains(&outcome),
            "{outcome}"
        );
    }
    assert_eq!(auth.fetch_count(), before);
    assert_eq!(auth.cached_tokens(), 0, "failures are never cached");
    task.abort();
}

#[tokio::test]
async fn unknown_kids_never_fetch_without_the_refresh_task() {
    let key = TestKey::generate("real");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let auth = loaded(idp.settings()).await;
    let stranger = TestKey::generate("stranger");
    let token = stranger.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(
        reason(auth.authenticate(&bearer(&token)).await),
        "unknown_key"
    );
    assert_eq!(auth.fetch_count(), 1);
}

#[tokio::test]
async fn cached_token_is_rejected_once_its_key_leaves_the_jwks() {
    let old = TestKey::generate("old");
    let new = TestKey::generate("new");
    let idp = TestIdp::start(JwksMode::Keys(vec![old.jwk()])).await;
    let auth = loaded(idp.settings()).await;
    let token = old.sign(&v2_claims(&idp.instance(), TENANT));

    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    assert_eq!(auth.cached_tokens(), 1);
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    assert_eq!(auth.cached_tokens(), 1, "served from the cache");

    // An unchanged key set keeps the entry.
    idp.set_keys(&[&old, &new]);
    auth.refresh_keys().await.unwrap();
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    assert_eq!(auth.cached_tokens(), 1);

    idp.set_keys(&[&new]);
    auth.refresh_keys().await.unwrap();
    assert_eq!(
        reason(auth.authenticate(&bearer(&token)).await),
        "unknown_key"
    );
    assert_eq!(auth.cached_tokens(), 0);
}

#[tokio::test]
async fn the_cache_is_asked_before_the_syntax_check_yet_serves_only_checked_tokens() {
    let key = TestKey::generate("real");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let auth = loaded(idp.settings()).await;
    let token = key.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    let stats = auth.stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (1, 1));
    // Near variants of a cached token are other bytes: refused by the
    // syntax check, with its reasons, and never counted as cache misses.
    let too_long = format!("{token}{}", "a".repeat(17 * 1024));
    for (variant, expected) in [
        (format!("{token}!"), "invalid_request"),
        (format!("{token} {token}"), "invalid_request"),
        (too_long, "malformed_token"),
    ] {
        assert_eq!(reason(auth.authenticate(&bearer(&variant)).await), expected);
    }
    let stats = auth.stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (1, 1));
    assert_eq!(auth.cached_tokens(), 1);
}

#[tokio::test]
async fn cached_token_is_rejected_when_its_kid_gets_new_material() {
    let original = TestKey::generate("same-kid");
    let replacement = TestKey::generate("same-kid");
    let idp = TestIdp::start(JwksMode::Keys(vec![original.jwk()])).await;
    let auth = loaded(idp.settings()).await;
    let token = original.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");

    idp.set_keys(&[&replacement]);
    auth.refresh_keys().await.unwrap();
    assert_eq!(
        reason(auth.authenticate(&bearer(&token)).await),
        "bad_signature"
    );
}

#[tokio::test]
async fn tokens_within_the_leeway_are_accepted_but_never_cached() {
    let key = TestKey::generate("k");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let auth = loaded(idp.settings()).await;
    let mut claims = v2_claims(&idp.instance(), TENANT);
    claims["exp"] = (now() - 5).into();
    let token = key.sign(&claims);
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    assert_eq!(auth.cached_tokens(), 0, "a cache entry would outlive exp");
}

#[tokio::test]
async fn rejections_are_never_cached_and_disabled_cache_holds_nothing() {
    let key = TestKey::generate("k");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let auth = loaded(idp.settings()).await;
    let mut claims = v2_claims(&idp.instance(), TENANT);
    claims["aud"] = "someone-else".into();
    let token = key.sign(&claims);
    assert_eq!(
        reason(auth.authenticate(&bearer(&token)).await),
        "wrong_audience"
    );
    assert_eq!(auth.cached_tokens(), 0);

    let mut settings = idp.settings();
    settings.token_cache_size = 0;
    let uncached = loaded(settings).await;
    let token = key.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(reason(uncached.authenticate(&bearer(&token)).await), "ok");
    assert_eq!(reason(uncached.authenticate(&bearer(&token)).await), "ok");
    assert_eq!(uncached.cached_tokens(), 0);
}

#[tokio::test]
async fn scheduled_refresh_picks_up_rotation_without_requests() {
    let old = TestKey::generate("old");
    let new = TestKey::generate("new");
    let idp = TestIdp::start(JwksMode::Keys(vec![old.jwk()])).await;
    let mut settings = idp.settings();
    settings.refresh_interval = Duration::from_millis(50);
    let auth = Arc::new(Authenticator::new(settings).unwrap());
    let task = auth.spawn_refresh_task();
    wait_for_fetches(&auth, |a| a.keys_loaded()).await;

    // Use up the unknown-kid trigger (cooldown 1 h): from here on only the
    // schedule can bring new keys.
    let stranger = TestKey::generate("stranger");
    let token = stranger.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(
        reason(auth.authenticate(&bearer(&token)).await),
        "unknown_key"
    );

    idp.set_keys(&[&new]);
    // Two more completions: at least one fetch started after the rotation.
    let seen = auth.fetches_completed();
    wait_for_fetches(&auth, |a| a.fetches_completed() >= seen + 2).await;
    let token = new.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    task.abort();
}

#[tokio::test]
async fn refresh_task_ends_with_the_authenticator() {
    let key = TestKey::generate("k");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let auth = Arc::new(Authenticator::new(idp.settings()).unwrap());
    let task = auth.spawn_refresh_task();
    wait_for_fetches(&auth, |a| a.keys_loaded()).await;
    drop(auth);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the task ends once the authenticator is gone")
        .unwrap();
}

#[tokio::test]
async fn jwks_uri_on_the_issuer_origin_is_fetched_from_the_metadata_origin() {
    // Docker compose: tokens name http://idp.invalid:9400 (what the browser
    // used), the gateway reaches the IdP at another address.
    let key = TestKey::generate("k");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let issuer_instance = "http://idp.invalid:9400";
    idp.set_jwks_uri(&format!("{issuer_instance}/{TENANT}/discovery/v2.0/keys"));
    // The document names the issuer browsers see, not the host it came from.
    idp.set_issuer(&format!("{issuer_instance}/{TENANT}/v2.0"));
    let mut settings = idp.settings();
    settings.instance = issuer_instance.to_owned();
    let auth = loaded(settings).await;
    assert_eq!(idp.jwks_hits(), 1);

    let token = key.sign(&v2_claims(issuer_instance, TENANT));
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    let wrong = key.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(
        reason(auth.authenticate(&bearer(&wrong)).await),
        "wrong_issuer"
    );
}

/// OpenID Connect Discovery 1.0 §4.3: a document naming another issuer than
/// the expected one is not used, nor any key from its `jwks_uri`: nothing
/// loads, requests get 503, and the error says what was expected.
#[tokio::test]
async fn discovery_naming_another_issuer_trusts_no_key() {
    let key = TestKey::generate("k");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let token = key.sign(&v2_claims(&idp.instance(), TENANT));
    let cases = [
        format!("{}/{OTHER_TENANT}/v2.0", idp.instance()),
        format!("{}/{{tenantid}}/v2.0", idp.instance()),
        format!("https://login.example/{TENANT}/v2.0"),
        format!("{}/{TENANT}/v2.0/", idp.instance()),
    ];
    for issuer in cases {
        idp.set_issuer(&issuer);
        let jwks_before = idp.jwks_hits();
        let auth = Authenticator::new(idp.settings()).unwrap();
        let err = auth.refresh_keys().await.unwrap_err();
        assert!(
            matches!(&err, KeyFetchError::UnexpectedIssuer { issuer: got, .. } if *got == issuer),
            "{issuer}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("{}/{TENANT}/v2.0", idp.instance()))
                && message.contains("no key from it is trusted"),
            "{message}"
        );
        assert_eq!(idp.jwks_hits(), jwks_before, "{issuer}: keys fetched");
        assert!(!auth.keys_loaded());
        let denied = auth.authenticate(&bearer(&token)).await.unwrap_err();
        assert_eq!(denied.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    // A multi-tenant API expects the `{tenantid}` template, not one tenant.
    let mut multi = idp.settings();
    multi.tenant = authz_proxy::auth::TenantMode::Multi {
        allowed: authz_proxy::auth::AllowedTenants::Any,
    };
    idp.set_issuer(&format!("{}/{TENANT}/v2.0", idp.instance()));
    let auth = Authenticator::new(multi.clone()).unwrap();
    assert!(matches!(
        auth.refresh_keys().await,
        Err(KeyFetchError::UnexpectedIssuer { .. })
    ));
    idp.set_issuer(&format!("{}/{{tenantid}}/v2.0", idp.instance()));
    let auth = loaded(multi).await;
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
}

/// Keys that loaded from a good document stay when a later one names
/// another issuer: the new document's keys are not trusted, the old ones are.
#[tokio::test]
async fn a_later_document_with_another_issuer_keeps_the_last_good_keys() {
    let key = TestKey::generate("k");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let auth = loaded(idp.settings()).await;
    let intruder = TestKey::generate("intruder");
    idp.set_keys(&[&intruder]);
    idp.set_issuer("https://login.example/elsewhere/v2.0");
    assert!(matches!(
        auth.refresh_keys().await,
        Err(KeyFetchError::UnexpectedIssuer { .. })
    ));
    let token = key.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(reason(auth.authenticate(&bearer(&token)).await), "ok");
    let forged = intruder.sign(&v2_claims(&idp.instance(), TENANT));
    assert_eq!(
        reason(auth.authenticate(&bearer(&forged)).await),
        "unknown_key"
    );
}
