//! Finding the bearer token in a request: `Authorization: Bearer <token>` and
//! nothing else.
//!
//! RFC 6750 §2.1 defines the header form; §2.2 (form body) and §2.3 (query
//! string) are deliberately not supported, and neither are cookies: they leak
//! into logs and caches and invite CSRF. This module only finds the token; it
//! does not look inside it.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::AuthError;

/// Tokens longer than this are rejected before any parsing. Entra access
/// tokens are a few KiB; the bound keeps a hostile header from costing more
/// than a valid one.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Returns the token of the single `Authorization: Bearer` header.
///
/// - no `Authorization` header, or one with another scheme (`Basic ...`):
///   [`AuthError::MissingToken`]: no bearer credential was presented;
/// - two or more `Authorization` headers: `invalid_request` (RFC 6750 §3.1),
///   since which one counts would be a guess that a proxy in front might
///   guess differently;
/// - `Bearer` with nothing after it: [`AuthError::MissingToken`] as well, so
///   the client gets the same `401` and bare `WWW-Authenticate: Bearer` as
///   with no header (a client library that sends an empty token has no token);
/// - `Bearer` with two tokens, or with characters outside RFC 6750 §2.1
///   `b64token`: `invalid_request`.
///
/// The scheme is matched case-insensitively (RFC 9110 §11.1).
#[cfg(test)]
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    check(credential(headers)?)
}

/// The credential of the single `Authorization: Bearer` header, its syntax
/// not yet checked ([`check`] does): the first half of [`bearer_token`]'s
/// rules. The authenticator looks a credential up in its token cache
/// before checking it, since only checked tokens are ever cached and a
/// cache hit is the same bytes.
pub(crate) fn credential(headers: &HeaderMap) -> Result<&[u8], AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::MissingToken);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest(
            "more than one Authorization header was sent",
        ));
    }
    let bytes = value.as_bytes();
    const SCHEME: &[u8] = b"bearer";
    let is_bearer = bytes.len() >= SCHEME.len()
        && bytes[..SCHEME.len()].eq_ignore_ascii_case(SCHEME)
        && bytes
            .get(SCHEME.len())
            .is_none_or(|&b| b == b' ' || b == b'\t');
    if !is_bearer {
        return Err(AuthError::MissingToken);
    }
    // RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token. Surrounding
    // whitespace is already trimmed by the HTTP parser; be lenient on the
    // amount of space after the scheme, strict on everything else.
    let rest = &bytes[SCHEME.len()..];
    let start = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(rest.len());
    let token = &rest[start..];
    if token.is_empty() {
        return Err(AuthError::MissingToken);
    }
    Ok(token)
}

/// The second half of [`bearer_token`]'s rules: a single `b64token`, at
/// most [`MAX_TOKEN_LEN`] bytes.
pub(crate) fn check(token: &[u8]) -> Result<&str, AuthError> {
    if !is_b64token(token) {
        return Err(AuthError::InvalidRequest(
            "the Authorization header is not a single bearer token",
        ));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::MalformedToken("the token is too long"));
    }
    // b64token is ASCII, so this cannot fail; map defensively all the same.
    std::str::from_utf8(token).map_err(|_| {
        AuthError::InvalidRequest("the Authorization header is not a single bearer token")
    })
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    // One table lookup per byte, folded without early exit: the loop
    // vectorises, and a token is a few KiB checked on every request.
    body_len > 0
        && token[..body_len]
            .iter()
            .fold(true, |ok, &b| ok & B64TOKEN[usize::from(b)])
}

/// The bytes of a b64token body (before the trailing `=`s).
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn check(values: &[&[u8]], expected: Result<&str, &str>) {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        let got = bearer_token(&headers).map_err(|e| e.reason());
        assert_eq!(got, expected, "headers {values:?}");
    }

    #[test]
    fn only_a_single_bearer_header_is_a_credential() {
        check(&[], Err("missing_token"));
        check(&[b"Bearer abc.def.ghi"], Ok("abc.def.ghi"));
        check(&[b"bearer abc.def.ghi"], Ok("abc.def.ghi"));
        check(&[b"BEARER  abc.def.ghi"], Ok("abc.def.ghi"));
        check(&[b"Bearer abc=="], Ok("abc=="));
        check(&[b"Basic dXNlcjpwYXNz"], Err("missing_token"));
        check(&[b"Bearerabc.def"], Err("missing_token"));
        check(&[b"Bearer"], Err("missing_token"));
        check(&[b"Bearer "], Err("missing_token"));
        check(&[b"Bearer \t "], Err("missing_token"));
        check(&[b"Bearer a b"], Err("invalid_request"));
        check(&[b"Bearer a,b"], Err("invalid_request"));
        check(&[b"Bearer a\"b"], Err("invalid_request"));
        check(&[b"Bearer =abc"], Err("invalid_request"));
        check(&[b"Bearer \xffabc"], Err("invalid_request"));
        check(&[b"Bearer a.b.c", b"Bearer a.b.c"], Err("invalid_request"));
        check(&[b"Basic x", b"Bearer a.b.c"], Err("invalid_request"));
    }

    #[test]
    fn oversized_token_is_rejected_before_parsing() {
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        check(&[long.as_bytes()], Err("malformed_token"));
    }
}
