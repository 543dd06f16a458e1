//! The JSON access log, field by field; never a token.

use super::*;

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

#[tokio::test]
async fn decision_endpoint_lines_are_marked_and_name_the_described_request() {
    captured();
    let sys = System::start_with(Options {
        decision: true,
        ..Options::default()
    })
    .await
    .expect("system starts");
    sys.first_key_fetch().await;
    let alice = sys.token(MintRequest::user("alice"));
    let response = reqwest::Client::new()
        .get(format!("{}/nginx", sys.decision_url.as_ref().unwrap()))
        .header("X-Original-Method", "DELETE")
        .header(
            "X-Original-URI",
            "/todoitems/../todoitems?secret=in-the-query",
        )
        .header("X-Request-Id", "log-decision-1")
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-authz-status"], "403");
    assert_eq!(response.headers()["x-request-id"], "log-decision-1");

    let line = access_line("log-decision-1").await;
    assert_eq!(line["mode"], "decision", "{line}");
    assert_eq!(line["method"], "DELETE", "the described method");
    assert_eq!(line["path"], "/todoitems", "the described path, normalised");
    assert_eq!(line["route"], "delete-all");
    assert_eq!(
        (&line["decision"], &line["reason"]),
        (&"deny".into(), &"missing_role".into())
    );
    assert_eq!(line["status"], 403);
    assert!(
        line.get("upstream_us").is_none(),
        "nothing forwarded: {line}"
    );

    // Under /nginx a 401 is sent as a 403; the log keeps the 401.
    let response = reqwest::Client::new()
        .get(format!("{}/nginx", sys.decision_url.as_ref().unwrap()))
        .header("X-Original-Method", "GET")
        .header("X-Original-URI", "/todoitems")
        .header("X-Request-Id", "log-decision-2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-authz-status"], "401");
    let line = access_line("log-decision-2").await;
    assert_eq!(line["reason"], "missing_token");
    assert_eq!(line["status"], 401, "the gateway's status, not nginx's 403");
    let text = line.to_string();
    assert!(!text.contains(&alice) && !text.contains("in-the-query"));
    sys.stop().await.unwrap();
}
