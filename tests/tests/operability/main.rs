//! Operability through the whole system: `/metrics` after a scripted mix of
//! requests, the JSON access log field by field, request ids end to end, and
//! the status page (with a headless-Chromium screenshot for the README when
//! Debian's `chromium` is installed).
//!
//! The log is captured in-process: this test binary installs the gateway's
//! own JSON subscriber ([`authz_proxy::logging::init_with`]) writing to a
//! buffer, and each test finds its lines by request id.
//!
//! One module per concern: `metrics`, `access_log`, `request_ids` (with
//! upstream failures) and `status_page`; the helpers are here.

mod access_log;
mod metrics;
mod request_ids;
mod status_page;

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
pub struct Captured {
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
pub fn captured() -> Arc<Captured> {
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
pub fn lines_where(pick: impl Fn(&Value) -> bool) -> Vec<Value> {
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
pub async fn access_line(id: &str) -> Value {
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
pub async fn access_text(id: &str) -> String {
    access_line(id).await.to_string()
}

pub async fn start() -> System {
    captured();
    let sys = System::start().await.expect("system starts");
    sys.first_key_fetch().await;
    sys
}

/// One request through the gateway; returns status, response `X-Request-Id`
/// and the body.
pub async fn send(
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
pub async fn scrape(sys: &System) -> HashMap<String, f64> {
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

pub fn requests(route: &str, method: &str, decision: &str, status: u16) -> String {
    format!(
        "authz_proxy_requests_total{{route=\"{route}\",method=\"{method}\",decision=\"{decision}\",status=\"{status}\"}}"
    )
}

/// The claims of a dev-idp token, to compare with what the log says.
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}
