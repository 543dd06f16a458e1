//! The HTTP methods a route admits, as a bitset.
//!
//! Only the methods of RFC 9110 §9 that APIs use can be named in a policy
//! (`CONNECT` and `TRACE` have no business behind an API gateway); a request
//! with any other method matches no route's methods and gets a 405. `HEAD` is
//! deliberately not implied by `GET`: what is allowed is what is written.

use http::Method;

/// The methods a policy may name, in the order `Allow` headers list them.
pub const KNOWN_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// A set of [`KNOWN_METHODS`], one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct MethodSet(u8);

impl MethodSet {
    /// The empty set.
    pub const EMPTY: MethodSet = MethodSet(0);

    /// The bit of a known method, `None` for any other.
    fn bit(method: &Method) -> Option<u8> {
        KNOWN_METHODS
            .iter()
            .position(|known| known == method)
            .map(|i| 1 << i)
    }

    /// Adds `method`; returns `false` if it is not a known method.
    pub fn insert(&mut self, method: &Method) -> bool {
        match Self::bit(method) {
            Some(bit) => {
                self.0 |= bit;
                true
            }
            None => false,
        }
    }

    pub fn contains(self, method: &Method) -> bool {
        Self::bit(method).is_some_and(|bit| self.0 & bit != 0)
    }

    pub fn union(self, other: MethodSet) -> MethodSet {
        MethodSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in [`KNOWN_METHODS`] order.
    pub fn iter(self) -> impl Iterator<Item = &'static Method> {
        KNOWN_METHODS
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, method)| method)
    }

    /// The value of an `Allow` header (RFC 9110 §10.2.1): `GET, HEAD`.
    pub fn to_allow_header(self) -> String {
        let names: Vec<&str> = self.iter().map(Method::as_str).collect();
        names.join(", ")
    }
}

/// Parses a method as written in a policy: exactly one of [`KNOWN_METHODS`],
/// in capitals, because `Method` is case-sensitive (RFC 9110 §9.1) and a
/// request for `get` is not a request for `GET`.
pub(super) fn parse_method(written: &str) -> Result<Method, String> {
    if let Some(known) = KNOWN_METHODS.iter().find(|m| m.as_str() == written) {
        return Ok(known.clone());
    }
    let upper = written.to_ascii_uppercase();
    if KNOWN_METHODS.iter().any(|m| m.as_str() == upper) {
        return Err(format!("unknown method `{written}`; did you mean {upper}?"));
    }
    Err(format!(
        "unknown method `{written}`; expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    ))
}
