//! The status page after a morning's mix of requests, and its screenshot.

use super::*;

#[tokio::test]
async fn status_page_shows_routes_denials_and_key_health_escaped() {
    let sys = start().await;
    let client = reqwest::Client::new();
    let alice = sys.token(MintRequest::user("alice"));
    let bob = sys.token(MintRequest::user("bob"));
    let daemon = sys.token(MintRequest::app("daemon"));
    use reqwest::Method as M;
    // A morning's mix: work, a few mistakes, a probe.
    let script: Vec<(M, &str, Option<&str>)> = vec![
        (M::GET, "/health", None),
        (M::GET, "/todoitems", Some(&alice)),
        (M::GET, "/todoitems", Some(&alice)),
        (M::GET, "/todoitems", Some(&bob)),
        (M::DELETE, "/todoitems", Some(&bob)),
        (M::GET, "/todoitems/1", Some(&alice)),
        (M::GET, "/todoitems", None),
        (M::DELETE, "/todoitems", Some(&alice)),
        (M::GET, "/todoitems", Some(&daemon)),
        (M::GET, "/admin&debug=<1>", None),
        (M::PATCH, "/todoitems", Some(&alice)),
        (M::GET, "/todoitems", Some("not-a-jwt")),
    ];
    for (method, path, token) in script {
        send(&sys, &client, method, path, token, None).await;
    }
    let response = sys
        .http
        .get(format!("{}/", sys.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = response.text().await.unwrap();
    for route in ["health", "docs", "todos", "delete-all", "one-todo"] {
        assert!(html.contains(&format!("<code>{route}</code>")), "{route}");
    }
    for reason in [
        "missing_token",
        "missing_role",
        "missing_scope",
        "no_route",
        "method_not_allowed",
        "malformed_token",
    ] {
        assert!(html.contains(&format!("<code>{reason}</code>")), "{reason}");
    }
    let alice_oid = claims(&alice)["oid"].as_str().unwrap().to_owned();
    assert!(html.contains(&alice_oid), "recent denials name the user");
    assert!(html.contains("/admin&amp;debug="), "paths are escaped");
    assert!(!html.contains("<1>") && !html.contains("<script"));
    for token in [&alice, &bob, &daemon] {
        assert!(!html.contains(&token[..40]), "never a token");
    }
    assert!(html.contains("Signing keys") && html.contains("succeeded, 0 failed"));
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "no external resources"
    );

    screenshot(&sys.admin_url).await;
    sys.stop().await.unwrap();
}

/// A PNG of the status page for the README, when Debian's `chromium` is
/// installed (CI installs it); without it there is nothing to take.
async fn screenshot(admin_url: &str) {
    let chromium = PathBuf::from("/usr/bin/chromium");
    if !chromium.exists() {
        let _ = writeln!(std::io::stderr(), "chromium not installed: no screenshot");
        return;
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&target).unwrap();
    let png = target.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("{admin_url}/"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().expect("chromium starts");
    let pid = child.id();
    let waited = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await;
    let status = match waited {
        Ok(joined) => joined.unwrap().expect("chromium exits"),
        Err(_) => {
            // Ours to end: the one process this test started.
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("chromium took more than 120 s");
        }
    };
    drop(profile);
    assert!(status.success(), "chromium failed: {status}");
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
}
