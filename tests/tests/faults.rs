//! Fault injection on the whole gateway: the identity provider down, slow,
//! answering HTML, an empty or a huge key set, flapping; the upstream
//! refusing, cutting a response short, hanging. In every case protected
//! routes never fail open, and the gateway recovers by itself once the fault
//! ends, without a restart.
//!
//! Key-set behaviour of the `Authenticator` alone (cooldowns, cache
//! eviction, each bad JWKS answer) is in `proxy/tests/auth_keys.rs`; this
//! file checks what a client of the running gateway sees.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dev_idp::MintRequest;
use e2e_tests::recorder::{Behaviour, Recorder};
use e2e_tests::{Options, Relay, System, TENANT};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// How the stand-in in front of the dev IdP answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Pass every request through to the dev IdP.
    None,
    Html,
    EmptyKeySet,
    /// 8 MiB of JSON (the gateway reads at most 1 MiB).
    Huge,
    Status500,
    /// Never answers.
    Hang,
}

/// A tiny server between the gateway and the dev IdP that injects a fault
/// into every discovery and JWKS answer.
#[derive(Clone)]
struct FaultyIdp {
    addr: std::net::SocketAddr,
    fault: Arc<Mutex<Fault>>,
    target: Arc<Mutex<String>>,
}

impl FaultyIdp {
    async fn start() -> FaultyIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let idp = FaultyIdp {
            addr: listener.local_addr().unwrap(),
            fault: Arc::new(Mutex::new(Fault::None)),
            target: Arc::default(),
        };
        let this = idp.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let this = this.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let this = this.clone();
                        async move { Ok::<_, Infallible>(this.answer(req.uri().path()).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        idp
    }

    async fn answer(&self, path: &str) -> hyper::Response<Full<Bytes>> {
        let fault = *self.fault.lock().unwrap();
        let (status, content_type, body) = match fault {
            Fault::None => {
                let url = format!("{}{path}", self.target.lock().unwrap());
                match reqwest::get(url).await {
                    Ok(r) => (
                        r.status().as_u16(),
                        "application/json",
                        r.bytes().await.unwrap_or_default(),
                    ),
                    Err(_) => (502, "text/plain", Bytes::new()),
                }
            }
            Fault::Html => (
                200,
                "text/html",
                Bytes::from_static(b"<html><body>Sign in</body></html>"),
            ),
            Fault::EmptyKeySet => (
                200,
                "application/json",
                Bytes::from_static(b"{\"keys\":[]}"),
            ),
            Fault::Huge => {
                let pad = "x".repeat(8 * 1024 * 1024);
                (
                    200,
                    "application/json",
                    Bytes::from(format!("{{\"keys\":[],\"pad\":\"{pad}\"}}")),
                )
            }
            Fault::Status500 => (500, "application/json", Bytes::from_static(b"{}")),
            Fault::Hang => std::future::pending().await,
        };
        hyper::Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(body))
            .unwrap()
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }
}

/// The system with the gateway reaching the IdP through a [`FaultyIdp`],
/// a 1 s unknown-kid cooldown, and the token cache off, so that every
/// request is checked against the key set the gateway holds right now.
async fn start_with_faulty_idp() -> (System, FaultyIdp, Recorder) {
    let upstream = Recorder::start().await;
    let idp = FaultyIdp::start().await;
    let sys = System::start_with(Options {
        upstream: Some(upstream.url.clone()),
        gateway_args: vec![
            "--metadata-url".into(),
            format!(
                "http://{}/{TENANT}/v2.0/.well-known/openid-configuration",
                idp.addr
            ),
            "--jwks-cooldown-seconds".into(),
            "1".into(),
            "--token-cache-size".into(),
            "0".into(),
        ],
        ..Options::default()
    })
    .await
    .unwrap();
    *idp.target.lock().unwrap() = sys.idp_url.clone();
    // The first fetch may have run before the target was known: load now.
    sys.first_key_fetch().await;
    sys.gateway.authenticator().refresh_keys().await.unwrap();
    (sys, idp, upstream)
}

async fn status(sys: &System, token: Option<&str>) -> u16 {
    let mut req = sys.http.get(format!("{}/todoitems", sys.gateway_url));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap().status().as_u16()
}

/// A genuine token's claims under a signature that does not fit.
fn tampered(token: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    let other = "AAAA".repeat(86);
    parts[2] = &other;
    parts.join(".")
}

/// Sends `token` until it is accepted, waiting for a key fetch to complete
/// between tries; bounded. Returns how many tries it took.
async fn until_accepted(sys: &System, token: &str) -> usize {
    let auth = sys.gateway.authenticator().clone();
    let mut fetches = auth.watch_fetches();
    for attempt in 1..=20 {
        if status(sys, Some(token)).await == 200 {
            return attempt;
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), fetches.changed()).await;
    }
    panic!("the gateway did not recover");
}

#[tokio::test]
async fn idp_faults_never_open_protected_routes_and_the_gateway_recovers_by_itself() {
    let (sys, idp, upstream) = start_with_faulty_idp().await;
    let auth = sys.gateway.authenticator().clone();
    let valid = sys.token(MintRequest::user("alice"));
    assert_eq!(status(&sys, Some(&valid)).await, 200);
    for fault in [
        Fault::Html,
        Fault::EmptyKeySet,
        Fault::Huge,
        Fault::Status500,
    ] {
        idp.set(fault);
        assert!(
            auth.refresh_keys().await.is_err(),
            "{fault:?} was accepted as keys"
        );
        // The last good keys stay: valid tokens pass, bad ones never do.
        assert_eq!(status(&sys, Some(&valid)).await, 200, "{fault:?}");
        assert_eq!(
            status(&sys, Some(&tampered(&valid))).await,
            401,
            "{fault:?}"
        );
        assert_eq!(status(&sys, None).await, 401, "{fault:?}");
        // Keys rotate at the IdP while the gateway cannot see them: a token
        // under the new key is refused, never let through.
        sys.idp.rotate_keys().unwrap();
        let rotated = sys.token(MintRequest::user("bob"));
        assert_eq!(status(&sys, Some(&rotated)).await, 401, "{fault:?}");
        // The fault ends: an unknown kid asks for a fetch (1 s cooldown), and
        // the new key is picked up without a restart.
        idp.set(Fault::None);
        until_accepted(&sys, &rotated).await;
    }
    assert!(auth.keys_loaded());
    assert!(
        upstream
            .seen()
            .iter()
            .all(|s| !s.all("x-user-id").is_empty())
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_hanging_idp_delays_only_unknown_kids_and_never_admits_them() {
    let (sys, idp, _upstream) = start_with_faulty_idp().await;
    let valid = sys.token(MintRequest::user("alice"));
    idp.set(Fault::Hang);
    sys.idp.rotate_keys().unwrap();
    let rotated = sys.token(MintRequest::user("bob"));
    // Known keys: answered at once although the IdP hangs.
    let started = Instant::now();
    assert_eq!(status(&sys, Some(&valid)).await, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // An unknown kid waits a bounded time for the fetch it asked for, then 401.
    let started = Instant::now();
    assert_eq!(status(&sys, Some(&rotated)).await, 401);
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    idp.set(Fault::None);
    until_accepted(&sys, &rotated).await;
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_flapping_idp_never_lets_a_bad_token_through_nor_drops_good_keys() {
    let upstream = Recorder::start().await;
    let sys = System::start_with(Options {
        upstream: Some(upstream.url.clone()),
        idp_relay: Some(true),
        gateway_args: vec!["--jwks-cooldown-seconds".into(), "1".into()],
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    let relay = sys.relay.clone().unwrap();
    let auth = sys.gateway.authenticator().clone();
    let valid = sys.token(MintRequest::user("alice"));
    let bad = tampered(&valid);
    let mut statuses = Vec::new();
    for round in 0..40 {
        relay.set_up(round % 2 == 0);
        // Refreshes race the flapping, and so do requests.
        let refresh = {
            let auth = auth.clone();
            tokio::spawn(async move { auth.refresh_keys().await.is_ok() })
        };
        let (good, forged) = tokio::join!(status(&sys, Some(&valid)), status(&sys, Some(&bad)));
        statuses.push((good, forged));
        let _ = refresh.await;
    }
    assert!(statuses.iter().all(|&s| s == (200, 401)), "{statuses:?}");
    assert!(auth.keys_loaded());
    relay.set_up(true);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn upstream_refusing_resetting_or_hanging_gives_502_or_504_and_recovers() {
    let upstream = Recorder::start().await;
    let relay = Relay::start(upstream.addr, true).await.unwrap();
    let sys = System::start_with(Options {
        upstream: Some(format!("http://{}", relay.addr)),
        gateway_args: vec!["--upstream-timeout-seconds".into(), "1".into()],
        ..Options::default()
    })
    .await
    .unwrap();
    let valid = sys.token(MintRequest::user("alice"));
    assert_eq!(status(&sys, Some(&valid)).await, 200);

    // Refusing (the relay closes every connection at once): 502, and a
    // protected route still wants a token first.
    relay.set_up(false);
    assert_eq!(status(&sys, Some(&valid)).await, 502);
    assert_eq!(status(&sys, None).await, 401);
    assert_eq!(status(&sys, Some(&tampered(&valid))).await, 401);
    relay.set_up(true);
    assert_eq!(status(&sys, Some(&valid)).await, 200);

    // Hanging: 504 after the upstream timeout.
    upstream.set(Behaviour::Hang);
    assert_eq!(status(&sys, Some(&valid)).await, 504);
    assert_eq!(status(&sys, None).await, 401);

    // Cut short after the head: the client sees a broken body, never a
    // complete one.
    upstream.set(Behaviour::CutShort);
    let r = sys
        .http
        .get(format!("{}/todoitems", sys.gateway_url))
        .bearer_auth(&valid)
        .send()
        .await;
    let complete = match r {
        Ok(r) => r.bytes().await.map(|b| b.len() == 1000).unwrap_or(false),
        Err(_) => false,
    };
    assert!(!complete, "a cut response arrived whole");

    // Every fault over: served again, no restart.
    upstream.set(Behaviour::Answer);
    assert_eq!(status(&sys, Some(&valid)).await, 200);
    let seen = upstream.seen();
    assert!(
        seen.iter()
            .all(|s| s.all("x-user-id") == ["a11ce000-0000-4000-8000-000000000001"])
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn an_upstream_refusing_connections_gives_502_quickly() {
    let closed = e2e_tests::RefusingAddr::new();
    let sys = System::start_with(Options {
        upstream: Some(format!("http://{}", closed.addr)),
        ..Options::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    let r = sys
        .http
        .get(format!("{}/health", sys.gateway_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(started.elapsed() < Duration::from_secs(3));
    let valid = sys.token(MintRequest::user("alice"));
    assert_eq!(status(&sys, Some(&valid)).await, 502);
    assert_eq!(status(&sys, None).await, 401);
    sys.stop().await.unwrap();
}
