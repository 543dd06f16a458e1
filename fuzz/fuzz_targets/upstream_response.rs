//! The gateway's own HTTP/1.1 client against hyper's: the same response
//! bytes (to a GET, or a HEAD when the first input byte is odd) are read by
//! `authz_proxy::upstream::decode_response` (the live client's head parser
//! and body framer) and by `hyper::client::conn::http1` over an in-memory
//! duplex that ends after them. Whatever ours accepts, hyper must accept
//! with the same status, version, headers and body bytes.
//!
//! The other direction is allowed, and deliberate: ours refuses what a
//! reader behind or in front could take differently, where hyper is
//! lenient (`Transfer-Encoding` with `Content-Length`, any coding but a
//! single `chunked`, `Transfer-Encoding` in HTTP/1.0, a `101` nobody asked
//! for, spaces after a chunk size, control bytes in chunk extensions,
//! `Content-Length` of more than 19 digits).
#![no_main]

use std::sync::LazyLock;

use authz_proxy::upstream::decode_response;
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
});

/// What hyper's client reads from `bytes` as the answer to `method`.
fn hyper_reads(bytes: &[u8], method: Method) -> Option<(Response<()>, Vec<u8>)> {
    RUNTIME.block_on(async {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let (mut sender, conn) = http1::Builder::new()
            .handshake::<_, Empty<Bytes>>(TokioIo::new(client))
            .await
            .ok()?;
        tokio::spawn(conn);
        let upstream = async {
            // The request first, then the answer, then the end.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match server.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = server.write_all(bytes).await;
            let _ = server.shutdown().await;
        };
        let request = Request::builder()
            .method(method)
            .uri("/")
            .header("host", "upstream")
            .body(Empty::new())
            .expect("request");
        let exchange = async {
            let response = sender.send_request(request).await.ok()?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.ok()?.to_bytes();
            Some((Response::from_parts(parts, ()), body.to_vec()))
        };
        let ((), read) = tokio::join!(upstream, exchange);
        read
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let head = first & 1 == 1;
    let Ok((ours, our_body)) = decode_response(bytes, head) else {
        return;
    };
    let method = if head { Method::HEAD } else { Method::GET };
    let Some((theirs, their_body)) = hyper_reads(bytes, method) else {
        panic!("ours accepts what hyper refuses: {ours:?}");
    };
    assert_eq!(ours.status(), theirs.status());
    assert_eq!(ours.version(), theirs.version());
    assert_eq!(ours.headers(), theirs.headers());
    assert_eq!(our_body, their_body, "body of {ours:?}");
});
