//! UDP output (RFC 5426): one message per datagram, never larger than `max_message_bytes`.
//!
//! "Delivered" means handed to the kernel. The socket is connected, so an ICMP "port
//! unreachable" from the receiver shows up as an error on a later send: the datagram that
//! provoked it is gone (UDP), the one being sent is retried. Local errors (no route, no buffer)
//! are retried with backoff, which holds events back instead of dropping them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::syslog::encoder::{Encoded, FrameEncoder};
use super::{Batch, OutputStats, publish_progress};
use crate::net::backoff::Backoff;

/// The output counts as up again after this long without a send error.
const RECOVERY: Duration = Duration::from_secs(1);

pub(crate) struct UdpOutput {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub encoder: FrameEncoder,
}

struct Socket {
    sock: UdpSocket,
    peer: SocketAddr,
}

impl UdpOutput {
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Arc<Batch>>,
        progress: watch::Sender<u64>,
        stats: Arc<OutputStats>,
    ) {
        let mut socket: Option<Socket> = None;
        let mut datagram = Vec::with_capacity(4096);
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut last_error: Option<Instant> = None;
        stats.up.store(true, Ordering::Relaxed);
        while let Some(batch) = rx.recv().await {
            self.encoder.set_time(SystemTime::now());
            for ev in &batch.events {
                datagram.clear();
                match self.encoder.encode(ev, &mut datagram) {
                    Encoded::Framed { truncated, .. } => {
                        if truncated {
                            stats.truncated.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Encoded::Dropped => {
                        stats.dropped_oversize.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                // Retry this datagram until the kernel takes it.
                loop {
                    if socket.is_none() {
                        match self.open().await {
                            Ok(s) => socket = Some(s),
                            Err(reason) => {
                                self.note_error(&stats, &mut last_error, &reason);
                                tokio::time::sleep(backoff.next_delay()).await;
                                continue;
                            }
                        }
                    }
                    let s = socket.as_ref().expect("opened above");
                    match s.sock.send(&datagram).await {
                        Ok(_) => {
                            stats.sent.fetch_add(1, Ordering::Relaxed);
                            stats
                                .bytes
                                .fetch_add(datagram.len() as u64, Ordering::Relaxed);
                            if let Some(t) = last_error
                                && t.elapsed() >= RECOVERY
                            {
                                last_error = None;
                                backoff.reset();
                                stats.up.store(true, Ordering::Relaxed);
                                info!(output = %self.name, "sending to {} works again", s.peer);
                            }
                            break;
                        }
                        Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                            // Only with oversize = "send": no datagram can carry it. Retrying
                            // would stall the output forever.
                            stats.dropped_oversize.fetch_add(1, Ordering::Relaxed);
                            warn!(output = %self.name, "dropped a {}-byte message: too large for a UDP datagram ({e})", datagram.len());
                            break;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                            // Reports an earlier datagram's ICMP error; this one was not sent.
                            let reason = format!(
                                "{} refused datagrams (ICMP port unreachable): is the receiver running? Datagrams are being lost",
                                s.peer
                            );
                            self.note_error(&stats, &mut last_error, &reason);
                        }
                        Err(e) => {
                            let reason = format!("cannot send to {}: {e}", s.peer);
                            self.note_error(&stats, &mut last_error, &reason);
                            socket = None; // re-resolve and reopen
                            tokio::time::sleep(backoff.next_delay()).await;
                        }
                    }
                }
            }
            if let Some(last) = batch.events.last() {
                publish_progress(&progress, Some(last.seq));
            }
        }
        stats.up.store(false, Ordering::Relaxed);
    }

    fn note_error(&self, stats: &OutputStats, last_error: &mut Option<Instant>, reason: &str) {
        stats.errors.fetch_add(1, Ordering::Relaxed);
        if last_error.is_none() {
            warn!(output = %self.name, "{reason}");
            stats.up.store(false, Ordering::Relaxed);
        }
        *last_error = Some(Instant::now());
    }

    async fn open(&self) -> Result<Socket, String> {
        let peer = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.host))?;
        let local: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        let sock = UdpSocket::bind(local)
            .await
            .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
        sock.connect(peer)
            .await
            .map_err(|e| format!("cannot address {peer}: {e}"))?;
        Ok(Socket { sock, peer })
    }
}
