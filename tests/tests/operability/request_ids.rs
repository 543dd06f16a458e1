//! Request ids kept, generated, sent upstream and returned; an unreachable
//! upstream counted and logged under the request's id.

use super::*;

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
    // A port bound and never listened on: connections are refused.
    let closed = e2e_tests::RefusingAddr::new();
    let sys = System::start_with(Options {
        upstream: Some(format!("http://{}", closed.addr)),
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
