//! `--trust gateway-assertion`: the identity comes from the gateway's signed
//! identity assertion (`X-User-Assertion`), not from the network.
//!
//! The gateway signs a short JWS for every authorized request (ES256, or
//! RS256 with its `--assertion-algorithm`) and publishes its public keys as
//! a JWKS (`/.well-known/authz-proxy/jwks.json`, on its admin listener too).
//! [`Verifier`] checks one the way any JWT library does: the key by `kid`
//! from that JWKS, `alg` ES256 or RS256 and the one that key is for (an EC
//! P-256 key verifies only ES256, an RSA key only RS256; never `none` or an
//! HMAC), `iss` and `aud` exact, `exp` and `iat` with a
//! small leeway; then it takes the caller from the claims (`oid`, `tid`,
//! `roles`, `name`, `preferred_username`) and refuses a request whose
//! `X-User-*` headers say something else.
//!
//! The JWKS is fetched lazily — at the first request (or `/ready`) that
//! needs it, not at start-up — so the backend may start before the gateway.
//! It is kept and fetched again when an assertion names a key it does not
//! hold (at most once per [`REFETCH_COOLDOWN`]; the gateway publishes a new
//! key before it signs with it), and in the background once it is older
//! than [`MAX_KEYS_AGE`], so a key the gateway withdrew stops verifying.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use warp::http::{HeaderMap, HeaderName};

use crate::identity::{Identity, headers};

/// The header the gateway puts the assertion in, unless configured otherwise.
pub const DEFAULT_HEADER: &str = "x-user-assertion";

/// Seconds of clock skew allowed on `exp` and `iat`.
pub const LEEWAY_SECONDS: u64 = 30;

/// After a successful fetch, an unknown `kid` fetches again only this much later.
pub const REFETCH_COOLDOWN: Duration = Duration::from_secs(10);

/// After a failed fetch, the next attempt waits this long (requests in
/// between are answered 503 at once instead of each waiting on a dead gateway).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Keys older than this are fetched again in the background (the gateway
/// serves its JWKS with `max-age=300`).
pub const MAX_KEYS_AGE: Duration = Duration::from_secs(300);

/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// The shortest RSA modulus a JWKS key may have (RFC 7518 §3.3: 2048 bits).
const MIN_RSA_BITS: usize = 2048;

/// What the backend expects of an assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where the gateway's JWKS is (`http://` or `https://`).
    pub jwks_url: String,
    /// The exact `iss`: the gateway's `--assertion-issuer`.
    pub issuer: String,
    /// The exact `aud`: the gateway's `--assertion-audience` (by default
    /// the origin of its `--upstream`, i.e. this backend's URL as it sees it).
    pub audience: String,
    /// The header carrying the assertion (lowercase).
    pub header: HeaderName,
}

/// Why a request's assertion was refused: each is a 401 whose `detail`
/// says which, except [`Refusal::KeysUnavailable`] (503: not the caller's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Missing identity assertion ({0} header)")]
    Missing(String),
    #[error("More than one identity assertion ({0} header)")]
    Repeated(String),
    #[error("Malformed identity assertion: {0}")]
    Malformed(String),
    #[error("Identity assertion algorithm must be ES256 or RS256, got {0}")]
    Algorithm(String),
    #[error(
        "Identity assertion algorithm {header} does not match its key (kid {kid}), \
         which is {} key for {}", key.key_kind(), key.name()
    )]
    KeyMismatch {
        header: &'static str,
        kid: String,
        key: Alg,
    },
    #[error("Identity assertion has no key id (kid)")]
    NoKeyId,
    #[error("Identity assertion signed by an unknown key (kid {0})")]
    UnknownKey(String),
    #[error("Identity assertion signature is invalid")]
    BadSignature,
    #[error("Identity assertion expired")]
    Expired,
    #[error("Identity assertion issued in the future (iat)")]
    IssuedInFuture,
    #[error("Identity assertion from another issuer (iss)")]
    WrongIssuer,
    #[error("Identity assertion for another audience (aud)")]
    WrongAudience,
    #[error("Identity assertion lacks the claim {0}")]
    MissingClaim(String),
    #[error("{0} header disagrees with the identity assertion")]
    HeaderMismatch(&'static str),
    #[error("Cannot verify the identity assertion: the gateway's keys are unavailable")]
    KeysUnavailable,
}

impl Refusal {
    /// The fixed reason logged for this refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Missing(_) => "assertion_missing",
            Refusal::Repeated(_) => "assertion_repeated",
            Refusal::Malformed(_) => "assertion_malformed",
            Refusal::Algorithm(_) | Refusal::KeyMismatch { .. } => "assertion_algorithm",
            Refusal::NoKeyId => "assertion_no_kid",
            Refusal::UnknownKey(_) => "assertion_unknown_key",
            Refusal::BadSignature => "assertion_signature",
            Refusal::Expired => "assertion_expired",
            Refusal::IssuedInFuture => "assertion_iat",
            Refusal::WrongIssuer => "assertion_issuer",
            Refusal::WrongAudience => "assertion_audience",
            Refusal::MissingClaim(_) => "assertion_claim",
            Refusal::HeaderMismatch(_) => "assertion_header_mismatch",
            Refusal::KeysUnavailable => "assertion_keys_unavailable",
        }
    }
}

/// The claims the backend reads; others (`jti`, `route`, `azp`…) are ignored.
#[derive(Debug, Deserialize)]
struct Claims {
    iat: Option<u64>,
    oid: Option<String>,
    tid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    scp: Option<String>,
    name: Option<String>,
    preferred_username: Option<String>,
    idtyp: Option<String>,
}

/// The two algorithms the gateway signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA P-256 SHA-256: a JWK with `kty` `EC`, `crv` `P-256`.
    Es256,
    /// RSASSA-PKCS1-v1_5 SHA-256: a JWK with `kty` `RSA`.
    Rs256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
        }
    }

    fn key_kind(self) -> &'static str {
        match self {
            Alg::Es256 => "an EC P-256",
            Alg::Rs256 => "an RSA",
        }
    }

    fn jsonwebtoken(self) -> Algorithm {
        match self {
            Alg::Es256 => Algorithm::ES256,
            Alg::Rs256 => Algorithm::RS256,
        }
    }
}

/// A key of the gateway's JWKS and the one algorithm it verifies.
#[derive(Clone)]
pub struct VerifyingKey {
    pub alg: Alg,
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The keys last fetched.
struct Keys {
    by_kid: HashMap<String, VerifyingKey>,
    fetched: Instant,
}

/// Fetch bookkeeping, behind an async mutex so that one fetch runs at a
/// time and requests that wait for it use its result.
#[derive(Default)]
struct Fetching {
    last_success: Option<Instant>,
    last_failure: Option<Instant>,
    fetches: u64,
}

/// Verifies assertions against the gateway's JWKS. Cheap to share (`Arc`).
pub struct Verifier {
    settings: Settings,
    /// One per algorithm, each accepting only it.
    es256: Validation,
    rs256: Validation,
    client: reqwest::Client,
    keys: RwLock<Option<Arc<Keys>>>,
    fetching: tokio::sync::Mutex<Fetching>,
    /// A background refresh is running (one at a time).
    refreshing: AtomicBool,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(settings: Settings) -> Result<Verifier, String> {
        let url = reqwest::Url::parse(&settings.jwks_url)
            .map_err(|e| format!("--gateway-jwks-url {:?}: {e}", settings.jwks_url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "--gateway-jwks-url {:?}: must be an http:// or https:// URL",
                settings.jwks_url
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the JWKS client: {e}"))?;
        let validation = |alg: Alg| {
            let mut validation = Validation::new(alg.jsonwebtoken());
            validation.set_issuer(&[&settings.issuer]);
            validation.set_audience(&[&settings.audience]);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
            validation.leeway = LEEWAY_SECONDS;
            validation
        };
        let (es256, rs256) = (validation(Alg::Es256), validation(Alg::Rs256));
        Ok(Verifier {
            settings,
            es256,
            rs256,
            client,
            keys: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(Fetching::default()),
            refreshing: AtomicBool::new(false),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// JWKS fetches attempted so far (tests).
    pub async fn fetches(&self) -> u64 {
        self.fetching.lock().await.fetches
    }

    /// The caller of a request, from its assertion; the `X-User-*` headers,
    /// where present, must say the same.
    pub async fn identity(self: &Arc<Self>, request: &HeaderMap) -> Result<Identity, Refusal> {
        let header = &self.settings.header;
        let mut values = request.get_all(header).iter();
        let token = match (values.next(), values.next()) {
            (None, _) => return Err(Refusal::Missing(header.to_string())),
            (Some(_), Some(_)) => return Err(Refusal::Repeated(header.to_string())),
            (Some(value), None) => value
                .to_str()
                .map_err(|_| Refusal::Malformed("not ASCII".into()))?,
        };
        let (alg, kid) = key_id(token)?;
        let key = self.key(&kid).await?;
        if key.alg != alg {
            return Err(Refusal::KeyMismatch {
                header: alg.name(),
                kid,
                key: key.alg,
            });
        }
        let identity = self.verify_with(token, &key, now())?;
        headers_agree(request, &identity)?;
        Ok(identity.0)
    }

    /// Ready when keys are held, or can be fetched now.
    pub async fn ready(self: &Arc<Self>) -> Result<(), String> {
        if self.current().is_some() {
            return Ok(());
        }
        self.refresh(true).await
    }

    /// Checks `token` with `key` at time `now`; the identity plus the claims
    /// compared with the headers.
    fn verify_with(
        &self,
        token: &str,
        key: &VerifyingKey,
        now: u64,
    ) -> Result<(Identity, Asserted), Refusal> {
        let validation = match key.alg {
            Alg::Es256 => &self.es256,
            Alg::Rs256 => &self.rs256,
        };
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => Refusal::Expired,
                    ErrorKind::InvalidIssuer => Refusal::WrongIssuer,
                    ErrorKind::InvalidAudience => Refusal::WrongAudience,
                    ErrorKind::InvalidSignature => Refusal::BadSignature,
                    ErrorKind::InvalidAlgorithm => Refusal::Algorithm("another algorithm".into()),
                    ErrorKind::MissingRequiredClaim(claim) => Refusal::MissingClaim(claim.clone()),
                    ErrorKind::InvalidClaimFormat(claim) => {
                        Refusal::Malformed(format!("claim {claim} has the wrong type"))
                    }
                    ErrorKind::Base64(_) => Refusal::Malformed("a part is not base64url".into()),
                    ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                        Refusal::Malformed("its claims are not a JSON object".into())
                    }
                    ErrorKind::InvalidToken => Refusal::Malformed("not a compact JWS".into()),
                    other => Refusal::Malformed(format!("{other:?}")),
                }
            })?;
        let claims = data.claims;
        match claims.iat {
            None => return Err(Refusal::MissingClaim("iat".into())),
            Some(iat) if iat > now + LEEWAY_SECONDS => return Err(Refusal::IssuedInFuture),
            Some(_) => {}
        }
        let required = |value: Option<String>, claim: &str| {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Refusal::MissingClaim(claim.into()))
        };
        let identity = Identity {
            user_id: required(claims.oid, "oid")?,
            tenant_id: required(claims.tid, "tid")?,
            roles: claims.roles,
            name: claims.name,
            email: claims.preferred_username,
        };
        Ok((
            identity,
            Asserted {
                scopes: claims.scp,
                kind: claims.idtyp,
            },
        ))
    }

    /// The keys held now, if any.
    fn current(&self) -> Option<Arc<Keys>> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key `kid`: from the keys held, else after fetching them again
    /// (unless the last fetch was too recent).
    async fn key(self: &Arc<Self>, kid: &str) -> Result<VerifyingKey, Refusal> {
        if let Some(keys) = self.current()
            && let Some(key) = keys.by_kid.get(kid)
        {
            if keys.fetched.elapsed() > MAX_KEYS_AGE {
                self.refresh_in_background();
            }
            return Ok(key.clone());
        }
        // Held keys are kept if the fetch fails: the kid is then unknown.
        let _ = self.refresh(false).await;
        match self.current() {
            Some(keys) => keys
                .by_kid
                .get(kid)
                .cloned()
                .ok_or_else(|| Refusal::UnknownKey(kid.to_owned())),
            None => Err(Refusal::KeysUnavailable),
        }
    }

    fn refresh_in_background(self: &Arc<Self>) {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let verifier = Arc::clone(self);
        tokio::spawn(async move {
            let _ = verifier.refresh(false).await;
            verifier.refreshing.store(false, Ordering::Release);
        });
    }

    /// Fetches the JWKS unless a fetch finished too recently (`force`
    /// skips the cooldown after a success, not the one after a failure).
    /// Concurrent callers wait for the one fetch in progress.
    async fn refresh(&self, force: bool) -> Result<(), String> {
        let started = Instant::now();
        let mut fetching = self.fetching.lock().await;
        // Someone else fetched while this caller waited for the lock.
        if fetching.last_success.is_some_and(|at| at >= started) {
            return Ok(());
        }
        if fetching
            .last_failure
            .is_some_and(|at| at.elapsed() < RETRY_AFTER_FAILURE)
        {
            return Err("the last JWKS fetch failed less than a second ago".into());
        }
        if !force
            && fetching
                .last_success
                .is_some_and(|at| at.elapsed() < REFETCH_COOLDOWN)
        {
            return Ok(());
        }
        fetching.fetches += 1;
        match self.fetch().await {
            Ok(by_kid) => {
                tracing::info!(
                    url = %self.settings.jwks_url,
                    keys = by_kid.len(),
                    "gateway JWKS loaded"
                );
                let keys = Arc::new(Keys {
                    by_kid,
                    fetched: Instant::now(),
                });
                match self.keys.write() {
                    Ok(mut slot) => *slot = Some(keys),
                    Err(poisoned) => *poisoned.into_inner() = Some(keys),
                }
                fetching.last_success = Some(Instant::now());
                fetching.last_failure = None;
                Ok(())
            }
            Err(error) => {
                tracing::warn!(url = %self.settings.jwks_url, %error, "gateway JWKS fetch failed");
                fetching.last_failure = Some(Instant::now());
                Err(error)
            }
        }
    }

    /// One GET of the JWKS: its EC P-256 and RSA keys by `kid`.
    async fn fetch(&self) -> Result<HashMap<String, VerifyingKey>, String> {
        let mut response = self
            .client
            .get(&self.settings.jwks_url)
            .send()
            .await
            .map_err(|e| format!("GET {}: {e}", self.settings.jwks_url))?;
        if !response.status().is_success() {
            return Err(format!(
                "GET {}: status {}",
                self.settings.jwks_url,
                response.status()
            ));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(format!("JWKS larger than {MAX_JWKS_BYTES} bytes"));
            }
        }
        keys_from_jwks(&body)
    }

    #[cfg(test)]
    fn with_keys(settings: Settings, jwks: &[u8]) -> Verifier {
        let verifier = Verifier::new(settings).unwrap();
        let by_kid = keys_from_jwks(jwks).unwrap();
        *verifier.keys.write().unwrap() = Some(Arc::new(Keys {
            by_kid,
            fetched: Instant::now(),
        }));
        verifier.fetching.try_lock().unwrap().last_success = Some(Instant::now());
        verifier
    }
}

/// The EC P-256 (ES256) and RSA (RS256, at least 2048 bits) keys of a
/// JWKS document, by `kid`; other keys are skipped (a JWKS may carry keys
/// for other algorithms, e.g. an RSA key marked `PS256`), keys without a
/// `kid` too.
pub fn keys_from_jwks(body: &[u8]) -> Result<HashMap<String, VerifyingKey>, String> {
    let set: JwkSet =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not valid JSON: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(alg) = jwk_alg(jwk) else {
            continue;
        };
        let Some(kid) = &jwk.common.key_id else {
            continue;
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid.clone(), VerifyingKey { alg, key });
            }
            Err(e) => tracing::warn!(kid, error = %e, "JWKS key skipped"),
        }
    }
    if keys.is_empty() {
        return Err("the JWKS has no P-256 or RSA key with a kid".into());
    }
    Ok(keys)
}

/// The algorithm a JWK is for: its `kty` (and curve) decide, and an `alg`
/// member, if any, must agree; `None` for any other key.
fn jwk_alg(jwk: &Jwk) -> Option<Alg> {
    let alg = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Alg::Es256,
        AlgorithmParameters::RSA(rsa) => {
            let n = URL_SAFE_NO_PAD.decode(&rsa.n).ok()?;
            let bits = n
                .iter()
                .position(|b| *b != 0)
                .map_or(0, |i| (n.len() - i) * 8);
            if bits < MIN_RSA_BITS {
                tracing::warn!(
                    kid = jwk.common.key_id.as_deref().unwrap_or_default(),
                    bits,
                    "JWKS RSA key shorter than 2048 bits skipped"
                );
                return None;
            }
            Alg::Rs256
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(alg),
        Some(KeyAlgorithm::ES256) if alg == Alg::Es256 => Some(alg),
        Some(KeyAlgorithm::RS256) if alg == Alg::Rs256 => Some(alg),
        Some(_) => None,
    }
}

/// The `alg` and `kid` of a compact JWS, once its header says ES256 or
/// RS256. The header is read here (not only by `jsonwebtoken`) so that
/// `none`, HS256 and the like are refused by name before any key is looked up.
fn key_id(token: &str) -> Result<(Alg, String), Refusal> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed(
            "not a compact JWS (three dot-separated parts)".into(),
        ));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Refusal::Malformed("its header is not base64url".into()))?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|_| Refusal::Malformed("its header is not JSON".into()))?;
    let alg = match header.get("alg").and_then(|a| a.as_str()) {
        Some("ES256") => Alg::Es256,
        Some("RS256") => Alg::Rs256,
        Some(other) => return Err(Refusal::Algorithm(other.chars().take(20).collect())),
        None => return Err(Refusal::Algorithm("no alg".into())),
    };
    header
        .get("kid")
        .and_then(|k| k.as_str())
        .filter(|k| !k.is_empty())
        .map(|kid| (alg, kid.to_owned()))
        .ok_or(Refusal::NoKeyId)
}

/// Claims compared with headers the backend does not otherwise read.
#[derive(Debug)]
struct Asserted {
    scopes: Option<String>,
    kind: Option<String>,
}

/// Each `X-User-*` header that is present must match the assertion: a
/// header that says something else means something between the gateway
/// and here changed it, so the request is refused rather than half-trusted.
fn headers_agree(
    request: &HeaderMap,
    (identity, asserted): &(Identity, Asserted),
) -> Result<(), Refusal> {
    // Every copy of the header, percent-decoded; `None` if absent.
    let all = |name: &str| -> Option<Vec<String>> {
        let values: Vec<String> = request
            .get_all(name)
            .iter()
            .map(|v| {
                let text = String::from_utf8_lossy(v.as_bytes());
                text.trim().to_owned()
            })
            .collect();
        (!values.is_empty()).then_some(values)
    };
    let decode = |v: &str| percent_decode_str(v).decode_utf8_lossy().into_owned();
    let single = |name: &'static str, expected: Option<&str>| -> Result<(), Refusal> {
        let Some(values) = all(name) else {
            return Ok(());
        };
        match (values.as_slice(), expected) {
            ([one], Some(expected)) if decode(one) == expected => Ok(()),
            _ => Err(Refusal::HeaderMismatch(canonical(name))),
        }
    };
    let list = |name: &'static str, separator: char, expected: &[String]| {
        let Some(values) = all(name) else {
            return Ok(());
        };
        let [one] = values.as_slice() else {
            return Err(Refusal::HeaderMismatch(canonical(name)));
        };
        let items: Vec<String> = one
            .split(separator)
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(decode)
            .collect();
        let expected: Vec<&String> = expected.iter().filter(|e| !e.is_empty()).collect();
        if items.iter().eq(expected.iter().copied()) {
            Ok(())
        } else {
            Err(Refusal::HeaderMismatch(canonical(name)))
        }
    };
    single(headers::USER_ID, Some(&identity.user_id))?;
    single(headers::USER_TENANT, Some(&identity.tenant_id))?;
    list(headers::USER_ROLES, ',', &identity.roles)?;
    single(headers::USER_NAME, identity.name.as_deref())?;
    single(headers::USER_EMAIL, identity.email.as_deref())?;
    let scopes: Vec<String> = asserted
        .scopes
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .map(str::to_owned)
        .collect();
    list(headers::USER_SCOPES, ' ', &scopes)?;
    single(headers::USER_TYPE, asserted.kind.as_deref())?;
    Ok(())
}

/// The header's name as people write it, for the message.
fn canonical(name: &'static str) -> &'static str {
    match name {
        headers::USER_ID => "X-User-Id",
        headers::USER_TENANT => "X-User-Tenant",
        headers::USER_ROLES => "X-User-Roles",
        headers::USER_NAME => "X-User-Name",
        headers::USER_EMAIL => "X-User-Email",
        headers::USER_SCOPES => "X-User-Scopes",
        headers::USER_TYPE => "X-User-Type",
        other => other,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
