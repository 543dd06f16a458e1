//! PEM armour for PKCS#8 private keys (RFC 7468 §10), so the key files can be
//! read by `openssl pkey` and jsonwebtoken alike.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const END: &str = "-----END PRIVATE KEY-----";

/// Wraps PKCS#8 DER in `PRIVATE KEY` armour, 64 characters a line.
pub(super) fn encode_private_key(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 64);
    out.push_str(BEGIN);
    out.push('\n');
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// Wraps DER in `label` armour (`CERTIFICATE`), 64 characters a line.
pub(super) fn encode(label: &str, der: &[u8]) -> String {
    encode_private_key(der)
        .replace(BEGIN, &format!("-----BEGIN {label}-----"))
        .replace(END, &format!("-----END {label}-----"))
}

/// Returns the DER inside `PRIVATE KEY` armour, or `None`.
pub(super) fn decode_private_key(text: &str) -> Option<Vec<u8>> {
    let start = text.find(BEGIN)? + BEGIN.len();
    let end = text[start..].find(END)? + start;
    let body: String = text[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armour_round_trips() {
        let der: Vec<u8> = (0..=255).collect();
        let pem = encode_private_key(&der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(decode_private_key(&pem), Some(der));
    }
}
