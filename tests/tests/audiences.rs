//! One API registration per route (`audiences:` in `policy.yaml`): two
//! backends behind one gateway, each registered as its own API in the
//! (dev) tenant. A token is accepted only on the routes of the API it was
//! issued for, and each backend sees only its own requests.

use dev_idp::config::{Api, App, TokenVersion};
use dev_idp::mint::MintRequest;
use e2e_tests::recorder::Recorder;
use e2e_tests::{Options, System};

const REPORTS_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-0000000000d4";

/// The default upstream (the gateway's own `--client-id`) serves `/orders`;
/// `reports` has its own registration.
fn policy(reports: &str) -> String {
    format!(
        "\
version: 1
upstreams:
  reports: {{url: '{reports}'}}
routes:
  - {{name: orders, path: /orders, methods: [GET]}}
  - name: reports
    path: /reports
    methods: [GET]
    upstream: reports
    audiences: [{REPORTS_CLIENT_ID}, api://{REPORTS_CLIENT_ID}]
"
    )
}

/// The embedded dev tenant plus a second API, `reports-api`, whose users
/// get no app role (the routes ask for none).
fn idp_config() -> dev_idp::Config {
    let mut config = dev_idp::Config::embedded_default();
    config.apps.push(App {
        name: "reports-api".into(),
        client_id: REPORTS_CLIENT_ID.into(),
        api: Some(Api {
            identifier_uri: format!("api://{REPORTS_CLIENT_ID}"),
            scopes: vec!["access_as_user".into()],
            app_roles: Vec::new(),
            access_token_accepted_version: TokenVersion::V2,
            groups_claim: false,
        }),
        public_client: false,
        implicit_access_tokens: false,
        client_certificate: false,
        redirect_uris: Vec::new(),
        secret: None,
        application_permissions: Default::default(),
    });
    config
}

async fn get(sys: &System, path: &str, token: &str) -> reqwest::Response {
    sys.http
        .get(format!("{}{path}", sys.gateway_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_passes_only_on_the_routes_of_its_own_api() {
    let (orders, reports) = (Recorder::start().await, Recorder::start().await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, policy(&reports.url)).unwrap();
    let sys = System::start_with(Options {
        policy: file,
        upstream: Some(orders.url.clone()),
        idp_config: idp_config(),
        ..Options::default()
    })
    .await
    .unwrap();

    let for_orders = sys.token(MintRequest::user("alice"));
    let for_reports = sys.token(MintRequest::user("alice").api("reports-api"));
    let v1_for_reports = sys.token(
        MintRequest::user("alice")
            .api("reports-api")
            .version(TokenVersion::V1),
    );

    // Each token on its own API's route.
    assert_eq!(get(&sys, "/orders", &for_orders).await.status(), 200);
    assert_eq!(get(&sys, "/reports", &for_reports).await.status(), 200);
    assert_eq!(get(&sys, "/reports", &v1_for_reports).await.status(), 200);
    assert_eq!(orders.count(), 1);
    assert_eq!(reports.count(), 2);

    // Each token on the other API's route: 401 invalid_token, naming the route.
    for (path, token) in [("/reports", &for_orders), ("/orders", &for_reports)] {
        let response = get(&sys, path, token).await;
        assert_eq!(response.status(), 401, "{path}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let route = &path[1..];
        assert_eq!(
            challenge,
            format!(
                "Bearer error=\"invalid_token\", error_description=\"the token is not meant \
                 for this API (wrong audience for route `{route}`)\""
            ),
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body["detail"],
            format!("the token is not meant for this API (wrong audience for route `{route}`)")
        );
    }
    assert_eq!(orders.count(), 1, "nothing more reached the orders API");
    assert_eq!(reports.count(), 2, "nothing more reached the reports API");

    // A token for an API no route names fails authentication itself.
    let elsewhere = sys.token(MintRequest::user("alice").audience("api://someone-else"));
    for path in ["/orders", "/reports"] {
        assert_eq!(get(&sys, path, &elsewhere).await.status(), 401);
    }

    let metrics = sys.metrics().await;
    assert!(
        metrics.contains(r#"authz_proxy_denials_total{reason="wrong_audience"} 4"#),
        "{metrics}"
    );
    sys.stop().await.unwrap();
}
