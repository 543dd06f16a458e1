//! The gateway's own HTTP/1.1 client, for the one case on its hot path: an
//! HTTP/1 client's request to the plain-http default upstream, on a
//! connection borrowed from the serving thread's idle pool (`link.rs`).
//!
//! A pooled connection is a [`Conn`]: the socket and a read buffer that is
//! empty (no allocation) while it is idle. A request is written as its head
//! (one buffer, one write) and its body (framed by `Content-Length`, else
//! chunked); the response head is parsed with `httparse` within
//! [`MAX_HEAD`] bytes, interim 1xx responses are skipped (a `101` is a
//! protocol failure: upgrades are never forwarded), and the body is framed
//! strictly by RFC 9112 §6.3 ([`Framing`]). The response body
//! ([`Body`]) owns the connection while it streams and gives it back to the
//! pool only once it has been read exactly to its end with the connection
//! still reusable; any failure, or a body dropped early, drops it.
//!
//! Where its job ends: which connection to use, the retry and the timeouts
//! are `link.rs`'s and the forwarder's; what a failure means for the client
//! is its [`Failure`] kind.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use http_body_util::BodyExt as _;
use hyper::body::{Body as _, Frame, SizeHint};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::link::IdlePool;
use super::{Failure, UpstreamError};
use crate::body::{BoxError, ProxyBody};
use crate::tcp::ReadSize;

/// The longest response head read (status line and headers, each interim
/// response counted on its own), as the gateway's own request heads.
pub const MAX_HEAD: usize = 64 * 1024;

/// Response headers read at most (hyper's limit too).
const MAX_HEADERS: usize = 100;

/// The most bytes of trailers read (dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// The longest chunk-size line (size and extensions) accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// A response the gateway will not read, with why (a [`Failure::Protocol`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed upstream response: {0}")]
pub struct Malformed(pub &'static str);

/// An upstream connection: its socket and what has been read from it but
/// not yet consumed. Idle, the buffer holds no allocation.
#[derive(Debug)]
pub(super) struct Conn {
    io: TcpStream,
    buf: BytesMut,
    /// The room the next read asks for.
    read_size: ReadSize,
}

impl Conn {
    pub(super) fn new(io: TcpStream) -> Conn {
        Conn {
            io,
            buf: BytesMut::new(),
            read_size: ReadSize::default(),
        }
    }

    /// Whether an idle connection may carry a request: the upstream has not
    /// closed it and sent nothing unasked. Reads only what the IO driver
    /// already knows of (never waits); a close it has not seen yet is what
    /// the retry in `link.rs` is for.
    pub(super) fn is_alive(&mut self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Reads what the socket has into the buffer; `Ok(0)` at its end.
    /// Room is made only once there is something to read.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_read_ready(cx))?;
            match self.read_size.read(&self.io, &mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    /// Gives back the buffer's allocation before the connection idles.
    fn shrink(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }
}

/// How a request's body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestFraming {
    None,
    Length(u64),
    Chunked,
}

/// The request head (request line in origin-form, the headers as the
/// gateway built them, `Host` among them) in one buffer, and how its body
/// goes; adds `Content-Length` or `Transfer-Encoding: chunked` when the
/// gateway set neither and there is a body (as hyper's client does).
pub(super) fn encode_head(
    parts: &mut http::request::Parts,
    body: &ProxyBody,
) -> (Vec<u8>, RequestFraming) {
    // Hop-by-hop, removed by the header stage already; the framing below is
    // the only one the upstream may see.
    parts.headers.remove(header::TRANSFER_ENCODING);
    let framing = match parts.headers.get(header::CONTENT_LENGTH) {
        Some(length) => RequestFraming::Length(
            length
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        ),
        None if body.is_end_stream() => RequestFraming::None,
        None => match body.size_hint().exact() {
            Some(length) => {
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
                RequestFraming::Length(length)
            }
            None => {
                parts.headers.insert(
                    header::TRANSFER_ENCODING,
                    HeaderValue::from_static("chunked"),
                );
                RequestFraming::Chunked
            }
        },
    };
    let target = parts.uri.path_and_query().map_or("/", |t| t.as_str());
    let size = parts.method.as_str().len()
        + target.len()
        + 12
        + parts
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum::<usize>()
        + 2;
    let mut head = Vec::with_capacity(size);
    head.extend_from_slice(parts.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    (head, framing)
}

/// How a request on a connection failed.
#[derive(Debug)]
pub(super) enum Exchange {
    /// The upstream closed (or reset) the connection before a single byte
    /// of a response: for `link.rs` to judge whether to send it again.
    Unanswered(UpstreamError),
    /// Anything else.
    Failed(UpstreamError),
}

impl Exchange {
    pub(super) fn into_error(self) -> UpstreamError {
        match self {
            Exchange::Unanswered(e) | Exchange::Failed(e) => e,
        }
    }
}

/// Writes the request (`head` from [`encode_head`], then `body` if any) on
/// `conn` and reads its response head.
pub(super) async fn exchange(
    conn: &mut Conn,
    head: &[u8],
    body: Option<ProxyBody>,
    framing: RequestFraming,
    head_request: bool,
) -> Result<Head, Exchange> {
    if let Err(e) = conn.io.write_all(head).await {
        return Err(Exchange::Unanswered(UpstreamError::new(
            Failure::ClosedEarly,
            e,
        )));
    }
    let mut cut_off = None;
    if let Some(body) = body {
        match write_body(conn, body, framing).await {
            Ok(()) => {}
            Err(BodyWrite::Client(e)) => {
                return Err(Exchange::Failed(UpstreamError::new(
                    Failure::RequestBody,
                    e,
                )));
            }
            // The upstream may have answered before it read the whole body
            // (a 413, say): its answer is still read, the connection not
            // kept.
            Err(BodyWrite::Upstream(e)) => cut_off = Some(e),
        }
    }
    match read_head(conn, head_request).await {
        Ok(mut head) => {
            if cut_off.is_some() {
                head.reusable = false;
            }
            Ok(head)
        }
        Err(e) => match cut_off {
            Some(write) => Err(Exchange::Failed(UpstreamError::new(
                Failure::ClosedEarly,
                write,
            ))),
            None => Err(e),
        },
    }
}

enum BodyWrite {
    /// The client's body failed (or went over its limit).
    Client(BoxError),
    /// Writing to the upstream failed.
    Upstream(io::Error),
}

async fn write_body(
    conn: &mut Conn,
    mut body: ProxyBody,
    framing: RequestFraming,
) -> Result<(), BodyWrite> {
    let mut left = match framing {
        RequestFraming::Length(n) => n,
        _ => u64::MAX,
    };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyWrite::Client)?;
        // Trailers of the client's are dropped (`body.rs`); none are sent.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        match framing {
            RequestFraming::Chunked => {
                let size = format!("{:x}\r\n", data.len());
                conn.io
                    .write_all(size.as_bytes())
                    .await
                    .map_err(BodyWrite::Upstream)?;
                conn.io
                    .write_all(&data)
                    .await
                    .map_err(BodyWrite::Upstream)?;
                conn.io
                    .write_all(b"\r\n")
                    .await
                    .map_err(BodyWrite::Upstream)?;
            }
            RequestFraming::Length(_) | RequestFraming::None => {
                let len = data.len() as u64;
                if len > left {
                    return Err(BodyWrite::Client(
                        "request body longer than its Content-Length".into(),
                    ));
                }
                left -= len;
                conn.io
                    .write_all(&data)
                    .await
                    .map_err(BodyWrite::Upstream)?;
            }
        }
    }
    match framing {
        RequestFraming::Chunked => conn
            .io
            .write_all(b"0\r\n\r\n")
            .await
            .map_err(BodyWrite::Upstream),
        RequestFraming::Length(_) if left != 0 => Err(BodyWrite::Client(
            "request body shorter than its Content-Length".into(),
        )),
        _ => Ok(()),
    }
}

/// A final response head, read.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) response: Response<()>,
    pub(super) framing: Framing,
    /// HTTP/1.1 without `Connection: close`.
    pub(super) reusable: bool,
}

/// Reads the final response head from `conn` (its bytes are consumed from
/// the buffer; what follows is the body's).
async fn read_head(conn: &mut Conn, head_request: bool) -> Result<Head, Exchange> {
    let mut received = false;
    loop {
        match parse_head(&conn.buf, head_request) {
            Ok(Parse::Final(used, head)) => {
                conn.buf.advance(used);
                return Ok(head);
            }
            Ok(Parse::Interim(used)) => {
                conn.buf.advance(used);
                continue;
            }
            Ok(Parse::Partial) => {}
            Err(e) => return Err(Exchange::Failed(UpstreamError::new(Failure::Protocol, e))),
        }
        match std::future::poll_fn(|cx| conn.poll_fill(cx)).await {
            Ok(0) => {
                let e = UpstreamError::new(
                    Failure::ClosedEarly,
                    "upstream closed the connection before its response",
                );
                return Err(if received {
                    Exchange::Failed(e)
                } else {
                    Exchange::Unanswered(e)
                });
            }
            Ok(_) => received = true,
            Err(e) => {
                let e = UpstreamError::new(Failure::ClosedEarly, e);
                return Err(if received {
                    Exchange::Failed(e)
                } else {
                    Exchange::Unanswered(e)
                });
            }
        }
    }
}

/// How much of a buffer a response head took.
#[derive(Debug)]
enum Parse {
    /// An interim (1xx) response of this many bytes, to skip.
    Interim(usize),
    /// The final response head, of this many bytes.
    Final(usize, Head),
    /// Not all of a head yet.
    Partial,
}

/// Parses one response head at the start of `buf`.
fn parse_head(buf: &[u8], head_request: bool) -> Result<Parse, Malformed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let used = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(used)) if used <= MAX_HEAD => used,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(Parse::Partial),
        Ok(_) => return Err(Malformed("response head too large")),
        Err(httparse::Error::TooManyHeaders) => return Err(Malformed("too many headers")),
        Err(_) => return Err(Malformed("not an HTTP/1 response head")),
    };
    let code = parsed.code.ok_or(Malformed("no status"))?;
    let status = StatusCode::from_u16(code).map_err(|_| Malformed("invalid status"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        // Nothing asks for an upgrade on this path (the `Upgrade` header is
        // hop-by-hop and never forwarded): a 101 is not an answer.
        return Err(Malformed("unrequested 101 Switching Protocols"));
    }
    if status.is_informational() {
        // RFC 9110 §15.2: interim responses (100, 103, ...) precede the
        // final one; they are not relayed.
        return Ok(Parse::Interim(used));
    }
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let mut map = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| Malformed("invalid header name"))?;
        let value =
            HeaderValue::from_bytes(h.value).map_err(|_| Malformed("invalid header value"))?;
        map.append(name, value);
    }
    let framing = framing(status, version, &map, head_request)?;
    let reusable = version == Version::HTTP_11
        && framing != Framing::Close
        && !map
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = map;
    Ok(Parse::Final(
        used,
        Head {
            response,
            framing,
            reusable,
        },
    ))
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// None (a response to HEAD, a 204 or a 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the upstream closes the connection.
    Close,
}

/// RFC 9112 §6.3, strictly: what a proxy in front of another reader could
/// read differently is refused (a 502), never guessed.
fn framing(
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
    head_request: bool,
) -> Result<Framing, Malformed> {
    if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter().peekable();
    if codings.peek().is_some() {
        if headers.contains_key(header::CONTENT_LENGTH) {
            // §6.3 ¶3: TE with CL is a smuggling attempt as often as not.
            return Err(Malformed("Transfer-Encoding with Content-Length"));
        }
        if version != Version::HTTP_11 {
            return Err(Malformed("Transfer-Encoding in an HTTP/1.0 response"));
        }
        // Only a single `chunked`: another coding (`gzip, chunked`) would be
        // passed on as if it were plain, once the hop-by-hop
        // Transfer-Encoding has been removed, as for requests (`gateway.rs`).
        let mut all = codings
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii);
        return match (all.next(), all.next()) {
            (Some(one), None) if one.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
            _ => Err(Malformed("transfer coding other than a single chunked")),
        };
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for item in value.as_bytes().split(|b| *b == b',') {
            let n = crate::headers::content_length(item.trim_ascii())
                .ok_or(Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Malformed("differing Content-Length values"));
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::Close, Framing::Length))
}

/// What the body decoder found in the buffer.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Data(Bytes),
    /// More bytes are needed.
    More,
    /// The body has ended.
    End,
}

/// Where in its body a response is.
#[derive(Debug, Clone, Copy)]
enum Decoder {
    Length(u64),
    Close,
    /// Before a chunk-size line.
    ChunkSize,
    /// Inside a chunk's data, this much left.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// After the last chunk: trailer lines until an empty one, this many
    /// bytes and lines of them read.
    Trailers(usize, usize),
    Done,
}

impl Decoder {
    fn new(framing: Framing) -> Decoder {
        match framing {
            Framing::Empty | Framing::Length(0) => Decoder::Done,
            Framing::Length(n) => Decoder::Length(n),
            Framing::Chunked => Decoder::ChunkSize,
            Framing::Close => Decoder::Close,
        }
    }

    /// The next step from `buf`, consuming what it reads. `eof`: the
    /// connection has ended, `buf` is all there is.
    fn decode(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Step, Malformed> {
        loop {
            match *self {
                Decoder::Done => return Ok(Step::End),
                Decoder::Length(left) => {
                    let short = "body shorter than its Content-Length";
                    let Some((data, left)) = take(buf, left, eof, short)? else {
                        return Ok(Step::More);
                    };
                    *self = if left == 0 {
                        Decoder::Done
                    } else {
                        Decoder::Length(left)
                    };
                    return Ok(Step::Data(data));
                }
                Decoder::Close => {
                    if buf.is_empty() {
                        return Ok(if eof { Step::End } else { Step::More });
                    }
                    return Ok(Step::Data(buf.split().freeze()));
                }
                Decoder::ChunkSize => {
                    let Some(line) = line(buf, MAX_CHUNK_LINE, eof)? else {
                        return Ok(Step::More);
                    };
                    let size = chunk_size(&line)?;
                    *self = if size == 0 {
                        Decoder::Trailers(0, 0)
                    } else {
                        Decoder::ChunkData(size)
                    };
                }
                Decoder::ChunkData(left) => {
                    let Some((data, left)) = take(buf, left, eof, "chunked body cut short")? else {
                        return Ok(Step::More);
                    };
                    *self = if left == 0 {
                        Decoder::ChunkEnd
                    } else {
                        Decoder::ChunkData(left)
                    };
                    return Ok(Step::Data(data));
                }
                Decoder::ChunkEnd => {
                    if buf.len() < 2 {
                        if eof || buf.first().is_some_and(|b| *b != b'\r') {
                            return Err(Malformed("chunk data not followed by CRLF"));
                        }
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Malformed("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    *self = Decoder::ChunkSize;
                }
                Decoder::Trailers(read, count) => {
                    // Trailers are dropped: nothing downstream of the
                    // gateway gets them (as with the client's, `body.rs`).
                    // Each is still held to the header syntax, and all of
                    // them to hyper's limits (16 KiB, 100 fields).
                    let Some(line) = line(buf, MAX_TRAILERS - read, eof)? else {
                        return Ok(Step::More);
                    };
                    if line.is_empty() {
                        *self = Decoder::Done;
                    } else if count < MAX_HEADERS && is_field_line(&line) {
                        *self = Decoder::Trailers(read + line.len() + 2, count + 1);
                    } else {
                        return Err(Malformed("invalid trailer line"));
                    }
                }
            }
        }
    }

    fn is_done(&self) -> bool {
        matches!(self, Decoder::Done)
    }
}

/// Up to `left` bytes of body from the front of `buf`, and how many are
/// left after them; `None` when `buf` is empty and more may come, `short`
/// when the connection has ended first.
fn take(
    buf: &mut BytesMut,
    left: u64,
    eof: bool,
    short: &'static str,
) -> Result<Option<(Bytes, u64)>, Malformed> {
    if buf.is_empty() {
        return if eof { Err(Malformed(short)) } else { Ok(None) };
    }
    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
    Ok(Some((buf.split_to(n).freeze(), left - n as u64)))
}

/// One CRLF-terminated line from the front of `buf` (CRLF consumed, not
/// returned), when it is all there; a bare LF, a CR alone or a line longer
/// than `max` is malformed.
fn line(buf: &mut BytesMut, max: usize, eof: bool) -> Result<Option<BytesMut>, Malformed> {
    match buf.iter().position(|b| *b == b'\n') {
        Some(end) if end > max => Err(Malformed("line too long")),
        Some(end) => {
            if end == 0 || buf[end - 1] != b'\r' {
                return Err(Malformed("line not ended by CRLF"));
            }
            let mut line = buf.split_to(end + 1);
            line.truncate(end - 1);
            if line.contains(&b'\r') {
                return Err(Malformed("bare CR in a line"));
            }
            Ok(Some(line))
        }
        None if buf.len() > max => Err(Malformed("line too long")),
        None if eof => Err(Malformed("chunked body cut short")),
        None => Ok(None),
    }
}

/// `field-name ":" field-value` (RFC 9110 §5): a token, a colon, then
/// visible characters, spaces and tabs.
fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return false;
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
        && value
            .iter()
            .all(|b| *b == b'\t' || (b' '..=b'~').contains(b) || *b >= 0x80)
}

/// A chunk-size line (RFC 9112 §7.1): `1*HEXDIG [ BWS ";" chunk-ext ]`,
/// the extensions ignored but held to visible characters, spaces and tabs.
fn chunk_size(line: &[u8]) -> Result<u64, Malformed> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(Malformed("invalid chunk size"));
    }
    let size = line[..digits].iter().try_fold(0u64, |n, d| {
        let d = char::from(*d).to_digit(16).map(u64::from)?;
        n.checked_mul(16)?.checked_add(d)
    });
    let size = size.ok_or(Malformed("chunk size too large"))?;
    let rest = line[digits..].trim_ascii_start();
    match rest.split_first() {
        None if rest.len() == line.len() - digits => Ok(size),
        Some((b';', ext))
            if ext
                .iter()
                .all(|b| *b == b'\t' || (b' '..=b'~').contains(b) || *b >= 0x80) =>
        {
            Ok(size)
        }
        _ => Err(Malformed("invalid chunk size line")),
    }
}

/// A response body read from an upstream connection that it owns until
/// its end.
#[derive(Debug)]
pub struct Body {
    /// `None` once ended (given back or dropped).
    conn: Option<Conn>,
    decoder: Decoder,
    reusable: bool,
    pool: Arc<IdlePool>,
}

impl Body {
    /// The body of `head`, read from `conn`; a body that is already whole
    /// (none at all) gives the connection back at once.
    pub(super) fn new(conn: Conn, head: &Head, pool: Arc<IdlePool>) -> Body {
        let mut body = Body {
            conn: Some(conn),
            decoder: Decoder::new(head.framing),
            reusable: head.reusable,
            pool,
        };
        if body.decoder.is_done() {
            body.finish();
        }
        body
    }

    /// The body has been read to its end: the connection goes back to the
    /// pool when nothing else came with it and it may carry another request.
    fn finish(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && self.reusable
            && conn.buf.is_empty()
        {
            conn.shrink();
            self.pool.put(conn);
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let mut eof = false;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut conn.buf, eof) {
                Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Step::End) => {
                    if eof {
                        this.reusable = false;
                    }
                    this.decoder = Decoder::Done;
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::More) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            match ready!(conn.poll_fill(cx)) {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            Decoder::Length(n) => SizeHint::with_exact(n),
            Decoder::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// Whether a request may be sent again after its connection closed with
/// no answer (RFC 9110 §9.2.2): idempotent, and without a body.
pub(super) fn retryable(method: &Method, bodiless: bool) -> bool {
    bodiless
        && matches!(
            *method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        )
}

/// A whole response as this client reads it — head (interim responses
/// skipped), then the body framed as on a connection that ends after
/// `bytes` — for the differential fuzz target against hyper's client.
#[doc(hidden)]
pub fn decode_response(
    bytes: &[u8],
    head_request: bool,
) -> Result<(Response<()>, Vec<u8>), Malformed> {
    let mut buf = BytesMut::from(bytes);
    let head = loop {
        match parse_head(&buf, head_request)? {
            Parse::Interim(used) => buf.advance(used),
            Parse::Final(used, head) => {
                buf.advance(used);
                break head;
            }
            Parse::Partial => return Err(Malformed("response head cut short")),
        }
    };
    let mut decoder = Decoder::new(head.framing);
    let mut body = Vec::new();
    loop {
        match decoder.decode(&mut buf, true)? {
            Step::Data(data) => body.extend_from_slice(&data),
            Step::End => return Ok((head.response, body)),
            Step::More => return Err(Malformed("body cut short")),
        }
    }
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
