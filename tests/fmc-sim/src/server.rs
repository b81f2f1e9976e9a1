//! The simulated FMC: an eStreamer server over mutual TLS that behaves, on the wire and in its
//! log, like the FMCs in the reference captures.
//!
//! Per connection: TLS 1.2 with a client certificate from the simulator's CA; optionally the
//! FMC's CN check (the certificate's CN, resolved if it is a name, must be the client's address);
//! the EventStreamRequest, StreamingInformation and StreamingRequest exchange; then the scenario's
//! metadata records and its events from the requested second, in MessageBundles (extended
//! request) or EventData messages, paced by the client's Null acknowledgements (at most `window`
//! messages unacknowledged), with keepalive Nulls when there is nothing to send. Faults
//! ([`Fault`]) make it misbehave on purpose. Every session keeps a log of what it was asked and
//! what it sent ([`SessionLog`]), for tests and for `estreamer-cef-sim simulate`.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_openssl::SslStream;
use tracing::{info, warn};

use super::faults::Fault;
use super::pki::{self, PkiError, PkiFiles};
use super::scenario::{ARCHIVE_JITTER_MAX, Scenario};
use estreamer_cef::decode::RecordHeader;
use estreamer_cef::delivery::cursor;
use estreamer_cef::estreamer::connection::{ConnError, Connection};
use estreamer_cef::estreamer::message::{
    self, ESTREAMER_SERVICE, ErrorBody, HEADER_LEN, Message, NULL_MESSAGE, kind,
};
use estreamer_cef::estreamer::request::{
    EventStreamRequest, StreamingRequest, describe_flags, flag,
};

/// How long a client may take for the TLS handshake and for its requests.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// After an Error message, how long the client may take to read it and hang up.
const ERROR_LINGER: Duration = Duration::from_secs(5);
/// Record type of the records the `unknown-record-every` fault inserts.
pub const UNKNOWN_RECORD_TYPE: u32 = 9999;
/// Bounds of what is kept in memory for a long-running simulator.
const MAX_SESSIONS_KEPT: usize = 1000;
const MAX_SENT_KEPT: usize = 10_000;
const MAX_LINES_KEPT: usize = 1000;

/// The simulator's settings.
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// Address to listen on (port 0: any free port, see [`SimulatorHandle::local_addr`]).
    pub listen: SocketAddr,
    /// The simulated FMC's certificate (PEM, chain allowed) and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Clients must present a certificate issued by this CA (PEM).
    pub client_ca: PathBuf,
    /// Compare the client certificate's CN with the client's address, like an FMC.
    pub check_cn: bool,
    /// Send a Null keepalive after this long without sending anything.
    pub keepalive: Duration,
    /// Records per MessageBundle (extended requests).
    pub bundle_size: usize,
    /// Records per second; unlimited (only acknowledgements pace the stream) when `None`.
    pub rate: Option<u32>,
    /// Messages sent but not yet acknowledged by a Null, at most.
    pub window: usize,
    pub faults: Vec<Fault>,
    /// Repeat the scenario's events forever, each pass moved later in time (archive seconds
    /// shifted past the previous pass), so that a stream "from now" gets events too.
    pub loop_events: bool,
    /// Play one FMC of a high-availability pair: every event's archive second moved by this
    /// many seconds plus a little jitter ([`Scenario::with_archive_offset`]). Two simulators
    /// serving the same scenario with different offsets serve the same events (same payloads)
    /// at different archive seconds, and requests "from second S" go by this one's seconds.
    /// 0: the scenario's seconds unchanged.
    pub archive_offset: i64,
}

impl SimulatorConfig {
    /// Defaults for a PKI made by [`pki::init`]: FMC-like CN check, 5 s keepalives, bundles of
    /// 100 records, 16 messages in flight, no rate limit, no faults.
    pub fn new(listen: SocketAddr, pki: &PkiFiles) -> SimulatorConfig {
        SimulatorConfig {
            listen,
            server_cert: pki.server_cert.clone(),
            server_key: pki.server_key.clone(),
            client_ca: pki.ca_cert.clone(),
            check_cn: true,
            keepalive: Duration::from_secs(5),
            bundle_size: 100,
            rate: None,
            window: 16,
            faults: Vec::new(),
            loop_events: false,
            archive_offset: 0,
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Tls(#[from] PkiError),
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("invalid simulator setting: {0}")]
    Invalid(String),
}

/// A record as the simulator sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentRecord {
    pub record_type: u32,
    /// 0 when the record has no archive timestamp.
    pub archive_second: u32,
    /// [`cursor::identity`] of its EventData body.
    pub identity: u64,
}

/// A message as the simulator sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    pub kind: u16,
    /// Bytes on the wire, header included (what was actually written when not `complete`).
    pub bytes: usize,
    /// False when the connection was closed in the middle of it on purpose.
    pub complete: bool,
    pub records: Vec<SentRecord>,
}

/// What one session was asked and did.
#[derive(Clone, Debug)]
pub struct SessionLog {
    pub id: u64,
    pub peer: SocketAddr,
    pub client_cn: Option<String>,
    /// What an FMC would have written in its log for this session, in order.
    pub lines: Vec<String>,
    pub request: Option<EventStreamRequest>,
    pub streaming_request: Option<StreamingRequest>,
    /// The data messages sent (the latest ones, if there were very many).
    pub sent: VecDeque<SentMessage>,
    /// Every message sent (data, StreamingInformation, keepalives, errors).
    pub messages_sent: u64,
    pub data_messages_sent: u64,
    pub records_sent: u64,
    /// Null messages received from the client.
    pub acks: u64,
    /// The window of unacknowledged messages is full and data is waiting.
    pub waiting_for_ack: bool,
    /// Why the session ended, once it has.
    pub ended: Option<String>,
}

impl SessionLog {
    /// Messages sent and not yet acknowledged.
    pub fn unacknowledged(&self) -> u64 {
        self.messages_sent.saturating_sub(self.acks)
    }

    /// Whether a line containing `text` was logged.
    pub fn logged(&self, text: &str) -> bool {
        self.lines.iter().any(|l| l.contains(text))
    }
}

struct Shared {
    sessions: Mutex<VecDeque<SessionLog>>,
    /// Per fault (same index as the configuration's list): a once-only fault has fired.
    fired: Vec<AtomicBool>,
    next_id: AtomicU64,
    /// Set by the `exit-after` fault: the whole simulator stops, like an FMC that dies.
    exit: watch::Sender<Option<Fault>>,
    /// The listening socket is open.
    listening: AtomicBool,
}

impl Shared {
    fn update(&self, id: u64, f: impl FnOnce(&mut SessionLog)) {
        if let Ok(mut sessions) = self.sessions.lock()
            && let Some(log) = sessions.iter_mut().rev().find(|s| s.id == id)
        {
            f(log);
        }
    }
}

/// A running simulator.
pub struct SimulatorHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SimulatorHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The sessions so far (the latest ones, if there were very many), oldest first.
    pub fn sessions(&self) -> Vec<SessionLog> {
        self.shared
            .sessions
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every session's FMC log lines, each prefixed with its session id.
    pub fn log_lines(&self) -> Vec<String> {
        self.sessions()
            .iter()
            .flat_map(|s| s.lines.iter().map(move |l| format!("[{}] {l}", s.id)))
            .collect()
    }

    /// Waits until `done` holds for the sessions, checking every few milliseconds; false when
    /// `limit` passes first.
    pub async fn wait_until(
        &self,
        limit: Duration,
        mut done: impl FnMut(&[SessionLog]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.sessions()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether it still accepts connections (false once stopped, or after `exit-after`).
    pub fn is_listening(&self) -> bool {
        self.shared.listening.load(Ordering::Acquire)
    }

    /// The `exit-after` fault that stopped it, once it has fired.
    pub fn exited(&self) -> Option<Fault> {
        self.shared.exit.borrow().clone()
    }

    /// Waits until the simulator has stopped (after its shutdown signal, or the `exit-after`
    /// fault: then returned) and every session has ended.
    pub async fn stopped(self) -> Option<Fault> {
        let _ = self.task.await;
        self.shared.exit.borrow().clone()
    }
}

/// Starts the simulator: binds `cfg.listen` and serves connections until `shutdown` becomes
/// true (or its sender is dropped).
pub async fn serve(
    cfg: SimulatorConfig,
    scenario: Arc<Scenario>,
    shutdown: watch::Receiver<bool>,
) -> Result<SimulatorHandle, SimError> {
    if cfg.bundle_size == 0 {
        return Err(SimError::Invalid("bundle_size must be at least 1".into()));
    }
    if cfg.window == 0 {
        return Err(SimError::Invalid("window must be at least 1".into()));
    }
    if cfg.rate == Some(0) {
        return Err(SimError::Invalid(
            "rate must be at least 1 record per second".into(),
        ));
    }
    if cfg.keepalive.is_zero() {
        return Err(SimError::Invalid("keepalive must be longer than 0".into()));
    }
    // The loop period follows from the scenario as given, so that peers of an HA pair (same
    // scenario, different offsets) repeat in step.
    let loop_period = scenario.loop_period();
    let scenario = if cfg.archive_offset == 0 {
        scenario
    } else {
        Arc::new(
            scenario
                .with_archive_offset(cfg.archive_offset)
                .map_err(SimError::Invalid)?,
        )
    };
    let acceptor = Arc::new(pki::build_acceptor(
        &cfg.server_cert,
        &cfg.server_key,
        &cfg.client_ca,
    )?);
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|error| SimError::Listen {
            addr: cfg.listen,
            error,
        })?;
    let addr = listener.local_addr().map_err(|error| SimError::Listen {
        addr: cfg.listen,
        error,
    })?;
    let shared = Arc::new(Shared {
        sessions: Mutex::new(VecDeque::new()),
        fired: cfg.faults.iter().map(|_| AtomicBool::new(false)).collect(),
        next_id: AtomicU64::new(1),
        exit: watch::Sender::new(None),
        listening: AtomicBool::new(true),
    });
    let offset = match cfg.archive_offset {
        0 => String::new(),
        o => format!(", archive seconds moved by {o:+} s plus 0 to {ARCHIVE_JITTER_MAX} s"),
    };
    info!(
        "simulated FMC listening on {addr} ({} metadata records, {} events{offset})",
        scenario.metadata.len(),
        scenario.events.len()
    );
    let served = Served {
        cfg: Arc::new(cfg),
        scenario,
        loop_period,
    };
    let task = tokio::spawn(accept_loop(
        listener,
        acceptor,
        served,
        shared.clone(),
        shutdown,
    ));
    Ok(SimulatorHandle { addr, shared, task })
}

/// What every session serves.
#[derive(Clone)]
struct Served {
    cfg: Arc<SimulatorConfig>,
    /// With the archive offset applied.
    scenario: Arc<Scenario>,
    /// Seconds between loop passes.
    loop_period: u64,
}

/// How the sessions are told to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    /// The simulator is stopping: TLS goodbye.
    Stop,
    /// `exit-after`: as if the FMC died.
    Exit,
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Arc<SslAcceptor>,
    served: Served,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    let mut exit = shared.exit.subscribe();
    let close = watch::Sender::new(None::<Close>);
    let how = loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop_requested(&mut shutdown) => break Close::Stop,
            _ = exit.wait_for(Option::is_some) => break Close::Exit,
        };
        // Reap finished sessions so the set does not grow in a long run.
        while sessions.try_join_next().is_some() {}
        match accepted {
            Ok((tcp, peer)) => {
                let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut logs) = shared.sessions.lock() {
                    if logs.len() >= MAX_SESSIONS_KEPT {
                        logs.pop_front();
                    }
                    logs.push_back(SessionLog {
                        id,
                        peer,
                        client_cn: None,
                        lines: Vec::new(),
                        request: None,
                        streaming_request: None,
                        sent: VecDeque::new(),
                        messages_sent: 0,
                        data_messages_sent: 0,
                        records_sent: 0,
                        acks: 0,
                        waiting_for_ack: false,
                        ended: None,
                    });
                }
                let session = Session {
                    id,
                    peer,
                    cfg: served.cfg.clone(),
                    scenario: served.scenario.clone(),
                    loop_period: served.loop_period,
                    shared: shared.clone(),
                };
                let acceptor = acceptor.clone();
                let close = close.subscribe();
                sessions.spawn(async move {
                    let ended = session.run(tcp, &acceptor, close).await;
                    session.log(&format!("Session ended: {ended}"));
                    session.shared.update(id, |l| l.ended = Some(ended));
                });
            }
            Err(e) => {
                warn!("simulated FMC: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // The listener goes first: a client that reconnects when its connection closes finds the
    // port closed, as with an FMC that is down.
    drop(listener);
    shared.listening.store(false, Ordering::Release);
    close.send_replace(Some(how));
    while sessions.join_next().await.is_some() {}
    match shared.exit.borrow().as_ref() {
        Some(f) => info!("simulated FMC exited: connections and listener closed (fault {f})"),
        None => info!("simulated FMC stopped"),
    }
}

struct Session {
    id: u64,
    peer: SocketAddr,
    cfg: Arc<SimulatorConfig>,
    scenario: Arc<Scenario>,
    loop_period: u64,
    shared: Arc<Shared>,
}

type Conn = Connection<SslStream<TcpStream>>;

/// Where the streaming part of a session stands.
struct Stream {
    messages_sent: u64,
    acks: u64,
    data_sent: u32,
    first_message_sent: bool,
    bundle_sequence: u32,
    waiting_for_ack: bool,
}

impl Session {
    fn log(&self, line: &str) {
        info!(target: "estreamer_cef_sim::fmc", "[session {}] {line}", self.id);
        self.shared.update(self.id, |l| {
            if l.lines.len() < MAX_LINES_KEPT {
                l.lines.push(line.to_string());
            }
        });
    }

    /// Runs the session; returns why it ended.
    async fn run(
        &self,
        tcp: TcpStream,
        acceptor: &SslAcceptor,
        mut close: watch::Receiver<Option<Close>>,
    ) -> String {
        let _ = tcp.set_nodelay(true);
        let stream = match self.accept_tls(tcp, acceptor).await {
            Ok(s) => s,
            Err(why) => return why,
        };
        let cn = pki::peer_cn(stream.ssl());
        self.shared.update(self.id, |l| l.client_cn = cn.clone());
        let cn_text = cn.clone().unwrap_or_else(|| "(none)".to_string());
        let peer_ip = canonical(self.peer.ip());

        if self.cfg.faults.contains(&Fault::CloseAfterHandshake) {
            self.log(&mismatch_line(&cn_text, peer_ip));
            return "closed after the handshake (fault close-after-handshake)".to_string();
        }
        if self.cfg.check_cn && !self.check_cn(&cn_text, peer_ip).await {
            return "client certificate CN does not match the client's address".to_string();
        }

        let mut conn = Connection::new(stream);
        let how = tokio::select! {
            why = self.serve_requests(&mut conn) => return why,
            how = close.wait_for(Option::is_some) => how.ok().and_then(|h| *h),
        };
        if how == Some(Close::Exit) {
            // Like a process that dies: a FIN without a TLS close_notify.
            let _ = conn.get_mut().get_mut().shutdown().await;
            linger(&mut conn).await;
            let fault = self.shared.exit.borrow().clone();
            let fault = fault.map(|f| f.to_string()).unwrap_or_default();
            format!("the simulated FMC exited (fault {fault})")
        } else {
            let _ = timeout(Duration::from_millis(500), conn.shutdown()).await;
            "simulator stopping".to_string()
        }
    }

    async fn accept_tls(
        &self,
        tcp: TcpStream,
        acceptor: &SslAcceptor,
    ) -> Result<SslStream<TcpStream>, String> {
        let ssl = Ssl::new(acceptor.context()).map_err(|e| format!("TLS setup failed: {e}"))?;
        let mut stream = SslStream::new(ssl, tcp).map_err(|e| format!("TLS setup failed: {e}"))?;
        match timeout(HANDSHAKE_TIMEOUT, Pin::new(&mut stream).accept()).await {
            Ok(Ok(())) => {
                self.log(&format!(
                    "Accepted connection from {} ({} {})",
                    self.peer,
                    stream.ssl().version_str(),
                    stream
                        .ssl()
                        .current_cipher()
                        .map(|c| c.name())
                        .unwrap_or("?")
                ));
                Ok(stream)
            }
            Ok(Err(e)) => {
                let line = format!(
                    "SSL_accept failed, SSL_get_error reports {:?}: {}",
                    e.code(),
                    e.ssl_error()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| e.to_string())
                );
                self.log(&line);
                Err("TLS handshake failed".to_string())
            }
            Err(_) => {
                self.log("SSL_accept timed out");
                Err("TLS handshake timed out".to_string())
            }
        }
    }

    /// The FMC's post-handshake check: the certificate's CN (an address, or a name resolved by
    /// the FMC's DNS) must be the client's source address.
    async fn check_cn(&self, cn: &str, peer: IpAddr) -> bool {
        let addresses: Vec<IpAddr> = match cn.parse::<IpAddr>() {
            Ok(ip) => vec![canonical(ip)],
            Err(_) => match tokio::net::lookup_host((cn, 0)).await {
                Ok(addrs) => {
                    let ips: Vec<IpAddr> = addrs.map(|a| canonical(a.ip())).collect();
                    for ip in &ips {
                        let family = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
                        self.log(&format!("Found {family} address {ip} for {cn}"));
                    }
                    ips
                }
                Err(e) => {
                    self.log(&format!("Unable to resolve CN {cn}: {e}"));
                    Vec::new()
                }
            },
        };
        for ip in &addresses {
            self.log(&format!("Resolved CN {cn} to {ip}"));
        }
        if addresses.contains(&peer) {
            let family = if peer.is_ipv4() { "IPv4" } else { "IPv6" };
            self.log(&format!("Matched Certificate CN:{cn} to {peer} ({family})"));
            true
        } else {
            self.log(&mismatch_line(cn, peer));
            false
        }
    }

    /// The request exchange, then the stream.
    async fn serve_requests(&self, conn: &mut Conn) -> String {
        let mut st = Stream {
            messages_sent: 0,
            acks: 0,
            data_sent: 0,
            first_message_sent: false,
            bundle_sequence: 0,
            waiting_for_ack: false,
        };
        let request = match timeout(REQUEST_TIMEOUT, conn.read_message()).await {
            Err(_) => return "no EventStreamRequest within 60s".to_string(),
            Ok(Err(e)) => return format!("reading the request failed: {e}"),
            Ok(Ok(None)) => return "client closed the connection before its request".to_string(),
            Ok(Ok(Some(m))) if m.kind == kind::EVENT_STREAM_REQUEST => m,
            Ok(Ok(Some(m))) => {
                self.log(&format!(
                    "Got unexpected message type {} ({}) length {} instead of EVENT_STREAM_REQUEST",
                    m.kind,
                    kind::name(m.kind),
                    m.body.len()
                ));
                return "protocol error before the request".to_string();
            }
        };
        self.log(&format!(
            "Got EVENT_STREAM_REQUEST length {}",
            request.body.len()
        ));
        let Some(request) = EventStreamRequest::parse(&request.body) else {
            return "EventStreamRequest too short".to_string();
        };
        self.shared.update(self.id, |l| l.request = Some(request));
        let extended = request.flags & flag::EXTENDED != 0;

        let mut start = request.initial_timestamp;
        if extended {
            let services: &[u32] = if self.cfg.faults.contains(&Fault::NoEstreamerService) {
                &[5001, 5000]
            } else {
                &[5001, 5000, ESTREAMER_SERVICE]
            };
            let info = message::streaming_information_message(services);
            self.log(&format!(
                "Publishing service INFO total data size {}",
                info.len() - HEADER_LEN
            ));
            for s in services {
                self.log(&format!("Publishing service id:{s} - length size 8"));
            }
            if let Err(e) = self.send(conn, &mut st, info, None).await {
                return e;
            }
            let streaming = loop {
                match timeout(REQUEST_TIMEOUT, conn.read_message()).await {
                    Err(_) => return "no StreamingRequest within 60s".to_string(),
                    Ok(Err(e)) => return format!("reading the request failed: {e}"),
                    Ok(Ok(None)) => {
                        return "client closed the connection before its StreamingRequest"
                            .to_string();
                    }
                    Ok(Ok(Some(m))) if m.kind == kind::NULL => st.acks += 1,
                    Ok(Ok(Some(m))) if m.kind == kind::STREAMING_REQUEST => break m,
                    Ok(Ok(Some(m))) => {
                        self.log(&format!(
                            "Got unexpected message type {} ({}) length {} instead of UEC_STREAM_REQUEST",
                            m.kind,
                            kind::name(m.kind),
                            m.body.len()
                        ));
                        return "protocol error before the StreamingRequest".to_string();
                    }
                }
            };
            self.log(&format!(
                "Got UEC_STREAM_REQUEST length {}",
                streaming.body.len()
            ));
            let Some(sr) = StreamingRequest::parse(&streaming.body) else {
                return "StreamingRequest too short".to_string();
            };
            self.log(&format!(
                "requested service [{}] timestamp [{}]",
                sr.service_id, sr.initial_timestamp
            ));
            for e in &sr.events {
                self.log(&format!(
                    "Got Event type {}, version {}",
                    e.event, e.version
                ));
            }
            self.log(&format!(
                "EventStream Request ({:#010x}): Since {} {}",
                request.flags,
                sr.initial_timestamp,
                describe_flags(request.flags, &sr.events)
            ));
            if sr.service_id != ESTREAMER_SERVICE {
                return format!("requested unknown service {}", sr.service_id);
            }
            start = sr.initial_timestamp;
            self.shared
                .update(self.id, |l| l.streaming_request = Some(sr));
        } else {
            self.log(&format!(
                "EventStream Request ({:#010x}): Since {} {}",
                request.flags,
                request.initial_timestamp,
                describe_flags(request.flags, &[])
            ));
        }
        self.log(&format!(
            "creating iterator for service [{ESTREAMER_SERVICE}] prefix [unified2.] timestamp [{start}]"
        ));
        self.stream(conn, &mut st, start, extended).await
    }

    /// Writes one message, applying `bad-version` to the first message of the session and
    /// keeping count for flow control.
    async fn send(
        &self,
        conn: &mut Conn,
        st: &mut Stream,
        mut wire: Vec<u8>,
        records: Option<Vec<SentRecord>>,
    ) -> Result<(), String> {
        if !st.first_message_sent {
            st.first_message_sent = true;
            if self.cfg.faults.contains(&Fault::BadVersion) {
                wire[..2].copy_from_slice(&2u16.to_be_bytes());
                self.log("Sending a message with header version 2 (fault bad-version)");
            }
        }
        conn.write(&wire)
            .await
            .map_err(|e| format!("write failed: {e}"))?;
        st.messages_sent += 1;
        let msg_kind = u16::from_be_bytes([wire[2], wire[3]]);
        self.shared.update(self.id, |l| {
            l.messages_sent = st.messages_sent;
            if let Some(records) = records {
                l.data_messages_sent += 1;
                l.records_sent += records.len() as u64;
                if l.sent.len() >= MAX_SENT_KEPT {
                    l.sent.pop_front();
                }
                l.sent.push_back(SentMessage {
                    kind: msg_kind,
                    bytes: wire.len(),
                    complete: true,
                    records,
                });
            }
        });
        Ok(())
    }

    /// Streams metadata and events until the client leaves or a fault ends the session.
    async fn stream(&self, conn: &mut Conn, st: &mut Stream, start: u32, extended: bool) -> String {
        let unknown_every = self.cfg.faults.iter().find_map(|f| match f {
            Fault::UnknownRecordEvery(n) => Some(*n),
            _ => None,
        });
        let mut feed = Feed::new(
            &self.scenario,
            start,
            self.cfg.loop_events.then_some(self.loop_period),
            unknown_every,
        );
        let mut last_write = Instant::now();
        let mut stall_until: Option<Instant> = None;
        let mut pacer = self.cfg.rate.map(|r| Pacer::new(r, self.cfg.bundle_size));
        let per_message = if extended { self.cfg.bundle_size } else { 1 };

        loop {
            let window_open = st.messages_sent.saturating_sub(st.acks) < self.cfg.window as u64;
            let has_data = feed.has_more();
            let waiting = has_data && !window_open;
            if waiting != st.waiting_for_ack {
                st.waiting_for_ack = waiting;
                self.shared.update(self.id, |l| l.waiting_for_ack = waiting);
            }
            let active = window_open && stall_until.is_none();
            let next_data = pacer.as_ref().map_or(Instant::now(), |p| p.ready_at());
            let stall_end = stall_until.unwrap_or_else(Instant::now);

            let step = tokio::select! {
                biased;
                incoming = conn.read_message() => Step::Incoming(incoming),
                _ = at(stall_end), if stall_until.is_some() => Step::StallOver,
                _ = at(next_data), if active && has_data => Step::Data,
                _ = at(last_write + self.cfg.keepalive), if active => Step::Keepalive,
            };
            match step {
                Step::Incoming(incoming) => {
                    if let Some(end) = self.on_client_message(st, incoming) {
                        return end;
                    }
                }
                Step::StallOver => {
                    stall_until = None;
                    self.log("Resuming after the stall");
                }
                Step::Keepalive => {
                    if let Err(e) = self.send(conn, st, NULL_MESSAGE.to_vec(), None).await {
                        return e;
                    }
                    last_write = Instant::now();
                }
                Step::Data => {
                    let limit = pacer.as_mut().map_or(per_message, |p| p.take(per_message));
                    let bodies = feed.take(limit);
                    if bodies.is_empty() {
                        continue;
                    }
                    match self.send_data(conn, st, &bodies, extended).await {
                        Ok(Some(stall)) => stall_until = Some(Instant::now() + stall),
                        Ok(None) => {}
                        Err(end) => return end,
                    }
                    last_write = Instant::now();
                }
            }
        }
    }

    /// Counts an acknowledgement; returns why the session ends when the client's message ends it.
    fn on_client_message(
        &self,
        st: &mut Stream,
        incoming: Result<Option<Message>, ConnError>,
    ) -> Option<String> {
        match incoming {
            Ok(Some(m)) if m.kind == kind::NULL => {
                st.acks += 1;
                let acks = st.acks;
                self.shared.update(self.id, |l| l.acks = acks);
                None
            }
            Ok(Some(m)) if m.kind == kind::ERROR => {
                let text = ErrorBody::parse(&m.body)
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                self.log(&format!("Client sent an error: {text}"));
                Some("client sent an error".to_string())
            }
            Ok(Some(m)) => {
                self.log(&format!(
                    "Got unexpected message type {} length {}; ignored",
                    m.kind,
                    m.body.len()
                ));
                None
            }
            Ok(None) => Some("client closed the connection".to_string()),
            Err(ConnError::ClosedMidMessage { .. }) => {
                Some("client closed the connection in the middle of a message".to_string())
            }
            Err(e) => Some(format!("reading from the client failed: {e}")),
        }
    }

    /// Sends one data message of `bodies`, committing the faults due at it. `Ok(Some(d))`: stall
    /// for `d` now; `Err`: the session ends, for this reason.
    async fn send_data(
        &self,
        conn: &mut Conn,
        st: &mut Stream,
        bodies: &[Bytes],
        extended: bool,
    ) -> Result<Option<Duration>, String> {
        st.data_sent += 1;
        let n = st.data_sent;
        let wire = if extended {
            st.bundle_sequence += 1;
            bundle(self.id as u32, st.bundle_sequence, bodies)
        } else {
            message::encode(kind::EVENT_DATA, &bodies[0])
        };
        let records: Vec<SentRecord> = bodies.iter().map(|b| sent_record(b)).collect();

        let closes_here =
            |f: &Fault| matches!(f, Fault::CloseAfter(k) | Fault::CloseEvery(k) if *k == n);
        if let Some(f) = self.fire(closes_here) {
            let part = (wire.len() / 2).max(1);
            self.log(&format!(
                "Closing the connection after {part} of the {} bytes of message {n} (fault {f})",
                wire.len()
            ));
            let _ = conn.write(&wire[..part]).await;
            self.shared.update(self.id, |l| {
                l.sent.push_back(SentMessage {
                    kind: u16::from_be_bytes([wire[2], wire[3]]),
                    bytes: part,
                    complete: false,
                    records,
                });
            });
            // Like a process that dies: a FIN without a TLS close_notify. Reading on until the
            // client hangs up keeps its acknowledgements from turning our close into a reset
            // that could destroy the partial message in flight.
            let _ = conn.get_mut().get_mut().shutdown().await;
            linger(conn).await;
            return Err(format!("closed in the middle of message {n} (fault {f})"));
        }
        self.send(conn, st, wire, Some(records)).await?;

        let errs_here = |f: &Fault| matches!(f, Fault::ErrorAfter { after, .. } if *after == n);
        if let Some(Fault::ErrorAfter { code, text, .. }) = self.fire(errs_here) {
            self.log(&format!(
                "Sending Error message code {code}: {text} (fault error-after:{n})"
            ));
            self.send(conn, st, message::error_message(code, &text), None)
                .await?;
            // Let the client read the error and hang up; closing at once could turn into a
            // reset that destroys it in flight.
            linger(conn).await;
            return Err(format!("sent an Error message (fault error-after:{n})"));
        }
        let exits_here = |f: &Fault| matches!(f, Fault::ExitAfter(k) if *k == n);
        if let Some(f) = self.fire(exits_here) {
            self.log(&format!(
                "Exiting after message {n} (fault {f}): closing every connection and the listening socket"
            ));
            self.shared.exit.send_replace(Some(f));
            // Send nothing more: the accept loop closes the listener, then every session (this
            // one too, which `run` drops here).
            std::future::pending::<()>().await;
        }
        let stalls_here = |f: &Fault| matches!(f, Fault::StallAfter { after, .. } if *after == n);
        if let Some(Fault::StallAfter { duration, .. }) = self.fire(stalls_here) {
            self.log(&format!(
                "Stalling for {:.1}s after message {n}, no keepalives (fault)",
                duration.as_secs_f64()
            ));
            return Ok(Some(duration));
        }
        Ok(None)
    }

    /// The first fault matching `pred` that may fire now; a once-only fault is marked as fired.
    fn fire(&self, pred: impl Fn(&Fault) -> bool) -> Option<Fault> {
        for (i, f) in self.cfg.faults.iter().enumerate() {
            if !pred(f) {
                continue;
            }
            if !f.once()
                || self.shared.fired[i]
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return Some(f.clone());
            }
        }
        None
    }
}

/// What the streaming loop does next.
enum Step {
    Incoming(Result<Option<Message>, ConnError>),
    StallOver,
    Data,
    Keepalive,
}

/// Reads (and drops) what the client still sends until it hangs up, for at most a few seconds.
async fn linger(conn: &mut Conn) {
    let _ = timeout(ERROR_LINGER, async {
        while let Ok(Some(_)) = conn.read_message().await {}
    })
    .await;
}

/// Resolves at `deadline`, at once when it has passed (a timer for "now" would wait for the next
/// tick of the clock and let a later branch of a `select!` win).
async fn at(deadline: Instant) {
    if deadline > Instant::now() {
        sleep_until(deadline).await;
    }
}

/// Resolves when the simulator is told to stop (or nobody is left to tell it).
async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// The FMC's words when the certificate CN is not the client's address (reference 1.3).
fn mismatch_line(cn: &str, peer: IpAddr) -> String {
    format!(
        "Certificate Common Name {cn} does not match remote host: {peer}. It was issued to a different client."
    )
}

/// IPv4-mapped IPv6 addresses as IPv4 (a dual-stack listener sees IPv4 clients that way).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// A MessageBundle (reference 2.6).
fn bundle(connection_id: u32, sequence: u32, bodies: &[Bytes]) -> Vec<u8> {
    let len = 8 + bodies.iter().map(|b| 8 + b.len()).sum::<usize>();
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(&connection_id.to_be_bytes());
    body.extend_from_slice(&sequence.to_be_bytes());
    for b in bodies {
        body.extend_from_slice(&u32::from(kind::EVENT_DATA).to_be_bytes());
        body.extend_from_slice(&(b.len() as u32).to_be_bytes());
        body.extend_from_slice(b);
    }
    message::encode(kind::MESSAGE_BUNDLE, &body)
}

fn sent_record(body: &[u8]) -> SentRecord {
    let (record_type, archive_second) = match RecordHeader::parse(body) {
        Ok(h) => (h.record_type, h.archive_timestamp),
        Err(_) => (
            body.get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0),
            0,
        ),
    };
    SentRecord {
        record_type,
        archive_second,
        identity: cursor::identity(body),
    }
}

/// Records per second as a token bucket that holds at most one message's worth.
struct Pacer {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Pacer {
    fn new(rate: u32, capacity: usize) -> Pacer {
        Pacer {
            rate: f64::from(rate),
            capacity: capacity as f64,
            tokens: 1.0,
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + (now - self.at).as_secs_f64() * self.rate).min(self.capacity);
        self.at = now;
    }

    /// When at least one record may be sent.
    fn ready_at(&self) -> Instant {
        let missing = 1.0 - self.tokens;
        if missing <= 0.0 {
            self.at
        } else {
            self.at + Duration::from_secs_f64(missing / self.rate)
        }
    }

    /// How many of `wanted` records may go now (at least one once `ready_at` has passed).
    fn take(&mut self, wanted: usize) -> usize {
        self.refill();
        let n = (self.tokens.floor() as usize).clamp(1, wanted.max(1));
        self.tokens -= n as f64;
        n
    }
}

/// The sequence of record bodies a session sends: the metadata, then the events from the start
/// second (looping if asked), with injected unknown records.
struct Feed<'a> {
    scenario: &'a Scenario,
    meta_next: usize,
    /// Next event: pass and index; `None` when there are no more.
    next: Option<(u64, usize)>,
    loop_events: bool,
    /// Seconds between one pass of the events and the next (more than their span).
    period: u64,
    unknown_every: Option<u32>,
    pending_unknown: Option<Bytes>,
}

impl<'a> Feed<'a> {
    /// `loop_period`: loop the events, one pass every so many seconds (at least their span + 1).
    fn new(
        scenario: &'a Scenario,
        start: u32,
        loop_period: Option<u64>,
        unknown_every: Option<u32>,
    ) -> Feed<'a> {
        let events = &scenario.events;
        let first = events.first().map_or(0, |r| u64::from(r.archive_second));
        let last = events.last().map_or(0, |r| u64::from(r.archive_second));
        let loop_events = loop_period.is_some();
        let period = loop_period.unwrap_or(0).max(last - first + 1);
        let mut feed = Feed {
            scenario,
            meta_next: 0,
            next: None,
            loop_events,
            period,
            unknown_every,
            pending_unknown: None,
        };
        if events.is_empty() {
            return feed;
        }
        feed.next = match start {
            0 => Some((0, 0)),
            u32::MAX if loop_events => Some((1, 0)),
            u32::MAX => None,
            s => {
                let s = u64::from(s);
                if s <= last {
                    Some((
                        0,
                        events.partition_point(|r| u64::from(r.archive_second) < s),
                    ))
                } else if loop_events {
                    let pass = (s - first) / period;
                    let shift = pass * period;
                    let i = events.partition_point(|r| u64::from(r.archive_second) + shift < s);
                    if i < events.len() {
                        Some((pass, i))
                    } else {
                        Some((pass + 1, 0))
                    }
                } else {
                    None
                }
            }
        };
        feed
    }

    fn has_more(&self) -> bool {
        self.meta_next < self.scenario.metadata.len()
            || self.pending_unknown.is_some()
            || self.next.is_some()
    }

    fn take(&mut self, n: usize) -> Vec<Bytes> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next_body() {
                Some(b) => out.push(b),
                None => break,
            }
        }
        out
    }

    fn next_body(&mut self) -> Option<Bytes> {
        if let Some(m) = self.scenario.metadata.get(self.meta_next) {
            self.meta_next += 1;
            return Some(m.body.clone());
        }
        if let Some(u) = self.pending_unknown.take() {
            return Some(u);
        }
        let (pass, i) = self.next?;
        let events = &self.scenario.events;
        let record = &events[i];
        let shifted = u64::from(record.archive_second) + pass * self.period;
        if shifted >= u64::from(u32::MAX) {
            self.next = None;
            return None;
        }
        self.next = if i + 1 < events.len() {
            Some((pass, i + 1))
        } else if self.loop_events {
            Some((pass + 1, 0))
        } else {
            None
        };
        let body = if pass == 0 {
            record.body.clone()
        } else {
            record.restamped(shifted as u32).body
        };
        if let Some(every) = self.unknown_every {
            let position = pass * events.len() as u64 + i as u64;
            if (position + 1).is_multiple_of(u64::from(every)) {
                self.pending_unknown = Some(unknown_record(&body, position));
            }
        }
        Some(body)
    }
}

/// A record of a type no catalog knows, with the same kind of header (and archive second) as the
/// record it follows, and a payload that makes it unique per stream position.
fn unknown_record(after: &[u8], position: u64) -> Bytes {
    let header = RecordHeader::parse(after).ok();
    let payload = format!("simulated unknown record after event {position}");
    let mut b = BytesMut::new();
    b.put_u32(UNKNOWN_RECORD_TYPE);
    b.put_u32(payload.len() as u32);
    if let Some(h) = header.filter(|h| h.header_len == 16) {
        b.put_u32(h.archive_timestamp);
        b.put_u32(0);
    }
    b.put_slice(payload.as_bytes());
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SimRecord;

    fn record(second: u32, tag: u8) -> SimRecord {
        let mut b = BytesMut::new();
        b.put_u32(71);
        b.put_u32(1);
        b.put_u32(second);
        b.put_u32(0);
        b.put_u8(tag);
        SimRecord {
            archive_second: second,
            record_type: 71,
            body: b.freeze(),
        }
    }

    fn seconds(bodies: &[Bytes]) -> Vec<u32> {
        bodies
            .iter()
            .map(|b| RecordHeader::parse(b).unwrap().archive_timestamp)
            .collect()
    }

    fn scenario() -> Scenario {
        Scenario {
            metadata: vec![],
            events: vec![record(10, 1), record(10, 2), record(11, 3), record(13, 4)],
        }
    }

    #[test]
    fn feed_starts_at_the_requested_second_inclusive() {
        let s = scenario();
        assert_eq!(
            seconds(&Feed::new(&s, 0, None, None).take(10)),
            [10, 10, 11, 13]
        );
        assert_eq!(seconds(&Feed::new(&s, 11, None, None).take(10)), [11, 13]);
        assert_eq!(seconds(&Feed::new(&s, 12, None, None).take(10)), [13]);
        assert!(Feed::new(&s, 14, None, None).take(10).is_empty());
        assert!(Feed::new(&s, u32::MAX, None, None).take(10).is_empty());
    }

    #[test]
    fn looping_moves_each_pass_past_the_previous_one() {
        let s = scenario();
        // Span 10..=13 plus room for the HA jitter: period 6, pass 1 is 16, 16, 17, 19.
        let period = Some(s.loop_period());
        assert_eq!(period, Some(6));
        assert_eq!(
            seconds(&Feed::new(&s, 0, period, None).take(8)),
            [10, 10, 11, 13, 16, 16, 17, 19]
        );
        assert_eq!(
            seconds(&Feed::new(&s, u32::MAX, period, None).take(2)),
            [16, 16]
        );
        // Resuming inside a later pass.
        assert_eq!(
            seconds(&Feed::new(&s, 19, period, None).take(3)),
            [19, 22, 22]
        );
    }

    /// Two peers of an HA pair loop in step: pass by pass the same payloads, each peer's
    /// seconds in order, apart by the offset and the jitter only.
    #[test]
    fn ha_peers_loop_the_same_passes_apart_by_their_offset() {
        let a = Scenario {
            metadata: vec![],
            events: (0..40).map(|i| record(100 + i / 4, i as u8)).collect(),
        };
        let period = Some(a.loop_period());
        let b = a.with_archive_offset(7).unwrap();
        let per_pass = a.events.len();
        let from_a = Feed::new(&a, 0, period, None).take(3 * per_pass);
        let from_b = Feed::new(&b, 0, period, None).take(3 * per_pass);
        for feed in [&from_a, &from_b] {
            assert!(seconds(feed).windows(2).all(|w| w[0] <= w[1]));
        }
        let payloads = |bodies: &[Bytes]| -> Vec<(Bytes, u32)> {
            let mut p: Vec<(Bytes, u32)> = bodies
                .iter()
                .map(|b| {
                    (
                        b.slice(16..),
                        RecordHeader::parse(b).unwrap().archive_timestamp,
                    )
                })
                .collect();
            p.sort();
            p
        };
        for pass in 0..3 {
            let range = pass * per_pass..(pass + 1) * per_pass;
            let pa = payloads(&from_a[range.clone()]);
            let pb = payloads(&from_b[range]);
            for ((payload_a, second_a), (payload_b, second_b)) in pa.iter().zip(&pb) {
                assert_eq!(payload_a, payload_b, "pass {pass}");
                let apart = second_b - second_a;
                assert!(
                    (7..=7 + ARCHIVE_JITTER_MAX).contains(&apart),
                    "pass {pass}: {apart}"
                );
            }
        }
        // Resuming at one of B's own seconds in pass 2 starts with B's events of that second.
        let second = seconds(&from_b)[2 * per_pass + 5];
        let resumed = Feed::new(&b, second, period, None).take(1);
        assert_eq!(seconds(&resumed), [second]);
    }

    #[test]
    fn unknown_records_follow_every_nth_event() {
        let s = scenario();
        let bodies = Feed::new(&s, 0, None, Some(2)).take(10);
        let types: Vec<u32> = bodies
            .iter()
            .map(|b| RecordHeader::parse(b).unwrap().record_type)
            .collect();
        assert_eq!(
            types,
            [71, 71, UNKNOWN_RECORD_TYPE, 71, 71, UNKNOWN_RECORD_TYPE]
        );
        assert_eq!(seconds(&bodies)[2], 10);
    }

    #[tokio::test]
    async fn pacer_spreads_records_over_time() {
        let mut p = Pacer::new(1000, 10);
        assert_eq!(p.take(10), 1);
        assert!(p.ready_at() > p.at);
    }
}
