//! Request path normalisation: the first stage of every request.
//!
//! The gateway decides on a path and then forwards that same path, so the
//! backend must resolve it to the resource the policy was asked about. This
//! module turns the raw path of the request target into one canonical form —
//! or refuses it with a 400 when the raw form is ambiguous between servers
//! (encoded slashes, backslashes, `;` parameters on dot-segments, escapes that
//! do not parse). Its job ends at producing that string: it knows nothing of
//! routes, and the query string never reaches it.
//!
//! The canonical form (RFC 3986 §6.2.2, plus `//` merging):
//! - percent-escapes of unreserved characters (ALPHA DIGIT `-` `.` `_` `~`,
//!   RFC 3986 §2.3) are decoded, so `%2e%2e` is `..` and `%74odo` is `todo`;
//!   every other escape is kept, with uppercase hex (§6.2.2.1);
//! - bytes that may not appear raw in a path (controls, space, `"<>\^`{|}`,
//!   non-ASCII) are percent-encoded, so the output is always ASCII; escapes
//!   must decode to valid UTF-8 (no overlong `%C0%AE` for `.`);
//! - empty segments are merged (`//a` is `/a`), dot-segments resolved
//!   (§5.2.4), and `..` above the root is an error, not clamped;
//! - a trailing slash is kept: `/a/` and `/a` are different resources.
//!
//! The output is a fixed point: `normalize(normalize(x)) == normalize(x)`.

use std::fmt::Write as _;

/// Why a request path was refused. The message goes to the client in a 400
/// body, so it says what is wrong without echoing the path back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The request target's path is not absolute (e.g. `*` or empty).
    #[error("path must start with `/`")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-escape in path")]
    InvalidEscape,
    /// `%2F`: servers disagree on whether it separates segments.
    #[error("encoded slash (%2F) in path")]
    EncodedSlash,
    /// `\` or `%5C`: some servers (and all of Windows) treat it as `/`.
    #[error("backslash in path")]
    Backslash,
    /// `%00` or a raw NUL: truncates the path in C-based backends.
    #[error("NUL byte in path")]
    Nul,
    /// `/..;x/`, `/.;/` or `/a/;x`: Tomcat and friends strip `;…` and then
    /// resolve the dot-segment or merge the empty one, which the gateway
    /// would not have seen.
    #[error("path parameter on an empty or dot-segment")]
    DotSegmentParameter,
    /// Escapes that decode to invalid UTF-8, such as the overlong `%C0%AE`
    /// that lenient decoders (IIS of old) read as `.`.
    #[error("percent-escapes in path are not valid UTF-8")]
    InvalidUtf8,
    /// `..` that would climb above `/`.
    #[error("path climbs above the root")]
    AboveRoot,
}

/// Normalises `raw_path`, the path of the request target (no query string),
/// into the canonical form described in the module docs. The result is what
/// routes are matched against and exactly what is forwarded upstream.
pub fn normalize(raw_path: &str) -> Result<String, PathError> {
    let bytes = raw_path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = canonical_escapes(bytes)?;
    if decoded.contains('%') {
        let raw: Vec<u8> = percent_encoding::percent_decode_str(&decoded).collect();
        if std::str::from_utf8(&raw).is_err() {
            return Err(PathError::InvalidUtf8);
        }
    }
    resolve_segments(&decoded)
}

/// Pass 1: decode unreserved escapes, uppercase the others, encode raw bytes
/// that are not allowed in a path, and refuse the dangerous ones.
fn canonical_escapes(bytes: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&h| hex_value(h));
                let lo = bytes.get(i + 2).and_then(|&l| hex_value(l));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::InvalidEscape);
                };
                let value = (hi << 4) | lo;
                match value {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::Backslash),
                    0 => return Err(PathError::Nul),
                    v if is_unreserved(v) => out.push(char::from(v)),
                    v => push_escape(&mut out, v),
                }
                i += 3;
                continue;
            }
            b'\\' => return Err(PathError::Backslash),
            0 => return Err(PathError::Nul),
            b if is_path_char(b) => out.push(char::from(b)),
            b => push_escape(&mut out, b),
        }
        i += 1;
    }
    Ok(out)
}

/// Pass 2: merge empty segments and resolve dot-segments (RFC 3986 §5.2.4),
/// refusing `..` above the root and dot-segments carrying `;` parameters.
fn resolve_segments(path: &str) -> Result<String, PathError> {
    let mut stack: Vec<&str> = Vec::new();
    // RFC 3986 §5.2.4: a path ending in `/`, `/.` or `/..` keeps a trailing slash.
    let mut trailing_slash = false;
    // The leading `/` yields an empty first segment; skip it.
    for segment in path.split('/').skip(1) {
        trailing_slash = true;
        match segment {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            s => {
                if hides_a_special_segment(s) {
                    return Err(PathError::DotSegmentParameter);
                }
                stack.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &stack {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || stack.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Whether `segment` carries `;` parameters that hide an empty or dot-segment
/// from anyone who does not strip them first (`..;x`, `.;`, `;x`).
pub(crate) fn hides_a_special_segment(segment: &str) -> bool {
    let stripped = strip_parameters(segment);
    stripped.len() != segment.len() && (stripped.is_empty() || is_dot_segment(stripped))
}

/// The segment without its `;…` parameters; `%3B` counts too, since some
/// servers decode before they strip.
fn strip_parameters(segment: &str) -> &str {
    let end = [segment.find(';'), segment.find("%3B")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(segment.len());
    &segment[..end]
}

pub(crate) fn is_dot_segment(s: &str) -> bool {
    s == "." || s == ".."
}

/// RFC 3986 §2.3.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// What may appear raw in a path (RFC 3986 §3.3 `pchar` and `/`), other than `%`.
pub(crate) fn is_path_char(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'/' | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn push_escape(out: &mut String, b: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "%{b:02X}");
}

#[cfg(test)]
mod tests {
    use super::{PathError, is_unreserved, normalize};

    /// One line per case: `expected` is the normalised path, or `Err(...)`.
    #[track_caller]
    fn check(input: &str, expected: Result<&str, PathError>) {
        let actual = normalize(input);
        assert_eq!(
            actual.as_deref().map_err(|e| *e),
            expected,
            "input: {input:?}"
        );
        if let Ok(once) = &actual {
            assert_eq!(
                normalize(once).as_ref(),
                Ok(once),
                "not idempotent for {input:?}"
            );
        }
    }

    #[test]
    fn plain_paths_are_unchanged() {
        check("/", Ok("/"));
        check("/todoitems", Ok("/todoitems"));
        check("/todoitems/", Ok("/todoitems/"));
        check("/todoitems/42", Ok("/todoitems/42"));
        check(
            "/a-b_c.d~e/f:g@h!$&'()*+,=",
            Ok("/a-b_c.d~e/f:g@h!$&'()*+,="),
        );
        check("/docs/index.html", Ok("/docs/index.html"));
        check("/a/.hidden/..b/...", Ok("/a/.hidden/..b/..."));
    }

    #[test]
    fn path_must_be_absolute() {
        check("", Err(PathError::NotAbsolute));
        check("*", Err(PathError::NotAbsolute));
        check("todoitems", Err(PathError::NotAbsolute));
        check("http://example.com/", Err(PathError::NotAbsolute));
    }

    #[test]
    fn unreserved_escapes_are_decoded() {
        check("/%74odoitems", Ok("/todoitems"));
        check("/%74%6F%64%6f%69%74%65%6d%73", Ok("/todoitems"));
        check("/a%2Db%5Fc%7Ed%2Ee", Ok("/a-b_c~d.e"));
        check("/%41%5a%30%39", Ok("/AZ09"));
    }

    #[test]
    fn other_escapes_are_kept_with_uppercase_hex() {
        check("/a%20b", Ok("/a%20b"));
        check("/a%3fb", Ok("/a%3Fb"));
        check("/caf%c3%a9", Ok("/caf%C3%A9"));
        check("/100%25", Ok("/100%25"));
        check("/%252e%252e/x", Ok("/%252e%252e/x"));
        check("/a%3Bb", Ok("/a%3Bb"));
    }

    #[test]
    fn raw_bytes_outside_pchar_are_encoded() {
        check("/a b", Ok("/a%20b"));
        check("/café", Ok("/caf%C3%A9"));
        check("/a\"<>^`{|}", Ok("/a%22%3C%3E%5E%60%7B%7C%7D"));
        check("/a?b#c", Ok("/a%3Fb%23c"));
        check("/tab\there", Ok("/tab%09here"));
    }

    #[test]
    fn invalid_escapes_are_rejected() {
        check("/%zz", Err(PathError::InvalidEscape));
        check("/%", Err(PathError::InvalidEscape));
        check("/%4", Err(PathError::InvalidEscape));
        check("/a%g1", Err(PathError::InvalidEscape));
        check("/%%41", Err(PathError::InvalidEscape));
        check("/%+1", Err(PathError::InvalidEscape));
    }

    #[test]
    fn slashes_backslashes_and_nul_in_disguise_are_rejected() {
        check("/todoitems%2F1", Err(PathError::EncodedSlash));
        check("/todoitems%2f1", Err(PathError::EncodedSlash));
        check("/health%2f..%2ftodoitems", Err(PathError::EncodedSlash));
        check("/a%5Cb", Err(PathError::Backslash));
        check("/a%5cb", Err(PathError::Backslash));
        check("/a\\b", Err(PathError::Backslash));
        check("/health\\..\\todoitems", Err(PathError::Backslash));
        check("/a%00", Err(PathError::Nul));
        check("/%c0%ae%c0%ae/todoitems", Err(PathError::InvalidUtf8));
        check("/a%C0%AF", Err(PathError::InvalidUtf8));
        check("/%e0%80%ae", Err(PathError::InvalidUtf8));
        check("/caf%e9", Err(PathError::InvalidUtf8));
        check("/caf%C3", Err(PathError::InvalidUtf8));
        check("/a\0b", Err(PathError::Nul));
    }

    #[test]
    fn empty_segments_are_merged() {
        check("//todoitems", Ok("/todoitems"));
        check("///todoitems//1", Ok("/todoitems/1"));
        check("/todoitems//", Ok("/todoitems/"));
        check("//", Ok("/"));
    }

    #[test]
    fn dot_segments_are_resolved() {
        check("/./todoitems", Ok("/todoitems"));
        check("/health/../todoitems", Ok("/todoitems"));
        check("/a/b/../../todoitems", Ok("/todoitems"));
        check("/a/./b/.", Ok("/a/b/"));
        check("/a/b/..", Ok("/a/"));
        check("/a/..", Ok("/"));
        check("/.", Ok("/"));
        check("/%2e%2e/todoitems", Err(PathError::AboveRoot));
        check("/health/%2e%2e/todoitems", Ok("/todoitems"));
        check("/health/%2E%2e/todoitems", Ok("/todoitems"));
        check("/health/.%2e/todoitems", Ok("/todoitems"));
        check("/health/%2e/../todoitems", Ok("/todoitems"));
        check("/a//../todoitems", Ok("/todoitems"));
    }

    #[test]
    fn climbing_above_the_root_is_rejected() {
        check("/..", Err(PathError::AboveRoot));
        check("/../todoitems", Err(PathError::AboveRoot));
        check("/a/../../todoitems", Err(PathError::AboveRoot));
        check("//../todoitems", Err(PathError::AboveRoot));
    }

    #[test]
    fn parameters_on_empty_or_dot_segments_are_rejected() {
        check("/health/..;/todoitems", Err(PathError::DotSegmentParameter));
        check(
            "/health/..;x=1/todoitems",
            Err(PathError::DotSegmentParameter),
        );
        check("/.;x/todoitems", Err(PathError::DotSegmentParameter));
        check(
            "/health/%2e%2e;/todoitems",
            Err(PathError::DotSegmentParameter),
        );
        check(
            "/health/..%3b/todoitems",
            Err(PathError::DotSegmentParameter),
        );
        check("/health/.;", Err(PathError::DotSegmentParameter));
        check("/todoitems/;", Err(PathError::DotSegmentParameter));
        check("/todoitems/;x=1", Err(PathError::DotSegmentParameter));
        check("/todoitems/%3B", Err(PathError::DotSegmentParameter));
        // Parameters on ordinary segments are just characters.
        check("/todoitems;jsessionid=1", Ok("/todoitems;jsessionid=1"));
        check("/a;b/..", Ok("/"));
    }

    #[test]
    fn normalize_is_idempotent_over_bypass_strings() {
        let nasty = [
            "/health/../todoitems",
            "//todoitems",
            "/%2e%2e/todoitems",
            "/todoitems%2F1",
            "/./todoitems",
            "/health/..;/todoitems",
            "/health%2f..%2ftodoitems",
            "/health/%2E%2e/todoitems",
            "/%74odoitems/%31",
            "/TodoItems/%7e/%7E/",
            "/a/%252e%252e/b",
            "/a/%2e%2e%2f/b",
            "/a/.../b/..../",
            "/a/b/c/./../../d/./e/..",
            "/a%3b/..%2e/b",
            "/%e2%80%ae/x",
            "/ü/../ä",
            "/a;/.;/b",
            "/a/;/b",
            "///a////b////",
            "/a/..//../b",
        ];
        for input in nasty {
            if let Ok(once) = normalize(input) {
                assert_eq!(normalize(&once), Ok(once.clone()), "input: {input:?}");
                assert!(once.starts_with('/') && once.is_ascii(), "input: {input:?}");
                assert!(!once.contains("//"), "input: {input:?}");
            }
        }
    }

    /// How a backend that decodes first and then resolves sees a path:
    /// every escape decoded, `;…` parameters optionally stripped (Tomcat),
    /// empty and `.` segments dropped, `..` popped.
    fn backend_view(path: &str, strip_params: bool) -> Vec<Vec<u8>> {
        let mut stack: Vec<Vec<u8>> = Vec::new();
        for raw in path.split('/') {
            let raw = if strip_params {
                raw.split(';').next().unwrap_or("")
            } else {
                raw
            };
            let segment: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
            match segment.as_slice() {
                b"" | b"." => {}
                b".." => {
                    stack.pop();
                }
                _ => stack.push(segment),
            }
        }
        stack
    }

    #[test]
    fn normalized_paths_are_canonical_and_mean_what_the_input_meant() {
        const PIECES: &[&str] = &[
            "/", "/", "/", ".", "..", "%2e", "%2E", "%2f", "%5c", "%00", ";", ";x=1", "%3b", "a",
            "B", "%41", "%7e", "%7E", "%20", "%e9", "%", "%z", "\\", "é", " ", "*", "~",
        ];
        // xorshift64: deterministic, no dependency.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = next() % 8 + 1;
            let mut input = String::from("/");
            for _ in 0..len {
                let piece = PIECES[usize::try_from(next() % PIECES.len() as u64).unwrap()];
                input.push_str(piece);
            }
            let Ok(once) = normalize(&input) else {
                continue;
            };
            accepted += 1;
            assert_eq!(normalize(&once).as_ref(), Ok(&once), "input: {input:?}");
            assert!(
                once.starts_with('/') && once.is_ascii(),
                "{input:?} -> {once:?}"
            );
            assert!(!once.contains("//"), "{input:?} -> {once:?}");
            for segment in once.split('/') {
                assert!(segment != "." && segment != "..", "{input:?} -> {once:?}");
            }
            for escape in once.split('%').skip(1) {
                let hex = escape.get(..2).expect("two hex digits");
                let value = u8::from_str_radix(hex, 16).expect("hex");
                assert_eq!(hex, hex.to_ascii_uppercase(), "{input:?} -> {once:?}");
                assert!(!is_unreserved(value), "{input:?} -> {once:?}");
            }
            for strip in [false, true] {
                assert_eq!(
                    backend_view(&input, strip),
                    backend_view(&once, strip),
                    "{input:?} -> {once:?} (strip parameters: {strip})"
                );
            }
        }
        assert!(accepted > 1_000, "only {accepted} inputs were accepted");
    }
}
