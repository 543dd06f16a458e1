//! Why a forward failed, as one small typed error: its [`Failure`] kind is
//! what the error response (`error.rs`), the access log (`access.rs`) and the
//! metrics (`metrics.rs`) read, so a kind is named in exactly one place.

use crate::body::BoxError;

/// How a request to an upstream failed: the `upstream_error` of the access
/// log and the `kind` of `authz_proxy_upstream_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// Every connection the upstream may have (`--upstream-max-connections`)
    /// stayed in use for `--upstream-queue-timeout-ms`: nothing was sent.
    Busy,
    /// No connection could be made: refused, unreachable, no such host, or
    /// not established within `--upstream-connect-timeout-seconds`.
    Connect,
    /// TLS with an https upstream failed: its certificate (unknown issuer,
    /// wrong name, expired), the handshake, or an alert right after it (a
    /// TLS 1.3 server refusing the gateway's client certificate).
    Tls,
    /// No response headers within the upstream timeout.
    Timeout,
    /// The upstream answered with something that is not HTTP.
    Protocol,
    /// The upstream closed or reset the connection before its response.
    ClosedEarly,
    /// The client's request body broke off (or went over its limit) while
    /// it was being sent on.
    RequestBody,
    /// The upstream's response body broke off while it was streamed to the
    /// client (the status had been sent already).
    ResponseBody,
}

impl Failure {
    /// Every kind, for the metrics to list each one from the start.
    pub const ALL: [Failure; 8] = [
        Failure::Busy,
        Failure::Connect,
        Failure::Tls,
        Failure::Timeout,
        Failure::Protocol,
        Failure::ClosedEarly,
        Failure::RequestBody,
        Failure::ResponseBody,
    ];

    /// The label value in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Busy => "busy",
            Failure::Connect => "connect",
            Failure::Tls => "tls",
            Failure::Timeout => "timeout",
            Failure::Protocol => "protocol",
            Failure::ClosedEarly => "closed_early",
            Failure::RequestBody => "request_body",
            Failure::ResponseBody => "response_body",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed forward: its kind and, for the log, its cause.
#[derive(Debug, thiserror::Error)]
#[error("upstream request failed ({kind}): {source}")]
pub struct UpstreamError {
    kind: Failure,
    #[source]
    source: BoxError,
}

impl UpstreamError {
    pub fn new(kind: Failure, source: impl Into<BoxError>) -> UpstreamError {
        UpstreamError {
            kind,
            source: source.into(),
        }
    }

    /// No response headers within `limit`.
    pub fn timeout(limit: std::time::Duration) -> UpstreamError {
        UpstreamError::new(
            Failure::Timeout,
            format!("no response within {} s", limit.as_secs()),
        )
    }

    pub fn kind(&self) -> Failure {
        self.kind
    }

    /// Whether the client's body went over its limit: the client's fault
    /// (413), not the upstream's.
    pub fn is_body_limit(&self) -> bool {
        self.kind == Failure::RequestBody
            && chain(self.source.as_ref()).any(|e| e.is::<http_body_util::LengthLimitError>())
    }

    /// A failure of the shared (hyper-util) client; `over_tls` when its
    /// connections are TLS connections.
    pub(crate) fn from_client(
        error: hyper_util::client::legacy::Error,
        over_tls: bool,
    ) -> UpstreamError {
        // The TLS connector's own failure, kind and all (`upstream/tls.rs`).
        if let Some(inner) = chain(&error).find_map(|e| e.downcast_ref::<UpstreamError>()) {
            return UpstreamError::new(inner.kind, inner.source.to_string());
        }
        // A TLS alert after the handshake (TLS 1.3 servers refuse a missing
        // or unknown client certificate only then), with its text for the
        // log: an `io::Error`'s `source` skips the rustls error it holds.
        if over_tls && let Some(tls) = chain(&error).find_map(tls_cause) {
            return UpstreamError::new(Failure::Tls, format!("{error}: {tls}"));
        }
        let kind = if error.is_connect() {
            Failure::Connect
        } else {
            chain(&error)
                .find_map(|e| e.downcast_ref::<hyper::Error>())
                .map_or(Failure::ClosedEarly, classify)
        };
        UpstreamError::new(kind, error)
    }
}

/// What the TLS layer said, when `error` is its failure: a rustls error,
/// or an IO error of kind `InvalidData`, which on a TLS connection only
/// rustls reports (tokio-rustls wraps its errors so; TCP never does), and
/// which HTTP/2 passes on as the kind and the text alone.
fn tls_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls.to_string());
    }
    let io = error.downcast_ref::<std::io::Error>()?;
    match io.get_ref() {
        Some(inner) if inner.is::<rustls::Error>() => Some(inner.to_string()),
        _ if io.kind() == std::io::ErrorKind::InvalidData => Some(io.to_string()),
        _ => None,
    }
}

fn classify(error: &hyper::Error) -> Failure {
    if error.is_parse() || error.is_parse_status() || error.is_parse_too_large() {
        Failure::Protocol
    } else if error.is_timeout() {
        Failure::Timeout
    } else if error.is_user() && !error.is_body_write_aborted() {
        // A user error while sending is the request body's own error
        // (hyper's `User::Body`): the client's side broke.
        Failure::RequestBody
    } else {
        // Incomplete message, canceled, closed, reset, aborted body write.
        Failure::ClosedEarly
    }
}

/// `error` and its sources, outermost first.
fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_label() {
        let labels: std::collections::BTreeSet<_> =
            Failure::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(labels.len(), Failure::ALL.len());
    }

    #[tokio::test]
    async fn only_a_body_over_its_limit_is_the_clients_fault() {
        use http_body_util::{BodyExt as _, Full, Limited};
        let Err(over_limit) = Limited::new(Full::new(bytes::Bytes::from_static(b"xx")), 1)
            .collect()
            .await
        else {
            panic!("two bytes fit a one-byte limit");
        };
        assert!(UpstreamError::new(Failure::RequestBody, over_limit).is_body_limit());
        let broken = UpstreamError::new(Failure::RequestBody, "client went away");
        assert!(!broken.is_body_limit());
    }
}
