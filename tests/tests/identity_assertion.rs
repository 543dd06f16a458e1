//! The signed identity assertion through the running system: the upstream
//! receives an `X-User-Assertion` that verifies against the JWKS the gateway
//! publishes — fetched from the gateway like a backend would, with
//! `jsonwebtoken`, ES256 pinned, `iss`, `aud` and `exp` checked — and
//! nothing a client sends under that name (or a look-alike) ever arrives.

use dev_idp::mint::MintRequest;
use e2e_tests::recorder::Recorder;
use e2e_tests::{Options, System};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

const JWKS_PATH: &str = "/.well-known/authz-proxy/jwks.json";

/// An anonymous route and a token route on the default upstream, a token
/// route on the named upstream `billing`, and one on `ledger` (the same
/// server) with an `assertion_audience` of its own.
fn policy(billing: &str) -> String {
    format!(
        "\
version: 1
upstreams:
  billing: {{url: '{billing}'}}
  ledger: {{url: '{billing}', assertion_audience: 'api://ledger'}}
routes:
  - {{name: health, path: /health, methods: [GET], allow: anonymous}}
  - {{name: todos, path: /todoitems, methods: [GET], scopes: [access_as_user]}}
  - {{name: invoices, path: /invoices, methods: [GET], upstream: billing}}
  - {{name: entries, path: /entries, methods: [GET], upstream: ledger}}
"
    )
}

struct Setup {
    sys: System,
    default: Recorder,
    billing: Recorder,
    _dir: tempfile::TempDir,
}

async fn start(extra: &[&str]) -> Setup {
    let (default, billing) = (Recorder::start().await, Recorder::start().await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy(&billing.url)).unwrap();
    let sys = System::start_with(Options {
        policy: file,
        upstream: Some(default.url.clone()),
        gateway_args: extra.iter().map(|s| (*s).to_owned()).collect(),
        ..Options::default()
    })
    .await
    .unwrap();
    Setup {
        sys,
        default,
        billing,
        _dir: dir,
    }
}

async fn get(sys: &System, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = sys.http.get(format!("{}{path}", sys.gateway_url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

/// What a backend does: the key by `kid` from the gateway's JWKS, ES256
/// only, and the issuer, audience and expiry it expects.
fn verify(jwks: &JwkSet, jws: &str, issuer: &str, audience: &str) -> Value {
    verify_as(Algorithm::ES256, jwks, jws, issuer, audience)
}

/// [`verify`] with `alg` the one algorithm accepted.
fn verify_as(alg: Algorithm, jwks: &JwkSet, jws: &str, issuer: &str, audience: &str) -> Value {
    let kid = jsonwebtoken::decode_header(jws).unwrap().kid.unwrap();
    let key = DecodingKey::from_jwk(jwks.find(&kid).expect("kid in the JWKS")).unwrap();
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    jsonwebtoken::decode::<Value>(jws, &key, &validation)
        .unwrap()
        .claims
}

async fn jwks(url: &str) -> JwkSet {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(
        response.headers()["content-type"],
        "application/jwk-set+json"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_upstream_gets_an_assertion_that_verifies_against_the_gateways_jwks() {
    let s = start(&[]).await;
    let token = s.sys.token(MintRequest::user("alice"));
    let bearer = format!("Bearer {token}");
    // A client-sent assertion, under the name and look-alikes, is replaced.
    let forged = [
        ("authorization", bearer.as_str()),
        ("x-user-assertion", "eyJhbGciOiJub25lIn0.e30."),
        ("X_User_Assertion", "forged"),
        ("x.user.assertion", "forged"),
    ];
    assert_eq!(get(&s.sys, "/todoitems", &forged).await, 200);
    assert_eq!(get(&s.sys, "/invoices", &forged[..1]).await, 200);
    assert_eq!(get(&s.sys, "/entries", &forged[..1]).await, 200);

    // The JWKS, from the gateway (before routing: no route names it) and
    // from the admin listener: the same document.
    let from_gateway = jwks(&format!("{}{JWKS_PATH}", s.sys.gateway_url)).await;
    let from_admin = jwks(&format!("{}{JWKS_PATH}", s.sys.admin_url)).await;
    assert_eq!(
        serde_json::to_value(&from_gateway).unwrap(),
        serde_json::to_value(&from_admin).unwrap()
    );
    assert_eq!(s.default.count(), 1, "the JWKS is not forwarded");

    let seen = &s.default.seen()[0];
    let assertions = seen.all("x-user-assertion");
    assert_eq!(assertions.len(), 1, "exactly one, the gateway's");
    for (name, _) in &seen.headers {
        assert!(
            name == "x-user-assertion" || !name.replace(['_', '.'], "-").contains("assertion"),
            "{name} reached the upstream"
        );
    }
    // Default issuer: the gateway's own URL; default audience: the
    // --upstream URL's origin.
    let claims = verify(
        &from_gateway,
        assertions[0],
        &s.sys.gateway_url,
        &s.default.url,
    );
    assert_eq!(claims["route"], "todos");
    assert_eq!(claims["idtyp"], "user");
    assert_eq!(claims["oid"], seen.all("x-user-id")[0]);
    assert_eq!(claims["tid"], seen.all("x-user-tenant")[0]);
    assert_eq!(claims["scp"], seen.all("x-user-scopes")[0]);
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 300);

    // A named upstream's audience is its name.
    let seen = &s.billing.seen()[0];
    let claims = verify(
        &from_gateway,
        seen.all("x-user-assertion")[0],
        &s.sys.gateway_url,
        "billing",
    );
    assert_eq!(claims["route"], "invoices");
    // Unless it sets its own `assertion_audience`.
    let seen = &s.billing.seen()[1];
    let claims = verify(
        &from_gateway,
        seen.all("x-user-assertion")[0],
        &s.sys.gateway_url,
        "api://ledger",
    );
    assert_eq!(claims["route"], "entries");
}

#[tokio::test]
async fn anonymous_routes_get_no_assertion_and_a_forged_one_is_stripped() {
    let s = start(&[]).await;
    let token = s.sys.token(MintRequest::user("alice"));
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("X-User-Assertion", "forged"),
        ("x_user_assertion", "forged"),
    ];
    assert_eq!(get(&s.sys, "/health", &headers).await, 200);
    let seen = &s.default.seen()[0];
    assert!(
        seen.headers.iter().all(|(n, _)| !n.contains("assertion")),
        "{:?}",
        seen.headers
    );
}

#[tokio::test]
async fn a_second_request_with_the_same_token_reuses_the_assertion() {
    let s = start(&[]).await;
    let token = s.sys.token(MintRequest::user("alice"));
    let bearer = format!("Bearer {token}");
    for _ in 0..3 {
        assert_eq!(
            get(&s.sys, "/todoitems", &[("authorization", &bearer)]).await,
            200
        );
    }
    let signer = s.sys.gateway.assertion().unwrap();
    assert_eq!(signer.signatures(), 1);
    let seen = s.default.seen();
    assert_eq!(
        seen[0].all("x-user-assertion"),
        seen[2].all("x-user-assertion")
    );
}

#[tokio::test]
async fn configured_issuer_audience_and_lifetime_are_signed() {
    let s = start(&[
        "--assertion-issuer",
        "https://api.contoso.example",
        "--assertion-audience",
        "todo-api",
        "--assertion-lifetime-seconds",
        "60",
    ])
    .await;
    let token = s.sys.token(MintRequest::user("alice"));
    let bearer = format!("Bearer {token}");
    assert_eq!(
        get(&s.sys, "/todoitems", &[("authorization", &bearer)]).await,
        200
    );
    let keys = jwks(&format!("{}{JWKS_PATH}", s.sys.gateway_url)).await;
    let seen = &s.default.seen()[0];
    let claims = verify(
        &keys,
        seen.all("x-user-assertion")[0],
        "https://api.contoso.example",
        "todo-api",
    );
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 60);
}

#[tokio::test]
async fn no_identity_assertion_sends_none_and_serves_no_jwks() {
    let s = start(&["--no-identity-assertion"]).await;
    let token = s.sys.token(MintRequest::user("alice"));
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("x-user-assertion", "forged"),
    ];
    assert_eq!(get(&s.sys, "/todoitems", &headers).await, 200);
    let seen = &s.default.seen()[0];
    assert!(seen.all("x-user-assertion").is_empty(), "still stripped");
    assert!(s.sys.gateway.assertion().is_none());
    // No route names the JWKS path: 404, as for any unmatched path.
    assert_eq!(get(&s.sys, JWKS_PATH, &[]).await, 404);
    let admin = reqwest::get(format!("{}{JWKS_PATH}", s.sys.admin_url))
        .await
        .unwrap();
    assert_eq!(admin.status(), 404);
}

/// A P-256 key in PEM, written the way a renewed Secret lands (a new file
/// renamed over the old), and its kid as the JWKS names it.
fn write_key(path: &std::path::Path) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, key.serialize_pem()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn kids(jwks: &JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect()
}

/// Rotation with overlap while requests run: the next key is in the JWKS
/// a backend fetched *before* the rotation, so every assertion signed
/// before, during and after it verifies against that cached copy; no
/// request fails; the old key stays published after it stops signing.
#[tokio::test]
async fn a_key_rotation_with_requests_in_flight_loses_none() {
    let keys = tempfile::tempdir().unwrap();
    let (key, next) = (keys.path().join("key.pem"), keys.path().join("next.pem"));
    write_key(&key);
    write_key(&next);
    let s = start(&[
        "--assertion-key",
        key.to_str().unwrap(),
        "--assertion-next-key",
        next.to_str().unwrap(),
    ])
    .await;
    // The backend's cached JWKS: the signing key and the next one.
    let cached = jwks(&format!("{}{JWKS_PATH}", s.sys.admin_url)).await;
    let before = kids(&cached);
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(before[0], s.sys.gateway.assertion().unwrap().kid());

    // Requests from several callers, all the time, while the key rotates.
    let tokens: Vec<String> = ["alice", "bob"]
        .iter()
        .map(|u| s.sys.token(MintRequest::user(*u)))
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for token in tokens {
        let (http, url, stop) = (s.sys.http.clone(), s.sys.gateway_url.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || statuses.len() < 5 {
                let response = http
                    .get(format!("{url}/todoitems"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                statuses.push(response.status().as_u16());
            }
            statuses
        }));
    }
    // Wait until requests are flowing, then rotate: the next key signs,
    // and a new next key is published.
    while s.default.count() < 10 {
        tokio::task::yield_now().await;
    }
    std::fs::copy(&next, &key).unwrap();
    write_key(&next);
    let reloader = s.sys.reloader.clone();
    tokio::task::spawn_blocking(move || reloader.reload(authz_proxy::reload::Trigger::Signal))
        .await
        .unwrap();
    let rotated_at = s.default.count();
    while s.default.count() < rotated_at + 10 {
        tokio::task::yield_now().await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        let statuses = task.await.unwrap();
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }

    // Every assertion the upstream got verifies against the JWKS cached
    // before the rotation; both keys signed some.
    let mut signed_by = std::collections::BTreeSet::new();
    for seen in s.default.seen() {
        let jws = seen.all("x-user-assertion")[0];
        verify(&cached, jws, &s.sys.gateway_url, &s.default.url);
        signed_by.insert(jsonwebtoken::decode_header(jws).unwrap().kid.unwrap());
    }
    assert_eq!(signed_by, before.iter().cloned().collect());
    // After: the new signing key, the new next key, and the old key kept
    // until its last assertion expires.
    let after = kids(&jwks(&format!("{}{JWKS_PATH}", s.sys.gateway_url)).await);
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[0], before[1]);
    assert_eq!(after[2], before[0]);
    assert!(!before.contains(&after[1]));
}

#[tokio::test]
async fn under_rs256_the_upstream_gets_an_assertion_that_verifies_against_the_rsa_jwk() {
    let s = start(&["--assertion-algorithm", "RS256"]).await;
    let bearer = format!("Bearer {}", s.sys.token(MintRequest::user("alice")));
    assert_eq!(
        get(&s.sys, "/todoitems", &[("authorization", &bearer)]).await,
        200
    );
    assert_eq!(
        get(&s.sys, "/todoitems", &[("authorization", &bearer)]).await,
        200
    );
    let jwks = jwks(&format!("{}{JWKS_PATH}", s.sys.gateway_url)).await;
    let document = serde_json::to_value(&jwks).unwrap();
    let key = &document["keys"][0];
    assert_eq!(document["keys"].as_array().unwrap().len(), 1);
    assert_eq!((&key["kty"], &key["alg"]), (&"RSA".into(), &"RS256".into()));
    let seen = s.default.seen();
    let assertions: Vec<&str> = seen.iter().map(|r| r.all("x-user-assertion")[0]).collect();
    assert_eq!(assertions.len(), 2);
    // The second request reused the first one's assertion (the same token).
    assert_eq!(assertions[0], assertions[1]);
    let header = jsonwebtoken::decode_header(assertions[0]).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let claims = verify_as(
        Algorithm::RS256,
        &jwks,
        assertions[0],
        &s.sys.gateway_url,
        &s.default.url,
    );
    assert_eq!(claims["route"], "todos");
    assert_eq!(claims["oid"], seen[0].all("x-user-id")[0]);
    // An ES256-only backend cannot take it: the algorithm is the choice.
    let kid = header.kid.unwrap();
    let rsa = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let es256_only = Validation::new(Algorithm::ES256);
    assert!(jsonwebtoken::decode::<Value>(assertions[0], &rsa, &es256_only).is_err());
    s.sys.stop().await.unwrap();
}
