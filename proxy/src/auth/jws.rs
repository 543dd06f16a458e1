//! Reading a compact JWS (RFC 7515 §7.1): split the token, check the JOSE
//! header.
//!
//! Cheap on purpose: no cryptography, no IO, no claims. Malformed tokens and
//! disallowed algorithms are refused here, before any key is looked up or any
//! signature computed; the claims are read only after the signature verified
//! (see `claims.rs`). Signature verification itself lives with the keys.

use std::borrow::Cow;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::AuthError;

/// A token split into its parts, with the JOSE header checked.
#[derive(Debug)]
pub(crate) struct ParsedToken<'a> {
    /// The header's `alg`, already known to be in the allow-list.
    pub alg: Algorithm,
    /// The header's `kid`: the only way a key is chosen.
    pub kid: String,
    /// `BASE64URL(header) "." BASE64URL(payload)`: what the signature covers.
    pub signing_input: &'a str,
    /// `BASE64URL(payload)`, decoded only after the signature verified.
    pub payload: &'a str,
    /// `BASE64URL(signature)`.
    pub signature: &'a str,
}

/// The JOSE header fields we read. Everything else is ignored, in particular
/// `jwk`, `jku`, `x5u` and `x5c`: a key carried by the token proves nothing,
/// and following `jku`/`x5u` invites SSRF (RFC 8725 §3.10). Keys only ever
/// come from the configured JWKS.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow, default)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<Value>,
    /// Only Microsoft Graph's tokens carry a `nonce` in the JOSE header (Graph
    /// hashes it before checking the signature, so nobody else can verify
    /// one); its presence is all we look at.
    #[serde(default, deserialize_with = "present")]
    nonce: Option<IgnoredAny>,
}

/// Any value, `null` included, counts as present.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<IgnoredAny>, D::Error> {
    IgnoredAny::deserialize(d).map(Some)
}

/// Splits a compact JWS and checks its header.
///
/// Exactly three parts (a five-part JWE is refused), a JSON-object header
/// (RFC 7515 §4: an array would otherwise be read field by field) with an
/// allowed `alg` and a non-empty `kid`, no `crit` (RFC 7515 §4.1.11: a
/// recipient must reject critical extensions it does not understand, and we
/// understand none), and no `nonce` (a Microsoft Graph token:
/// [`AuthError::GraphToken`]).
pub(crate) fn parse<'a>(
    token: &'a str,
    allowed: &[Algorithm],
) -> Result<ParsedToken<'a>, AuthError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedToken("a JWT has exactly three parts"));
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| AuthError::MalformedToken("the header is not base64url"))?;
    if !is_json_object(&header_json) {
        return Err(AuthError::MalformedToken("the header is not a JSON object"));
    }
    let header: RawHeader<'_> = serde_json::from_slice(&header_json)
        .map_err(|_| AuthError::MalformedToken("the header is not a JSON object"))?;
    if header.nonce.is_some() {
        return Err(AuthError::GraphToken);
    }
    if header.crit.is_some() {
        return Err(AuthError::MalformedToken(
            "critical header extensions are not supported",
        ));
    }
    let Some(alg) = header.alg else {
        return Err(AuthError::MalformedToken("the header has no alg"));
    };
    // `none` and anything unknown fail to parse; HMAC and others are simply
    // not in the allow-list (settings refuse non-RSA algorithms).
    let alg = Algorithm::from_str(&alg).map_err(|_| AuthError::DisallowedAlgorithm)?;
    if !allowed.contains(&alg) {
        return Err(AuthError::DisallowedAlgorithm);
    }
    let kid = match header.kid {
        Some(kid) if !kid.is_empty() => kid,
        _ => return Err(AuthError::MalformedToken("the header has no kid")),
    };
    // The header was decoded into a temporary buffer: own the kid.
    let kid = kid.into_owned();
    // Checked after the header, so an unsigned `alg: none` token says so.
    if payload.is_empty() || signature.is_empty() {
        return Err(AuthError::MalformedToken("a part of the token is empty"));
    }
    let signing_input = &token[..header_b64.len() + 1 + payload.len()];
    Ok(ParsedToken {
        alg,
        kid,
        signing_input,
        payload,
        signature,
    })
}

/// Whether `json` starts like a JSON object (RFC 8259 §2 whitespace skipped).
///
/// serde reads a struct from a JSON array too, positionally; a JOSE header
/// and a claims set are objects (RFC 7515 §4, RFC 7519 §7.2), so an array is
/// refused before serde sees it.
pub(crate) fn is_json_object(json: &[u8]) -> bool {
    json.iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|&b| b == b'{')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(json))
    }

    #[test]
    fn header_checks_happen_before_any_key_lookup() {
        let unsigned = |h: &str| format!("{}.e30.", URL_SAFE_NO_PAD.encode(h));
        let cases = [
            ("ok", header(r#"{"alg":"RS256","kid":"k"}"#)),
            (
                "disallowed_algorithm",
                header(r#"{"alg":"none","kid":"k"}"#),
            ),
            (
                "disallowed_algorithm",
                unsigned(r#"{"alg":"none","kid":"k"}"#),
            ),
            (
                "disallowed_algorithm",
                header(r#"{"alg":"HS256","kid":"k"}"#),
            ),
            (
                "disallowed_algorithm",
                header(r#"{"alg":"RS512","kid":"k"}"#),
            ),
            (
                "disallowed_algorithm",
                header(r#"{"alg":"rs256","kid":"k"}"#),
            ),
            ("malformed_token", unsigned(r#"{"alg":"RS256","kid":"k"}"#)),
            ("malformed_token", header(r#"{"kid":"k"}"#)),
            ("malformed_token", header(r#"{"alg":"RS256"}"#)),
            ("malformed_token", header(r#"{"alg":"RS256","kid":""}"#)),
            ("malformed_token", header(r#"{"alg":"RS256","kid":5}"#)),
            (
                "malformed_token",
                header(r#"{"alg":"RS256","kid":"k","kid":"j"}"#),
            ),
            (
                "malformed_token",
                header(r#"{"alg":"RS256","kid":"k","crit":["b64"]}"#),
            ),
            ("malformed_token", header(r#"["RS256"]"#)),
            ("malformed_token", header(r#"["RS256","k"]"#)),
            ("malformed_token", header(r#" ["RS256","k",null]"#)),
            ("ok", header(" \n{\"alg\":\"RS256\",\"kid\":\"k\"}")),
            (
                "graph_token",
                header(r#"{"alg":"RS256","kid":"k","nonce":"AQAB"}"#),
            ),
            (
                "graph_token",
                header(r#"{"alg":"RS256","kid":"k","nonce":null}"#),
            ),
            ("malformed_token", "a.b".to_owned()),
            ("malformed_token", "a.b.c.d.e".to_owned()),
            ("malformed_token", "a..c".to_owned()),
            ("malformed_token", "!!!.e30.c2ln".to_owned()),
        ];
        for (expected, token) in cases {
            let got = parse(&token, &[Algorithm::RS256]).map_or_else(|e| e.reason(), |_| "ok");
            assert_eq!(got, expected, "{token}");
        }
    }

    /// Headers far longer than Entra's (~100 bytes) decode and fail alike.
    #[test]
    fn a_large_header_is_read_like_a_small_one() {
        const SMALL_HEADER: usize = 384;
        let pad = "x".repeat(SMALL_HEADER * 2);
        for (expected, json) in [
            (
                "ok",
                format!(r#"{{"alg":"RS256","kid":"k","x5t":"{pad}"}}"#),
            ),
            (
                "ok",
                format!(r#"{{"alg":"RS256","x5t":"{pad}","kid":"k"}}"#),
            ),
            (
                "malformed_token",
                format!(r#"{{"alg":"RS256","x5t":"{pad}"}}"#),
            ),
            ("malformed_token", format!(r#"["RS256","k","{pad}"]"#)),
            (
                "disallowed_algorithm",
                format!(r#"{{"alg":"HS256","kid":"k","x5t":"{pad}"}}"#),
            ),
        ] {
            let token = header(&json);
            let got = parse(&token, &[Algorithm::RS256]).map_or_else(|e| e.reason(), |_| "ok");
            assert_eq!(got, expected, "{json}");
        }
        // Not base64url, at any length.
        for len in [SMALL_HEADER / 3 * 4, SMALL_HEADER / 3 * 4 + 4] {
            let token = format!("{}.e30.c2ln", "!".repeat(len));
            assert_eq!(
                parse(&token, &[Algorithm::RS256]).unwrap_err().reason(),
                "malformed_token"
            );
        }
    }

    #[test]
    fn header_keys_are_never_used_only_kid() {
        let t = header(
            r#"{"alg":"RS256","kid":"k","jku":"https://evil/keys","jwk":{"kty":"RSA"},"x5u":"u","x5c":["x"]}"#,
        );
        let parsed = parse(&t, &[Algorithm::RS256]).unwrap();
        assert_eq!(parsed.kid, "k");
        assert_eq!(parsed.payload, "e30");
        assert_eq!(parsed.signature, "c2ln");
        assert!(t.starts_with(parsed.signing_input) && parsed.signing_input.ends_with(".e30"));
    }
}
