//! Several upstreams behind one gateway (`upstreams:` in `policy.yaml`):
//! each route reaches exactly its upstream, with its prefix stripped, its
//! `Host`, its timeout and its body limit; a reload swaps upstreams with the
//! routes, letting requests already sent finish on the old one. https
//! upstreams (TLS, mTLS, ALPN) are in `upstreams/tls.rs`.

mod tls;

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use authz_proxy::reload::{ReloadResult, Trigger};
use bytes::Bytes;
use e2e_tests::recorder::{Behaviour, Recorder};
use e2e_tests::{Options, System};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

/// The default upstream (`--upstream`) serves `/health`; `reports` and
/// `mirror` are named.
fn policy(reports: &str, mirror: &str) -> String {
    format!(
        "\
version: 1
upstreams:
  reports:
    url: {reports}
    strip_prefix: /reports
    timeout_seconds: 1
  mirror: {{url: '{mirror}', host: client}}
routes:
  - {{name: health, path: /health, methods: [GET], allow: anonymous}}
  - name: reports
    paths: [/reports, /reports/**]
    methods: [GET, POST]
    allow: anonymous
    upstream: reports
    max_body_bytes: 8
  - {{name: mirror, path: /mirror, methods: [GET], allow: anonymous, upstream: mirror}}
"
    )
}

async fn start(file: &Path, default: &Recorder) -> System {
    System::start_with(Options {
        policy: file.to_path_buf(),
        upstream: Some(default.url.clone()),
        // Reloads only when the test says so.
        gateway_args: vec!["--policy-poll-seconds".into(), "0".into()],
        ..Options::default()
    })
    .await
    .unwrap()
}

async fn send(sys: &System, method: reqwest::Method, path: &str, body: &'static str) -> u16 {
    sys.http
        .request(method, format!("{}{path}", sys.gateway_url))
        .header("X-Forwarded-Prefix", "/forged")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn each_route_reaches_its_own_upstream_with_its_own_settings() {
    let (default, reports, mirror) = (
        Recorder::start().await,
        Recorder::start().await,
        Recorder::start().await,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy(&reports.url, &mirror.url)).unwrap();
    let sys = start(&file, &default).await;
    let get = reqwest::Method::GET;

    assert_eq!(send(&sys, get.clone(), "/health", "").await, 200);
    assert_eq!(
        send(&sys, get.clone(), "/reports/2026/q4?x=1", "").await,
        200
    );
    assert_eq!(send(&sys, get.clone(), "/reports", "").await, 200);
    let (status, _) = sys
        .raw("GET /mirror HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(status, 200);

    let seen = default.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/health");
    assert_eq!(seen[0].all("host"), [default.addr.to_string()]);
    assert!(seen[0].all("x-forwarded-prefix").is_empty());

    let seen = reports.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["/2026/q4?x=1", "/"]);
    for request in &seen {
        assert_eq!(request.all("x-forwarded-prefix"), ["/reports"]);
        assert_eq!(request.all("host"), [reports.addr.to_string()]);
    }

    let seen = mirror.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].all("host"), ["api.example"]);

    // The route's own body limit, before anything is sent, and while streaming.
    let post = reqwest::Method::POST;
    assert_eq!(
        send(&sys, post.clone(), "/reports/in", "123456789").await,
        413
    );
    assert_eq!(
        send(&sys, post.clone(), "/reports/in", "12345678").await,
        200
    );
    assert_eq!(reports.count(), 3);

    // The upstream's own timeout (1 s, not the global 30 s): 504.
    reports.set(Behaviour::Hang);
    assert_eq!(send(&sys, get, "/reports/slow", "").await, 504);
    sys.stop().await.unwrap();
}

/// An upstream that answers each request only when told to, and says when
/// one has arrived.
async fn gated_upstream() -> (String, mpsc::UnboundedReceiver<()>, Arc<Notify>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (arrived_tx, arrived) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (arrived, gate) = (arrived_tx.clone(), gate.clone());
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    let (arrived, gate) = (arrived.clone(), gate.clone());
                    async move {
                        let _ = arrived.send(());
                        gate.notified().await;
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("old"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, arrived, release)
}

#[tokio::test]
async fn a_reload_swaps_upstreams_and_lets_requests_in_flight_finish() {
    let (default, replacement) = (Recorder::start().await, Recorder::start().await);
    let (old_url, mut arrived, release) = gated_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy(&old_url, &replacement.url)).unwrap();
    let sys = start(&file, &default).await;

    // Sent before the reload, answered after it.
    let in_flight = tokio::spawn({
        let (http, url) = (sys.http.clone(), format!("{}/reports/a", sys.gateway_url));
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });
    arrived.recv().await.unwrap();

    // `reports` now points at the replacement.
    std::fs::write(&file, policy(&replacement.url, &replacement.url)).unwrap();
    assert!(matches!(
        sys.reloader.reload(Trigger::Signal),
        ReloadResult::Applied { .. }
    ));
    release.notify_one();
    assert_eq!(in_flight.await.unwrap(), (200, "old".to_owned()));

    assert_eq!(
        send(&sys, reqwest::Method::GET, "/reports/b", "").await,
        200
    );
    let paths: Vec<String> = replacement.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/b"]);
    assert!(
        arrived.try_recv().is_err(),
        "nothing more reached the old upstream"
    );
    sys.stop().await.unwrap();
}
