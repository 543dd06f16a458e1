//! The assertion's key material: the signing algorithm (ES256 or RS256),
//! reading a PEM key of the matching kind, generating and persisting one,
//! signing, and the public key as the JWKS lists it (RFC 7517/7518) with
//! its RFC 7638 thumbprint as `kid`.
//!
//! It ends at bytes: what is signed, and when keys are read again, is
//! `assertion.rs`'s business.

use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};

/// The JWS algorithm the gateway signs with (`--assertion-algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256 (RFC 7518 §3.4): small and fast.
    #[default]
    #[value(name = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), an RSA key of at
    /// least 2048 bits: for backends whose JWT library knows only RSA.
    #[value(name = "RS256")]
    Rs256,
}

impl Algorithm {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }

    /// The key it needs, for error messages.
    fn key_kind(self) -> &'static str {
        match self {
            Algorithm::Es256 => "a P-256 (EC) key",
            Algorithm::Rs256 => "an RSA key of at least 2048 bits",
        }
    }

    /// The file a generated key is kept in, inside `--assertion-key-dir`:
    /// one per algorithm, so switching it finds no key of the other kind.
    pub fn generated_key_file(self) -> &'static str {
        match self {
            Algorithm::Es256 => super::GENERATED_KEY_FILE,
            Algorithm::Rs256 => super::GENERATED_RSA_KEY_FILE,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("--assertion-key: cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: not a P-256 or RSA private key in PEM (PKCS#8 `PRIVATE KEY`, `EC PRIVATE KEY` \
         or `RSA PRIVATE KEY`); --assertion-algorithm {algorithm} needs {}",
        path.display(), algorithm.key_kind()
    )]
    Parse { path: PathBuf, algorithm: Algorithm },
    #[error(
        "{}: {found}, but --assertion-algorithm {algorithm} needs {}",
        path.display(), algorithm.key_kind()
    )]
    WrongKind {
        path: PathBuf,
        found: &'static str,
        algorithm: Algorithm,
    },
    #[error(
        "{}: the RSA key is {problem}; --assertion-algorithm RS256 needs 2048 to 8192 bits",
        path.display()
    )]
    RsaSize {
        path: PathBuf,
        problem: &'static str,
    },
    #[error("--assertion-key-dir: cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a key for {0}")]
    Generate(Algorithm),
}

/// A private key that signs assertions.
pub enum SigningKey {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl SigningKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Ec(_) => Algorithm::Es256,
            SigningKey::Rsa(_) => Algorithm::Rs256,
        }
    }

    /// The JWS signature of `message` (RFC 7515 §5.1 step 5): for ES256 the
    /// fixed-width `r ‖ s` (RFC 7518 §3.4), for RS256 the PKCS#1 v1.5 block.
    pub fn sign(&self, rng: &SystemRandom, message: &[u8]) -> Option<Vec<u8>> {
        match self {
            // Hashed here, once: aws-lc-rs's `sign` runs `EVP_DigestSign`
            // twice (for the length, then the signature), hashing the
            // message each time. The same SHA-256 and the same ECDSA.
            SigningKey::Ec(key) => key
                .sign_digest(&digest(&SHA256, message))
                .ok()
                .map(|s| s.as_ref().to_vec()),
            SigningKey::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, rng, message, &mut signature)
                    .ok()?;
                Some(signature)
            }
        }
    }
}

/// A public key as the JWKS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The RFC 7638 thumbprint.
    pub kid: String,
    pub jwk: serde_json::Value,
}

impl PublicKey {
    pub fn of(key: &SigningKey) -> PublicKey {
        match key {
            SigningKey::Ec(key) => {
                let (x, y) = coordinates(key);
                let kid = ec_thumbprint(&x, &y);
                let jwk = serde_json::json!({
                    "kty": "EC", "crv": "P-256", "x": x, "y": y,
                    "kid": kid, "use": "sig", "alg": "ES256",
                });
                PublicKey { kid, jwk }
            }
            SigningKey::Rsa(key) => {
                // Big-endian without leading zero bytes (RFC 7518 §6.3.1).
                let parts = PublicKeyComponents::<Vec<u8>>::from(key.public_key());
                let (n, e) = (B64.encode(&parts.n), B64.encode(&parts.e));
                let kid = rsa_thumbprint(&n, &e);
                let jwk = serde_json::json!({
                    "kty": "RSA", "n": n, "e": e,
                    "kid": kid, "use": "sig", "alg": "RS256",
                });
                PublicKey { kid, jwk }
            }
        }
    }
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
/// lexicographic order, without whitespace (§3.2: `crv`, `kty`, `x`, `y`).
pub fn ec_thumbprint(x: &str, y: &str) -> String {
    sha256_b64(&format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
    ))
}

/// RFC 7638 §3.2 for RSA: `e`, `kty`, `n`.
pub fn rsa_thumbprint(n: &str, e: &str) -> String {
    sha256_b64(&format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#))
}

fn sha256_b64(canonical: &str) -> String {
    B64.encode(digest(&SHA256, canonical.as_bytes()))
}

/// The key in `path`, of the kind `algorithm` needs.
pub fn read_key(path: &Path, algorithm: Algorithm) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    // A JWK (a JSON object) or PEM: every replica can take the same key
    // from one Kubernetes Secret in either form.
    let parsed = if text.trim_start().starts_with('{') {
        parse_jwk(&text)
    } else {
        parse_pem(&text)
    };
    let key = match parsed {
        Ok(key) => key,
        Err(Unusable::NotAKey) => {
            return Err(KeyError::Parse {
                path: path.to_owned(),
                algorithm,
            });
        }
        Err(Unusable::RsaSize(problem)) if algorithm == Algorithm::Rs256 => {
            return Err(KeyError::RsaSize {
                path: path.to_owned(),
                problem,
            });
        }
        Err(Unusable::RsaSize(_)) => {
            return Err(KeyError::WrongKind {
                path: path.to_owned(),
                found: "an RSA key",
                algorithm,
            });
        }
    };
    if key.algorithm() != algorithm {
        return Err(KeyError::WrongKind {
            path: path.to_owned(),
            found: match key {
                SigningKey::Ec(_) => "a P-256 (EC) key",
                SigningKey::Rsa(_) => "an RSA key",
            },
            algorithm,
        });
    }
    Ok(key)
}

/// Why a PEM text gave no key.
#[derive(Debug, PartialEq, Eq)]
pub enum Unusable {
    /// No PEM private key block, or one that is neither P-256 nor RSA.
    NotAKey,
    /// An RSA key, but shorter than 2048 or longer than 8192 bits.
    RsaSize(&'static str),
}

/// A key from PEM: the first `PRIVATE KEY` (PKCS#8, P-256 or RSA),
/// `EC PRIVATE KEY` (SEC1) or `RSA PRIVATE KEY` (PKCS#1) block.
pub fn parse_pem(text: &str) -> Result<SigningKey, Unusable> {
    let block = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]
        .into_iter()
        .filter_map(|label| Some((label, text.find(&format!("-----BEGIN {label}-----"))?)))
        .min_by_key(|(_, at)| *at);
    let Some((label, start)) = block else {
        return Err(Unusable::NotAKey);
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = &text[start + begin.len()..];
    let body = &body[..body.find(&end).ok_or(Unusable::NotAKey)?];
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(b64).map_err(|_| Unusable::NotAKey)?;
    match label {
        "PRIVATE KEY" => match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der) {
            Ok(key) => Ok(SigningKey::Ec(key)),
            Err(_) => rsa_key(RsaKeyPair::from_pkcs8(&der)),
        },
        "EC PRIVATE KEY" => {
            EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                .map(SigningKey::Ec)
                .map_err(|_| Unusable::NotAKey)
        }
        _ => rsa_key(RsaKeyPair::from_der(&der)),
    }
}

/// A private key as a JWK (RFC 7518 §6.2.2, §6.3.2): `"kty": "EC"` with
/// `"crv": "P-256"`, `x`, `y` and `d`, or `"kty": "RSA"` with `n`, `e`, `d`,
/// `p`, `q`, `dp`, `dq` and `qi` (base64url). A public JWK, another curve or
/// type, or a member missing is no key.
pub fn parse_jwk(text: &str) -> Result<SigningKey, Unusable> {
    let jwk: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| Unusable::NotAKey)?;
    let member = |name: &str| -> Result<Vec<u8>, Unusable> {
        let value = jwk
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or(Unusable::NotAKey)?;
        B64.decode(value).map_err(|_| Unusable::NotAKey)
    };
    match jwk.get("kty").and_then(|v| v.as_str()) {
        Some("EC") if jwk.get("crv").and_then(|v| v.as_str()) == Some("P-256") => {
            let (x, y, d) = (member("x")?, member("y")?, member("d")?);
            if x.len() != 32 || y.len() != 32 || d.len() != 32 {
                return Err(Unusable::NotAKey);
            }
            let public = [&[0x04][..], &x, &y].concat();
            EcdsaKeyPair::from_private_key_and_public_key(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &d,
                &public,
            )
            .map(SigningKey::Ec)
            .map_err(|_| Unusable::NotAKey)
        }
        Some("RSA") => {
            // PKCS#1 RSAPrivateKey: SEQUENCE { version 0, n, e, d, p, q,
            // dp, dq, qi }, DER.
            let mut body = der_integer(&[0]);
            for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
                body.extend(der_integer(&member(name)?));
            }
            let der = der_tlv(0x30, &body);
            rsa_key(RsaKeyPair::from_der(&der))
        }
        _ => Err(Unusable::NotAKey),
    }
}

/// An RSA key as parsed, its size refused in words (`aws-lc-rs` takes
/// 2048 to 8192 bits).
fn rsa_key(
    parsed: Result<RsaKeyPair, aws_lc_rs::error::KeyRejected>,
) -> Result<SigningKey, Unusable> {
    match parsed {
        Ok(key) => Ok(SigningKey::Rsa(key)),
        Err(e) if e.description_() == "TooSmall" => {
            Err(Unusable::RsaSize("shorter than 2048 bits"))
        }
        Err(e) if e.description_() == "TooLarge" => Err(Unusable::RsaSize("longer than 8192 bits")),
        Err(_) => Err(Unusable::NotAKey),
    }
}

/// A DER INTEGER of the unsigned big-endian `bytes`.
fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let mut content = bytes[first..].to_vec();
    if content.is_empty() {
        content.push(0);
    }
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    der_tlv(0x02, &content)
}

/// A DER tag, length and value.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A new key for `algorithm` and its PKCS#8 document (to persist it):
/// P-256, or RSA-2048 (`aws-lc-rs` generates both).
pub fn generate(algorithm: Algorithm) -> Result<(SigningKey, Vec<u8>), KeyError> {
    let failed = |_| KeyError::Generate(algorithm);
    match algorithm {
        Algorithm::Es256 => {
            let document = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(failed)?;
            let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.as_ref())
                .map_err(|_| KeyError::Generate(algorithm))?;
            Ok((SigningKey::Ec(key), document.as_ref().to_vec()))
        }
        Algorithm::Rs256 => {
            let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
            let document = key.as_der().map_err(failed)?;
            Ok((SigningKey::Rsa(key), document.as_ref().to_vec()))
        }
    }
}

/// The key in `dir`, or a new one written there (mode 0600). Two replicas
/// starting at once on a shared directory end up with the same key: only
/// one creates the file, the other reads it.
pub fn key_in_dir(dir: &Path, algorithm: Algorithm) -> Result<SigningKey, KeyError> {
    let path = dir.join(algorithm.generated_key_file());
    if path.exists() {
        return read_key(&path, algorithm);
    }
    let (key, document) = generate(algorithm)?;
    let pem = to_pem(&document);
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
            tracing::info!(path = %path.display(), %algorithm, "generated the assertion signing key");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(&path, algorithm),
        Err(e) => Err(write_error(e)),
    }
}

/// A PKCS#8 document as PEM.
pub fn to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}
