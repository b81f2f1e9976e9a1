//! TCP and TLS outputs: connect (with backoff, forever), write batches of frames, track what the
//! receiver's TCP stack has acknowledged, resend after a broken connection, close cleanly.
//!
//! Acknowledgement: a frame is acknowledged when the peer's TCP stack has acknowledged all its
//! bytes. We count the bytes written to the socket (for TLS: record bytes, below the TLS layer)
//! and subtract the kernel's count of unacknowledged bytes (`SIOCOUTQ`): everything written
//! before that point is acknowledged. Acknowledged frames move to the resend [`journal`] on disk
//! and are sent again after a broken connection, because a receiver that crashes loses what was
//! unread in its socket buffer; they count as *delivered* once `resend_bytes` more bytes have
//! been acknowledged after them, or when the receiver closes its side after our clean close.
//!
//! [`journal`]: super::journal
//!
//! A receiver that rejects us right after connecting still has its kernel acknowledge what we
//! sent: a TLS 1.3 server refusing our client certificate (it decides after our side considers
//! the handshake done), or syslog-ng closing a connection whose first frame it cannot parse. So
//! acknowledgements count only once a connection has lived for [`ACK_PROBATION`]; a rejection
//! arrives well within it, and the frames are sent again on the next connection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout_at};
use tracing::{debug, info, warn};

use super::replay::{AckNote, ReplayBuffer};
use super::syslog::encoder::{Encoded, FrameEncoder};
use super::syslog::framing::WireFraming;
use super::tls::{TlsSetup, describe_handshake_error};
use super::{Batch, OutputStats, publish_progress};
use crate::config::duration;
use crate::config::output::StreamKeys;
use crate::net::backoff::Backoff;
use crate::net::connect::{ConnectError, connect_tcp, resolve};
use crate::net::socket::{CountingStream, set_keepalive, set_user_timeout, unacknowledged_bytes};

/// Largest single write: keeps acknowledgement marks fine-grained on fast links.
const WRITE_CHUNK: usize = 256 * 1024;
/// How often to ask the kernel for acknowledgements while some are outstanding.
const ACK_POLL: Duration = Duration::from_millis(10);
/// A new connection's acknowledgements count only after it has lived this long.
pub const ACK_PROBATION: Duration = Duration::from_secs(1);
/// While the buffer is full no batch is taken, so the end of the input would go unnoticed: look
/// this often.
const CLOSED_POLL: Duration = Duration::from_millis(100);

trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

struct Connection {
    stream: Box<dyn AsyncStream>,
    fd: RawFd,
    /// Bytes written to the socket since it was opened.
    socket_written: Arc<AtomicU64>,
    peer: SocketAddr,
}

/// How a connection ended.
enum Ended {
    /// Everything acknowledged and the connection closed after the input ended. `confirmed`: the
    /// receiver closed its side too, so it read everything.
    Clean { confirmed: bool },
    /// The input ended but the shutdown deadline passed first.
    GaveUp,
    /// The connection failed; reconnect. `proven`: it had outlived the probation.
    Broken { reason: String, proven: bool },
}

pub(crate) struct StreamOutput {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: Option<Arc<TlsSetup>>,
    pub keys: StreamKeys,
    pub encoder: FrameEncoder,
    /// Folder of the resend journal; `None`: a private folder under the system's temporary
    /// folder, removed when the output ends.
    pub journal_dir: Option<PathBuf>,
}

/// Mutable state of a running output that survives reconnections.
struct Run {
    rx: mpsc::Receiver<Arc<Batch>>,
    rx_open: bool,
    /// Set when the input ends: the time by which we stop trying.
    deadline: Option<Instant>,
    replay: ReplayBuffer,
    progress: watch::Sender<u64>,
    stats: Arc<OutputStats>,
    backoff: Backoff,
    /// A connection has proven itself before (a new one is then a reconnect).
    was_up: bool,
    /// The current outage has been logged (log once per state change).
    outage_logged: bool,
}

impl StreamOutput {
    pub(crate) async fn run(
        mut self,
        rx: mpsc::Receiver<Arc<Batch>>,
        progress: watch::Sender<u64>,
        stats: Arc<OutputStats>,
    ) {
        let k = &self.keys;
        let (journal_dir, private) = match &self.journal_dir {
            Some(d) => (d.clone(), false),
            None => (
                std::env::temp_dir().join(format!(
                    "estreamer-cef-journal-{}-{}",
                    std::process::id(),
                    crate::metadata::store::safe_file_part(&self.name)
                )),
                true,
            ),
        };
        let replay = match ReplayBuffer::new(k.replay_buffer_bytes, k.resend_bytes, &journal_dir) {
            Ok(r) => r,
            Err(e) => {
                warn!(output = %self.name, "cannot keep the resend journal in {}: {e}; running without it, so a receiver that crashes loses what it had not read (check the state folder is writable)", journal_dir.display());
                ReplayBuffer::new(k.replay_buffer_bytes, 0, &journal_dir)
                    .expect("a journal with nothing to keep touches no file")
            }
        };
        let mut run = Run {
            rx,
            rx_open: true,
            deadline: None,
            replay,
            progress,
            stats,
            backoff: Backoff::new(k.reconnect_delay_min, k.reconnect_delay_max),
            was_up: false,
            outage_logged: false,
        };
        loop {
            // Nothing left to do once the input has ended and everything is acknowledged.
            if !run.rx_open && run.replay.unacked_bytes() == 0 {
                break;
            }
            let conn = match self.connect_while_taking(&mut run).await {
                Some(Ok(c)) => c,
                Some(Err(reason)) => {
                    run.stats.errors.fetch_add(1, Ordering::Relaxed);
                    if !run.outage_logged {
                        warn!(output = %self.name, "cannot connect to {}:{}: {reason}; retrying with backoff (events are held, up to replay_buffer_bytes)", self.host, self.port);
                        run.outage_logged = true;
                    } else {
                        debug!(output = %self.name, "connect attempt failed: {reason}");
                    }
                    let delay = run.backoff.next_delay();
                    if !self.wait_taking(&mut run, Instant::now() + delay).await {
                        break;
                    }
                    continue;
                }
                None => break, // shutdown deadline passed while down
            };
            if let Some(t) = &self.tls
                && t.insecure
            {
                warn!(
                    output = %self.name,
                    "connected to {} over TLS WITHOUT verifying the receiver's certificate (server_ca = \"insecure\"): anyone on the path can read and change the events",
                    conn.peer
                );
            }
            debug!(output = %self.name, "connection to {} opened", conn.peer);
            let peer = conn.peer;
            let ended = self.drive(conn, &mut run).await;
            run.stats.up.store(false, Ordering::Relaxed);
            match ended {
                Ended::Clean { confirmed: true } => {
                    let n = run.replay.confirm_all();
                    run.stats.delivered.fetch_add(n, Ordering::Relaxed);
                    run.stats.journal_bytes.store(0, Ordering::Relaxed);
                    info!(output = %self.name, "closed the connection to {peer}: everything delivered (the receiver closed its side after reading it)");
                    break;
                }
                Ended::Clean { confirmed: false } => {
                    info!(output = %self.name, "closed the connection to {peer}: everything acknowledged; the receiver did not close its side, so the last {} bytes are not confirmed read", run.replay.journal_bytes());
                    break;
                }
                Ended::GaveUp => break,
                Ended::Broken {
                    reason,
                    proven: true,
                } => {
                    run.stats.errors.fetch_add(1, Ordering::Relaxed);
                    warn!(
                        output = %self.name,
                        "connection to {peer} lost: {reason}; reconnecting, then resending {} bytes not known to be read by the receiver",
                        run.replay.held_bytes()
                    );
                    run.outage_logged = true;
                    let delay = run.backoff.next_delay();
                    if !self.wait_taking(&mut run, Instant::now() + delay).await {
                        break;
                    }
                }
                Ended::Broken {
                    reason,
                    proven: false,
                } => {
                    run.stats.errors.fetch_add(1, Ordering::Relaxed);
                    if !run.outage_logged {
                        warn!(
                            output = %self.name,
                            "{peer} accepted the connection but dropped it at once: {reason}; {}. Retrying with backoff; nothing counts as delivered meanwhile",
                            self.early_drop_hint(&reason)
                        );
                        run.outage_logged = true;
                    } else {
                        debug!(output = %self.name, "{peer} dropped the connection at once: {reason}");
                    }
                    let delay = run.backoff.next_delay();
                    if !self.wait_taking(&mut run, Instant::now() + delay).await {
                        break;
                    }
                }
            }
        }
        if run.replay.unacked_bytes() > 0 {
            warn!(
                output = %self.name,
                "stopped with {} bytes not acknowledged by {}:{}; those events are not counted as delivered",
                run.replay.unacked_bytes(), self.host, self.port
            );
        }
        publish_progress(&run.progress, run.replay.progress());
        run.stats
            .buffered_bytes
            .store(run.replay.unacked_bytes(), Ordering::Relaxed);
        let s = run.stats.snapshot();
        info!(
            output = %self.name,
            "{} messages sent, {} acknowledged by the receiver's TCP stack, {} confirmed delivered, {} resent after reconnects",
            s.sent, s.acknowledged, s.delivered, s.resent
        );
        drop(run.replay); // deletes the journal's files
        if private {
            let _ = std::fs::remove_dir(&journal_dir);
        }
    }

    /// Takes one batch: every event becomes a frame in the replay buffer (or is dropped).
    fn take(&mut self, run: &mut Run, batch: &Batch) {
        self.encoder.set_time(SystemTime::now());
        let stats = &run.stats;
        for ev in &batch.events {
            match self.encoder.encode(ev, run.replay.tail_mut()) {
                Encoded::Framed {
                    truncated,
                    newlines_replaced,
                } => {
                    run.replay.commit_frame(ev.seq);
                    if truncated {
                        stats.truncated.fetch_add(1, Ordering::Relaxed);
                    }
                    if newlines_replaced > 0 {
                        stats
                            .newlines_replaced
                            .fetch_add(newlines_replaced as u64, Ordering::Relaxed);
                    }
                }
                Encoded::Dropped => {
                    run.replay.note_taken(ev.seq);
                    stats.dropped_oversize.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        stats
            .buffered_bytes
            .store(run.replay.unacked_bytes(), Ordering::Relaxed);
        // A batch dropped entirely may complete progress on its own.
        publish_progress(&run.progress, run.replay.progress());
    }

    fn on_input(&mut self, run: &mut Run, b: Option<Arc<Batch>>) {
        match b {
            Some(b) => self.take(run, &b),
            None => {
                run.rx_open = false;
                run.deadline = Some(Instant::now() + self.keys.shutdown_timeout);
            }
        }
    }

    /// Waits until `until`, taking batches meanwhile. False if the shutdown deadline passed.
    async fn wait_taking(&mut self, run: &mut Run, until: Instant) -> bool {
        loop {
            if let Some(d) = run.deadline
                && (Instant::now() >= d || run.replay.unacked_bytes() == 0)
            {
                return false;
            }
            let can_take = run.rx_open && run.replay.has_room();
            let deadline = run.deadline.unwrap_or(until + Duration::from_secs(3600));
            tokio::select! {
                _ = sleep_until(until) => return true,
                _ = sleep_until(deadline), if run.deadline.is_some() => return false,
                b = run.rx.recv(), if can_take => self.on_input(run, b),
                _ = tokio::time::sleep(CLOSED_POLL), if run.rx_open && !can_take => self.check_input_closed(run),
            }
        }
    }

    /// A full output takes no batch; it still has to notice that the input has ended (the
    /// pipeline is stopping), or it would never start its shutdown deadline. Batches still
    /// queued are not taken: they stay undelivered.
    fn check_input_closed(&mut self, run: &mut Run) {
        if run.rx.is_closed() {
            self.on_input(run, None);
        }
    }

    /// Connects, taking batches while waiting. `None` if the shutdown deadline passed.
    async fn connect_while_taking(&mut self, run: &mut Run) -> Option<Result<Connection, String>> {
        let connect = connect(
            self.host.clone(),
            self.port,
            self.tls.clone(),
            self.keys.connect_timeout,
            self.keys.keepalive,
            self.keys.send_timeout,
        );
        tokio::pin!(connect);
        loop {
            let can_take = run.rx_open && run.replay.has_room();
            let deadline = run
                .deadline
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = &mut connect => return Some(r),
                _ = sleep_until(deadline), if run.deadline.is_some() => return None,
                b = run.rx.recv(), if can_take => self.on_input(run, b),
                _ = tokio::time::sleep(CLOSED_POLL), if run.rx_open && !can_take => self.check_input_closed(run),
            }
        }
    }

    /// Runs one connection until it breaks or the input ends and everything is delivered.
    async fn drive(&mut self, conn: Connection, run: &mut Run) -> Ended {
        let Connection {
            stream,
            fd,
            socket_written,
            peer,
        } = conn;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut rbuf = vec![0u8; 4096];
        // Next logical offset to write on this connection: the journal, then memory.
        let mut pos = run.replay.start();
        // Journal bytes read back from disk, starting at `journal_at`.
        let mut journal_chunk = Vec::new();
        let mut journal_at = u64::MAX;
        // (logical offset written, socket bytes written at that point), oldest first.
        let mut marks: VecDeque<(u64, u64)> = VecDeque::new();
        let mut tick = tokio::time::interval(ACK_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let probation_ends = Instant::now() + ACK_PROBATION;
        let mut proven = false;

        loop {
            if !run.rx_open && pos == run.replay.end() && run.replay.acked() == run.replay.end() {
                return self.close(&mut rd, &mut wr, run).await;
            }
            let unsent = pos < run.replay.end();
            let unacked = run.replay.acked() < pos;
            pos = pos.max(run.replay.start());
            let chunk: &[u8] = if pos < run.replay.base() {
                if journal_at != pos || journal_chunk.is_empty() {
                    if let Err(e) = run
                        .replay
                        .journal_read(pos, WRITE_CHUNK, &mut journal_chunk)
                    {
                        warn!(output = %self.name, "cannot read the resend journal: {e}; skipping {} journal bytes", run.replay.base() - pos);
                        pos = run.replay.base();
                        continue;
                    }
                    journal_at = pos;
                }
                &journal_chunk
            } else {
                run.replay.bytes_from(pos, WRITE_CHUNK)
            };
            let can_take = run.rx_open && run.replay.has_room();
            let deadline = run
                .deadline
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                r = rd.read(&mut rbuf) => match r {
                    Ok(0) => return Ended::Broken { reason: "the receiver closed the connection".into(), proven },
                    Ok(_) => {} // syslog receivers send nothing; ignore whatever comes
                    Err(e) => return Ended::Broken { reason: format!("read failed: {e}"), proven },
                },
                w = wr.write(chunk), if unsent => match w {
                    Ok(0) => return Ended::Broken { reason: "the connection accepts no more data".into(), proven },
                    Ok(n) => {
                        let note = run.replay.note_written(pos, pos + n as u64);
                        pos += n as u64;
                        let s = &run.stats;
                        s.sent.fetch_add(note.new_frames, Ordering::Relaxed);
                        s.bytes.fetch_add(note.new_bytes, Ordering::Relaxed);
                        s.resent.fetch_add(note.resent_frames, Ordering::Relaxed);
                        marks.push_back((pos, socket_written.load(Ordering::Relaxed)));
                        self.check_acks(fd, &socket_written, &mut marks, run, proven);
                    }
                    Err(e) => return Ended::Broken { reason: format!("write failed: {e}"), proven },
                },
                _ = tick.tick(), if unacked => self.check_acks(fd, &socket_written, &mut marks, run, proven),
                b = run.rx.recv(), if can_take => self.on_input(run, b),
                _ = tokio::time::sleep(CLOSED_POLL), if run.rx_open && !can_take => self.check_input_closed(run),
                _ = sleep_until(probation_ends), if !proven => {
                    proven = true;
                    self.on_proven(run, peer);
                    self.check_acks(fd, &socket_written, &mut marks, run, proven);
                }
                _ = sleep_until(deadline), if run.deadline.is_some() => {
                    warn!(output = %self.name, "shutdown_timeout passed before the receiver acknowledged everything");
                    let _ = tokio::time::timeout(Duration::from_millis(500), wr.shutdown()).await;
                    return Ended::GaveUp;
                }
            }
        }
    }

    /// What probably makes a receiver drop a fresh connection.
    fn early_drop_hint(&self, reason: &str) -> &'static str {
        if reason.contains("certificate required") {
            "the receiver requires a client certificate: set pkcs12"
        } else if reason.contains("alert") {
            "the receiver refused the TLS session: check pkcs12 and the receiver's TLS settings"
        } else if self.encoder.framing() == WireFraming::Lf {
            "a receiver that expects octet counting (such as syslog-ng's syslog() source) drops LF-framed input: try framing = \"octet-counting\""
        } else {
            "check the receiver's log; if it reads LF-terminated lines, set framing = \"lf\""
        }
    }

    /// The connection outlived the probation: it is up.
    fn on_proven(&self, run: &mut Run, peer: SocketAddr) {
        if run.was_up {
            run.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        run.was_up = true;
        run.outage_logged = false;
        run.backoff.reset();
        run.stats.up.store(true, Ordering::Relaxed);
        match &self.tls {
            Some(t) => {
                info!(output = %self.name, "connected to {peer} over TLS ({})", t.verification)
            }
            None => info!(output = %self.name, "connected to {peer}"),
        }
    }

    fn check_acks(
        &self,
        fd: RawFd,
        socket_written: &AtomicU64,
        marks: &mut VecDeque<(u64, u64)>,
        run: &mut Run,
        proven: bool,
    ) {
        if !proven {
            return;
        }
        let outstanding = match unacknowledged_bytes(fd) {
            Ok(n) => n,
            Err(e) => {
                debug!(output = %self.name, "SIOCOUTQ failed: {e}");
                return;
            }
        };
        let acked_socket = socket_written
            .load(Ordering::Relaxed)
            .saturating_sub(outstanding);
        let mut acked_logical = None;
        while let Some(&(logical, sock)) = marks.front() {
            if sock > acked_socket {
                break;
            }
            acked_logical = Some(logical);
            marks.pop_front();
        }
        if let Some(to) = acked_logical {
            let note = run.replay.ack(to);
            self.note_ack(run, note);
            run.backoff.reset();
        }
    }

    fn note_ack(&self, run: &mut Run, note: AckNote) {
        publish_progress(&run.progress, note.progress);
        let s = &run.stats;
        s.acknowledged
            .fetch_add(note.acknowledged, Ordering::Relaxed);
        s.delivered.fetch_add(note.delivered, Ordering::Relaxed);
        s.buffered_bytes
            .store(run.replay.unacked_bytes(), Ordering::Relaxed);
        s.journal_bytes
            .store(run.replay.journal_bytes(), Ordering::Relaxed);
        if let Some(e) = run.replay.take_journal_error() {
            s.errors.fetch_add(1, Ordering::Relaxed);
            warn!(output = %self.name, "cannot write the resend journal: {e}; the messages it should hold cannot be resent if the receiver crashes (check the state folder's disk)");
        }
    }

    /// Input ended and everything is acknowledged: TLS close_notify / TCP FIN, then wait (until
    /// the deadline) for the receiver to close its side, which tells us it read everything.
    async fn close<R, W>(&self, rd: &mut R, wr: &mut W, run: &mut Run) -> Ended
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let deadline = run
            .deadline
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(5));
        match timeout_at(deadline, wr.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(output = %self.name, "closing: {e}");
                return Ended::Clean { confirmed: false }; // everything was acknowledged already
            }
            Err(_) => return Ended::GaveUp,
        }
        let mut buf = [0u8; 1024];
        loop {
            match timeout_at(deadline, rd.read(&mut buf)).await {
                Ok(Ok(0)) => return Ended::Clean { confirmed: true },
                Ok(Err(e)) => {
                    debug!(output = %self.name, "waiting for the receiver to close: {e}");
                    return Ended::Clean { confirmed: false };
                }
                Ok(Ok(_)) => continue,
                Err(_) => {
                    debug!(output = %self.name, "receiver did not close its side before the deadline");
                    return Ended::Clean { confirmed: false };
                }
            }
        }
    }
}

/// Resolves, connects (trying each address), sets socket options, and does the TLS handshake,
/// all within `connect_timeout`.
async fn connect(
    host: String,
    port: u16,
    tls: Option<Arc<TlsSetup>>,
    connect_timeout: Duration,
    keepalive: Duration,
    send_timeout: Duration,
) -> Result<Connection, String> {
    let deadline = Instant::now() + connect_timeout;
    let within = duration::format(&connect_timeout);
    let addrs = match timeout_at(deadline, resolve(&host, port)).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(format!("cannot resolve {host}: {e}")),
        Err(_) => return Err(format!("cannot resolve {host}: no answer within {within}")),
    };
    // Name the address tried only when the host is a name, not already the address.
    let at = |addr: &SocketAddr| {
        if host.parse::<std::net::IpAddr>().is_ok() {
            String::new()
        } else {
            format!("{addr}: ")
        }
    };
    let tcp = match connect_tcp(&addrs, deadline).await {
        Ok(tcp) => tcp,
        Err(ConnectError::Failed { addr, error }) => return Err(format!("{}{error}", at(&addr))),
        Err(ConnectError::Timeout) => return Err(format!("no answer within {within}")),
    };
    let addr = match tcp.peer_addr() {
        Ok(a) => a,
        Err(e) => return Err(format!("the connection broke at once: {e}")),
    };
    let fd = tcp.as_raw_fd();
    let _ = tcp.set_nodelay(true);
    if let Err(e) = set_keepalive(fd, keepalive) {
        debug!("keepalive on {addr}: {e}");
    }
    if let Err(e) = set_user_timeout(fd, send_timeout) {
        debug!("TCP_USER_TIMEOUT on {addr}: {e}");
    }
    let (counted, socket_written) = CountingStream::new(tcp);
    let stream: Box<dyn AsyncStream> = match &tls {
        None => Box::new(counted),
        Some(setup) => {
            let ssl = setup
                .session()
                .map_err(|e| format!("cannot start a TLS session: {e}"))?;
            let mut s = tokio_openssl::SslStream::new(ssl, counted)
                .map_err(|e| format!("cannot start a TLS session: {e}"))?;
            match timeout_at(deadline, Pin::new(&mut s).connect()).await {
                Ok(Ok(())) => Box::new(s),
                Ok(Err(e)) => {
                    return Err(format!(
                        "{}{}",
                        at(&addr),
                        describe_handshake_error(Some(s.ssl()), &e, setup)
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "{}TLS handshake not finished within {within}",
                        at(&addr)
                    ));
                }
            }
        }
    };
    Ok(Connection {
        stream,
        fd,
        socket_written,
        peer: addr,
    })
}
