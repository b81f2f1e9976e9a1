//! The benchmark's syslog receiver: TLS (or plain TCP) on loopback, reads RFC 6587 frames (octet-counted or
//! LF-terminated) and counts them, nothing else. `bench` runs it in its own process (hidden
//! subcommand `receive`) or in the benchmark's process.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Notify, watch};

use crate::pki::PkiFiles;
use estreamer_cef::cli::signals;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The PKI folder whose server certificate the receiver presents (made by `simulate --init`).
    #[arg(long, value_name = "DIR")]
    pub pki: std::path::PathBuf,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// How the frames are delimited.
    #[arg(long, value_enum, default_value = "octet-counting")]
    pub framing: Framing,
    /// Frames to wait for: a line `received K frames` is printed at every tenth of it, then
    /// `done: N frames, B bytes, cpu S s`. The receiver goes on reading until it is stopped, so
    /// that the forwarder, stopped after it, finds its receiver still there.
    #[arg(long)]
    pub count: u64,
}

/// RFC 6587 framings, as the forwarder's `[[output]] framing` names them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    OctetCounting,
    Lf,
}

/// What the receiver has read so far, over all its connections.
#[derive(Default)]
pub struct Counters {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    /// Woken after each read that counted frames.
    pub progress: Notify,
}

/// Starts the receiver on `listen`; it runs until `stop` changes. Returns the address it listens on.
pub async fn receiver(
    files: &PkiFiles,
    listen: std::net::SocketAddr,
    framing: Framing,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<std::net::SocketAddr> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    b.set_certificate_chain_file(&files.server_cert)?;
    b.set_private_key_file(&files.server_key, SslFiletype::PEM)?;
    listen_and_count(Some(Arc::new(b.build())), listen, framing, counters, stop).await
}

/// [`receiver`] without TLS: plain TCP, for the forwarder's `tcp` output.
pub async fn plain_receiver(
    listen: std::net::SocketAddr,
    framing: Framing,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<std::net::SocketAddr> {
    listen_and_count(None, listen, framing, counters, stop).await
}

async fn listen_and_count(
    tls: Option<Arc<SslAcceptor>>,
    listen: std::net::SocketAddr,
    framing: Framing,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                _ = stop.changed() => return,
            };
            let (tls, counters) = (tls.clone(), counters.clone());
            tokio::spawn(async move {
                let Some(acceptor) = tls else {
                    return count_frames(tcp, framing, &counters).await;
                };
                let Ok(ssl) = openssl::ssl::Ssl::new(acceptor.context()) else {
                    return;
                };
                let Ok(mut s) = tokio_openssl::SslStream::new(ssl, tcp) else {
                    return;
                };
                if std::pin::Pin::new(&mut s).accept().await.is_err() {
                    return;
                }
                count_frames(s, framing, &counters).await
            });
        }
    });
    Ok(addr)
}

/// Reads one connection to its end, counting the frames.
async fn count_frames<S: AsyncRead + Unpin>(mut s: S, framing: Framing, counters: &Counters) {
    let mut buf = vec![0u8; 256 * 1024];
    let (mut have, mut counter) = (0usize, FrameCounter::new(framing));
    loop {
        let n = match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        have += n;
        let used = counter.feed(&buf[..have]);
        let counted = counter.take();
        if counted > 0 {
            counters.frames.fetch_add(counted, Ordering::Relaxed);
            counters.progress.notify_one();
        }
        buf.copy_within(used..have, 0);
        have -= used;
        if have == buf.len() {
            return; // a frame larger than the buffer: not what the forwarder sends
        }
    }
}

/// Counts RFC 6587 frames in a byte stream: octet-counted (`LEN SP MSG`) or LF-terminated.
pub struct FrameCounter {
    framing: Framing,
    counted: u64,
}

impl FrameCounter {
    pub fn new(framing: Framing) -> FrameCounter {
        FrameCounter {
            framing,
            counted: 0,
        }
    }

    /// Counts the complete frames at the start of `buf`; returns the bytes they take.
    pub fn feed(&mut self, buf: &[u8]) -> usize {
        if self.framing == Framing::Lf {
            let Some(last) = buf.iter().rposition(|&b| b == b'\n') else {
                return 0;
            };
            self.counted += buf[..=last].iter().filter(|&&b| b == b'\n').count() as u64;
            return last + 1;
        }
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            let Some(sp) = rest.iter().take(8).position(|&b| b == b' ') else {
                return at;
            };
            let len: usize = match std::str::from_utf8(&rest[..sp])
                .ok()
                .and_then(|s| s.parse().ok())
            {
                Some(l) => l,
                None => return buf.len(), // not octet counting: give up on the rest
            };
            if rest.len() < sp + 1 + len {
                return at;
            }
            at += sp + 1 + len;
            self.counted += 1;
        }
    }

    /// The frames counted since the last call.
    pub fn take(&mut self) -> u64 {
        std::mem::take(&mut self.counted)
    }
}

/// `estreamer-cef-sim receive`: the receiver as a process of its own. Prints its address, a
/// line at every tenth of `--count` (the benchmark times them), then its totals, and reads on
/// until a signal stops it.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let files = PkiFiles::in_dir(&args.pki);
    if !files.server_cert.exists() {
        anyhow::bail!(
            "no PKI in {}: run `estreamer-cef-sim simulate --init {}` first",
            args.pki.display(),
            args.pki.display()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut stop = signals::install(None)?.subscribe();
        let counters = Arc::new(Counters::default());
        let addr = receiver(
            &files,
            args.listen,
            args.framing,
            counters.clone(),
            stop.clone(),
        )
        .await?;
        println!("receiver listening on {addr}");
        let n = args.count.max(1);
        let (mut tenth, mut last, mut last_print) = (1u64, 0u64, Instant::now());
        loop {
            let _ =
                tokio::time::timeout(Duration::from_secs(1), counters.progress.notified()).await;
            let now = counters.frames.load(Ordering::Relaxed);
            while tenth <= 10 && now >= n * tenth / 10 {
                println!("received {} frames", n * tenth / 10);
                tenth += 1;
            }
            if now >= n {
                break;
            }
            if last_print.elapsed() >= Duration::from_secs(5) {
                eprintln!(
                    "  ... {now} records received ({:.0}/s)",
                    (now - last) as f64 / last_print.elapsed().as_secs_f64()
                );
                (last, last_print) = (now, Instant::now());
            }
        }
        let (user, system, _) = super::bench::usage();
        println!(
            "done: {} frames, {} bytes, cpu {:.3} s",
            counters.frames.load(Ordering::Relaxed),
            counters.bytes.load(Ordering::Relaxed),
            (user + system).as_secs_f64()
        );
        let _ = stop.changed().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_complete_frames_and_keeps_the_partial_one() {
        let mut c = FrameCounter::new(Framing::OctetCounting);
        assert_eq!(c.feed(b"3 abc5 hello2 h"), 12);
        assert_eq!(c.take(), 2);
        let mut c = FrameCounter::new(Framing::Lf);
        assert_eq!(c.feed(b"abc\nhello\nhe"), 10);
        assert_eq!(c.take(), 2);
        assert_eq!(c.feed(b"he"), 0);
        assert_eq!(c.take(), 0);
    }
}
