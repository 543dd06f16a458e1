//! The `authz-demo` launcher's first run: `--help` explains and starts
//! nothing; a busy port is named with the flag that moves it.

use std::process::Output;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::process::Command;

/// Runs the demo in a scratch directory (it keeps `data/` there); a demo
/// that starts serving instead of answering is killed after `limit`.
async fn demo(args: &[&str], limit: Duration) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_authz-demo"))
        .args(args)
        .current_dir(dir.path())
        .env_remove("GATEWAY_PORT")
        .env_remove("DEV_IDP_PORT")
        .env_remove("BACKEND_PORT")
        .env_remove("ADMIN_PORT")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("authz-demo runs");
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("authz-demo {args:?} was still running after {limit:?}"))
        .unwrap();
    (output, dir)
}

#[tokio::test]
async fn help_explains_every_port_and_starts_nothing() {
    let (output, dir) = demo(&["--help"], Duration::from_secs(30)).await;
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "Usage: authz-demo",
        "--gateway-port",
        "GATEWAY_PORT",
        "--idp-port",
        "DEV_IDP_PORT",
        "--backend-port",
        "--admin-port",
        "[default: 8000]",
        "[default: 9400]",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
    assert!(!dir.path().join("data").exists(), "--help started the demo");
}

/// Holds a port, starts the demo with `flag` on it (every other port 0),
/// and returns what it said on stderr; it must have failed.
async fn with_busy_port(flag: &str) -> (String, String) {
    let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let mut args = vec![];
    for other in [
        "--gateway-port",
        "--idp-port",
        "--backend-port",
        "--admin-port",
    ] {
        args.push(other);
        args.push(if other == flag { port.as_str() } else { "0" });
    }
    let (output, _dir) = demo(&args, Duration::from_secs(60)).await;
    assert!(!output.status.success());
    (port, String::from_utf8(output.stderr).unwrap())
}

#[tokio::test]
async fn a_busy_gateway_port_is_named_with_the_flag_that_moves_it() {
    let (port, stderr) = with_busy_port("--gateway-port").await;
    let expected = format!(
        "port {port} (gateway) is in use: stop what holds it or pass --gateway-port (or set GATEWAY_PORT)"
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[tokio::test]
async fn a_busy_idp_port_is_named_too() {
    let (port, stderr) = with_busy_port("--idp-port").await;
    let expected = format!(
        "port {port} (dev IdP) is in use: stop what holds it or pass --idp-port (or set DEV_IDP_PORT)"
    );
    assert!(stderr.contains(&expected), "{stderr}");
}
