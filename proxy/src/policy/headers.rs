//! The names of the headers that carry the caller's identity to the backend.
//!
//! The names are configurable (`identity_headers:` in `policy.yaml`) and are
//! validated when the policy loads: each must be a legal header name, all
//! must differ, and none may be a header the gateway or HTTP itself already
//! gives a meaning to. Setting and stripping them is the forwarding stage's job.

use http::HeaderName;

/// Header names for each identity field. [`Default`] gives the documented
/// `X-User-*` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeaders {
    /// `oid`.
    pub user_id: HeaderName,
    /// `tid`.
    pub tenant: HeaderName,
    /// `roles`, comma-separated.
    pub roles: HeaderName,
    /// `scp`, space-separated.
    pub scopes: HeaderName,
    /// Display name, percent-encoded UTF-8.
    pub name: HeaderName,
    /// Email or UPN, percent-encoded UTF-8.
    pub email: HeaderName,
    /// `user` or `app` (key `type` in the file).
    pub kind: HeaderName,
    /// The signed identity assertion (`assertion.rs`), a compact JWS.
    pub assertion: HeaderName,
}

impl IdentityHeaders {
    /// All eight names, for stripping client-sent copies.
    pub fn all(&self) -> [&HeaderName; 8] {
        [
            &self.user_id,
            &self.tenant,
            &self.roles,
            &self.scopes,
            &self.name,
            &self.email,
            &self.kind,
            &self.assertion,
        ]
    }
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            user_id: HeaderName::from_static("x-user-id"),
            tenant: HeaderName::from_static("x-user-tenant"),
            roles: HeaderName::from_static("x-user-roles"),
            scopes: HeaderName::from_static("x-user-scopes"),
            name: HeaderName::from_static("x-user-name"),
            email: HeaderName::from_static("x-user-email"),
            kind: HeaderName::from_static("x-user-type"),
            assertion: HeaderName::from_static("x-user-assertion"),
        }
    }
}

/// Headers that already mean something to HTTP or to the gateway, so an
/// identity could not be carried in them safely (RFC 9110 §7.6.1 hop-by-hop
/// headers, credentials, framing, and the `X-Forwarded-*` the gateway sets).
const RESERVED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "proxy-authenticate",
    "www-authenticate",
    "cookie",
    "set-cookie",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-type",
    "content-encoding",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// Parses a configured header name, refusing reserved ones.
pub(super) fn parse_header_name(written: &str) -> Result<HeaderName, String> {
    let name =
        HeaderName::try_from(written).map_err(|_| format!("invalid header name `{written}`"))?;
    if RESERVED.contains(&name.as_str()) {
        return Err(format!("header name `{written}` is reserved"));
    }
    Ok(name)
}
