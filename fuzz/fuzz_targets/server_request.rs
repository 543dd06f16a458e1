//! The gateway's own HTTP/1.1 server against hyper's: the same bytes, as the
//! first a client sends on a connection, are read by
//! `authz_proxy::server::decode_request` (the live server's head parser)
//! and by `hyper::server::conn::http1` over an in-memory duplex. Whatever
//! ours takes as a request, hyper must take as the same request: method,
//! target, version, headers, the body its `Content-Length` frames (when
//! all of it is there), and (when nothing follows the body) whether the
//! connection closes after it.
//!
//! The other direction is the design: what ours does not take (a body
//! framed otherwise, HTTP/1.0, `Transfer-Encoding`, `Expect`, `Upgrade`, `CONNECT`, a target
//! not in origin-form, anything that does not parse) goes to hyper's server
//! with every byte, so hyper's reading and hyper's refusals stand.
#![no_main]

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use authz_proxy::server::decode_request;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
});

/// What hyper's server reads from `bytes` as its first request: the
/// request, its body, and whether its response closes the connection.
fn hyper_reads(bytes: &[u8]) -> Option<(Request<()>, Vec<u8>, bool)> {
    RUNTIME.block_on(async {
        let (mut client, server) = tokio::io::duplex(128 * 1024);
        let seen: Arc<Mutex<Option<(Request<()>, Vec<u8>)>>> = Arc::default();
        let service = service_fn({
            let seen = seen.clone();
            move |req: Request<Incoming>| {
                let seen = seen.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await?.to_bytes().to_vec();
                    let mut seen = seen.lock().expect("lock");
                    if seen.is_none() {
                        *seen = Some((Request::from_parts(parts, ()), body));
                    }
                    Ok::<_, hyper::Error>(Response::new(Empty::<Bytes>::new()))
                }
            }
        });
        let conn = http1::Builder::new().serve_connection(TokioIo::new(server), service);
        let task = tokio::spawn(conn);
        client.write_all(bytes).await.ok()?;
        // The first response's head: hyper's answer to the request, or its
        // refusal.
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(2), async {
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        task.abort();
        read.ok()?;
        let close = String::from_utf8_lossy(&head)
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n");
        let (request, body) = seen.lock().expect("lock").take()?;
        Some((request, body, close))
    })
}

fuzz_target!(|bytes: &[u8]| {
    let Some((ours, used, length, our_close)) = decode_request(bytes) else {
        return;
    };
    // A body not all there would keep hyper waiting for the rest.
    let Some(end) = usize::try_from(length)
        .ok()
        .and_then(|length| used.checked_add(length))
        .filter(|end| *end <= bytes.len())
    else {
        return;
    };
    let Some((theirs, their_body, their_close)) = hyper_reads(bytes) else {
        panic!("ours takes what hyper refuses: {ours:?}");
    };
    assert_eq!(ours.method(), theirs.method());
    assert_eq!(ours.uri(), theirs.uri());
    assert_eq!(ours.version(), theirs.version());
    assert_eq!(ours.headers(), theirs.headers());
    assert_eq!(&bytes[used..end], &their_body[..], "body of {ours:?}");
    // Bytes after the body are the next request's: hyper may have read them
    // before it answered (and closes after a first answer when they do not
    // parse); the close is compared where nothing follows.
    if end == bytes.len() {
        assert_eq!(our_close, their_close, "close after {ours:?}");
    }
});
