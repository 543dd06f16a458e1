//! The todo backend in `--trust gateway-assertion` mode, in the running
//! system: requests through the gateway work as in the sample, and a request
//! sent straight to the backend is refused unless it carries a valid
//! assertion — forged `X-User-*` headers, an expired assertion, one for
//! another audience, one signed by an unknown key, `alg: none`, and headers
//! that disagree with a valid assertion each get a 401 saying which.
//!
//! The gateway signs with a key file the test wrote (`--assertion-key`), so
//! the test can sign assertions the backend must accept (the control) and
//! ones it must refuse, with the same key. Under `--assertion-algorithm
//! RS256` (a generated RSA key) the same flow works, and an ES256
//! assertion naming the gateway's RSA key is refused.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use dev_idp::MintRequest;
use e2e_tests::{Options, System, TENANT};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

const JWKS_PATH: &str = "/.well-known/authz-proxy/jwks.json";
const ALICE: &str = "a11ce000-0000-4000-8000-000000000001";

/// A P-256 private key as PKCS#8 DER.
fn new_key() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

struct Setup {
    sys: System,
    /// The gateway's signing key and its `kid`.
    key: Vec<u8>,
    kid: String,
    _dir: tempfile::TempDir,
}

async fn start() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD
            .encode(&key)
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let file = dir.path().join("assertion-key.pem");
    std::fs::write(&file, pem).unwrap();
    let sys = System::start_with(Options {
        backend_assertion: true,
        gateway_args: vec!["--assertion-key".into(), file.display().to_string()],
        ..Options::default()
    })
    .await
    .unwrap();
    let jwks: Value = reqwest::get(format!("{}{JWKS_PATH}", sys.admin_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    Setup {
        sys,
        key,
        kid,
        _dir: dir,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims the gateway would sign for alice, for this system's backend.
fn claims(sys: &System) -> Value {
    let now = now();
    json!({
        "iss": sys.gateway_url, "aud": sys.backend_url, "iat": now, "exp": now + 300,
        "jti": "test", "oid": ALICE, "tid": TENANT, "roles": ["User"], "scp": "access_as_user",
        "name": "Alice Example", "preferred_username": "alice@contoso.dev", "idtyp": "user",
        "route": "list-items",
    })
}

fn sign(der: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(der)).unwrap()
}

/// One call to `base` (gateway or backend): status and JSON body (`Null` if empty).
async fn call(
    sys: &System,
    method: Method,
    url: String,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = sys.http.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body)
}

#[tokio::test]
async fn through_the_gateway_the_sample_flow_works() {
    let s = start().await;
    let gateway = |path: &str| format!("{}{path}", s.sys.gateway_url);
    let alice = format!("Bearer {}", s.sys.token(MintRequest::user("alice")));
    let bob = format!("Bearer {}", s.sys.token(MintRequest::user("bob")));
    let item = json!({"item": {"name": "Walk the dog"}});

    let (status, created) = call(
        &s.sys,
        Method::POST,
        gateway("/todoitems"),
        &[("authorization", &alice)],
        Some(item),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["item"]["owner_id"], ALICE,
        "the owner is the assertion's oid"
    );
    let id = created["item"]["id"].as_i64().unwrap();
    let (status, listed) = call(
        &s.sys,
        Method::GET,
        gateway("/todoitems"),
        &[("authorization", &alice)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    // Bob, an admin of the same tenant, sees it; as a user-level read of
    // someone else's item would be refused by the backend, the role came
    // through the assertion.
    let (status, item) = call(
        &s.sys,
        Method::GET,
        gateway(&format!("/todoitems/{id}")),
        &[("authorization", &bob)],
        None,
    )
    .await;
    assert_eq!(status, 200, "{item}");
    // A non-admin's "delete all": 403 (the gateway's role rule).
    let (status, _) = call(
        &s.sys,
        Method::DELETE,
        gateway("/todoitems"),
        &[("authorization", &alice)],
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &s.sys,
        Method::DELETE,
        gateway("/todoitems"),
        &[("authorization", &bob)],
        None,
    )
    .await;
    assert_eq!(status, 204);
    // The health checks answer without any identity.
    for (path, body) in [
        ("/health", json!("OK")),
        ("/ready", json!({"status": "ready"})),
    ] {
        let url = format!("{}{path}", s.sys.backend_url);
        assert_eq!(
            call(&s.sys, Method::GET, url, &[], None).await,
            (200, body),
            "{path}"
        );
    }
    s.sys.stop().await.unwrap();
}

#[tokio::test]
async fn straight_to_the_backend_only_a_valid_assertion_is_accepted() {
    let s = start().await;
    let backend = format!("{}/todoitems", s.sys.backend_url);
    let forged = [
        ("x-user-id", ALICE),
        ("x-user-tenant", TENANT),
        ("x-user-roles", "Admin"),
    ];
    let refused = |detail: &str| (401, json!({ "detail": detail }));

    // Forged headers, no assertion.
    assert_eq!(
        call(&s.sys, Method::GET, backend.clone(), &forged, None).await,
        refused("Missing identity assertion (x-user-assertion header)")
    );

    // The control: an assertion signed with the gateway's key is accepted,
    // so each refusal below is for the one thing changed.
    let valid = sign(&s.key, &s.kid, &claims(&s.sys));
    assert_eq!(
        call(
            &s.sys,
            Method::GET,
            backend.clone(),
            &[("x-user-assertion", &valid)],
            None
        )
        .await,
        (200, json!({"items": []}))
    );

    let now = now();
    let mut expired = claims(&s.sys);
    expired["iat"] = json!(now - 400);
    expired["exp"] = json!(now - 100);
    let mut elsewhere = claims(&s.sys);
    elsewhere["aud"] = json!("billing");
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": s.kid}).to_string()),
        URL_SAFE_NO_PAD.encode(claims(&s.sys).to_string())
    );
    let cases = [
        (
            sign(&s.key, &s.kid, &expired),
            "Identity assertion expired".to_owned(),
        ),
        (
            sign(&s.key, &s.kid, &elsewhere),
            "Identity assertion for another audience (aud)".to_owned(),
        ),
        (
            sign(&new_key(), "not-the-gateways", &claims(&s.sys)),
            "Identity assertion signed by an unknown key (kid not-the-gateways)".to_owned(),
        ),
        (
            sign(&new_key(), &s.kid, &claims(&s.sys)),
            "Identity assertion signature is invalid".to_owned(),
        ),
        (
            none,
            "Identity assertion algorithm must be ES256 or RS256, got none".to_owned(),
        ),
    ];
    for (assertion, detail) in cases {
        assert_eq!(
            call(
                &s.sys,
                Method::GET,
                backend.clone(),
                &[("x-user-assertion", &assertion)],
                None
            )
            .await,
            refused(&detail)
        );
    }

    // A valid assertion with headers that claim more: refused.
    let mut headers = vec![("x-user-assertion", valid.as_str())];
    headers.extend_from_slice(&forged);
    assert_eq!(
        call(&s.sys, Method::GET, backend.clone(), &headers, None).await,
        refused("X-User-Roles header disagrees with the identity assertion")
    );
    let (status, _) = call(
        &s.sys,
        Method::POST,
        backend,
        &[("x-user-id", ALICE), ("x-user-tenant", TENANT)],
        Some(json!({"item": {"name": "forged"}})),
    )
    .await;
    assert_eq!(status, 401);
    s.sys.stop().await.unwrap();
}

#[tokio::test]
async fn the_backends_log_lines_carry_the_gateways_request_id() {
    // The log capture is installed before anything logs.
    let _ = e2e_tests::capture::captured();
    let s = start().await;
    let alice = format!("Bearer {}", s.sys.token(MintRequest::user("alice")));
    let id = "backend-assertion-request-7";
    let (status, _) = call(
        &s.sys,
        Method::GET,
        format!("{}/todoitems", s.sys.gateway_url),
        &[("authorization", &alice), ("x-request-id", id)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    // The gateway's access line is written after the backend answered.
    let _ = e2e_tests::capture::access_line(id).await;
    let backend = e2e_tests::capture::lines_where(|v| {
        v["target"] == "todo_backend::access" && v["span"]["request_id"] == id
    });
    assert_eq!(backend.len(), 1, "one backend access line for {id}");
    assert_eq!(backend[0]["status"], 200);
    assert_eq!(backend[0]["path"], "/todoitems");
    s.sys.stop().await.unwrap();
}

async fn admin_jwks(sys: &System) -> Value {
    reqwest::get(format!("{}{JWKS_PATH}", sys.admin_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn under_rs256_the_backend_serves_requests_through_the_gateway_and_refuses_es256_on_its_rsa_key()
 {
    let sys = System::start_with(Options {
        backend_assertion: true,
        gateway_args: vec!["--assertion-algorithm".into(), "RS256".into()],
        ..Options::default()
    })
    .await
    .unwrap();
    let jwks = admin_jwks(&sys).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    let kid = keys[0]["kid"].as_str().unwrap().to_owned();

    // Through the gateway: the backend verifies the RS256 assertion.
    let gateway = format!("{}/todoitems", sys.gateway_url);
    let alice = format!("Bearer {}", sys.token(MintRequest::user("alice")));
    let item = json!({"item": {"name": "Walk the dog"}});
    let (status, created) = call(
        &sys,
        Method::POST,
        gateway.clone(),
        &[("authorization", &alice)],
        Some(item),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["item"]["owner_id"], ALICE);
    let (status, listed) = call(
        &sys,
        Method::GET,
        gateway,
        &[("authorization", &alice)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Straight to the backend: forged headers, and an ES256 assertion that
    // names the gateway's RSA key, are refused.
    let backend = format!("{}/todoitems", sys.backend_url);
    let (status, _) = call(
        &sys,
        Method::GET,
        backend.clone(),
        &[("x-user-id", ALICE), ("x-user-tenant", TENANT)],
        None,
    )
    .await;
    assert_eq!(status, 401);
    let es256 = sign(&new_key(), &kid, &claims(&sys));
    assert_eq!(
        call(
            &sys,
            Method::GET,
            backend,
            &[("x-user-assertion", &es256)],
            None
        )
        .await,
        (
            401,
            json!({"detail": format!(
                "Identity assertion algorithm ES256 does not match its key (kid {kid}), \
                 which is an RSA key for RS256"
            )})
        )
    );
    sys.stop().await.unwrap();
}
