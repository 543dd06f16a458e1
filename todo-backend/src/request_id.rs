//! The request id of every log line: the gateway's `X-Request-Id`, so the
//! backend's lines and the gateway's join up.

use warp::http::HeaderMap;

/// `X-Request-Id`, as the gateway sends it.
pub const HEADER: &str = "x-request-id";

/// Longest id taken as it is (the gateway's limit).
pub const MAX_LEN: usize = 128;

/// The id of a request: the one `X-Request-Id` it carries when well formed
/// (short, of a charset that cannot break a log line), else a new UUID.
pub fn from_headers(headers: &HeaderMap) -> String {
    let mut values = headers.get_all(HEADER).iter();
    match (values.next(), values.next()) {
        (Some(value), None) if is_well_formed(value.as_bytes()) => {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        }
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

/// The gateway's rule: 1 to [`MAX_LEN`] bytes of `A-Z a-z 0-9 - _ . : + / = @`.
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

    fn id_for(values: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(HEADER, value.parse().unwrap());
        }
        from_headers(&headers)
    }

    #[test]
    fn a_well_formed_id_is_kept_anything_else_replaced() {
        assert_eq!(id_for(&["abc-123"]), "abc-123");
        let long = "a".repeat(MAX_LEN);
        assert_eq!(id_for(&[&long]), long);
        for bad in [&["a b"][..], &["a\"b"], &["<x>"], &["a", "b"], &[]] {
            let id = id_for(bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad:?} gave {id}");
        }
        assert_ne!(id_for(&[&"a".repeat(MAX_LEN + 1)]), "a".repeat(MAX_LEN + 1));
    }
}
