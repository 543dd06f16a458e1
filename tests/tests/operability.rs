//! Operability through the whole system: `/metrics` after a scripted mix of
//! requests, the JSON access log field by field, request ids end to end, and
//! the status page (with a headless-Chromium screenshot for the README when
//! Debian's `chromium` is installed).
//!
//! The log is captured in-process: this test binary installs the gateway's
//! own JSON subscriber ([`authz_proxy::logging::init_with`]) writing to a
//! buffer, and each test finds its lines by request id.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use authz_proxy::logging::LogFormat;
use base64::Engine as _;
use dev_idp::MintRequest;
use e2e_tests::{Options, System};
use serde_json::Value;
use tokio::sync::watch;

/// Everything the subscriber wrote, and a counter that moves on each write.
struct Captured {
    text: Mutex<Vec<u8>>,
    writes: watch::Sender<u64>,
}

struct CaptureWriter(Arc<Captured>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.text.lock().unwrap().extend_from_slice(buf);
        self.0.writes.send_modify(|n| *n += 1);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide capture, installed on first use.
fn captured() -> Arc<Captured> {
    static CAPTURED: OnceLock<Arc<Captured>> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Arc::new(Captured {
                text: Mutex::new(Vec::new()),
                writes: watch::Sender::new(0),
            });
            let sink = Arc::clone(&captured);
            authz_proxy::logging::init_with(
                LogFormat::Json,
                "info",
                move || CaptureWriter(Arc::clone(&sink)),
                false,
            )
            .expect("the only subscriber of this test binary");
            captured
        })
        .clone()
}

/// Every captured JSON line that `pick` selects.
fn lines_where(pick: impl Fn(&Value) -> bool) -> Vec<Value> {
    let captured = captured();
    let text = captured.text.lock().unwrap();
    String::from_utf8_lossy(&text)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("every log line is JSON"))
        .filter(|v| pick(v))
        .collect()
}

/// Waits (on writes, not on a clock) until the access log line of request
/// `id` is there, and returns it.
async fn access_line(id: &str) -> Value {
    let is_it = |v: &Value| v["target"] == "access" && v["request_id"] == id;
    let mut writes = captured().writes.subscribe();
    let wait = async {
        loop {
            if let Some(line) = lines_where(is_it).pop() {
                return line;
            }
            writes.changed().await.expect("capture lives");
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("no access log line for request {id}"))
}

/// The raw access log text of request `id`, for "never a token" checks.
async fn access_text(id: &str) -> String {
    access_line(id).await.to_string()
}

async fn start() -> System {
    captured();
    let sys = System::start().await.expect("system starts");
    sys.first_key_fetch().await;
    sys
}

/// One request through the gateway; returns status, response `X-Request-Id`
/// and the body.
async fn send(
    sys: &System,
    client: &reqwest::Client,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    request_id: Option<&str>,
) -> (u16, String, String) {
    let mut req = client.request(method, format!("{}{path}", sys.gateway_url));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(id) = request_id {
        req = req.header("x-request-id", id);
    }
    let response = req.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("x-request-id")
        .expect("every response carries X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned();
    (status, id, response.text().await.unwrap())
}

/// `/metrics` parsed into `series → value` (series as written, labels included).
async fn scrape(sys: &System) -> HashMap<String, f64> {
    let response = sys
        .http
        .get(format!("{}/metrics", sys.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    response
        .text()
        .await
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

fn requests(route: &str, method: &str, decision: &str, status: u16) -> String {
    format!(
        "authz_proxy_requests_total{{route=\"{route}\",method=\"{method}\",decision=\"{decision}\",status=\"{status}\"}}"
    )
}

/// The claims of a dev-idp token, to compare with what the log says.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn metrics_move_exactly_as_a_scripted_mix_of_requests_says() {
    let sys = start().await;
    let client = reqwest::Client::new();
    let alice = sys.token(MintRequest::user("alice"));
    let expired = sys.token(MintRequest {
        expired: true,
        ..MintRequest::user("alice")
    });
    use reqwest::Method as M;
    let script: [(M, &str, Option<&str>, u16); 8] = [
        (M::GET, "/todoitems", Some(&alice), 200), // cache miss, verified
        (M::GET, "/todoitems", Some(&alice), 200), // cache hit
        (M::GET, "/todoitems", None, 401),         // missing_token
        (M::GET, "/todoitems", Some(&expired), 401), // cache miss, expired
        (M::DELETE, "/todoitems", Some(&alice), 403), // cache hit, missing_role
        (M::GET, "/nowhere", Some(&alice), 404),   // no_route: no lookup
        (M::PUT, "/todoitems", None, 405),         // method_not_allowed
        (M::GET, "/health", None, 200),            // anonymous: no lookup
    ];
    for (method, path, token, expected) in script {
        let (status, _, body) = send(&sys, &client, method.clone(), path, token, None).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }

    let m = scrape(&sys).await;
    let expect = [
        (requests("todos", "GET", "allow", 200), 2.0),
        (requests("todos", "GET", "deny", 401), 2.0),
        (requests("delete-all", "DELETE", "deny", 403), 1.0),
        (requests("", "GET", "deny", 404), 1.0),
        (requests("", "PUT", "deny", 405), 1.0),
        (requests("health", "GET", "allow", 200), 1.0),
        (
            r#"authz_proxy_denials_total{reason="missing_token"}"#.into(),
            1.0,
        ),
        (r#"authz_proxy_denials_total{reason="expired"}"#.into(), 1.0),
        (
            r#"authz_proxy_denials_total{reason="missing_role"}"#.into(),
            1.0,
        ),
        (
            r#"authz_proxy_denials_total{reason="no_route"}"#.into(),
            1.0,
        ),
        (
            r#"authz_proxy_denials_total{reason="method_not_allowed"}"#.into(),
            1.0,
        ),
        (
            r#"authz_proxy_denials_total{reason="bad_signature"}"#.into(),
            0.0,
        ),
        (
            r#"authz_proxy_upstream_errors_total{kind="connect"}"#.into(),
            0.0,
        ),
        (
            r#"authz_proxy_upstream_duration_seconds_count{route="todos"}"#.into(),
            2.0,
        ),
        (
            r#"authz_proxy_upstream_duration_seconds_count{route="health"}"#.into(),
            1.0,
        ),
        (
            r#"authz_proxy_gateway_duration_seconds_count{route="todos"}"#.into(),
            4.0,
        ),
        (
            r#"authz_proxy_gateway_duration_seconds_count{route=""}"#.into(),
            2.0,
        ),
        (
            r#"authz_proxy_jwks_fetches_total{outcome="success"}"#.into(),
            1.0,
        ),
        (
            r#"authz_proxy_jwks_fetches_total{outcome="failure"}"#.into(),
            0.0,
        ),
        (
            r#"authz_proxy_token_cache_lookups_total{result="hit"}"#.into(),
            2.0,
        ),
        (
            r#"authz_proxy_token_cache_lookups_total{result="miss"}"#.into(),
            2.0,
        ),
        ("authz_proxy_token_cache_size".into(), 1.0),
        (
            r#"authz_proxy_policy_reloads_total{outcome="applied"}"#.into(),
            0.0,
        ),
    ];
    for (series, value) in &expect {
        assert_eq!(m.get(series), Some(value), "{series}");
    }
    let requests_total: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("authz_proxy_requests_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(requests_total, 8.0, "one count per request");
    // Whether the client reused one connection is its business; the gateway
    // counts each it accepted, and none of them has closed.
    let accepted = m["authz_proxy_connections_total"];
    assert!(accepted >= 1.0);
    assert_eq!(m["authz_proxy_open_connections"], accepted);
    assert!(m["authz_proxy_jwks_keys"] >= 1.0);
    assert!(m["authz_proxy_jwks_seconds_since_last_refresh"] >= 0.0);
    let policy = std::fs::read(e2e_tests::repo_policy()).unwrap();
    let hash = authz_proxy::metrics::policy_hash(&policy);
    assert_eq!(
        m.get(&format!("authz_proxy_policy_info{{hash=\"{hash}\"}}")),
        Some(&1.0)
    );

    // The reload hook moves the reload counter and the hash.
    sys.gateway
        .record_reload(authz_proxy::metrics::ReloadOutcome::Applied, "abc123");
    let m = scrape(&sys).await;
    assert_eq!(
        m.get(r#"authz_proxy_policy_reloads_total{outcome="applied"}"#),
        Some(&1.0)
    );
    assert_eq!(
        m.get(r#"authz_proxy_policy_info{hash="abc123"}"#),
        Some(&1.0)
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn access_log_lines_are_json_with_every_field_and_never_a_token() {
    let sys = start().await;
    let client = reqwest::Client::new();
    let alice = sys.token(MintRequest::user("alice"));
    let alice_claims = claims(&alice);

    // Allowed, through a path that normalises to /todoitems.
    let (status, id, body) = send(
        &sys,
        &client,
        reqwest::Method::GET,
        "/%74odoitems?secret=in-the-query",
        Some(&alice),
        Some("log-allowed-1"),
    )
    .await;
    assert_eq!((status, id.as_str()), (200, "log-allowed-1"), "{body}");
    let line = access_line("log-allowed-1").await;
    let fields: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected_fields = vec![
        "timestamp",
        "level",
        "target",
        "request_id",
        "client",
        "method",
        "path",
        "route",
        "decision",
        "reason",
        "user_id",
        "tenant_id",
        "app_id",
        "status",
        "bytes",
        "gateway_us",
        "upstream_us",
        "total_us",
    ];
    let mut sorted = fields.clone();
    sorted.sort_unstable();
    expected_fields.sort_unstable();
    assert_eq!(sorted, expected_fields, "{line}");
    assert!(line["timestamp"].as_str().unwrap().starts_with("20"));
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["client"], "127.0.0.1");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/todoitems", "normalised, without the query");
    assert_eq!(line["route"], "todos");
    assert_eq!(line["decision"], "allow");
    assert_eq!(line["reason"], "allowed");
    assert_eq!(line["user_id"], alice_claims["oid"]);
    assert_eq!(line["tenant_id"], alice_claims["tid"]);
    assert_eq!(line["app_id"], alice_claims["azp"]);
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], body.len() as u64);
    let (gateway, upstream, total) = (
        line["gateway_us"].as_u64().unwrap(),
        line["upstream_us"].as_u64().unwrap(),
        line["total_us"].as_u64().unwrap(),
    );
    assert!(gateway + upstream <= total, "{line}");
    let text = line.to_string();
    assert!(!text.contains(&alice) && !text.contains("in-the-query"));

    // Denied: a wrong role names the caller; no token names nobody.
    let (status, _, _) = send(
        &sys,
        &client,
        reqwest::Method::DELETE,
        "/todoitems",
        Some(&alice),
        Some("log-denied-role"),
    )
    .await;
    assert_eq!(status, 403);
    let line = access_line("log-denied-role").await;
    assert_eq!(
        (
            &line["route"],
            &line["decision"],
            &line["reason"],
            &line["status"]
        ),
        (
            &"delete-all".into(),
            &"deny".into(),
            &"missing_role".into(),
            &403.into()
        )
    );
    assert_eq!(line["user_id"], alice_claims["oid"]);
    assert!(line.get("upstream_us").is_none(), "never forwarded: {line}");
    assert!(!access_text("log-denied-role").await.contains(&alice));

    let forged = format!("{alice}x");
    let (status, _, body) = send(
        &sys,
        &client,
        reqwest::Method::GET,
        "/todoitems",
        Some(&forged),
        Some("log-denied-signature"),
    )
    .await;
    assert_eq!(status, 401);
    let line = access_line("log-denied-signature").await;
    assert_eq!(line["reason"], "bad_signature");
    assert_eq!(line["bytes"], body.len() as u64);
    for absent in ["user_id", "tenant_id", "app_id", "upstream_us"] {
        assert!(line.get(absent).is_none(), "{absent} in {line}");
    }
    assert!(!line.to_string().contains(&alice[..40]));
    sys.stop().await.unwrap();
}

/// An upstream that answers every request with the headers it received, as
/// a JSON object (names lowercase; repeated headers joined with `, `).
async fn echo_upstream() -> SocketAddr {
    use warp::Filter as _;
    let route = warp::any()
        .and(warp::header::headers_cloned())
        .map(|headers: http::HeaderMap| {
            let mut seen: HashMap<String, String> = HashMap::new();
            for (name, value) in &headers {
                let value = value.to_str().unwrap_or("?").to_owned();
                seen.entry(name.as_str().to_owned())
                    .and_modify(|v| {
                        v.push_str(", ");
                        v.push_str(&value);
                    })
                    .or_insert(value);
            }
            warp::reply::json(&seen)
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    addr
}

#[tokio::test]
async fn request_ids_are_kept_or_generated_passed_upstream_and_returned() {
    captured();
    let upstream = echo_upstream().await;
    let sys = System::start_with(Options {
        upstream: Some(format!("http://{upstream}")),
        ..Options::default()
    })
    .await
    .unwrap();
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    // A well-formed id is kept, sent upstream and returned; traceparent untouched.
    let response = sys
        .http
        .get(format!("{}/health", sys.gateway_url))
        .header("x-request-id", "client-id-42")
        .header("traceparent", traceparent)
        .header("tracestate", "congo=t61rcWkgMzE")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-id-42");
    let seen: HashMap<String, String> = response.json().await.unwrap();
    assert_eq!(seen["x-request-id"], "client-id-42");
    assert_eq!(seen["traceparent"], traceparent);
    assert_eq!(seen["tracestate"], "congo=t61rcWkgMzE");
    assert_eq!(access_line("client-id-42").await["status"], 200);

    // A malformed id is replaced by a generated one, the same everywhere.
    for bad in ["has spaces", "<script>", &"x".repeat(200)] {
        let response = sys
            .http
            .get(format!("{}/health", sys.gateway_url))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let returned = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(returned, bad);
        assert_eq!(returned.len(), 36, "a UUID: {returned}");
        let seen: HashMap<String, String> = response.json().await.unwrap();
        assert_eq!(seen["x-request-id"], returned);
        assert_eq!(access_line(&returned).await["path"], "/health");
    }

    // None sent: generated, and on the gateway's own error responses too.
    let (status, generated, _) = send(
        &sys,
        &sys.http,
        reqwest::Method::GET,
        "/todoitems",
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(access_line(&generated).await["reason"], "missing_token");
    let (status, kept, _) = send(
        &sys,
        &sys.http,
        reqwest::Method::GET,
        "/nowhere",
        None,
        Some("denied-id-7"),
    )
    .await;
    assert_eq!((status, kept.as_str()), (404, "denied-id-7"));
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_upstream_is_counted_and_logged_with_the_request_id() {
    captured();
    // A port that was just free: nothing listens there any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let sys = System::start_with(Options {
        upstream: Some(format!("http://{closed}")),
        ..Options::default()
    })
    .await
    .unwrap();
    let (status, _, _) = send(
        &sys,
        &sys.http,
        reqwest::Method::GET,
        "/health",
        None,
        Some("upstream-down-1"),
    )
    .await;
    assert_eq!(status, 502);
    let line = access_line("upstream-down-1").await;
    assert_eq!(
        (&line["decision"], &line["reason"], &line["upstream_error"]),
        (
            &"error".into(),
            &"upstream_unavailable".into(),
            &"connect".into()
        )
    );
    // The warning logged during the request carries its id too.
    let warnings =
        lines_where(|v| v["level"] == "WARN" && v["span"]["request_id"] == "upstream-down-1");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let m = scrape(&sys).await;
    assert_eq!(
        m.get(r#"authz_proxy_upstream_errors_total{kind="connect"}"#),
        Some(&1.0)
    );
    assert_eq!(m.get(&requests("health", "GET", "error", 502)), Some(&1.0));
    assert_eq!(
        m.get(r#"authz_proxy_denials_total{reason="no_route"}"#),
        Some(&0.0)
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn status_page_shows_routes_denials_and_key_health_escaped() {
    let sys = start().await;
    let client = reqwest::Client::new();
    let alice = sys.token(MintRequest::user("alice"));
    let bob = sys.token(MintRequest::user("bob"));
    let daemon = sys.token(MintRequest::app("daemon"));
    use reqwest::Method as M;
    // A morning's mix: work, a few mistakes, a probe.
    let script: Vec<(M, &str, Option<&str>)> = vec![
        (M::GET, "/health", None),
        (M::GET, "/todoitems", Some(&alice)),
        (M::GET, "/todoitems", Some(&alice)),
        (M::GET, "/todoitems", Some(&bob)),
        (M::DELETE, "/todoitems", Some(&bob)),
        (M::GET, "/todoitems/1", Some(&alice)),
        (M::GET, "/todoitems", None),
        (M::DELETE, "/todoitems", Some(&alice)),
        (M::GET, "/todoitems", Some(&daemon)),
        (M::GET, "/admin&debug=<1>", None),
        (M::PATCH, "/todoitems", Some(&alice)),
        (M::GET, "/todoitems", Some("not-a-jwt")),
    ];
    for (method, path, token) in script {
        send(&sys, &client, method, path, token, None).await;
    }
    let response = sys
        .http
        .get(format!("{}/", sys.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = response.text().await.unwrap();
    for route in ["health", "docs", "todos", "delete-all", "one-todo"] {
        assert!(html.contains(&format!("<code>{route}</code>")), "{route}");
    }
    for reason in [
        "missing_token",
        "missing_role",
        "missing_scope",
        "no_route",
        "method_not_allowed",
        "malformed_token",
    ] {
        assert!(html.contains(&format!("<code>{reason}</code>")), "{reason}");
    }
    let alice_oid = claims(&alice)["oid"].as_str().unwrap().to_owned();
    assert!(html.contains(&alice_oid), "recent denials name the user");
    assert!(html.contains("/admin&amp;debug="), "paths are escaped");
    assert!(!html.contains("<1>") && !html.contains("<script"));
    for token in [&alice, &bob, &daemon] {
        assert!(!html.contains(&token[..40]), "never a token");
    }
    assert!(html.contains("Signing keys") && html.contains("succeeded, 0 failed"));
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "no external resources"
    );

    screenshot(&sys.admin_url).await;
    sys.stop().await.unwrap();
}

/// A PNG of the status page for the README, when Debian's `chromium` is
/// installed (CI installs it); without it there is nothing to take.
async fn screenshot(admin_url: &str) {
    let chromium = PathBuf::from("/usr/bin/chromium");
    if !chromium.exists() {
        let _ = writeln!(std::io::stderr(), "chromium not installed: no screenshot");
        return;
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&target).unwrap();
    let png = target.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("{admin_url}/"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().expect("chromium starts");
    let pid = child.id();
    let waited = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await;
    let status = match waited {
        Ok(joined) => joined.unwrap().expect("chromium exits"),
        Err(_) => {
            // Ours to end: the one process this test started.
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("chromium took more than 120 s");
        }
    };
    drop(profile);
    assert!(status.success(), "chromium failed: {status}");
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
}
