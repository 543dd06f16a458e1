//! Route globs: their syntax, and the rule that they be written in the same
//! normalised form that request paths are matched in.
//!
//! Requests are matched after `path::normalize`, so a glob holding something
//! a normalised path never holds (`//`, `..`, `%2e`, lowercase hex, a raw
//! `é`) would silently never match. Such globs are refused at load time with
//! the spelling that would work. `*` never crosses `/` (`literal_separator`);
//! `**` as a whole segment does.
//!
//! Two rules close the trailing-slash gap. Many backends (warp among them)
//! serve `/todoitems/` as `/todoitems`, so a route for `/todoitems/*` must not
//! decide `DELETE /todoitems/` under weaker rules than the `/todoitems` route:
//! - the policy matches request paths without their trailing slash (see
//!   `Policy::route_for`), so globs are written without one;
//! - a `*` that is a whole segment matches one character or more, never an
//!   empty segment (it is compiled as `?*`), so `/*` does not match `/`.

use globset::{Glob, GlobBuilder};

use crate::path::{hides_a_special_segment, is_dot_segment, is_path_char, is_unreserved};

/// Characters that are glob syntax and therefore allowed raw, although a
/// normalised path would carry them percent-encoded.
const GLOB_SYNTAX: &[u8] = b"?[]{}^";

/// Builds the matcher for one route path, or says what is wrong with it.
pub(super) fn compile_glob(written: &str) -> Result<Glob, String> {
    if !written.starts_with('/') {
        return Err(format!("path `{written}` must start with `/`"));
    }
    if written.contains('\\') {
        return Err(format!(
            "path `{written}` contains a backslash; requests with one are refused (to match a literal `*`, write `[*]`)"
        ));
    }
    let glob = GlobBuilder::new(&matching_form(written))
        .literal_separator(true)
        .backslash_escape(false)
        .build()
        .map_err(|e| format!("invalid glob `{written}`: {}", e.kind()))?;
    check_escapes(written)?;
    check_segments(written)?;
    Ok(glob)
}

/// The glob actually compiled: a whole-segment `*` becomes `?*`.
fn matching_form(written: &str) -> String {
    let segments: Vec<&str> = written
        .split('/')
        .map(|segment| if segment == "*" { "?*" } else { segment })
        .collect();
    segments.join("/")
}

/// Percent-escapes must be ones `normalize` would keep, spelt as it spells them.
fn check_escapes(written: &str) -> Result<(), String> {
    let bytes = written.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let escape: String = written[i..].chars().take(3).collect();
            let hex = &escape[1..];
            let value = (hex.len() == 2 && hex.bytes().all(|h| h.is_ascii_hexdigit()))
                .then(|| u8::from_str_radix(hex, 16).ok())
                .flatten();
            let Some(value) = value else {
                return Err(format!(
                    "invalid percent-escape `{escape}` in path `{written}`"
                ));
            };
            if matches!(value, b'/' | b'\\' | 0) {
                return Err(format!(
                    "path `{written}` can never match: requests containing `{escape}` are refused"
                ));
            }
            if is_unreserved(value) {
                let plain = char::from(value);
                return Err(format!(
                    "path `{written}` is not normalised: write `{plain}` for `{escape}`"
                ));
            }
            let upper = escape.to_ascii_uppercase();
            if upper != escape {
                return Err(format!(
                    "path `{written}` is not normalised: write `{upper}` for `{escape}`"
                ));
            }
            i += 3;
            continue;
        }
        if !is_path_char(b) && !GLOB_SYNTAX.contains(&b) {
            let c = written[i..].chars().next().unwrap_or_default();
            let mut buf = [0; 4];
            let encoded: String = c
                .encode_utf8(&mut buf)
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect();
            return Err(format!(
                "path `{written}` is not normalised: write `{encoded}` for `{}`",
                c.escape_debug()
            ));
        }
        i += c_len(written, i);
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(written).collect();
    if std::str::from_utf8(&decoded).is_err() {
        return Err(format!(
            "path `{written}` can never match: its escapes are not valid UTF-8"
        ));
    }
    Ok(())
}

/// No `//`, no trailing `/`, no dot-segments, no `;` parameters on
/// dot-segments, and `**` only as a whole segment (globset would quietly
/// read `a**` as `a*`).
fn check_segments(written: &str) -> Result<(), String> {
    if written == "/" {
        return Ok(());
    }
    let segments: Vec<&str> = written.split('/').skip(1).collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() && i == last {
            let trimmed = written.trim_end_matches('/');
            return Err(format!(
                "path `{written}` ends with `/`; trailing slashes are ignored when matching, write `{trimmed}`"
            ));
        }
        if segment.is_empty() {
            return Err(format!(
                "path `{written}` is not normalised: `//` is merged into `/`"
            ));
        }
        if segment.contains("**") && *segment != "**" {
            return Err(format!(
                "invalid glob `{written}`: `**` must be a whole segment"
            ));
        }
        if is_dot_segment(segment) {
            return Err(format!(
                "path `{written}` is not normalised: dot-segment `{segment}`"
            ));
        }
        if hides_a_special_segment(segment) {
            return Err(format!(
                "path `{written}` can never match: requests with `;` on an empty or dot-segment are refused"
            ));
        }
    }
    Ok(())
}

/// Length in bytes of the character starting at byte `i`.
fn c_len(s: &str, i: usize) -> usize {
    s[i..].chars().next().map_or(1, char::len_utf8)
}
