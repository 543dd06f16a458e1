//! Request ids: one per request, in every log line of the request, sent to
//! the upstream and returned to the client in `X-Request-Id`.
//!
//! A client (or a load balancer in front) may bring its own id so that its
//! logs and ours join up; it is reused only when it is well formed — short,
//! and of a charset that cannot break a log line, a header or an HTML page.
//! Anything else is replaced by a fresh random id. W3C `traceparent` is not
//! this module's business: it is forwarded untouched like any other header.

use std::cell::Cell;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// `X-Request-Id`, as sent to the upstream and back to the client.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id that is reused as it is.
pub const MAX_LEN: usize = 128;

/// A request id that is safe to put in a header, a log line and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The client's id if it sent exactly one well-formed `X-Request-Id`,
    /// else a new one.
    pub fn from_headers(headers: &HeaderMap) -> RequestId {
        let mut values = headers.get_all(&X_REQUEST_ID).iter();
        match (values.next(), values.next()) {
            (Some(value), None) if is_well_formed(value.as_bytes()) => RequestId(value.clone()),
            _ => RequestId::generate(),
        }
    }

    /// A new id: 128 random bits written as a version-4 UUID, so that log
    /// tooling recognises it. Unique, not secret (a client may send any id
    /// it likes anyway): each thread draws from a SplitMix64 sequence seeded
    /// once from the system's CSPRNG, a few nanoseconds instead of a CSPRNG
    /// call per request.
    pub fn generate() -> RequestId {
        let (high, low) = NEXT.with(|state| (splitmix64(state), splitmix64(state)));
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&high.to_be_bytes());
        bytes[8..].copy_from_slice(&low.to_be_bytes());
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 36];
        let mut at = 0;
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                text[at] = b'-';
                at += 1;
            }
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0x0f)];
            at += 2;
        }
        RequestId(HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("-")))
    }

    /// The id as text (always ASCII).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("-")
    }

    /// The id as a header value (a cheap clone).
    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

thread_local! {
    /// This thread's SplitMix64 state, seeded from the CSPRNG.
    static NEXT: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if SystemRandom::new().fill(&mut bytes).is_err() {
        // The CSPRNG does not fail on supported platforms; the clock and the
        // thread still make a distinct seed.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let thread = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::thread::current().id(),
        );
        return nanos ^ thread;
    }
    u64::from_le_bytes(bytes)
}

/// SplitMix64 (Steele, Lea, Flood 2014): a bijection of a Weyl sequence, so
/// a thread's outputs do not repeat within 2^64 calls.
fn splitmix64(state: &Cell<u64>) -> u64 {
    let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
    state.set(next);
    let mut z = next;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49be_b133_11eb);
    z ^ (z >> 31)
}

/// 1 to [`MAX_LEN`] characters of `A-Z a-z 0-9 - _ . : + / = @`: enough for
/// UUIDs, ULIDs, base64 and the ids of common load balancers; nothing that
/// needs quoting in a log line, a header or HTML.
pub fn is_well_formed(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_for(values: &[&str]) -> RequestId {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(X_REQUEST_ID, HeaderValue::from_str(v).unwrap());
        }
        RequestId::from_headers(&headers)
    }

    fn is_generated(id: &RequestId) -> bool {
        let s = id.as_str();
        s.len() == 36
            && s.as_bytes()[14] == b'4'
            && s.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
    }

    #[test]
    fn a_well_formed_incoming_id_is_kept() {
        for ok in [
            "abc",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "Root=1-67891233-abcdef012345678912345678",
            &"a".repeat(MAX_LEN),
        ] {
            assert_eq!(id_for(&[ok]).as_str(), ok);
        }
    }

    #[test]
    fn a_malformed_or_repeated_incoming_id_is_replaced() {
        for bad in [
            &["has space"][..],
            &["quote\"d"],
            &["<script>"],
            &["semi;colon"],
            &[""],
            &["a", "b"],
            &[&"a".repeat(MAX_LEN + 1)],
        ] {
            let id = id_for(bad);
            assert!(is_generated(&id), "{bad:?} gave {id:?}");
        }
    }

    #[test]
    fn generated_ids_are_uuid_v4_shaped_and_differ() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        assert!(is_generated(&a) && is_generated(&b));
        assert_ne!(a, b);
        assert!(matches!(
            a.as_str().as_bytes()[19],
            b'8' | b'9' | b'a' | b'b'
        ));
    }
}
