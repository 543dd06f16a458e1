//! The `todo-backend` binary, started as an operator starts it: on a port
//! the OS picks, with its log read from a pipe (never slept on).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// A running `todo-backend` process; killed when dropped.
pub struct Backend {
    pub child: Child,
    pub addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Backend {
    /// Starts the binary with `args` (after `--listen 127.0.0.1:0`) and
    /// waits, by reading its log, until it says where it listens.
    pub fn start<I, S>(args: I) -> Backend
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = Command::new(env!("CARGO_BIN_EXE_todo-backend"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start todo-backend");
        let (lines, log) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        // Stdout is a pipe, so the log is JSON (one object per line).
        let addr = log
            .iter()
            .find_map(|line| {
                let line: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
                line["address"].as_str()?.parse().ok()
            })
            .expect("the backend logs its address");
        Backend { child, addr, log }
    }

    /// Reads log lines until one contains `text` (or the process exits).
    pub fn wait_for_log(&self, text: &str) -> bool {
        self.next_log_with(text).is_some()
    }

    /// Reads log lines until one contains `text`, and returns it; `None`
    /// if the process exits first.
    pub fn next_log_with(&self, text: &str) -> Option<String> {
        self.log.iter().find(|line| line.contains(text))
    }

    /// `http://` + the address it listens on.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
