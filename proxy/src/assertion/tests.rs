//! The assertion verified the way a backend would: with `jsonwebtoken` and
//! the key from the gateway's own JWKS document.

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use super::key::{PublicKey, Unusable, ec_thumbprint, parse_jwk, parse_pem, rsa_thumbprint};
use super::*;
use crate::identity::{Identity, PrincipalKind};

/// A fixed instant in the past.
const NOW: u64 = 1_700_000_000;

fn settings(key: KeySource) -> AssertionSettings {
    AssertionSettings {
        issuer: "https://gateway.example".into(),
        default_audience: "http://backend:8081".into(),
        lifetime_seconds: 300,
        algorithm: Algorithm::Es256,
        key,
        next_key: None,
    }
}

fn signer() -> Signer {
    Signer::new(settings(KeySource::Generated { dir: None })).unwrap()
}

fn caller(exp: u64) -> Arc<Authenticated> {
    Arc::new(Authenticated::new(Identity {
        object_id: "oid-alice".into(),
        tenant_id: "tid-contoso".into(),
        kind: PrincipalKind::User,
        roles: vec!["Admin".into(), "User".into()],
        scopes: vec!["access_as_user".into(), "read".into()],
        name: Some("Zoë O'Neil".into()),
        email: Some("alice@contoso.dev".into()),
        app_id: Some("client-app".into()),
        guest: false,
        audiences: Vec::new(),
        default_audience: true,
        auth_contexts: Vec::new(),
        handles_claims_challenges: false,
        groups: Vec::new(),
        groups_overage: false,
        expires_at: exp,
    }))
}

/// Verifies like a backend: key from the JWKS by `kid`, ES256 only, `iss`,
/// `aud` and `exp` checked against the real clock, no leeway.
fn verify(signer: &Signer, jws: &str, aud: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    verify_with(signer, jws, aud, Algorithm::Es256)
}

/// [`verify`] with `alg` the one algorithm accepted.
fn verify_with(
    signer: &Signer,
    jws: &str,
    aud: &str,
    alg: Algorithm,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let jwks: JwkSet = serde_json::from_slice(&signer.jwks()).unwrap();
    let header = jsonwebtoken::decode_header(jws)?;
    // An unknown kid is refused like a bad signature.
    let Some(jwk) = header.kid.as_deref().and_then(|kid| jwks.find(kid)) else {
        return Err(jsonwebtoken::errors::ErrorKind::InvalidSignature.into());
    };
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(match alg {
        Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
    });
    validation.set_issuer(&["https://gateway.example"]);
    validation.set_audience(&[aud]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Value>(jws, &key, &validation).map(|d| d.claims)
}

fn payload(jws: &str) -> Value {
    let part = jws.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(part).unwrap()).unwrap()
}

#[test]
fn assertion_verifies_against_the_jwks_with_every_claim() {
    let signer = signer();
    let alice = caller(now() + 3600);
    let jws = signer.assertion(&alice, "todos-write", "todo").unwrap();
    let jws = jws.to_str().unwrap();
    let claims = verify(&signer, jws, "todo").unwrap();
    assert_eq!(claims["iss"], "https://gateway.example");
    assert_eq!(claims["aud"], "todo");
    assert_eq!(claims["oid"], "oid-alice");
    assert_eq!(claims["tid"], "tid-contoso");
    assert_eq!(claims["roles"], serde_json::json!(["Admin", "User"]));
    assert_eq!(claims["scp"], "access_as_user read");
    assert_eq!(claims["name"], "Zoë O'Neil");
    assert_eq!(claims["preferred_username"], "alice@contoso.dev");
    assert_eq!(claims["idtyp"], "user");
    assert_eq!(claims["azp"], "client-app");
    assert_eq!(claims["route"], "todos-write");
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 300);
    assert!(iat.abs_diff(now()) <= 5);
    assert_eq!(
        B64.decode(claims["jti"].as_str().unwrap()).unwrap().len(),
        16
    );
}

#[test]
fn header_names_es256_and_the_jwks_kid() {
    let signer = signer();
    let jws = signer.assertion(&caller(now() + 3600), "r", "a").unwrap();
    let header = jsonwebtoken::decode_header(jws.to_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid, Some(signer.kid()));
    let jwks: Value = serde_json::from_slice(&signer.jwks()).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    for (field, value) in [
        ("kty", "EC"),
        ("crv", "P-256"),
        ("use", "sig"),
        ("alg", "ES256"),
    ] {
        assert_eq!(key[field], value, "{field}");
    }
    assert_eq!(key["kid"], signer.kid());
    // RFC 7638 thumbprint of the same key.
    let x = key["x"].as_str().unwrap();
    let y = key["y"].as_str().unwrap();
    assert_eq!(signer.kid(), ec_thumbprint(x, y));
    assert_eq!(B64.decode(x).unwrap().len(), 32);
}

#[test]
fn another_audience_another_issuer_or_an_expired_assertion_fails_verification() {
    let signer = signer();
    let alice = caller(u64::MAX);
    let jws = signer.assertion(&alice, "r", "todo").unwrap();
    let jws = jws.to_str().unwrap();
    assert!(verify(&signer, jws, "billing").is_err());
    let mut other_issuer = settings(KeySource::Generated { dir: None });
    other_issuer.issuer = "https://elsewhere.example".into();
    let other = Signer::new(other_issuer).unwrap();
    let foreign = other.assertion(&alice, "r", "todo").unwrap();
    // Another key (another kid), and another issuer.
    assert!(verify(&signer, foreign.to_str().unwrap(), "todo").is_err());
    // Another key under this gateway's kid: the signature fails.
    let (_, rest) = foreign.to_str().unwrap().split_once('.').unwrap();
    let forged = format!("{}{rest}", signer.ring().header_prefix);
    let err = verify(&signer, &forged, "todo").unwrap_err();
    assert_eq!(
        err.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidSignature
    );
    let old = signer.assertion_at(&alice, "r2", "todo", NOW).unwrap();
    let err = verify(&signer, old.to_str().unwrap(), "todo").unwrap_err();
    assert_eq!(
        err.kind(),
        &jsonwebtoken::errors::ErrorKind::ExpiredSignature
    );
}

#[test]
fn an_assertion_never_outlives_its_token() {
    let signer = signer();
    let soon = caller(NOW + 42);
    let jws = signer.assertion_at(&soon, "r", "a", NOW).unwrap();
    let claims = payload(jws.to_str().unwrap());
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["exp"], NOW + 42);
}

#[test]
fn a_cached_token_signs_once_per_route_and_upstream_until_near_exp() {
    let signer = signer();
    let alice = caller(u64::MAX);
    let first = signer.assertion_at(&alice, "r", "todo", NOW).unwrap();
    assert_eq!(signer.signatures(), 1);
    // The same cached caller (the same `Arc`), many requests: no signing.
    for second in 1..240 {
        let again = signer
            .assertion_at(&alice, "r", "todo", NOW + second)
            .unwrap();
        assert_eq!(again, first);
    }
    assert_eq!(signer.signatures(), 1);
    // Another upstream or route is another assertion.
    signer.assertion_at(&alice, "r", "billing", NOW).unwrap();
    signer.assertion_at(&alice, "other", "todo", NOW).unwrap();
    assert_eq!(signer.signatures(), 3);
    // A fifth of the lifetime before exp, it is signed again.
    let renewed = signer.assertion_at(&alice, "r", "todo", NOW + 240).unwrap();
    assert_ne!(renewed, first);
    assert_eq!(signer.signatures(), 4);
    // The same claims in another `Arc` (another token) sign their own.
    let twin = Arc::new((*alice).clone());
    signer.assertion_at(&twin, "r", "todo", NOW + 241).unwrap();
    assert_eq!(signer.signatures(), 5);
}

#[test]
fn without_the_token_cache_nothing_is_kept_for_reuse() {
    let signer = signer().without_reuse();
    let alice = caller(u64::MAX);
    let first = signer.assertion_at(&alice, "r", "todo", NOW).unwrap();
    let second = signer.assertion_at(&alice, "r", "todo", NOW).unwrap();
    assert_ne!(first, second, "each request signs its own");
    assert_eq!(signer.signatures(), 2);
    assert_eq!(signer.cache.lock().unwrap().entries, 0);
}

#[test]
fn a_generated_key_is_persisted_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let source = KeySource::Generated {
        dir: Some(dir.path().join("keys")),
    };
    let first = Signer::new(settings(source.clone())).unwrap();
    let path = dir.path().join("keys").join(GENERATED_KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let second = Signer::new(settings(source)).unwrap();
    assert_eq!(first.kid(), second.kid());
    // The same file given as --assertion-key is the same key.
    let from_file = Signer::new(settings(KeySource::File(path))).unwrap();
    assert_eq!(from_file.kid(), first.kid());
}

#[test]
fn a_key_file_that_is_not_a_p256_key_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.pem");
    std::fs::write(
        &path,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = Signer::new(settings(KeySource::File(path.clone()))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not a P-256 or RSA private key in PEM (PKCS#8 `PRIVATE KEY`, `EC PRIVATE KEY` \
             or `RSA PRIVATE KEY`); --assertion-algorithm ES256 needs a P-256 (EC) key",
            path.display()
        )
    );
    // A P-384 key is neither.
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    std::fs::write(&path, p384.serialize_pem()).unwrap();
    let err = Signer::new(rs256(KeySource::File(path.clone()))).unwrap_err();
    assert!(matches!(err, KeyError::Parse { .. }), "{err}");
    let missing = Signer::new(settings(KeySource::File(dir.path().join("none.pem")))).unwrap_err();
    assert!(matches!(missing, KeyError::Read { .. }));
}

#[test]
fn a_pkcs8_key_written_by_another_tool_is_accepted() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let pkcs8 = key.serialize_pem();
    assert!(matches!(parse_pem(&pkcs8), Ok(SigningKey::Ec(_))));
}

#[test]
fn the_reuse_cache_stays_bounded() {
    let signer = signer();
    let callers: Vec<_> = (0..=CACHE_SIZE).map(|_| caller(u64::MAX)).collect();
    for c in &callers {
        signer.assertion_at(c, "r", "a", NOW).unwrap();
    }
    let cache = signer.cache.lock().unwrap();
    let kept: usize = cache.by_caller.values().map(Vec::len).sum();
    assert_eq!(kept, cache.entries, "the running count is the count");
    assert!(kept <= CACHE_SIZE, "{kept}");
    drop(cache);
    // Entries of dropped callers never keep it over the bound either.
    drop(callers);
    signer
        .assertion_at(&caller(u64::MAX), "r", "a", NOW)
        .unwrap();
    let cache = signer.cache.lock().unwrap();
    let kept: usize = cache.by_caller.values().map(Vec::len).sum();
    assert_eq!(kept, cache.entries, "the running count is the count");
    assert!(kept <= CACHE_SIZE, "{kept}");
    drop(cache);
}

fn write_key(path: &Path) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    // Written the way a Secret update lands: a new file renamed over the old.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, key.serialize_pem()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
    PublicKey::of(&parse_pem(&key.serialize_pem()).unwrap()).kid
}

fn kids(jwks: &Bytes) -> Vec<String> {
    let jwks: Value = serde_json::from_slice(jwks).unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_rotation_publishes_the_next_key_first_and_the_old_one_until_its_last_assertion_expires() {
    let dir = tempfile::tempdir().unwrap();
    let (key_path, next_path) = (dir.path().join("key.pem"), dir.path().join("next.pem"));
    let k1 = write_key(&key_path);
    let k2 = write_key(&next_path);
    let signer = Signer::new(AssertionSettings {
        next_key: Some(next_path.clone()),
        ..settings(KeySource::File(key_path.clone()))
    })
    .unwrap();
    // Published before it signs.
    assert_eq!(signer.kid(), k1);
    assert_eq!(kids(&signer.jwks_at(NOW)), [k1.clone(), k2.clone()]);
    assert_eq!(signer.reload_keys_at(NOW), KeyReload::Unchanged);
    let alice = caller(u64::MAX);
    let old = signer.assertion_at(&alice, "r", "todo", NOW).unwrap();
    let old = old.to_str().unwrap().to_owned();
    assert_eq!(
        jsonwebtoken::decode_header(&old).unwrap().kid,
        Some(k1.clone())
    );

    // The next key becomes the signing key, and a third one is next.
    std::fs::copy(&next_path, &key_path).unwrap();
    let k3 = write_key(&next_path);
    assert_eq!(
        signer.reload_keys_at(NOW + 10),
        KeyReload::Rotated {
            from: k1.clone(),
            to: k2.clone(),
            until: NOW + 10 + 300
        }
    );
    // The cached assertion is not reused: the new key signs.
    let new = signer.assertion_at(&alice, "r", "todo", NOW + 11).unwrap();
    let new = new.to_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(new).unwrap().kid,
        Some(k2.clone())
    );
    assert_eq!(
        signer.published_kids(),
        [k2.clone(), k3.clone(), k1.clone()]
    );
    // The old assertion still verifies against the JWKS (real clock: the
    // old key is retired relative to NOW, long past, so check by kid).
    assert_eq!(
        kids(&signer.ring().jwks),
        [k2.clone(), k3.clone(), k1.clone()]
    );
    // Until its last assertion expires; then it is no longer published.
    assert_eq!(
        kids(&signer.jwks_at(NOW + 309)),
        [k2.clone(), k3.clone(), k1.clone()]
    );
    assert_eq!(kids(&signer.jwks_at(NOW + 310)), [k2.clone(), k3.clone()]);
    assert_eq!(signer.kid(), k2);
}

#[test]
fn a_broken_key_file_keeps_the_keys_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("key.pem");
    let k1 = write_key(&key_path);
    let signer = Signer::new(settings(KeySource::File(key_path.clone()))).unwrap();
    std::fs::write(&key_path, "not a key").unwrap();
    let KeyReload::Refused(why) = signer.reload_keys_at(NOW) else {
        panic!("a broken file was taken");
    };
    assert!(why.contains("key.pem"), "{why}");
    assert_eq!(signer.kid(), k1);
    assert!(
        signer
            .assertion_at(&caller(u64::MAX), "r", "a", NOW)
            .is_some()
    );
    // Mended: the new key is taken at the next reload.
    let k2 = write_key(&key_path);
    assert!(matches!(
        signer.reload_keys_at(NOW),
        KeyReload::Rotated { .. }
    ));
    assert_eq!(signer.kid(), k2);
}

#[test]
fn a_key_generated_in_memory_is_kept_on_reload() {
    let signer = signer();
    let kid = signer.kid();
    assert_eq!(signer.reload_keys_at(NOW), KeyReload::Unchanged);
    assert_eq!(signer.kid(), kid);
}

/// Test-only RSA keys written by `openssl genrsa -traditional` (PKCS#1)
/// and `openssl pkcs8 -topk8` (PKCS#8): the 1024-bit ones must be refused.
const RSA_2048_PKCS1: &str = include_str!("testdata/rsa-2048-pkcs1.pem");
const RSA_1024_PKCS1: &str = include_str!("testdata/rsa-1024-pkcs1.pem");
const RSA_1024_PKCS8: &str = include_str!("testdata/rsa-1024-pkcs8.pem");

fn rs256(key: KeySource) -> AssertionSettings {
    AssertionSettings {
        algorithm: Algorithm::Rs256,
        ..settings(key)
    }
}

/// A new RSA-2048 key written to `path` as PKCS#8 PEM, and its kid.
fn write_rsa_key(path: &Path) -> String {
    let (key, document) = key::generate(Algorithm::Rs256).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, key::to_pem(&document)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
    PublicKey::of(&key).kid
}

#[test]
fn rs256_signs_with_a_generated_rsa_2048_key_that_verifies_against_the_published_jwk() {
    let signer = Signer::new(rs256(KeySource::Generated { dir: None })).unwrap();
    assert_eq!(signer.algorithm(), Algorithm::Rs256);
    let alice = caller(now() + 3600);
    let jws = signer.assertion(&alice, "todos-write", "todo").unwrap();
    let jws = jws.to_str().unwrap();
    let header = jsonwebtoken::decode_header(jws).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.kid, Some(signer.kid()));
    let claims = verify_with(&signer, jws, "todo", Algorithm::Rs256).unwrap();
    assert_eq!(claims["oid"], "oid-alice");
    assert_eq!(claims["route"], "todos-write");
    // An ES256-only verifier refuses it.
    assert!(verify(&signer, jws, "todo").is_err());

    let jwks: Value = serde_json::from_slice(&signer.jwks()).unwrap();
    let key = &jwks["keys"][0];
    let mut members: Vec<_> = key.as_object().unwrap().keys().cloned().collect();
    members.sort();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    for (field, value) in [("kty", "RSA"), ("use", "sig"), ("alg", "RS256")] {
        assert_eq!(key[field], value, "{field}");
    }
    let (n, e) = (key["n"].as_str().unwrap(), key["e"].as_str().unwrap());
    assert_eq!(e, "AQAB", "65537");
    let modulus = B64.decode(n).unwrap();
    assert_eq!(modulus.len(), 256, "2048 bits, no leading zero byte");
    assert_ne!(modulus[0], 0);
    assert!(!n.contains('='), "base64url without padding");
    // RFC 7638 thumbprint over e, kty, n.
    assert_eq!(signer.kid(), rsa_thumbprint(n, e));
    assert_eq!(key["kid"], signer.kid());
    // The signature is as long as the modulus.
    let signature = B64.decode(jws.rsplit('.').next().unwrap()).unwrap();
    assert_eq!(signature.len(), 256);
}

#[test]
fn rs256_reuses_a_cached_assertion_like_es256() {
    let signer = Signer::new(rs256(KeySource::Generated { dir: None })).unwrap();
    let alice = caller(u64::MAX);
    let first = signer.assertion_at(&alice, "r", "todo", NOW).unwrap();
    for second in 1..240 {
        let again = signer
            .assertion_at(&alice, "r", "todo", NOW + second)
            .unwrap();
        assert_eq!(again, first);
    }
    assert_eq!(signer.signatures(), 1);
    let renewed = signer.assertion_at(&alice, "r", "todo", NOW + 240).unwrap();
    assert_ne!(renewed, first);
    assert_eq!(signer.signatures(), 2);
}

#[test]
fn rs256_persists_its_generated_key_beside_the_es256_one() {
    let dir = tempfile::tempdir().unwrap();
    let source = KeySource::Generated {
        dir: Some(dir.path().to_owned()),
    };
    let ec = Signer::new(settings(source.clone())).unwrap();
    // Switching the algorithm finds no key of the other kind: its own file.
    let rsa = Signer::new(rs256(source.clone())).unwrap();
    assert!(dir.path().join(GENERATED_KEY_FILE).exists());
    let path = dir.path().join(GENERATED_RSA_KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_ne!(ec.kid(), rsa.kid());
    let again = Signer::new(rs256(source)).unwrap();
    assert_eq!(again.kid(), rsa.kid());
    let from_file = Signer::new(rs256(KeySource::File(path))).unwrap();
    assert_eq!(from_file.kid(), rsa.kid());
}

#[test]
fn an_rsa_key_in_pkcs1_pem_is_accepted_for_rs256() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rsa.pem");
    std::fs::write(&path, RSA_2048_PKCS1).unwrap();
    let signer = Signer::new(rs256(KeySource::File(path))).unwrap();
    let jws = signer
        .assertion(&caller(now() + 3600), "r", "todo")
        .unwrap();
    verify_with(&signer, jws.to_str().unwrap(), "todo", Algorithm::Rs256).unwrap();
    // An RSA key written by another tool as PKCS#8 too.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    assert!(matches!(
        parse_pem(&key.serialize_pem()),
        Ok(SigningKey::Rsa(_))
    ));
}

#[test]
fn a_key_of_the_wrong_kind_is_an_error_naming_the_file_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let (ec, rsa) = (dir.path().join("ec.pem"), dir.path().join("rsa.pem"));
    write_key(&ec);
    std::fs::write(&rsa, RSA_2048_PKCS1).unwrap();
    let err = Signer::new(rs256(KeySource::File(ec.clone()))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: a P-256 (EC) key, but --assertion-algorithm RS256 needs an RSA key of at \
             least 2048 bits",
            ec.display()
        )
    );
    let err = Signer::new(settings(KeySource::File(rsa.clone()))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: an RSA key, but --assertion-algorithm ES256 needs a P-256 (EC) key",
            rsa.display()
        )
    );
    // The next key too.
    let err = Signer::new(AssertionSettings {
        next_key: Some(ec.clone()),
        ..rs256(KeySource::File(rsa.clone()))
    })
    .unwrap_err();
    assert!(
        matches!(err, KeyError::WrongKind { ref path, .. } if *path == ec),
        "{err}"
    );
}

#[test]
fn an_rsa_key_shorter_than_2048_bits_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, pem) in [("pkcs1.pem", RSA_1024_PKCS1), ("pkcs8.pem", RSA_1024_PKCS8)] {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        let err = Signer::new(rs256(KeySource::File(path.clone()))).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: the RSA key is shorter than 2048 bits; --assertion-algorithm RS256 needs \
                 2048 to 8192 bits",
                path.display()
            )
        );
        // Under ES256 it is simply the wrong kind.
        let err = Signer::new(settings(KeySource::File(path))).unwrap_err();
        assert!(matches!(err, KeyError::WrongKind { .. }), "{err}");
    }
}

#[test]
fn rs256_rotates_with_overlap_and_a_wrong_kind_key_on_reload_keeps_the_keys_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let (key_path, next_path) = (dir.path().join("key.pem"), dir.path().join("next.pem"));
    let k1 = write_rsa_key(&key_path);
    let k2 = write_rsa_key(&next_path);
    let signer = Signer::new(AssertionSettings {
        next_key: Some(next_path.clone()),
        ..rs256(KeySource::File(key_path.clone()))
    })
    .unwrap();
    assert_eq!(kids(&signer.jwks_at(NOW)), [k1.clone(), k2.clone()]);
    let alice = caller(u64::MAX);
    signer.assertion_at(&alice, "r", "todo", NOW).unwrap();

    // An EC key put in the signing key's file is refused; RS256 goes on.
    write_key(&key_path);
    let KeyReload::Refused(why) = signer.reload_keys_at(NOW + 5) else {
        panic!("a key of the wrong kind was taken");
    };
    assert!(why.contains("key.pem") && why.contains("RS256"), "{why}");
    assert_eq!(signer.kid(), k1);

    // The next key becomes the signing key: the old one stays published.
    std::fs::copy(&next_path, &key_path).unwrap();
    std::fs::remove_file(&next_path).unwrap();
    let k3 = write_rsa_key(&next_path);
    assert_eq!(
        signer.reload_keys_at(NOW + 10),
        KeyReload::Rotated {
            from: k1.clone(),
            to: k2.clone(),
            until: NOW + 10 + 300
        }
    );
    let new = signer.assertion_at(&alice, "r", "todo", NOW + 11).unwrap();
    let header = jsonwebtoken::decode_header(new.to_str().unwrap()).unwrap();
    assert_eq!(header.kid, Some(k2.clone()));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        kids(&signer.jwks_at(NOW + 309)),
        [k2.clone(), k3.clone(), k1]
    );
    assert_eq!(kids(&signer.jwks_at(NOW + 310)), [k2, k3]);
}

/// A key file may hold a private JWK instead of PEM (fixtures: the same RSA
/// key as `rsa-2048-pkcs1.pem`, and a P-256 key with its PEM, converted
/// with openssl): the key read is the PEM's, and it signs assertions that
/// verify against the published JWKS.
#[test]
fn a_private_jwk_is_read_as_the_same_key_as_its_pem() {
    let pairs = [
        (
            include_str!("testdata/ec-p256.jwk.json"),
            include_str!("testdata/ec-p256.pem"),
        ),
        (include_str!("testdata/rsa-2048.jwk.json"), RSA_2048_PKCS1),
    ];
    for (jwk, pem) in pairs {
        let from_jwk = PublicKey::of(&parse_jwk(jwk).expect("a JWK key"));
        let from_pem = PublicKey::of(&parse_pem(pem).expect("a PEM key"));
        assert_eq!(from_jwk.kid, from_pem.kid);
        assert_eq!(from_jwk.jwk, from_pem.jwk);
    }
    let dir = tempfile::tempdir().unwrap();
    let (ec, rsa) = (dir.path().join("ec.json"), dir.path().join("rsa.json"));
    std::fs::write(&ec, pairs[0].0).unwrap();
    std::fs::write(&rsa, pairs[1].0).unwrap();
    for (settings, algorithm) in [
        (settings(KeySource::File(ec)), Algorithm::Es256),
        (rs256(KeySource::File(rsa)), Algorithm::Rs256),
    ] {
        let signer = Signer::new(settings).unwrap();
        let jws = signer
            .assertion(&caller(now() + 3600), "r", "todo")
            .unwrap();
        verify_with(&signer, jws.to_str().unwrap(), "todo", algorithm).unwrap();
    }
}

#[test]
fn a_public_or_incomplete_jwk_is_no_key() {
    let ec: Value = serde_json::from_str(include_str!("testdata/ec-p256.jwk.json")).unwrap();
    let rsa: Value = serde_json::from_str(include_str!("testdata/rsa-2048.jwk.json")).unwrap();
    let without = |jwk: &Value, member: &str| {
        let mut jwk = jwk.clone();
        jwk.as_object_mut().unwrap().remove(member);
        jwk.to_string()
    };
    for text in [
        without(&ec, "d"),
        without(&ec, "crv"),
        without(&rsa, "d"),
        without(&rsa, "qi"),
        r#"{"kty": "oct", "k": "c2VjcmV0"}"#.to_owned(),
        "[]".to_owned(),
    ] {
        assert!(matches!(parse_jwk(&text), Err(Unusable::NotAKey)), "{text}");
    }
    // The EC key's d with another point is refused, not a key that signs
    // for someone else's public key.
    let mut wrong = ec.clone();
    wrong["x"] = rsa["e"].clone();
    assert!(parse_jwk(&wrong.to_string()).is_err());
}
