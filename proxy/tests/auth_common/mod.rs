//! Test fixtures for the authentication tests: RSA keys generated with
//! aws-lc-rs, tokens signed with jsonwebtoken, and a tiny identity provider
//! (discovery + JWKS) served by hyper on 127.0.0.1:0 whose answers a test can
//! change on the fly (rotate keys, fail, hang, answer HTML).

#![allow(dead_code)] // each test module uses a different subset

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authz_proxy::auth::{AuthSettings, Authenticator, TenantMode};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
pub const OTHER_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
pub const STS: &str = "https://sts.windows.net";

/// An RSA signing key with its kid.
pub struct TestKey {
    pub kid: String,
    pub pair: KeyPair,
    pub encoding: EncodingKey,
}

impl TestKey {
    pub fn generate(kid: &str) -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("generate RSA key");
        let pkcs8 = pair.as_der().expect("PKCS#8 DER");
        let pem = pem("PRIVATE KEY", pkcs8.as_ref());
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key");
        TestKey {
            kid: kid.to_owned(),
            pair,
            encoding,
        }
    }

    /// The public key as a JWK, shaped like Entra's.
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The JWK with Entra's `issuer` field: the `{tenantid}` template for
    /// shared keys, or one tenant's issuer for keys published for it.
    pub fn jwk_with_issuer(&self, issuer: &str) -> Value {
        let mut jwk = self.jwk();
        jwk["issuer"] = json!(issuer);
        jwk
    }

    /// Signs `claims` with RS256 under any JOSE header (the caller puts the
    /// kid in it).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &rng,
                input.as_bytes(),
                &mut sig,
            )
            .expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// The public key's X.509 SubjectPublicKeyInfo, PEM: what an attacker
    /// would use as an HMAC secret.
    pub fn public_pem(&self) -> String {
        let der = self.pair.public_key().as_der().expect("public DER");
        pem("PUBLIC KEY", der.as_ref())
    }

    /// Signs `claims` with RS256 and this key's kid.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a v2 delegated (user) token for `tid`, issued by `instance`.
pub fn v2_claims(instance: &str, tid: &str) -> Value {
    let now = now();
    json!({
        "aud": CLIENT_ID,
        "iss": format!("{instance}/{tid}/v2.0"),
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 3600,
        "azp": "c1f0b6d2-0000-4000-8000-000000000001",
        "azpacr": "0",
        "name": "Ada Lovelace",
        "oid": "00000000-0000-0000-0000-0000000000aa",
        "preferred_username": "ada@contoso.example",
        "scp": "access_as_user",
        "sub": "pairwise-subject",
        "tid": tid,
        "ver": "2.0",
        "groups": ["should-grant-nothing"],
        "wids": ["62e90394-69f5-4237-9190-012177145e10"],
    })
}

/// Claims of a v1 token (sts issuer with trailing slash, `api://` audience).
pub fn v1_claims(tid: &str) -> Value {
    let now = now();
    json!({
        "aud": format!("api://{CLIENT_ID}"),
        "iss": format!("{STS}/{tid}/"),
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 3600,
        "appid": "c1f0b6d2-0000-4000-8000-000000000002",
        "appidacr": "0",
        "name": "Grace Hopper",
        "oid": "00000000-0000-0000-0000-0000000000bb",
        "upn": "grace@contoso.example",
        "unique_name": "grace-unique@contoso.example",
        "scp": "access_as_user Tasks.Read",
        "roles": ["Admin"],
        "tid": tid,
        "ver": "1.0",
    })
}

/// Claims of an app-only (client credentials) v2 token.
pub fn app_claims(instance: &str, tid: &str) -> Value {
    let mut c = v2_claims(instance, tid);
    let o = c.as_object_mut().unwrap();
    for k in ["scp", "name", "preferred_username"] {
        o.remove(k);
    }
    o.insert("roles".into(), json!(["Tasks.Read.All"]));
    o.insert("idtyp".into(), json!("app"));
    c
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

/// What the test IdP's JWKS endpoint answers.
#[derive(Clone, Debug)]
pub enum JwksMode {
    Keys(Vec<Value>),
    Status(u16),
    Html,
    EmptySet,
    Huge,
    Hang,
}

#[derive(Debug)]
struct IdpState {
    mode: Mutex<JwksMode>,
    /// Override of the `jwks_uri` advertised by discovery.
    jwks_uri: Mutex<Option<String>>,
    /// Override of the `issuer` advertised by discovery.
    issuer: Mutex<Option<String>>,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
}

/// A tiny identity provider on 127.0.0.1:0, stopped when dropped.
pub struct TestIdp {
    pub addr: SocketAddr,
    state: Arc<IdpState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestIdp {
    pub async fn start(mode: JwksMode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(IdpState {
            mode: Mutex::new(mode),
            jwks_uri: Mutex::new(None),
            issuer: Mutex::new(None),
            discovery_hits: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
        });
        let served = Arc::clone(&state);
        let server = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&served);
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&state), addr, req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestIdp {
            addr,
            state,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`: the instance the test tokens name.
    pub fn instance(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn metadata_url(&self) -> String {
        format!(
            "{}/{TENANT}/v2.0/.well-known/openid-configuration",
            self.instance()
        )
    }

    pub fn set_mode(&self, mode: JwksMode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub fn set_keys(&self, keys: &[&TestKey]) {
        self.set_mode(JwksMode::Keys(keys.iter().map(|k| k.jwk()).collect()));
    }

    /// Discovery for the `organizations` alias, whose issuer is Entra's
    /// `{tenantid}` template: what a multi-tenant API fetches.
    pub fn organizations_metadata_url(&self) -> String {
        format!(
            "{}/organizations/v2.0/.well-known/openid-configuration",
            self.instance()
        )
    }

    /// Makes discovery name this issuer instead of the right one.
    pub fn set_issuer(&self, issuer: &str) {
        *self.state.issuer.lock().unwrap() = Some(issuer.to_owned());
    }

    pub fn set_jwks_uri(&self, uri: &str) {
        *self.state.jwks_uri.lock().unwrap() = Some(uri.to_owned());
    }

    pub fn discovery_hits(&self) -> usize {
        self.state.discovery_hits.load(Ordering::SeqCst)
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// Settings for a single-tenant API behind this IdP, with a long
    /// cooldown so no test depends on time passing.
    pub fn settings(&self) -> AuthSettings {
        let mut s = AuthSettings::new(
            TenantMode::Single(TENANT.to_owned()),
            vec![CLIENT_ID.to_owned(), format!("api://{CLIENT_ID}")],
            self.instance(),
            self.metadata_url(),
        );
        s.sts_instance = STS.to_owned();
        s.unknown_kid_cooldown = Duration::from_secs(3600);
        s.http_timeout = Duration::from_secs(5);
        s
    }
}

async fn handle(
    state: Arc<IdpState>,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    if path.ends_with("/.well-known/openid-configuration") {
        state.discovery_hits.fetch_add(1, Ordering::SeqCst);
        let jwks_uri = state
            .jwks_uri
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| format!("http://{addr}/{TENANT}/discovery/v2.0/keys"));
        // Entra's: the tenant's issuer, or the `{tenantid}` template for
        // the multi-tenant aliases; v1 documents name the sts issuer.
        let segment = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let tid = match segment {
            "organizations" | "common" => "{tenantid}",
            tid => tid,
        };
        let issuer = match state.issuer.lock().unwrap().clone() {
            Some(issuer) => issuer,
            None if path.contains("/v2.0/") => format!("http://{addr}/{tid}/v2.0"),
            None => format!("{STS}/{tid}/"),
        };
        let doc = json!({
            "issuer": issuer,
            "jwks_uri": jwks_uri,
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        return Ok(json_response(StatusCode::OK, doc.to_string()));
    }
    if path.ends_with("/keys") {
        state.jwks_hits.fetch_add(1, Ordering::SeqCst);
        let mode = state.mode.lock().unwrap().clone();
        return Ok(match mode {
            JwksMode::Keys(keys) => {
                json_response(StatusCode::OK, json!({ "keys": keys }).to_string())
            }
            JwksMode::Status(code) => {
                json_response(StatusCode::from_u16(code).unwrap(), "{}".into())
            }
            JwksMode::Html => Response::builder()
                .header("content-type", "text/html")
                .body(Full::new(Bytes::from_static(
                    b"<html><body>Sign in</body></html>",
                )))
                .unwrap(),
            JwksMode::EmptySet => json_response(StatusCode::OK, r#"{"keys":[]}"#.into()),
            JwksMode::Huge => {
                let filler = "x".repeat(2 * 1024 * 1024);
                json_response(StatusCode::OK, format!(r#"{{"keys":[],"pad":"{filler}"}}"#))
            }
            JwksMode::Hang => std::future::pending().await,
        });
    }
    Ok(json_response(StatusCode::NOT_FOUND, "{}".into()))
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// An authenticator with keys already loaded from `idp`.
pub async fn loaded(settings: AuthSettings) -> Arc<Authenticator> {
    let auth = Arc::new(Authenticator::new(settings).expect("valid settings"));
    auth.refresh_keys().await.expect("keys load");
    auth
}

/// Waits (bounded) until `done` holds, re-checking whenever a key fetch
/// completes: no sleeping, no polling.
pub async fn wait_for_fetches(auth: &Authenticator, done: impl Fn(&Authenticator) -> bool) {
    let mut fetches = auth.watch_fetches();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !done(auth) {
            fetches.changed().await.expect("authenticator alive");
        }
    })
    .await
    .expect("condition reached in time");
}
