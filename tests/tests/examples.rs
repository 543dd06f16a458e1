//! `examples/two-apis`, run for real from its own files: the dev IdP loads
//! the example's `dev-idp.yaml`, the gateway its `policy.yaml` (the reports
//! upstream's compose address rewritten to a second backend on
//! `127.0.0.1:0`, as the example's README does with `sed`), and every
//! `curl` command of the README is sent with the token it names and must
//! get the status its comment promises — a token for one API refused on
//! the other's routes included. `check --strict` passes on the policy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use authz_proxy::cli::check::CheckArgs;
use dev_idp::mint::MintRequest;
use e2e_tests::{Options, System};
use http::Method;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The reports upstream's address in the example's policy (its compose
/// service name), which a local run replaces.
const REPORTS_URL: &str = "http://reports:8081";

fn example(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/two-apis")
        .join(file)
}

/// One `curl` command of the README, continuation lines joined.
#[derive(Debug)]
struct Curl {
    line: usize,
    method: Method,
    path: String,
    /// The shell variable holding the bearer token, if any.
    token: Option<String>,
    body: Option<String>,
    /// The status the comment promises.
    expect: u16,
    /// `wrong audience for route <name>` when the comment says so.
    wrong_audience_for: Option<String>,
}

/// The README's commands: each `VAR=$(… token --user U [--api A])` (the
/// first definition of each variable: the local one) and each `curl`.
fn readme() -> (HashMap<String, MintRequest>, Vec<Curl>) {
    let text = std::fs::read_to_string(example("README.md")).unwrap();
    let mut tokens = HashMap::new();
    let mut calls = Vec::new();
    let mut joined = String::new();
    let mut first_line = 0;
    for (n, line) in text.lines().enumerate() {
        if joined.is_empty() {
            first_line = n + 1;
        }
        if let Some(start) = line.strip_suffix('\\') {
            joined.push_str(start);
            continue;
        }
        joined.push_str(line);
        let command = std::mem::take(&mut joined);
        let words: Vec<&str> = command.split_whitespace().collect();
        let after = |flag: &str| {
            let i = words.iter().position(|w| *w == flag)?;
            Some(words[i + 1].trim_end_matches(')').to_owned())
        };
        if let Some((var, rest)) = command.split_once("=$(")
            && rest.contains(" token ")
        {
            let mut mint = MintRequest::user(after("--user").expect("--user"));
            if let Some(api) = after("--api") {
                mint = mint.api(api);
            }
            tokens.entry(var.trim().to_owned()).or_insert(mint);
        }
        if !command.trim_start().starts_with("curl ") {
            continue;
        }
        let Some(rest) = command.split("http://localhost:8000").nth(1) else {
            continue;
        };
        let path: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
        let (_, comment) = command.split_once('#').expect("a comment with the status");
        let comment = comment.trim();
        let expect = comment[..3]
            .parse()
            .expect("the comment starts with the status");
        let wrong_audience_for = comment
            .split_once("wrong audience for route `")
            .map(|(_, r)| r.trim_end_matches('`').to_owned());
        let token = command.split_once("Bearer $").map(|(_, r)| {
            r.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        });
        let body = command
            .split_once("-d '")
            .map(|(_, r)| r.split_once('\'').unwrap().0.to_owned());
        let method = match after("-X") {
            Some(m) => m.parse().unwrap(),
            None if body.is_some() => Method::POST,
            None => Method::GET,
        };
        calls.push(Curl {
            line: first_line,
            method,
            path,
            token,
            body,
            expect,
            wrong_audience_for,
        });
    }
    (tokens, calls)
}

#[tokio::test]
async fn the_two_apis_example_runs_as_its_readme_says() {
    // The reports API: a second todo backend.
    let scratch = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reports_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_reports, stopped) = oneshot::channel::<()>();
    let database = todo_backend::Database::Sqlite(scratch.path().join("reports.db"));
    let reports = tokio::spawn(todo_backend::run(
        listener,
        todo_backend::Config::new(database),
        async {
            let _ = stopped.await;
        },
    ));

    // The example's policy, its reports upstream on this machine.
    let policy = std::fs::read_to_string(example("policy.yaml")).unwrap();
    assert_eq!(policy.matches(REPORTS_URL).count(), 1, "{REPORTS_URL} once");
    let local_policy = scratch.path().join("policy.yaml");
    std::fs::write(&local_policy, policy.replace(REPORTS_URL, &reports_url)).unwrap();
    let sys = System::start_with(Options {
        idp_config: dev_idp::Config::load(&example("dev-idp.yaml")).unwrap(),
        policy: local_policy,
        ..Options::default()
    })
    .await
    .unwrap();
    sys.first_key_fetch().await;

    let (tokens, calls) = readme();
    assert!(calls.len() >= 8, "only {} curl commands found", calls.len());
    let mut refused_for_audience = 0;
    for call in &calls {
        let mut request = sys.http.request(
            call.method.clone(),
            format!("{}{}", sys.gateway_url, call.path),
        );
        if let Some(var) = &call.token {
            let mint = tokens
                .get(var)
                .unwrap_or_else(|| panic!("${var} is never minted"));
            request = request.bearer_auth(sys.token(mint.clone()));
        }
        if let Some(body) = &call.body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(
            status, call.expect,
            "README.md:{}: {} {}: {body}",
            call.line, call.method, call.path
        );
        if let Some(route) = &call.wrong_audience_for {
            assert!(
                body.contains(&format!("wrong audience for route `{route}`")),
                "README.md:{}: {body}",
                call.line
            );
            refused_for_audience += 1;
        }
    }
    assert_eq!(refused_for_audience, 2, "one refusal each way");

    // Each backend got only its own API's items: bob, Admin of both, sees
    // all of the tenant's on each.
    let list = |path: &'static str, api: Option<&'static str>| {
        let mut mint = MintRequest::user("bob");
        if let Some(api) = api {
            mint = mint.api(api);
        }
        let request = sys
            .http
            .get(format!("{}{path}", sys.gateway_url))
            .bearer_auth(sys.token(mint));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let orders = list("/todoitems", None).await;
    let reported = list("/reports/todoitems", Some("reports-api")).await;
    assert!(
        orders.contains("Order 1") && !orders.contains("Q4"),
        "{orders}"
    );
    assert!(
        reported.contains("Q4") && !reported.contains("Order 1"),
        "{reported}"
    );

    sys.stop().await.unwrap();
    let _ = stop_reports.send(());
    reports.await.unwrap().unwrap();
}

#[test]
fn the_two_apis_policy_passes_check_strict() {
    let output = authz_proxy::cli::check::run(&CheckArgs {
        policy: example("policy.yaml"),
        strict: true,
        openapi: None,
    });
    assert_eq!(output.stderr, "");
    assert_eq!(output.code, 0, "{}", output.stdout);
    assert!(output.stdout.contains("ok: 8 routes"), "{}", output.stdout);
    assert!(
        output.stdout.contains("upstream `reports`"),
        "{}",
        output.stdout
    );
}
