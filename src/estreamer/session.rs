//! The session with the FMC: connect, request, stream, acknowledge, and reconnect forever.
//!
//! One connection goes: TCP connect, TLS handshake (our FMC-issued certificate), EventStreamRequest;
//! in extended mode the FMC answers with StreamingInformation and we send the StreamingRequest
//! for service 6667; then the FMC streams MessageBundles (or EventData messages) and keepalive
//! Nulls. Every message we read is acknowledged with one Null (reference 2.8) — a data message
//! only **after** it has been handed to the pipeline's channel. A full channel therefore stops
//! our reads and acknowledgements, and the FMC waits: that is the backpressure, and nothing is
//! acknowledged that has not been queued.
//!
//! Every network failure ends the connection, is logged with what it means, and is followed by
//! a reconnect with exponential backoff; the reconnect resumes from the second the pipeline has
//! reached (`resume`), and the pipeline's cursor drops the records of that second it already has.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use openssl::ssl::SslConnector;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_openssl::SslStream;
use tracing::{debug, error, info, warn};

use super::connection::{ConnError, Connection};
use super::message::{
    ESTREAMER_SERVICE, ErrorBody, FrameError, NULL_MESSAGE, kind, streaming_information,
};
use super::request::{StartAt, describe_flags, event_stream_request, streaming_request};
use super::tls::{self, HandshakeError};
use crate::config::{Peer, SessionConfig, duration};
use crate::net::backoff::Backoff;
use crate::net::connect::{ConnectError, connect_tcp, resolve};
use crate::net::tls::{ServerTrust, TlsSetupError, build_connector, session_info};

/// A connection that stayed up this long counts as successful even without data (a quiet FMC
/// asked for "now"): the next failure starts the backoff from the beginning again.
const STABLE_SESSION: Duration = Duration::from_secs(60);
/// How long a clean close of our side may take at shutdown.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Where a new connection resumes: the newest archive second received and the peer whose
/// clock it is on. Kept up to date by the pipeline, read by the session at each connect.
#[derive(Debug, Default)]
pub struct Resume(Mutex<ResumePoint>);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumePoint {
    /// Index in [`SessionConfig::peers`].
    pub peer: usize,
    /// 0: nothing received yet.
    pub second: u32,
}

impl Resume {
    pub fn new(point: ResumePoint) -> Resume {
        Resume(Mutex::new(point))
    }

    pub fn get(&self) -> ResumePoint {
        self.0.lock().map(|p| *p).unwrap_or_default()
    }

    pub fn set(&self, point: ResumePoint) {
        if let Ok(mut p) = self.0.lock() {
            *p = point;
        }
    }
}

/// A data message from the FMC (EventData or MessageBundle), handed on before it is acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceMessage {
    /// Which connection of this run brought it (1, 2, ...): bundle sequence numbers restart
    /// with each connection.
    pub connection: u64,
    /// Which peer it came from (index in [`SessionConfig::peers`]).
    pub peer: usize,
    /// `message::kind::EVENT_DATA` or `message::kind::MESSAGE_BUNDLE`.
    pub kind: u16,
    /// The message body (a record, or a bundle of records), sharing the receive buffer.
    pub body: Bytes,
}

/// Counters for the monitor, updated by the session.
#[derive(Debug, Default)]
pub struct SessionStats {
    /// A connection is established (TLS up).
    pub connected: AtomicBool,
    /// Connections established.
    pub connects: AtomicU64,
    /// Connections lost or attempts failed, each followed by a new attempt.
    pub reconnects: AtomicU64,
    /// Data messages handed on (EventData and MessageBundles).
    pub messages: AtomicU64,
    /// Bytes received from the FMC, headers included.
    pub bytes: AtomicU64,
    /// The backoff being waited out before the next attempt, in milliseconds (0 when not waiting).
    pub retry_delay_ms: AtomicU64,
    /// HA pair: switches from one peer to another.
    pub switches: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// The peer connected to, or being tried (`host:port`).
    peer: Mutex<String>,
}

/// The counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStatsSnapshot {
    pub connected: bool,
    pub connects: u64,
    pub reconnects: u64,
    pub messages: u64,
    pub bytes: u64,
    pub retry_delay: Option<Duration>,
    pub last_error: Option<String>,
    pub switches: u64,
    pub peer: String,
}

impl SessionStats {
    /// Why the last connection ended or the last attempt failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// The peer connected to, or being tried.
    pub fn peer(&self) -> String {
        self.peer.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn set_peer(&self, peer: &Peer) {
        if let Ok(mut p) = self.peer.lock() {
            *p = peer.to_string();
        }
    }

    fn set_last_error(&self, text: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(text);
        }
    }

    pub fn snapshot(&self) -> SessionStatsSnapshot {
        let retry = self.retry_delay_ms.load(Ordering::Relaxed);
        SessionStatsSnapshot {
            connected: self.connected.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            retry_delay: (retry > 0).then(|| Duration::from_millis(retry)),
            last_error: self.last_error(),
            switches: self.switches.load(Ordering::Relaxed),
            peer: self.peer(),
        }
    }
}

/// Why [`run`] stopped (it never stops for a network error).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The TLS client context cannot be built: retrying cannot help.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// The receiver of the session's messages is gone.
    #[error("the event pipeline stopped taking messages from the FMC session")]
    ConsumerGone,
}

/// Why one connection ended, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum SessionFailure {
    #[error(
        "cannot resolve the FMC's name {host:?}: {error}. Check fmc.host and this machine's DNS \
         (or give the FMC's IP address)."
    )]
    Resolve { host: String, error: String },

    #[error(
        "no answer from the FMC at {endpoint} within {}: a firewall drops the connection or the \
         address is wrong (eStreamer listens on TCP 8302).",
        duration::format(after)
    )]
    ConnectTimeout { endpoint: String, after: Duration },

    #[error("cannot connect to the FMC at {addr}: {error}{}", connect_hint(error))]
    Connect { addr: SocketAddr, error: io::Error },

    #[error(transparent)]
    Handshake(#[from] HandshakeError),

    #[error(
        "the TLS handshake with the FMC at {endpoint} did not finish within {}: whatever listens \
         there does not answer like an eStreamer server.",
        duration::format(after)
    )]
    HandshakeTimeout { endpoint: String, after: Duration },

    /// The FMC closed the connection before sending anything: how it refuses a client whose
    /// certificate CN does not match the address it sees.
    #[error("{explanation}")]
    ClosedAfterHandshake { explanation: String },

    #[error("the FMC closed the connection")]
    Closed,

    #[error(
        "the FMC closed the connection in the middle of a message ({buffered} bytes of it received; \
         they will be requested again)"
    )]
    ClosedMidMessage { buffered: usize },

    #[error("the FMC sent an error message: code {}: {}", .0.code, .0.text)]
    ServerError(ErrorBody),

    #[error("{0}")]
    Frame(FrameError),

    #[error(
        "no message from the FMC for {} (not even a keepalive): the connection is dead",
        duration::format(.0)
    )]
    IdleTimeout(Duration),

    #[error(
        "the FMC does not offer the eStreamer service (6667) in its StreamingInformation (it \
         offers {}); it cannot stream events to an extended request. Check the FMC's eStreamer \
         settings, or set subscription.extended = false.",
        list_services(offered)
    )]
    NoEstreamerService { offered: Vec<u32> },

    #[error("reading from the FMC failed: {0}")]
    Read(io::Error),

    #[error("writing to the FMC failed: {0} (the FMC has probably closed the connection)")]
    Write(io::Error),
}

fn connect_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => {
            ". Nothing listens there: check fmc.port (eStreamer uses 8302) and that eStreamer is \
             enabled on the FMC (System > Integration > eStreamer)."
        }
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            ". Check this machine's routes to the FMC."
        }
        _ => "",
    }
}

fn list_services(ids: &[u32]) -> String {
    if ids.is_empty() {
        "no service".to_string()
    } else {
        ids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The request start in words ("since 0 (oldest data)").
pub fn describe_start(start: StartAt) -> String {
    match start {
        StartAt::Genesis => "since 0 (the oldest events the FMC has)".to_string(),
        StartAt::Now => "since 4294967295 (new events only)".to_string(),
        StartAt::Second(s) => {
            let when = chrono::DateTime::from_timestamp(i64::from(s), 0)
                .map(|t| t.format(" (%Y-%m-%d %H:%M:%S UTC)").to_string())
                .unwrap_or_default();
            format!("since {s}{when}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connecting
// ---------------------------------------------------------------------------------------------

/// Resolution, TCP connect and TLS handshake within `connect_timeout`.
async fn establish(
    cfg: &SessionConfig,
    peer: &Peer,
    connector: &SslConnector,
) -> Result<SslStream<TcpStream>, SessionFailure> {
    let deadline = Instant::now() + cfg.connect_timeout;
    let addrs = match timeout_at(deadline, resolve(&peer.host, peer.port)).await {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(e)) => {
            return Err(SessionFailure::Resolve {
                host: peer.host.clone(),
                error: e.to_string(),
            });
        }
        Err(_) => {
            return Err(SessionFailure::Resolve {
                host: peer.host.clone(),
                error: format!(
                    "no answer within {}",
                    duration::format(&cfg.connect_timeout)
                ),
            });
        }
    };
    let tcp = match connect_tcp(&addrs, deadline).await {
        Ok(tcp) => tcp,
        Err(ConnectError::Timeout) => {
            return Err(SessionFailure::ConnectTimeout {
                endpoint: peer.to_string(),
                after: cfg.connect_timeout,
            });
        }
        Err(ConnectError::Failed { addr, error }) => {
            return Err(SessionFailure::Connect { addr, error });
        }
    };
    match timeout_at(
        deadline,
        tls::connect(tcp, connector, &peer.host, cfg.verify_hostname),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(SessionFailure::Handshake(e)),
        Err(_) => Err(SessionFailure::HandshakeTimeout {
            endpoint: peer.to_string(),
            after: cfg.connect_timeout,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Reconnect loop
// ---------------------------------------------------------------------------------------------

/// Whether shutdown was asked for (a dropped sender counts: nobody is left to ask).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// How one connection ended.
enum End {
    Shutdown,
    ConsumerGone,
    Failed {
        failure: SessionFailure,
        /// The FMC answered our request (a refusal right after the handshake does not count):
        /// losing such a connection is a change of state and always logged.
        established: bool,
        /// It delivered data or stayed up long enough: the backoff starts over.
        streamed: bool,
    },
}

/// Runs the session until `shutdown` becomes true (or its sender is dropped). Network failures
/// never end it: each is logged and followed by a reconnect.
///
/// The first connection starts at `cfg.start`; every later one at the point in `resume` (kept
/// up to date by whoever consumes `tx`) when it has one, else at `cfg.start`. With several
/// peers (an HA pair), the session stays with one peer while it answers, and switches to the
/// next once the active one has been unreachable or silent for `failover_after`; the new peer
/// is asked for events from `failover_overlap` before the resume second (the consumer
/// recognizes what comes twice).
pub async fn run(
    cfg: SessionConfig,
    resume: Arc<Resume>,
    tx: mpsc::Sender<SourceMessage>,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<SessionStats>,
) -> Result<(), SessionError> {
    let connector = build_connector(&cfg.identity, &cfg.trust)?;
    let client_cn = cfg.identity.subject_cn();
    let mut backoff = Backoff::new(cfg.reconnect_delay_min, cfg.reconnect_delay_max);
    let mut connection = 0u64;
    let mut last_failure: Option<String> = None;
    let mut failed_attempts = 0u64;
    let peers = cfg.peers.len().max(1);
    // Start with the peer the resume point (the bookmark) is on.
    let mut active = resume.get().peer.min(peers - 1);
    let mut last_heard = Instant::now();

    loop {
        if stopping(&shutdown) {
            return Ok(());
        }
        if tx.is_closed() {
            return Err(SessionError::ConsumerGone);
        }
        let point = resume.get();
        let start = match point.second {
            0 => cfg.start,
            s if point.peer != active => StartAt::Second(
                s.saturating_sub(cfg.failover_overlap.as_secs() as u32)
                    .max(1),
            ),
            s if connection > 0 => StartAt::Second(s),
            _ => cfg.start,
        };
        connection += 1;
        let peer = &cfg.peers[active];
        stats.set_peer(peer);
        if last_failure.is_none() {
            info!("connecting to the FMC at {peer}");
        } else {
            debug!(
                "connecting to the FMC at {peer} (attempt {})",
                failed_attempts + 1
            );
        }
        let mut progress = Progress {
            failed_before: failed_attempts,
            accepted: false,
            streamed: false,
            last_heard,
        };
        let end = one_connection(
            &cfg,
            active,
            &connector,
            client_cn.as_deref(),
            start,
            connection,
            &tx,
            &mut shutdown,
            &stats,
            &mut progress,
        )
        .await;
        last_heard = progress.last_heard;
        stats.connected.store(false, Ordering::Relaxed);
        match end {
            End::Shutdown => {
                info!("FMC session stopped");
                return Ok(());
            }
            End::ConsumerGone => return Err(SessionError::ConsumerGone),
            End::Failed {
                failure,
                established,
                streamed,
            } => {
                if established {
                    // Losing an established connection is a change of state, always logged.
                    last_failure = None;
                    failed_attempts = 0;
                }
                if streamed {
                    backoff.reset();
                }
                if !established {
                    failed_attempts += 1;
                }
                let text = failure.to_string();
                stats.set_last_error(text.clone());
                stats.reconnects.fetch_add(1, Ordering::Relaxed);
                if peers > 1 && last_heard.elapsed() >= cfg.failover_after {
                    // HA: the active peer has been unreachable or silent long enough.
                    let next = (active + 1) % peers;
                    warn!(
                        "FMC {peer} failed ({text}) and has sent nothing for {}; switching to \
                         its peer {}",
                        duration::format(&cfg.failover_after),
                        cfg.peers[next]
                    );
                    stats.switches.fetch_add(1, Ordering::Relaxed);
                    active = next;
                    last_heard = Instant::now();
                    last_failure = None;
                    failed_attempts = 0;
                    backoff.reset();
                    continue;
                }
                let delay = backoff.next_delay();
                // Log once per change of state: the same failure again is only a debug line.
                if last_failure.as_deref() == Some(text.as_str()) {
                    debug!(
                        "still failing ({failed_attempts} attempts in a row): {text}; retrying in {}",
                        duration::format(&delay)
                    );
                } else {
                    match &failure {
                        SessionFailure::Closed
                        | SessionFailure::ClosedMidMessage { .. }
                        | SessionFailure::IdleTimeout(_)
                        | SessionFailure::Write(_) => warn!(
                            "FMC connection lost: {text}; reconnecting in {}",
                            duration::format(&delay)
                        ),
                        _ => error!(
                            "FMC connection failed: {text}; retrying in {}",
                            duration::format(&delay)
                        ),
                    }
                    last_failure = Some(text);
                }
                stats
                    .retry_delay_ms
                    .store(delay.as_millis().max(1) as u64, Ordering::Relaxed);
                let interrupted = tokio::select! {
                    _ = tokio::time::sleep(delay) => false,
                    _ = shutdown_requested(&mut shutdown) => true,
                };
                stats.retry_delay_ms.store(0, Ordering::Relaxed);
                if interrupted {
                    info!("FMC session stopped");
                    return Ok(());
                }
            }
        }
    }
}

/// One connection, from connect to its end. `failed_before` counts the failed attempts since the
/// FMC last accepted a connection, for the log lines.
#[allow(clippy::too_many_arguments)]
async fn one_connection(
    cfg: &SessionConfig,
    active: usize,
    connector: &SslConnector,
    client_cn: Option<&str>,
    start: StartAt,
    connection: u64,
    tx: &mpsc::Sender<SourceMessage>,
    shutdown: &mut watch::Receiver<bool>,
    stats: &SessionStats,
    progress: &mut Progress,
) -> End {
    let peer = &cfg.peers[active];
    let stream = tokio::select! {
        r = establish(cfg, peer, connector) => r,
        _ = shutdown_requested(shutdown) => return End::Shutdown,
    };
    let stream = match stream {
        Ok(s) => s,
        Err(failure) => {
            return End::Failed {
                failure,
                established: false,
                streamed: false,
            };
        }
    };
    stats.connects.fetch_add(1, Ordering::Relaxed);
    stats.connected.store(true, Ordering::Relaxed);
    let info = session_info(stream.ssl());
    // While the same failure repeats, the steps of each attempt are only debug lines.
    if progress.failed_before == 0 {
        info!("connected to the FMC at {peer} ({info})");
    } else {
        debug!("connected to the FMC at {peer} ({info})");
    }
    if cfg.trust == ServerTrust::Insecure {
        warn!("{}", tls::insecure_warning());
    }

    let since = Instant::now();
    let mut conn = Connection::new(stream);
    let outcome = tokio::select! {
        r = stream_messages(cfg, active, &mut conn, client_cn, start, connection, tx, stats, progress) => r,
        _ = shutdown_requested(shutdown) => Err(End::Shutdown),
    };
    let end = match outcome {
        Ok(never) => match never {},
        Err(End::Failed { failure, .. }) => End::Failed {
            failure,
            established: progress.accepted,
            streamed: progress.streamed || (progress.accepted && since.elapsed() >= STABLE_SESSION),
        },
        Err(other) => other,
    };
    if matches!(end, End::Shutdown) {
        // Best effort: a close_notify tells the FMC we left on purpose.
        let _ = timeout(CLOSE_GRACE, conn.shutdown()).await;
    }
    end
}

/// How far a connection got.
struct Progress {
    /// Failed attempts before this connection (0: no failure streak is being reported).
    failed_before: u64,
    /// The FMC has sent a message: it accepted us.
    accepted: bool,
    /// Data has been handed on.
    streamed: bool,
    /// When the peer last sent a message (or when we started trying it).
    last_heard: Instant,
}

/// Sends the request and streams until something ends the connection (the `Ok` type is
/// uninhabited: this only returns with the reason it ended).
#[allow(clippy::too_many_arguments)]
async fn stream_messages(
    cfg: &SessionConfig,
    active: usize,
    conn: &mut Connection<SslStream<TcpStream>>,
    client_cn: Option<&str>,
    start: StartAt,
    connection: u64,
    tx: &mpsc::Sender<SourceMessage>,
    stats: &SessionStats,
    progress: &mut Progress,
) -> Result<std::convert::Infallible, End> {
    // `one_connection` fills in `established` and `streamed`.
    let fail = |failure: SessionFailure| End::Failed {
        failure,
        established: true,
        streamed: false,
    };
    // Before the FMC has sent anything, a closed connection is its way of refusing us.
    let refused = || {
        fail(SessionFailure::ClosedAfterHandshake {
            explanation: tls::closed_after_handshake_explanation(client_cn),
        })
    };
    let mut received_any = false;

    let write_failed = |e: io::Error, received_any: bool| {
        if let Some(h) = HandshakeError::from_stream_error(&e) {
            fail(SessionFailure::Handshake(h))
        } else if !received_any && closed_by_peer(&e) {
            refused()
        } else {
            fail(SessionFailure::Write(e))
        }
    };

    conn.write(&event_stream_request(start, cfg.flags))
        .await
        .map_err(|e| write_failed(e, false))?;
    let request = format!(
        "requested events {} with flags {:#010x} ({})",
        describe_start(start),
        cfg.flags,
        describe_flags(cfg.flags, &cfg.events)
    );
    if progress.failed_before == 0 {
        info!("{request}");
    } else {
        debug!("{request}");
    }
    let mut warned_kinds: Vec<u16> = Vec::new();
    // An HA peer that is silent for `failover_after` is given up on even if it is shorter.
    let idle = match cfg.peers.len() {
        0 | 1 => cfg.idle_timeout,
        _ => cfg.idle_timeout.min(cfg.failover_after),
    };

    loop {
        let message = match timeout(idle, conn.read_message()).await {
            Err(_) => return Err(fail(SessionFailure::IdleTimeout(idle))),
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) if !received_any => return Err(refused()),
            Ok(Ok(None)) => return Err(fail(SessionFailure::Closed)),
            Ok(Err(ConnError::ClosedMidMessage { buffered })) => {
                return Err(fail(SessionFailure::ClosedMidMessage { buffered }));
            }
            Ok(Err(ConnError::Frame(e))) => return Err(fail(SessionFailure::Frame(e))),
            Ok(Err(ConnError::Io(e))) => {
                return Err(if let Some(h) = HandshakeError::from_stream_error(&e) {
                    fail(SessionFailure::Handshake(h))
                } else if !received_any && closed_by_peer(&e) {
                    refused()
                } else {
                    fail(SessionFailure::Read(e))
                });
            }
        };
        if !received_any && progress.failed_before > 0 {
            info!(
                "the FMC at {} accepted the connection after {} failed attempts",
                cfg.peers[active], progress.failed_before
            );
        }
        received_any = true;
        progress.last_heard = Instant::now();
        progress.accepted = true;
        stats
            .bytes
            .fetch_add(8 + message.body.len() as u64, Ordering::Relaxed);

        let mut server_error = None;
        match message.kind {
            kind::EVENT_DATA | kind::MESSAGE_BUNDLE => {
                let first = !progress.streamed;
                tx.send(SourceMessage {
                    connection,
                    peer: active,
                    kind: message.kind,
                    body: message.body,
                })
                .await
                .map_err(|_| End::ConsumerGone)?;
                stats.messages.fetch_add(1, Ordering::Relaxed);
                progress.streamed = true;
                if first {
                    info!("streaming events from the FMC");
                }
            }
            kind::STREAMING_INFORMATION => {
                let services = streaming_information(&message.body);
                if !services.iter().any(|s| s.service_id == ESTREAMER_SERVICE) {
                    return Err(fail(SessionFailure::NoEstreamerService {
                        offered: services.iter().map(|s| s.service_id).collect(),
                    }));
                }
                conn.write(&streaming_request(start, cfg.flags, &cfg.events))
                    .await
                    .map_err(|e| write_failed(e, true))?;
                debug!(
                    "the FMC offers service {ESTREAMER_SERVICE}; sent the StreamingRequest for {} event types",
                    cfg.events.len()
                );
            }
            kind::NULL => {}
            kind::ERROR => {
                let body = ErrorBody::parse(&message.body).unwrap_or(ErrorBody {
                    code: -1,
                    text: format!(
                        "(an Error message of {} bytes that cannot be read)",
                        message.body.len()
                    ),
                });
                server_error = Some(body);
            }
            other => {
                if !warned_kinds.contains(&other) {
                    warned_kinds.push(other);
                    warn!(
                        "the FMC sent a message of type {other} ({}), which a session does not \
                         expect; ignored",
                        kind::name(other)
                    );
                }
            }
        }

        // One Null per message read, after it has been handed on (reference 2.8).
        let acked = conn.write(&NULL_MESSAGE).await;
        if let Some(e) = server_error {
            return Err(fail(SessionFailure::ServerError(e)));
        }
        acked.map_err(|e| write_failed(e, true))?;
    }
}

/// Whether an I/O error means the peer closed or reset the connection.
pub(crate) fn closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

impl fmt::Display for SessionStatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} connects, {} reconnects, {} messages, {} bytes",
            if self.connected {
                "connected"
            } else {
                "disconnected"
            },
            self.connects,
            self.reconnects,
            self.messages,
            self.bytes
        )?;
        if let Some(e) = &self.last_error {
            write!(f, ", last error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_advice() {
        let e = SessionFailure::Connect {
            addr: "127.0.0.1:8302".parse().unwrap(),
            error: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert!(e.to_string().contains("fmc.port"), "{e}");
        let e = SessionFailure::NoEstreamerService {
            offered: vec![5001, 5000],
        };
        assert!(e.to_string().contains("offers 5001, 5000"), "{e}");
        let e = SessionFailure::Frame(FrameError::BadVersion(2));
        assert!(e.to_string().contains("CSCve44987"), "{e}");
        assert_eq!(
            describe_start(StartAt::Second(1591210934)),
            "since 1591210934 (2020-06-03 19:02:14 UTC)"
        );
    }
}
