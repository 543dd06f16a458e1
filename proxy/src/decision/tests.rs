//! The decision endpoint's pure parts: reading the described request, and
//! how refusals are spelt for each ingress.

use super::*;
use http::{Method, Uri};

/// `headers` as `name: value` pairs (repeats kept) → the described method
/// and target, or the 400's detail.
fn check(headers: &[(&str, &str)], expected: Result<(&str, &str), &str>) {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let got = describe(&map).map_err(|e| {
        assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e.reason(), "no_original_request");
        e.to_string()
    });
    match (got, expected) {
        (Ok(d), Ok((method, target))) => {
            assert_eq!(
                (d.method.as_str(), d.target.to_string().as_str()),
                (method, target)
            );
        }
        (Err(detail), Err(part)) => assert!(detail.contains(part), "{detail:?} lacks {part:?}"),
        (got, expected) => panic!("{headers:?}: got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn decision_reads_the_nginx_and_the_caddy_spelling() {
    check(
        &[
            ("x-original-method", "DELETE"),
            ("x-original-uri", "/todoitems?x=1"),
        ],
        Ok(("DELETE", "/todoitems?x=1")),
    );
    check(
        &[
            ("x-forwarded-method", "POST"),
            ("x-forwarded-uri", "/todoitems/../todoitems"),
            ("x-forwarded-host", "api.example"),
        ],
        Ok(("POST", "/todoitems/../todoitems")),
    );
    // Absolute form, as Caddy's `{uri}` keeps it for a proxy-style request.
    check(
        &[
            ("x-forwarded-method", "GET"),
            ("x-forwarded-uri", "http://h/todoitems"),
        ],
        Ok(("GET", "http://h/todoitems")),
    );
}

#[test]
fn decision_without_exactly_one_original_request_is_a_400() {
    check(&[], Err("no original request"));
    check(
        &[("x-original-uri", "/todoitems")],
        Err("method is missing"),
    );
    check(&[("x-forwarded-method", "GET")], Err("URI is missing"));
    check(
        &[
            ("x-original-method", "GET"),
            ("x-original-uri", "/health"),
            ("x-forwarded-uri", "/todoitems"),
        ],
        Err("both X-Original-*"),
    );
    check(
        &[
            ("x-original-method", "GET"),
            ("x-original-method", "DELETE"),
            ("x-original-uri", "/todoitems"),
        ],
        Err("more than one original method"),
    );
    check(
        &[
            ("x-forwarded-method", "GET"),
            ("x-forwarded-uri", "/health"),
            ("x-forwarded-uri", "/todoitems"),
        ],
        Err("more than one original URI"),
    );
    check(
        &[
            ("x-forwarded-method", "GET"),
            ("x-forwarded-uri", "/health"),
            ("x-forwarded-host", "a"),
            ("x-forwarded-host", "b"),
        ],
        Err("more than one X-Forwarded-Host"),
    );
    check(
        &[("x-original-method", "GE T"), ("x-original-uri", "/health")],
        Err("not an HTTP method"),
    );
    check(
        &[("x-original-method", "GET"), ("x-original-uri", "/a b")],
        Err("not a request target"),
    );
}

#[test]
fn decision_dialect_is_chosen_by_the_path_asked_on() {
    for (path, dialect) in [
        ("/", Dialect::Plain),
        ("/decide", Dialect::Plain),
        ("/nginxx", Dialect::Plain),
        ("/nginx", Dialect::Nginx),
        ("/nginx/", Dialect::Nginx),
        ("/nginx/todoitems", Dialect::Nginx),
        ("/envoy", Dialect::Envoy),
        ("/envoy/todoitems", Dialect::Envoy),
        ("/envoyx/todoitems", Dialect::Plain),
    ] {
        assert_eq!(Dialect::of(path), dialect, "{path}");
    }
}

#[test]
fn decision_for_nginx_turns_other_refusals_into_403_with_the_real_status() {
    let plain = Dialect::Plain.refusal(GatewayError::NoRoute);
    assert_eq!(plain.status(), 404);
    assert!(plain.headers().get(X_AUTHZ_STATUS).is_none());

    let nginx = Dialect::Nginx.refusal(GatewayError::MethodNotAllowed {
        allow: "GET, POST".into(),
    });
    assert_eq!(nginx.status(), 403);
    assert_eq!(nginx.headers()[X_AUTHZ_STATUS], "405");
    assert_eq!(nginx.headers()[http::header::ALLOW], "GET, POST");
    assert_eq!(
        nginx.headers()[X_AUTHZ_BODY],
        r#"{"detail":"Method Not Allowed"}"#
    );

    let missing = crate::auth::AuthError::one_of_each()
        .into_iter()
        .find(|e| e.reason() == "missing_token")
        .unwrap();
    let nginx = Dialect::Nginx.refusal(GatewayError::Auth(missing));
    assert_eq!(nginx.status(), 403);
    assert_eq!(nginx.headers()[X_AUTHZ_STATUS], "401");
    assert_eq!(nginx.headers()[http::header::WWW_AUTHENTICATE], "Bearer");
}

#[test]
fn decision_body_header_is_ascii_json() {
    let body = serde_json::json!({"detail": "caf\u{e9} \u{1f600} \"q\""});
    let text = ascii_json(&body);
    assert!(text.is_ascii(), "{text}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        body
    );
}

#[test]
fn decision_for_envoy_is_the_question_itself_under_the_prefix() {
    let ask = |method: &str, target: &str| {
        describe_envoy(
            &Method::from_bytes(method.as_bytes()).unwrap(),
            &Uri::try_from(target).unwrap(),
        )
        .map(|d| (d.method.to_string(), d.target.to_string()))
        .map_err(|e| e.reason())
    };
    assert_eq!(
        ask("DELETE", "/envoy/todoitems/../todoitems?x=1"),
        Ok(("DELETE".into(), "/todoitems/../todoitems?x=1".into()))
    );
    assert_eq!(ask("GET", "/envoy"), Err("no_original_request"));
    assert_eq!(ask("GET", "/envoy?x=/a"), Err("no_original_request"));
}
