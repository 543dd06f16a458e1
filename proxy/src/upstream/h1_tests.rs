//! The response parser and framer, one line per rule (`check`), and the
//! client against a scripted upstream on loopback: when a connection goes
//! back to the pool, and which requests are sent again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::body;
use crate::metrics::Metrics;
use crate::upstream::{Link, Upstream};

/// `response` read as the answer to a GET (or HEAD): its status and body,
/// or why it is refused.
fn check(response: &str, head_request: bool, expected: Result<(u16, &str), &'static str>) {
    let got = decode_response(response.as_bytes(), head_request).map(|(head, body)| {
        (
            head.status().as_u16(),
            String::from_utf8(body).expect("utf-8"),
        )
    });
    let expected = expected
        .map(|(status, body)| (status, body.to_owned()))
        .map_err(Malformed);
    assert_eq!(got, expected, "{response:?}");
}

#[test]
fn content_length_delimits_the_body() {
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA",
        false,
        Ok((200, "ok")),
    );
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok",
        false,
        Ok((200, "ok")),
    );
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\nok",
        false,
        Ok((200, "ok")),
    );
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        false,
        Ok((200, "")),
    );
}

#[test]
fn differing_or_invalid_content_lengths_are_refused() {
    let differing = Err("differing Content-Length values");
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
        false,
        differing,
    );
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\nok",
        false,
        differing,
    );
    let invalid = Err("invalid Content-Length");
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\nok",
        false,
        invalid,
    );
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: 0x2\r\n\r\nok",
        false,
        invalid,
    );
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
        false,
        invalid,
    );
}

#[test]
fn a_body_shorter_than_its_content_length_is_cut_short() {
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nok",
        false,
        Err("body shorter than its Content-Length"),
    );
}

#[test]
fn chunked_bodies_are_decoded_and_trailers_dropped() {
    check(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        false,
        Ok((200, "ok")),
    );
    check(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n2;a=b\r\nok\r\n1 ;x\r\n!\r\n0\r\nx-t: 1\r\n\r\n",
        false,
        Ok((200, "ok!")),
    );
    check(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
        false,
        Ok((200, "0123456789")),
    );
}

#[test]
fn malformed_chunks_are_refused_never_guessed() {
    let te = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    for (chunks, why) in [
        ("zz\r\nok\r\n0\r\n\r\n", "invalid chunk size"),
        ("\r\nok\r\n0\r\n\r\n", "invalid chunk size"),
        ("2x\r\nok\r\n0\r\n\r\n", "invalid chunk size line"),
        ("2\nok\r\n0\r\n\r\n", "line not ended by CRLF"),
        ("2\r\nokk\r\n0\r\n\r\n", "chunk data not followed by CRLF"),
        ("2\r\nok0\r\n\r\n", "chunk data not followed by CRLF"),
        ("2;\x01\r\nok\r\n0\r\n\r\n", "invalid chunk size line"),
        ("10000000000000000\r\n", "chunk size too large"),
        ("2\r\nok\r\n0\r\n", "chunked body cut short"),
        (
            "2\r\nok\r\n0\r\nbad trailer\r\n\r\n",
            "invalid trailer line",
        ),
        ("5\r\nok", "chunked body cut short"),
    ] {
        check(&format!("{te}{chunks}"), false, Err(why));
    }
}

#[test]
fn transfer_codings_other_than_chunked_and_te_with_cl_are_refused() {
    check(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        false,
        Err("Transfer-Encoding with Content-Length"),
    );
    let other = Err("transfer coding other than a single chunked");
    check(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nok",
        false,
        other,
    );
    check(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        false,
        other,
    );
    check(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        false,
        other,
    );
    check(
        "HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        false,
        Err("Transfer-Encoding in an HTTP/1.0 response"),
    );
}

#[test]
fn without_framing_the_body_runs_to_the_close() {
    check(
        "HTTP/1.1 200 OK\r\n\r\nuntil the end",
        false,
        Ok((200, "until the end")),
    );
    check("HTTP/1.0 200 OK\r\n\r\n", false, Ok((200, "")));
}

#[test]
fn head_204_and_304_have_no_body() {
    check(
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
        true,
        Ok((200, "")),
    );
    check("HTTP/1.1 204 No Content\r\n\r\n", false, Ok((204, "")));
    check(
        "HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n",
        false,
        Ok((304, "")),
    );
}

#[test]
fn interim_responses_are_skipped_but_101_is_refused() {
    check(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        false,
        Ok((200, "ok")),
    );
    check(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
        false,
        Err("unrequested 101 Switching Protocols"),
    );
}

#[test]
fn heads_that_are_not_http_or_too_large_are_refused() {
    check(
        "SSH-2.0-OpenSSH\r\n\r\n",
        false,
        Err("not an HTTP/1 response head"),
    );
    check("HTTP/1.1 200 OK\r\n", false, Err("response head cut short"));
    let huge = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(MAX_HEAD));
    check(&huge, false, Err("response head too large"));
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x{i}: 1\r\n")).collect();
    check(
        &format!("HTTP/1.1 200 OK\r\n{many}\r\n"),
        false,
        Err("too many headers"),
    );
}

#[test]
fn only_http_11_without_connection_close_is_reusable() {
    let reusable = |head: &str| match parse_head(head.as_bytes(), false) {
        Ok(Parse::Final(_, head)) => head.reusable,
        other => panic!("{other:?}"),
    };
    assert!(reusable("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    assert!(!reusable(
        "HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n"
    ));
    assert!(!reusable("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"));
    assert!(!reusable("HTTP/1.1 200 OK\r\n\r\n"));
}

/// What a scripted upstream does on one of its connections: answers the
/// first `answers` requests with a two-byte body, then reads one more
/// request (if `then_read`) and closes without a word.
#[derive(Clone, Copy)]
struct Script {
    answers: usize,
    then_read: bool,
}

/// An upstream whose `n`th connection follows `scripts[n]` (the last one
/// for every later connection); counts its connections.
async fn scripted(scripts: Vec<Script>) -> (Upstream, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let script = scripts[n.min(scripts.len() - 1)];
            tokio::spawn(serve(stream, script));
        }
    });
    let upstream = Upstream::http(addr.to_string().parse().expect("authority"));
    (upstream, accepted)
}

async fn serve(mut stream: TcpStream, script: Script) {
    let mut pending = Vec::new();
    for _ in 0..script.answers {
        if !read_request(&mut stream, &mut pending).await {
            return;
        }
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
    if script.then_read {
        read_request(&mut stream, &mut pending).await;
    }
}

/// Reads one request (head, and a `content-length` body) from `stream`.
async fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> bool {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().expect("length"));
            if pending.len() >= end + 4 + length {
                pending.drain(..end + 4 + length);
                return true;
            }
        }
        let mut buf = [0; 4096];
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

fn link(pool: &Arc<IdlePool>) -> Link {
    Link::new(Arc::clone(pool), Arc::new(Metrics::for_tests()))
}

fn request(method: Method, upstream: &Upstream) -> Request<ProxyBody> {
    let body = if method == Method::POST {
        Full::new(Bytes::from_static(b"data"))
            .map_err(|never| match never {})
            .boxed()
    } else {
        body::empty()
    };
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = http::Uri::from_static("/x");
    let host = HeaderValue::from_str(upstream.authority.as_str()).expect("host");
    req.headers_mut().insert(header::HOST, host);
    req
}

const CONNECT: Duration = Duration::from_secs(5);

/// A response's whole body.
async fn body_of(response: Response<Body>) -> Bytes {
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

/// An upstream whose first connection answers one request and then closes
/// on the next one unanswered; later connections answer one each.
async fn closing_after_one() -> (Upstream, Arc<AtomicUsize>) {
    scripted(vec![
        Script {
            answers: 1,
            then_read: true,
        },
        Script {
            answers: 1,
            then_read: false,
        },
    ])
    .await
}

#[tokio::test]
async fn the_body_gives_its_connection_back_only_at_its_end() {
    let (upstream, accepted) = scripted(vec![Script {
        answers: 2,
        then_read: false,
    }])
    .await;
    let pool = Arc::new(IdlePool::default());
    let link = link(&pool);
    let response = link
        .send(request(Method::GET, &upstream), &upstream, CONNECT)
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        pool.idle_count(),
        0,
        "the connection is the body's while it is read"
    );
    let bytes = body_of(response).await;
    assert_eq!(&bytes[..], b"ok");
    assert_eq!(pool.idle_count(), 1, "back once the body has ended");
    // The next request takes it again.
    let response = link
        .send(request(Method::GET, &upstream), &upstream, CONNECT)
        .await
        .expect("response");
    drop(response);
    assert_eq!(
        pool.idle_count(),
        0,
        "a body dropped early drops its connection"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn heads_and_bodies_larger_than_the_first_read_arrive_whole() {
    // Reads start small (an idle-to-busy connection holds little) and grow:
    // a 10 KB head and a 300 KB body, written in pieces, still arrive whole,
    // twice on the same connection.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: {}\r\n\r\n",
        "v".repeat(10_000),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut pending = Vec::new();
        for _ in 0..2 {
            if !read_request(&mut stream, &mut pending).await {
                return;
            }
            for piece in answer.chunks(7_000) {
                if stream.write_all(piece).await.is_err() {
                    return;
                }
            }
        }
    });
    let upstream = Upstream::http(addr.to_string().parse().expect("authority"));
    let pool = Arc::new(IdlePool::default());
    let link = link(&pool);
    for _ in 0..2 {
        let response = link
            .send(request(Method::GET, &upstream), &upstream, CONNECT)
            .await
            .expect("response");
        assert_eq!(response.headers()["x-big"].len(), 10_000);
        let bytes = body_of(response).await;
        assert!(bytes[..] == body[..], "{} bytes", bytes.len());
        assert_eq!(pool.idle_count(), 1, "the connection went back");
    }
}

#[tokio::test]
async fn a_get_on_a_reused_connection_closed_unanswered_is_sent_once_more() {
    let (upstream, accepted) = closing_after_one().await;
    let pool = Arc::new(IdlePool::default());
    let link = link(&pool);
    for _ in 0..2 {
        let response = link
            .send(request(Method::GET, &upstream), &upstream, CONNECT)
            .await
            .expect("response");
        let bytes = body_of(response).await;
        assert_eq!(&bytes[..], b"ok");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "one retry, on a new connection"
    );
}

#[tokio::test]
async fn a_post_on_a_reused_connection_closed_unanswered_is_never_sent_again() {
    let (upstream, accepted) = closing_after_one().await;
    let pool = Arc::new(IdlePool::default());
    let link = link(&pool);
    let response = link
        .send(request(Method::POST, &upstream), &upstream, CONNECT)
        .await
        .expect("response");
    body_of(response).await;
    let failed = link
        .send(request(Method::POST, &upstream), &upstream, CONNECT)
        .await;
    assert_eq!(
        failed.map(|r| r.status()).map_err(|e| e.kind()),
        Err(Failure::ClosedEarly)
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "no second connection");
}

#[test]
fn an_idle_connection_costs_little() {
    // The socket's kernel side and tokio's registration aside: the pool's
    // entry, with an empty buffer (no allocation while idle).
    let size = size_of::<Conn>();
    assert!(size <= 128, "{size} bytes");
}
