//! Shared by the session, simulator and diagnosis tests: a simulator PKI in a temporary
//! directory, a scenario built from corpus B, a simulator on a free loopback port, and a
//! consumer that keeps a resume cursor like the pipeline does.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use estreamer_cef::config::Peer;
use estreamer_cef::config::SessionConfig;
use estreamer_cef::decode::RecordHeader;
use estreamer_cef::decode::stream::{StreamEvent, walk};
use estreamer_cef::delivery::cursor::{self, Cursor};
use estreamer_cef::estreamer::message::{Bundle, kind};
use estreamer_cef::estreamer::request::{DEFAULT_EXTENDED_EVENTS, StartAt};
use estreamer_cef::estreamer::session::{Resume, ResumePoint, SourceMessage};
use estreamer_cef::net::identity::{ClientIdentity, load_pkcs12};
use estreamer_cef::net::password::read_password_file;
use estreamer_cef::net::tls::ServerTrust;
use estreamer_cef_sim::pki::{self, PkiFiles, PkiOptions};
use estreamer_cef_sim::scenario::{Scenario, SimRecord};
use estreamer_cef_sim::server::{self, SimulatorConfig, SimulatorHandle};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Generous bound for anything that should happen "soon" on a loaded 2-vCPU machine.
pub const LIMIT: Duration = Duration::from_secs(60);
/// The flags eNcore sends by default.
pub const FLAGS: u32 = 0x4890_0061;
/// Archive second of the first event of the corpus scenario.
pub const BASE_SECOND: u32 = 1_700_000_000;

/// A simulator PKI in its own temporary directory.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub files: PkiFiles,
    pub password: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        TestPki::with(PkiOptions::default())
    }

    pub fn with(opts: PkiOptions) -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let files = pki::init(dir.path(), &opts).unwrap();
        let password = read_password_file(&files.client_pass, "client.pass")
            .unwrap()
            .expose()
            .to_string();
        TestPki {
            dir,
            files,
            password,
        }
    }

    pub fn identity(&self) -> ClientIdentity {
        load_pkcs12(&self.files.client_pkcs12, &self.password).unwrap()
    }

    /// Another client certificate from this PKI's CA, with its own CN; password "pw".
    pub fn issue(&self, cn: &str) -> PathBuf {
        pki::issue_client(self.dir.path(), &self.files.ca(), cn, "pw", false).unwrap()
    }

    pub fn simulator(&self) -> SimulatorConfig {
        let mut cfg = SimulatorConfig::new("127.0.0.1:0".parse().unwrap(), &self.files);
        cfg.keepalive = Duration::from_millis(200);
        cfg.bundle_size = 10;
        cfg.window = 8;
        cfg
    }
}

/// Corpus B as a scenario: its metadata records, and its events in archive order re-stamped so
/// that `per_second` consecutive events share an archive second, from [`BASE_SECOND`] on (the
/// corpus has one event per second; resuming inclusively needs seconds with several records).
pub fn corpus_scenario(per_second: usize) -> Scenario {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/corpus-b/corpus-B.bin"
    ))
    .unwrap();
    let mut metadata = Vec::new();
    let mut events: Vec<(u32, Bytes, u32)> = Vec::new();
    for event in walk(&bytes) {
        let StreamEvent::Record(r) = event else {
            continue;
        };
        let h = RecordHeader::parse(r.body).unwrap();
        let body = Bytes::copy_from_slice(r.body);
        if h.archive_timestamp == 0 {
            metadata.push(SimRecord {
                archive_second: 0,
                record_type: h.record_type,
                body,
            });
        } else {
            assert_eq!(h.header_len, 16);
            events.push((h.archive_timestamp, body, h.record_type));
        }
    }
    events.sort_by_key(|e| e.0);
    let events: Vec<SimRecord> = events
        .into_iter()
        .enumerate()
        .map(|(i, (_, body, record_type))| {
            let second = BASE_SECOND + (i / per_second) as u32;
            let mut b = BytesMut::from(&body[..]);
            b[8..12].copy_from_slice(&second.to_be_bytes());
            SimRecord {
                archive_second: second,
                record_type,
                body: b.freeze(),
            }
        })
        .collect();
    let ids: BTreeSet<u64> = events.iter().map(|e| cursor::identity(&e.body)).collect();
    assert_eq!(ids.len(), events.len(), "corpus events must be distinct");
    Scenario { metadata, events }
}

/// Identities of the scenario's events from `second` on, in order.
pub fn expected_from(scenario: &Scenario, second: u32) -> Vec<u64> {
    scenario
        .events_from(second)
        .iter()
        .map(|r| cursor::identity(&r.body))
        .collect()
}

/// A running simulator and its off switch.
pub struct Sim {
    pub handle: SimulatorHandle,
    pub stop: watch::Sender<bool>,
}

impl Sim {
    pub async fn start(cfg: SimulatorConfig, scenario: Arc<Scenario>) -> Sim {
        let (stop, rx) = watch::channel(false);
        let handle = server::serve(cfg, scenario, rx).await.unwrap();
        Sim { handle, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }
}

/// Client settings for a simulator at `addr` (trusting the simulator's CA from the PKCS12).
pub fn session_config(identity: ClientIdentity, addr: SocketAddr, start: StartAt) -> SessionConfig {
    SessionConfig {
        peers: vec![Peer {
            host: "127.0.0.1".to_string(),
            port: addr.port(),
        }],
        identity,
        trust: ServerTrust::Pkcs12Ca,
        verify_hostname: true,
        connect_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(20),
        reconnect_delay_min: Duration::from_millis(100),
        reconnect_delay_max: Duration::from_millis(200),
        failover_after: Duration::from_secs(60),
        failover_overlap: Duration::from_secs(60),
        flags: FLAGS,
        events: DEFAULT_EXTENDED_EVENTS.to_vec(),
        start,
    }
}

/// What a consumer has taken: event identities in delivery order (after the cursor), and counts.
#[derive(Debug, Default)]
pub struct Delivered {
    pub events: Vec<u64>,
    pub duplicates: u64,
    pub metadata: u64,
    pub messages: u64,
    pub connections: BTreeSet<u64>,
}

/// Splits a source message into its records' EventData bodies.
pub fn records(m: &SourceMessage) -> Vec<Bytes> {
    match m.kind {
        kind::EVENT_DATA => vec![m.body.clone()],
        kind::MESSAGE_BUNDLE => {
            let b = Bundle::parse(&m.body).unwrap();
            b.items()
                .map(|i| {
                    let (off, item) = i.unwrap();
                    m.body.slice(off + 8..off + 8 + item.len())
                })
                .collect()
        }
        other => panic!("unexpected message kind {other} handed on"),
    }
}

/// Takes one message like the pipeline: admits each record through the cursor, then moves the
/// resume point to the cursor's second.
pub fn consume(m: &SourceMessage, cursor: &mut Cursor, resume: &Resume, d: &mut Delivered) {
    d.messages += 1;
    d.connections.insert(m.connection);
    for body in records(m) {
        let h = RecordHeader::parse(&body).unwrap();
        if h.archive_timestamp == 0 {
            d.metadata += 1;
            continue;
        }
        if cursor.admit(h.archive_timestamp, cursor::identity(&body)) {
            d.events.push(cursor::identity(&body));
        } else {
            d.duplicates += 1;
        }
    }
    if cursor.second() > 0 {
        resume.set(ResumePoint {
            peer: 0,
            second: cursor.second(),
        });
    }
}

/// A consumer task that takes everything until the channel closes.
pub fn spawn_consumer(
    mut rx: mpsc::Receiver<SourceMessage>,
    resume: Arc<Resume>,
) -> (Arc<Mutex<Delivered>>, JoinHandle<()>) {
    let delivered = Arc::new(Mutex::new(Delivered::default()));
    let d = delivered.clone();
    let task = tokio::spawn(async move {
        let mut cursor = Cursor::default();
        while let Some(m) = rx.recv().await {
            consume(&m, &mut cursor, &resume, &mut d.lock().unwrap());
        }
    });
    (delivered, task)
}

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
