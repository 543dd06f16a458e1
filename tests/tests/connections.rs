//! How client connections are served (`proxy/src/server.rs`,
//! `proxy/src/upstream.rs`): spread over `--threads` threads and drained on
//! all of them at shutdown; HTTP/1 requests borrow an upstream connection
//! from their thread's idle pool only while they are in flight (idle
//! clients hold none), replaced when the upstream closes it, discarded
//! after a timeout so that a late answer can never be taken for the next
//! request's, and closed when its client goes away mid-request.
//! Clients here are single hyper HTTP/1 connections, so "the same client
//! connection" is explicit.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dev_idp::MintRequest;
use e2e_tests::wire::host_port;
use e2e_tests::{Options, System};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Bound on waits that should end much sooner.
const BOUND: Duration = Duration::from_secs(15);

/// An upstream answering `200` with the request's query as the body, after
/// `delay` when the query is `slow`. Counts connections, reports each
/// request's query on arrival and the end of each connection that carried
/// a request (a readiness probe's bare connect is not reported).
struct Echo {
    url: String,
    connections: Arc<AtomicU64>,
    received: mpsc::UnboundedReceiver<String>,
    closed: mpsc::UnboundedReceiver<()>,
}

impl Echo {
    async fn start(delay: Duration, keep_alive: bool) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicU64::new(0));
        let (received_tx, received) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let closed = closed_tx.clone();
                let received = received_tx.clone();
                let used = Arc::new(AtomicBool::new(false));
                let served = used.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        served.store(true, Ordering::SeqCst);
                        let query = req.uri().query().unwrap_or("").to_owned();
                        let _ = received.send(query.clone());
                        async move {
                            if query == "slow" {
                                tokio::time::sleep(delay).await;
                            }
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(query))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    if used.load(Ordering::SeqCst) {
                        let _ = closed.send(());
                    }
                });
            }
        });
        Echo {
            url,
            connections,
            received,
            closed,
        }
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn gateway(upstream: &str, args: &[&str]) -> System {
    System::start_with(Options {
        upstream: Some(upstream.to_owned()),
        gateway_args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Options::default()
    })
    .await
    .unwrap()
}

/// One client connection to the gateway.
async fn client(sys: &System) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(host_port(&sys.gateway_url))
        .await
        .unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// `GET /health?<query>` on `sender`: status and body.
async fn get(sender: &mut SendRequest<Empty<Bytes>>, query: &str) -> (u16, String) {
    sender.ready().await.unwrap();
    let req = Request::get(format!("/health?{query}"))
        .header("host", "gateway")
        .body(Empty::new())
        .unwrap();
    let response = tokio::time::timeout(BOUND, sender.send_request(req))
        .await
        .expect("no answer")
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn idle_client_connections_hold_no_upstream_connection() {
    let echo = Echo::start(Duration::ZERO, true).await;
    let sys = gateway(&echo.url, &["--threads", "1"]).await;
    let before = echo.connections();
    // Ten clients, all kept open, taking turns: one upstream connection
    // serves them all, handed back to the idle pool after each response.
    let mut clients = Vec::new();
    for c in 0..10 {
        let mut sender = client(&sys).await;
        for i in 0..3 {
            let query = format!("c{c}r{i}");
            assert_eq!(get(&mut sender, &query).await, (200, query));
        }
        clients.push(sender);
    }
    assert_eq!(echo.connections() - before, 1);
    assert_eq!(sys.gateway.metrics().upstream_connections_opened(), 1);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn requests_in_flight_together_get_upstream_connections_of_their_own() {
    let echo = Echo::start(Duration::from_secs(1), true).await;
    let sys = gateway(&echo.url, &["--threads", "1"]).await;
    let before = echo.connections();
    let mut senders = Vec::new();
    for _ in 0..3 {
        senders.push(client(&sys).await);
    }
    let together = senders.iter_mut().map(|sender| get(sender, "slow"));
    for answer in futures_util::future::join_all(together).await {
        assert_eq!(answer, (200, "slow".into()));
    }
    assert_eq!(echo.connections() - before, 3);
    // Afterwards the three idle ones serve whoever comes next.
    for (i, sender) in senders.iter_mut().enumerate() {
        let query = format!("after{i}");
        assert_eq!(get(sender, &query).await, (200, query));
    }
    assert_eq!(echo.connections() - before, 3);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn an_upstream_closing_after_every_response_costs_the_client_nothing() {
    // keep-alive off: the upstream answers `Connection: close` and hangs up.
    let echo = Echo::start(Duration::ZERO, false).await;
    let sys = gateway(&echo.url, &[]).await;
    let before = echo.connections();
    let mut one = client(&sys).await;
    for i in 0..5 {
        assert_eq!(
            get(&mut one, &format!("q{i}")).await,
            (200, format!("q{i}"))
        );
    }
    assert_eq!(echo.connections() - before, 5);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn an_upstream_hanging_up_silently_between_requests_costs_the_client_nothing() {
    // Answers one request per connection with keep-alive implied, then closes
    // the socket without a word, as an upstream's idle timeout does.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (hung_up_tx, mut hung_up) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let hung_up = hung_up_tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                drop(stream);
                let _ = hung_up.send(());
            });
        }
    });
    let sys = gateway(&url, &[]).await;
    let mut one = client(&sys).await;
    for i in 0..5 {
        assert_eq!(get(&mut one, &format!("q{i}")).await, (200, "ok".into()));
        // The next request goes out only once the upstream has hung up.
        tokio::time::timeout(BOUND, hung_up.recv()).await.unwrap();
    }
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn after_an_upstream_timeout_the_next_request_never_gets_the_late_answer() {
    let mut echo = Echo::start(Duration::from_secs(2), true).await;
    let sys = gateway(&echo.url, &["--upstream-timeout-seconds", "1"]).await;
    let before = echo.connections();
    let mut one = client(&sys).await;
    assert_eq!(get(&mut one, "first").await, (200, "first".into()));
    let (status, _) = get(&mut one, "slow").await;
    assert_eq!(status, 504);
    // The timed-out request's upstream connection is closed, not reused.
    tokio::time::timeout(BOUND, echo.closed.recv())
        .await
        .unwrap();
    assert_eq!(get(&mut one, "next").await, (200, "next".into()));
    assert_eq!(get(&mut one, "again").await, (200, "again".into()));
    assert_eq!(echo.connections() - before, 2);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_hanging_up_mid_request_closes_its_upstream_connection() {
    let mut echo = Echo::start(Duration::from_secs(600), true).await;
    let sys = gateway(&echo.url, &["--upstream-timeout-seconds", "600"]).await;
    let mut stream = TcpStream::connect(host_port(&sys.gateway_url))
        .await
        .unwrap();
    stream
        .write_all(b"GET /health?slow HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .unwrap();
    // Once the upstream has the request, the client goes away.
    let query = tokio::time::timeout(BOUND, echo.received.recv())
        .await
        .unwrap();
    assert_eq!(query.as_deref(), Some("slow"));
    drop(stream);
    tokio::time::timeout(BOUND, echo.closed.recv())
        .await
        .expect("the upstream connection outlived its client");
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn http2_clients_share_the_pool_and_meet_the_same_policy() {
    let echo = Echo::start(Duration::ZERO, true).await;
    let sys = gateway(&echo.url, &[]).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let token = sys.token(MintRequest::user("alice"));
    let requests = (0..20).map(|i| {
        let h2 = h2.clone();
        let url = format!("{}/health?h{i}", sys.gateway_url);
        async move {
            let r = h2.get(url).send().await.unwrap();
            assert_eq!(r.version(), reqwest::Version::HTTP_2);
            (r.status().as_u16(), r.text().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer, (200, format!("h{i}")));
    }
    let r = h2
        .get(format!("{}/todoitems", sys.gateway_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = h2
        .get(format!("{}/todoitems", sys.gateway_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn connections_spread_over_several_threads_are_all_answered_correctly() {
    let echo = Echo::start(Duration::ZERO, true).await;
    let sys = gateway(&echo.url, &["--threads", "3"]).await;
    let token = sys.token(MintRequest::user("alice"));
    let clients = (0..12).map(|c| {
        let url = sys.gateway_url.clone();
        let token = token.clone();
        async move {
            let stream = TcpStream::connect(host_port(&url)).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            for i in 0..10 {
                sender.ready().await.unwrap();
                // Alternately anonymous and token routes: the token cache and
                // the key set are shared by the threads.
                let mut req = Request::get(format!("/health?c{c}r{i}")).header("host", "gateway");
                if i % 2 == 1 {
                    req = Request::get(format!("/todoitems?c{c}r{i}"))
                        .header("host", "gateway")
                        .header("authorization", format!("Bearer {token}"));
                }
                let response = sender.send_request(req.body(Empty::<Bytes>::new()).unwrap());
                let response = tokio::time::timeout(BOUND, response)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(response.status(), 200);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body, format!("c{c}r{i}"));
            }
        }
    });
    futures_util::future::join_all(clients).await;
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn stopping_lets_requests_in_flight_on_every_thread_finish() {
    let mut echo = Echo::start(Duration::from_secs(1), true).await;
    let sys = gateway(&echo.url, &["--threads", "2"]).await;
    // Four connections: two on each thread (the least loaded gets the next).
    let mut in_flight = Vec::new();
    for _ in 0..4 {
        let mut sender = client(&sys).await;
        in_flight.push(tokio::spawn(async move { get(&mut sender, "slow").await }));
    }
    for _ in 0..4 {
        let query = tokio::time::timeout(BOUND, echo.received.recv())
            .await
            .unwrap();
        assert_eq!(query.as_deref(), Some("slow"));
    }
    // Every request is at the upstream: stop now, and all four still answer.
    tokio::time::timeout(BOUND, sys.stop())
        .await
        .unwrap()
        .unwrap();
    for request in in_flight {
        assert_eq!(request.await.unwrap(), (200, "slow".into()));
    }
}

#[tokio::test]
async fn an_upstream_that_never_completes_a_connection_gives_502_at_the_connect_timeout() {
    // A listener that never accepts, its accept queue filled: the kernel
    // drops further SYNs, so a connect neither succeeds nor fails.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    loop {
        // The probe's bound is how long "does not complete" is waited for.
        match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => queued.push(stream),
            Ok(Err(e)) => panic!("connect failed instead of hanging: {e}"),
            Err(_) => break,
        }
        assert!(queued.len() < 64, "the accept queue never filled");
    }
    let sys = gateway(
        &format!("http://{addr}"),
        &[
            "--upstream-connect-timeout-seconds",
            "1",
            "--upstream-timeout-seconds",
            "60",
        ],
    )
    .await;
    let mut one = client(&sys).await;
    // 502 (connect), well before the 60 s upstream timeout would give a 504.
    let (status, body) = get(&mut one, "x").await;
    assert_eq!(status, 502, "{body}");
    sys.stop().await.unwrap();
    drop(listener);
}

/// An HTTP/2 connection with no open stream for the header read timeout
/// gets GOAWAY and is closed (HTTP/1.1 ones are closed by hyper), but a
/// stream that stays open longer than that is never cut.
#[tokio::test]
async fn an_idle_http2_connection_is_closed_but_a_long_stream_is_not_cut() {
    let echo = Echo::start(Duration::from_millis(2500), true).await;
    let sys = gateway(&echo.url, &["--header-read-timeout-seconds", "1"]).await;
    let stream = TcpStream::connect(host_port(&sys.gateway_url))
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    let connection = tokio::spawn(conn);

    // 2.5 s at the upstream, past the 1 s limit: answered in full.
    let req = Request::get("http://gateway/health?slow")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(BOUND, sender.send_request(req))
        .await
        .expect("no answer")
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"slow");
    // The open stream kept the connection from counting as idle: a new
    // stream right after is taken (after a GOAWAY it would be refused).
    let req = Request::get("http://gateway/health?after")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(BOUND, sender.send_request(req))
        .await
        .expect("no answer")
        .expect("the connection was closed while a stream was open");
    assert_eq!(response.status(), 200);
    drop(response);
    let idle_since = std::time::Instant::now();

    // Then nothing: the gateway ends the connection, not before the limit.
    tokio::time::timeout(BOUND, connection)
        .await
        .expect("the idle HTTP/2 connection was never closed")
        .unwrap()
        .unwrap();
    assert!(
        idle_since.elapsed() >= Duration::from_millis(500),
        "closed after {:?} of idleness",
        idle_since.elapsed()
    );
    sys.stop().await.unwrap();
}

/// An upstream written on bare TCP, one request per connection
/// (`Connection: close`), answering by the request's query: `hold` waits
/// for [`Gate::release`] (and reports its arrival), `big` sends 32 MiB,
/// `cut` promises 1,000 bytes and sends 500, `bigcut` promises 200,000 and
/// sends 100,000; anything else is `200 ok`. Counts the requests it is
/// answering at once, and the most at any time.
struct Gate {
    url: String,
    arrived: mpsc::UnboundedReceiver<()>,
    release: Arc<tokio::sync::Semaphore>,
    busiest: Arc<AtomicU64>,
}

const BIG: usize = 32 * 1024 * 1024;

impl Gate {
    async fn start() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (arrived_tx, arrived) = mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let busiest = Arc::new(AtomicU64::new(0));
        let now = Arc::new(AtomicU64::new(0));
        let (gate, most) = (release.clone(), busiest.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (arrived, gate, most, now) =
                    (arrived_tx.clone(), gate.clone(), most.clone(), now.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&head)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    let query = line.split(['?', ' ']).nth(2).unwrap_or("").to_owned();
                    let busy = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(busy, Ordering::SeqCst);
                    let head = |length: usize| {
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
                        )
                    };
                    let _ = match query.as_str() {
                        "hold" => {
                            let _ = arrived.send(());
                            gate.acquire().await.unwrap().forget();
                            stream
                                .write_all(format!("{}held", head(4)).as_bytes())
                                .await
                        }
                        "big" => {
                            let chunk = vec![b'x'; 64 * 1024];
                            let mut result = stream.write_all(head(BIG).as_bytes()).await;
                            for _ in 0..BIG / chunk.len() {
                                if result.is_err() {
                                    break;
                                }
                                result = stream.write_all(&chunk).await;
                            }
                            result
                        }
                        "cut" => {
                            stream
                                .write_all(format!("{}{}", head(1000), "x".repeat(500)).as_bytes())
                                .await
                        }
                        "bigcut" => {
                            stream
                                .write_all(
                                    format!("{}{}", head(200_000), "x".repeat(100_000)).as_bytes(),
                                )
                                .await
                        }
                        _ => {
                            // A little work, so that requests sent together overlap.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            stream.write_all(format!("{}ok", head(2)).as_bytes()).await
                        }
                    };
                    now.fetch_sub(1, Ordering::SeqCst);
                    let _ = stream.shutdown().await;
                });
            }
        });
        Gate {
            url,
            arrived,
            release,
            busiest,
        }
    }
}

/// `GET /health?<query>` on a connection of its own: the response, its
/// body not read yet.
async fn head_only(sys: &System, query: &str) -> Response<Incoming> {
    let mut sender = client(sys).await;
    sender.ready().await.unwrap();
    let req = Request::get(format!("/health?{query}"))
        .header("host", "gateway")
        .body(Empty::new())
        .unwrap();
    tokio::time::timeout(BOUND, sender.send_request(req))
        .await
        .expect("no answer")
        .unwrap()
}

/// [`head_only`], then the body: status, `Retry-After` and body.
async fn get_once(sys: &System, query: &str) -> (u16, Option<String>, String) {
    let response = head_only(sys, query).await;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// A gateway in front of `upstream` with at most `places` requests in
/// flight to it and `queue_ms` to wait for one.
async fn capped(upstream: &Gate, places: u32, queue_ms: u32) -> System {
    let (places, queue_ms) = (places.to_string(), queue_ms.to_string());
    gateway(
        &upstream.url,
        &[
            "--upstream-max-connections",
            &places,
            "--upstream-queue-timeout-ms",
            &queue_ms,
        ],
    )
    .await
}

#[tokio::test]
async fn with_every_upstream_place_taken_a_request_waits_the_queue_timeout_then_gets_503() {
    let mut upstream = Gate::start().await;
    let sys = capped(&upstream, 1, 200).await;
    let held = {
        let sys_url = sys.gateway_url.clone();
        let http = sys.http.clone();
        tokio::spawn(async move {
            let r = http
                .get(format!("{sys_url}/health?hold"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    upstream.arrived.recv().await.unwrap();
    let (status, retry_after, body) = get_once(&sys, "second").await;
    assert_eq!(
        (status, retry_after.as_deref(), body.as_str()),
        (503, Some("1"), r#"{"detail":"Service Unavailable"}"#)
    );
    let metrics = sys.metrics().await;
    assert!(
        metrics.contains(r#"authz_proxy_upstream_errors_total{kind="busy"} 1"#),
        "{metrics}"
    );
    upstream.release.add_permits(1);
    assert_eq!(held.await.unwrap(), (200, "held".to_owned()));
    assert_eq!(get_once(&sys, "third").await.0, 200);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn requests_beyond_the_cap_queue_and_are_all_served_never_more_at_once() {
    let upstream = Gate::start().await;
    let sys = capped(&upstream, 2, 10000).await;
    let mut requests = Vec::new();
    for i in 0..20 {
        let (url, http) = (sys.gateway_url.clone(), sys.http.clone());
        requests.push(tokio::spawn(async move {
            let r = http.get(format!("{url}/health?n{i}")).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    for request in requests {
        assert_eq!(request.await.unwrap(), (200, "ok".to_owned()));
    }
    let busiest = upstream.busiest.load(Ordering::SeqCst);
    assert!((1..=2).contains(&busiest), "{busiest} requests at once");
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_small_response_is_read_whole_before_it_is_relayed_so_one_cut_short_is_a_502() {
    let upstream = Gate::start().await;
    let sys = gateway(&upstream.url, &[]).await;
    let (status, _, body) = get_once(&sys, "cut").await;
    assert_eq!(
        (status, body.as_str()),
        (502, r#"{"detail":"Bad Gateway"}"#)
    );
    // A large one is streamed as it arrives: its status is sent before its
    // end, and its cut shows as a broken body.
    let response = head_only(&sys, "bigcut").await;
    assert_eq!(response.status(), 200);
    assert!(response.into_body().collect().await.is_err());
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_streamed_response_keeps_its_place_until_the_client_has_read_it() {
    let upstream = Gate::start().await;
    let sys = capped(&upstream, 1, 300).await;
    // 32 MiB, more than the sockets on the way hold: the client reads the
    // head and stops, so the gateway is still relaying.
    let response = head_only(&sys, "big").await;
    assert_eq!(response.status(), 200);
    assert_eq!(get_once(&sys, "meanwhile").await.0, 503);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), BIG);
    // Given back once relayed (the queue covers the moment between the
    // client's last byte and the gateway's end of the response).
    assert_eq!(get_once(&sys, "after").await.0, 200);
    sys.stop().await.unwrap();
}
