//! Request parameters of the OAuth endpoints, from a query string or an
//! `application/x-www-form-urlencoded` body.
//!
//! RFC 6749 §3.1: "Request and response parameters MUST NOT be included more
//! than once", so a repeated parameter is an `invalid_request`, not a guess.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;

/// Decoded parameters, each at most once.
#[derive(Debug, Default)]
pub(crate) struct Params {
    values: HashMap<String, String>,
}

impl Params {
    /// Parses `a=1&b=two+words`; `Err(name)` names the first repeated
    /// parameter. Empty values count as absent (RFC 6749 §3.1).
    pub(crate) fn parse(encoded: &str) -> Result<Params, String> {
        let mut values = HashMap::new();
        for pair in encoded.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name);
            let value = decode(value);
            if value.is_empty() {
                continue;
            }
            if values.insert(name.clone(), value).is_some() {
                return Err(name);
            }
        }
        Ok(Params { values })
    }

    /// A parameter's value, if present and non-empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Re-encodes all parameters with `name` set to `value`, sorted by name
    /// (the sign-in page's links are the original request plus a
    /// `login_hint`).
    pub(crate) fn to_query_with(&self, name: &str, value: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .values
            .iter()
            .filter(|(k, _)| k.as_str() != name)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        pairs.push((name, value));
        pairs.sort();
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Sets a parameter (used to fill defaults, e.g. v1's `resource`).
    pub(crate) fn set(&mut self, name: &str, value: String) {
        self.values.insert(name.to_owned(), value);
    }
}

fn decode(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encodes a value for a query string or fragment (RFC 3986
/// unreserved characters stay as they are).
pub(crate) fn encode(value: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(value, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_and_percent_escapes_decode() {
        let p = Params::parse("scope=api%3A%2F%2Fx%2Fs+offline_access&state=").unwrap();
        assert_eq!(p.get("scope"), Some("api://x/s offline_access"));
        assert_eq!(p.get("state"), None);
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        assert_eq!(Params::parse("a=1&a=2").unwrap_err(), "a");
    }

    #[test]
    fn encode_round_trips_through_parse() {
        let v = "a b&c=d/é";
        let p = Params::parse(&format!("v={}", encode(v))).unwrap();
        assert_eq!(p.get("v"), Some(v));
    }
}
