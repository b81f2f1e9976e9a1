//! Counters shared by the stages, the periodic status line and `GET /metrics`.
//!
//! The status line, every `monitor.period` (default 120 s), in the spirit of what eNcore users
//! read: records received, handled, sent per output, events/s (average and current), the
//! bookmark as a date, queue depth, reconnects, decode and mapping warnings. With several FMCs,
//! one line per FMC (named) and one for the outputs they share; every FMC series at `/metrics`
//! has an `fmc` label.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::estreamer::session::SessionStats;
use crate::output::OutputStats;

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
    /// Events of this FMC emitted to the outputs.
    pub emitted: AtomicU64,
    /// Of them, events every output is done with: TCP/TLS acknowledged by the receiver's TCP
    /// stack (the resend journal covers a receiver crash after that), file written, UDP handed
    /// to the kernel. The bookmark follows it.
    pub acknowledged: AtomicU64,
    /// The bookmark's archive second.
    pub bookmark_second: AtomicU64,
    pub cache_entries: AtomicU64,
    pub mapping_reloads: AtomicU64,
    /// Moves every time the worker goes round its loop (systemd's watchdog is fed from it).
    pub heartbeat: AtomicU64,
}

/// One FMC's counters.
#[derive(Clone)]
pub struct FmcStats {
    pub name: String,
    pub pipeline: Arc<PipelineStats>,
    pub session: Arc<SessionStats>,
}

/// Everything the monitor reports on.
#[derive(Clone)]
pub struct Monitor {
    pub fmcs: Vec<FmcStats>,
    pub outputs: Vec<(String, Arc<OutputStats>)>,
    started: Instant,
}

impl Monitor {
    pub fn new(fmcs: Vec<FmcStats>, outputs: Vec<(String, Arc<OutputStats>)>) -> Monitor {
        Monitor {
            fmcs,
            outputs,
            started: Instant::now(),
        }
    }

    /// The first FMC's pipeline counters (a configuration with one FMC).
    pub fn pipeline(&self) -> &PipelineStats {
        &self.fmcs[0].pipeline
    }

    /// Every FMC's worker heartbeat (systemd's watchdog is fed while all of them move).
    pub fn heartbeats(&self) -> Vec<u64> {
        self.fmcs
            .iter()
            .map(|f| f.pipeline.heartbeat.load(Ordering::Relaxed))
            .collect()
    }

    /// The status lines: one per FMC with the outputs in it, or with several FMCs one per FMC
    /// and one for the outputs. `last` holds each FMC's handled count at the previous lines
    /// (for the current rate).
    pub fn status_lines(&self, last: &mut Vec<(Instant, u64)>) -> Vec<(Option<String>, String)> {
        last.resize(self.fmcs.len(), (self.started, 0));
        let outputs = self.outputs_status();
        if let [f] = self.fmcs.as_slice() {
            return vec![(
                Some(f.name.clone()),
                self.fmc_status(f, &mut last[0], Some(&outputs)),
            )];
        }
        let mut lines: Vec<(Option<String>, String)> = self
            .fmcs
            .iter()
            .zip(last.iter_mut())
            .map(|(f, l)| (Some(f.name.clone()), self.fmc_status(f, l, None)))
            .collect();
        lines.push((None, format!("outputs: {outputs}")));
        lines
    }

    /// The outputs' part of a status line.
    fn outputs_status(&self) -> String {
        let mut line = String::new();
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
            // Kafka: sent and not yet acknowledged by the brokers.
            if o.in_flight > 0 {
                let _ = write!(line, ", {} in flight", o.in_flight);
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
                (o.refused, "refused by the brokers"),
            ] {
                if n > 0 {
                    let _ = write!(line, ", {n} {what}");
                }
            }
            line.push_str("; ");
        }
        line
    }

    /// One FMC's status line, with the outputs' part when given.
    fn fmc_status(&self, f: &FmcStats, last: &mut (Instant, u64), outputs: Option<&str>) -> String {
        let p = &f.pipeline;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let now = Instant::now();
        let handled = r(&p.handled);
        let avg = handled as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let cur = (handled - last.1.min(handled)) as f64
            / now.duration_since(last.0).as_secs_f64().max(0.001);
        *last = (now, handled);
        let s = f.session.snapshot();
        let mut line = format!(
            "received {} handled {} ({:.1} ev/s average, {:.1} ev/s now); bookmark {}; queue {}; ",
            r(&p.received),
            handled,
            avg,
            cur,
            bookmark_date(r(&p.bookmark_second)),
            r(&p.emitted).saturating_sub(r(&p.acknowledged)),
        );
        if let Some(o) = outputs {
            line.push_str(o);
        }
        let _ = write!(
            line,
            "FMC {}, {} reconnects{}; warnings: {} unknown, {} malformed, {} unmapped, {} missing metadata, {} encoder",
            if s.connected {
                "connected"
            } else {
                "DISCONNECTED"
            },
            s.reconnects,
            if s.switches > 0 {
                format!(", {} peer switches (now {})", s.switches, s.peer)
            } else {
                String::new()
            },
            r(&p.unknown),
            r(&p.malformed),
            r(&p.unmapped),
            r(&p.metadata_missing),
            r(&p.encoder_warnings),
        );
        line
    }

    /// The same counters in Prometheus text format; each FMC's series carry `fmc="name"`.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        type Get = fn(&PipelineStats, &crate::estreamer::session::SessionStatsSnapshot) -> u64;
        let series: [(&str, &str, &str, Get); 18] = [
            (
                "records_received_total",
                "Records taken from the FMC.",
                "counter",
                |p, _| p.received.load(Ordering::Relaxed),
            ),
            (
                "records_handled_total",
                "Records decoded and mapped to CEF.",
                "counter",
                |p, _| p.handled.load(Ordering::Relaxed),
            ),
            (
                "records_metadata_total",
                "Metadata records read into the cache.",
                "counter",
                |p, _| p.metadata.load(Ordering::Relaxed),
            ),
            (
                "records_unknown_total",
                "Records of types the catalog does not know.",
                "counter",
                |p, _| p.unknown.load(Ordering::Relaxed),
            ),
            (
                "records_malformed_total",
                "Records that could not be decoded (skipped).",
                "counter",
                |p, _| p.malformed.load(Ordering::Relaxed),
            ),
            (
                "records_duplicate_total",
                "Records skipped as already delivered after a resume or an HA switch.",
                "counter",
                |p, _| p.duplicates.load(Ordering::Relaxed),
            ),
            (
                "records_filtered_total",
                "Records not written because of the record filter.",
                "counter",
                |p, _| p.filtered.load(Ordering::Relaxed),
            ),
            (
                "records_unmapped_total",
                "Wanted records no mapping table maps.",
                "counter",
                |p, _| p.unmapped.load(Ordering::Relaxed),
            ),
            (
                "metadata_missing_total",
                "Names sent as ids because metadata was missing.",
                "counter",
                |p, _| p.metadata_missing.load(Ordering::Relaxed),
            ),
            (
                "encoder_warnings_total",
                "Values the CEF encoder changed.",
                "counter",
                |p, _| p.encoder_warnings.load(Ordering::Relaxed),
            ),
            (
                "events_emitted_total",
                "Events handed to the outputs.",
                "counter",
                |p, _| p.emitted.load(Ordering::Relaxed),
            ),
            (
                "events_acknowledged_total",
                "Events every output is done with (TCP/TLS: acknowledged by the receiver's TCP stack; file: written; UDP: sent). The bookmark follows it.",
                "counter",
                |p, _| p.acknowledged.load(Ordering::Relaxed),
            ),
            (
                "bookmark_seconds",
                "Archive second of the bookmark.",
                "gauge",
                |p, _| p.bookmark_second.load(Ordering::Relaxed),
            ),
            (
                "queue_events",
                "Events taken but not yet acknowledged by every output.",
                "gauge",
                |p, _| {
                    p.emitted
                        .load(Ordering::Relaxed)
                        .saturating_sub(p.acknowledged.load(Ordering::Relaxed))
                },
            ),
            (
                "metadata_cache_entries",
                "Entries in the metadata cache.",
                "gauge",
                |p, _| p.cache_entries.load(Ordering::Relaxed),
            ),
            (
                "fmc_connected",
                "1 when the FMC session is up.",
                "gauge",
                |_, s| s.connected as u64,
            ),
            (
                "fmc_reconnects_total",
                "FMC reconnects.",
                "counter",
                |_, s| s.reconnects,
            ),
            (
                "fmc_bytes_total",
                "Bytes received from the FMC.",
                "counter",
                |_, s| s.bytes,
            ),
        ];
        let snapshots: Vec<_> = self.fmcs.iter().map(|f| f.session.snapshot()).collect();
        let mut all = series.to_vec();
        all.push((
            "fmc_peer_switches_total",
            "Switches between the peers of an FMC HA pair.",
            "counter",
            |_, s| s.switches,
        ));
        for (name, help, kind, get) in all {
            let _ = writeln!(
                out,
                "# HELP estreamer_cef_{name} {help}\n# TYPE estreamer_cef_{name} {kind}"
            );
            for (f, s) in self.fmcs.iter().zip(&snapshots) {
                let _ = writeln!(
                    out,
                    "estreamer_cef_{name}{{fmc=\"{}\"}} {}",
                    label(&f.name),
                    get(&f.pipeline, s)
                );
            }
        }
        for (name, o) in &self.outputs {
            let o = o.snapshot();
            let label = label(name);
            for (m, help, kind, v) in [
                (
                    "output_sent_total",
                    "Messages sent (Kafka: produced).",
                    "counter",
                    o.sent,
                ),
                (
                    "output_acknowledged_total",
                    "Messages acknowledged by the receiver's TCP stack (file: written; Kafka: by the brokers, acks=all; UDP: 0).",
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
                    "output_errors_total",
                    "Failed connects, sends and writes; Kafka: messages the brokers refused for good, and \"no broker answers\" reports.",
                    "counter",
                    o.errors,
                ),
                (
                    "output_refused_total",
                    "Kafka: messages the brokers refused for good (too large, topic missing, not authorized), passed over.",
                    "counter",
                    o.refused,
                ),
                (
                    "output_in_flight",
                    "Kafka: messages sent and not yet acknowledged by the brokers.",
                    "gauge",
                    o.in_flight,
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

/// A label value, escaped for the Prometheus text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
    let mut last = Vec::new();
    let mut tick = tokio::time::interval(period);
    // After a stall (a busy or suspended machine), one line, not a burst of catch-up lines
    // whose "ev/s now" would be measured over no time at all.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for (fmc, line) in monitor.status_lines(&mut last) {
                    match fmc {
                        Some(name) => tracing::info_span!("fmc", name = %name)
                            .in_scope(|| tracing::info!("{line}")),
                        None => tracing::info!("{line}"),
                    }
                }
            }
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
