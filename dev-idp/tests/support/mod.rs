//! Test harness: a dev-idp server on a fresh loopback port with its own key
//! directory, an HTTP client that does not follow redirects, and token
//! verification with jsonwebtoken against the JWKS served over HTTP — the way
//! the gateway verifies.

#![allow(dead_code)] // each test module uses a different part of the harness

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dev_idp::{Config, Idp};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;

pub const CONTOSO: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const FABRIKAM: &str = "bbbbbbbb-0000-4000-8000-000000000002";
pub const API_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-0000000000a1";
pub const API_URI: &str = "api://c0ffee00-0000-4000-8000-0000000000a1";
pub const SPA_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-0000000000b2";
pub const DAEMON_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-0000000000c3";
pub const ALICE_OID: &str = "a11ce000-0000-4000-8000-000000000001";

/// A running server; dropping it stops the server and deletes its keys.
pub struct Server {
    pub idp: Arc<Idp>,
    pub base: String,
    pub http: reqwest::Client,
    /// The redirect URI registered for this server's own port.
    pub redirect_uri: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

/// Starts the embedded default configuration.
pub async fn start() -> Server {
    start_with(Config::embedded_default()).await
}

/// Starts `config`, adding a redirect URI on the server's port to the SPA.
pub async fn start_with(config: Config) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    start_in(config, dir).await
}

/// Starts `config` with keys in `dir` (to share keys with the CLI).
pub async fn start_in(mut config: Config, dir: tempfile::TempDir) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let redirect_uri = format!("{base}/test-callback");
    config
        .app_mut("swagger-ui")
        .expect("swagger-ui app")
        .add_redirect_uri(redirect_uri.clone());
    let idp = Arc::new(Idp::new(config, dir.path(), Some(base.clone())).expect("idp"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server_idp = idp.clone();
    let task = tokio::spawn(async move {
        dev_idp::run(listener, server_idp, async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    Server {
        idp,
        base,
        http,
        redirect_uri,
        shutdown: Some(tx),
        task: Some(task),
        dir,
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        self.post_form(&format!("/{CONTOSO}/oauth2/v2.0/token"), form)
            .await
    }

    pub async fn jwks(&self, tenant: &str) -> JwkSet {
        let (status, body) = self
            .get_json(&format!("/{tenant}/discovery/v2.0/keys"))
            .await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_value(body).expect("a JWKS")
    }

    /// Verifies a token as the gateway will: key by `kid` from the served
    /// JWKS, RS256, exact audience and issuer, `exp`/`nbf` checked.
    pub async fn verify(&self, token: &str, audience: &str, issuer: &str) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.ok_or("no kid")?;
        let jwks = self.jwks("common").await;
        let jwk = jwks
            .find(&kid)
            .ok_or_else(|| format!("kid {kid} not published"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[issuer]);
        validation.leeway = 0;
        validation.validate_nbf = true;
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }

    /// Verifies a v2 token for the todo API from Contoso.
    pub async fn verify_v2(&self, token: &str) -> Value {
        let issuer = format!("{}/{CONTOSO}/v2.0", self.base);
        self.verify(token, API_CLIENT_ID, &issuer)
            .await
            .expect("token verifies")
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

/// A PKCE pair (RFC 7636): a 43-character verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier =
        URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()) + "-padding-to-43-chars-ok";
    let verifier = verifier[..43].to_owned();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// Decodes a JWT's header without verifying (for header assertions).
pub fn header(token: &str) -> Value {
    let part = token.split('.').next().expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON header")
}

/// The query parameters of a redirect's `Location`.
pub fn location_params(response: &reqwest::Response) -> (String, Vec<(String, String)>) {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("ASCII location")
        .to_owned();
    let url = reqwest::Url::parse(&location).expect("absolute location");
    let params = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let without_query = format!("{}{}", url.origin().ascii_serialization(), url.path());
    (without_query, params)
}

/// One parameter from [`location_params`].
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
