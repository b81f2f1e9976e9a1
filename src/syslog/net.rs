//! Socket-level helpers for TCP outputs: keepalive, user timeout, reading how much of what we
//! wrote the peer has acknowledged, and a stream adapter that counts bytes written to the socket.

use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

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

/// Turns on TCP keepalive: probes after `idle_secs` of silence, 3 probes 10 s apart.
/// `idle_secs == 0` leaves keepalive off.
pub fn set_keepalive(fd: RawFd, idle_secs: u64) -> io::Result<()> {
    if idle_secs == 0 {
        return Ok(());
    }
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

/// Declares the connection dead when sent data stays unacknowledged for `millis`
/// (Linux `TCP_USER_TIMEOUT`; no-op elsewhere or when 0).
pub fn set_user_timeout(fd: RawFd, millis: u64) -> io::Result<()> {
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

/// Exponential backoff with jitter: each delay is drawn from the upper half of a window that
/// doubles per failure, from `min` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: f64,
    max: f64,
    failures: u32,
}

impl Backoff {
    pub fn new(min_secs: f64, max_secs: f64) -> Backoff {
        Backoff {
            min: min_secs,
            max: max_secs.max(min_secs),
            failures: 0,
        }
    }

    /// Delay before the next attempt, after one more failure.
    pub fn next_delay(&mut self) -> std::time::Duration {
        let window = (self.min * 2f64.powi(self.failures.min(30) as i32)).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let jittered = window * (0.5 + 0.5 * rand::random::<f64>());
        std::time::Duration::from_secs_f64(jittered.max(0.001))
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(0.5, 4.0);
        let d: Vec<f64> = (0..8).map(|_| b.next_delay().as_secs_f64()).collect();
        assert!((0.25..=0.5).contains(&d[0]), "{d:?}");
        assert!((0.5..=1.0).contains(&d[1]), "{d:?}");
        assert!((1.0..=2.0).contains(&d[2]), "{d:?}");
        assert!(d[3..].iter().all(|x| (2.0..=4.0).contains(x)), "{d:?}");
        b.reset();
        assert!(b.next_delay().as_secs_f64() <= 0.5);
    }

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
