//! Every limit of the gateway, exercised through a real socket: what a client
//! may hold open, how long it may take, how much it may send, and how long
//! the gateway waits for the upstream. Figures (slowloris) are printed with
//! `--nocapture`.

use std::time::{Duration, Instant};

use e2e_tests::recorder::{Behaviour, Recorder};
use e2e_tests::wire::{exchange, host_port, read_to_close, statuses};
use e2e_tests::{Options, System};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Bound on waits that should end much sooner: a broken limit fails the
/// test instead of hanging it.
const BOUND: Duration = Duration::from_secs(15);

async fn start(args: &[&str]) -> (System, Recorder) {
    let upstream = Recorder::start().await;
    let sys = System::start_with(Options {
        upstream: Some(upstream.url.clone()),
        gateway_args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Options::default()
    })
    .await
    .unwrap();
    (sys, upstream)
}

async fn connect(sys: &System) -> TcpStream {
    TcpStream::connect(host_port(&sys.gateway_url))
        .await
        .unwrap()
}

/// Time until the gateway closes `stream`, reading whatever it sends.
async fn closed_after(mut stream: TcpStream) -> (Duration, String) {
    let started = Instant::now();
    let text = tokio::time::timeout(BOUND, read_to_close(&mut stream))
        .await
        .expect("the gateway never closed the connection");
    (started.elapsed(), text)
}

#[tokio::test]
async fn a_head_sent_too_slowly_is_cut_at_the_header_read_timeout() {
    let (sys, upstream) = start(&["--header-read-timeout-seconds", "1"]).await;
    let mut stream = connect(&sys).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: g\r\nX-Slow: a")
        .await
        .unwrap();
    let (after, _) = closed_after(stream).await;
    assert!(after < Duration::from_secs(5), "closed after {after:?}");
    assert_eq!(upstream.count(), 0);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed_at_the_header_read_timeout() {
    let (sys, _upstream) = start(&["--header-read-timeout-seconds", "1"]).await;
    let (after, _) = closed_after(connect(&sys).await).await;
    assert!(after < Duration::from_secs(5), "closed after {after:?}");
    // Nor one that stops in the middle of the HTTP/2 preface.
    let mut stream = connect(&sys).await;
    stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let (after, _) = closed_after(stream).await;
    assert!(after < Duration::from_secs(5), "closed after {after:?}");
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (sys, upstream) = start(&["--header-read-timeout-seconds", "1"]).await;
    let mut stream = connect(&sys).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: g\r\n\r\n")
        .await
        .unwrap();
    let (after, text) = closed_after(stream).await;
    assert_eq!(statuses(&text), [200], "{text}");
    assert!(after < Duration::from_secs(5), "closed after {after:?}");
    assert_eq!(upstream.count(), 1);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn head_size_and_header_count_limits_answer_431() {
    let (sys, upstream) = start(&["--max-header-bytes", "8192", "--max-headers", "10"]).await;
    let addr = host_port(&sys.gateway_url).to_owned();
    let head = |extra: &str| {
        format!("GET /health HTTP/1.1\r\nHost: g\r\n{extra}Connection: close\r\n\r\n")
    };
    let fits = format!("X-A: {}\r\n", "a".repeat(6 * 1024));
    let too_big = format!("X-A: {}\r\n", "a".repeat(9 * 1024));
    let many: String = (0..11).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(
        statuses(&exchange(&addr, head(&fits).as_bytes()).await),
        [200]
    );
    assert_eq!(
        statuses(&exchange(&addr, head(&too_big).as_bytes()).await),
        [431]
    );
    assert_eq!(
        statuses(&exchange(&addr, head(&many).as_bytes()).await),
        [431]
    );
    assert_eq!(upstream.count(), 1);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_never_reach_the_upstream_whole() {
    let (sys, upstream) = start(&["--max-body-bytes", "1024"]).await;
    let token = sys.token(dev_idp::MintRequest::user("alice"));
    let addr = host_port(&sys.gateway_url).to_owned();
    let big = "a".repeat(2000);
    // Declared: refused before anything is sent upstream.
    let declared = format!(
        "POST /todoitems HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {token}\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n{big}"
    );
    assert_eq!(statuses(&exchange(&addr, declared.as_bytes()).await), [413]);
    assert_eq!(upstream.count(), 0);
    // Chunked: cut off as soon as the limit is passed.
    let chunked = format!(
        "POST /todoitems HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    assert_eq!(statuses(&exchange(&addr, chunked.as_bytes()).await), [413]);
    assert!(upstream.seen().iter().all(|s| s.body.len() <= 1024));
    // At the limit: forwarded whole.
    let fits = format!(
        "POST /todoitems HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {token}\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n{}",
        "a".repeat(1024)
    );
    assert_eq!(statuses(&exchange(&addr, fits.as_bytes()).await), [200]);
    assert_eq!(upstream.seen().last().unwrap().body.len(), 1024);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn connections_past_the_limit_wait_for_a_free_slot() {
    let (sys, _upstream) = start(&["--max-connections", "2"]).await;
    let mut held = vec![connect(&sys).await, connect(&sys).await];
    // Both slots are taken once each connection has been served once.
    for stream in &mut held {
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: g\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = tokio::io::AsyncReadExt::read(stream, &mut buf)
            .await
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
    let third = tokio::spawn({
        let addr = host_port(&sys.gateway_url).to_owned();
        async move {
            exchange(
                &addr,
                b"GET /health HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n",
            )
            .await
        }
    });
    // Not served while both slots are held (a bounded look, not a sync point).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "a third connection was served");
    held.pop();
    let text = tokio::time::timeout(BOUND, third).await.unwrap().unwrap();
    assert_eq!(statuses(&text), [200]);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn an_upstream_that_does_not_answer_in_time_gives_504() {
    let (sys, upstream) = start(&["--upstream-timeout-seconds", "1"]).await;
    upstream.set(Behaviour::Hang);
    let started = Instant::now();
    let r = sys
        .http
        .get(format!("{}/health", sys.gateway_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    sys.stop().await.unwrap();
}

/// 1,000 connections each dribbling a request head, one byte at a time,
/// while a normal client is served. The default limits are in force (10 s
/// header read timeout, 10,000 connections).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slowloris_connections_do_not_stop_a_normal_client() {
    const SLOW: usize = 1000;
    let (sys, upstream) = start(&[]).await;
    let addr = host_port(&sys.gateway_url).to_owned();
    let opened = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let mut stop = stop_rx.clone();
        slow.push(tokio::spawn(async move {
            let _ = stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: g\r\nX-Slow: ")
                .await;
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            // Bounded: at most 100 bytes (20 s), or until told to stop.
            for _ in 0..100 {
                tokio::select! {
                    _ = tick.tick() => {
                        if stream.write_all(b"a").await.is_err() {
                            return true; // the gateway cut it
                        }
                    }
                    _ = stop.changed() => return false,
                }
            }
            false
        }));
    }
    let opening = opened.elapsed();
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let r = tokio::time::timeout(
            BOUND,
            sys.http.get(format!("{}/health", sys.gateway_url)).send(),
        )
        .await
        .expect("the normal client was not served")
        .unwrap();
        assert_eq!(r.status(), 200);
        latencies.push(started.elapsed());
    }
    let still_open = slow.iter().filter(|t| !t.is_finished()).count();
    let _ = stop_tx.send(true);
    for task in slow {
        let _ = task.await;
    }
    latencies.sort();
    println!(
        "slowloris: {SLOW} dribbling connections opened in {opening:?}; {still_open} still open \
         while 20 normal requests were served: median {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    assert!(
        still_open > SLOW / 2,
        "the slow connections were not held during the test"
    );
    assert_eq!(upstream.count(), 20);
    sys.stop().await.unwrap();
}
