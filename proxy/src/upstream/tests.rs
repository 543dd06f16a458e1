//! Each way an upstream can fail, against a real socket on loopback, through
//! both paths a request can take (an HTTP/1 client's link and the shared
//! client): the forwarder reports the [`Failure`] that the response, the log
//! and the metrics read.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Version};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;

/// What the stand-in upstream does with each connection.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Nobody listens.
    Closed,
    /// Answers bytes that are not HTTP.
    Garbage,
    /// Reads the request, then closes without a word.
    Hangs,
    /// Reads the request and never answers.
    Silent,
    /// Answers 200 with a body.
    Ok,
}

async fn upstream(behaviour: Behaviour) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    if matches!(behaviour, Behaviour::Closed) {
        drop(listener);
    } else {
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0; 4096];
                    let _ = stream.read(&mut buf).await;
                    match behaviour {
                        Behaviour::Garbage => {
                            let _ = stream.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await;
                        }
                        Behaviour::Ok => {
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                                .await;
                        }
                        Behaviour::Silent => {
                            let _ = stream.read(&mut buf).await;
                        }
                        Behaviour::Closed | Behaviour::Hangs => {}
                    }
                });
            }
        });
    }
    Upstream::http(addr.to_string().parse().expect("authority"))
}

fn forwarder(upstream: Upstream) -> Forwarder {
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        response: Duration::from_secs(1),
        max_in_flight: None,
        queue: Duration::from_secs(1),
    };
    Forwarder::new(upstream, timeouts, Arc::new(Metrics::for_tests()))
}

/// Sends one GET as a client speaking `version` would and returns how it ended.
async fn send(forwarder: &Forwarder, version: Version) -> Result<StatusCode, Failure> {
    let mut req = Request::new(body::empty());
    *req.uri_mut() = Uri::from_static("/x");
    *req.version_mut() = version;
    let link = Arc::new(forwarder.link(Arc::new(IdlePool::default())));
    let sent = forwarder.send(req, Some(&link)).await;
    sent.map(|r| r.status()).map_err(|e| e.kind())
}

async fn check(behaviour: Behaviour, expected: Result<StatusCode, Failure>) {
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let forwarder = forwarder(upstream(behaviour).await);
        assert_eq!(
            send(&forwarder, version).await,
            expected,
            "{behaviour:?} for an {version:?} client"
        );
    }
}

#[tokio::test]
async fn an_answer_is_returned() {
    check(Behaviour::Ok, Ok(StatusCode::OK)).await;
}

#[tokio::test]
async fn nobody_listening_is_a_connect_failure() {
    check(Behaviour::Closed, Err(Failure::Connect)).await;
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_a_protocol_failure() {
    check(Behaviour::Garbage, Err(Failure::Protocol)).await;
}

#[tokio::test]
async fn a_connection_closed_before_the_answer_is_closed_early() {
    check(Behaviour::Hangs, Err(Failure::ClosedEarly)).await;
}

#[tokio::test]
async fn no_answer_within_the_response_timeout_is_a_timeout() {
    check(Behaviour::Silent, Err(Failure::Timeout)).await;
}

#[tokio::test]
async fn a_plain_http_answer_on_an_https_url_is_a_tls_failure_never_a_fallback() {
    let plain = upstream(Behaviour::Ok).await;
    let https = Upstream::parse(&format!("https://{}", plain.authority)).expect("https URL");
    assert!(https.is_tls());
    for version in [Version::HTTP_11, Version::HTTP_2] {
        assert_eq!(
            send(&forwarder(https.clone()), version).await,
            Err(Failure::Tls),
            "an {version:?} client"
        );
    }
}
