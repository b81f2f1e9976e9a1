//! Socket-level helpers for TCP connections: keepalive, user timeout, reading how much of what we
//! wrote the peer has acknowledged, and a stream adapter that counts bytes written to the socket.

use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: plain setsockopt on a socket we own, with a pointer to a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns on TCP keepalive: probes after `idle` of silence (whole seconds, at least 1), 3 probes
/// 10 s apart. A zero `idle` leaves keepalive off.
pub fn set_keepalive(fd: RawFd, idle: Duration) -> io::Result<()> {
    if idle.is_zero() {
        return Ok(());
    }
    let idle_secs = idle.as_secs().max(1);
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    #[cfg(target_os = "linux")]
    {
        setsockopt_int(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPIDLE,
            idle_secs.min(32_767) as libc::c_int,
        )?;
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10)?;
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3)?;
    }
    Ok(())
}

/// Declares the connection dead when sent data stays unacknowledged for `timeout`
/// (Linux `TCP_USER_TIMEOUT`; no-op elsewhere or when zero).
pub fn set_user_timeout(fd: RawFd, timeout: Duration) -> io::Result<()> {
    let millis = timeout.as_millis().min(i32::MAX as u128) as u64;
    #[cfg(target_os = "linux")]
    if millis > 0 {
        setsockopt_int(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            millis.min(i32::MAX as u64) as libc::c_int,
        )?;
    }
    let _ = (fd, millis);
    Ok(())
}

/// Bytes written to the socket that the peer has not acknowledged yet (sent or still queued):
/// Linux `ioctl(SIOCOUTQ)`. Elsewhere returns 0, i.e. written counts as acknowledged.
pub fn unacknowledged_bytes(fd: RawFd) -> io::Result<u64> {
    #[cfg(target_os = "linux")]
    {
        let mut n: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (= TIOCOUTQ) writes one c_int through the pointer.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n.max(0) as u64)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        Ok(0)
    }
}

/// Wraps a socket and counts the bytes actually written to it (for TLS: record bytes, not
/// plaintext), so they can be compared with the kernel's unacknowledged count.
#[derive(Debug)]
pub struct CountingStream<S> {
    inner: S,
    written: Arc<AtomicU64>,
}

impl<S> CountingStream<S> {
    pub fn new(inner: S) -> (CountingStream<S>, Arc<AtomicU64>) {
        let written = Arc::new(AtomicU64::new(0));
        (
            CountingStream {
                inner,
                written: written.clone(),
            },
            written,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            self.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unacknowledged_bytes_drop_to_zero_once_the_peer_acks() {
        use std::os::fd::AsRawFd;
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (_server, _) = listener.accept().await.unwrap();
        let fd = client.as_raw_fd();
        let (mut counted, written) = CountingStream::new(client);
        counted.write_all(&[7u8; 10_000]).await.unwrap();
        assert_eq!(written.load(Ordering::Relaxed), 10_000);
        // the peer's kernel acknowledges even though nobody reads
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while unacknowledged_bytes(fd).unwrap() > 0 {
            assert!(std::time::Instant::now() < deadline, "never acknowledged");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
