//! Where an upstream is: its URL parsed into what forwarding needs, its
//! TLS client configuration when it is https (`upstream/tls.rs` builds it),
//! and the TCP connection every way of reaching it starts with.

use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use http::uri::{Authority, Scheme};
use tokio::net::TcpStream;

use super::tls::{self, TlsFiles, TlsProblem};
use super::{Failure, UpstreamError};

/// Where requests go, reduced to what forwarding needs.
#[derive(Clone)]
pub struct Upstream {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// `host:port`, also sent as `Host`.
    pub authority: Authority,
    /// For `https` (and only then): how its certificate is verified and
    /// what the gateway offers (ALPN, a client certificate).
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Upstream {
    /// Without the TLS configuration's root certificates.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("tls", &self.is_tls())
            .finish()
    }
}

impl std::fmt::Display for Upstream {
    /// Its URL: `scheme://host:port`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

impl Upstream {
    /// An `http://host[:port]` or `https://host[:port]` URL (an https one
    /// verified against the system's roots until [`Upstream::with_tls`]
    /// says otherwise); the message says what is wrong with it, quoting it
    /// (the caller says where it was written).
    pub fn parse(url: &str) -> Result<Upstream, String> {
        let Ok(uri) = url.trim().parse::<Uri>() else {
            return Err(format!("{url:?} is not a URL"));
        };
        let tls = match uri.scheme_str() {
            Some("http") => None,
            Some("https") => Some(tls::client_config(&TlsFiles::default()).map_err(
                |problems| {
                    let messages: Vec<String> = problems.into_iter().map(|p| p.message).collect();
                    format!("{url:?}: {}", messages.join("; "))
                },
            )?),
            _ => return Err(format!("{url:?} must start with http:// or https://")),
        };
        if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
            return Err(format!(
                "{url:?} must not have a path: the authorised path is forwarded as it is"
            ));
        }
        let Some(authority) = uri.authority().cloned() else {
            return Err(format!("{url:?} has no host"));
        };
        Ok(Upstream {
            scheme: if tls.is_some() {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            },
            authority,
            tls,
        })
    }

    /// A plain `http` upstream at `authority`.
    pub fn http(authority: Authority) -> Upstream {
        Upstream {
            scheme: Scheme::HTTP,
            authority,
            tls: None,
        }
    }

    /// Whether requests to it go over TLS (`https://`).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The same https upstream verified with `files` (its `ca`, its client
    /// certificate); every problem with them, each naming its setting and
    /// file. The caller refuses TLS settings for an `http://` URL.
    pub fn with_tls(mut self, files: &TlsFiles) -> Result<Upstream, Vec<TlsProblem>> {
        if self.tls.is_some() {
            self.tls = Some(tls::client_config(files)?);
        }
        Ok(self)
    }

    /// The host, without the brackets of an IPv6 literal: what is dialled
    /// and, for TLS, the name the certificate must carry (and the SNI).
    pub(super) fn host(&self) -> &str {
        self.authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
    }

    /// A TCP connection to the upstream, made within `timeout`.
    pub(super) async fn connect(&self, timeout: Duration) -> Result<TcpStream, UpstreamError> {
        let host = self.host();
        let default_port = if self.is_tls() { 443 } else { 80 };
        let port = self.authority.port_u16().unwrap_or(default_port);
        let stream = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let message = format!("cannot connect to {}: {e}", self.authority);
                return Err(UpstreamError::new(Failure::Connect, message));
            }
            Err(_) => {
                let message = format!("connecting to {} timed out", self.authority);
                return Err(UpstreamError::new(Failure::Connect, message));
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}
