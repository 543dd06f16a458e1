//! TLS to https upstreams, with rustls (aws-lc-rs): the client
//! configuration built from an upstream's settings (`ca`, `client_cert`,
//! `client_key` in `policy.yaml`; `--upstream-ca` and the others for the
//! default upstream), and the connector through which the forwarder's shared
//! client opens its TLS connections.
//!
//! The certificate is always verified — against `ca` when it is given, else
//! against the system's roots — and the name checked is the URL's host (sent
//! as SNI). There is no setting to skip verification. ALPN offers `h2` and
//! `http/1.1`: when the upstream picks `h2`, the shared client multiplexes
//! every request on one connection; otherwise it pools HTTP/1.1 connections
//! (`upstream.rs`).
//!
//! Where its job ends: files are read when a policy or the flags are
//! compiled, so that every problem is reported then, with its place; a
//! failed handshake is a [`Failure::Tls`], never a fall back to plain http.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{Failure, Upstream, UpstreamError};

/// The TLS settings of one upstream, as written (paths already resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificates to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// The gateway's own certificate and key, for upstreams that ask for
    /// one (mTLS); both or neither.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Which setting a problem is about, so that the caller can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Ca,
    ClientCert,
    ClientKey,
}

/// One problem with a setting, quoting its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProblem {
    pub setting: Setting,
    pub message: String,
}

/// The client configuration for `files`: every problem found, not only the
/// first.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, Vec<TlsProblem>> {
    let mut problems = Vec::new();
    let roots = match &files.ca {
        Some(ca) => read_certificates(ca)
            .and_then(|certs| {
                let mut roots = RootCertStore::empty();
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        format!("{}: a certificate cannot be trusted: {e}", quoted(ca))
                    })?;
                }
                Ok(Arc::new(roots))
            })
            .map_err(|message| {
                problems.push(TlsProblem {
                    setting: Setting::Ca,
                    message,
                })
            })
            .ok(),
        None => Some(system_roots()),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let identity = files.client.as_ref().and_then(|(cert_path, key_path)| {
        let chain = read_certificates(cert_path).map_err(|message| {
            problems.push(TlsProblem {
                setting: Setting::ClientCert,
                message,
            })
        });
        let key = read_key(key_path).map_err(|message| {
            problems.push(TlsProblem {
                setting: Setting::ClientKey,
                message,
            })
        });
        let (chain, key) = (chain.ok()?, key.ok()?);
        // Checked on its own, so that it is reported with a bad `ca` too.
        match rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider) {
            Ok(_) => Some((chain, key)),
            Err(e) => {
                let (key, cert) = (quoted(key_path), quoted(cert_path));
                let message = match e {
                    rustls::Error::InconsistentKeys(_) => {
                        format!("{key} is not the key of the certificate in {cert}")
                    }
                    e => format!("{key} cannot be used with the certificate in {cert}: {e}"),
                };
                problems.push(TlsProblem {
                    setting: Setting::ClientKey,
                    message,
                });
                None
            }
        }
    });
    let (Some(roots), true) = (roots, problems.is_empty()) else {
        return Err(problems);
    };
    let unusable = |setting: Setting| {
        move |e: rustls::Error| {
            vec![TlsProblem {
                setting,
                message: format!("cannot be used for TLS: {e}"),
            }]
        }
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(unusable(Setting::Ca))?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(unusable(Setting::ClientKey))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's root certificates, read once per process (a certificate
/// that cannot be parsed is skipped, as browsers do).
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a system root certificate could not be read");
            }
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!(
                    "no system root certificates found: https upstreams without `ca` will fail"
                );
            }
            Arc::new(roots)
        })
        .clone()
}

fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", quoted(path)))
}

/// Every certificate of a PEM file; at least one.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", quoted(path)))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", quoted(path)));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            format!("{} holds no PEM private key", quoted(path))
        }
        e => format!("{}: not a PEM private key: {e}", quoted(path)),
    })
}

/// Opens the TLS connections of one https upstream for the forwarder's
/// shared client (hyper-util's connector interface): TCP within the connect
/// timeout, then the handshake within the same time, with ALPN; a
/// negotiated `h2` is reported so that the client multiplexes on it.
#[derive(Clone)]
pub(super) struct TlsConnect {
    pub upstream: Upstream,
    pub config: Arc<ClientConfig>,
    pub timeout: Duration,
}

impl TlsConnect {
    /// A TLS connection to the upstream, handshake done.
    pub(super) async fn connect(self) -> Result<TlsIo, UpstreamError> {
        let host = self.upstream.host();
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            UpstreamError::new(
                Failure::Tls,
                format!("{host:?} is not a TLS server name: {e}"),
            )
        })?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let tcp = self.upstream.connect(self.timeout).await?;
        let handshake = TlsConnector::from(self.config).connect(name, tcp);
        match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(stream)) => Ok(TlsIo(stream)),
            Ok(Err(e)) => Err(UpstreamError::new(
                Failure::Tls,
                format!(
                    "TLS handshake with {} failed: {}",
                    self.upstream.authority,
                    // tokio-rustls wraps rustls' error in an io::Error, whose
                    // `source` skips it: say it here.
                    e.get_ref()
                        .map_or_else(|| e.to_string(), ToString::to_string)
                ),
            )),
            Err(_) => Err(UpstreamError::new(
                Failure::Tls,
                format!(
                    "no TLS handshake with {} within {} s",
                    self.upstream.authority,
                    self.timeout.as_secs()
                ),
            )),
        }
    }
}

impl tower_service::Service<Uri> for TlsConnect {
    type Response = TokioIo<TlsIo>;
    type Error = UpstreamError;
    type Future = Pin<Box<dyn Future<Output = Result<TokioIo<TlsIo>, UpstreamError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), UpstreamError>> {
        Poll::Ready(Ok(()))
    }

    /// Always the forwarder's own upstream: the client asks only for it.
    fn call(&mut self, _dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect().await.map(TokioIo::new) })
    }
}

/// A TLS connection to an upstream, as the shared client sees it.
pub(super) struct TlsIo(TlsStream<TcpStream>);

impl Connection for TlsIo {
    fn connected(&self) -> Connected {
        let connected = Connected::new();
        if self.0.get_ref().1.alpn_protocol() == Some(b"h2") {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl AsyncRead for TlsIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
