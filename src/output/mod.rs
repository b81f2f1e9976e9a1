//! The sinks: CEF events out to receivers over UDP, TCP or TLS syslog, into files or stdout, or
//! into a Kafka topic ([`kafka`]), plus the tap. Syslog message format and framing live in [`syslog`]; the transports, the resend
//! journal and the tap beside it, so that a sink that is not syslog has its place here too.
//!
//! Each output runs as its own task and receives every [`Batch`] over a bounded channel. It
//! reports how far it has *delivered* the stream on a `watch` channel: the highest sequence number
//! `S` such that every event `<= S` this output is responsible for no more: UDP handed to the
//! kernel; file/stdout written and flushed; TCP/TLS acknowledged by the receiver's TCP stack (the
//! resend journal then covers a receiver that crashes before reading it, see [`journal`]); Kafka
//! acknowledged by the brokers (see [`kafka`]).
//! Sequence numbers start at 1; 0 means "nothing delivered yet".
//!
//! Layers, each in its own file: [`syslog::format`] (RFC 5424 / RFC 3164 / bare CEF) →
//! [`syslog::truncate`] (size cap) → [`syslog::framing`] (octet counting / LF) → transport (`udp.rs`;
//! `stream.rs` for TCP and TLS, with [`replay`] and [`net`]; `file.rs`). [`config`] holds the
//! user-facing keys, [`tap`] the troubleshooting copy.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

use crate::cef::CefText;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub mod error;
mod file;
pub mod journal;
pub mod kafka;
pub mod replay;
pub mod rotate;
mod stream;
pub mod syslog;
pub mod tap;
pub mod tls;
mod udp;

pub use crate::config::output::{
    Compression, Facility, FileConfig, Format, Framing, KafkaConfig, OutputConfig, Oversize,
    Severity, SeverityMap, StdoutConfig, TapConfig, TapFormat, TcpConfig, TlsConfig, UdpConfig,
};
pub use error::SyslogError;
pub use syslog::encoder::{Encoded, FrameEncoder};
pub use syslog::hostname::local_hostname;
pub use tap::{TapHandle, TapRecord, TapStats, WireReader, spawn_tap};

/// One CEF event for the outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutEvent {
    /// Position in the stream; strictly increasing, starting at 1.
    pub seq: u64,
    /// `CEF:0|…`, already CEF-escaped, without CR or LF.
    pub cef: CefText,
    /// CEF severity 0..=10 (chooses the syslog severity).
    pub cef_severity: u8,
    /// RFC 5424 MSGID, e.g. `INTRUSION`, or `-`.
    pub msgid: &'static str,
}

/// Events handed to every output together. `seq` increases strictly within and across batches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub events: Vec<OutEvent>,
    /// The FMC the events are from (its index in the configuration; a batch is one FMC's).
    pub fmc: usize,
}

/// Live counters of one output, shared with the monitor.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Messages sent: TCP/TLS written to the connection for the first time, UDP handed to the
    /// kernel, file/stdout written, Kafka produced (handed to librdkafka).
    pub sent: AtomicU64,
    /// Messages whose bytes the receiver's TCP stack acknowledged (TCP/TLS), written and
    /// flushed (file/stdout), or acknowledged by the brokers (Kafka, `acks=all`). UDP: never
    /// (there is no acknowledgement).
    pub acknowledged: AtomicU64,
    /// Messages confirmed delivered: TCP/TLS once `resend_bytes` more have been acknowledged
    /// after them (even a receiver that crashed had read them) or the receiver closed the
    /// connection after our clean close; file/stdout once written and flushed; Kafka once
    /// acknowledged. UDP: never.
    pub delivered: AtomicU64,
    /// Bytes of those messages, framing included.
    pub bytes: AtomicU64,
    /// Messages shortened to fit `max_message_bytes`.
    pub truncated: AtomicU64,
    /// Messages dropped because they were too long (`oversize = "drop"`, or not shortenable).
    pub dropped_oversize: AtomicU64,
    /// Connections re-established after a break.
    pub reconnects: AtomicU64,
    /// Messages sent again after a reconnect (duplicates if the receiver had them already).
    pub resent: AtomicU64,
    /// Failed connects, sends and writes; Kafka: messages the brokers refused for good, and
    /// "no broker answers" reports.
    pub errors: AtomicU64,
    /// Raw CR/LF replaced by a space in LF-framed output (should stay 0).
    pub newlines_replaced: AtomicU64,
    /// Bytes taken but not yet acknowledged (TCP/TLS: unacknowledged or unsent).
    pub buffered_bytes: AtomicU64,
    /// Kafka: messages sent and not yet acknowledged by the brokers.
    pub in_flight: AtomicU64,
    /// Kafka: messages the brokers refused for good (too large, topic missing, not
    /// authorized): counted in `errors` too, and passed over.
    pub refused: AtomicU64,
    /// TCP/TLS: acknowledged bytes kept in the resend journal on disk.
    pub journal_bytes: AtomicU64,
    /// Whether the output is currently delivering (connected / writes succeeding).
    pub up: AtomicBool,
}

/// A copy of [`OutputStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutputStatsSnapshot {
    pub sent: u64,
    pub acknowledged: u64,
    pub delivered: u64,
    pub bytes: u64,
    pub truncated: u64,
    pub dropped_oversize: u64,
    pub reconnects: u64,
    pub resent: u64,
    pub errors: u64,
    pub newlines_replaced: u64,
    pub buffered_bytes: u64,
    pub in_flight: u64,
    pub refused: u64,
    pub journal_bytes: u64,
    pub up: bool,
}

impl OutputStats {
    pub fn snapshot(&self) -> OutputStatsSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OutputStatsSnapshot {
            sent: r(&self.sent),
            acknowledged: r(&self.acknowledged),
            delivered: r(&self.delivered),
            bytes: r(&self.bytes),
            truncated: r(&self.truncated),
            dropped_oversize: r(&self.dropped_oversize),
            reconnects: r(&self.reconnects),
            resent: r(&self.resent),
            errors: r(&self.errors),
            newlines_replaced: r(&self.newlines_replaced),
            buffered_bytes: r(&self.buffered_bytes),
            in_flight: r(&self.in_flight),
            refused: r(&self.refused),
            journal_bytes: r(&self.journal_bytes),
            up: self.up.load(Ordering::Relaxed),
        }
    }
}

/// Raises the progress value (never lowers it).
pub(crate) fn publish_progress(tx: &watch::Sender<u64>, p: Option<u64>) {
    if let Some(p) = p {
        tx.send_if_modified(|cur| {
            if p > *cur {
                *cur = p;
                true
            } else {
                false
            }
        });
    }
}

/// A configured output, ready to run: config checked, TLS material loaded, file opened.
pub struct Output {
    name: String,
    kind: OutputKind,
}

enum OutputKind {
    Udp(udp::UdpOutput),
    Stream(stream::StreamOutput),
    Line(file::LineOutput),
    Kafka(Box<kafka::KafkaOutput>),
}

impl Output {
    /// Checks `cfg` and loads what it names. `key` names the output in errors (`outputs[2]`);
    /// `default_hostname` is used when the config has no `hostname` (see [`local_hostname`]).
    pub fn new(
        cfg: &OutputConfig,
        key: &str,
        default_hostname: &str,
    ) -> Result<Output, SyslogError> {
        cfg.validate(key)?;
        let name = cfg.display_name();
        let encoder = FrameEncoder::for_output(cfg, default_hostname);
        let kind = match cfg {
            OutputConfig::Udp(c) => OutputKind::Udp(udp::UdpOutput {
                name: name.clone(),
                host: c.host.clone(),
                port: c.port,
                encoder,
            }),
            OutputConfig::Tcp(c) => OutputKind::Stream(stream::StreamOutput {
                name: name.clone(),
                host: c.host.clone(),
                port: c.port,
                tls: None,
                keys: cfg.stream_keys().expect("tcp"),
                encoder,
                journal_dir: None,
            }),
            OutputConfig::Tls(c) => {
                let setup = tls::TlsSetup::new(c, key)?;
                if setup.insecure {
                    tracing::warn!(
                        output = %name,
                        "{key}.server_ca = \"insecure\": the receiver's certificate will NOT be verified; anyone on the path can read and alter the events"
                    );
                }
                OutputKind::Stream(stream::StreamOutput {
                    name: name.clone(),
                    host: c.host.clone(),
                    port: c.port,
                    tls: Some(Arc::new(setup)),
                    keys: cfg.stream_keys().expect("tls"),
                    encoder,
                    journal_dir: None,
                })
            }
            OutputConfig::File(c) => {
                let f =
                    rotate::RotatingFile::open(&c.path, c.rotate_bytes, c.keep).map_err(|e| {
                        SyslogError::file(format!("{key}.path"), "open for appending", &c.path, e)
                    })?;
                OutputKind::Line(file::LineOutput {
                    name: name.clone(),
                    sink: file::LineSink::File(f),
                    encoder,
                })
            }
            OutputConfig::Stdout(_) => OutputKind::Line(file::LineOutput {
                name: name.clone(),
                sink: file::LineSink::Stdout,
                encoder,
            }),
            OutputConfig::Kafka(c) => OutputKind::Kafka(Box::new(kafka::KafkaOutput::new(
                c,
                key,
                name.clone(),
                encoder,
            )?)),
        };
        Ok(Output { name, kind })
    }

    /// The name used in logs and the monitor.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keeps a TCP/TLS output's resend journal in `state_dir/journal/<index>-<name>` (the
    /// output's position in the configuration keeps two outputs with one name apart). Without
    /// this call it lives in a private folder under the system's temporary folder.
    pub fn keep_journal_in(&mut self, state_dir: &Path, index: usize) {
        if let OutputKind::Stream(s) = &mut self.kind {
            let part = crate::metadata::store::safe_file_part(&self.name);
            s.journal_dir = Some(state_dir.join("journal").join(format!("{index}-{part}")));
        }
    }

    /// Copies every message this output frames to the wire tap (what the receiver gets, with
    /// the output's own timestamps).
    pub fn copy_to_tap(&mut self, tap: TapHandle) {
        match &mut self.kind {
            OutputKind::Udp(o) => o.encoder.copy_to(tap),
            OutputKind::Stream(o) => o.encoder.copy_to(tap),
            OutputKind::Line(o) => o.encoder.copy_to(tap),
            OutputKind::Kafka(o) => o.encoder.copy_to(tap),
        }
    }

    /// The names of the FMCs, by index in the configuration (a Kafka output's message key
    /// names the FMC an event is from).
    pub fn name_fmcs(&mut self, names: Vec<String>) {
        if let OutputKind::Kafka(o) = &mut self.kind {
            o.fmc_names = names;
        }
    }

    /// Starts the output. It ends after `rx` is closed and everything taken has been delivered
    /// (TCP/TLS: acknowledged, then the connection closed; bounded by `shutdown_timeout`).
    pub fn spawn(
        self,
        rx: mpsc::Receiver<Arc<Batch>>,
        progress: watch::Sender<u64>,
        stats: Arc<OutputStats>,
    ) -> JoinHandle<()> {
        match self.kind {
            OutputKind::Udp(o) => tokio::spawn(o.run(rx, progress, stats)),
            OutputKind::Stream(o) => tokio::spawn(o.run(rx, progress, stats)),
            OutputKind::Line(o) => {
                tokio::task::spawn_blocking(move || o.run_blocking(rx, progress, stats))
            }
            OutputKind::Kafka(o) => tokio::spawn(o.run(rx, progress, stats)),
        }
    }
}

/// [`Output::new`] then [`Output::spawn`], with the output named `outputs` in errors.
pub fn spawn_output(
    cfg: OutputConfig,
    hostname: &str,
    rx: mpsc::Receiver<Arc<Batch>>,
    progress: watch::Sender<u64>,
    stats: Arc<OutputStats>,
) -> Result<JoinHandle<()>, SyslogError> {
    Ok(Output::new(&cfg, "outputs", hostname)?.spawn(rx, progress, stats))
}
