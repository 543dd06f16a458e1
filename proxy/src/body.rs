//! Body types: request and response bodies are streamed both ways, behind
//! one boxed type; only small responses are read whole first
//! ([`crate::upstream::BUFFERED_RESPONSE_MAX`]).

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Limited};
use hyper::body::Frame;

/// Any error a body can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type the gateway sends both to the upstream and to the client.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// The client's body as the upstream gets it: at most `limit` bytes (the
/// stream fails beyond, which the forward stage reports as 413), and with
/// trailers dropped, so that no identity header can ride in a trailer.
pub fn upstream_request_body<B>(body: B, limit: u64) -> ProxyBody
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    let without_trailers = body.map_err(Into::into).map_frame(|frame| {
        if frame.is_trailers() {
            Frame::data(Bytes::new())
        } else {
            frame
        }
    });
    Limited::new(
        without_trailers,
        usize::try_from(limit).unwrap_or(usize::MAX),
    )
    .boxed()
}

/// The upstream's response body, streamed back as it arrives.
pub fn client_response_body<B>(body: B) -> ProxyBody
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// A body read whole already.
pub fn full(bytes: Bytes) -> ProxyBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}
