//! Reading a TCP socket as nginx does on epoll: a read that returns fewer
//! bytes than it had room for has emptied the socket's receive queue, so
//! the socket is marked not readable there and then, instead of by one more
//! read that hears `EAGAIN`. (Data arriving after that read is a new edge:
//! epoll reports it, and tokio marks the socket readable again.)
//!
//! Used by the gateway's own HTTP/1.1 server and client on plain
//! connections: one `recvfrom` per message instead of two.

use std::io;

use bytes::BufMut;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Reads what `io` has into `buf`, which has `room` bytes of space: `Ok(0)`
/// at the end of the stream, `WouldBlock` when there is nothing to read.
pub(crate) fn read_buf<B: BufMut>(io: &TcpStream, buf: &mut B, room: usize) -> io::Result<usize> {
    let mut short = None;
    let result = io.try_io(Interest::READABLE, || {
        let read = io.try_read_buf(buf)?;
        if read > 0 && read < room {
            short = Some(read);
            // Not a failure: tells tokio the socket has nothing more.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(read)
    });
    match short {
        Some(read) => Ok(read),
        None => result,
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use tokio::io::AsyncWriteExt as _;
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn a_short_read_returns_its_bytes_and_later_data_still_wakes_the_reader() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::with_capacity(64);
        client.write_all(b"hello").await.unwrap();
        server.readable().await.unwrap();
        let room = buf.capacity();
        assert_eq!(read_buf(&server, &mut buf, room).unwrap(), 5);
        assert_eq!(&buf[..], b"hello");
        // Marked drained: nothing is read without a new edge.
        let room = buf.capacity() - buf.len();
        let e = read_buf(&server, &mut buf, room).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        client.write_all(b" world").await.unwrap();
        server.readable().await.unwrap();
        assert_eq!(read_buf(&server, &mut buf, room).unwrap(), 6);
        drop(client);
        server.readable().await.unwrap();
        let room = buf.capacity() - buf.len();
        assert_eq!(read_buf(&server, &mut buf, room).unwrap(), 0);
        assert_eq!(&buf[..], b"hello world");
    }
}
