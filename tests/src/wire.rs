//! Raw HTTP/1.1 on a TCP socket, for requests an HTTP client would refuse to
//! send or would clean up first (smuggling, folding, odd targets, pipelining).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a raw exchange waits for the server to finish answering: a bound
/// on a broken test, never a synchronisation point.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(20);

/// Writes `request` as is, then reads until the server closes the
/// connection; returns everything it answered, heads included. The write may
/// fail half-way when the server closes first (it refused the request):
/// what was answered is returned all the same.
pub async fn exchange(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(request).await;
    read_to_close(&mut stream).await
}

/// Reads until the peer closes (or resets) the connection, bounded in time.
pub async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    let read = tokio::time::timeout(EXCHANGE_LIMIT, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&response).into_owned()
}

/// The status codes of every response in `text`, in order (pipelined
/// responses included).
pub fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.")
        .filter(|(i, _)| *i == 0 || text[..*i].ends_with('\n') || text[..*i].ends_with('}'))
        .filter(|(i, _)| text[i + 8..].starts_with(' '))
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// The gateway's `host:port` from its URL.
pub fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://")
}
