//! Swagger UI and `/openapi.json` served by the gateway (`proxy/src/docs.rs`):
//! the pages and vendored files, the backend's live document with the
//! policy's security added, and the policy still deciding who reads them.

use e2e_tests::{API_CLIENT_ID, Options, SWAGGER_CLIENT_ID, System, TENANT};
use serde_json::{Value, json};

fn with_docs() -> Options {
    Options {
        gateway_args: vec!["--swagger-ui-client-id".into(), SWAGGER_CLIENT_ID.into()],
        ..Options::default()
    }
}

async fn get(sys: &System, path: &str) -> reqwest::Response {
    sys.http
        .get(format!("{}{path}", sys.gateway_url))
        .send()
        .await
        .expect("gateway answers")
}

#[tokio::test]
async fn docs_page_and_assets_are_served_by_the_gateway_without_a_cdn() {
    let sys = System::start_with(with_docs()).await.unwrap();
    let page = get(&sys, "/docs").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains(&format!("connect-src 'self' {}", sys.idp.base_url())),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    // Every script and style comes from the gateway itself.
    assert!(
        html.contains("src=\"/docs/swagger-ui-bundle.js\""),
        "{html}"
    );
    assert!(
        !html.contains("http"),
        "no absolute URL in the page: {html}"
    );

    for (path, content_type, min_len) in [
        ("/docs/swagger-ui-bundle.js", "text/javascript", 1_000_000),
        ("/docs/swagger-ui.css", "text/css", 100_000),
        ("/docs/oauth2-redirect.js", "text/javascript", 500),
        ("/docs/favicon-32x32.png", "image/png", 100),
        ("/docs/LICENSE", "text/plain", 10_000),
    ] {
        let response = get(&sys, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}"
        );
        assert!(response.bytes().await.unwrap().len() >= min_len, "{path}");
    }

    let init = get(&sys, "/docs/swagger-initializer.js").await;
    let init = init.text().await.unwrap();
    assert!(
        init.contains(&format!("\"clientId\":\"{SWAGGER_CLIENT_ID}\"")),
        "{init}"
    );
    assert!(
        init.contains("\"usePkceWithAuthorizationCodeGrant\":true"),
        "{init}"
    );

    let redirect = get(&sys, "/oauth2-redirect?code=x&state=y").await;
    assert_eq!(redirect.status(), 200);
    assert_eq!(redirect.headers()["referrer-policy"], "no-referrer");
    assert!(
        redirect
            .text()
            .await
            .unwrap()
            .contains("/docs/oauth2-redirect.js")
    );

    // Unknown files under /docs are the gateway's 404, never forwarded.
    let missing = get(&sys, "/docs/nothing.js").await;
    assert_eq!(missing.status(), 404);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn openapi_json_is_the_backend_document_with_the_policy_security() {
    let sys = System::start_with(with_docs()).await.unwrap();
    let response = get(&sys, "/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(
        doc["info"]["title"], "todo-backend",
        "the backend's live document"
    );

    let flow = &doc["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
    let authority = format!("{}/{TENANT}/oauth2/v2.0", sys.idp.base_url());
    assert_eq!(flow["authorizationUrl"], format!("{authority}/authorize"));
    assert_eq!(flow["tokenUrl"], format!("{authority}/token"));
    let scope = format!("api://{API_CLIENT_ID}/access_as_user");
    assert_eq!(flow["scopes"], json!({ scope.clone(): "access_as_user" }));

    let paths = &doc["paths"];
    // Public operations stay public.
    assert!(paths["/health"]["get"].get("security").is_none());
    assert!(paths["/openapi.json"]["get"].get("security").is_none());
    // Token routes carry the scheme and say what they require.
    for (path, method) in [
        ("/todoitems", "get"),
        ("/todoitems", "post"),
        ("/todoitems", "delete"),
        ("/todoitems/{id}", "get"),
        ("/todoitems/{id}", "delete"),
    ] {
        let operation = &paths[path][method];
        assert_eq!(
            operation["security"],
            json!([{ "oauth2": [scope.clone()] }]),
            "{method} {path}"
        );
        let text = operation["description"].as_str().unwrap_or_default();
        assert!(
            text.contains("Requires scope: access_as_user"),
            "{method} {path}: {text}"
        );
    }
    let delete_all = paths["/todoitems"]["delete"]["description"]
        .as_str()
        .unwrap();
    assert!(delete_all.contains("Requires role: Admin"), "{delete_all}");
    let post = paths["/todoitems"]["post"]["description"].as_str().unwrap();
    assert!(!post.contains("role"), "{post}");
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_swagger_client_the_docs_paths_are_forwarded_unchanged() {
    let sys = System::start().await.unwrap();
    let doc: Value = get(&sys, "/openapi.json").await.json().await.unwrap();
    assert!(doc["components"].get("securitySchemes").is_none(), "{doc}");
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn the_policy_still_decides_who_reads_the_docs() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "version: 1\nroutes:\n\
         \x20 - {name: docs, paths: [/docs, /docs/**, /openapi.json], methods: [GET], roles: [Admin]}\n\
         \x20 - {name: todos, path: /todoitems, methods: [GET], scopes: [access_as_user]}\n",
    )
    .unwrap();
    let sys = System::start_with(Options {
        policy,
        ..with_docs()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;
    assert_eq!(get(&sys, "/docs").await.status(), 401);
    assert_eq!(get(&sys, "/openapi.json").await.status(), 401);
    // Not in this policy at all: 404 before the docs are even considered.
    assert_eq!(get(&sys, "/oauth2-redirect").await.status(), 404);
    assert_eq!(
        sys.http
            .post(format!("{}/docs", sys.gateway_url))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    let alice = sys.token(dev_idp::MintRequest::user("alice"));
    let denied = sys
        .http
        .get(format!("{}/openapi.json", sys.gateway_url))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let bob = sys.token(dev_idp::MintRequest::user("bob"));
    let allowed = sys
        .http
        .get(format!("{}/openapi.json", sys.gateway_url))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let doc: Value = allowed.json().await.unwrap();
    // Operations this policy does not admit are not documented.
    assert!(doc["paths"].get("/health").is_none(), "{}", doc["paths"]);
    assert!(doc["paths"]["/todoitems"].get("post").is_none());
    sys.stop().await.unwrap();
}

#[test]
fn swagger_client_id_is_checked_and_no_docs_turns_the_docs_off() {
    let policy = e2e_tests::repo_policy().display().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "authz-proxy",
            "--upstream",
            "http://127.0.0.1:1",
            "--policy",
            &policy,
            "--tenant",
            TENANT,
            "--client-id",
            API_CLIENT_ID,
            "--instance",
            "http://localhost:9400",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let error = e2e_tests::gateway_config(&args(&["--swagger-ui-client-id", "swagger"]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("--swagger-ui-client-id must be"), "{error}");

    let config =
        e2e_tests::gateway_config(&args(&["--swagger-ui-client-id", SWAGGER_CLIENT_ID])).unwrap();
    let docs = config.docs.expect("docs enabled");
    assert_eq!(
        docs.authorize_url,
        format!("http://localhost:9400/{TENANT}/oauth2/v2.0/authorize")
    );

    let config = e2e_tests::gateway_config(&args(&[
        "--swagger-ui-client-id",
        SWAGGER_CLIENT_ID,
        "--no-docs",
    ]))
    .unwrap();
    assert!(config.docs.is_none());
}
