//! Step-up through the running system: a route with `auth_context: [c1]`,
//! the dev IdP's authorization-code flow driven over HTTP (with
//! `login_hint` and PKCE, as a script signs in), and the gateway in front
//! of a recording upstream.
//!
//! A client that declared `cp1` gets Microsoft's claims challenge; sending
//! its `claims` back as the `claims` parameter of a new sign-in yields a
//! token that passes. A client without `cp1` gets a 403. A shadow route
//! lets the request through and logs and counts what it would have denied.
//!
//! The access log is captured in-process: the test process installs the
//! gateway's own JSON subscriber writing to a buffer.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use dev_idp::MintRequest;
use e2e_tests::capture::{access_line, captured};
use e2e_tests::recorder::Recorder;
use e2e_tests::{API_CLIENT_ID, Options, SWAGGER_CLIENT_ID, System, TENANT};
use serde_json::Value;

const POLICY: &str = "version: 1
routes:
  - {name: wipe, path: /todoitems, methods: [DELETE], scopes: [access_as_user], auth_context: [c1]}
  - {name: list, path: /todoitems, methods: [GET], scopes: [access_as_user], auth_context: [c2], enforce: shadow}
";

/// How MSAL declares that the client handles claims challenges.
const CP1: &str = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;

/// The challenge's claims for `c1`, standard base64 as Microsoft documents
/// it (its example, byte for byte).
const C1_CLAIMS_B64: &str =
    "eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19";

async fn start() -> (System, Recorder, tempfile::TempDir) {
    captured();
    let recorder = Recorder::start().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let sys = System::start_with(Options {
        upstream: Some(recorder.url.clone()),
        policy,
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    (sys, recorder, dir)
}

/// Alice signs in to the SPA through `authorize` (an authorize endpoint
/// URL) with this `claims` parameter, and the code is redeemed: the access
/// token, as a browser app would get it.
async fn sign_in(sys: &System, authorize: &str, claims: Option<&str>) -> String {
    let verifier = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let challenge = URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
    );
    let redirect_uri = format!("{}/oauth2-redirect", sys.gateway_url);
    let scope = format!("api://{API_CLIENT_ID}/access_as_user");
    let mut params = vec![
        ("client_id", SWAGGER_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", scope.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("login_hint", "alice@contoso.dev"),
    ];
    if let Some(claims) = claims {
        params.push(("claims", claims));
    }
    let url = reqwest::Url::parse_with_params(authorize, &params).unwrap();
    let response = sys.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
    let location = reqwest::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));
    let token_url = authorize.replace("/authorize", "/token");
    let response = sys
        .http
        .post(token_url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", SWAGGER_CLIENT_ID),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {body}"))
        .to_owned()
}

/// The claims of a token, unverified (the gateway verified it).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn delete(sys: &System, token: &str, id: &str) -> reqwest::Response {
    sys.http
        .delete(format!("{}/todoitems", sys.gateway_url))
        .bearer_auth(token)
        .header("x-request-id", id)
        .send()
        .await
        .unwrap()
}

/// A `name="value"` parameter of a `WWW-Authenticate` challenge.
fn param<'a>(challenge: &'a str, name: &str) -> &'a str {
    let start = challenge
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {challenge}"))
        + name.len()
        + 2;
    let len = challenge[start..].find('"').unwrap();
    &challenge[start..start + len]
}

#[tokio::test]
async fn a_cp1_client_is_challenged_and_steps_up_with_the_claims_parameter() {
    let (sys, recorder, _dir) = start().await;
    let authorize = format!("{}/{TENANT}/oauth2/v2.0/authorize", sys.idp_url);

    // A browser app that declared cp1 signs in: `xms_cc`, no `acrs`.
    let first = sign_in(&sys, &authorize, Some(CP1)).await;
    assert_eq!(claims(&first)["xms_cc"], serde_json::json!(["cp1"]));
    assert!(claims(&first).get("acrs").is_none());

    let response = delete(&sys, &first, "step-up-1").await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"\", authorization_uri=\"{authorize}\", error=\"insufficient_claims\", claims=\"{C1_CLAIMS_B64}\""
        )
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("authentication context c1"),
        "{body}"
    );
    assert_eq!(
        recorder.count(),
        0,
        "a challenged request is never forwarded"
    );
    let line = access_line("step-up-1").await;
    assert_eq!(line["decision"], "deny");
    assert_eq!(line["reason"], "auth_context_required");
    assert_eq!(line["status"], 401);

    // The client does what MSAL does: the decoded claims become the
    // `claims` parameter of a new sign-in at the challenge's authority.
    let requested = String::from_utf8(STANDARD.decode(param(&challenge, "claims")).unwrap())
        .expect("the claims are JSON text");
    assert_eq!(
        requested,
        r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#
    );
    let stepped_up = sign_in(
        &sys,
        param(&challenge, "authorization_uri"),
        Some(&requested),
    )
    .await;
    assert_eq!(claims(&stepped_up)["acrs"], serde_json::json!(["c1"]));
    let response = delete(&sys, &stepped_up, "step-up-2").await;
    assert_eq!(response.status(), 200);
    assert_eq!(recorder.count(), 1);
    assert_eq!(access_line("step-up-2").await["decision"], "allow");
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_without_cp1_gets_403_insufficient_claims_and_no_challenge() {
    let (sys, recorder, _dir) = start().await;
    let authorize = format!("{}/{TENANT}/oauth2/v2.0/authorize", sys.idp_url);
    let plain = sign_in(&sys, &authorize, None).await;
    assert!(claims(&plain).get("xms_cc").is_none());

    let response = delete(&sys, &plain, "step-up-3").await;
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_claims\""),
        "{challenge}"
    );
    assert!(!challenge.contains("claims=\""), "{challenge}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "this route needs authentication context c1, and the client does not declare the cp1 \
         capability (xms_cc) that would let it be asked to sign in again with it"
    );
    assert_eq!(recorder.count(), 0);
    assert_eq!(
        access_line("step-up-3").await["reason"],
        "auth_context_required"
    );

    // The token CLI's library mints the same shapes: with acrs it passes.
    let minted = sys.token(MintRequest::user("alice").acrs(["c1"]));
    assert_eq!(delete(&sys, &minted, "step-up-4").await.status(), 200);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_shadow_auth_context_allows_logs_and_counts_the_would_be_denial() {
    let (sys, recorder, _dir) = start().await;
    let token = sys.token(
        MintRequest::user("alice")
            .acrs(["c1"])
            .client_capability("cp1"),
    );
    let response = sys
        .http
        .get(format!("{}/todoitems", sys.gateway_url))
        .bearer_auth(&token)
        .header("x-request-id", "step-up-shadow")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("www-authenticate").is_none());
    assert_eq!(recorder.count(), 1);
    let line = access_line("step-up-shadow").await;
    assert_eq!(line["decision"], "allow");
    assert_eq!(line["enforce"], "shadow");
    assert_eq!(line["would_deny"], "auth_context_required");
    let metrics = sys.metrics().await;
    let line = r#"authz_proxy_shadow_denials_total{reason="auth_context_required"} 1"#;
    assert!(
        metrics.lines().any(|l| l == line),
        "{line} not in\n{metrics}"
    );
    sys.stop().await.unwrap();
}
