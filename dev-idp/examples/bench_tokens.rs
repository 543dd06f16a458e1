//! Mints tokens for `bench/compare.sh`, far faster than one `dev-idp token`
//! process per token.
//!
//! ```text
//! cargo run --release -p dev-idp --example bench_tokens -- DATA_DIR BASE_URL KIND COUNT
//! ```
//!
//! KIND: `valid` (COUNT distinct valid tokens for alice), or `invalid`
//! (COUNT tokens cycling through: a bad signature, expired an hour ago, a kid
//! the JWKS does not hold). One token a line on stdout. Benchmark tooling,
//! not a test.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dev_idp::{Config, Idp, MintRequest};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, base_url, kind, count] = args.as_slice() else {
        return Err("usage: bench_tokens DATA_DIR BASE_URL valid|invalid COUNT".into());
    };
    let count: usize = count.parse()?;
    let idp = Idp::new(
        Config::embedded_default(),
        Path::new(data_dir),
        Some(base_url.clone()),
    )?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..count {
        let token = match (kind.as_str(), i % 3) {
            ("valid", _) => idp.mint(&MintRequest::user("alice"))?,
            ("invalid", 0) => bad_signature(&idp.mint(&MintRequest::user("alice"))?),
            ("invalid", 1) => idp.mint(&MintRequest::user("alice").expired())?,
            ("invalid", _) => random_kid(&idp.mint(&MintRequest::user("alice"))?, i),
            _ => return Err(format!("unknown kind {kind}").into()),
        };
        writeln!(out, "{token}")?;
    }
    out.flush()?;
    Ok(())
}

/// Flips bits in the middle of the signature: still base64url, still 256 bytes.
fn bad_signature(token: &str) -> String {
    let (rest, sig) = token.rsplit_once('.').expect("three parts");
    let mut raw = URL_SAFE_NO_PAD.decode(sig).expect("base64url");
    let mid = raw.len() / 2;
    raw[mid] ^= 0x5a;
    format!("{rest}.{}", URL_SAFE_NO_PAD.encode(raw))
}

/// The same token under a kid no key set holds (a new one each time).
fn random_kid(token: &str, i: usize) -> String {
    let (header, rest) = token.split_once('.').expect("three parts");
    let mut h: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url"))
            .expect("json header");
    h["kid"] = serde_json::Value::from(format!("bench-unknown-{i}"));
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(h.to_string()))
}
