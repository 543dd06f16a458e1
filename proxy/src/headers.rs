//! Header rewriting: what the upstream may receive, and what the client gets back.
//!
//! The rule for the request is "strip, then set": every client-sent identity
//! header (and every look-alike a backend could fold into the same name) is
//! removed on every route, hop-by-hop headers go, and only then does the
//! gateway add its own identity headers. Nothing a client sends can remove or
//! replace them afterwards, because nothing runs afterwards.

use std::borrow::Cow;
use std::io::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::identity::Identity;
use crate::policy::IdentityHeaders;

/// Hop-by-hop headers, which a proxy must not forward (RFC 9110 §7.6.1:
/// `Connection` and the fields it names, plus the ones listed there —
/// `Proxy-Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`).
/// `Trailer` and `Proxy-Authorization` are connection-specific as well.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Client-sent headers that must never reach the upstream, compared after
/// folding (lowercase, `-`, `_` and `.` removed): method overrides, which
/// would let a client run a method the policy did not allow; forwarding
/// headers, which the gateway sets itself; and request-target overrides,
/// which servers and frameworks behind a proxy read instead of the path
/// (IIS and ASP.NET `X-Original-URL` / `X-Rewrite-URL`, nginx's
/// `X-Original-URI` convention, Traefik's `X-Forwarded-Uri`, Spring's and
/// ASP.NET Core's `X-Forwarded-Prefix` / `X-Forwarded-Path`, Envoy's
/// `X-Envoy-Original-Path`): the path the policy decided on is the only
/// path the upstream may act on. SECURITY.md lists them.
const ALWAYS_STRIPPED_FOLDED: [&str; 16] = [
    "xhttpmethodoverride",
    "xhttpmethod",
    "xmethodoverride",
    "xforwardedfor",
    "xforwardedproto",
    "xforwardedhost",
    "xforwardedport",
    "forwarded",
    "xrealip",
    "xoriginalurl",
    "xrewriteurl",
    "xoriginaluri",
    "xforwardeduri",
    "xforwardedpath",
    "xforwardedprefix",
    "xenvoyoriginalpath",
];

/// Set by the gateway (only) when it strips a prefix from the forwarded path
/// (`strip_prefix` of an upstream in `policy.yaml`).
pub const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// The forwarding headers the gateway sets (`set_forwarded`), as constants:
/// `from_static` checks its name each time it runs outside a const.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Characters percent-encoded in `X-User-Name` and `X-User-Email`: all but
/// RFC 3986 unreserved characters and `@`, so any UTF-8 name survives as a
/// visible-ASCII header value and decodes back exactly.
const DISPLAY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// What the strip stage must know, precomputed once per policy.
#[derive(Debug, Clone)]
pub struct StripRules {
    /// Folded forms of the configured identity header names.
    identity_folded: Vec<String>,
}

impl StripRules {
    pub fn new(names: &IdentityHeaders) -> Self {
        let identity_folded = names.all().iter().map(|n| fold(n.as_str())).collect();
        StripRules { identity_folded }
    }

    fn must_strip(&self, name: &str) -> bool {
        let mut buf = [0u8; 64];
        let Some(folded) = fold_into(name, &mut buf) else {
            // Longer than any name we compare with: cannot be one of them.
            return false;
        };
        self.identity_folded.iter().any(|f| f.as_bytes() == folded)
            || ALWAYS_STRIPPED_FOLDED
                .iter()
                .any(|f| f.as_bytes() == folded)
    }
}

/// Removes from a client request everything the upstream must not receive:
/// hop-by-hop headers and those named in `Connection`, identity headers and
/// their look-alikes, method overrides, forwarding headers, request-target
/// overrides, and `Authorization` unless the route forwards it.
pub fn strip_request(headers: &mut HeaderMap, rules: &StripRules, keep_authorization: bool) {
    for name in doomed(headers, |name| rules.must_strip(name)) {
        headers.remove(&name);
    }
    if !keep_authorization {
        headers.remove(header::AUTHORIZATION);
    }
}

/// Removes hop-by-hop headers from an upstream response before it goes back
/// to the client (RFC 9110 §7.6.1 applies in both directions).
pub fn strip_response(headers: &mut HeaderMap) {
    for name in doomed(headers, |_| false) {
        headers.remove(&name);
    }
}

/// What a message must lose on its way through: the names its `Connection`
/// headers list, and each header present that is hop-by-hop or that `also`
/// picks. One pass over the headers there are, rather than a lookup per name
/// that could be there; the `Vec` stays unallocated for a message that has
/// none of them.
fn doomed(headers: &HeaderMap, also: impl Fn(&str) -> bool) -> Vec<HeaderName> {
    let mut doomed = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        // Split the raw bytes: one non-ASCII byte elsewhere in the value
        // must not make every name in it count for nothing.
        for name in value.as_bytes().split(|&b| b == b',') {
            if let Ok(name) = HeaderName::from_bytes(name.trim_ascii()) {
                doomed.push(name);
            }
        }
    }
    for name in headers.keys() {
        if HOP_BY_HOP.contains(&name.as_str()) || also(name.as_str()) {
            doomed.push(name.clone());
        }
    }
    doomed
}

/// A `Content-Length` value as the gateway reads it everywhere (its own
/// HTTP/1.1 server and client, the body limit, the small responses read
/// whole): digits only, at most 19 of them (no sign, no spaces, no list).
pub fn content_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| match d {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u64::from(d - b'0')),
        _ => None,
    })
}

/// Sets `X-Forwarded-For/Proto/Host` from what the gateway itself observed.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    client: SocketAddr,
    tls: bool,
    host: Option<HeaderValue>,
) {
    // Formatted on the stack: the longest IPv6 text is 45 bytes.
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    if write!(cursor, "{}", client.ip()).is_ok() {
        let len = usize::try_from(cursor.position()).unwrap_or(0);
        if let Ok(v) = HeaderValue::from_bytes(&buf[..len]) {
            headers.insert(X_FORWARDED_FOR, v);
        }
    }
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if tls { "https" } else { "http" }),
    );
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

/// The identity headers' values of one caller, rendered once when its token
/// is verified (see [`crate::identity::Authenticated`]): a request with a cached
/// token copies reference counts, it does not encode anything again.
/// `None`: the header is not sent (an absent display claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityValues {
    user_id: Option<HeaderValue>,
    tenant: Option<HeaderValue>,
    roles: Option<HeaderValue>,
    scopes: Option<HeaderValue>,
    kind: Option<HeaderValue>,
    name: Option<HeaderValue>,
    email: Option<HeaderValue>,
}

impl IdentityValues {
    pub fn render(identity: &Identity) -> IdentityValues {
        // Values below are built from visible ASCII only (see `header_safe`),
        // so this cannot fail; if it ever did, the header is absent rather
        // than forged, and the backend treats the caller as unauthenticated.
        fn value(value: Cow<'_, str>) -> Option<HeaderValue> {
            match value {
                Cow::Borrowed(v) => HeaderValue::from_str(v),
                Cow::Owned(v) => HeaderValue::from_maybe_shared(Bytes::from(v)),
            }
            .ok()
        }
        let display = |claim: &Option<String>| {
            claim
                .as_deref()
                .and_then(|v| value(utf8_percent_encode(v, DISPLAY_ENCODE).into()))
        };
        IdentityValues {
            user_id: value(header_safe(&identity.object_id)),
            tenant: value(header_safe(&identity.tenant_id)),
            roles: value(Cow::Owned(list(&identity.roles, ','))),
            scopes: value(Cow::Owned(list(&identity.scopes, ' '))),
            kind: Some(HeaderValue::from_static(identity.kind.as_str())),
            name: display(&identity.name),
            email: display(&identity.email),
        }
    }
}

/// Sets exactly one of each identity header. Runs after [`strip_request`].
/// Absent values stay absent: the strip stage already removed any client value.
pub fn set_identity(headers: &mut HeaderMap, names: &IdentityHeaders, values: &IdentityValues) {
    for (name, value) in [
        (&names.user_id, &values.user_id),
        (&names.tenant, &values.tenant),
        (&names.roles, &values.roles),
        (&names.scopes, &values.scopes),
        (&names.kind, &values.kind),
        (&names.name, &values.name),
        (&names.email, &values.email),
    ] {
        if let Some(value) = value {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// A claim value as a header value: visible ASCII kept, everything else
/// percent-encoded (ids are GUIDs in practice; this only guards the odd one).
fn header_safe(value: &str) -> Cow<'_, str> {
    utf8_percent_encode(value, &CONTROLS_AND_PERCENT).into()
}

/// Roles or scopes as one list header, each item as [`list_item`] makes it.
fn list(items: &[String], separator: char) -> String {
    let mut out = String::with_capacity(items.iter().map(|i| i.len() + 1).sum());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(separator);
        }
        push_list_item(&mut out, item, separator);
    }
    out
}

const CONTROLS_AND_PERCENT: AsciiSet = percent_encoding::CONTROLS.add(b'%').add(b' ').add(b'"');

/// A role or scope inside a list header: its separator is encoded as well,
/// so a crafted role value like `User,Admin` can never read as two roles.
#[cfg(test)]
fn list_item(value: &str, separator: char) -> String {
    let mut out = String::new();
    push_list_item(&mut out, value, separator);
    out
}

/// [`list_item`], appended to `out`. A space separator is always encoded by
/// `header_safe`; a comma is not, so it is encoded here.
fn push_list_item(out: &mut String, value: &str, separator: char) {
    for chunk in utf8_percent_encode(value, &CONTROLS_AND_PERCENT) {
        if separator == ',' {
            for (i, part) in chunk.split(',').enumerate() {
                if i > 0 {
                    out.push_str("%2C");
                }
                out.push_str(part);
            }
        } else {
            out.push_str(chunk);
        }
    }
}

/// Lowercase, with `-`, `_` and `.` dropped: the forms many servers (CGI,
/// PHP, some frameworks) fold header names into.
fn fold(name: &str) -> String {
    name.bytes()
        .filter(|b| !matches!(b, b'-' | b'_' | b'.'))
        .map(|b| b.to_ascii_lowercase() as char)
        .collect()
}

/// [`fold`] without allocating; `None` when the name does not fit.
fn fold_into<'a>(name: &str, buf: &'a mut [u8; 64]) -> Option<&'a [u8]> {
    let mut len = 0;
    for b in name.bytes() {
        if matches!(b, b'-' | b'_' | b'.') {
            continue;
        }
        *buf.get_mut(len)? = b.to_ascii_lowercase();
        len += 1;
    }
    Some(&buf[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> StripRules {
        StripRules::new(&IdentityHeaders::default())
    }

    #[test]
    fn look_alike_identity_headers_are_stripped() {
        for name in [
            "x-user-id",
            "x_user_id",
            "x.user.id",
            "x-user_id",
            "xuserid",
            "X-USER-ROLES",
            "x-user-assertion",
            "X_User_Assertion",
            "x.user-assertion",
        ] {
            assert!(rules().must_strip(&name.to_ascii_lowercase()), "{name}");
        }
        assert!(!rules().must_strip("x-user-ids-extra"));
        assert!(!rules().must_strip("content-type"));
    }

    #[test]
    fn request_target_overrides_and_their_look_alikes_are_stripped() {
        for name in [
            "x-original-url",
            "x_original_url",
            "x-rewrite-url",
            "x-original-uri",
            "x-forwarded-uri",
            "x_forwarded.path",
            "x-forwarded-prefix",
            "x-envoy-original-path",
            "X_ENVOY_ORIGINAL_PATH",
        ] {
            assert!(rules().must_strip(&name.to_ascii_lowercase()), "{name}");
        }
        assert!(!rules().must_strip("x-original-url-extra"));
        assert!(!rules().must_strip("x-envoy-upstream-service-time"));
    }

    #[test]
    fn connection_cannot_name_away_gateway_headers_because_they_are_set_after() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("x-user-id, keep-alive"),
        );
        headers.insert("x-user-id", HeaderValue::from_static("forged"));
        headers.insert("x-custom", HeaderValue::from_static("kept"));
        strip_request(&mut headers, &rules(), false);
        assert!(headers.get("x-user-id").is_none());
        assert_eq!(headers.get("x-custom").unwrap(), "kept");
    }

    #[test]
    fn a_response_loses_every_hop_by_hop_header_and_what_connection_names() {
        let mut headers = HeaderMap::new();
        for name in HOP_BY_HOP {
            headers.append(name, HeaderValue::from_static("x"));
        }
        // Two `Connection` values, one with a byte that is not ASCII: the
        // names around it still count.
        headers.append(
            header::CONNECTION,
            HeaderValue::from_static("x-backend-secret, keep-alive"),
        );
        headers.append(
            header::CONNECTION,
            HeaderValue::from_bytes(b"x-other-secret, \xff, upgrade").unwrap(),
        );
        headers.insert("x-backend-secret", HeaderValue::from_static("s"));
        headers.insert("x-other-secret", HeaderValue::from_static("s"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("a/b"));
        headers.insert("x-kept", HeaderValue::from_static("k"));
        strip_response(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x-kept"]);

        // Nothing to strip: nothing changes.
        let before = headers.clone();
        strip_response(&mut headers);
        assert_eq!(headers, before);
    }

    #[test]
    fn display_values_are_percent_encoded_utf8() {
        assert_eq!(
            utf8_percent_encode("Zoë O'Neil", DISPLAY_ENCODE).to_string(),
            "Zo%C3%AB%20O%27Neil"
        );
        assert_eq!(
            utf8_percent_encode("alice@contoso.dev", DISPLAY_ENCODE).to_string(),
            "alice@contoso.dev"
        );
    }

    #[test]
    fn a_role_cannot_smuggle_a_second_role() {
        assert_eq!(list_item("User,Admin", ','), "User%2CAdmin");
        assert_eq!(
            list(&["User,Admin".into(), "Reader".into(), "a b%".into()], ','),
            "User%2CAdmin,Reader,a%20b%25"
        );
        assert_eq!(list(&["x y".into(), "z".into()], ' '), "x%20y z");
        assert_eq!(list(&[], ','), "");
    }

    #[test]
    fn forwarded_for_is_the_peer_address() {
        let mut headers = HeaderMap::new();
        for (peer, expected) in [
            ("192.0.2.7:1234", "192.0.2.7"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            (
                "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ),
        ] {
            set_forwarded(&mut headers, peer.parse().unwrap(), false, None);
            assert_eq!(headers["x-forwarded-for"], expected);
        }
    }
}
