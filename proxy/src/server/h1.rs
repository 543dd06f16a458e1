//! The gateway's own HTTP/1.1 server, for the common case on a plain
//! (non-TLS) connection: an HTTP/1.1 request in origin-form, without a body
//! or with one framed by a single `Content-Length`.
//!
//! [`serve`] reads request heads into one buffer that holds no allocation
//! while the connection idles, parses each with `httparse` (as hyper does),
//! hands the request to the gateway and writes the response head and its
//! first bytes in one write. A request body ([`RequestBody`]) is the bytes
//! that came with the head, then the rest of its length read by the body
//! itself from the socket as the upstream takes it. Everything else — the
//! HTTP/2 preface, HTTP/1.0, `Transfer-Encoding`, `Content-Length` repeated
//! or not plain digits, `Expect`, `Upgrade`, `CONNECT`, a target not in
//! origin-form, a head that does not parse or is too large — is not this
//! server's: [`parse_request`] says [`Parsed::Other`] and the connection,
//! with every byte read so far unconsumed ([`Prefixed`]), goes to hyper's
//! server for the rest of its life. hyper then reads exactly what it would
//! have read from there, so what this server accepts is a subset of what
//! hyper accepts, read the same way (the `server_request` fuzz target
//! compares the two on the same bytes), and every refusal (400, 431, …) is
//! still hyper's.
//!
//! What hyper's server did that this one does too: the header read timeout
//! (from the moment the connection waits for a head, so it is also the
//! keep-alive timeout), `Connection: close`, a `Date` header, framing of the
//! response by its `Content-Length`, its known size or chunked, no body for
//! HEAD, 204 and 304, a request dropped (its upstream exchange cancelled)
//! when the client hangs up while it is in flight, and the gateway's drain:
//! an idle connection closes, a busy one after its response. A body the
//! answer left unread ends the connection after the response (its bytes are
//! never read as a request), with a short lingering close ([`linger`]).

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io::{self, Write as _};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::body::ProxyBody;
use crate::tcp::{READ_SPARE_MIN, ReadSize};

/// Headers parsed at most on this server's path (hyper's default too); a
/// request with more goes to hyper, which applies `--max-headers`.
const MAX_HEADERS: usize = 100;

/// The longest request target hyper accepts (its `MAX_URI_LEN`).
const MAX_TARGET: usize = 65534;

/// Response bytes gathered before a write: the head and a small body go
/// in one.
const WRITE_GATHER: usize = 16 * 1024;

/// How long, and how many bytes, the rest of an unread body is read and
/// dropped before the connection closes ([`linger`]).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_MAX: usize = 256 * 1024;

/// The largest piece of a request body read at once.
const BODY_READ_MAX: usize = 16 * 1024;

/// What the bytes at the start of the buffer are.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a return value, moved once; boxing would cost an allocation per request"
)]
pub(crate) enum Parsed {
    /// A request this server answers: its head, the length of its body
    /// (`Content-Length`; 0 without), and whether the client asked to
    /// close the connection after it.
    Request(Request<()>, u64, bool),
    /// Not all of a head yet.
    Partial,
    /// Anything else: hyper's server takes the connection.
    Other,
}

/// The limits of [`serve`], as hyper's server was configured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) header_read_timeout: Duration,
    /// A head not complete within this many bytes goes to hyper (431).
    pub(crate) max_head: usize,
    pub(crate) max_headers: usize,
}

/// Where a header's name and value lie in the head.
type Span = (u32, u32, u32, u32);

/// Parses the request head at the start of `buf`; a [`Parsed::Request`]
/// takes its bytes off `buf` (its target and header values are slices of
/// them), anything else leaves `buf` as it was.
pub(crate) fn parse_request(buf: &mut BytesMut, settings: &Settings) -> Parsed {
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut spans: [Span; MAX_HEADERS] = [(0, 0, 0, 0); MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let (len, count, method, target) = match parsed.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => {
            let count = parsed.headers.len();
            // Offsets below are `u32`: a longer head (a configured limit
            // past 4 GiB) is hyper's.
            if len > settings.max_head.min(u32::MAX as usize)
                || count > settings.max_headers
                || parsed.version != Some(1)
            {
                return Parsed::Other;
            }
            let (Some(method), Some(path)) = (parsed.method, parsed.path) else {
                return Parsed::Other;
            };
            let Ok(method) = Method::from_bytes(method.as_bytes()) else {
                return Parsed::Other;
            };
            // Offsets into `buf`, which the parsed head borrows.
            let base = buf.as_ptr() as usize;
            let at = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
            for (span, h) in spans.iter_mut().zip(parsed.headers.iter()) {
                let name = at(h.name.as_bytes());
                let value = at(h.value);
                *span = (
                    name,
                    name + h.name.len() as u32,
                    value,
                    value + h.value.len() as u32,
                );
            }
            let start = at(path.as_bytes()) as usize;
            (len, count, method, start..start + path.len())
        }
        Ok(httparse::Status::Partial) if buf.len() < settings.max_head => return Parsed::Partial,
        _ => return Parsed::Other,
    };
    let spans = &spans[..count];
    if method == Method::CONNECT
        || target.len() > MAX_TARGET
        || buf.get(target.start) != Some(&b'/')
    {
        return Parsed::Other;
    }
    let Some((length, close)) = framing_and_close(&buf[..len], spans) else {
        return Parsed::Other;
    };
    let head = buf.split_to(len).freeze();
    match build(&head, spans, method, target) {
        Some(request) => Parsed::Request(request, length, close),
        None => {
            // Rare (a target or name `http` refuses): put the head back.
            let mut whole = BytesMut::with_capacity(head.len() + buf.len());
            whole.extend_from_slice(&head);
            whole.extend_from_slice(buf);
            *buf = whole;
            Parsed::Other
        }
    }
}

/// Whether a complete head is this server's by its framing and connection
/// headers: a body only by a single `Content-Length` of digits, no
/// `Transfer-Encoding`, `Expect` or `Upgrade`. `Some((length, close))`: the
/// body's length, and whether the client asked to close the connection
/// after this request.
fn framing_and_close(head: &[u8], spans: &[Span]) -> Option<(u64, bool)> {
    let mut close = false;
    let mut length = None;
    for &(n0, n1, v0, v1) in spans {
        let name = &head[n0 as usize..n1 as usize];
        let value = &head[v0 as usize..v1 as usize];
        if name.eq_ignore_ascii_case(b"content-length") {
            if length.is_some() {
                return None;
            }
            length = Some(crate::headers::content_length(value)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return None;
        } else if name.eq_ignore_ascii_case(b"connection") {
            // hyper reads the tokens of a value that is text (`to_str`);
            // anything else is left to it.
            if !value
                .iter()
                .all(|b| (0x20..0x7f).contains(b) || *b == b'\t')
            {
                return None;
            }
            close |= value
                .split(|b| *b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    Some((length.unwrap_or(0), close))
}

/// The request, its target and header values sliced from `head`.
fn build(
    head: &Bytes,
    spans: &[Span],
    method: Method,
    target: std::ops::Range<usize>,
) -> Option<Request<()>> {
    let uri = Uri::from_maybe_shared(head.slice(target)).ok()?;
    // Room for what the gateway adds before forwarding: never grown.
    let mut headers = HeaderMap::with_capacity(spans.len() + crate::gateway::ADDED_HEADERS);
    for &(n0, n1, v0, v1) in spans {
        let name = HeaderName::from_bytes(&head[n0 as usize..n1 as usize]).ok()?;
        let value = HeaderValue::from_maybe_shared(head.slice(v0 as usize..v1 as usize)).ok()?;
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

/// How a response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoder {
    /// Exactly this many bytes.
    Length(u64),
    Chunked,
}

/// Writes the response head into `out` and says how its body goes (`None`:
/// no body, for HEAD, 1xx, 204 and 304). hyper's rules: a valid
/// `Content-Length` set by the gateway frames the body, else the body's
/// known size, else chunked; `Date` when there is none; `Connection:
/// close` when the connection ends after this response. The response's
/// own `Transfer-Encoding` and `Connection` are hop-by-hop and removed by
/// the gateway already; here they are never written.
fn encode_head(
    parts: &http::response::Parts,
    body: &ProxyBody,
    head_request: bool,
    close: bool,
    out: &mut Vec<u8>,
) -> Option<Encoder> {
    let status = parts.status;
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut length = None;
    let mut date = false;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH {
            if length.is_some() || status.is_informational() || status == StatusCode::NO_CONTENT {
                continue;
            }
            match crate::headers::content_length(value.as_bytes()) {
                Some(n) => length = Some(n),
                None => continue,
            }
        } else if name == header::TRANSFER_ENCODING || name == header::CONNECTION {
            continue;
        } else if name == header::DATE {
            date = true;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let encoder = if bodiless {
        None
    } else if let Some(n) = length {
        Some(Encoder::Length(n))
    } else {
        match body.size_hint().exact() {
            Some(n) => {
                if n > 0 || !head_request {
                    // Writing to a `Vec` cannot fail.
                    let _ = write!(out, "content-length: {n}\r\n");
                }
                Some(Encoder::Length(n))
            }
            None if head_request => None,
            None => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Some(Encoder::Chunked)
            }
        }
    };
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    if !date {
        out.extend_from_slice(b"date: ");
        extend_date(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if head_request { None } else { encoder }
}

thread_local! {
    /// This thread's `Date` value (an IMF-fixdate, RFC 9110 §5.6.7) and the
    /// second it names: formatted once a second.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends the current `Date` value to `out`.
fn extend_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(cached, text)| {
        if *cached != second {
            *text = httpdate::fmt_http_date(now);
            *cached = second;
        }
        out.extend_from_slice(text.as_bytes());
    });
}

/// How a connection served by [`serve`] ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Closed (by either side, for idleness, or at the drain).
    Closed,
    /// Not this server's: hyper's from here on, with the bytes read so
    /// far. `fresh`: no request has been answered on it yet (so it may
    /// still be HTTP/2); `draining`: the gateway's drain has begun.
    Handover {
        io: Prefixed<TcpStream>,
        fresh: bool,
        draining: bool,
    },
}

/// The client connection, shared by [`serve`] and the body of the request
/// in flight (which reads its own bytes from the socket).
#[derive(Debug)]
struct Conn {
    io: TcpStream,
    /// Bytes of the current request's body not yet read from the socket:
    /// while there are, the connection's own reads wait, and a response
    /// written before they are read closes the connection.
    unread: AtomicU64,
}

/// A request's body on this server's path: the bytes of it read with the
/// head, then the rest of its `Content-Length` straight from the socket,
/// in pieces of at most [`BODY_READ_MAX`]. Ends with an error if the client
/// closes before all of it.
#[derive(Debug)]
pub(crate) struct RequestBody {
    first: Bytes,
    /// Still to read from the socket after `first`.
    left: u64,
    conn: Option<Arc<Conn>>,
    buf: BytesMut,
}

impl RequestBody {
    fn empty() -> RequestBody {
        RequestBody {
            first: Bytes::new(),
            left: 0,
            conn: None,
            buf: BytesMut::new(),
        }
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if !this.first.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut this.first)))));
        }
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let Some(conn) = &this.conn else {
            return Poll::Ready(None);
        };
        loop {
            if let Err(e) = ready!(conn.io.poll_read_ready(cx)) {
                return Poll::Ready(Some(Err(e)));
            }
            let want = usize::try_from(this.left)
                .unwrap_or(usize::MAX)
                .min(BODY_READ_MAX);
            if this.buf.capacity() - this.buf.len() < want.min(READ_SPARE_MIN) {
                this.buf.reserve(want);
            }
            let room = want.min(this.buf.capacity() - this.buf.len());
            match crate::tcp::read_buf(&conn.io, &mut (&mut this.buf).limit(room), room) {
                Ok(0) => {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed the connection before the end of the body",
                    ))));
                }
                Ok(read) => {
                    this.left -= read as u64;
                    conn.unread.store(this.left, Ordering::Release);
                    return Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze()))));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_empty() && self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.first.len() as u64 + self.left)
    }
}

/// What woke a connection whose request is in flight.
enum Waited {
    Answer(Response<ProxyBody>),
    /// The client sent more (the next request) or hung up.
    Readable(io::Result<()>),
}

/// Serves `io` until it closes or is not this server's; `handle` answers
/// each request. `requested` is signalled by the first request (its
/// deadline in `server.rs`), `shutdown` changes when the gateway
/// drains.
pub(crate) async fn serve<F, Fut>(
    io: TcpStream,
    settings: Settings,
    requested: &Notify,
    shutdown: &mut watch::Receiver<()>,
    mut handle: F,
) -> Ended
where
    F: FnMut(Request<RequestBody>) -> Fut,
    Fut: Future<Output = Response<ProxyBody>>,
{
    let conn = Arc::new(Conn {
        io,
        unread: AtomicU64::new(0),
    });
    let mut buf = BytesMut::new();
    let mut read_size = ReadSize::default();
    let mut fresh = true;
    let mut draining = false;
    loop {
        // A head, within the header read timeout from now.
        let deadline = Instant::now() + settings.header_read_timeout;
        let (request, length, close) = loop {
            if !buf.is_empty() {
                match parse_request(&mut buf, &settings) {
                    Parsed::Request(request, length, close) => break (request, length, close),
                    Parsed::Partial => {}
                    Parsed::Other => {
                        return match Arc::try_unwrap(conn) {
                            Ok(conn) => Ended::Handover {
                                io: Prefixed::new(buf.freeze(), conn.io),
                                fresh,
                                draining,
                            },
                            // A body still held somewhere (it has been read).
                            Err(_) => Ended::Closed,
                        };
                    }
                }
            }
            tokio::select! {
                ready = conn.io.readable() => {
                    if ready.is_err() {
                        return Ended::Closed;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    tracing::debug!("no complete request head within the header read timeout");
                    return Ended::Closed;
                }
                changed = shutdown.changed(), if !draining => {
                    let _ = changed;
                    draining = true;
                    if buf.is_empty() {
                        return Ended::Closed;
                    }
                }
            }
            match read_size.read(&conn.io, &mut buf) {
                Ok(0) => return Ended::Closed,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Ended::Closed,
            }
        };
        if fresh {
            // The first request's deadline (`server.rs`) is met.
            requested.notify_one();
            fresh = false;
        }
        let head_request = request.method() == Method::HEAD;
        let body = if length == 0 {
            RequestBody::empty()
        } else {
            // What came with the head, then the rest from the socket.
            let first = buf
                .split_to(usize::try_from(length).unwrap_or(usize::MAX).min(buf.len()))
                .freeze();
            let left = length - first.len() as u64;
            conn.unread.store(left, Ordering::Release);
            RequestBody {
                first,
                left,
                conn: Some(Arc::clone(&conn)),
                buf: BytesMut::new(),
            }
        };
        let answer = handle(request.map(|()| body));
        tokio::pin!(answer);
        // While the gateway answers, and once the body (if any) has been
        // read, the client may send the next request (kept, up to a head's
        // worth) or hang up (the answer is dropped, and with it the
        // upstream exchange).
        let response = loop {
            let event = poll_fn(|cx| {
                if let Poll::Ready(response) = answer.as_mut().poll(cx) {
                    return Poll::Ready(Waited::Answer(response));
                }
                if conn.unread.load(Ordering::Acquire) == 0
                    && buf.len() < settings.max_head
                    && let Poll::Ready(ready) = conn.io.poll_read_ready(cx)
                {
                    return Poll::Ready(Waited::Readable(ready));
                }
                Poll::Pending
            })
            .await;
            match event {
                Waited::Answer(response) => break response,
                Waited::Readable(Err(_)) => return Ended::Closed,
                Waited::Readable(Ok(())) => match read_size.read(&conn.io, &mut buf) {
                    Ok(0) => {
                        tracing::debug!("client closed the connection mid-request");
                        return Ended::Closed;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return Ended::Closed,
                },
            }
        };
        draining |= shutdown.has_changed().unwrap_or(true);
        // A body not read to its end (a refusal that did not need it) ends
        // the connection: its bytes are never read as a request.
        let unread = conn.unread.load(Ordering::Acquire) > 0;
        let close = close || draining || unread;
        let written = write_response(&conn.io, response, head_request, close).await;
        if written && unread {
            // Boxed: its 4 KiB sink would otherwise size every connection.
            Box::pin(linger(conn)).await;
            return Ended::Closed;
        }
        if !written || close {
            return Ended::Closed;
        }
        if buf.is_empty() {
            // An idle connection holds no buffer.
            buf = BytesMut::new();
        }
    }
}

/// After a response that left part of a request body unread: the write
/// side is shut, so the client sees the response end, and what it still
/// sends is read and dropped for a moment (nginx's lingering close), so
/// that closing with unread bytes does not reset the connection under a
/// response the client has not read yet.
async fn linger(conn: Arc<Conn>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // Held elsewhere still (a body in another task): closed when it goes.
    let Ok(conn) = Arc::try_unwrap(conn) else {
        return;
    };
    let mut io = conn.io;
    if io.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut left = LINGER_MAX;
    let _ = tokio::time::timeout(LINGER, async {
        while left > 0 {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(read) => left = left.saturating_sub(read),
            }
        }
    })
    .await;
}

/// Writes `response`; `false` when the connection cannot carry another
/// (a write failed, or the body ended early or failed: the client can tell
/// only by the close).
async fn write_response(
    io: &TcpStream,
    response: Response<ProxyBody>,
    head_request: bool,
    close: bool,
) -> bool {
    let (parts, body) = response.into_parts();
    let mut out = Vec::with_capacity(
        256 + parts
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>(),
    );
    let encoder = encode_head(&parts, &body, head_request, close, &mut out);
    drop(parts);
    let Some(encoder) = encoder else {
        drop(body);
        return write_all(io, &out).await.is_ok();
    };
    let mut body = std::pin::pin!(body);
    let mut left = match encoder {
        Encoder::Length(n) => n,
        Encoder::Chunked => u64::MAX,
    };
    loop {
        // What is gathered goes out before waiting on the upstream.
        let polled = poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await;
        let frame = match polled {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if !out.is_empty() {
                    if write_all(io, &out).await.is_err() {
                        return false;
                    }
                    out.clear();
                }
                poll_fn(|cx| body.as_mut().poll_frame(cx)).await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "response body failed; closing the connection");
                let _ = write_all(io, &out).await;
                return false;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                // Trailers are dropped, as hyper does for a client that
                // did not ask for them.
                Err(_) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        match encoder {
            Encoder::Length(_) => {
                let take = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                left -= take as u64;
                if !gather(io, &mut out, &data[..take]).await {
                    return false;
                }
                if take < data.len() {
                    // Longer than its `Content-Length`: cut, and closed.
                    let _ = write_all(io, &out).await;
                    return false;
                }
            }
            Encoder::Chunked => {
                let _ = write!(out, "{:x}\r\n", data.len());
                if !gather(io, &mut out, &data).await {
                    return false;
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    match encoder {
        Encoder::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
        Encoder::Length(_) if left > 0 => {
            let _ = write_all(io, &out).await;
            return false;
        }
        Encoder::Length(_) => {}
    }
    out.is_empty() || write_all(io, &out).await.is_ok()
}

/// Adds `data` to what goes out next; a large piece is written as it is,
/// after what was gathered before it. `false`: a write failed.
async fn gather(io: &TcpStream, out: &mut Vec<u8>, data: &[u8]) -> bool {
    if out.len() + data.len() <= WRITE_GATHER {
        out.extend_from_slice(data);
        return true;
    }
    if write_all(io, out).await.is_err() {
        return false;
    }
    out.clear();
    write_all(io, data).await.is_ok()
}

/// Writes all of `data`.
async fn write_all(io: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match io.try_write(data) {
            Ok(written) => data = &data[written..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A connection handed to hyper: the bytes read already come first.
#[derive(Debug)]
pub(crate) struct Prefixed<T> {
    prefix: Bytes,
    io: T,
}

impl<T> Prefixed<T> {
    pub(crate) fn new(prefix: Bytes, io: T) -> Prefixed<T> {
        Prefixed { prefix, io }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.io).poll_read(cx, out);
        }
        let n = self.prefix.len().min(out.remaining());
        out.put_slice(&self.prefix[..n]);
        self.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What this server reads from `bytes` when they are the first a client
/// sent: the request, the bytes its head took, the length of its body and
/// whether the connection closes after it; or `None` where hyper's server
/// would have the connection. For the `server_request` fuzz target and the
/// tests, which compare it with hyper.
pub fn decode_request(bytes: &[u8]) -> Option<(Request<()>, usize, u64, bool)> {
    let mut buf = BytesMut::from(bytes);
    let settings = Settings {
        header_read_timeout: Duration::from_secs(1),
        max_head: 64 * 1024,
        max_headers: MAX_HEADERS,
    };
    match parse_request(&mut buf, &settings) {
        Parsed::Request(request, length, close) => {
            let used = bytes.len() - buf.len();
            Some((request, used, length, close))
        }
        Parsed::Partial | Parsed::Other => None,
    }
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
