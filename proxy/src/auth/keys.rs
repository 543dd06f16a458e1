//! The signing-key set: fetched from OIDC discovery (`jwks_uri`), parsed from
//! a JWKS (RFC 7517), and used to verify signatures.
//!
//! This module knows how to fetch and read keys; when to fetch them (schedule,
//! cooldown, coalescing) is the refresh module's job, and which key a token
//! names is the token module's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rsa::{PublicKeyComponents, RsaParameters};
use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::jws::ParsedToken;
use super::{AuthError, AuthSetupError, KeyFetchError};

/// Discovery documents and key sets are a few KiB; anything near this is
/// not what we asked for, and must not be buffered without bound.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// RSA keys shorter than this are skipped (RFC 7518 §3.3 requires 2048 bits).
const MIN_RSA_BITS: usize = 2048;

/// RSA signatures this gateway verifies are at most 8192 bits (the upper end
/// of aws-lc's `*_2048_8192_*` parameters).
const MAX_SIGNATURE_BYTES: usize = 8192 / 8;

/// One usable RSA signing key from the JWKS.
pub(crate) struct VerifyingKey {
    /// The `alg` the JWK is restricted to, if it says (RFC 7517 §4.4).
    alg: Option<Algorithm>,
    /// Modulus and exponent, big-endian without leading zeros: kept to
    /// recognise the same key across refreshes.
    n: Vec<u8>,
    e: Vec<u8>,
    /// The JWK's `issuer` (Entra's: the `{tenantid}` template, or one
    /// tenant's issuer for keys published for it): whom the key may verify
    /// tokens for (`claims::KeyIssuer`).
    issuer: Option<String>,
    /// The key parsed once, at load, for each algorithm it may verify: an
    /// RSA verification then costs the modular exponentiation alone, not
    /// rebuilding the key from `n` and `e` every time.
    parsed: Vec<(Algorithm, ParsedPublicKey)>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("bits", &(self.n.len() * 8))
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// The JWK's `issuer` field, if it had one.
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// Verifies the token's signature (RFC 7515 §5.2) with this key.
    pub(crate) fn verify(&self, token: &ParsedToken<'_>) -> Result<(), AuthError> {
        if self.alg.is_some_and(|a| a != token.alg) {
            return Err(AuthError::DisallowedAlgorithm);
        }
        // A wrong signature, a signature that is not base64url or too long,
        // a key the algorithm cannot use: all the same to the client.
        let Some((_, key)) = self.parsed.iter().find(|(alg, _)| *alg == token.alg) else {
            return Err(AuthError::BadSignature);
        };
        let mut signature = [0u8; MAX_SIGNATURE_BYTES];
        if token.signature.len() > MAX_SIGNATURE_BYTES.div_ceil(3) * 4 {
            return Err(AuthError::BadSignature);
        }
        let len = URL_SAFE_NO_PAD
            .decode_slice(token.signature, &mut signature)
            .map_err(|_| AuthError::BadSignature)?;
        key.verify_sig(token.signing_input.as_bytes(), &signature[..len])
            .map_err(|_| AuthError::BadSignature)
    }
}

/// The aws-lc verification parameters of an RSA JWS algorithm (RFC 7518
/// §3.3, §3.5); `None` for anything else.
fn rsa_parameters(alg: Algorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// The current keys by `kid`. Immutable: a refresh builds a new set and swaps
/// it in whole, so a request sees either the old set or the new one.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, Arc<VerifyingKey>>,
    /// The `issuer` of the discovery document the keys came from, checked to
    /// be one the gateway expects; `None` for a key set read from a file.
    issuer: Option<String>,
}

impl KeySet {
    /// The discovery document's issuer.
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The key named by `kid`, if the set holds it.
    pub(crate) fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.keys.get(kid)
    }

    /// How many keys the set holds.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Reads a JWKS (RFC 7517 §5), keeping RSA keys with `kid`, `n` and `e`
    /// whose `use` (if any) is `sig` and whose `alg` (if any) is allowed.
    /// Other entries are skipped, not fatal: the set may hold keys for other
    /// purposes. A key identical to one in `previous` keeps its identity, so
    /// cached tokens verified with it stay valid across a refresh.
    ///
    /// Returns the set and how many entries were skipped.
    pub(crate) fn from_jwks(
        body: &[u8],
        allowed: &[Algorithm],
        previous: Option<&KeySet>,
    ) -> Result<(KeySet, usize), serde_json::Error> {
        #[derive(Deserialize)]
        struct Jwks {
            keys: Vec<Value>,
        }
        let jwks: Jwks = serde_json::from_slice(body)?;
        let mut keys = HashMap::with_capacity(jwks.keys.len());
        let mut skipped = 0;
        for entry in jwks.keys {
            match parse_jwk(entry, allowed) {
                Some((kid, key)) if !keys.contains_key(&kid) => {
                    let key = match previous.and_then(|p| p.keys.get(&kid)) {
                        Some(old)
                            if old.n == key.n
                                && old.e == key.e
                                && old.alg == key.alg
                                && old.issuer == key.issuer =>
                        {
                            Arc::clone(old)
                        }
                        _ => Arc::new(key),
                    };
                    keys.insert(kid, key);
                }
                // A duplicated kid: the first one wins; the second is skipped.
                _ => skipped += 1,
            }
        }
        Ok((KeySet { keys, issuer: None }, skipped))
    }
}

/// One JWK, read leniently: a field of the wrong type skips the key.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    issuer: Option<String>,
}

fn parse_jwk(entry: Value, allowed: &[Algorithm]) -> Option<(String, VerifyingKey)> {
    let jwk: RawJwk = serde_json::from_value(entry).ok()?;
    if jwk.kty.as_deref() != Some("RSA") {
        return None;
    }
    // RFC 7517 §4.2: a key marked for encryption must not verify signatures.
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let alg = match jwk.alg.as_deref() {
        None => None,
        Some(a) => {
            let a: Algorithm = a.parse().ok()?;
            if !allowed.contains(&a) {
                return None;
            }
            Some(a)
        }
    };
    let kid = jwk.kid.filter(|k| !k.is_empty())?;
    let n = strip_leading_zeros(URL_SAFE_NO_PAD.decode(jwk.n?).ok()?);
    let e = strip_leading_zeros(URL_SAFE_NO_PAD.decode(jwk.e?).ok()?);
    if n.len() * 8 < MIN_RSA_BITS || e.is_empty() {
        return None;
    }
    // Parsed for each algorithm it may be used with; a key aws-lc refuses
    // could verify nothing and is skipped like any other unusable entry.
    let components = PublicKeyComponents {
        n: n.as_slice(),
        e: e.as_slice(),
    };
    let parsed = allowed
        .iter()
        .filter(|&&a| alg.is_none_or(|only| only == a))
        .filter_map(|&a| Some((a, rsa_parameters(a)?)))
        .map(|(a, params)| Some((a, components.to_parsed_public_key(params).ok()?)))
        .collect::<Option<Vec<_>>>()?;
    if parsed.is_empty() {
        return None;
    }
    Some((
        kid,
        VerifyingKey {
            alg,
            n,
            e,
            issuer: jwk.issuer,
            parsed,
        },
    ))
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// Fetches discovery, then the JWKS it points to.
#[derive(Debug)]
pub(crate) struct KeyFetcher {
    client: reqwest::Client,
    metadata_url: Url,
    /// Origin of the configured `instance`, e.g. `http://localhost:9400`.
    instance_origin: String,
    /// The discovery `issuer` values the gateway accepts (OpenID Connect
    /// Discovery 1.0 §4.3): the v2 and v1 issuer of the configured tenant,
    /// or their `{tenantid}` templates for a multi-tenant API. Compared
    /// with the configured `instance`, not the metadata URL, so discovery
    /// may come from another host (`--metadata-url`).
    expected_issuers: Vec<String>,
}

impl KeyFetcher {
    pub(crate) fn new(
        metadata_url: &str,
        instance: &str,
        expected_issuers: Vec<String>,
        timeout: Duration,
    ) -> Result<Self, AuthSetupError> {
        let metadata_url = http_url("metadata_url", metadata_url)?;
        let instance_origin = http_url("instance", instance)?
            .origin()
            .ascii_serialization();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("authz-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(AuthSetupError::HttpClient)?;
        Ok(KeyFetcher {
            client,
            metadata_url,
            instance_origin,
            expected_issuers,
        })
    }

    /// Fetches discovery and the JWKS and builds a new key set.
    ///
    /// A discovery document naming an unexpected `issuer` is an error before
    /// its `jwks_uri` is fetched: none of its keys is trusted (OpenID Connect
    /// Discovery 1.0 §4.3). An empty or unusable JWKS is an error, so it
    /// never replaces good keys.
    pub(crate) async fn fetch(
        &self,
        allowed: &[Algorithm],
        previous: Option<&KeySet>,
    ) -> Result<KeySet, KeyFetchError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let body = self.get(self.metadata_url.as_str()).await?;
        let discovery: Discovery =
            serde_json::from_slice(&body).map_err(|source| KeyFetchError::Json {
                url: self.metadata_url.to_string(),
                source,
            })?;
        if !self.expected_issuers.contains(&discovery.issuer) {
            return Err(KeyFetchError::UnexpectedIssuer {
                url: self.metadata_url.to_string(),
                issuer: discovery.issuer,
                expected: self.expected_issuers.join(" or "),
            });
        }
        let jwks_url = self.jwks_url(&discovery.jwks_uri)?;
        let body = self.get(jwks_url.as_str()).await?;
        // Keys of a document with another issuer are judged afresh.
        let previous = previous.filter(|p| p.issuer.as_deref() == Some(&discovery.issuer));
        let (mut set, skipped) =
            KeySet::from_jwks(&body, allowed, previous).map_err(|source| KeyFetchError::Json {
                url: jwks_url.to_string(),
                source,
            })?;
        if set.len() == 0 {
            return Err(KeyFetchError::NoUsableKeys {
                url: jwks_url.to_string(),
                skipped,
            });
        }
        set.issuer = Some(discovery.issuer);
        if skipped > 0 {
            tracing::debug!(
                skipped,
                "skipped JWKS entries that are not RSA signing keys"
            );
        }
        Ok(set)
    }

    /// The URL to fetch the keys from.
    ///
    /// When discovery is fetched from another origin than the issuer's (in
    /// docker compose the gateway reaches the IdP as `http://dev-idp:9400`
    /// while tokens name `http://localhost:9400`), the document's `jwks_uri`
    /// points at the issuer's origin, which the gateway cannot reach. In that
    /// case only, the `jwks_uri` is moved to the metadata URL's origin, path
    /// and query kept. A `jwks_uri` on any other origin is used as given.
    fn jwks_url(&self, jwks_uri: &str) -> Result<Url, KeyFetchError> {
        let mut url = Url::parse(jwks_uri).map_err(|_| KeyFetchError::InvalidJwksUri)?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(KeyFetchError::InvalidJwksUri);
        }
        let metadata_origin = self.metadata_url.origin().ascii_serialization();
        if metadata_origin != self.instance_origin
            && url.origin().ascii_serialization() == self.instance_origin
        {
            let mut moved =
                Url::parse(&metadata_origin).map_err(|_| KeyFetchError::InvalidJwksUri)?;
            moved.set_path(url.path());
            moved.set_query(url.query());
            url = moved;
        }
        Ok(url)
    }

    /// GET with the client's timeout and a response size cap.
    async fn get(&self, url: &str) -> Result<Vec<u8>, KeyFetchError> {
        let http_err = |source| KeyFetchError::Http {
            url: url.to_owned(),
            source,
        };
        let mut response = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(http_err)?;
        if !response.status().is_success() {
            return Err(KeyFetchError::Status {
                url: url.to_owned(),
                status: response.status(),
            });
        }
        let too_large = || KeyFetchError::TooLarge {
            url: url.to_owned(),
            limit: MAX_RESPONSE_BYTES,
        };
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http_err)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Parses an http(s) URL setting.
pub(crate) fn http_url(field: &'static str, value: &str) -> Result<Url, AuthSetupError> {
    let invalid = || AuthSetupError::InvalidUrl {
        field,
        value: value.to_owned(),
    };
    let url = Url::parse(value).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn n_2048() -> String {
        let mut n = vec![0xc3u8; 256];
        n[255] = 0x01;
        URL_SAFE_NO_PAD.encode(n)
    }

    #[test]
    fn only_rsa_signing_keys_with_kid_n_e_are_kept() {
        let n = n_2048();
        let short = URL_SAFE_NO_PAD.encode([0xc3u8; 128]);
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "good", "use": "sig", "n": n, "e": "AQAB", "x5c": ["..."]},
            {"kty": "RSA", "kid": "alg-ok", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "hs", "alg": "HS256", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "short", "n": short, "e": "AQAB"},
            {"kty": "RSA", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "no-e", "n": n},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": 5, "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "good", "n": n, "e": "AQAC"},
            "not an object",
        ]});
        let (set, skipped) =
            KeySet::from_jwks(jwks.to_string().as_bytes(), &[Algorithm::RS256], None).unwrap();
        let mut kids: Vec<_> = set.keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["alg-ok", "good"]);
        assert_eq!(skipped, 10);
        assert_eq!(set.get("good").unwrap().e, [1, 0, 1]);
    }

    #[test]
    fn unchanged_key_keeps_its_identity_across_refresh() {
        let jwks =
            json!({"keys": [{"kty": "RSA", "kid": "k", "n": n_2048(), "e": "AQAB"}]}).to_string();
        let (first, _) = KeySet::from_jwks(jwks.as_bytes(), &[Algorithm::RS256], None).unwrap();
        let (second, _) =
            KeySet::from_jwks(jwks.as_bytes(), &[Algorithm::RS256], Some(&first)).unwrap();
        assert!(Arc::ptr_eq(
            first.get("k").unwrap(),
            second.get("k").unwrap()
        ));

        let changed =
            json!({"keys": [{"kty": "RSA", "kid": "k", "n": n_2048(), "e": "AQAC"}]}).to_string();
        let (third, _) =
            KeySet::from_jwks(changed.as_bytes(), &[Algorithm::RS256], Some(&second)).unwrap();
        assert!(!Arc::ptr_eq(
            second.get("k").unwrap(),
            third.get("k").unwrap()
        ));
    }

    #[test]
    fn html_or_garbage_is_an_error() {
        assert!(KeySet::from_jwks(b"<html>oops</html>", &[Algorithm::RS256], None).is_err());
        assert!(KeySet::from_jwks(b"{\"keys\": 5}", &[Algorithm::RS256], None).is_err());
    }

    fn fetcher(metadata: &str, instance: &str) -> KeyFetcher {
        KeyFetcher::new(metadata, instance, Vec::new(), Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn jwks_uri_moves_to_the_metadata_origin_only_when_it_names_the_issuer_origin() {
        let f = fetcher(
            "http://dev-idp:9400/t/v2.0/.well-known/openid-configuration",
            "http://localhost:9400",
        );
        let url = |u: &str| f.jwks_url(u).unwrap().to_string();
        assert_eq!(
            url("http://localhost:9400/t/discovery/v2.0/keys?x=1"),
            "http://dev-idp:9400/t/discovery/v2.0/keys?x=1"
        );
        assert_eq!(
            url("https://keys.example/keys"),
            "https://keys.example/keys"
        );

        let same = fetcher(
            "https://login.example/t/v2.0/.well-known/openid-configuration",
            "https://login.example",
        );
        assert_eq!(
            same.jwks_url("https://login.example/t/keys")
                .unwrap()
                .as_str(),
            "https://login.example/t/keys"
        );
        assert!(same.jwks_url("ftp://login.example/keys").is_err());
        assert!(same.jwks_url("/relative").is_err());
    }
}
