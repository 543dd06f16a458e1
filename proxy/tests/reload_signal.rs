//! SIGHUP through the built binary: the running gateway reloads a changed
//! policy file and logs the new hash. The signal goes to the child process,
//! never to the test process; the test waits on the child's log lines.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const OLD: &str = "version: 1\nroutes:\n  - name: health\n    path: /health\n    methods: [GET]\n    allow: anonymous\n";
const NEW: &str = "version: 1\nroutes:\n  - name: health\n    path: /health\n    methods: [GET, HEAD]\n    allow: anonymous\n";

#[test]
fn sighup_makes_the_running_binary_reload_a_changed_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, OLD).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_authz-proxy"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--upstream", "http://127.0.0.1:9"])
        .args(["--tenant", "aaaaaaaa-0000-4000-8000-000000000001"])
        .args(["--client-id", "c0ffee00-0000-4000-8000-0000000000a1"])
        // Loopback and closed: the key fetch fails, which does not matter here.
        .args([
            "--instance",
            "http://127.0.0.1:9",
            "--sts-instance",
            "http://127.0.0.1:9",
        ])
        .args(["--policy-poll-seconds", "0", "--log-format", "text"])
        .arg("--policy")
        .arg(&policy)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start authz-proxy");
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // A bound on a broken binary, not a synchronisation: lines arrive at once.
    let wait_for = |needle: &str| -> String {
        loop {
            let line = received
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no log line containing {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    };
    let in_force = wait_for("reloads on SIGHUP");
    let old_hash = authz_proxy::reload::policy_hash(OLD.as_bytes());
    assert!(in_force.contains(&old_hash), "{in_force}");

    std::fs::write(&policy, NEW).unwrap();
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(sent.success());
    let reloaded = wait_for("policy reloaded");
    assert!(
        reloaded.contains(&authz_proxy::reload::policy_hash(NEW.as_bytes())),
        "{reloaded}"
    );
    assert!(
        reloaded.contains("trigger=\"sighup\"") || reloaded.contains("trigger=sighup"),
        "{reloaded}"
    );

    child.kill().unwrap();
    child.wait().unwrap();
}
