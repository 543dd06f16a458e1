//! The verifier against assertions signed here, with a key the test holds:
//! each check refuses with its own message, and the JWKS is fetched lazily,
//! again on an unknown key after the cooldown, and not in between.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RsaKeyPair,
};
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use warp::Filter as _;

use super::*;

const ISSUER: &str = "https://api.contoso.example";
const AUDIENCE: &str = "http://backend:8081";

/// A P-256 or RSA key the test signs with, and its JWK.
struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl TestKey {
    fn new(kid: &str) -> TestKey {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        TestKey {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        }
    }

    /// An RSA-2048 key, published as the gateway does under RS256.
    fn rsa(kid: &str) -> TestKey {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&parts.n),
            "e": URL_SAFE_NO_PAD.encode(&parts.e),
        });
        let der = pair.as_der().unwrap();
        let b64 = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        TestKey {
            kid: kid.into(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn jwks(keys: &[&TestKey]) -> Vec<u8> {
    let keys: Vec<&Value> = keys.iter().map(|k| &k.jwk).collect();
    serde_json::to_vec(&json!({ "keys": keys })).unwrap()
}

fn settings(jwks_url: &str) -> Settings {
    Settings {
        jwks_url: jwks_url.into(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        header: HeaderName::from_static(DEFAULT_HEADER),
    }
}

/// The claims the gateway signs for alice, issued now.
fn claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300,
        "jti": "j1", "oid": "oid-alice", "tid": "tid-1", "roles": ["User", "Admin"],
        "scp": "access_as_user", "name": "Zoë O'Neil", "preferred_username": "zoe@contoso.dev",
        "idtyp": "user", "route": "todos",
    })
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn request(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    map
}

fn verifier(keys: &[&TestKey]) -> Arc<Verifier> {
    // Keys are held, and the last fetch was just now: nothing is fetched.
    Arc::new(Verifier::with_keys(
        settings("http://127.0.0.1:9/unused"),
        &jwks(keys),
    ))
}

async fn check(verifier: &Arc<Verifier>, pairs: &[(&str, &str)]) -> Result<Identity, Refusal> {
    verifier.identity(&request(pairs)).await
}

/// An unsigned token with this header (base64url of its JSON) and claims.
fn handmade(header: Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test]
async fn a_valid_assertion_gives_the_identity_from_its_claims() {
    let key = TestKey::new("k1");
    let v = verifier(&[&key]);
    let identity = check(&v, &[("x-user-assertion", &key.sign(&claims()))])
        .await
        .unwrap();
    assert_eq!(
        identity,
        Identity {
            user_id: "oid-alice".into(),
            tenant_id: "tid-1".into(),
            roles: vec!["User".into(), "Admin".into()],
            name: Some("Zoë O'Neil".into()),
            email: Some("zoe@contoso.dev".into()),
        }
    );
    assert!(identity.is_admin());
}

#[tokio::test]
async fn headers_that_agree_pass_and_any_that_disagrees_is_refused() {
    let key = TestKey::new("k1");
    let v = verifier(&[&key]);
    let token = key.sign(&claims());
    // What the gateway sends beside the assertion.
    let agreeing = [
        ("x-user-assertion", token.as_str()),
        ("x-user-id", "oid-alice"),
        ("x-user-tenant", "tid-1"),
        ("x-user-roles", "User,Admin"),
        ("x-user-scopes", "access_as_user"),
        ("x-user-type", "user"),
        ("x-user-name", "Zo%C3%AB%20O%27Neil"),
        ("x-user-email", "zoe%40contoso.dev"),
    ];
    assert!(check(&v, &agreeing).await.is_ok());
    for (header, forged, name) in [
        ("x-user-id", "oid-mallory", "X-User-Id"),
        ("x-user-tenant", "tid-2", "X-User-Tenant"),
        ("x-user-roles", "User,Admin,Owner", "X-User-Roles"),
        ("x-user-roles", "Admin", "X-User-Roles"),
        ("x-user-scopes", "access_as_user admin", "X-User-Scopes"),
        ("x-user-type", "app", "X-User-Type"),
        ("x-user-name", "Mallory", "X-User-Name"),
        ("x-user-email", "mallory@contoso.dev", "X-User-Email"),
    ] {
        let mut pairs: Vec<(&str, &str)> = agreeing
            .iter()
            .filter(|(n, _)| *n != header)
            .copied()
            .collect();
        pairs.push((header, forged));
        assert_eq!(
            check(&v, &pairs).await,
            Err(Refusal::HeaderMismatch(name)),
            "{header}: {forged}"
        );
    }
    // A second copy of an agreeing header is a disagreement too.
    let mut twice = agreeing.to_vec();
    twice.push(("x-user-id", "oid-alice"));
    assert_eq!(
        check(&v, &twice).await,
        Err(Refusal::HeaderMismatch("X-User-Id"))
    );
    // A display header for a claim the assertion lacks.
    let nameless = key.sign(&with(claims(), json!({"name": null})));
    assert_eq!(
        check(
            &v,
            &[("x-user-assertion", &nameless), ("x-user-name", "Zoë")]
        )
        .await,
        Err(Refusal::HeaderMismatch("X-User-Name"))
    );
}

#[tokio::test]
async fn forged_headers_without_an_assertion_are_refused() {
    let key = TestKey::new("k1");
    let v = verifier(&[&key]);
    let refusal = check(
        &v,
        &[("x-user-id", "oid-alice"), ("x-user-tenant", "tid-1")],
    )
    .await
    .unwrap_err();
    assert_eq!(refusal, Refusal::Missing("x-user-assertion".into()));
    assert_eq!(
        refusal.to_string(),
        "Missing identity assertion (x-user-assertion header)"
    );
    let token = key.sign(&claims());
    assert_eq!(
        check(
            &v,
            &[("x-user-assertion", &token), ("x-user-assertion", &token)]
        )
        .await,
        Err(Refusal::Repeated("x-user-assertion".into()))
    );
}

#[tokio::test]
async fn each_failed_check_has_its_own_refusal() {
    let key = TestKey::new("k1");
    let v = verifier(&[&key]);
    let now = now();
    let cases = [
        (
            with(claims(), json!({"exp": now - 31, "iat": now - 331})),
            Refusal::Expired,
        ),
        (
            with(claims(), json!({"iat": now + 31})),
            Refusal::IssuedInFuture,
        ),
        (
            with(claims(), json!({"aud": "billing"})),
            Refusal::WrongAudience,
        ),
        (
            with(claims(), json!({"iss": "https://evil.example"})),
            Refusal::WrongIssuer,
        ),
        (
            with(claims(), json!({"oid": null})),
            Refusal::MissingClaim("oid".into()),
        ),
        (
            with(claims(), json!({"tid": ""})),
            Refusal::MissingClaim("tid".into()),
        ),
        (
            with(claims(), json!({"iat": null})),
            Refusal::MissingClaim("iat".into()),
        ),
        (
            with(claims(), json!({"exp": null})),
            Refusal::MissingClaim("exp".into()),
        ),
    ];
    for (claims, refusal) in cases {
        assert_eq!(
            check(&v, &[("x-user-assertion", &key.sign(&claims))]).await,
            Err(refusal),
            "{claims}"
        );
    }
    // Within the leeway: accepted.
    let skewed = with(claims(), json!({"exp": now - 20, "iat": now + 20}));
    assert!(
        check(&v, &[("x-user-assertion", &key.sign(&skewed))])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn only_es256_or_rs256_with_a_known_key_and_a_good_signature_verifies() {
    let key = TestKey::new("k1");
    let v = verifier(&[&key]);
    let claims = claims();
    let cases = [
        (
            handmade(json!({"alg": "none", "kid": "k1"}), &claims, ""),
            Refusal::Algorithm("none".into()),
        ),
        (
            handmade(json!({"alg": "HS256", "kid": "k1"}), &claims, "c2ln"),
            Refusal::Algorithm("HS256".into()),
        ),
        (
            handmade(json!({"kid": "k1"}), &claims, "c2ln"),
            Refusal::Algorithm("no alg".into()),
        ),
        (
            handmade(json!({"alg": "ES256"}), &claims, "c2ln"),
            Refusal::NoKeyId,
        ),
        (
            "not-a-jws".to_owned(),
            Refusal::Malformed("not a compact JWS (three dot-separated parts)".into()),
        ),
        (
            "!!.e30.c2ln".to_owned(),
            Refusal::Malformed("its header is not base64url".into()),
        ),
        // The signature is checked before the claims are decoded.
        (
            format!(
                "{}.!!.c2ln",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"k1"}"#)
            ),
            Refusal::BadSignature,
        ),
        // Another key, presenting itself under a kid the verifier does not know,
        (
            TestKey::new("k2").sign(&claims),
            Refusal::UnknownKey("k2".into()),
        ),
        // or under the known kid: the signature does not verify.
        (TestKey::new("k1").sign(&claims), Refusal::BadSignature),
    ];
    for (token, refusal) in cases {
        assert_eq!(
            check(&v, &[("x-user-assertion", &token)]).await,
            Err(refusal),
            "{token}"
        );
    }
    // The claims of a valid token with the signature of another: refused.
    let good = key.sign(&claims);
    let other = key.sign(&with(claims.clone(), json!({"oid": "oid-mallory"})));
    let (other_head_body, _) = other.rsplit_once('.').unwrap();
    let (_, good_signature) = good.rsplit_once('.').unwrap();
    let spliced = format!("{other_head_body}.{good_signature}");
    assert_eq!(
        check(&v, &[("x-user-assertion", &spliced)]).await,
        Err(Refusal::BadSignature)
    );
}

#[tokio::test]
async fn keys_older_than_their_max_age_are_fetched_again_in_the_background() {
    let key = TestKey::new("k1");
    let server = JwksServer::start(jwks(&[&key])).await;
    let v = Arc::new(Verifier::new(settings(&server.url)).unwrap());
    let token = key.sign(&claims());
    assert!(check(&v, &[("x-user-assertion", &token)]).await.is_ok());
    assert_eq!(server.hits(), 1);
    // The held keys age past MAX_KEYS_AGE (and the cooldown).
    let old = Instant::now() - MAX_KEYS_AGE - Duration::from_secs(1);
    {
        let mut slot = v.keys.write().unwrap();
        let by_kid = slot.as_ref().unwrap().by_kid.clone();
        *slot = Some(Arc::new(Keys {
            by_kid,
            fetched: old,
        }));
    }
    v.fetching.lock().await.last_success = Some(old);
    // The request is served with the held key at once…
    assert!(check(&v, &[("x-user-assertion", &token)]).await.is_ok());
    // …and a fetch runs behind it: wait for it on the fetch lock.
    loop {
        let done = v
            .fetching
            .lock()
            .await
            .last_success
            .is_some_and(|at| at > old);
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(server.hits(), 2);
}

#[test]
fn a_jwks_keeps_p256_and_rsa_2048_keys_with_a_kid_and_needs_one() {
    let key = TestKey::new("k1");
    let mut kidless = TestKey::new("x").jwk;
    kidless.as_object_mut().unwrap().remove("kid");
    // An RSA key shorter than 2048 bits, and one marked for another algorithm.
    let short = json!({"kty": "RSA", "kid": "r1", "n": "sXch", "e": "AQAB"});
    let rsa = TestKey::rsa("r2");
    let mut ps256 = rsa.jwk.clone();
    ps256["kid"] = json!("r3");
    ps256["alg"] = json!("PS256");
    let mut rsa_without_alg = rsa.jwk.clone();
    rsa_without_alg["kid"] = json!("r4");
    rsa_without_alg.as_object_mut().unwrap().remove("alg");
    let body = serde_json::to_vec(&json!({
        "keys": [short, kidless, key.jwk, rsa.jwk, ps256, rsa_without_alg]
    }))
    .unwrap();
    let keys = keys_from_jwks(&body).unwrap();
    let mut kids: Vec<_> = keys.iter().map(|(kid, k)| (kid.as_str(), k.alg)).collect();
    kids.sort_by_key(|(kid, _)| *kid);
    assert_eq!(
        kids,
        [("k1", Alg::Es256), ("r2", Alg::Rs256), ("r4", Alg::Rs256)]
    );
    assert_eq!(
        keys_from_jwks(br#"{"keys": []}"#).err().unwrap(),
        "the JWKS has no P-256 or RSA key with a kid"
    );
    assert!(
        keys_from_jwks(b"<html>")
            .unwrap_err()
            .starts_with("the JWKS is not valid JSON")
    );
}

/// A JWKS server on loopback whose document a test swaps; it counts GETs.
struct JwksServer {
    url: String,
    body: Arc<Mutex<Vec<u8>>>,
    hits: Arc<AtomicU64>,
}

impl JwksServer {
    async fn start(body: Vec<u8>) -> JwksServer {
        let body = Arc::new(Mutex::new(body));
        let hits = Arc::new(AtomicU64::new(0));
        let (served, counted) = (body.clone(), hits.clone());
        let route = warp::path!("jwks.json").and_then(move || {
            let body = served.lock().unwrap().clone();
            counted.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, Infallible>(warp::http::Response::new(body)) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(warp::serve(route).incoming(listener).run());
        JwksServer {
            url: format!("http://{addr}/jwks.json"),
            body,
            hits,
        }
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn the_jwks_is_fetched_lazily_and_again_for_a_new_key_after_the_cooldown() {
    let (k1, k2) = (TestKey::new("k1"), TestKey::new("k2"));
    let server = JwksServer::start(jwks(&[&k1])).await;
    let v = Arc::new(Verifier::new(settings(&server.url)).unwrap());
    assert_eq!(server.hits(), 0, "nothing fetched at start");

    let sign = |key: &TestKey| key.sign(&claims());
    assert!(check(&v, &[("x-user-assertion", &sign(&k1))]).await.is_ok());
    assert!(check(&v, &[("x-user-assertion", &sign(&k1))]).await.is_ok());
    assert_eq!(server.hits(), 1, "fetched once, then held");

    // The gateway publishes k2; within the cooldown, an unknown kid is
    // refused without a fetch (a flood of made-up kids costs nothing).
    *server.body.lock().unwrap() = jwks(&[&k1, &k2]);
    assert_eq!(
        check(&v, &[("x-user-assertion", &sign(&k2))]).await,
        Err(Refusal::UnknownKey("k2".into()))
    );
    assert_eq!(server.hits(), 1);

    // After the cooldown, the unknown kid fetches again and is found.
    v.fetching.lock().await.last_success = Some(Instant::now() - REFETCH_COOLDOWN);
    assert!(check(&v, &[("x-user-assertion", &sign(&k2))]).await.is_ok());
    assert_eq!(server.hits(), 2);
    assert_eq!(v.fetches().await, 2);
}

#[tokio::test]
async fn without_the_gateways_keys_requests_get_503_and_ready_says_why() {
    // A port with nothing behind it: bind, note the address, close.
    let addr = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{addr}/jwks.json");
    let key = TestKey::new("k1");
    let v = Arc::new(Verifier::new(settings(&url)).unwrap());
    assert_eq!(
        check(&v, &[("x-user-assertion", &key.sign(&claims()))]).await,
        Err(Refusal::KeysUnavailable)
    );
    // Right after a failure, no new attempt (and no wait).
    let error = v.ready().await.unwrap_err();
    assert!(error.contains("failed less than a second ago"), "{error}");
    assert_eq!(v.fetches().await, 1);
    v.fetching.lock().await.last_failure = Some(Instant::now() - RETRY_AFTER_FAILURE);
    let error = v.ready().await.unwrap_err();
    assert!(error.starts_with(&format!("GET {url}")), "{error}");
    assert_eq!(v.fetches().await, 2);
}

#[test]
fn settings_need_an_http_jwks_url() {
    for (url, error) in [
        ("jwks.json", "relative URL without a base"),
        ("ftp://gateway/jwks", "must be an http:// or https:// URL"),
    ] {
        let message = Verifier::new(settings(url)).unwrap_err();
        assert!(
            message.starts_with(&format!("--gateway-jwks-url {url:?}")) && message.contains(error),
            "{message}"
        );
    }
}

#[tokio::test]
async fn an_rs256_assertion_verifies_against_an_rsa_key_of_the_jwks() {
    let (ec, rsa) = (TestKey::new("ec"), TestKey::rsa("rsa"));
    let v = verifier(&[&ec, &rsa]);
    let identity = check(&v, &[("x-user-assertion", &rsa.sign(&claims()))])
        .await
        .unwrap();
    assert_eq!(identity.user_id, "oid-alice");
    // Both algorithms side by side (a gateway switching between them).
    assert!(
        check(&v, &[("x-user-assertion", &ec.sign(&claims()))])
            .await
            .is_ok()
    );
    // Each check still applies under RS256.
    let expired = with(claims(), json!({"exp": now() - 3600}));
    assert_eq!(
        check(&v, &[("x-user-assertion", &rsa.sign(&expired))]).await,
        Err(Refusal::Expired)
    );
    let other = with(claims(), json!({"aud": "http://elsewhere"}));
    assert_eq!(
        check(&v, &[("x-user-assertion", &rsa.sign(&other))]).await,
        Err(Refusal::WrongAudience)
    );
    // Another RSA key under the known kid: the signature does not verify.
    assert_eq!(
        check(
            &v,
            &[("x-user-assertion", &TestKey::rsa("rsa").sign(&claims()))]
        )
        .await,
        Err(Refusal::BadSignature)
    );
}

#[tokio::test]
async fn the_header_alg_must_be_the_one_its_key_is_for() {
    let (ec, rsa) = (TestKey::new("ec"), TestKey::rsa("rsa"));
    let v = verifier(&[&ec, &rsa]);
    // An RS256 token naming the EC key, and an ES256 one naming the RSA key.
    for (token, header, kid, key) in [
        (
            TestKey::rsa("ec").sign(&claims()),
            "RS256",
            "ec",
            Alg::Es256,
        ),
        (
            TestKey::new("rsa").sign(&claims()),
            "ES256",
            "rsa",
            Alg::Rs256,
        ),
    ] {
        let refusal = check(&v, &[("x-user-assertion", &token)])
            .await
            .unwrap_err();
        assert_eq!(
            refusal,
            Refusal::KeyMismatch {
                header,
                kid: kid.into(),
                key
            }
        );
        assert_eq!(refusal.reason(), "assertion_algorithm");
    }
    assert_eq!(
        Refusal::KeyMismatch {
            header: "RS256",
            kid: "ec".into(),
            key: Alg::Es256
        }
        .to_string(),
        "Identity assertion algorithm RS256 does not match its key (kid ec), which is an EC \
         P-256 key for ES256"
    );
    assert_eq!(
        Refusal::KeyMismatch {
            header: "ES256",
            kid: "rsa".into(),
            key: Alg::Rs256
        }
        .to_string(),
        "Identity assertion algorithm ES256 does not match its key (kid rsa), which is an RSA \
         key for RS256"
    );
    // HMAC (which would take a public key as its secret): refused by name.
    let hs = handmade(json!({"alg": "HS256", "kid": "rsa"}), &claims(), "c2ln");
    assert_eq!(
        check(&v, &[("x-user-assertion", &hs)]).await,
        Err(Refusal::Algorithm("HS256".into()))
    );
    let none = handmade(json!({"alg": "none", "kid": "rsa"}), &claims(), "");
    assert_eq!(
        check(&v, &[("x-user-assertion", &none)]).await,
        Err(Refusal::Algorithm("none".into()))
    );
}
