//! The curl commands in the READMEs call routes the shipped policy has: a
//! command a reader copies must not end in a 404 or 405 that the text does
//! not promise (`dev-idp/README.md` once called `/todos`).

use std::path::Path;

use authz_proxy::policy::{Policy, RouteMatch};
use http::Method;

/// (file, line number, method, path) of every `curl … http://localhost:8000/…`.
fn curl_calls(file: &str) -> Vec<(usize, Method, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join(file)).unwrap();
    let mut calls = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if !line.contains("curl ") {
            continue;
        }
        let Some(rest) = line.split("http://localhost:8000").nth(1) else {
            continue;
        };
        let path: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\'' && *c != '`')
            .collect();
        let words: Vec<&str> = line.split_whitespace().collect();
        let method = match words.iter().position(|w| *w == "-X") {
            Some(i) => words[i + 1].parse().unwrap(),
            None if words.contains(&"-d") => Method::POST,
            None => Method::GET,
        };
        calls.push((
            n + 1,
            method,
            if path.is_empty() { "/".into() } else { path },
        ));
    }
    calls
}

#[test]
fn readme_curl_commands_call_routes_the_policy_has() {
    let policy = Policy::load(&e2e_tests::repo_policy()).unwrap();
    let mut checked = 0;
    for file in ["README.md", "dev-idp/README.md"] {
        for (line, method, path) in curl_calls(file) {
            match policy.route_for(&method, &path) {
                RouteMatch::Found(_) => checked += 1,
                other => panic!("{file}:{line}: {method} {path} is {other:?} in policy.yaml"),
            }
        }
    }
    assert!(checked >= 5, "only {checked} curl commands found");
}
