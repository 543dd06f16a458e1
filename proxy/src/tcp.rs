//! Reading a TCP socket as nginx does on epoll: a read that returns fewer
//! bytes than it had room for has emptied the socket's receive queue, so
//! the socket is marked not readable there and then, instead of by one more
//! read that hears `EAGAIN`. (Data arriving after that read is a new edge:
//! epoll reports it, and tokio marks the socket readable again.)
//!
//! Used by the gateway's own HTTP/1.1 server and client on plain
//! connections: one `recvfrom` per message instead of two. Both read heads
//! into a buffer that grows as reads fill it ([`ReadSize`]).

use std::io;

use bytes::{BufMut, BytesMut};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// The room a buffer's first read asks for: a request head with a bearer
/// token, or a typical response head and a small body, fit. A connection
/// in use holds no more than its messages need (hyper reserves 8 KiB),
/// which is what counts at 1,000 clients.
const READ_FIRST: usize = 2 * 1024;

/// The most room a single read asks for.
const READ_MAX: usize = 64 * 1024;

/// Less room than this left in the buffer, and a read asks for more.
pub(crate) const READ_SPARE_MIN: usize = 512;

/// The room the next read of a growing buffer asks for: [`READ_FIRST`],
/// doubled by every read that fills the buffer, up to [`READ_MAX`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadSize(usize);

impl Default for ReadSize {
    fn default() -> ReadSize {
        ReadSize(READ_FIRST)
    }
}

impl ReadSize {
    /// Reads what `io` has into `buf`, making room first when little is
    /// left; as [`read_buf`].
    pub(crate) fn read(&mut self, io: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
        if buf.capacity() - buf.len() < READ_SPARE_MIN {
            buf.reserve(self.0);
        }
        let room = buf.capacity() - buf.len();
        let read = read_buf(io, buf, room)?;
        if read == room {
            self.0 = (self.0 * 2).min(READ_MAX);
        }
        Ok(read)
    }
}

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
