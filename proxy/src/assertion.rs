//! The signed identity assertion: the one owner of the gateway's signing key.
//!
//! For every authorized request on a token route the gateway adds a compact
//! JWS (`X-User-Assertion` by default, `identity_headers: assertion:` in
//! `policy.yaml`) that a backend can verify with the public key served as a
//! JWKS at [`JWKS_PATH`], so it need not trust the network to know that the
//! `X-User-*` headers came from the gateway. ES256 (P-256) by default, RS256
//! (RSA) with `--assertion-algorithm`, both with aws-lc-rs; the keys are in
//! [`key`], the claims in [`Claims`]. Signing happens once per verified token, route
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
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use serde::Serialize;

use crate::body::ProxyBody;
use crate::identity::Authenticated;

mod key;

pub use key::{Algorithm, KeyError};
use key::{PublicKey, SigningKey, key_in_dir, read_key};

/// Where the public key is published, on the gateway and the admin listener.
pub const JWKS_PATH: &str = "/.well-known/authz-proxy/jwks.json";

/// The longest lifetime an assertion may have, in seconds (issue 17: ≤ 5 min).
pub const MAX_LIFETIME_SECONDS: u64 = 300;

/// The shortest, so that reuse still makes sense.
pub const MIN_LIFETIME_SECONDS: u64 = 10;

/// The file a generated ES256 key is kept in, inside `--assertion-key-dir`.
pub const GENERATED_KEY_FILE: &str = "assertion-key.pem";

/// The file a generated RS256 key is kept in, inside `--assertion-key-dir`.
pub const GENERATED_RSA_KEY_FILE: &str = "assertion-key-rsa.pem";

/// Signed assertions kept for reuse (one per caller, route and upstream).
/// Past it, expired and orphaned ones are dropped, and if that is not
/// enough, all of them: the next requests sign again.
const CACHE_SIZE: usize = 10_000;

/// Room reserved for the signature's base64url: an RSA-4096 one (512
/// bytes); ES256's 64 and RSA-2048's 256 fit with room to spare.
const MAX_SIGNATURE_B64: usize = 512usize.div_ceil(3) * 4;

/// Where the signing key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `--assertion-key`: a PEM private key of the algorithm's kind (P-256:
    /// PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`; RSA: PKCS#8 or PKCS#1
    /// `RSA PRIVATE KEY`), so every replica signs with the same key.
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
    /// `--assertion-algorithm`: every key (signing and next) is of its kind.
    pub algorithm: Algorithm,
    pub key: KeySource,
    /// `--assertion-next-key`: a key published in the JWKS before it signs
    /// (see [`Signer::reload_keys`]).
    pub next_key: Option<PathBuf>,
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

/// The keys in force: the one that signs, and every key the JWKS
/// publishes. Replaced whole (one `Arc`) when the key files change.
struct KeyRing {
    signing: Arc<SigningKey>,
    public: PublicKey,
    /// `base64url(header).`, the same for every assertion of this key.
    header_prefix: String,
    /// `--assertion-next-key`: published before it signs.
    next: Option<PublicKey>,
    /// Keys that signed before a rotation, each published until the last
    /// assertion it signed has expired (unix seconds).
    retired: Vec<(PublicKey, u64)>,
    /// The JWKS document, rendered when the ring is made.
    jwks: Bytes,
    /// SHA-256 of the key files' contents, to see a change on reload.
    files: String,
}

impl KeyRing {
    fn new(
        signing: Arc<SigningKey>,
        next: Option<PublicKey>,
        retired: Vec<(PublicKey, u64)>,
        files: String,
    ) -> KeyRing {
        let public = PublicKey::of(&signing);
        let alg = signing.algorithm().as_str();
        let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": public.kid});
        let header_prefix = format!("{}.", B64.encode(header.to_string()));
        // The signing key first; the next and retired ones, once each.
        let next = next.filter(|n| n.kid != public.kid);
        let retired: Vec<_> = retired
            .into_iter()
            .filter(|(k, _)| k.kid != public.kid && next.as_ref().is_none_or(|n| n.kid != k.kid))
            .collect();
        let mut keys = vec![public.jwk.clone()];
        keys.extend(next.iter().map(|k| k.jwk.clone()));
        keys.extend(retired.iter().map(|(k, _)| k.jwk.clone()));
        let jwks = Bytes::from(serde_json::json!({ "keys": keys }).to_string());
        KeyRing {
            signing,
            public,
            header_prefix,
            next,
            retired,
            jwks,
            files,
        }
    }
}

/// What [`Signer::reload_keys`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyReload {
    /// The key files are as they were (or the key is generated in memory).
    Unchanged,
    /// A new key signs; the old one stays published until `until`.
    Rotated {
        from: String,
        to: String,
        until: u64,
    },
    /// The signing key is the same; the published set changed (a next key
    /// added, changed or removed, or a retired key's time is up).
    Published,
    /// A key file cannot be read or parsed: the keys in force stay.
    Refused(String),
}

/// The gateway's signing key and what is made with it.
pub struct Signer {
    ring: std::sync::RwLock<Arc<KeyRing>>,
    /// The files the keys come from, read again by [`Signer::reload_keys`]:
    /// the signing key's (a `--assertion-key` or the generated one in
    /// `--assertion-key-dir`) and `--assertion-next-key`'s.
    key_file: Option<PathBuf>,
    next_file: Option<PathBuf>,
    algorithm: Algorithm,
    issuer: String,
    default_audience: String,
    lifetime: u64,
    rng: SystemRandom,
    /// By caller address; see [`Cached::caller`].
    cache: Mutex<Reuse>,
    /// Whether assertions are kept for reuse: not when the token cache is
    /// off, since each request then has a caller of its own and an entry
    /// could never be found again (see [`Signer::without_reuse`]).
    reuse: bool,
    signatures: AtomicU64,
}

impl std::fmt::Debug for Signer {
    /// Without the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid())
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("default_audience", &self.default_audience)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads or generates the key as `settings` say.
    pub fn new(settings: AssertionSettings) -> Result<Signer, KeyError> {
        let algorithm = settings.algorithm;
        let (key, key_file) = match &settings.key {
            KeySource::File(path) => (read_key(path, algorithm)?, Some(path.clone())),
            KeySource::Generated { dir: Some(dir) } => (
                key_in_dir(dir, algorithm)?,
                Some(dir.join(algorithm.generated_key_file())),
            ),
            KeySource::Generated { dir: None } => {
                tracing::warn!(
                    "no --assertion-key or --assertion-key-dir: the assertion signing key is \
                     generated in memory; it changes at every restart and replicas each have \
                     their own, so a backend must fetch every replica's JWKS"
                );
                (key::generate(algorithm)?.0, None)
            }
        };
        let next = match &settings.next_key {
            Some(path) => Some(PublicKey::of(&read_key(path, algorithm)?)),
            None => None,
        };
        let files = files_hash(key_file.as_deref(), settings.next_key.as_deref());
        Ok(Signer {
            ring: std::sync::RwLock::new(Arc::new(KeyRing::new(
                Arc::new(key),
                next,
                Vec::new(),
                files,
            ))),
            key_file,
            next_file: settings.next_key,
            algorithm,
            issuer: settings.issuer,
            default_audience: settings.default_audience,
            lifetime: settings.lifetime_seconds,
            rng: SystemRandom::new(),
            cache: Mutex::new(Reuse::default()),
            reuse: true,
            signatures: AtomicU64::new(0),
        })
    }

    /// A signer that keeps no assertion for reuse: for a gateway without
    /// its token cache (`--token-cache-size 0`), where every request's
    /// caller is a new `Arc` and a kept assertion would only cost a lock,
    /// an insertion and memory until evicted.
    pub fn without_reuse(self) -> Signer {
        Signer {
            reuse: false,
            ..self
        }
    }

    fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(ring) => Arc::clone(&ring),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The signing key's id: the RFC 7638 thumbprint of its public key.
    pub fn kid(&self) -> String {
        self.ring().public.kid.clone()
    }

    /// The published keys' ids: the signing key's first, then the next
    /// key's and the retired ones still published.
    pub fn published_kids(&self) -> Vec<String> {
        let ring = self.ring();
        let mut kids = vec![ring.public.kid.clone()];
        kids.extend(ring.next.iter().map(|k| k.kid.clone()));
        kids.extend(ring.retired.iter().map(|(k, _)| k.kid.clone()));
        kids
    }

    /// `--assertion-algorithm`.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `aud` for routes on the default upstream.
    pub fn default_audience(&self) -> &str {
        &self.default_audience
    }

    /// The JWKS document with every published key.
    pub fn jwks(&self) -> Bytes {
        self.jwks_at(now())
    }

    fn jwks_at(&self, now: u64) -> Bytes {
        let ring = self.ring();
        if ring.retired.iter().all(|(_, until)| *until > now) {
            return ring.jwks.clone();
        }
        // A retired key's last assertion has expired: publish it no more.
        self.reload_keys_at(now);
        self.ring().jwks.clone()
    }

    /// Reads the key files again (on every policy poll and SIGHUP, by
    /// `reload.rs`) and, when they changed, puts the new keys in force:
    ///
    /// - a new *signing* key signs from now on; the old one stays in the
    ///   JWKS until the last assertion it signed has expired (now + the
    ///   lifetime), and assertions kept for reuse are signed again;
    /// - a new *next* key (`--assertion-next-key`) is only published, so
    ///   backends that cache the JWKS know it before it signs: rotation
    ///   without a refused request is "publish as next, wait for the
    ///   backends' JWKS cache (5 minutes), then make it the signing key".
    ///
    /// A file that cannot be read or is not a key of the algorithm's kind
    /// leaves the keys in force as they are (logged, and tried again at the next poll).
    pub fn reload_keys(&self) -> KeyReload {
        self.reload_keys_at(now())
    }

    fn reload_keys_at(&self, now: u64) -> KeyReload {
        let mut slot = match self.ring.write() {
            Ok(ring) => ring,
            Err(poisoned) => poisoned.into_inner(),
        };
        let old = Arc::clone(&slot);
        let files = files_hash(self.key_file.as_deref(), self.next_file.as_deref());
        let expired = old.retired.iter().any(|(_, until)| *until <= now);
        if files == old.files && !expired {
            return KeyReload::Unchanged;
        }
        let read = |path: &Option<PathBuf>| {
            path.as_deref()
                .map(|path| read_key(path, self.algorithm))
                .transpose()
        };
        let (signing, next) = match (read(&self.key_file), read(&self.next_file)) {
            // Generated in memory (no file): the same key goes on signing.
            (Ok(signing), Ok(next)) => (
                signing.map_or_else(|| Arc::clone(&old.signing), Arc::new),
                next.map(|k| PublicKey::of(&k)),
            ),
            (Err(e), _) | (_, Err(e)) => {
                if files != old.files {
                    tracing::error!(
                        error = %e,
                        kid = %old.public.kid,
                        "assertion key reload refused; the keys in force stay"
                    );
                }
                return KeyReload::Refused(e.to_string());
            }
        };
        let mut retired: Vec<_> = old
            .retired
            .iter()
            .filter(|(_, until)| *until > now)
            .cloned()
            .collect();
        let new_kid = PublicKey::of(&signing).kid;
        let rotated = new_kid != old.public.kid;
        // Every assertion the old key signed expires by now + lifetime.
        let until = now + self.lifetime;
        if rotated {
            retired.retain(|(k, _)| k.kid != old.public.kid);
            retired.push((old.public.clone(), until));
        }
        let ring = KeyRing::new(signing, next, retired, files);
        let published_changed = ring.jwks != old.jwks;
        *slot = Arc::new(ring);
        drop(slot);
        if rotated {
            // Assertions kept for reuse were signed by the old key: sign again.
            let mut cache = match self.cache.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            cache.by_caller.clear();
            cache.entries = 0;
            drop(cache);
            tracing::info!(
                from = %old.public.kid,
                to = %new_kid,
                old_published_until = until,
                "assertion signing key rotated; the old key stays in the JWKS until its last assertion expires"
            );
            KeyReload::Rotated {
                from: old.public.kid.clone(),
                to: new_kid,
                until,
            }
        } else if published_changed {
            tracing::info!(kid = %new_kid, "assertion JWKS changed (next or retired keys)");
            KeyReload::Published
        } else {
            KeyReload::Unchanged
        }
    }

    /// Signatures made so far (tests show that reuse signs nothing).
    pub fn signatures(&self) -> u64 {
        self.signatures.load(Ordering::Relaxed)
    }

    /// `GET` [`JWKS_PATH`]: the JWKS, cacheable for a few minutes.
    pub fn jwks_response(&self) -> Response<ProxyBody> {
        let mut response = Response::new(
            http_body_util::Full::new(self.jwks())
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
        if !self.reuse {
            return self
                .sign(caller, route, audience, now)
                .map(|(value, _)| value);
        }
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
        // One buffer for the payload, one for the whole JWS, each sized
        // once: a new token signs a new assertion, and regrowing both
        // through serde and base64 showed in the profile.
        let mut payload = Vec::with_capacity(512);
        serde_json::to_writer(&mut payload, &claims).ok()?;
        let ring = self.ring();
        let mut jws = String::with_capacity(
            ring.header_prefix.len() + payload.len().div_ceil(3) * 4 + 1 + MAX_SIGNATURE_B64,
        );
        jws.push_str(&ring.header_prefix);
        B64.encode_string(&payload, &mut jws);
        let signature = ring.signing.sign(&self.rng, jws.as_bytes())?;
        self.signatures.fetch_add(1, Ordering::Relaxed);
        jws.push('.');
        B64.encode_string(&signature, &mut jws);
        let value = HeaderValue::from_maybe_shared(Bytes::from(jws)).ok()?;
        Some((value, exp))
    }
}

/// SHA-256 over the key files' contents (an unreadable one counts as its
/// error), to see a change without parsing.
fn files_hash(key: Option<&Path>, next: Option<&Path>) -> String {
    let mut all = Vec::new();
    for path in [key, next].into_iter().flatten() {
        match std::fs::read(path) {
            Ok(bytes) => all.extend_from_slice(
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref(),
            ),
            Err(e) => all.extend_from_slice(e.to_string().as_bytes()),
        }
        all.push(0);
    }
    B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &all))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
