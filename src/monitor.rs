//! Counters shared by the stages, the periodic status line and `GET /metrics`.
//!
//! The status line, every `monitor.period` (default 120 s), in the spirit of what eNcore users
//! read: records received, handled, sent per output, events/s (average and current), the
//! bookmark as a date, queue depth, reconnects, decode and mapping warnings.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::estreamer::session::SessionStats;
use crate::syslog::OutputStats;

/// Counters of the decode/map stage (written by the worker, read by the monitor).
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Records taken from the FMC (bundle items counted one by one).
    pub received: AtomicU64,
    /// Records decoded and mapped to a CEF line.
    pub handled: AtomicU64,
    pub metadata: AtomicU64,
    pub unknown: AtomicU64,
    pub malformed: AtomicU64,
    pub duplicates: AtomicU64,
    pub filtered: AtomicU64,
    /// Records of a wanted type that no mapping table maps.
    pub unmapped: AtomicU64,
    /// Names sent as ids because metadata was missing.
    pub metadata_missing: AtomicU64,
    /// Values the CEF encoder had to change (truncated, invalid UTF-8 replaced, clamped).
    pub encoder_warnings: AtomicU64,
    /// Events emitted to the outputs (the last sequence number).
    pub emitted: AtomicU64,
    /// Events every output is done with: TCP/TLS acknowledged by the receiver's TCP stack (the
    /// resend journal covers a receiver crash after that), file written, UDP handed to the
    /// kernel. The bookmark follows it.
    pub acknowledged: AtomicU64,
    /// The bookmark's archive second.
    pub bookmark_second: AtomicU64,
    pub cache_entries: AtomicU64,
    pub mapping_reloads: AtomicU64,
    /// Moves every time the worker goes round its loop (systemd's watchdog is fed from it).
    pub heartbeat: AtomicU64,
}

/// Everything the monitor reports on.
#[derive(Clone)]
pub struct Monitor {
    pub pipeline: Arc<PipelineStats>,
    pub session: Arc<SessionStats>,
    pub outputs: Vec<(String, Arc<OutputStats>)>,
    started: Instant,
}

impl Monitor {
    pub fn new(
        pipeline: Arc<PipelineStats>,
        session: Arc<SessionStats>,
        outputs: Vec<(String, Arc<OutputStats>)>,
    ) -> Monitor {
        Monitor {
            pipeline,
            session,
            outputs,
            started: Instant::now(),
        }
    }

    /// The status line. `last` holds the counters of the previous line (for the current rate).
    pub fn status_line(&self, last: &mut (Instant, u64)) -> String {
        let p = &self.pipeline;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let now = Instant::now();
        let handled = r(&p.handled);
        let avg = handled as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let cur = (handled - last.1.min(handled)) as f64
            / now.duration_since(last.0).as_secs_f64().max(0.001);
        *last = (now, handled);
        let s = self.session.snapshot();
        let mut line = format!(
            "received {} handled {} ({:.1} ev/s average, {:.1} ev/s now); bookmark {}; queue {}; ",
            r(&p.received),
            handled,
            avg,
            cur,
            bookmark_date(r(&p.bookmark_second)),
            r(&p.emitted).saturating_sub(r(&p.acknowledged)),
        );
        for (name, o) in &self.outputs {
            let o = o.snapshot();
            let _ = write!(line, "{name} {} sent", o.sent);
            // UDP has neither; a file output writes, which is both.
            if o.acknowledged != o.delivered {
                let _ = write!(line, ", {} acknowledged", o.acknowledged);
            }
            if o.delivered > 0 {
                let _ = write!(line, ", {} delivered", o.delivered);
            }
            if !o.up {
                line.push_str(" (DOWN)");
            }
            // What went wrong on the way, only when something did.
            for (n, what) in [
                (o.truncated, "truncated"),
                (o.dropped_oversize, "dropped as too long"),
                (o.reconnects, "reconnects"),
                (o.resent, "resent"),
            ] {
                if n > 0 {
                    let _ = write!(line, ", {n} {what}");
                }
            }
            line.push_str("; ");
        }
        let _ = write!(
            line,
            "FMC {}, {} reconnects; warnings: {} unknown, {} malformed, {} unmapped, {} missing metadata, {} encoder",
            if s.connected {
                "connected"
            } else {
                "DISCONNECTED"
            },
            s.reconnects,
            r(&p.unknown),
            r(&p.malformed),
            r(&p.unmapped),
            r(&p.metadata_missing),
            r(&p.encoder_warnings),
        );
        line
    }

    /// The same counters in Prometheus text format.
    pub fn metrics(&self) -> String {
        let p = &self.pipeline;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP estreamer_cef_{name} {help}\n# TYPE estreamer_cef_{name} {kind}\nestreamer_cef_{name} {value}"
            );
        };
        metric(
            "records_received_total",
            "Records taken from the FMC.",
            "counter",
            r(&p.received),
        );
        metric(
            "records_handled_total",
            "Records decoded and mapped to CEF.",
            "counter",
            r(&p.handled),
        );
        metric(
            "records_metadata_total",
            "Metadata records read into the cache.",
            "counter",
            r(&p.metadata),
        );
        metric(
            "records_unknown_total",
            "Records of types the catalog does not know.",
            "counter",
            r(&p.unknown),
        );
        metric(
            "records_malformed_total",
            "Records that could not be decoded (skipped).",
            "counter",
            r(&p.malformed),
        );
        metric(
            "records_duplicate_total",
            "Records skipped as already delivered after a resume.",
            "counter",
            r(&p.duplicates),
        );
        metric(
            "records_filtered_total",
            "Records not written because of the record filter.",
            "counter",
            r(&p.filtered),
        );
        metric(
            "records_unmapped_total",
            "Wanted records no mapping table maps.",
            "counter",
            r(&p.unmapped),
        );
        metric(
            "metadata_missing_total",
            "Names sent as ids because metadata was missing.",
            "counter",
            r(&p.metadata_missing),
        );
        metric(
            "encoder_warnings_total",
            "Values the CEF encoder changed.",
            "counter",
            r(&p.encoder_warnings),
        );
        metric(
            "events_emitted_total",
            "Events handed to the outputs.",
            "counter",
            r(&p.emitted),
        );
        metric(
            "events_acknowledged_total",
            "Events every output is done with (TCP/TLS: acknowledged by the receiver's TCP stack; file: written; UDP: sent). The bookmark follows it.",
            "counter",
            r(&p.acknowledged),
        );
        metric(
            "bookmark_seconds",
            "Archive second of the bookmark.",
            "gauge",
            r(&p.bookmark_second),
        );
        metric(
            "queue_events",
            "Events taken but not yet acknowledged by every output.",
            "gauge",
            r(&p.emitted).saturating_sub(r(&p.acknowledged)),
        );
        metric(
            "metadata_cache_entries",
            "Entries in the metadata cache.",
            "gauge",
            r(&p.cache_entries),
        );
        let s = self.session.snapshot();
        metric(
            "fmc_connected",
            "1 when the FMC session is up.",
            "gauge",
            s.connected as u64,
        );
        metric(
            "fmc_reconnects_total",
            "FMC reconnects.",
            "counter",
            s.reconnects,
        );
        metric(
            "fmc_bytes_total",
            "Bytes received from the FMC.",
            "counter",
            s.bytes,
        );
        for (name, o) in &self.outputs {
            let o = o.snapshot();
            let label = name.replace('\\', "\\\\").replace('"', "\\\"");
            for (m, help, kind, v) in [
                ("output_sent_total", "Messages sent.", "counter", o.sent),
                (
                    "output_acknowledged_total",
                    "Messages acknowledged by the receiver's TCP stack (file: written; UDP: 0).",
                    "counter",
                    o.acknowledged,
                ),
                (
                    "output_delivered_total",
                    "Messages confirmed read by the receiver (TCP/TLS: resend_bytes acknowledged after them, or the receiver closed after our clean close; file: written; UDP: 0).",
                    "counter",
                    o.delivered,
                ),
                ("output_bytes_total", "Bytes sent.", "counter", o.bytes),
                (
                    "output_truncated_total",
                    "Messages shortened to fit.",
                    "counter",
                    o.truncated,
                ),
                (
                    "output_dropped_total",
                    "Messages dropped as too long.",
                    "counter",
                    o.dropped_oversize,
                ),
                (
                    "output_resent_total",
                    "Messages sent again after a reconnect (duplicates if the receiver had read them).",
                    "counter",
                    o.resent,
                ),
                (
                    "output_reconnects_total",
                    "Output reconnects.",
                    "counter",
                    o.reconnects,
                ),
                (
                    "output_journal_bytes",
                    "Acknowledged bytes kept in the resend journal.",
                    "gauge",
                    o.journal_bytes,
                ),
                (
                    "output_up",
                    "1 when the output delivers.",
                    "gauge",
                    o.up as u64,
                ),
            ] {
                let _ = writeln!(
                    out,
                    "# HELP estreamer_cef_{m} {help}\n# TYPE estreamer_cef_{m} {kind}\nestreamer_cef_{m}{{output=\"{label}\"}} {v}"
                );
            }
        }
        out
    }
}

fn bookmark_date(second: u64) -> String {
    if second == 0 {
        return "none yet".into();
    }
    chrono::DateTime::from_timestamp(second as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| second.to_string())
}

/// Logs the status line every `period` until shutdown.
pub async fn log_periodically(
    monitor: Monitor,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last = (Instant::now(), 0u64);
    let mut tick = tokio::time::interval(period);
    // After a stall (a busy or suspended machine), one line, not a burst of catch-up lines
    // whose "ev/s now" would be measured over no time at all.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => tracing::info!("{}", monitor.status_line(&mut last)),
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
            }
        }
    }
}

/// Serves `GET /metrics` on `addr` until shutdown.
pub async fn serve_metrics(
    monitor: Monitor,
    addr: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
    loop {
        let (mut sock, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return Ok(()); }
                continue;
            }
        };
        let monitor = monitor.clone();
        tokio::spawn(async move {
            let mut req = [0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut req)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let head = String::from_utf8_lossy(&req[..n]);
            let (status, body, ctype) = if head.starts_with("GET /metrics") {
                ("200 OK", monitor.metrics(), "text/plain; version=0.0.4")
            } else {
                (
                    "404 Not Found",
                    "try GET /metrics\n".to_string(),
                    "text/plain",
                )
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
