//! TLS to PostgreSQL with rustls (aws-lc-rs, no OpenSSL): what `sslmode`
//! and the CA file mean, the client configuration built from them, and the
//! connector tokio-postgres opens its TLS sessions with.
//!
//! `sslmode`, as libpq documents it, with two choices of ours:
//! - `disable`: plain TCP.
//! - `prefer` (the default, as in libpq and tokio-postgres): TLS when the
//!   server accepts it, plain TCP when it declines. A handshake that fails
//!   (a certificate refused, say) is an error, not a quiet fall back to
//!   plain TCP as in libpq.
//! - `require`: TLS or nothing. The certificate is not checked unless a CA
//!   file is given; then its chain must lead to that CA (libpq does the
//!   same when `root.crt` exists), but the host name is not checked.
//! - `verify-ca`: TLS; the chain must lead to the CA file, or without one to
//!   the system's roots (libpq would look for `~/.postgresql/root.crt`).
//! - `verify-full`: as `verify-ca`, and the certificate must name the host
//!   connected to (SNI is that name too).
//!
//! The CA file comes from `sslrootcert` in the URL or from
//! `--database-ca-file`, not both; `sslrootcert=system` means the system's
//! roots and, as in libpq, requires `verify-full`. Files are read when the
//! store opens, so a missing or malformed file stops start-up.
//!
//! SCRAM authentication is bound to the TLS session (`tls-server-end-point`,
//! RFC 5929) when the server offers `SCRAM-SHA-256-PLUS`: a man in the
//! middle that terminates TLS cannot relay the password exchange, even with
//! `require`'s unchecked certificate. `channel_binding=require` in the URL
//! insists on it.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::TlsConnector;

/// libpq's `sslmode`, less `allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err("sslmode=allow is not supported: use prefer, or disable".into());
            }
            other => {
                return Err(format!(
                    "invalid sslmode {other:?}: expected disable, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }

    /// As written in a URL.
    pub(in crate::store) fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told: it only negotiates; checking the
    /// certificate is the connector's job.
    fn negotiation(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

/// Where trusted certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// Not given: none for `prefer`/`require`, the system's for `verify-*`.
    Default,
    System,
    File(PathBuf),
}

/// A database URL ready to connect with: tokio-postgres' configuration,
/// and the TLS connector that goes with it.
pub(in crate::store) struct Settings {
    pub(in crate::store) config: tokio_postgres::Config,
    pub(in crate::store) mode: SslMode,
    pub(in crate::store) tls: MakeRustlsConnect,
}

/// Reads `url` and `ca_file`, and the CA file they name: every problem is
/// reported here, before any connection is tried.
pub(in crate::store) fn settings(url: &str, ca_file: Option<&Path>) -> Result<Settings, String> {
    let split = super::url::split(url).map_err(|e| format!("invalid database URL: {e}"))?;
    let mut config: tokio_postgres::Config = split
        .rest
        .parse()
        .map_err(|e| format!("invalid database URL: {e}"))?;
    let roots = match (split.sslrootcert.as_deref(), ca_file) {
        (Some(_), Some(_)) => {
            return Err(
                "the CA file is given twice, as sslrootcert in the database URL and as \
                 --database-ca-file: keep one"
                    .into(),
            );
        }
        (Some("system"), None) => Roots::System,
        (Some(path), None) => Roots::File(path.into()),
        (None, Some(path)) => Roots::File(path.to_path_buf()),
        (None, None) => Roots::Default,
    };
    let mode = match split.sslmode.as_deref() {
        Some(mode) => SslMode::parse(mode)?,
        // libpq: sslrootcert=system makes verify-full the default.
        None if roots == Roots::System => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if roots == Roots::System && mode != SslMode::VerifyFull {
        return Err(format!(
            "sslrootcert=system needs sslmode=verify-full (it is {})",
            split.sslmode.as_deref().unwrap_or_default()
        ));
    }
    config.ssl_mode(mode.negotiation());
    let client = match mode {
        SslMode::Disable => None,
        _ => Some(client_config(mode, &roots)?),
    };
    Ok(Settings {
        config,
        mode,
        tls: MakeRustlsConnect { config: client },
    })
}

/// The rustls client configuration for `mode` and `roots`.
fn client_config(mode: SslMode, roots: &Roots) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let trusted = match (roots, mode) {
        (Roots::File(path), _) => Some(read_roots(path)?),
        (Roots::System, _) | (Roots::Default, SslMode::VerifyCa | SslMode::VerifyFull) => {
            Some(system_roots()?)
        }
        (Roots::Default, _) => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match trusted {
        None => Arc::new(NoCertificateCheck(Arc::clone(&provider))),
        Some(trusted) => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(trusted), provider.clone())
                    .build()
                    .map_err(|e| format!("cannot verify certificates: {e}"))?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate of the PEM file at `path`; at least one.
fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let quoted = format!("{:?}", path.display().to_string());
    let pem = std::fs::read(path).map_err(|e| format!("cannot read the CA file {quoted}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the CA file {quoted} is not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err(format!("the CA file {quoted} holds no PEM certificate"));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| {
            format!("the CA file {quoted} has a certificate that cannot be trusted: {e}")
        })?;
    }
    Ok(roots)
}

/// The system's root certificates (those that parse).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "a system root certificate could not be read");
    }
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(
            "no system root certificates found: give the database's CA with sslrootcert or \
             --database-ca-file"
                .into(),
        );
    }
    Ok(roots)
}

/// `verify-ca`: the chain is checked, the name is not. webpki checks the
/// chain before the name, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA: any certificate, as in libpq. The
/// session is still encrypted, and the handshake signature still checked
/// against the certificate's key.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Makes one [`RustlsConnect`] per connection, for the host connected to.
/// Without a configuration (`sslmode=disable`), tokio-postgres never asks
/// it for a handshake.
#[derive(Clone)]
pub(in crate::store) struct MakeRustlsConnect {
    config: Option<Arc<ClientConfig>>,
}

impl<S> MakeTlsConnect<S> for MakeRustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    /// Never fails: for a Unix socket the host is empty, and with `prefer`
    /// the server declines TLS there before any handshake is tried.
    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, io::Error> {
        Ok(RustlsConnect {
            config: self.config.clone(),
            host: host.to_owned(),
        })
    }
}

/// One TLS handshake with `host` (its name is sent as SNI and, with
/// `verify-full`, checked against the certificate).
pub(in crate::store) struct RustlsConnect {
    config: Option<Arc<ClientConfig>>,
    host: String,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let config = self
                .config
                .ok_or_else(|| io::Error::other("TLS is disabled (sslmode=disable)"))?;
            let name = ServerName::try_from(self.host.clone()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{:?} is not a TLS server name: {e}", self.host),
                )
            })?;
            match TlsConnector::from(config).connect(name, stream).await {
                Ok(stream) => Ok(RustlsStream(stream)),
                // tokio-rustls wraps rustls' error in an io::Error whose
                // `source` skips it: say it here, with the host.
                Err(e) => Err(io::Error::new(
                    e.kind(),
                    format!(
                        "TLS handshake with {} failed: {}",
                        self.host,
                        e.get_ref()
                            .map_or_else(|| e.to_string(), ToString::to_string)
                    ),
                )),
            }
        })
    }
}

/// A TLS session to PostgreSQL.
pub(in crate::store) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| tls_server_end_point(cert))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

/// RFC 5929 `tls-server-end-point`: the server certificate's hash, with the
/// hash function of its signature (SHA-256 for MD5 and SHA-1). `None` where
/// the RFC defines none (Ed25519, RSA-PSS): SCRAM then goes unbound.
fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::digest;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
    let oid = signature_algorithm(cert)?;
    let algorithm = if let Some(rsa) = oid.strip_prefix(RSA) {
        match rsa {
            // md5WithRSAEncryption, sha1WithRSAEncryption, sha256WithRSAEncryption
            [0x04] | [0x05] | [0x0b] => &digest::SHA256,
            [0x0c] => &digest::SHA384,
            [0x0d] => &digest::SHA512,
            _ => return None,
        }
    } else if let Some(ecdsa) = oid.strip_prefix(ECDSA) {
        match ecdsa {
            // ecdsa-with-SHA1, ecdsa-with-SHA256
            [0x01] | [0x03, 0x02] => &digest::SHA256,
            [0x03, 0x03] => &digest::SHA384,
            [0x03, 0x04] => &digest::SHA512,
            _ => return None,
        }
    } else {
        return None;
    };
    Some(digest::digest(algorithm, cert).as_ref().to_vec())
}

/// The OID (content bytes) of a DER certificate's `signatureAlgorithm`:
/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm
/// AlgorithmIdentifier ::= SEQUENCE { algorithm OID, … }, … }`.
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (certificate, _) = der(cert, SEQUENCE)?;
    let (_tbs, rest) = der(certificate, SEQUENCE)?;
    let (algorithm, _) = der(rest, SEQUENCE)?;
    der(algorithm, OID).map(|(oid, _)| oid)
}

/// One DER element with tag `tag` at the start of `input`: its content and
/// what follows it.
fn der(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, input) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, mut input) = input.split_first()?;
    let length = if length < 0x80 {
        usize::from(length)
    } else {
        let bytes = usize::from(length & 0x7f);
        if bytes == 0 || bytes > 4 || input.len() < bytes {
            return None;
        }
        let (size, rest) = input.split_at(bytes);
        input = rest;
        size.iter().fold(0, |n, &b| (n << 8) | usize::from(b))
    };
    (input.len() >= length).then(|| input.split_at(length))
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(url: &str, ca_file: Option<&Path>) -> String {
        match settings(url, ca_file) {
            Ok(_) => panic!("{url} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn sslmode_is_read_from_the_url_and_defaults_to_prefer() {
        let mode = |url: &str| settings(url, None).unwrap().mode;
        assert_eq!(mode("postgres://db/todo"), SslMode::Prefer);
        assert_eq!(mode("postgres://db/todo?sslmode=disable"), SslMode::Disable);
        assert_eq!(mode("host=db sslmode=require"), SslMode::Require);
        let settings = settings("postgres://db/todo?sslmode=require", None).unwrap();
        assert_eq!(
            settings.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn a_bad_sslmode_is_named() {
        let message = error("postgres://db/todo?sslmode=verify_full", None);
        assert!(
            message.contains("invalid sslmode \"verify_full\""),
            "{message}"
        );
        assert!(error("host=db sslmode=allow", None).contains("not supported"));
    }

    #[test]
    fn a_missing_or_malformed_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let message = error("postgres://db/todo?sslmode=verify-full", Some(&missing));
        assert!(message.contains("cannot read the CA file"), "{message}");
        assert!(message.contains("missing.pem"), "{message}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let url = format!(
            "postgres://db/todo?sslmode=verify-full&sslrootcert={}",
            garbage.display()
        );
        let message = error(&url, None);
        assert!(message.contains("holds no PEM certificate"), "{message}");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let message = error(&url, None);
        assert!(
            message.contains("is not a PEM certificate file"),
            "{message}"
        );
    }

    #[test]
    fn the_ca_file_may_be_given_once_only() {
        let message = error(
            "postgres://db/todo?sslrootcert=/a.pem",
            Some(Path::new("/b.pem")),
        );
        assert!(message.contains("given twice"), "{message}");
    }

    #[test]
    fn the_channel_binding_hash_follows_the_certificates_signature() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let params = rcgen::CertificateParams::new(vec!["db".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let hash = tls_server_end_point(cert.der()).unwrap();
        let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, cert.der());
        assert_eq!(hash, expected.as_ref());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(tls_server_end_point(cert.der()), None);
        assert_eq!(tls_server_end_point(b"\x30\x05garbage"), None);
    }

    #[test]
    fn sslrootcert_system_means_verify_full() {
        let message = error(
            "postgres://db/todo?sslmode=require&sslrootcert=system",
            None,
        );
        assert!(message.contains("needs sslmode=verify-full"), "{message}");
    }
}
