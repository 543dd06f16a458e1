//! The server's head parser, one line per rule (which heads are its own and
//! which go to hyper), its response encoder, and [`serve`] on loopback:
//! pipelining, the handover to hyper with every byte, a client hanging up
//! mid-request, the header read timeout and the drain.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::body::{Frame, SizeHint};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;
use crate::body;

/// Ours, with whether it closes, or `None`: hyper's.
fn ours(head: &str) -> Option<bool> {
    decode_request(head.as_bytes()).map(|(_, used, _, close)| {
        assert!(used <= head.len());
        close
    })
}

/// The body length of a head that is ours.
fn length(head: &str) -> Option<u64> {
    decode_request(head.as_bytes()).map(|(_, _, length, _)| length)
}

#[test]
fn plain_bodiless_http11_requests_are_ours() {
    assert_eq!(ours("GET / HTTP/1.1\r\nHost: g\r\n\r\n"), Some(false));
    assert_eq!(
        ours("DELETE /a?b=c HTTP/1.1\r\nHost: g\r\nContent-Length: 0\r\n\r\n"),
        Some(false)
    );
    assert_eq!(
        ours("\r\nGET / HTTP/1.1\r\n\r\n"),
        Some(false),
        "leading CRLF"
    );
    assert_eq!(
        ours("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n"),
        Some(true)
    );
    assert_eq!(
        ours("GET / HTTP/1.1\r\nConnection: x-a\r\nConnection: close\r\n\r\n"),
        Some(true)
    );
    let (request, used, _, _) =
        decode_request(b"GET /p?q HTTP/1.1\r\nHost: g\r\nX-A: 1\r\nx-a: \xff\r\n\r\nNEXT").unwrap();
    assert_eq!(used, 46);
    assert_eq!(request.uri(), "/p?q");
    assert_eq!(request.headers().get_all("x-a").iter().count(), 2);
}

#[test]
fn a_body_framed_by_a_single_content_length_is_ours() {
    assert_eq!(
        length("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
        Some(5)
    );
    assert_eq!(
        length("PUT / HTTP/1.1\r\ncontent-length: 007\r\n\r\n"),
        Some(7)
    );
    assert_eq!(length("GET / HTTP/1.1\r\n\r\n"), Some(0));
}

#[test]
fn everything_else_is_left_to_hyper() {
    for head in [
        "GET / HTTP/1.0\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\na",
        "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\na",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        "GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
        "GET / HTTP/1.1\r\nConnection: closeé\r\n\r\n",
        "CONNECT g:443 HTTP/1.1\r\nHost: g:443\r\n\r\n",
        "GET http://g/ HTTP/1.1\r\nHost: g\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: g\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ] {
        assert_eq!(ours(head), None, "{head:?}");
    }
}

fn settings() -> Settings {
    Settings {
        header_read_timeout: Duration::from_secs(5),
        max_head: 8192,
        max_headers: 10,
    }
}

#[test]
fn partial_heads_wait_until_the_limits_then_go_to_hyper() {
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: g\r\n"[..]);
    assert!(matches!(
        parse_request(&mut buf, &settings()),
        Parsed::Partial
    ));
    assert_eq!(buf.len(), 25, "nothing taken");
    let mut big = BytesMut::from(format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(8200)).as_bytes());
    assert!(matches!(
        parse_request(&mut big, &settings()),
        Parsed::Other
    ));
    let many: String = (0..11).map(|i| format!("X-{i}: v\r\n")).collect();
    let mut buf = BytesMut::from(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
    assert!(matches!(
        parse_request(&mut buf, &settings()),
        Parsed::Other
    ));
    assert_eq!(buf.len(), 16 + many.len() + 2, "nothing taken");
}

fn encoded(
    response: Response<ProxyBody>,
    head_request: bool,
    close: bool,
) -> (String, Option<Encoder>) {
    let (parts, body) = response.into_parts();
    let mut out = Vec::new();
    let encoder = encode_head(&parts, &body, head_request, close, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("\r\ndate: "), "{text}");
    (text, encoder)
}

/// A body of unknown size: its pieces, then its end.
struct Unsized(Vec<Bytes>);

impl hyper::body::Body for Unsized {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.0.is_empty() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(self.0.remove(0)))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

fn unsized_body(pieces: &[&'static str]) -> ProxyBody {
    body::client_response_body(Unsized(
        pieces
            .iter()
            .map(|p| Bytes::from_static(p.as_bytes()))
            .collect(),
    ))
}

fn response(status: u16, headers: &[(&str, &str)], body: ProxyBody) -> Response<ProxyBody> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    response
}

#[test]
fn a_response_is_framed_by_its_length_its_known_size_or_chunked() {
    let full = || body::full(Bytes::from_static(b"hello"));
    let (text, encoder) = encoded(response(200, &[("x-a", "1")], full()), false, false);
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 5\r\n"),
        "{text}"
    );
    assert_eq!(encoder, Some(Encoder::Length(5)));
    let (text, encoder) = encoded(
        response(404, &[("content-length", "5")], full()),
        false,
        true,
    );
    assert!(
        text.starts_with("HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\nconnection: close\r\n"),
        "{text}"
    );
    assert_eq!(encoder, Some(Encoder::Length(5)));
    let (text, encoder) = encoded(response(599, &[], unsized_body(&["a"])), false, false);
    assert!(
        text.starts_with("HTTP/1.1 599 <none>\r\ntransfer-encoding: chunked\r\n"),
        "{text}"
    );
    assert_eq!(encoder, Some(Encoder::Chunked));
    // Hop-by-hop framing the gateway left would be written twice: never.
    let (text, _) = encoded(
        response(
            200,
            &[("transfer-encoding", "gzip"), ("connection", "x")],
            full(),
        ),
        false,
        false,
    );
    assert!(
        !text.contains("gzip") && !text.contains("connection"),
        "{text}"
    );
    let (text, _) = encoded(
        response(200, &[("date", "Thu, 01 Jan 1970 00:00:00 GMT")], full()),
        false,
        false,
    );
    assert_eq!(text.matches("date: ").count(), 1, "{text}");
}

#[test]
fn head_204_and_304_responses_have_no_body() {
    let full = || body::full(Bytes::from_static(b"hello"));
    let (text, encoder) = encoded(response(200, &[], full()), true, false);
    assert!(text.contains("content-length: 5\r\n"), "{text}");
    assert_eq!(encoder, None);
    let (text, encoder) = encoded(response(200, &[], body::empty()), true, false);
    assert!(!text.contains("content-length"), "{text}");
    assert_eq!(encoder, None);
    let (text, encoder) = encoded(
        response(204, &[("content-length", "0")], body::empty()),
        false,
        false,
    );
    assert!(!text.contains("content-length"), "{text}");
    assert_eq!(encoder, None);
    let (_, encoder) = encoded(response(304, &[], body::empty()), false, false);
    assert_eq!(encoder, None);
}

/// A server on loopback answering with `handle`; the client's stream and
/// how the server's side ended.
async fn serving<F, Fut>(
    handle: F,
) -> (TcpStream, tokio::task::JoinHandle<Ended>, watch::Sender<()>)
where
    F: FnMut(Request<RequestBody>) -> Fut + Send + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send,
{
    serving_with(settings(), handle).await
}

async fn serving_with<F, Fut>(
    settings: Settings,
    handle: F,
) -> (TcpStream, tokio::task::JoinHandle<Ended>, watch::Sender<()>)
where
    F: FnMut(Request<RequestBody>) -> Fut + Send + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (io, _) = listener.accept().await.unwrap();
    let (drain, mut watcher) = watch::channel(());
    let task = tokio::spawn(async move {
        let requested = Notify::new();
        serve(io, settings, &requested, &mut watcher, handle).await
    });
    (client, task, drain)
}

fn echo_path(request: Request<RequestBody>) -> std::future::Ready<Response<ProxyBody>> {
    let body = Bytes::copy_from_slice(request.uri().path().as_bytes());
    std::future::ready(Response::new(body::full(body)))
}

async fn read_until(client: &mut TcpStream, needle: &str) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&text).contains(needle) {
        let n = client.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed before {needle:?}: {}",
            String::from_utf8_lossy(&text)
        );
        text.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(text).unwrap()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_then_a_chunked_body_goes_to_hyper_whole() {
    let (mut client, task, _drain) = serving(echo_path).await;
    let post = "POST /b HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    client
        .write_all(format!("GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\n{post}").as_bytes())
        .await
        .unwrap();
    let text = read_until(&mut client, "/two").await;
    let one = text.find("/one").unwrap();
    assert!(one < text.find("/two").unwrap(), "{text}");
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    match task.await.unwrap() {
        Ended::Handover {
            io,
            fresh,
            draining,
        } => {
            assert!(!fresh && !draining);
            assert_eq!(&io.prefix[..], post.as_bytes());
        }
        Ended::Closed => panic!("closed instead of handing over"),
    }
}

#[tokio::test]
async fn a_client_hanging_up_mid_request_drops_the_request() {
    struct Dropped(Arc<AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let mut started_tx = Some(started_tx);
    let (mut client, task, _drain) = serving({
        let dropped = dropped.clone();
        move |_| {
            let guard = Dropped(dropped.clone());
            if let Some(tx) = started_tx.take() {
                let _ = tx.send(());
            }
            async move {
                let _guard = guard;
                std::future::pending::<Response<ProxyBody>>().await
            }
        }
    })
    .await;
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    started.await.unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    drop(client);
    assert!(matches!(task.await.unwrap(), Ended::Closed));
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_streamed_body_is_chunked_and_close_is_honoured() {
    let (mut client, task, _drain) =
        serving(|_| std::future::ready(response(200, &[], unsized_body(&["ab", "", "cde"])))).await;
    client
        .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    client.read_to_string(&mut text).await.unwrap();
    assert!(
        text.contains("transfer-encoding: chunked\r\nconnection: close\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
        "{text}"
    );
    assert!(matches!(task.await.unwrap(), Ended::Closed));
}

#[tokio::test]
async fn the_drain_closes_an_idle_connection_and_a_busy_one_after_its_response() {
    let (mut client, task, drain) = serving(echo_path).await;
    client.write_all(b"GET /a HTTP/1.1\r\n\r\n").await.unwrap();
    read_until(&mut client, "/a").await;
    drain.send(()).unwrap();
    assert!(matches!(task.await.unwrap(), Ended::Closed));

    let (gate_tx, gate) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let mut gate = Some((gate, started_tx));
    let (mut client, task, drain) = serving(move |_| {
        let gate = gate.take().map(|(gate, started)| {
            let _ = started.send(());
            gate
        });
        async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            Response::new(body::full(Bytes::from_static(b"done")))
        }
    })
    .await;
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    started.await.unwrap();
    drain.send(()).unwrap();
    gate_tx.send(()).unwrap();
    let mut text = String::new();
    client.read_to_string(&mut text).await.unwrap();
    assert!(
        text.contains("connection: close\r\n") && text.ends_with("done"),
        "{text}"
    );
    assert!(matches!(task.await.unwrap(), Ended::Closed));
}

#[tokio::test]
async fn a_head_not_complete_within_the_header_read_timeout_closes_the_connection() {
    let quick = Settings {
        header_read_timeout: Duration::from_millis(100),
        ..settings()
    };
    let (mut client, task, _drain) = serving_with(quick, echo_path).await;
    client
        .write_all(b"GET / HTTP/1.1\r\nX-Slow: a")
        .await
        .unwrap();
    assert!(matches!(task.await.unwrap(), Ended::Closed));
}

/// Answers with the request's body, read whole.
async fn echo_body(request: Request<RequestBody>) -> Response<ProxyBody> {
    use http_body_util::BodyExt as _;
    match request.into_body().collect().await {
        Ok(body) => Response::new(body::full(body.to_bytes())),
        Err(e) => Response::new(body::full(Bytes::from(format!("error: {e}")))),
    }
}

#[tokio::test]
async fn a_body_is_read_from_the_head_s_bytes_then_the_socket_and_the_next_request_follows() {
    let (mut client, _task, _drain) = serving(echo_body).await;
    // Part of the body with the head, the rest later, then the next request.
    client
        .write_all(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello")
        .await
        .unwrap();
    client.write_all(b" world").await.unwrap();
    let text = read_until(&mut client, "hello world").await;
    assert!(text.contains("content-length: 11\r\n"), "{text}");
    client
        .write_all(b"PUT / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let text = read_until(&mut client, "content-length: 0\r\n").await;
    assert!(text.contains("abc"), "{text}");
}

#[tokio::test]
async fn a_body_left_unread_by_the_answer_closes_the_connection_unread() {
    let (mut client, task, _drain) = serving(echo_path).await;
    let smuggled = "GET /smuggled HTTP/1.1\r\n\r\n";
    client
        .write_all(
            format!(
                "POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                smuggled.len() + 10
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let text = read_until(&mut client, "/a").await;
    assert!(text.contains("connection: close\r\n"), "{text}");
    let _ = client.write_all(smuggled.as_bytes()).await;
    // The response ends (the server shut its side) while it still reads
    // and drops what the client sends; it closes once the client has.
    let mut rest = String::new();
    let _ = client.read_to_string(&mut rest).await;
    assert!(!rest.contains("smuggled"), "{rest}");
    drop(client);
    assert!(matches!(task.await.unwrap(), Ended::Closed));
}

#[tokio::test]
async fn a_client_closing_before_the_end_of_its_body_fails_the_body() {
    let (mut client, task, _drain) = serving(echo_body).await;
    client
        .write_all(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    client.shutdown().await.unwrap();
    let mut text = String::new();
    let _ = client.read_to_string(&mut text).await;
    assert!(
        text.contains("error: ") && text.contains("before the end of the body"),
        "{text}"
    );
    assert!(matches!(task.await.unwrap(), Ended::Closed));
}
