//! The `dev-idp` binary: tokens it prints verify against a server sharing its
//! data directory, `rotate-keys` is seen by that server, and a bad
//! configuration is reported as `file:line:col`.

use crate::support;

use std::process::Command;

use dev_idp::Config;
use support::{CONTOSO, DAEMON_CLIENT_ID, start};

fn dev_idp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dev-idp"))
        .args(args)
        .env_remove("DEV_IDP_CONFIG")
        .env_remove("DEV_IDP_BASE_URL")
        .env_remove("DEV_IDP_DATA_DIR")
        .output()
        .expect("dev-idp runs")
}

#[tokio::test]
async fn cli_tokens_verify_against_the_servers_jwks() {
    let s = start().await;
    let dir = s.dir.path().to_str().unwrap().to_owned();
    let user = dev_idp(&[
        "--data-dir",
        &dir,
        "--base-url",
        &s.base,
        "token",
        "--user",
        "alice",
    ]);
    assert!(
        user.status.success(),
        "{}",
        String::from_utf8_lossy(&user.stderr)
    );
    let token = String::from_utf8(user.stdout).unwrap();
    let claims = s.verify_v2(token.trim()).await;
    assert_eq!(claims["preferred_username"], "alice@contoso.dev");

    let app = dev_idp(&[
        "--data-dir",
        &dir,
        "--base-url",
        &s.base,
        "token",
        "--app",
        "daemon",
    ]);
    let claims = s
        .verify_v2(String::from_utf8(app.stdout).unwrap().trim())
        .await;
    assert_eq!(claims["azp"], DAEMON_CLIENT_ID);
    assert_eq!(claims["idtyp"], "app");
    s.stop().await;
}

#[tokio::test]
async fn cli_rotation_is_seen_by_a_running_server() {
    let s = start().await;
    let before = s.idp.current_kid().unwrap();
    let out = dev_idp(&["--data-dir", s.dir.path().to_str().unwrap(), "rotate-keys"]);
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_ne!(printed, before);
    assert_eq!(s.idp.current_kid().unwrap(), printed);
    let kids: Vec<_> = s
        .jwks(CONTOSO)
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, [printed, before]);
    s.stop().await;
}

#[test]
fn test_only_flags_are_listed_under_their_own_heading() {
    let help = String::from_utf8(dev_idp(&["token", "--help"]).stdout).unwrap();
    let heading = help.find("Test-only").expect("a test-only heading");
    for flag in ["--expired", "--audience", "--issuer", "--not-before-in"] {
        assert!(
            help.find(flag).unwrap() > heading,
            "{flag} is not under the test-only heading"
        );
    }
}

#[test]
fn a_bad_config_file_is_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp.yaml");
    let yaml = dev_idp::config::EMBEDDED_DEFAULT.replace("tenant: fabrikam", "tenant: atlantis");
    std::fs::write(&path, yaml).unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    let line = dev_idp::config::EMBEDDED_DEFAULT
        .lines()
        .position(|l| l.contains("tenant: fabrikam"))
        .unwrap()
        + 1;
    let expected = format!(
        "{}:{line}:13: user 'carol': unknown tenant 'atlantis'",
        path.display()
    );
    assert_eq!(err, expected);

    let out = dev_idp(&["--config", path.to_str().unwrap(), "check-config"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&expected));
}

#[test]
fn a_missing_config_file_names_the_path() {
    let err = Config::load(std::path::Path::new("/nonexistent/idp.yaml"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("/nonexistent/idp.yaml: "), "{err}");
}

/// Log lines carry no colour codes when stderr is not a terminal (a pipe
/// here; a container's log under docker compose).
#[tokio::test]
async fn serve_writes_no_colour_codes_into_a_pipe() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dev-idp"))
        .args(["--data-dir", dir.path().to_str().unwrap(), "serve"])
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("DEV_IDP_CONFIG")
        .env_remove("DEV_IDP_BASE_URL")
        .env_remove("DEV_IDP_DATA_DIR")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("dev-idp serve runs");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("dev-idp printed its address").unwrap();
        if let Some(addr) = line.strip_prefix("dev-idp listening on ") {
            break addr.trim().to_string();
        }
    };
    // A token request, which the server logs through tracing.
    let response = reqwest::Client::new()
        .post(format!("{base}/{CONTOSO}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DAEMON_CLIENT_ID),
            ("client_secret", "dev-daemon-secret"),
            (
                "scope",
                "api://c0ffee00-0000-4000-8000-0000000000a1/.default",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let logged = loop {
        let line = lines.next().expect("a log line for the token").unwrap();
        if line.contains("issued an app-only token") {
            break line;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !logged.contains('\u{1b}'),
        "colour codes in a pipe: {logged:?}"
    );
}

#[tokio::test]
async fn cli_tokens_carry_acrs_and_client_capabilities_when_asked() {
    let s = start().await;
    let dir = s.dir.path().to_str().unwrap().to_owned();
    let out = dev_idp(&[
        "--data-dir",
        &dir,
        "--base-url",
        &s.base,
        "token",
        "--user",
        "alice",
        "--acrs",
        "c1,c2",
        "--client-capability",
        "cp1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims = s
        .verify_v2(String::from_utf8(out.stdout).unwrap().trim())
        .await;
    assert_eq!(claims["acrs"], serde_json::json!(["c1", "c2"]));
    assert_eq!(claims["xms_cc"], serde_json::json!(["cp1"]));

    let bad = dev_idp(&[
        "--data-dir",
        &dir,
        "--base-url",
        &s.base,
        "token",
        "--user",
        "alice",
        "--acrs",
        "C1",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("'C1' is not an authentication context id"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    s.stop().await;
}
