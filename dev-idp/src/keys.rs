//! The signing keys: RSA key pairs persisted in a data directory, shared by
//! the server and the command-line minter.
//!
//! Layout of the data directory:
//! - `key-{kid}.pem`: one PKCS#8 PEM private key per key (RSA 2048, generated
//!   with aws-lc-rs);
//! - `keys.json`: which kid signs now, and which were retired when.
//!
//! The state file is re-read on every use, so a `dev-idp rotate-keys` run from
//! a shell is seen by a running server, and a token minted by the CLI always
//! verifies against the server's JWKS. Writes go through a temporary file and
//! a rename, so a reader never sees half a file.
//!
//! **Key ids.** As in Entra, `kid` and `x5t` are the same value: the
//! base64url SHA-1 thumbprint of the key's self-signed certificate, which the
//! JWKS publishes as `x5c` (see [`certificate`]). The certificate is a pure
//! function of the key, so the kid is stable across restarts. Verifiers match
//! on `kid`; nothing trusts the certificate.

mod certificate;
pub mod client_cert;
mod pem;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde::{Deserialize, Serialize};

use crate::Error;

const STATE_FILE: &str = "keys.json";

/// One RSA signing key, loaded.
pub struct SigningKey {
    /// Key id, also the `x5t` value (see the module docs).
    pub kid: String,
    /// Modulus, base64url without padding (JWK `n`).
    pub n: String,
    /// Public exponent, base64url without padding (JWK `e`).
    pub e: String,
    /// The self-signed certificate, standard base64 DER (JWK `x5c[0]`).
    pub x5c: String,
    /// The private key for jsonwebtoken.
    pub(crate) encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// What `keys.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyState {
    /// The kid that signs new tokens.
    current: String,
    /// Keys no longer signing, still published until `retired_at + grace`.
    #[serde(default)]
    retired: Vec<RetiredKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RetiredKey {
    kid: String,
    /// Seconds since the Unix epoch.
    retired_at: u64,
}

/// The key directory plus a cache of parsed keys.
#[derive(Debug)]
pub(crate) struct KeyStore {
    dir: PathBuf,
    grace: Duration,
    /// Parsed keys by kid; a PEM file never changes once written.
    cache: Mutex<HashMap<String, Arc<SigningKey>>>,
    /// Serialises rotations within this process.
    rotating: Mutex<()>,
}

impl KeyStore {
    /// Opens (creating when missing) the key directory and its first key.
    pub(crate) fn open(dir: &Path, grace: Duration) -> Result<KeyStore, Error> {
        fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_owned(),
            source,
        })?;
        let store = KeyStore {
            dir: dir.to_owned(),
            grace,
            cache: Mutex::new(HashMap::new()),
            rotating: Mutex::new(()),
        };
        if store.read_state()?.is_none() {
            let kid = store.generate()?;
            let state = KeyState {
                current: kid,
                retired: Vec::new(),
            };
            // Another process may have raced us to it; whoever wrote first wins.
            if !store.create_state(&state)? {
                tracing::debug!("another process created the key state first");
            }
        }
        store.current()?;
        Ok(store)
    }

    /// The key that signs new tokens.
    pub(crate) fn current(&self) -> Result<Arc<SigningKey>, Error> {
        let state = self.state()?;
        self.load(&state.current)
    }

    /// The keys a JWKS publishes at `now`: the current one first, then the
    /// retired ones still inside their grace period.
    pub(crate) fn published(&self, now: SystemTime) -> Result<Vec<Arc<SigningKey>>, Error> {
        let state = self.state()?;
        let mut keys = vec![self.load(&state.current)?];
        for retired in state.retired.iter().filter(|r| self.in_grace(r, now)) {
            keys.push(self.load(&retired.kid)?);
        }
        Ok(keys)
    }

    /// Makes a fresh key the signing key; the old one is published for the
    /// grace period; keys past their grace are deleted.
    pub(crate) fn rotate(&self, now: SystemTime) -> Result<String, Error> {
        let _guard = self.rotating.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state()?;
        let kid = self.generate()?;
        state.retired.push(RetiredKey {
            kid: state.current.clone(),
            retired_at: unix(now),
        });
        state.current = kid.clone();
        let (keep, drop): (Vec<_>, Vec<_>) = state
            .retired
            .into_iter()
            .partition(|r| self.in_grace(r, now));
        state.retired = keep;
        self.write_state(&state)?;
        for gone in drop {
            let path = self.key_path(&gone.kid);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not delete an expired key");
            }
            self.cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&gone.kid);
        }
        tracing::info!(kid = %kid, "signing key rotated");
        Ok(kid)
    }

    fn in_grace(&self, retired: &RetiredKey, now: SystemTime) -> bool {
        // Strictly inside: a grace of zero unpublishes the key at once.
        unix(now) < retired.retired_at.saturating_add(self.grace.as_secs())
    }

    fn state(&self) -> Result<KeyState, Error> {
        self.read_state()?.ok_or_else(|| Error::Corrupt {
            path: self.dir.join(STATE_FILE),
            message: "missing (was the data directory deleted?)".to_owned(),
        })
    }

    fn read_state(&self) -> Result<Option<KeyState>, Error> {
        let path = self.dir.join(STATE_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Corrupt {
                    path,
                    message: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    fn write_state(&self, state: &KeyState) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(state).expect("key state serialises");
        write_atomically(&self.dir.join(STATE_FILE), &json)
    }

    /// Writes the first state unless one exists; false when another process
    /// won. A hard link publishes the complete file atomically and fails if
    /// the name is taken, so a concurrent reader never sees half a file.
    fn create_state(&self, state: &KeyState) -> Result<bool, Error> {
        let path = self.dir.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(state).expect("key state serialises");
        let tmp = temporary_path(&path);
        write_private(&tmp, &json)?;
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    fn key_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("key-{kid}.pem"))
    }

    /// Generates a key pair, writes its PEM file, returns its kid.
    fn generate(&self) -> Result<String, Error> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| Error::KeyGeneration)?;
        let pkcs8 = pair.as_der().map_err(|_| Error::KeyGeneration)?;
        let key = parse(pkcs8.as_ref()).ok_or(Error::KeyGeneration)?;
        let path = self.key_path(&key.kid);
        write_atomically(&path, pem::encode_private_key(pkcs8.as_ref()).as_bytes())?;
        let kid = key.kid.clone();
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kid.clone(), Arc::new(key));
        Ok(kid)
    }

    fn load(&self, kid: &str) -> Result<Arc<SigningKey>, Error> {
        if let Some(key) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
        {
            return Ok(key.clone());
        }
        let path = self.key_path(kid);
        let text = fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let key = pem::decode_private_key(&text)
            .and_then(|der| parse(&der))
            .ok_or_else(|| Error::Corrupt {
                path: path.clone(),
                message: "not a PKCS#8 PEM RSA private key".to_owned(),
            })?;
        if key.kid != kid {
            // Written by a dev-idp that derived kids differently; the kid is
            // recomputed from the key, so signing and JWKS still agree.
            tracing::debug!(file = %path.display(), kid = %key.kid, "key file named by an older kid");
        }
        let key = Arc::new(key);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kid.to_owned(), key.clone());
        Ok(key)
    }
}

/// Builds a [`SigningKey`] from PKCS#8 DER, computing its certificate and
/// thumbprint kid.
fn parse(pkcs8: &[u8]) -> Option<SigningKey> {
    let pair = KeyPair::from_pkcs8(pkcs8).ok()?;
    let public = pair.public_key();
    let spki = public.as_der().ok()?;
    let cert = certificate::self_signed(&pair, spki.as_ref())?;
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
    let encoding = EncodingKey::from_rsa_pem(pem::encode_private_key(pkcs8).as_bytes()).ok()?;
    Some(SigningKey {
        kid: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
        n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        x5c: base64::engine::general_purpose::STANDARD.encode(&cert),
        encoding,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = temporary_path(path);
    write_private(&tmp, bytes)?;
    fs::rename(&tmp, path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// A unique sibling name, so concurrent writers never share a temporary file.
fn temporary_path(path: &Path) -> PathBuf {
    path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// Writes a new file readable by its owner only (on Unix): it may hold a
/// private key.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write as _;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)
}

/// Seconds since the Unix epoch (0 before it).
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kids(store: &KeyStore, now: SystemTime) -> Vec<String> {
        store
            .published(now)
            .unwrap()
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }

    #[test]
    fn first_open_creates_one_key_and_reopening_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyStore::open(dir.path(), Duration::from_secs(60)).unwrap();
        let kid = first.current().unwrap().kid.clone();
        let again = KeyStore::open(dir.path(), Duration::from_secs(60)).unwrap();
        assert_eq!(again.current().unwrap().kid, kid);
        assert_eq!(kid.len(), 27, "base64url of a 20-byte SHA-1");
    }

    #[test]
    fn retired_key_is_published_during_grace_and_deleted_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), Duration::from_secs(60)).unwrap();
        let old = store.current().unwrap().kid.clone();
        let t0 = SystemTime::now();
        let new = store.rotate(t0).unwrap();
        assert_eq!(store.current().unwrap().kid, new);
        assert_eq!(
            kids(&store, t0 + Duration::from_secs(59)),
            [new.clone(), old.clone()]
        );
        let later = t0 + Duration::from_secs(60);
        assert_eq!(kids(&store, later), std::slice::from_ref(&new));
        // The next rotation after the grace deletes the old key's file.
        store.rotate(later).unwrap();
        assert!(!store.key_path(&old).exists());
        assert!(store.key_path(&new).exists());
    }

    #[test]
    fn a_second_store_sees_a_rotation_made_by_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let server = KeyStore::open(dir.path(), Duration::ZERO).unwrap();
        let cli = KeyStore::open(dir.path(), Duration::ZERO).unwrap();
        let new = cli.rotate(SystemTime::now()).unwrap();
        assert_eq!(server.current().unwrap().kid, new);
    }

    #[test]
    fn a_corrupt_key_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), Duration::ZERO).unwrap();
        let kid = store.current().unwrap().kid.clone();
        fs::write(store.key_path(&kid), "garbage").unwrap();
        let fresh = KeyStore::open(dir.path(), Duration::ZERO).unwrap_err();
        assert!(
            fresh.to_string().contains(&format!("key-{kid}.pem")),
            "{fresh}"
        );
    }
}
