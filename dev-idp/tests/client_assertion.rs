//! Certificate credentials: a confidential client (`authz-gateway`, with
//! `client_certificate: true`) authenticates at the token endpoint with a
//! client assertion (RFC 7523) signed by its certificate's key, found by the
//! `x5t#S256` (or `x5t`) thumbprint. Each refusal has Entra's AADSTS code.

use crate::support;

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{CONTOSO, Server, start};

const GATEWAY: &str = "c0ffee00-0000-4000-8000-0000000000e5";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(s: &Server) -> Value {
    let now = now();
    json!({
        "aud": s.url(&format!("/{CONTOSO}/oauth2/v2.0/token")),
        "iss": GATEWAY,
        "sub": GATEWAY,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    })
}

/// Signs `claims` with the app's key; the header names `thumbprint` as
/// `x5t#S256`, or as `x5t` when `sha1`.
fn sign(s: &Server, claims: &Value, thumbprint: Option<&str>, sha1: bool) -> String {
    let cert = s
        .idp
        .client_certificate("authz-gateway")
        .expect("a certificate");
    let pem = std::fs::read(&cert.key_file).unwrap();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    match (thumbprint, sha1) {
        (Some(t), false) => header.x5t_s256 = Some(t.to_owned()),
        (Some(t), true) => header.x5t = Some(t.to_owned()),
        (None, false) => header.x5t_s256 = Some(cert.x5t_s256.clone()),
        (None, true) => header.x5t = Some(cert.x5t.clone()),
    }
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

async fn ask(s: &Server, assertion: &str) -> (StatusCode, Value) {
    s.token_request(&[
        ("grant_type", "client_credentials"),
        ("client_id", GATEWAY),
        ("scope", "https://graph.microsoft.com/.default"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ])
    .await
}

fn refused(answer: &(StatusCode, Value), code: &str) {
    assert_eq!(answer.0, StatusCode::UNAUTHORIZED, "{}", answer.1);
    assert_eq!(answer.1["error"], "invalid_client", "{}", answer.1);
    let description = answer.1["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("{code}: ")),
        "{description}"
    );
}

#[tokio::test]
async fn the_certificate_and_key_are_made_once_and_kept() {
    let s = start().await;
    let cert = s.idp.client_certificate(GATEWAY).unwrap();
    let pem = std::fs::read_to_string(&cert.cert_file).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
    assert!(
        std::fs::read_to_string(&cert.key_file)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert_eq!(cert.x5t_s256.len(), 43, "base64url SHA-256");
    assert!(s.idp.client_certificate("daemon").is_none());
    // Another IdP on the same data directory keeps the same credential.
    let again = dev_idp::Idp::new(dev_idp::Config::embedded_default(), s.dir.path(), None).unwrap();
    assert_eq!(
        again.client_certificate(GATEWAY).unwrap().x5t_s256,
        cert.x5t_s256
    );
    s.stop().await;
}

#[tokio::test]
async fn a_signed_assertion_gets_an_app_token_by_either_thumbprint() {
    let s = start().await;
    for sha1 in [false, true] {
        let (status, body) = ask(&s, &sign(&s, &claims(&s), None, sha1)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = body["access_token"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["appidacr"], "2", "certificate: {claims}");
        assert_eq!(claims["roles"], json!(["GroupMember.Read.All"]));
    }
    s.stop().await;
}

#[tokio::test]
async fn a_bad_signature_is_aadsts700027() {
    let s = start().await;
    let good = sign(&s, &claims(&s), None, false);
    let other = sign(&s, &claims(&s), None, false);
    // One assertion's header and claims with another's signature.
    let (head, _) = good.rsplit_once('.').unwrap();
    let (_, signature) = other.rsplit_once('.').unwrap();
    let answer = ask(&s, &format!("{head}.{signature}")).await;
    refused(&answer, "AADSTS700027");
    assert!(
        answer.1["error_description"]
            .as_str()
            .unwrap()
            .contains("signature validation")
    );
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_thumbprint_is_aadsts700027_naming_it() {
    let s = start().await;
    let unknown = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let answer = ask(&s, &sign(&s, &claims(&s), Some(unknown), false)).await;
    refused(&answer, "AADSTS700027");
    assert!(
        answer.1["error_description"]
            .as_str()
            .unwrap()
            .contains(unknown)
    );
    // The daemon has a secret and no certificate: none is registered for it.
    let mut daemon = claims(&s);
    daemon["iss"] = json!("c0ffee00-0000-4000-8000-0000000000c3");
    daemon["sub"] = daemon["iss"].clone();
    let answer = s
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "c0ffee00-0000-4000-8000-0000000000c3"),
            (
                "scope",
                "api://c0ffee00-0000-4000-8000-0000000000a1/.default",
            ),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &sign(&s, &daemon, None, false)),
        ])
        .await;
    refused(&answer, "AADSTS700027");
    s.stop().await;
}

#[tokio::test]
async fn a_wrong_audience_is_aadsts700023() {
    let s = start().await;
    let mut wrong = claims(&s);
    wrong["aud"] = json!("https://login.microsoftonline.com/common/oauth2/v2.0/token");
    refused(
        &ask(&s, &sign(&s, &wrong, None, false)).await,
        "AADSTS700023",
    );
    s.stop().await;
}

#[tokio::test]
async fn an_expired_or_future_assertion_is_aadsts700024() {
    let s = start().await;
    let mut expired = claims(&s);
    expired["exp"] = json!(now() - 60);
    expired["nbf"] = json!(now() - 660);
    refused(
        &ask(&s, &sign(&s, &expired, None, false)).await,
        "AADSTS700024",
    );
    let mut future = claims(&s);
    future["nbf"] = json!(now() + 300);
    refused(
        &ask(&s, &sign(&s, &future, None, false)).await,
        "AADSTS700024",
    );
    s.stop().await;
}

#[tokio::test]
async fn an_assertion_of_another_client_id_is_aadsts700021() {
    let s = start().await;
    let mut other = claims(&s);
    other["iss"] = json!("c0ffee00-0000-4000-8000-0000000000c3");
    refused(
        &ask(&s, &sign(&s, &other, None, false)).await,
        "AADSTS700021",
    );
    s.stop().await;
}

#[tokio::test]
async fn a_wrong_assertion_type_or_a_secret_besides_is_invalid_request() {
    let s = start().await;
    let assertion = sign(&s, &claims(&s), None, false);
    let (status, body) = s
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", GATEWAY),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", "urn:example:other"),
            ("client_assertion", &assertion),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, body) = s
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", GATEWAY),
            ("client_secret", "dev-gateway-graph-secret"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    s.stop().await;
}
