//! Every way a request can fail at the gateway, and the one place that turns
//! each into a response: a precise status, an RFC 6750 `WWW-Authenticate`
//! header where it applies, and a small JSON body `{"detail": "..."}`.
//!
//! The detail says what was wrong; it never echoes a token. Each error also
//! has a fixed machine-readable `reason` for the access log.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
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
    /// The token is valid, but for another API than the route's: its `aud`
    /// is none of the route's `audiences:` (or, for a route without them,
    /// only another route's).
    #[error("the token is not meant for this API (wrong audience for route `{route}`)")]
    WrongAudience { route: String },
    /// The token is valid but lacks a scope or role the route requires.
    #[error("{}", .0.description())]
    Denied(Denial),
    /// The token lacks the route's authentication context and its client
    /// declared `cp1`: a claims challenge (401) telling it which context to
    /// ask for at `authorization_uri`. Made by [`GatewayError::challenge_at`].
    #[error("{}", Denial::AuthContextRequired { required: required.clone(), challenge: true })]
    ClaimsChallenge {
        required: Vec<String>,
        authorization_uri: Arc<str>,
    },
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
            GatewayError::WrongAudience { .. } => "wrong_audience",
            GatewayError::Denied(d) => d.reason(),
            GatewayError::ClaimsChallenge { .. } => "auth_context_required",
            GatewayError::BodyTooLarge { .. } => "body_too_large",
            GatewayError::Upstream(e) => match e.kind() {
                Failure::Timeout => "upstream_timeout",
                Failure::Tls => "upstream_tls",
                Failure::Busy => "upstream_busy",
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
            GatewayError::WrongAudience { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::Denied(_) => StatusCode::FORBIDDEN,
            GatewayError::ClaimsChallenge { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::Upstream(e) => match e.kind() {
                Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
                Failure::Busy => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            },
        }
    }

    /// A missing authentication context for a client that declared `cp1`
    /// becomes a [`GatewayError::ClaimsChallenge`] naming
    /// `authorization_uri` (the authority's authorize endpoint); every other
    /// error is returned as it is. Without this step the refusal stays a
    /// 403, which denies all the same but gives the client no way forward.
    pub fn challenge_at(self, authorization_uri: &Arc<str>) -> GatewayError {
        match self {
            GatewayError::Denied(Denial::AuthContextRequired {
                required,
                challenge: true,
            }) => GatewayError::ClaimsChallenge {
                required,
                authorization_uri: Arc::clone(authorization_uri),
            },
            other => other,
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
            GatewayError::Upstream(e) if e.kind() == Failure::Busy => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            GatewayError::WrongAudience { .. } => {
                let challenge = format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    quoted_safe(&self.to_string())
                );
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            GatewayError::ClaimsChallenge {
                required,
                authorization_uri,
            } => {
                if let Ok(v) = HeaderValue::from_str(&claims_challenge(required, authorization_uri))
                {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            GatewayError::Denied(d @ Denial::AuthContextRequired { .. }) => {
                // Not `insufficient_scope`: the claims are what is missing,
                // but this client cannot be asked for them (no `cp1`).
                let challenge = format!(
                    "Bearer error=\"insufficient_claims\", error_description=\"{}\"",
                    quoted_safe(&d.description())
                );
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
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

/// Microsoft's claims challenge, exactly as documented in "Claims
/// challenges, claims requests and client capabilities"
/// (<https://learn.microsoft.com/en-us/entra/identity-platform/claims-challenge>):
///
/// ```text
/// WWW-Authenticate: Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize",
///     error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19"
/// ```
///
/// `claims` is the claims request (OpenID Connect Core §5.5) the client
/// sends back as the `claims` parameter of its next authorization request,
/// `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}` (`"values"`
/// for several ids, §5.5.1), in standard base64 with padding (RFC 4648 §4),
/// not base64url: the documentation's examples end in `==`, and
/// Microsoft.Identity.Web's sample API builds it with
/// `Convert.ToBase64String`. `realm` is empty, as the documentation
/// requires when sign-in may go through the `common` endpoint.
fn claims_challenge(required: &[String], authorization_uri: &str) -> String {
    let acrs = match required {
        [one] => serde_json::json!({ "essential": true, "value": one }),
        many => serde_json::json!({ "essential": true, "values": many }),
    };
    let claims = serde_json::json!({ "access_token": { "acrs": acrs } });
    format!(
        "Bearer realm=\"\", authorization_uri=\"{}\", error=\"insufficient_claims\", claims=\"{}\"",
        quoted_safe(authorization_uri),
        STANDARD.encode(claims.to_string())
    )
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

    /// The documentation's own example, byte for byte (its `c1` variant).
    #[test]
    fn claims_challenge_is_microsofts_documented_header() {
        let uri: Arc<str> = Arc::from("https://login.microsoftonline.com/common/oauth2/authorize");
        let r = GatewayError::Denied(Denial::AuthContextRequired {
            required: vec!["c1".into()],
            challenge: true,
        })
        .challenge_at(&uri)
        .into_response();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", error=\"insufficient_claims\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19\""
        );
    }

    #[test]
    fn claims_challenge_for_several_contexts_asks_for_values() {
        let header = claims_challenge(&["c1".into(), "c2".into()], "https://idp/authorize");
        let b64 = header
            .rsplit("claims=\"")
            .next()
            .unwrap()
            .trim_end_matches('"');
        let json = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"access_token":{"acrs":{"essential":true,"values":["c1","c2"]}}}"#
        );
    }

    #[test]
    fn missing_auth_context_without_cp1_is_403_insufficient_claims_not_a_challenge() {
        let uri: Arc<str> = Arc::from("https://idp/authorize");
        let error = GatewayError::Denied(Denial::AuthContextRequired {
            required: vec!["c1".into()],
            challenge: false,
        })
        .challenge_at(&uri);
        assert_eq!(error.reason(), "auth_context_required");
        let r = error.into_response();
        assert_eq!(r.status(), 403);
        let header = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            header.starts_with("Bearer error=\"insufficient_claims\""),
            "{header}"
        );
        assert!(!header.contains("claims=\""), "{header}");
        assert!(header.contains("authentication context c1"), "{header}");
        assert!(header.contains("cp1"), "{header}");
    }

    /// Without `challenge_at` (a decider that knows no authority) a
    /// challengeable refusal still denies.
    #[test]
    fn an_unconverted_auth_context_challenge_still_denies() {
        let r = GatewayError::Denied(Denial::AuthContextRequired {
            required: vec!["c1".into()],
            challenge: true,
        })
        .into_response();
        assert_eq!(r.status(), 403);
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
