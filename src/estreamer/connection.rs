//! A framed eStreamer connection (mini-redis's `Connection` shape): it owns the byte stream and a
//! read buffer, splits whole messages off the buffer without copying their bodies, and writes
//! messages.
//!
//! Partial data stays in the buffer across reads, and [`Connection::read_message`] is
//! cancellation safe: when it is raced against a timeout and loses, the bytes already received
//! wait for the next call. eNcore throws them away on a read timeout and then reads the rest of
//! the message as a header ("invalid version"); this cannot happen here.
//!
//! Generic over the stream, so the client (TLS to the FMC), the simulator (TLS from the client)
//! and tests (in-memory pipes) share it.

use std::collections::VecDeque;
use std::fmt;
use std::io;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::message::{self, DEFAULT_MAX_BODY, FrameError, HEADER_LEN, Message};

/// Room made in the buffer before each read.
const READ_CHUNK: usize = 64 * 1024;
/// The size of an ordinary read buffer (a larger one is made for a large bundle).
const BUFFER_SIZE: usize = 2 * READ_CHUNK;
/// Earlier read buffers watched for reuse: enough to cover the messages in flight downstream
/// at full speed (a few MiB).
const RETIRED: usize = 64;
/// Of those, how many may wait unused (the rest are freed).
const SPARE: usize = 8;

/// Why a message could not be read.
#[derive(Debug)]
pub enum ConnError {
    /// The bytes are not a valid message header (bad version, oversize length). The stream
    /// cannot be resynchronised: drop the connection.
    Frame(FrameError),
    /// The peer closed the connection after sending part of a message.
    ClosedMidMessage { buffered: usize },
    /// The socket or TLS layer failed.
    Io(io::Error),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Frame(e) => e.fmt(f),
            ConnError::ClosedMidMessage { buffered } => write!(
                f,
                "the connection was closed in the middle of a message ({buffered} bytes of it received)"
            ),
            ConnError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ConnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnError::Frame(e) => Some(e),
            ConnError::Io(e) => Some(e),
            ConnError::ClosedMidMessage { .. } => None,
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// A byte stream and its read buffer.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    buffer: BytesMut,
    /// Allocated size of `buffer`'s memory.
    buffer_size: usize,
    /// Earlier ordinary buffers, oldest first, whose messages may still be in use downstream.
    retired: VecDeque<BytesMut>,
    /// Buffers allocated so far (for tests of the reuse).
    allocated: u64,
    max_body: usize,
}

impl<S> Connection<S> {
    pub fn new(stream: S) -> Connection<S> {
        Connection::with_max_body(stream, DEFAULT_MAX_BODY)
    }

    /// A connection that refuses messages whose body is longer than `max_body`.
    pub fn with_max_body(stream: S, max_body: usize) -> Connection<S> {
        Connection {
            stream,
            buffer: BytesMut::with_capacity(READ_CHUNK),
            buffer_size: READ_CHUNK,
            retired: VecDeque::new(),
            allocated: 1,
            max_body,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Bytes received but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Splits a whole message off the buffer, if there is one. The body shares the buffer's
    /// memory.
    fn parse_message(&mut self) -> Result<Option<Message>, FrameError> {
        match message::check(&self.buffer, self.max_body) {
            Ok((kind, total)) => {
                let mut frame = self.buffer.split_to(total).freeze();
                frame.advance(HEADER_LEN);
                Ok(Some(Message { kind, body: frame }))
            }
            Err(FrameError::Incomplete) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes room for the rest of a message whose header is already here (one allocation for a
    /// large bundle instead of many), or for an ordinary read.
    fn reserve_for_next_read(&mut self) {
        let mut wanted = READ_CHUNK;
        if self.buffer.len() >= HEADER_LEN {
            let len = u32::from_be_bytes([
                self.buffer[4],
                self.buffer[5],
                self.buffer[6],
                self.buffer[7],
            ]) as usize;
            // `check` has already refused oversize lengths.
            let missing = (HEADER_LEN + len).saturating_sub(self.buffer.len());
            wanted = wanted.max(missing.min(self.max_body + HEADER_LEN));
        }
        if self.buffer.capacity() - self.buffer.len() < wanted.min(READ_CHUNK) {
            // A fresh buffer with the few bytes of the next message copied over, rather than
            // `reserve`: the messages split off earlier may still share the old allocation, and
            // when they no longer do, growing it copies everything it ever held (the messages
            // already handed on included), not just the unread part.
            let size = wanted.max(BUFFER_SIZE);
            let mut fresh = self.reuse_retired(size).unwrap_or_else(|| {
                self.allocated += 1;
                BytesMut::with_capacity(size)
            });
            fresh.extend_from_slice(&self.buffer);
            let mut old = std::mem::replace(&mut self.buffer, fresh);
            if std::mem::replace(&mut self.buffer_size, size) == BUFFER_SIZE {
                old.clear();
                self.retired.push_back(old);
                // Buffers still in use downstream cost nothing more here; unused ones do.
                let mut spare = 0;
                self.retired.retain_mut(|b| {
                    let unused = b.try_reclaim(BUFFER_SIZE);
                    spare += usize::from(unused);
                    !unused || spare <= SPARE
                });
                if self.retired.len() > RETIRED {
                    self.retired.pop_front();
                }
            }
        }
    }

    /// A retired buffer that nothing downstream holds messages of any more, with room for
    /// `size` bytes. Reusing memory that is already mapped saves the page faults (and the
    /// zeroing by the kernel) of a new allocation: about 4 % of the forwarder's CPU.
    fn reuse_retired(&mut self, size: usize) -> Option<BytesMut> {
        if size > BUFFER_SIZE {
            return None;
        }
        let free = self.retired.iter_mut().position(|b| b.try_reclaim(size))?;
        self.retired.remove(free)
    }
}

impl<S: AsyncRead + Unpin> Connection<S> {
    /// Reads the next whole message. `Ok(None)` means the peer closed the connection cleanly
    /// between messages.
    ///
    /// Cancellation safe: bytes read before a cancellation stay in the buffer.
    pub async fn read_message(&mut self) -> Result<Option<Message>, ConnError> {
        loop {
            if let Some(message) = self.parse_message().map_err(ConnError::Frame)? {
                return Ok(Some(message));
            }
            self.reserve_for_next_read();
            let n = match self.stream.read_buf(&mut self.buffer).await {
                Ok(n) => n,
                Err(e) if is_unexpected_eof(&e) => 0,
                Err(e) => return Err(ConnError::Io(e)),
            };
            if n == 0 {
                return if self.buffer.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnError::ClosedMidMessage {
                        buffered: self.buffer.len(),
                    })
                };
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Connection<S> {
    /// Writes bytes (one or more encoded messages) and flushes them.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Closes the writing side (a TLS close_notify, then the TCP FIN).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.stream.shutdown().await
    }
}

const ERR_LIB_SSL: i32 = 20;
const SSL_R_UNEXPECTED_EOF_WHILE_READING: i32 = 294;

/// OpenSSL 3 reports a peer that closes the TCP connection without a TLS close_notify as an
/// error ("unexpected eof while reading"). The FMC closes like that, so it is an end of stream.
pub fn is_unexpected_eof(err: &io::Error) -> bool {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        return true;
    }
    let Some(ssl_error) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<openssl::ssl::Error>())
    else {
        return false;
    };
    ssl_error.ssl_error().is_some_and(|stack| {
        stack.errors().iter().any(|e| {
            e.library_code() == ERR_LIB_SSL && e.reason_code() == SSL_R_UNEXPECTED_EOF_WHILE_READING
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estreamer::message::{NULL_MESSAGE, encode, error_message, kind};
    use std::time::Duration;

    #[tokio::test]
    async fn messages_split_off_across_reads_and_timeouts() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut conn = Connection::new(client);
        let error = error_message(19, "No space");
        let mut wire = NULL_MESSAGE.to_vec();
        wire.extend_from_slice(&error);

        // Header and part of the body, then a read that times out: nothing may be lost.
        server.write_all(&wire[..11]).await.unwrap();
        let m = conn.read_message().await.unwrap().unwrap();
        assert_eq!((m.kind, m.body.len()), (kind::NULL, 0));
        let timed_out = tokio::time::timeout(Duration::from_millis(50), conn.read_message()).await;
        assert!(timed_out.is_err());
        assert_eq!(conn.buffered(), 3);

        server.write_all(&wire[11..]).await.unwrap();
        let m = conn.read_message().await.unwrap().unwrap();
        assert_eq!(m.kind, kind::ERROR);
        assert_eq!(&m.body[..], &error[8..]);

        drop(server);
        assert!(conn.read_message().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn many_messages_in_one_read_and_a_large_one_in_many() {
        let (client, mut server) = tokio::io::duplex(4096);
        let mut conn = Connection::new(client);
        let big = encode(kind::EVENT_DATA, &vec![7u8; 300_000]);
        let writer = tokio::spawn(async move {
            let mut wire = Vec::new();
            for _ in 0..3 {
                wire.extend_from_slice(&NULL_MESSAGE);
            }
            wire.extend_from_slice(&big);
            server.write_all(&wire).await.unwrap();
        });
        for _ in 0..3 {
            assert_eq!(conn.read_message().await.unwrap().unwrap().kind, kind::NULL);
        }
        let m = conn.read_message().await.unwrap().unwrap();
        assert_eq!(m.body.len(), 300_000);
        assert!(m.body.iter().all(|&b| b == 7));
        writer.await.unwrap();
        assert!(conn.read_message().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn closed_mid_message_bad_version_and_oversize_are_errors() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut conn = Connection::new(client);
        server
            .write_all(&error_message(1, "x")[..10])
            .await
            .unwrap();
        drop(server);
        assert!(matches!(
            conn.read_message().await,
            Err(ConnError::ClosedMidMessage { buffered: 10 })
        ));

        let (client, mut server) = tokio::io::duplex(1024);
        let mut conn = Connection::new(client);
        server.write_all(&[0, 2, 0, 0, 0, 0, 0, 0]).await.unwrap();
        let e = conn.read_message().await.unwrap_err();
        assert!(matches!(e, ConnError::Frame(FrameError::BadVersion(2))));
        assert!(e.to_string().contains("CSCve44987"), "{e}");

        let (client, mut server) = tokio::io::duplex(1024);
        let mut conn = Connection::with_max_body(client, 1000);
        server
            .write_all(&[0, 1, 0, 4, 0, 0, 0x10, 0])
            .await
            .unwrap();
        assert!(matches!(
            conn.read_message().await,
            Err(ConnError::Frame(FrameError::TooLong {
                len: 4096,
                max: 1000
            }))
        ));
    }

    /// Read buffers are reused once the messages split off them are dropped, and never while
    /// one is still held: held messages keep their bytes.
    #[tokio::test]
    async fn buffers_are_reused_only_when_their_messages_are_gone() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut conn = Connection::new(client);
        let body = |i: u32| {
            let mut b = vec![0u8; 40_000];
            b[..4].copy_from_slice(&i.to_be_bytes());
            b
        };
        let writer = tokio::spawn(async move {
            for i in 0..200u32 {
                server
                    .write_all(&encode(kind::EVENT_DATA, &body(i)))
                    .await
                    .unwrap();
            }
            server
        });
        // Hold every message of the first 40: their buffers must not be written over.
        let mut held = Vec::new();
        for i in 0..200u32 {
            let m = conn.read_message().await.unwrap().unwrap();
            assert_eq!(&m.body[..], &body(i)[..], "message {i}");
            if i < 40 {
                held.push(m);
            }
        }
        let mut server = writer.await.unwrap();
        for (i, m) in held.iter().enumerate() {
            assert_eq!(&m.body[..], &body(i as u32)[..], "held message {i}");
        }
        // 200 messages of 40 kB fill about 70 buffers of 128 KiB; the 40 held take about 15.
        assert!(conn.allocated < 30, "{} buffers allocated", conn.allocated);
        assert!(conn.allocated > 10, "{} buffers allocated", conn.allocated);

        // Once nothing is held, at most `SPARE` unused buffers stay (and the one just retired).
        drop(held);
        for i in 0..6u32 {
            server
                .write_all(&encode(kind::EVENT_DATA, &body(i)))
                .await
                .unwrap();
            conn.read_message().await.unwrap().unwrap();
        }
        assert!(
            conn.retired.len() <= SPARE + 1,
            "{} kept",
            conn.retired.len()
        );
    }
}
