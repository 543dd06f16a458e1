//! A minimal self-signed X.509 v3 certificate for each signing key, so the
//! JWKS can carry `x5c` and the key id can be what Entra's is: the SHA-1
//! thumbprint of a certificate.
//!
//! The certificate is a pure function of the key (fixed subject, fixed
//! validity 2025–2049, serial derived from the public key, deterministic
//! PKCS#1 v1.5 signature), so it is rebuilt on load and never stored. It is
//! DER-encoded by hand (RFC 5280 §4.1); nothing ever *trusts* it — it only
//! packages the public key the way certificate-minded JWKS readers expect.

use aws_lc_rs::rsa::KeyPair;

/// Common name of subject and issuer.
const COMMON_NAME: &str = "dev-idp signing key (never trust in production)";
/// `sha256WithRSAEncryption` with NULL parameters (RFC 4055 §5).
const SHA256_WITH_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
/// `id-at-commonName`, 2.5.4.3.
const CN_OID: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];

/// Builds the DER certificate of `pair`, whose `SubjectPublicKeyInfo` is `spki`.
pub(super) fn self_signed(pair: &KeyPair, spki: &[u8]) -> Option<Vec<u8>> {
    let name = tlv(
        0x30,
        &tlv(
            0x31,
            &tlv(0x30, &[CN_OID, &tlv(0x0c, COMMON_NAME.as_bytes())].concat()),
        ),
    );
    let validity = tlv(
        0x30,
        &[tlv(0x17, b"250101000000Z"), tlv(0x17, b"491231235959Z")].concat(),
    );
    let tbs = tlv(
        0x30,
        &[
            tlv(0xa0, &tlv(0x02, &[2])), // version v3
            tlv(0x02, &serial(spki)),
            SHA256_WITH_RSA.to_vec(),
            name.clone(),
            validity,
            name,
            spki.to_vec(),
        ]
        .concat(),
    );
    let mut signature = vec![0u8; pair.public_modulus_len()];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    pair.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &rng,
        &tbs,
        &mut signature,
    )
    .ok()?;
    let bit_string = [&[0u8][..], &signature].concat(); // no unused bits
    Some(tlv(
        0x30,
        &[tbs, SHA256_WITH_RSA.to_vec(), tlv(0x03, &bit_string)].concat(),
    ))
}

/// A positive 16-byte serial derived from the public key (RFC 5280 §4.1.2.2).
fn serial(spki: &[u8]) -> Vec<u8> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki);
    let mut serial = digest.as_ref()[..16].to_vec();
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x40; // no leading zero byte needed
    serial
}

/// One DER tag-length-value (X.690 §8.1, definite length).
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{KeyPair as _, UnparsedPublicKey};

    #[test]
    fn der_lengths_use_the_short_and_long_forms() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn the_certificate_is_deterministic_and_its_signature_verifies() {
        let pair = KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let spki = pair.public_key().as_der().unwrap();
        let cert = self_signed(&pair, spki.as_ref()).unwrap();
        assert_eq!(cert, self_signed(&pair, spki.as_ref()).unwrap());
        // Outer SEQUENCE with a two-byte long-form length, then the TBS.
        assert_eq!(&cert[..2], &[0x30, 0x82]);
        let tbs_len = usize::from(u16::from_be_bytes([cert[6], cert[7]])) + 4;
        let tbs = &cert[4..4 + tbs_len];
        let signature = &cert[cert.len() - 256..];
        let key = UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            spki.as_ref(),
        );
        key.verify(tbs, signature).unwrap();
    }
}
