//! The gateway's JSON log captured in-process, for tests that read the
//! access log: the first call of [`captured`] installs the gateway's own
//! subscriber ([`authz_proxy::logging::init_with`]) writing to a buffer, for
//! the whole test process; each test finds its lines by request id.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use authz_proxy::logging::LogFormat;
use serde_json::Value;
use tokio::sync::watch;

/// Everything the subscriber wrote, and a counter that moves on each write.
pub struct Captured {
    text: Mutex<Vec<u8>>,
    writes: watch::Sender<u64>,
}

struct CaptureWriter(Arc<Captured>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.text.lock().unwrap().extend_from_slice(buf);
        self.0.writes.send_modify(|n| *n += 1);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide capture, installed on first use.
pub fn captured() -> Arc<Captured> {
    static CAPTURED: OnceLock<Arc<Captured>> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Arc::new(Captured {
                text: Mutex::new(Vec::new()),
                writes: watch::Sender::new(0),
            });
            let sink = Arc::clone(&captured);
            authz_proxy::logging::init_with(
                LogFormat::Json,
                // warp's own per-request lines off, as the backend binary has them.
                "info,warp::filters::trace=off",
                move || CaptureWriter(Arc::clone(&sink)),
                false,
            )
            .expect("the only subscriber of this test process");
            captured
        })
        .clone()
}

/// Every captured JSON line that `pick` selects.
pub fn lines_where(pick: impl Fn(&Value) -> bool) -> Vec<Value> {
    let captured = captured();
    let text = captured.text.lock().unwrap();
    String::from_utf8_lossy(&text)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("every log line is JSON"))
        .filter(|v| pick(v))
        .collect()
}

/// Waits (on writes, not on a clock) until the access log line of request
/// `id` is there, and returns it.
pub async fn access_line(id: &str) -> Value {
    let is_it = |v: &Value| v["target"] == "access" && v["request_id"] == id;
    let mut writes = captured().writes.subscribe();
    let wait = async {
        loop {
            if let Some(line) = lines_where(is_it).pop() {
                return line;
            }
            writes.changed().await.expect("capture lives");
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("no access log line for request {id}"))
}
