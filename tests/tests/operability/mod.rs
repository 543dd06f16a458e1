//! Operability through the whole system: `/metrics` after a scripted mix of
//! requests, the JSON access log field by field, request ids end to end, and
//! the status page (with a headless-Chromium screenshot for the README when
//! Debian's `chromium` is installed).
//!
//! The log is captured in-process (`e2e_tests::capture`): the test process
//! installs the gateway's own JSON subscriber writing to a buffer, and each
//! test finds its lines by request id.
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
use std::time::Duration;

use base64::Engine as _;
use dev_idp::MintRequest;
pub use e2e_tests::capture::{access_line, captured, lines_where};
use e2e_tests::{Options, System};
use serde_json::Value;

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
