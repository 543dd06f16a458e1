//! What the gateway refuses, and what the upstream never sees.
//!
//! An echo upstream records every request it receives, so each case can show
//! both the client's answer and that nothing (or exactly what) was forwarded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use dev_idp::{Idp, MintRequest};
use e2e_tests::{Options, System};
use serde_json::{Value, json};
use warp::Filter;
use warp::http::{HeaderMap, Method};

/// What the echo upstream saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An upstream that answers 200 and records each request.
async fn echo_upstream() -> (String, Log) {
    let log: Log = Arc::default();
    let recorder = log.clone();
    let routes = warp::any()
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .map(
            move |method: Method, path: warp::path::FullPath, headers: HeaderMap| {
                let seen = Seen {
                    method: method.to_string(),
                    path: path.as_str().to_string(),
                    headers: headers
                        .iter()
                        .map(|(n, v)| {
                            (
                                n.as_str().to_string(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect(),
                };
                recorder.lock().unwrap().push(seen);
                warp::reply::json(&json!({"ok": true}))
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    (url, log)
}

async fn system_with_echo() -> (System, Log) {
    let (url, log) = echo_upstream().await;
    let sys = System::start_with(Options {
        upstream: Some(url),
        ..Options::default()
    })
    .await
    .unwrap();
    (sys, log)
}

fn seen(log: &Log) -> Vec<Seen> {
    log.lock().unwrap().clone()
}

/// Status and JSON body of a GET with extra headers.
async fn get(sys: &System, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = sys.http.get(format!("{}{path}", sys.gateway_url));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn spoofed_and_look_alike_identity_headers_never_reach_the_upstream() {
    let (sys, log) = system_with_echo().await;
    let alice = sys.token(MintRequest::user("alice"));
    let bearer = format!("Bearer {alice}");
    let forged = [
        ("X-User-Id", "forged"),
        ("X_User_Id", "forged"),
        ("x-user_id", "forged"),
        ("X.User.Id", "forged"),
        ("X-User-Roles", "Admin"),
        ("X-USER-TENANT", "bbbbbbbb-0000-4000-8000-000000000002"),
        ("X-User-Type", "app"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("Connection", "X-User-Id, X-User-Roles"),
    ];
    // On a protected route: exactly the gateway's values arrive.
    let mut headers = forged.to_vec();
    headers.push(("Authorization", &bearer));
    assert_eq!(get(&sys, "/todoitems", &headers).await.0, 200);
    // On an anonymous route: no identity at all arrives.
    assert_eq!(get(&sys, "/health", &forged).await.0, 200);

    let seen = seen(&log);
    assert_eq!(seen.len(), 2);
    let protected = &seen[0];
    assert_eq!(
        protected.all("x-user-id"),
        ["a11ce000-0000-4000-8000-000000000001"]
    );
    assert_eq!(protected.all("x-user-roles"), ["User"]);
    assert_eq!(
        protected.all("x-user-tenant"),
        ["aaaaaaaa-0000-4000-8000-000000000001"]
    );
    assert_eq!(protected.all("x-user-scopes"), ["access_as_user"]);
    assert_eq!(protected.all("x-user-type"), ["user"]);
    assert_eq!(protected.all("x-user-email"), ["alice@contoso.dev"]);
    assert!(
        protected.all("authorization").is_empty(),
        "the token is not forwarded"
    );
    assert_eq!(protected.all("x-forwarded-for"), ["127.0.0.1"]);
    let anonymous = &seen[1];
    for (name, value) in &seen
        .iter()
        .flat_map(|s| s.headers.clone())
        .collect::<Vec<_>>()
    {
        let folded: String = name
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | '.'))
            .collect();
        assert!(
            value != "forged" && folded != "xhttpmethodoverride",
            "{name}: {value} reached the upstream"
        );
    }
    for name in ["x-user-id", "x-user-roles", "x-user-tenant", "x-user-type"] {
        assert!(
            anonymous.all(name).is_empty(),
            "{name} reached the upstream on an anonymous route"
        );
    }
    sys.stop().await.unwrap();
}

fn raw_get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: gateway\r\n{extra}Connection: close\r\n\r\n")
}

#[tokio::test]
async fn path_tricks_are_normalised_or_refused_before_matching() {
    let (sys, log) = system_with_echo().await;
    // Normalised: the protected route decides, so no token → 401, not forwarded.
    for path in [
        "/health/../todoitems",
        "//todoitems",
        "/./todoitems",
        "/%74odoitems",
        "/health/%2e%2e/todoitems",
        "/health/%2E./todoitems",
    ] {
        let (status, body) = sys.raw(&raw_get(path, "")).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    // Refused outright.
    for path in [
        "/%2e%2e/todoitems",
        "/../todoitems",
        "/todoitems%2F1",
        "/todoitems%2f1",
        "/health/..;/todoitems",
        "/todoitems/%5C..",
        "/todoitems\\..",
        "/todoitems/%00",
        "/todoitems/%zz",
        "*",
    ] {
        let (status, body) = sys.raw(&raw_get(path, "")).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    assert!(seen(&log).is_empty(), "nothing was forwarded");
    // With a token the normalised path is exactly what is forwarded, and an
    // absolute-form target never chooses the upstream.
    let alice = sys.token(MintRequest::user("alice"));
    let auth = format!("Authorization: Bearer {alice}\r\n");
    assert_eq!(
        sys.raw(&raw_get("/health/../todoitems/%37", &auth)).await.0,
        200
    );
    assert_eq!(
        sys.raw(&raw_get("http://evil.example/todoitems/%38", &auth))
            .await
            .0,
        200
    );
    let seen = seen(&log);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/todoitems/7")
    );
    assert_eq!(seen[1].path, "/todoitems/8");
    assert!(
        seen[1].all("host")[0].starts_with("127.0.0.1:"),
        "{:?}",
        seen[1].all("host")
    );
    sys.stop().await.unwrap();
}

/// A genuine token's claims, as JSON.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

fn forge(header: Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(serde_json::to_vec(&header).unwrap()),
        B64.encode(serde_json::to_vec(claims).unwrap()),
        B64.encode(signature)
    )
}

/// Each bad token: status 401 with `invalid_token`, and the reason's words in the description.
#[tokio::test]
async fn bad_tokens_are_rejected_with_a_precise_401_and_never_forwarded() {
    let (sys, log) = system_with_echo().await;
    let genuine = sys.token(MintRequest::user("bob"));
    let claims = claims_of(&genuine);
    let kid = sys.idp.current_kid().unwrap();

    // alg none, with and without a kid; HS256 keyed with the public key's bytes.
    let none = forge(
        json!({"alg": "none", "typ": "JWT", "kid": kid}),
        &claims,
        b"",
    );
    let jwks = sys.idp.jwks(None).unwrap();
    let n = B64.decode(jwks["keys"][0]["n"].as_str().unwrap()).unwrap();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&n),
    )
    .unwrap();
    // A token signed by another key pair (same issuer, same claims shape).
    let other_dir = tempfile::tempdir().unwrap();
    let impostor = Idp::new(
        dev_idp::Config::embedded_default(),
        other_dir.path(),
        Some(sys.idp.base_url().to_string()),
    )
    .unwrap();
    let foreign_key = impostor.mint(&MintRequest::user("bob")).unwrap();
    // A genuine header and claims with a tampered payload (signature no longer fits).
    let mut tampered_claims = claims.clone();
    tampered_claims["roles"] = json!(["Admin", "User", "Owner"]);
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(serde_json::to_vec(&tampered_claims).unwrap()),
        parts[2]
    );

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", none, "algorithm"),
        ("HS256 with the public key", hs256, "algorithm"),
        ("unknown key", foreign_key, "key"),
        ("tampered payload", tampered, "signature"),
        (
            "expired",
            sys.token(MintRequest::user("bob").expired()),
            "expired",
        ),
        (
            "not yet valid",
            sys.token(MintRequest::user("bob").not_before_in(Duration::from_secs(3600))),
            "not valid yet",
        ),
        (
            "wrong audience",
            sys.token(MintRequest::user("bob").audience("api://someone-else")),
            "audience",
        ),
        (
            "wrong issuer",
            sys.token(
                MintRequest::user("bob")
                    .issuer("https://login.example.net/aaaaaaaa-0000-4000-8000-000000000001/v2.0"),
            ),
            "issuer",
        ),
        ("garbage", "not.a.jwt".to_string(), ""),
    ];
    for (what, token, words) in cases {
        let r = sys
            .http
            .delete(format!("{}/todoitems", sys.gateway_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{what}");
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
            "{what}: {challenge}"
        );
        assert!(!challenge.contains(&token), "{what}: the token is echoed");
        let body: Value = r.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap().to_lowercase();
        assert!(
            detail.contains(words),
            "{what}: {detail:?} should mention {words:?}"
        );
    }
    assert!(seen(&log).is_empty(), "no bad token reached the upstream");
    // The genuine one does.
    let r = sys
        .http
        .delete(format!("{}/todoitems", sys.gateway_url))
        .bearer_auth(&genuine)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(seen(&log).len(), 1);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_flood_of_random_kids_causes_at_most_one_key_fetch_per_cooldown() {
    let (sys, log) = system_with_echo().await;
    sys.first_key_fetch().await;
    let auth = sys.gateway.authenticator().clone();
    let before = auth.fetch_count();
    let claims = claims_of(&sys.token(MintRequest::user("alice")));
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let token = forge(
            json!({"alg": "RS256", "typ": "JWT", "kid": format!("random-{i}")}),
            &claims,
            b"sig",
        );
        let (http, url) = (sys.http.clone(), format!("{}/todoitems", sys.gateway_url));
        tasks.push(tokio::spawn(async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 401);
    }
    let fetches = auth.fetch_count() - before;
    assert!(
        fetches <= 1,
        "{fetches} key fetches for 1,000 unknown kids within one cooldown"
    );
    assert!(seen(&log).is_empty());
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn key_rotation_at_the_idp_is_picked_up_without_a_restart() {
    let (sys, _log) = system_with_echo().await;
    let old = sys.token(MintRequest::user("alice"));
    assert_eq!(
        get(
            &sys,
            "/todoitems",
            &[("Authorization", &format!("Bearer {old}"))]
        )
        .await
        .0,
        200
    );
    sys.idp.rotate_keys().unwrap();
    let new = sys.token(MintRequest::user("alice"));
    assert_ne!(claims_of(&new)["uti"], claims_of(&old)["uti"]);
    assert_eq!(
        get(
            &sys,
            "/todoitems",
            &[("Authorization", &format!("Bearer {new}"))]
        )
        .await
        .0,
        200
    );
    // The old key is still published during its grace period, so old tokens still work.
    assert_eq!(
        get(
            &sys,
            "/todoitems",
            &[("Authorization", &format!("Bearer {old}"))]
        )
        .await
        .0,
        200
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn jwks_down_after_start_keeps_the_last_good_keys() {
    let (url, _log) = echo_upstream().await;
    let sys = System::start_with(Options {
        upstream: Some(url),
        idp_relay: Some(true),
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    let relay = sys.relay.clone().unwrap();
    let token = sys.token(MintRequest::user("alice"));
    let bearer = format!("Bearer {token}");
    relay.set_up(false);
    // Force a refresh attempt while the IdP is down: an unknown kid asks for one.
    let auth = sys.gateway.authenticator().clone();
    let failed = auth.refresh_keys().await;
    assert!(failed.is_err(), "the fetch must fail while the IdP is down");
    assert_eq!(
        get(&sys, "/todoitems", &[("Authorization", &bearer)])
            .await
            .0,
        200
    );
    // A token that was never cached is still validated with the kept keys.
    let fresh = sys.token(MintRequest::user("bob"));
    assert_eq!(
        get(
            &sys,
            "/todoitems",
            &[("Authorization", &format!("Bearer {fresh}"))]
        )
        .await
        .0,
        200
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn jwks_down_before_start_gives_503_then_recovers_by_itself() {
    let (url, log) = echo_upstream().await;
    let sys = System::start_with(Options {
        upstream: Some(url),
        idp_relay: Some(false),
        ..Options::default()
    })
    .await
    .unwrap();
    let token = sys.token(MintRequest::user("alice"));
    let bearer = format!("Bearer {token}");
    let r = sys
        .http
        .get(format!("{}/todoitems", sys.gateway_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    // Public routes still work, and /ready says not ready.
    assert_eq!(get(&sys, "/health", &[]).await.0, 200);
    assert_eq!(
        sys.http
            .get(format!("{}/ready", sys.admin_url))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    // The IdP comes back: the refresh task's next retry loads the keys.
    let auth = sys.gateway.authenticator().clone();
    let mut fetches = auth.watch_fetches();
    sys.relay.as_ref().unwrap().set_up(true);
    tokio::time::timeout(
        Duration::from_secs(60),
        fetches.wait_for(|_| auth.keys_loaded()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        get(&sys, "/todoitems", &[("Authorization", &bearer)])
            .await
            .0,
        200
    );
    assert_eq!(
        seen(&log).iter().filter(|s| s.path == "/todoitems").count(),
        1
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn upgrade_to_h2c_is_refused() {
    let (sys, log) = system_with_echo().await;
    let (status, _) = get(
        &sys,
        "/health",
        &[
            ("Upgrade", "h2c"),
            ("Connection", "Upgrade, HTTP2-Settings"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(seen(&log).is_empty());
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn two_authorization_headers_are_a_bad_request() {
    let (sys, log) = system_with_echo().await;
    let token = sys.token(MintRequest::user("alice"));
    let r = sys
        .http
        .get(format!("{}/todoitems", sys.gateway_url))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Bearer other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(seen(&log).is_empty());
    sys.stop().await.unwrap();
}

/// Servers and frameworks behind a proxy read these instead of the path
/// (IIS `X-Original-URL`, Envoy `X-Envoy-Original-Path`, Spring
/// `X-Forwarded-Prefix`, …): a client must not steer the backend to a path
/// the policy did not decide on.
#[tokio::test]
async fn request_target_overrides_never_reach_the_upstream_on_any_route() {
    let (sys, log) = system_with_echo().await;
    let alice = sys.token(MintRequest::user("alice"));
    let bearer = format!("Bearer {alice}");
    let overrides = [
        ("X-Original-URL", "/admin"),
        ("x-rewrite-url", "/admin"),
        ("X-ORIGINAL-URI", "/admin"),
        ("X-Forwarded-Uri", "/admin"),
        ("X_Forwarded_Path", "/admin"),
        ("X-Forwarded-Prefix", "/admin"),
        ("X-Envoy-Original-Path", "/admin"),
        ("x_envoy_original_path", "/admin"),
        ("X_Original_URL", "/admin"),
    ];
    let mut protected = overrides.to_vec();
    protected.push(("Authorization", &bearer));
    assert_eq!(get(&sys, "/todoitems", &protected).await.0, 200);
    assert_eq!(get(&sys, "/health", &overrides).await.0, 200);

    let seen = seen(&log);
    assert_eq!(
        seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
        ["/todoitems", "/health"]
    );
    for request in &seen {
        for (name, value) in &request.headers {
            assert_ne!(value, "/admin", "{name} reached {}", request.path);
        }
    }
    sys.stop().await.unwrap();
}

/// `Authorization: Bearer` with nothing after it is no token at all: the same
/// 401 and bare challenge as no header (RFC 6750 §3.1), not a 400.
#[tokio::test]
async fn bearer_with_no_token_is_a_missing_token() {
    let (sys, log) = system_with_echo().await;
    sys.first_key_fetch().await;
    for value in ["Bearer", "Bearer    ", "bearer"] {
        let r = sys
            .http
            .get(format!("{}/todoitems", sys.gateway_url))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{value:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer", "{value:?}");
    }
    let none = sys
        .http
        .get(format!("{}/todoitems", sys.gateway_url))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert!(seen(&log).is_empty());
    sys.stop().await.unwrap();
}

/// Tokens that no key may verify are refused before any key is used: a
/// Microsoft Graph token (its header carries a `nonce`) and a header that is
/// a JSON array instead of an object.
#[tokio::test]
async fn graph_tokens_and_non_object_headers_are_refused_before_any_key() {
    let (sys, log) = system_with_echo().await;
    sys.first_key_fetch().await;
    let genuine = sys.token(MintRequest::user("bob"));
    let claims = claims_of(&genuine);
    let kid = sys.idp.current_kid().unwrap();
    let signature = B64.decode(genuine.rsplit('.').next().unwrap()).unwrap();
    let graph = forge(
        json!({"typ": "JWT", "nonce": "nXq7_2M5mXo", "alg": "RS256", "x5t": kid, "kid": kid}),
        &claims,
        &signature,
    );
    let array = forge(json!(["RS256", kid]), &claims, &signature);
    let fetches = sys.gateway.authenticator().fetch_count();
    for (token, detail) in [
        (
            graph,
            "this is a token for microsoft graph, not for this api",
        ),
        (
            array,
            "the token is malformed: the header is not a json object",
        ),
    ] {
        let r = sys
            .http
            .get(format!("{}/todoitems", sys.gateway_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        let body: Value = r.json().await.unwrap();
        let got = body["detail"].as_str().unwrap().to_lowercase();
        assert!(got.contains(detail), "{got}");
    }
    assert_eq!(sys.gateway.authenticator().fetch_count(), fetches);
    assert!(seen(&log).is_empty());
    sys.stop().await.unwrap();
}

/// OpenID Connect Discovery 1.0 §4.3: the gateway is told to fetch another
/// tenant's discovery document, whose issuer is not its tenant's: no key is
/// trusted, protected routes answer 503 and `/ready` fails.
#[tokio::test]
async fn discovery_of_another_issuer_loads_no_key_and_ready_fails() {
    let (url, log) = echo_upstream().await;
    let sys = System::start_with(Options {
        upstream: Some(url),
        metadata_tenant: Some(e2e_tests::OTHER_TENANT.into()),
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    assert!(!sys.gateway.authenticator().keys_loaded());
    let token = sys.token(MintRequest::user("alice"));
    let (status, _) = get(
        &sys,
        "/todoitems",
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(status, 503);
    let ready = sys
        .http
        .get(format!("{}/ready", sys.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(seen(&log).iter().all(|s| s.path != "/todoitems"));
    sys.stop().await.unwrap();
}

/// Route conditions through the running system, with the dev IdP's real
/// user and daemon tokens: `apps` and `callers` allow and deny (403, never
/// forwarded), and an `enforce: shadow` route allows what it would deny,
/// counting it apart from denials.
#[tokio::test]
async fn route_conditions_allow_deny_and_shadow_through_the_gateway() {
    let (url, log) = echo_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "version: 1
defaults:
  guests: deny
routes:
  - {name: jobs, path: /jobs, methods: [POST], apps: [c0ffee00-0000-4000-8000-0000000000c3], callers: [app]}
  - {name: mine, path: /mine, methods: [GET], callers: [user], tenants: [aaaaaaaa-0000-4000-8000-000000000001]}
  - {name: preview, path: /preview, methods: [GET], callers: [app], enforce: shadow}
",
    )
    .unwrap();
    let sys = System::start_with(Options {
        upstream: Some(url),
        policy,
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    let alice = sys.token(MintRequest::user("alice"));
    let daemon = sys.token(MintRequest::app("daemon"));
    let call = |method: Method, path: &'static str, token: String| {
        let req = sys
            .http
            .request(method, format!("{}{path}", sys.gateway_url))
            .bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, body["detail"].as_str().unwrap_or("").to_owned())
        }
    };
    assert_eq!(call(Method::POST, "/jobs", daemon.clone()).await.0, 200);
    assert_eq!(
        call(Method::POST, "/jobs", alice.clone()).await,
        (
            403,
            "this route admits only certain client applications".into()
        )
    );
    assert_eq!(call(Method::GET, "/mine", alice.clone()).await.0, 200);
    assert_eq!(
        call(Method::GET, "/mine", daemon.clone()).await,
        (403, "this route admits only user (delegated) tokens".into())
    );
    // Shadow: a user token on an app-only route goes through, and is counted.
    assert_eq!(call(Method::GET, "/preview", alice.clone()).await.0, 200);
    let forwarded: Vec<String> = seen(&log).iter().map(|s| s.path.clone()).collect();
    assert_eq!(forwarded, ["/jobs", "/mine", "/preview"]);
    let metrics = sys.metrics().await;
    for line in [
        r#"authz_proxy_shadow_denials_total{reason="wrong_caller_type"} 1"#,
        r#"authz_proxy_denials_total{reason="wrong_caller_type"} 1"#,
        r#"authz_proxy_denials_total{reason="wrong_app"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    sys.stop().await.unwrap();
}
