//! Token validation end to end through `Authenticator::authenticate`: real
//! RSA keys, tokens signed with jsonwebtoken, keys served by a test IdP.

use crate::auth_common;

use std::sync::Arc;

use auth_common::*;
use authz_proxy::auth::{AllowedTenants, AuthError, AuthSettings, Authenticator, TenantMode};
use authz_proxy::identity::PrincipalKind;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

struct Fixture {
    idp: TestIdp,
    key: TestKey,
    auth: Arc<Authenticator>,
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

async fn fixture_with(tweak: impl FnOnce(&mut AuthSettings)) -> Fixture {
    let key = TestKey::generate("key-1");
    let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
    let mut settings = idp.settings();
    tweak(&mut settings);
    let auth = loaded(settings).await;
    Fixture { idp, key, auth }
}

impl Fixture {
    fn v2(&self) -> Value {
        v2_claims(&self.idp.instance(), TENANT)
    }

    async fn check(&self, token: &str) -> Result<authz_proxy::identity::Identity, AuthError> {
        let authenticated = self.auth.authenticate(&bearer(token)).await?;
        Ok(authenticated.identity.clone())
    }

    /// The rejection reason for these claims signed with the real key.
    async fn reason(&self, claims: &Value) -> &'static str {
        match self.check(&self.key.sign(claims)).await {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        }
    }
}

fn with(mut claims: Value, patch: Value) -> Value {
    let o = claims.as_object_mut().unwrap();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            o.remove(k);
        } else {
            o.insert(k.clone(), v.clone());
        }
    }
    claims
}

/// Signs `claims` with any header the test wants (for header attacks).
fn sign_with_header(header: &Value, claims: &Value, signer: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{h}.{p}");
    let sig = URL_SAFE_NO_PAD.encode(signer(input.as_bytes()));
    format!("{input}.{sig}")
}

fn rs256(key: &TestKey) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
    |msg| {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0; key.pair.public_modulus_len()];
        key.pair
            .sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
            .unwrap();
        sig
    }
}

#[tokio::test]
async fn valid_v2_user_token_gives_identity() {
    let f = fixture().await;
    // One set of claims: `v2()` reads the clock, and `exp` is compared below.
    let claims = f.v2();
    let id = f.check(&f.key.sign(&claims)).await.unwrap();
    assert_eq!(id.object_id, "00000000-0000-0000-0000-0000000000aa");
    assert_eq!(id.tenant_id, TENANT);
    assert_eq!(id.kind, PrincipalKind::User);
    assert_eq!(id.scopes, ["access_as_user"]);
    assert!(id.roles.is_empty(), "groups and wids grant nothing");
    assert_eq!(id.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(id.email.as_deref(), Some("ada@contoso.example"));
    assert_eq!(
        id.app_id.as_deref(),
        Some("c1f0b6d2-0000-4000-8000-000000000001")
    );
    assert_eq!(id.expires_at, claims["exp"].as_u64().unwrap());
}

#[tokio::test]
async fn valid_v1_token_gives_identity() {
    let f = fixture().await;
    let id = f.check(&f.key.sign(&v1_claims(TENANT))).await.unwrap();
    assert_eq!(id.object_id, "00000000-0000-0000-0000-0000000000bb");
    assert_eq!(id.kind, PrincipalKind::User);
    assert_eq!(id.scopes, ["access_as_user", "Tasks.Read"]);
    assert_eq!(id.roles, ["Admin"]);
    assert_eq!(
        id.email.as_deref(),
        Some("grace@contoso.example"),
        "upn before unique_name"
    );
    assert_eq!(
        id.app_id.as_deref(),
        Some("c1f0b6d2-0000-4000-8000-000000000002")
    );
}

#[tokio::test]
async fn app_only_token_is_an_app_with_roles_and_no_scopes() {
    let f = fixture().await;
    let claims = app_claims(&f.idp.instance(), TENANT);
    let id = f.check(&f.key.sign(&claims)).await.unwrap();
    assert_eq!(id.kind, PrincipalKind::App);
    assert_eq!(id.roles, ["Tasks.Read.All"]);
    assert!(id.scopes.is_empty());
    assert_eq!(id.email, None);

    let without_idtyp = with(claims, json!({"idtyp": null}));
    let id = f.check(&f.key.sign(&without_idtyp)).await.unwrap();
    assert_eq!(id.kind, PrincipalKind::App, "no scp means app-only");
}

#[tokio::test]
async fn each_claim_rejection_has_its_reason() {
    let f = fixture().await;
    let now = now();
    let instance = f.idp.instance();
    let cases = [
        ("expired", json!({"exp": now - 3600})),
        ("not_yet_valid", json!({"nbf": now + 3600})),
        ("ok", json!({"exp": now - 30})),
        ("wrong_audience", json!({"aud": "api://someone-else"})),
        (
            "wrong_audience",
            json!({"aud": "00000003-0000-0000-c000-000000000000"}),
        ),
        (
            "wrong_issuer",
            json!({"iss": format!("https://evil.example/{TENANT}/v2.0")}),
        ),
        (
            "wrong_issuer",
            json!({"iss": format!("{instance}/{OTHER_TENANT}/v2.0")}),
        ),
        ("wrong_issuer", json!({"iss": format!("{STS}/{TENANT}")})),
        (
            "wrong_tenant",
            json!({"tid": OTHER_TENANT, "iss": format!("{instance}/{OTHER_TENANT}/v2.0")}),
        ),
        (
            "wrong_tenant",
            json!({"tid": OTHER_TENANT, "iss": format!("{STS}/{OTHER_TENANT}/")}),
        ),
        ("missing_claim", json!({"aud": null})),
        ("missing_claim", json!({"iss": null})),
        ("missing_claim", json!({"exp": null})),
        ("missing_claim", json!({"tid": null})),
        ("missing_claim", json!({"oid": null})),
        ("invalid_claim", json!({"roles": "Admin"})),
        ("invalid_claim", json!({"scp": ["access_as_user"]})),
        ("invalid_claim", json!({"exp": (now + 3600).to_string()})),
        ("invalid_claim", json!({"nbf": "yesterday"})),
        ("no_permissions", json!({"scp": null})),
        ("no_permissions", json!({"scp": null, "roles": []})),
        (
            "no_permissions",
            json!({"scp": null, "scope": "access_as_user", "groups": ["Admin"]}),
        ),
    ];
    for (expected, patch) in cases {
        let claims = with(f.v2(), patch.clone());
        assert_eq!(f.reason(&claims).await, expected, "{patch}");
    }
}

#[tokio::test]
async fn another_tenants_admin_token_is_wrong_tenant() {
    let f = fixture().await;
    let claims = with(
        v1_claims(OTHER_TENANT),
        json!({"roles": ["Admin"], "idtyp": "app", "scp": null}),
    );
    let err = f.check(&f.key.sign(&claims)).await.unwrap_err();
    assert_eq!(err.reason(), "wrong_tenant");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(err.www_authenticate_error(), Some("invalid_token"));
    assert!(err.description().contains("tenant"));
}

#[tokio::test]
async fn multi_tenant_allow_list_decides_after_the_issuer_check() {
    let third = "3a4b5c6d-0000-4000-8000-00000000abcd";
    let f = fixture_with(|s| {
        s.tenant = TenantMode::Multi {
            allowed: AllowedTenants::List(vec![TENANT.into(), OTHER_TENANT.to_uppercase()]),
        };
        s.metadata_url = s.metadata_url.replace(TENANT, "organizations");
    })
    .await;
    let instance = f.idp.instance();
    let token_for = |tid: &str| f.key.sign(&v2_claims(&instance, tid));
    assert_eq!(f.check(&token_for(TENANT)).await.unwrap().tenant_id, TENANT);
    assert_eq!(
        f.check(&token_for(OTHER_TENANT)).await.unwrap().tenant_id,
        OTHER_TENANT
    );
    assert_eq!(
        f.check(&token_for(third)).await.unwrap_err().reason(),
        "wrong_tenant"
    );
    // tid and iss must agree even when both tenants are allowed.
    let mismatched = with(v2_claims(&instance, TENANT), json!({"tid": OTHER_TENANT}));
    assert_eq!(f.reason(&mismatched).await, "wrong_issuer");

    let any = fixture_with(|s| {
        s.tenant = TenantMode::Multi {
            allowed: AllowedTenants::Any,
        };
        s.metadata_url = s.metadata_url.replace(TENANT, "organizations");
    })
    .await;
    let token = any.key.sign(&v2_claims(&any.idp.instance(), third));
    assert_eq!(any.check(&token).await.unwrap().tenant_id, third);
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let f = fixture().await;
    let header = json!({"alg": "none", "typ": "JWT", "kid": f.key.kid});
    let unsigned = sign_with_header(&header, &f.v2(), |_| Vec::new());
    assert_eq!(
        f.check(&unsigned).await.unwrap_err().reason(),
        "disallowed_algorithm"
    );
    let with_sig = sign_with_header(&header, &f.v2(), rs256(&f.key));
    assert_eq!(
        f.check(&with_sig).await.unwrap_err().reason(),
        "disallowed_algorithm"
    );
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let f = fixture().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(f.key.kid.clone());
    for secret in [
        f.key.public_pem().into_bytes(),
        f.key.jwk()["n"].to_string().into_bytes(),
    ] {
        let token =
            jsonwebtoken::encode(&header, &f.v2(), &EncodingKey::from_secret(&secret)).unwrap();
        let err = f.check(&token).await.unwrap_err();
        assert_eq!(err.reason(), "disallowed_algorithm");
    }
    // And HMAC cannot even be configured.
    let mut settings = f.idp.settings();
    settings.algorithms = vec![Algorithm::RS256, Algorithm::HS256];
    assert!(Authenticator::new(settings).is_err());
}

#[tokio::test]
async fn only_allowed_rsa_algorithms_are_accepted() {
    let f = fixture().await;
    let ps256 = |msg: &[u8]| {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0; f.key.pair.public_modulus_len()];
        f.key
            .pair
            .sign(&aws_lc_rs::signature::RSA_PSS_SHA256, &rng, msg, &mut sig)
            .unwrap();
        sig
    };
    let token = sign_with_header(&json!({"alg": "PS256", "kid": f.key.kid}), &f.v2(), ps256);
    assert_eq!(
        f.check(&token).await.unwrap_err().reason(),
        "disallowed_algorithm"
    );
}

#[tokio::test]
async fn keys_carried_in_the_token_are_never_used() {
    let f = fixture().await;
    let attacker = TestKey::generate("attacker");
    for (kid, extra) in [
        (f.key.kid.as_str(), json!({"jwk": attacker.jwk()})),
        (
            f.key.kid.as_str(),
            json!({"jku": "http://127.0.0.1:1/keys", "x5u": "http://127.0.0.1:1/cert"}),
        ),
        (
            f.key.kid.as_str(),
            json!({"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]}),
        ),
    ] {
        let mut header = with(json!({"alg": "RS256", "typ": "JWT", "kid": kid}), extra);
        header["kid"] = json!(kid);
        let token = sign_with_header(&header, &f.v2(), rs256(&attacker));
        assert_eq!(
            f.check(&token).await.unwrap_err().reason(),
            "bad_signature",
            "{header}"
        );
    }
    // Naming the attacker's own kid just makes it an unknown key.
    let token = sign_with_header(
        &json!({"alg": "RS256", "kid": "attacker", "jwk": attacker.jwk()}),
        &f.v2(),
        rs256(&attacker),
    );
    assert_eq!(f.check(&token).await.unwrap_err().reason(), "unknown_key");
    assert_eq!(f.auth.fetch_count(), 1, "no refresh task: no extra fetch");
}

#[tokio::test]
async fn tampered_token_has_a_bad_signature() {
    let f = fixture().await;
    let token = f.key.sign(&f.v2());
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(with(f.v2(), json!({"roles": ["Admin"]})).to_string());
    parts[1] = &forged;
    assert_eq!(
        f.check(&parts.join(".")).await.unwrap_err().reason(),
        "bad_signature"
    );

    // Flip one bit in the middle of the signature (not a padding bit).
    let mut sig_flipped = token.into_bytes();
    let i = sig_flipped.len() - 100;
    sig_flipped[i] = if sig_flipped[i] == b'A' { b'B' } else { b'A' };
    let sig_flipped = String::from_utf8(sig_flipped).unwrap();
    assert_eq!(
        f.check(&sig_flipped).await.unwrap_err().reason(),
        "bad_signature"
    );
}

#[tokio::test]
async fn kid_is_required() {
    let f = fixture().await;
    let token = sign_with_header(
        &json!({"alg": "RS256", "typ": "JWT"}),
        &f.v2(),
        rs256(&f.key),
    );
    assert_eq!(
        f.check(&token).await.unwrap_err().reason(),
        "malformed_token"
    );
}

#[tokio::test]
async fn only_one_bearer_authorization_header_counts() {
    let f = fixture().await;
    let token = f.key.sign(&f.v2());

    let err = f.auth.authenticate(&HeaderMap::new()).await.unwrap_err();
    assert_eq!(
        (err.reason(), err.status()),
        ("missing_token", StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        err.www_authenticate_error(),
        None,
        "RFC 6750 §3.1: no error code"
    );

    let mut empty = HeaderMap::new();
    empty.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_static("Bearer"),
    );
    let err = f.auth.authenticate(&empty).await.unwrap_err();
    assert_eq!(
        (err.reason(), err.status(), err.www_authenticate_error()),
        ("missing_token", StatusCode::UNAUTHORIZED, None),
        "`Bearer` with nothing after it is no token"
    );

    let mut basic = HeaderMap::new();
    basic.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_static("Basic dXNlcjpwYXNz"),
    );
    assert_eq!(
        f.auth.authenticate(&basic).await.unwrap_err().reason(),
        "missing_token"
    );

    let mut lower = HeaderMap::new();
    lower.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("bearer {token}")).unwrap(),
    );
    assert!(
        f.auth.authenticate(&lower).await.is_ok(),
        "scheme is case-insensitive"
    );

    let mut twice = bearer(&token);
    twice.append(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let err = f.auth.authenticate(&twice).await.unwrap_err();
    assert_eq!(
        (err.reason(), err.status()),
        ("invalid_request", StatusCode::BAD_REQUEST)
    );
    assert_eq!(err.www_authenticate_error(), Some("invalid_request"));

    let mut two_tokens = HeaderMap::new();
    two_tokens.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token} {token}")).unwrap(),
    );
    assert_eq!(
        f.auth.authenticate(&two_tokens).await.unwrap_err().status(),
        StatusCode::BAD_REQUEST
    );

    let err = f.check("not-a-jwt").await.unwrap_err();
    assert_eq!(
        (err.reason(), err.www_authenticate_error()),
        ("malformed_token", Some("invalid_token"))
    );
}

#[tokio::test]
async fn descriptions_never_echo_the_token_and_fit_a_quoted_string() {
    let f = fixture().await;
    let now = now();
    let tokens = [
        f.key.sign(&with(f.v2(), json!({"exp": now - 3600}))),
        f.key.sign(&with(f.v2(), json!({"aud": "\"quoted\\aud\""}))),
        f.key.sign(&with(f.v2(), json!({"scp": null}))),
        f.key.sign(&with(f.v2(), json!({"roles": "x\"y"}))),
        sign_with_header(&json!({"alg": "none\"\\", "kid": "k\"\\"}), &f.v2(), |_| {
            vec![1]
        }),
        sign_with_header(&json!({"alg": "RS256", "kid": "k\"\\"}), &f.v2(), |_| {
            vec![1]
        }),
        "a\"b".to_owned(),
    ];
    for token in tokens {
        let headers = {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
                h.insert(http::header::AUTHORIZATION, v);
            }
            h
        };
        let err = f.auth.authenticate(&headers).await.unwrap_err();
        let d = err.description();
        assert!(!d.is_empty());
        assert!(!d.contains('"') && !d.contains('\\'), "{d}");
        assert!(d.bytes().all(|b| (0x20..0x7f).contains(&b)), "{d}");
        for part in token.split('.').filter(|p| p.len() > 3) {
            assert!(!d.contains(part), "description echoes the token: {d}");
        }
    }
}

#[tokio::test]
async fn bad_settings_are_refused() {
    let idp = TestIdp::start(JwksMode::EmptySet).await;
    type Tweak = Box<dyn Fn(&mut AuthSettings)>;
    let cases: Vec<Tweak> = vec![
        Box::new(|s| s.audiences.clear()),
        Box::new(|s| s.audiences.push(" ".into())),
        Box::new(|s| s.algorithms.clear()),
        Box::new(|s| s.algorithms = vec![Algorithm::ES256]),
        Box::new(|s| s.tenant = TenantMode::Single("".into())),
        Box::new(|s| s.tenant = TenantMode::Single("a/b".into())),
        Box::new(|s| {
            s.tenant = TenantMode::Multi {
                allowed: AllowedTenants::List(vec![]),
            }
        }),
        Box::new(|s| s.metadata_url = "file:///etc/passwd".into()),
        Box::new(|s| s.instance = "login.microsoftonline.com".into()),
        Box::new(|s| s.refresh_interval = std::time::Duration::ZERO),
    ];
    for (i, tweak) in cases.iter().enumerate() {
        let mut s = idp.settings();
        tweak(&mut s);
        assert!(Authenticator::new(s).is_err(), "case {i}");
    }
    let mut trailing = idp.settings();
    trailing.instance.push('/');
    assert!(
        Authenticator::new(trailing).is_ok(),
        "a trailing slash on the instance is ignored"
    );
}

/// RFC 7515 §4 / RFC 7519 §7.2: header and claims are JSON objects. Read as
/// structs, arrays would pass field by field; correctly signed, they are
/// still refused.
#[tokio::test]
async fn a_header_or_claims_set_that_is_not_a_json_object_is_refused() {
    let f = fixture().await;
    let array_header = f
        .key
        .sign_with_header(&json!(["RS256", f.key.kid]), &f.v2());
    assert_eq!(
        f.check(&array_header).await.unwrap_err().reason(),
        "malformed_token"
    );
    let claims = f.v2();
    let o = claims.as_object().unwrap();
    let positional: Vec<Value> = ["iss", "aud", "exp", "nbf", "tid", "oid", "scp"]
        .iter()
        .map(|k| o[*k].clone())
        .collect();
    let array_claims = f.key.sign_with_header(
        &json!({"alg": "RS256", "typ": "JWT", "kid": f.key.kid}),
        &Value::Array(positional),
    );
    assert_eq!(
        f.check(&array_claims).await.unwrap_err().reason(),
        "malformed_token"
    );
    // The same claims as an object pass: only the shape was wrong.
    let object = f
        .key
        .sign_with_header(&json!({"alg": "RS256", "kid": f.key.kid}), &claims);
    assert!(f.check(&object).await.is_ok());
}

/// Microsoft Graph tokens carry a `nonce` in the JOSE header; only Graph
/// can verify them, and they are refused with their own reason, before any
/// key is used.
#[tokio::test]
async fn a_microsoft_graph_token_is_refused_as_graph_token() {
    let f = fixture().await;
    let graph = f.key.sign_with_header(
        &json!({"typ": "JWT", "nonce": "nXq7_2M5mXo", "alg": "RS256", "x5t": f.key.kid, "kid": f.key.kid}),
        &with(f.v2(), json!({"aud": "https://graph.microsoft.com"})),
    );
    let err = f.check(&graph).await.unwrap_err();
    assert_eq!(err.reason(), "graph_token");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(err.www_authenticate_error(), Some("invalid_token"));
    assert!(err.description().contains("Microsoft Graph"));
    // Even with this API's audience: the header alone decides.
    let ours = f.key.sign_with_header(
        &json!({"nonce": "n", "alg": "RS256", "kid": f.key.kid}),
        &f.v2(),
    );
    assert_eq!(f.check(&ours).await.unwrap_err().reason(), "graph_token");
}

/// Two tenant claims differing only in case (`tid` and `TID`) are refused:
/// another reader could take the other one for the tenant.
#[tokio::test]
async fn tenant_claims_differing_only_in_case_are_refused() {
    let f = fixture().await;
    for name in ["TID", "Tid", "tId"] {
        let claims = with(f.v2(), json!({ name: OTHER_TENANT }));
        assert_eq!(f.reason(&claims).await, "invalid_claim", "{name}");
        let same = with(f.v2(), json!({ name: TENANT }));
        assert_eq!(f.reason(&same).await, "invalid_claim", "{name}");
    }
    assert_eq!(f.reason(&f.v2()).await, "ok");
}

/// A fixture for a multi-tenant API whose JWKS serves `jwks(instance)`.
async fn multi_tenant(jwks: impl FnOnce(&str) -> Vec<Value>) -> (TestIdp, Arc<Authenticator>) {
    let idp = TestIdp::start(JwksMode::EmptySet).await;
    idp.set_mode(JwksMode::Keys(jwks(&idp.instance())));
    let mut settings = idp.settings();
    settings.tenant = TenantMode::Multi {
        allowed: AllowedTenants::Any,
    };
    settings.metadata_url = idp.organizations_metadata_url();
    let auth = loaded(settings).await;
    (idp, auth)
}

/// Microsoft.IdentityModel's signing-key issuer validation: Entra's keys carry
/// the `{tenantid}` template and verify every tenant's v1 and v2 tokens; a key
/// published for tenant B (claims-mapping apps get such keys) cannot verify
/// tenant A's token, although the signature is right.
#[tokio::test]
async fn a_key_published_for_one_tenant_cannot_verify_another_tenants_token() {
    let shared = TestKey::generate("shared");
    let only_b = TestKey::generate("only-b");
    let (idp, auth) = multi_tenant(|instance| {
        vec![
            shared.jwk_with_issuer(&format!("{instance}/{{tenantid}}/v2.0")),
            only_b.jwk_with_issuer(&format!("{instance}/{OTHER_TENANT}/v2.0")),
        ]
    })
    .await;
    let instance = idp.instance();
    let check = |token: String| {
        let auth = Arc::clone(&auth);
        async move {
            match auth.authenticate(&bearer(&token)).await {
                Ok(_) => "ok",
                Err(e) => e.reason(),
            }
        }
    };
    // The shared, templated key: v2 and v1 tokens of any tenant.
    assert_eq!(
        check(shared.sign(&v2_claims(&instance, TENANT))).await,
        "ok"
    );
    assert_eq!(
        check(shared.sign(&v2_claims(&instance, OTHER_TENANT))).await,
        "ok"
    );
    assert_eq!(check(shared.sign(&v1_claims(TENANT))).await, "ok");
    // Tenant B's own key: B's tokens, v2 and v1 (the v1 one through the
    // discovery issuer filled with B), but never A's.
    assert_eq!(
        check(only_b.sign(&v2_claims(&instance, OTHER_TENANT))).await,
        "ok"
    );
    assert_eq!(check(only_b.sign(&v1_claims(OTHER_TENANT))).await, "ok");
    assert_eq!(
        check(only_b.sign(&v2_claims(&instance, TENANT))).await,
        "wrong_issuer"
    );
    assert_eq!(check(only_b.sign(&v1_claims(TENANT))).await, "wrong_issuer");
}
