//! The ways authentication can fail, as small typed errors.
//!
//! [`AuthError`] is what a request gets: a fixed machine-readable reason for the
//! access log, an HTTP status, the RFC 6750 `error` code and a description that
//! is safe to put in a quoted-string. [`AuthSetupError`] is a configuration
//! mistake found before anything is served; [`KeyFetchError`] is one failed
//! attempt to load the signing keys (the last good keys stay in use).
//!
//! Nothing here ever carries the token or any other attacker-chosen text: every
//! description is built from static strings only.

use http::StatusCode;
use jsonwebtoken::Algorithm;

/// Why a request was not authenticated.
///
/// The variants map one-to-one onto the fixed reasons returned by
/// [`AuthError::reason`]; the `&'static str` payloads name a claim or say what
/// was malformed, and are never built from the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer` credential at all (also a non-Bearer scheme,
    /// and `Bearer` with nothing after it).
    #[error("no bearer token was presented")]
    MissingToken,
    /// The request itself is malformed: two `Authorization` headers, a Bearer
    /// header with more than one token, a non-token character.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The credential is not a compact JWS with a JSON header and payload.
    #[error("the token is malformed: {0}")]
    MalformedToken(&'static str),
    /// The JOSE header carries a `nonce`: a token for Microsoft Graph, which
    /// only Graph can verify; it was never meant for this API.
    #[error("this is a token for Microsoft Graph, not for this API")]
    GraphToken,
    /// `alg` is `none`, HMAC, unknown or simply not in the allow-list.
    #[error("the token's signing algorithm is not allowed")]
    DisallowedAlgorithm,
    /// `kid` is not in the key set, even after a (cooldown-limited) refresh.
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    /// The signature does not verify with the key named by `kid`.
    #[error("the token signature is invalid")]
    BadSignature,
    /// `exp` (plus leeway) is in the past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` (minus leeway) is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `aud` names none of the accepted audiences.
    #[error("the token is not meant for this API (wrong audience)")]
    WrongAudience,
    /// `iss` is not exactly the v1 or v2 issuer for the token's `tid`.
    #[error("the token was not issued by the expected issuer")]
    WrongIssuer,
    /// The issuing tenant is not the configured one or not in the allow-list.
    #[error("the token was issued by a tenant that is not allowed")]
    WrongTenant,
    /// A required claim is absent; the payload names it.
    #[error("the token has no `{0}` claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an unacceptable value; never coerced.
    #[error("the token's `{0}` claim has the wrong type or value")]
    InvalidClaim(&'static str),
    /// Neither `scp` nor `roles`: such a token grants nothing, and any app in
    /// the tenant can obtain one for this API.
    #[error("the token carries neither scopes (scp) nor roles")]
    NoPermissions,
    /// No signing key has ever been loaded, so no token can be judged yet.
    #[error("the signing keys are not available yet, try again later")]
    KeysUnavailable,
}

#[cfg(test)]
impl AuthError {
    /// One of each variant, for the tests that must cover every reason (the
    /// status table here, the fixed denial list in `metrics.rs`). The match
    /// stops compiling when a variant is added until it is listed here too.
    pub(crate) fn one_of_each() -> Vec<AuthError> {
        let all = vec![
            AuthError::MissingToken,
            AuthError::InvalidRequest("more than one Authorization header was sent"),
            AuthError::MalformedToken("the header has no kid"),
            AuthError::GraphToken,
            AuthError::DisallowedAlgorithm,
            AuthError::UnknownKey,
            AuthError::BadSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::WrongAudience,
            AuthError::WrongIssuer,
            AuthError::WrongTenant,
            AuthError::MissingClaim("oid"),
            AuthError::InvalidClaim("roles"),
            AuthError::NoPermissions,
            AuthError::KeysUnavailable,
        ];
        for e in &all {
            match e {
                AuthError::MissingToken
                | AuthError::InvalidRequest(_)
                | AuthError::MalformedToken(_)
                | AuthError::GraphToken
                | AuthError::DisallowedAlgorithm
                | AuthError::UnknownKey
                | AuthError::BadSignature
                | AuthError::Expired
                | AuthError::NotYetValid
                | AuthError::WrongAudience
                | AuthError::WrongIssuer
                | AuthError::WrongTenant
                | AuthError::MissingClaim(_)
                | AuthError::InvalidClaim(_)
                | AuthError::NoPermissions
                | AuthError::KeysUnavailable => {}
            }
        }
        all
    }
}

impl AuthError {
    /// The fixed, machine-readable reason for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::InvalidRequest(_) => "invalid_request",
            AuthError::MalformedToken(_) => "malformed_token",
            AuthError::GraphToken => "graph_token",
            AuthError::DisallowedAlgorithm => "disallowed_algorithm",
            AuthError::UnknownKey => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongTenant => "wrong_tenant",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::InvalidClaim(_) => "invalid_claim",
            AuthError::NoPermissions => "no_permissions",
            AuthError::KeysUnavailable => "keys_unavailable",
        }
    }

    /// The response status: 400 for a malformed request (RFC 6750 §3.1
    /// `invalid_request`), 503 while no key was ever loaded (the gateway's
    /// fault, not the client's), 401 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            AuthError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 §3 `error` attribute for `WWW-Authenticate: Bearer`.
    ///
    /// `None` when no token was presented: RFC 6750 §3.1 says the resource
    /// server should then include no error code. Also `None` for
    /// `keys_unavailable`, where the token was not judged at all.
    pub fn www_authenticate_error(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingToken | AuthError::KeysUnavailable => None,
            AuthError::InvalidRequest(_) => Some("invalid_request"),
            _ => Some("invalid_token"),
        }
    }

    /// A human-readable description for `error_description` and the JSON body.
    ///
    /// Built from static text only, so it never echoes the token, and it never
    /// contains `"` or `\` (RFC 6750 §3: the value is a quoted-string limited to
    /// `%x20-21 / %x23-5B / %x5D-7E`).
    pub fn description(&self) -> String {
        self.to_string()
    }
}

/// A configuration that cannot work; reported before any port is bound.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthSetupError {
    /// At least one accepted audience is needed, or every token would fail.
    #[error("no accepted audience is configured")]
    NoAudience,
    /// An empty audience string would be a trap (a token with `aud: ""`).
    #[error("an accepted audience is empty")]
    EmptyAudience,
    /// The algorithm allow-list is empty.
    #[error("no signing algorithm is allowed")]
    NoAlgorithm,
    /// Only RSA algorithms make sense with Entra's RSA keys; HMAC in
    /// particular would let anyone holding the public key sign tokens.
    #[error("signing algorithm {0:?} is not supported: only RS256/384/512 and PS256/384/512")]
    UnsupportedAlgorithm(Algorithm),
    /// The tenant GUID (or an allow-list entry) is empty or has odd characters.
    #[error("invalid tenant id `{0}`: expected a tenant GUID")]
    InvalidTenant(String),
    /// A multi-tenant allow-list with no entry would reject everyone; use
    /// `AllowedTenants::Any` to accept every tenant on purpose.
    #[error("the tenant allow-list is empty")]
    EmptyTenantList,
    /// `instance`, `sts_instance` or `metadata_url` is not an http(s) URL.
    #[error("{field} `{value}` is not an http(s) URL")]
    InvalidUrl {
        /// Which setting.
        field: &'static str,
        /// The configured value (configuration, not a secret).
        value: String,
    },
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The HTTP client for discovery could not be built (TLS roots, ...).
    #[error("cannot build the HTTP client for OIDC discovery")]
    HttpClient(#[source] reqwest::Error),
}

/// One failed attempt to load the signing keys. The last good keys stay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFetchError {
    /// Connection refused, timeout, TLS failure, ...
    #[error("request to {url} failed")]
    Http {
        /// The discovery or JWKS URL.
        url: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// A non-2xx answer.
    #[error("{url} answered {status}")]
    Status {
        /// The discovery or JWKS URL.
        url: String,
        /// The status received.
        status: StatusCode,
    },
    /// The body exceeded the response size cap.
    #[error("{url} answered more than {limit} bytes")]
    TooLarge {
        /// The discovery or JWKS URL.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// Not the expected JSON (an HTML error page, a truncated body, ...).
    #[error("{url} did not answer the expected JSON")]
    Json {
        /// The discovery or JWKS URL.
        url: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The discovery document names another issuer than the one the gateway
    /// expects (OpenID Connect Discovery 1.0 §4.3): none of its keys is
    /// trusted. A wrong `--tenant`, `--instance` or `--metadata-url`, or a
    /// document that is not the IdP's.
    #[error(
        "{url} names issuer {issuer:?}, expected {expected}: no key from it is trusted (check --tenant, --instance and --metadata-url)"
    )]
    UnexpectedIssuer {
        /// The discovery URL.
        url: String,
        /// The `issuer` the document gave (configuration, not a secret).
        issuer: String,
        /// The accepted issuers, joined with ` or `.
        expected: String,
    },
    /// The discovery document's `jwks_uri` is not an http(s) URL.
    #[error("the discovery document's jwks_uri is not an http(s) URL")]
    InvalidJwksUri,
    /// The JWKS held no usable RSA signing key; an empty set never replaces
    /// a good one.
    #[error("{url} holds no usable RSA signing key ({skipped} skipped)")]
    NoUsableKeys {
        /// The JWKS URL.
        url: String,
        /// How many entries were skipped as unusable.
        skipped: usize,
    },
}
