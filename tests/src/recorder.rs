//! A stand-in upstream that records every request it receives — method,
//! target, headers, body and trailers — and can be told to misbehave (hang,
//! cut the response short), so a test can show both what a client got and
//! exactly what reached the backend. Also a canary listener that only counts
//! connections: proof that the gateway never dialled somewhere a client named.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What the recorder saw of one request.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub method: String,
    /// Path and query, as received.
    pub path: String,
    /// Lowercase names, in arrival order; duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Trailers of a chunked body, if any arrived.
    pub trailers: Vec<(String, String)>,
}

impl Seen {
    /// Every value of header `name` (lowercase).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// How the recorder answers (after recording the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with `{"ok":true}`.
    Answer,
    /// Never answers; the connection stays open.
    Hang,
    /// Announces 1,000 bytes, sends 10, then breaks the connection.
    CutShort,
}

/// A recording upstream on `127.0.0.1:0`.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// `http://127.0.0.1:port`, for `Options::upstream`.
    pub url: String,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    connections: Arc<AtomicU64>,
}

impl Recorder {
    pub async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let recorder = Recorder {
            url: format!("http://{addr}"),
            addr,
            log: Arc::default(),
            behaviour: Arc::new(Mutex::new(Behaviour::Answer)),
            connections: Arc::default(),
        };
        let this = recorder.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                this.connections.fetch_add(1, Ordering::SeqCst);
                let this = this.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let this = this.clone();
                        async move { Ok::<_, Infallible>(this.record(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        recorder
    }

    async fn record(&self, req: Request<Incoming>) -> Response<BoxedBody> {
        let (parts, body) = req.into_parts();
        let pairs = |map: &http::HeaderMap| -> Vec<(String, String)> {
            map.iter()
                .map(|(n, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (n.as_str().to_owned(), v)
                })
                .collect()
        };
        let collected = body.collect().await.ok();
        let seen = Seen {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(String::new, |p| p.to_string()),
            headers: pairs(&parts.headers),
            trailers: collected
                .as_ref()
                .and_then(|c| c.trailers())
                .map(pairs)
                .unwrap_or_default(),
            body: collected.map(|c| c.to_bytes().to_vec()).unwrap_or_default(),
        };
        self.log.lock().expect("log").push(seen);
        let behaviour = *self.behaviour.lock().expect("behaviour");
        match behaviour {
            Behaviour::Answer => Response::builder()
                .header("content-type", "application/json")
                .body(
                    Full::new(Bytes::from_static(b"{\"ok\":true}"))
                        .map_err(|n| match n {})
                        .boxed(),
                )
                .expect("response"),
            Behaviour::Hang => std::future::pending().await,
            Behaviour::CutShort => {
                let frames = futures_util::stream::iter([
                    Ok(Frame::data(Bytes::from_static(b"0123456789"))),
                    Err(std::io::Error::other("cut short")),
                ]);
                Response::builder()
                    .header("content-length", "1000")
                    .body(StreamBody::new(frames).boxed())
                    .expect("response")
            }
        }
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().expect("log").clone()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        self.log.lock().expect("log").len()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// How the following requests are answered.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("behaviour") = behaviour;
    }
}

type BoxedBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A listener that accepts and counts connections and never answers: give
/// its address to an attacker's request and check that it stays at zero.
#[derive(Debug, Clone)]
pub struct Canary {
    pub addr: SocketAddr,
    connections: Arc<AtomicU64>,
}

impl Canary {
    pub async fn start() -> Canary {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let canary = Canary {
            addr: listener.local_addr().expect("addr"),
            connections: Arc::default(),
        };
        let connections = canary.connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        canary
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}
