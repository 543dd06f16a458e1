//! Certificate credentials of confidential clients (`client_certificate:
//! true` on an app): the dev IdP makes each such app an RSA key and a
//! self-signed certificate at start, in `{data_dir}/client-certificates/`
//! as `{app}.key.pem` (PKCS#8, mode 0600) and `{app}.cert.pem`, and keeps
//! them across restarts. That is what "upload a certificate" is in the Entra
//! portal: the app then signs client assertions with the key, and the token
//! endpoint finds the certificate by the assertion's `x5t#S256` (or `x5t`)
//! thumbprint.

use std::fs;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;

use super::{certificate, pem, write_atomically};
use crate::Error;

/// Where an app's certificate credential lives in the data directory.
pub const DIR: &str = "client-certificates";

/// One app's registered certificate.
pub struct ClientCertificate {
    /// base64url SHA-256 of the certificate's DER (`x5t#S256`).
    pub x5t_s256: String,
    /// base64url SHA-1 of it (`x5t`), which Entra also accepts.
    pub x5t: String,
    /// The certificate, PEM.
    pub cert_file: PathBuf,
    /// Its private key, PKCS#8 PEM: the app's, for tests and the demo.
    pub key_file: PathBuf,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t_s256", &self.x5t_s256)
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

/// Loads `app`'s certificate credential from `data_dir`, making it first if
/// there is none.
pub(crate) fn load_or_make(data_dir: &Path, app: &str) -> Result<ClientCertificate, Error> {
    let dir = data_dir.join(DIR);
    fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    let key_file = dir.join(format!("{app}.key.pem"));
    let cert_file = dir.join(format!("{app}.cert.pem"));
    let pkcs8 = match fs::read_to_string(&key_file) {
        Ok(text) => pem::decode_private_key(&text).ok_or_else(|| Error::Corrupt {
            path: key_file.clone(),
            message: "not a PKCS#8 PEM RSA private key".to_owned(),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| Error::KeyGeneration)?;
            let der = pair.as_der().map_err(|_| Error::KeyGeneration)?;
            write_atomically(&key_file, pem::encode_private_key(der.as_ref()).as_bytes())?;
            der.as_ref().to_vec()
        }
        Err(source) => {
            return Err(Error::Io {
                path: key_file,
                source,
            });
        }
    };
    let corrupt = || Error::Corrupt {
        path: key_file.clone(),
        message: "not an RSA key".to_owned(),
    };
    let pair = KeyPair::from_pkcs8(&pkcs8).map_err(|_| corrupt())?;
    let public = pair.public_key();
    let spki = public.as_der().map_err(|_| corrupt())?;
    let cert = certificate::self_signed(&pair, spki.as_ref()).ok_or_else(corrupt)?;
    // Deterministic from the key: rewritten each start, always the same.
    fs::write(&cert_file, pem::encode("CERTIFICATE", &cert)).map_err(|source| Error::Io {
        path: cert_file.clone(),
        source,
    })?;
    let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
    let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(|_| corrupt())?;
    let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert);
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
    Ok(ClientCertificate {
        x5t_s256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
        x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
        cert_file,
        key_file,
        decoding,
    })
}
