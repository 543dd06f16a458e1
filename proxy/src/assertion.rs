//! The signed identity assertion: the one owner of the gateway's signing key.
//!
//! For every authorized request on a token route the gateway adds a compact
//! JWS (`X-User-Assertion` by default, `identity_headers: assertion:` in
//! `policy.yaml`) that a backend can verify with the public key served as a
//! JWKS at [`JWKS_PATH`], so it need not trust the network to know that the
//! `X-User-*` headers came from the gateway. ES256 (P-256, aws-lc-rs); the
//! claims are in [`Claims`]. Signing happens once per verified token, route
//! and upstream, and the result is reused until a fifth of its lifetime is
//! left ([`Signer::assertion`]): a request with a cached token signs nothing.
//!
//! This module ends at the header value and the JWKS document: stripping a
//! client-sent copy is `headers.rs`'s job (the name is one of the identity
//! headers), deciding when to add it is `gateway.rs`'s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use serde::Serialize;

use crate::body::ProxyBody;
use crate::identity::Authenticated;

/// Where the public key is published, on the gateway and the admin listener.
pub const JWKS_PATH: &str = "/.well-known/authz-proxy/jwks.json";

/// The longest lifetime an assertion may have, in seconds (issue 17: ≤ 5 min).
pub const MAX_LIFETIME_SECONDS: u64 = 300;

/// The shortest, so that reuse still makes sense.
pub const MIN_LIFETIME_SECONDS: u64 = 10;

/// The file a generated key is kept in, inside `--assertion-key-dir`.
pub const GENERATED_KEY_FILE: &str = "assertion-key.pem";

/// Signed assertions kept for reuse (one per caller, route and upstream).
/// Past it, expired and orphaned ones are dropped, and if that is not
/// enough, all of them: the next requests sign again.
const CACHE_SIZE: usize = 10_000;

/// Where the signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `--assertion-key`: a PEM P-256 private key (PKCS#8 `PRIVATE KEY` or
    /// SEC1 `EC PRIVATE KEY`), so every replica signs with the same key.
    File(PathBuf),
    /// Generated: read from `dir` if an earlier start left one there,
    /// otherwise generated and written there; without a `dir`, kept in
    /// memory only (and each replica has its own).
    Generated { dir: Option<PathBuf> },
}

/// The assertion's settings, checked by `config.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionSettings {
    /// `iss`: `--assertion-issuer`, by default the gateway's own URL.
    pub issuer: String,
    /// `aud` for routes on the default upstream (`--assertion-audience`,
    /// by default the `--upstream` URL's origin); a named upstream's is its name.
    pub default_audience: String,
    /// At most [`MAX_LIFETIME_SECONDS`].
    pub lifetime_seconds: u64,
    pub key: KeySource,
}

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("--assertion-key: cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a PEM P-256 private key (PKCS#8 `PRIVATE KEY` or `EC PRIVATE KEY`)", path.display())]
    Parse { path: PathBuf },
    #[error("--assertion-key-dir: cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a P-256 key")]
    Generate,
}

/// The claims of one assertion. Names follow Entra's access tokens where
/// one exists, so a backend reads them the way it would read the token.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
    oid: &'a str,
    tid: &'a str,
    /// Always present, possibly empty.
    roles: &'a [String],
    /// Space-separated like Entra's `scp`; empty for app callers.
    scp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    /// `user` or `app`.
    idtyp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    azp: Option<&'a str>,
    /// The policy route that let the request through.
    route: &'a str,
}

/// The reuse cache: entries by caller address, and how many there are in
/// all, kept as they change so the bound costs nothing per request.
#[derive(Default)]
struct Reuse {
    by_caller: HashMap<usize, Vec<Cached>>,
    entries: usize,
}

/// One signed assertion kept for reuse.
struct Cached {
    /// Whose: a `Weak` keeps the caller's allocation, so its address (the
    /// map key) cannot be reused by another caller while this entry lives.
    caller: Weak<Authenticated>,
    route: Box<str>,
    audience: Box<str>,
    value: HeaderValue,
    /// Signed again from this second on (a fifth of the lifetime before `exp`).
    refresh_at: u64,
}

/// The gateway's signing key and what is made with it.
pub struct Signer {
    key: EcdsaKeyPair,
    kid: String,
    /// `base64url(header).`, the same for every assertion.
    header_prefix: String,
    issuer: String,
    default_audience: String,
    lifetime: u64,
    /// The JWKS document, rendered once.
    jwks: Bytes,
    rng: SystemRandom,
    /// By caller address; see [`Cached::caller`].
    cache: Mutex<Reuse>,
    signatures: AtomicU64,
}

impl std::fmt::Debug for Signer {
    /// Without the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("default_audience", &self.default_audience)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads or generates the key as `settings` say.
    pub fn new(settings: AssertionSettings) -> Result<Signer, KeyError> {
        let key = match &settings.key {
            KeySource::File(path) => read_key(path)?,
            KeySource::Generated { dir: Some(dir) } => key_in_dir(dir)?,
            KeySource::Generated { dir: None } => {
                tracing::warn!(
                    "no --assertion-key or --assertion-key-dir: the assertion signing key is \
                     generated in memory; it changes at every restart and replicas each have \
                     their own, so a backend must fetch every replica's JWKS"
                );
                generate()?
            }
        };
        Ok(Signer::with_key(key, settings))
    }

    fn with_key(key: EcdsaKeyPair, settings: AssertionSettings) -> Signer {
        let (x, y) = coordinates(&key);
        let kid = thumbprint(&x, &y);
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        let header_prefix = format!("{}.", B64.encode(header.to_string()));
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "use": "sig", "alg": "ES256",
        }]});
        Signer {
            key,
            kid,
            header_prefix,
            issuer: settings.issuer,
            default_audience: settings.default_audience,
            lifetime: settings.lifetime_seconds,
            jwks: Bytes::from(jwks.to_string()),
            rng: SystemRandom::new(),
            cache: Mutex::new(Reuse::default()),
            signatures: AtomicU64::new(0),
        }
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `aud` for routes on the default upstream.
    pub fn default_audience(&self) -> &str {
        &self.default_audience
    }

    /// The JWKS document with the public key.
    pub fn jwks(&self) -> &Bytes {
        &self.jwks
    }

    /// Signatures made so far (tests show that reuse signs nothing).
    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// `GET` [`JWKS_PATH`]: the JWKS, cacheable for a few minutes.
    pub fn jwks_response(&self) -> Response<ProxyBody> {
        let mut response = Response::new(
            http_body_util::Full::new(self.jwks.clone())
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jwk-set+json"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        response
    }

    /// The assertion for `caller` on `route` to `audience`: a cached one
    /// while it has more than a fifth of its lifetime left, else a new one.
    /// `None` only if signing failed (the header is then absent, and a
    /// backend that requires it refuses the request).
    pub fn assertion(
        &self,
        caller: &Arc<Authenticated>,
        route: &str,
        audience: &str,
    ) -> Option<HeaderValue> {
        self.assertion_at(caller, route, audience, now())
    }

    fn assertion_at(
        &self,
        caller: &Arc<Authenticated>,
        route: &str,
        audience: &str,
        now: u64,
    ) -> Option<HeaderValue> {
        let address = Arc::as_ptr(caller) as usize;
        if let Some(value) = self.cached(address, caller, route, audience, now) {
            return Some(value);
        }
        let (value, exp) = self.sign(caller, route, audience, now)?;
        // Refresh a fifth of the lifetime before `exp` (60 s of 300).
        let refresh_at = exp.saturating_sub((exp.saturating_sub(now)) / 5);
        let mut cache = match self.cache.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cache.entries >= CACHE_SIZE {
            cache.by_caller.retain(|_, entries| {
                entries.retain(|e| e.caller.strong_count() > 0 && e.refresh_at > now);
                !entries.is_empty()
            });
            cache.entries = cache.by_caller.values().map(Vec::len).sum();
            if cache.entries >= CACHE_SIZE {
                cache.by_caller.clear();
                cache.entries = 0;
            }
        }
        let entries = cache.by_caller.entry(address).or_default();
        let before = entries.len();
        // The one this replaces, and any of the caller's that are stale.
        entries.retain(|e| {
            e.refresh_at > now && !(e.route.as_ref() == route && e.audience.as_ref() == audience)
        });
        entries.push(Cached {
            caller: Arc::downgrade(caller),
            route: route.into(),
            audience: audience.into(),
            value: value.clone(),
            refresh_at,
        });
        let after = entries.len();
        cache.entries = cache.entries + after - before;
        Some(value)
    }

    fn cached(
        &self,
        address: usize,
        caller: &Arc<Authenticated>,
        route: &str,
        audience: &str,
        now: u64,
    ) -> Option<HeaderValue> {
        let cache = match self.cache.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        cache
            .by_caller
            .get(&address)?
            .iter()
            .find(|e| {
                e.route.as_ref() == route
                    && e.audience.as_ref() == audience
                    && e.refresh_at > now
                    && std::ptr::eq(e.caller.as_ptr(), Arc::as_ptr(caller))
            })
            .map(|e| e.value.clone())
    }

    /// A new assertion and its `exp`: never past the token's own `exp`.
    fn sign(
        &self,
        caller: &Authenticated,
        route: &str,
        audience: &str,
        now: u64,
    ) -> Option<(HeaderValue, u64)> {
        let exp = (now + self.lifetime).min(caller.expires_at.max(now + 1));
        let mut jti = [0u8; 16];
        self.rng.fill(&mut jti).ok()?;
        let claims = Claims {
            iss: &self.issuer,
            aud: audience,
            iat: now,
            exp,
            jti: B64.encode(jti),
            oid: &caller.object_id,
            tid: &caller.tenant_id,
            roles: &caller.roles,
            scp: caller.scopes.join(" "),
            name: caller.name.as_deref(),
            preferred_username: caller.email.as_deref(),
            idtyp: caller.kind.as_str(),
            azp: caller.app_id.as_deref(),
            route,
        };
        let payload = serde_json::to_vec(&claims).ok()?;
        let mut jws = self.header_prefix.clone();
        B64.encode_string(payload, &mut jws);
        let signature = self.key.sign(&self.rng, jws.as_bytes()).ok()?;
        self.signatures.fetch_add(1, Ordering::Relaxed);
        jws.push('.');
        B64.encode_string(signature.as_ref(), &mut jws);
        let value = HeaderValue::from_maybe_shared(Bytes::from(jws)).ok()?;
        Some((value, exp))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `x` and `y` of the public key, base64url (RFC 7518 §6.2.1).
fn coordinates(key: &EcdsaKeyPair) -> (String, String) {
    // Uncompressed SEC1 point: 0x04 ‖ x (32 bytes) ‖ y (32 bytes).
    let point = key.public_key().as_ref();
    let (x, y) = point
        .get(1..)
        .unwrap_or_default()
        .split_at(32.min(point.len().saturating_sub(1)));
    (B64.encode(x), B64.encode(y))
}

/// RFC 7638 JWK thumbprint: SHA-256 of the required members in
/// lexicographic order, without whitespace.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        canonical.as_bytes(),
    ))
}

fn read_key(path: &Path) -> Result<EcdsaKeyPair, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_pem(&text).ok_or_else(|| KeyError::Parse {
        path: path.to_owned(),
    })
}

/// The key in `dir`, or a new one written there (mode 0600). Two replicas
/// starting at once on a shared directory end up with the same key: only
/// one creates the file, the other reads it.
fn key_in_dir(dir: &Path) -> Result<EcdsaKeyPair, KeyError> {
    let path = dir.join(GENERATED_KEY_FILE);
    if path.exists() {
        return read_key(&path);
    }
    let document =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| KeyError::Generate)?;
    let pem = to_pem(document.as_ref());
    let write_error = |source| KeyError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, pem.as_bytes()).map_err(write_error)?;
            tracing::info!(path = %path.display(), "generated the assertion signing key");
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.as_ref())
                .map_err(|_| KeyError::Generate)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(&path),
        Err(e) => Err(write_error(e)),
    }
}

fn generate() -> Result<EcdsaKeyPair, KeyError> {
    let document =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| KeyError::Generate)?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.as_ref())
        .map_err(|_| KeyError::Generate)
}

/// A P-256 key from PEM: the first `PRIVATE KEY` (PKCS#8) or
/// `EC PRIVATE KEY` (SEC1) block.
fn parse_pem(text: &str) -> Option<EcdsaKeyPair> {
    for label in ["PRIVATE KEY", "EC PRIVATE KEY"] {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let Some(start) = text.find(&begin) else {
            continue;
        };
        let body = &text[start + begin.len()..];
        let body = &body[..body.find(&end)?];
        let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = STANDARD.decode(b64).ok()?;
        return if label == "PRIVATE KEY" {
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).ok()
        } else {
            EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).ok()
        };
    }
    None
}

fn to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

#[cfg(test)]
mod tests;
