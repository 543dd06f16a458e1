//! Every way a request can fail at the gateway, and the one place that turns
//! each into a response: a precise status, an RFC 6750 `WWW-Authenticate`
//! header where it applies, and a small JSON body `{"detail": "..."}`.
//!
//! The detail says what was wrong; it never echoes a token. Each error also
//! has a fixed machine-readable `reason` for the access log.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;

use crate::auth::AuthError;
use crate::body::ProxyBody;
use crate::path::PathError;
use crate::policy::Denial;
use crate::upstream::{Failure, UpstreamError};

/// Why the gateway answered instead of the upstream.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The path is malformed or tries a normalisation trick.
    #[error("invalid path: {0}")]
    BadPath(#[source] PathError),
    /// The request target is not an origin-form path (e.g. `*`).
    #[error("invalid request target")]
    BadTarget,
    /// A request hyper parsed but a proxy must not pass on: no or several
    /// `Host` headers (RFC 9112 §3.2), transfer codings other than one
    /// `chunked` (§6.1). The connection is closed after the answer.
    #[error("malformed request: {0}")]
    MalformedRequest(&'static str),
    /// `Upgrade: h2c` asks to switch protocols behind the gateway's back.
    #[error("protocol upgrade is not supported")]
    UpgradeRefused,
    /// A question to the decision endpoint (`decision.rs`) that does not
    /// describe exactly one original request: its method and URI headers
    /// are missing, repeated, or given in both the nginx and the
    /// Caddy/Traefik spelling. A misconfigured ingress, never a client's
    /// request to be decided.
    #[error("{0}")]
    NoOriginalRequest(&'static str),
    /// No route matches the path.
    #[error("Not Found")]
    NoRoute,
    /// A route matches the path, but none allows the method.
    #[error("Method Not Allowed")]
    MethodNotAllowed { allow: String },
    /// The token is missing or invalid, or no key is loaded yet.
    #[error("{}", .0.description())]
    Auth(#[source] AuthError),
    /// The token is valid but lacks a scope or role the route requires.
    #[error("{}", .0.description())]
    Denied(Denial),
    /// The body is larger than `--max-body-bytes`.
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: u64 },
    /// Forwarding failed: the upstream could not be reached, broke the
    /// connection, answered with something that is not HTTP (502), or did
    /// not answer within `--upstream-timeout-seconds` (504). Its
    /// [`Failure`] decides which.
    #[error("{0}")]
    Upstream(#[source] UpstreamError),
}

impl GatewayError {
    /// The fixed reason written to the access log.
    pub fn reason(&self) -> &'static str {
        match self {
            GatewayError::BadPath(_) => "bad_path",
            GatewayError::BadTarget => "bad_target",
            GatewayError::MalformedRequest(_) => "malformed_request",
            GatewayError::UpgradeRefused => "upgrade_refused",
            GatewayError::NoOriginalRequest(_) => "no_original_request",
            GatewayError::NoRoute => "no_route",
            GatewayError::MethodNotAllowed { .. } => "method_not_allowed",
            GatewayError::Auth(e) => e.reason(),
            GatewayError::Denied(d) => d.reason(),
            GatewayError::BodyTooLarge { .. } => "body_too_large",
            GatewayError::Upstream(e) => match e.kind() {
                Failure::Timeout => "upstream_timeout",
                Failure::Tls => "upstream_tls",
                _ => "upstream_unavailable",
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadPath(_)
            | GatewayError::BadTarget
            | GatewayError::MalformedRequest(_)
            | GatewayError::UpgradeRefused
            | GatewayError::NoOriginalRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::NoRoute => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::Auth(e) => e.status(),
            GatewayError::Denied(_) => StatusCode::FORBIDDEN,
            GatewayError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::Upstream(e) => match e.kind() {
                Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::BAD_GATEWAY,
            },
        }
    }

    /// The JSON body the client gets: `{"detail": "..."}`.
    pub fn body(&self) -> serde_json::Value {
        let detail = match self {
            // The client learns that the upstream failed, not how.
            GatewayError::Upstream(_) => self.status().canonical_reason().unwrap_or("").to_string(),
            other => other.to_string(),
        };
        serde_json::json!({ "detail": detail })
    }

    /// The response the client gets.
    pub fn into_response(self) -> Response<ProxyBody> {
        let mut response = json_response(self.status(), &self.body());
        let headers = response.headers_mut();
        match &self {
            // Whatever follows on this connection cannot be trusted to be framed
            // the way the gateway read it.
            GatewayError::MalformedRequest(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            GatewayError::MethodNotAllowed { allow } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, v);
                }
            }
            GatewayError::Auth(e) => {
                if let Some(v) = auth_challenge(e) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
                if e.status() == StatusCode::SERVICE_UNAVAILABLE {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                }
            }
            GatewayError::Denied(d) => {
                let mut challenge = format!(
                    "Bearer error=\"insufficient_scope\", error_description=\"{}\"",
                    quoted_safe(&d.description())
                );
                if let Denial::MissingScope { required } = d {
                    challenge
                        .push_str(&format!(", scope=\"{}\"", quoted_safe(&required.join(" "))));
                }
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            _ => {}
        }
        response
    }
}

/// `WWW-Authenticate` for an authentication failure (RFC 6750 §3): a bare
/// `Bearer` challenge when no credential was sent (§3.1 says no error code
/// then), else the error code and a description.
fn auth_challenge(e: &AuthError) -> Option<HeaderValue> {
    if e.status() == StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = match e.www_authenticate_error() {
        None => "Bearer".to_string(),
        Some(code) => format!(
            "Bearer error=\"{code}\", error_description=\"{}\"",
            quoted_safe(&e.description())
        ),
    };
    HeaderValue::from_str(&value).ok()
}

/// RFC 6750 §3 restricts `error_description` to visible ASCII without `"`
/// and `\`; anything else becomes a space.
fn quoted_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                ' '
            }
        })
        .collect()
}

/// A JSON response with a body the gateway wrote itself.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<ProxyBody> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut response = Response::new(
        http_body_util::Full::new(bytes)
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_made_safe_for_quoted_strings() {
        assert_eq!(quoted_safe("bad \"kid\" \\ é"), "bad  kid     ");
    }

    #[test]
    fn method_not_allowed_carries_allow() {
        let r = GatewayError::MethodNotAllowed {
            allow: "GET, HEAD".into(),
        }
        .into_response();
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[header::ALLOW], "GET, HEAD");
    }
}
