//! The decision endpoint behind real ingresses: Debian's nginx
//! (`auth_request`) and Caddy (`forward_auth`) run the shipped
//! `deploy/nginx/authz-proxy.conf` and `deploy/caddy/Caddyfile`, with only
//! their addresses changed to this test's ports, in front of the todo
//! backend, and ask the gateway's decision endpoint about every request.
//!
//! Between the ingress and the backend sits a relay that records every byte
//! sent to the backend: what a client forged must never be in it.
//!
//! With `CI` set, a missing nginx or caddy fails the test (`scripts/test.sh`
//! installs both); without it, the test says why it skips.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dev_idp::MintRequest;
use e2e_tests::{Options, System, raw_request};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// alice: a signed-in user with the `User` role, not `Admin`.
const ALICE_OID: &str = "a11ce000-0000-4000-8000-000000000001";

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// The ingress binary, if installed. In CI its absence is a failure.
fn ingress_binary(name: &str, also: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(name));
    let found = on_path
        .chain(also.iter().map(PathBuf::from))
        .find(|p| p.is_file());
    if found.is_none() {
        // Set by CI runners (`CI=true`); `CI=false` or empty is a local run.
        if std::env::var("CI").is_ok_and(|ci| !matches!(ci.as_str(), "" | "0" | "false")) {
            panic!("{name} is not installed: CI must run this test (scripts/test.sh installs it)");
        }
        eprintln!(
            "skipping: {name} is not installed (apt-get install {name}; with CI set this fails)"
        );
    }
    found
}

/// The shipped file with each `(from, to)` replaced; every `from` must be
/// in it, so that a change to the file cannot silently leave the test
/// running something else.
fn template(file: &Path, replacements: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(file).unwrap();
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "{} no longer contains {from:?}",
            file.display()
        );
        text = text.replace(from, to);
    }
    text
}

/// A free loopback port for the ingress to listen on.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A running ingress, killed when dropped.
struct Ingress {
    name: &'static str,
    addr: SocketAddr,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ingress {
    /// Starts `command` and polls its port until it accepts connections.
    async fn start(
        name: &'static str,
        mut command: Command,
        addr: SocketAddr,
        dir: tempfile::TempDir,
        log: PathBuf,
    ) -> Ingress {
        let output = std::fs::File::create(dir.path().join("output.log")).unwrap();
        command
            .stdout(Stdio::from(output.try_clone().unwrap()))
            .stderr(Stdio::from(output))
            .kill_on_drop(true);
        let child = command.spawn().unwrap();
        let mut ingress = Ingress {
            name,
            addr,
            child,
            log,
            _dir: dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(addr).await.is_ok() {
                return ingress;
            }
            if let Ok(Some(status)) = ingress.child.try_wait() {
                panic!("{name} exited with {status}:\n{}", ingress.logs());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} not listening:\n{}",
                ingress.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The ingress's output and error log, for a failure message.
    fn logs(&self) -> String {
        let dir = self._dir.path();
        let output = std::fs::read_to_string(dir.join("output.log")).unwrap_or_default();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        format!(
            "--- {} output\n{output}\n--- {} log\n{log}",
            self.name, self.name
        )
    }
}

/// nginx with `deploy/nginx/authz-proxy.conf`, in the foreground, as one
/// process (so that killing it leaves no worker behind), every path in a
/// temporary directory.
async fn nginx(decision: &str, backend: SocketAddr) -> Option<Ingress> {
    let binary = ingress_binary("nginx", &["/usr/sbin/nginx"])?;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let site = template(
        &deploy("nginx/authz-proxy.conf"),
        &[
            ("server 127.0.0.1:9100;", format!("server {decision};")),
            ("server 127.0.0.1:8081;", format!("server {backend};")),
            ("listen 80;", format!("listen 127.0.0.1:{port};")),
        ],
    );
    let d = dir.path().display();
    std::fs::write(dir.path().join("authz-proxy.conf"), site).unwrap();
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "master_process off;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               access_log {d}/access.log;\n\
               client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               include {d}/authz-proxy.conf;\n\
             }}\n"
        ),
    )
    .unwrap();
    let mut command = Command::new(binary);
    command
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-p")
        .arg(format!("{d}/"))
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .arg("-g")
        .arg("daemon off;");
    let log = dir.path().join("error.log");
    let addr = ([127, 0, 0, 1], port).into();
    Some(Ingress::start("nginx", command, addr, dir, log).await)
}

/// Caddy with `deploy/caddy/Caddyfile`: no admin endpoint, plain HTTP on a
/// loopback port, its home and data directories temporary.
async fn caddy(decision: &str, backend: SocketAddr) -> Option<Ingress> {
    let binary = ingress_binary("caddy", &["/usr/bin/caddy"])?;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let site = template(
        &deploy("caddy/Caddyfile"),
        &[
            (
                "forward_auth 127.0.0.1:9100",
                format!("forward_auth {decision}"),
            ),
            (
                "reverse_proxy 127.0.0.1:8081",
                format!("reverse_proxy {backend}"),
            ),
            ("api.example.com {", format!("http://127.0.0.1:{port} {{")),
        ],
    );
    let file = dir.path().join("Caddyfile");
    std::fs::write(
        &file,
        format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}"),
    )
    .unwrap();
    let mut command = Command::new(binary);
    command
        .arg("run")
        .arg("--config")
        .arg(&file)
        .arg("--adapter")
        .arg("caddyfile")
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"));
    let log = dir.path().join("output.log");
    let addr = ([127, 0, 0, 1], port).into();
    Some(Ingress::start("caddy", command, addr, dir, log).await)
}

/// A TCP relay in front of the backend that keeps every byte sent to it.
#[derive(Clone)]
struct Tap {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Tap {
    async fn start(backend: &str) -> Tap {
        let backend: SocketAddr = backend.trim_start_matches("http://").parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tap = Tap {
            addr: listener.local_addr().unwrap(),
            sent: Arc::default(),
        };
        let sent = tap.sent.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let sent = sent.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let (mut in_read, mut in_write) = inbound.into_split();
                    let (mut out_read, mut out_write) = outbound.into_split();
                    let up = async {
                        let mut buf = [0u8; 8192];
                        while let Ok(n @ 1..) = in_read.read(&mut buf).await {
                            sent.lock().unwrap().extend_from_slice(&buf[..n]);
                            if out_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = out_write.shutdown().await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
                        let _ = in_write.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        tap
    }

    /// Everything sent to the backend so far, lowercased.
    fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).to_ascii_lowercase()
    }
}

async fn system() -> (System, Tap) {
    let sys = System::start_with(Options {
        decision: true,
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    let tap = Tap::start(&sys.backend_url).await;
    (sys, tap)
}

/// One call: status, the named response header, the body as JSON.
async fn call(
    http: &reqwest::Client,
    url: String,
    method: Method,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<Value>,
    header: &str,
) -> (u16, String, Value) {
    let mut req = http.request(method, url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let response = req.send().await.expect("ingress answers");
    let status = response.status().as_u16();
    // Every value, so that a header sent twice shows.
    let value = response
        .headers()
        .get_all(header)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(" | ");
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value, json)
}

/// What a client may forge, on every request below.
const FORGED: &[(&str, &str)] = &[
    ("X-User-Id", "forged-id"),
    ("x-user-roles", "Admin,forged"),
    ("X-User-Name", "forged"),
    ("X-User-Assertion", "forged.assertion.value"),
    ("X_User_Id", "forged-underscore"),
    ("X-Authz-Path", "/forged"),
    ("X-Original-URI", "/health?forged"),
    ("X-Forwarded-Uri", "/health?forged"),
    ("X-HTTP-Method-Override", "forged"),
];

/// The sample's flow through `ingress`, and its path tricks decided as the
/// gateway decides them.
async fn the_sample_flow_through(ingress: &Ingress, sys: &System, tap: &Tap) {
    let name = ingress.name;
    let http = &sys.http;
    let base = ingress.url();
    let alice = sys.token(MintRequest::user("alice"));

    // 401 without a token: the gateway's challenge and JSON body.
    let (status, challenge, body) = call(
        http,
        format!("{base}/todoitems"),
        Method::GET,
        None,
        FORGED,
        None,
        "www-authenticate",
    )
    .await;
    assert_eq!(
        (status, challenge.as_str()),
        (401, "Bearer"),
        "{name}: {body}"
    );
    assert!(body["detail"].is_string(), "{name}: {body}");

    // 201 as a user: the owner is the token's, not the forged one.
    let (status, _, created) = call(
        http,
        format!("{base}/todoitems"),
        Method::POST,
        Some(&alice),
        FORGED,
        Some(json!({"item": {"name": "Walk the dog"}})),
        "x-request-id",
    )
    .await;
    assert_eq!(status, 201, "{name}: {created}\n{}", ingress.logs());
    assert_eq!(created["item"]["owner_id"], ALICE_OID, "{name}");

    // 403 for a non-admin DELETE of everything, forged roles or not.
    let (status, challenge, body) = call(
        http,
        format!("{base}/todoitems"),
        Method::DELETE,
        Some(&alice),
        FORGED,
        None,
        "www-authenticate",
    )
    .await;
    assert_eq!(status, 403, "{name}: {body}");
    assert!(
        challenge.contains("insufficient_scope"),
        "{name}: {challenge:?}"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("Admin"),
        "{name}: {body}"
    );

    // 404 and 405 as the gateway answers them (nginx included, which
    // would make them a 500 without the `/nginx` dialect).
    let (status, request_id, body) = call(
        http,
        format!("{base}/nowhere"),
        Method::GET,
        Some(&alice),
        &[("X-Request-Id", "ingress-404")],
        None,
        "x-request-id",
    )
    .await;
    assert_eq!(
        (status, body),
        (404, json!({"detail": "Not Found"})),
        "{name}"
    );
    assert_eq!(
        request_id, "ingress-404",
        "{name}: the decision's request id"
    );
    let (status, allow, body) = call(
        http,
        format!("{base}/todoitems"),
        Method::PUT,
        Some(&alice),
        &[],
        None,
        "allow",
    )
    .await;
    assert_eq!(status, 405, "{name}: {body}");
    assert_eq!(body, json!({"detail": "Method Not Allowed"}), "{name}");
    assert!(allow.contains("DELETE"), "{name}: {allow:?}");

    // Path tricks, sent byte for byte: the ingress answers what the gateway
    // answers, because the decision is made on the same normalised path.
    let host = ingress.addr;
    for (method, path, token) in [
        ("DELETE", "/todoitems/../todoitems", Some(&alice)),
        ("DELETE", "/todoitems/%2e%2e/todoitems", Some(&alice)),
        ("GET", "/health/../todoitems", None),
        ("GET", "/health/%2e%2e/todoitems", None),
        ("GET", "/health/..%2ftodoitems", None),
        ("GET", "/todoitems/7/..", None),
        ("GET", "/%74odoitems", None),
    ] {
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
        let through_gateway = sys.raw(&request).await.0;
        let (status, body) = raw_request(&host.to_string(), &request).await;
        assert_eq!(
            status,
            through_gateway,
            "{name}: {method} {path}: {body}\n{}",
            ingress.logs()
        );
        assert!(
            matches!(status, 400 | 401 | 403),
            "{name}: {method} {path} got {status}"
        );
    }

    // Allowed through a trick: the backend gets the normalised path.
    let request = format!(
        "GET /health/../todoitems?x=1 HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {alice}\r\nConnection: close\r\n\r\n"
    );
    let (status, body) = raw_request(&host.to_string(), &request).await;
    assert_eq!(status, 200, "{name}: {body}\n{}", ingress.logs());
    let sent = tap.sent();
    assert!(
        sent.contains("get /todoitems?x=1 http/1.1"),
        "{name}: {sent}"
    );
    assert!(!sent.contains("/health/.."), "{name}: {sent}");

    // An anonymous route: forwarded with no identity at all.
    let (status, _, _) = call(
        http,
        format!("{base}/health"),
        Method::GET,
        Some(&alice),
        FORGED,
        None,
        "x-request-id",
    )
    .await;
    assert_eq!(status, 200, "{name}");
    let sent = tap.sent();
    let health = sent.split("get /health http/1.1").nth(1).unwrap();
    let health = health.split("\r\n\r\n").next().unwrap();
    assert!(!health.contains("x-user-"), "{name}: {health}");

    // Nothing forged reached the backend; the decision's identity did.
    assert!(
        !sent.contains("forged"),
        "{name} let a forged header through:\n{sent}"
    );
    assert!(
        sent.contains(&format!("x-user-id: {ALICE_OID}")),
        "{name}: {sent}"
    );
    assert!(!sent.contains("authorization:"), "{name}: {sent}");
    // The signed assertion came with it (a JWS: `eyJ` is `{"` encoded;
    // the tap lowercases what it saw).
    assert!(
        sent.contains("x-user-assertion: eyj"),
        "{name} did not copy the assertion: {sent}"
    );
}

#[tokio::test]
async fn nginx_auth_request_runs_the_sample_through_the_decision_endpoint() {
    let (sys, tap) = system().await;
    let decision = sys.decision_url.clone().unwrap();
    let Some(nginx) = nginx(decision.trim_start_matches("http://"), tap.addr).await else {
        return;
    };
    the_sample_flow_through(&nginx, &sys, &tap).await;
    drop(nginx);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn caddy_forward_auth_runs_the_sample_through_the_decision_endpoint() {
    let (sys, tap) = system().await;
    let decision = sys.decision_url.clone().unwrap();
    let Some(caddy) = caddy(decision.trim_start_matches("http://"), tap.addr).await else {
        return;
    };
    the_sample_flow_through(&caddy, &sys, &tap).await;
    drop(caddy);
    sys.stop().await.unwrap();
}
