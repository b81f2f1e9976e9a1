//! The worker: one thread that decodes, maps and encodes every record, batch by batch (a bundle
//! is one channel hop in and one out), follows delivery and keeps the bookmark and the metadata
//! cache saved. Bounded channels on both sides: a slow output blocks the worker, which stops
//! taking messages from the session, which stops acknowledging the FMC.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use crate::bookmark::Tracker;
use crate::cef::CefEncoder;
use crate::decode::json::record_fields;
use crate::decode::stage::{DecodeStage, Handled};
use crate::estreamer::message::{Bundle, kind};
use crate::estreamer::session::SourceMessage;
use crate::mapping::Mappings;
use crate::mapping::plan::Scratch;
use crate::monitor::PipelineStats;
use crate::syslog::{Batch, FrameEncoder, OutEvent, TapFormat, TapHandle, TapRecord};

/// What the worker needs.
pub struct Worker {
    pub rt: Handle,
    pub source: mpsc::Receiver<SourceMessage>,
    pub stage: DecodeStage,
    pub tracker: Tracker,
    pub mappings: Arc<Mappings>,
    pub encoder: CefEncoder,
    pub outputs: Vec<mpsc::Sender<Arc<Batch>>>,
    /// The outputs' names, for the log.
    pub output_names: Vec<String>,
    pub progress: Vec<watch::Receiver<u64>>,
    pub tap: Option<(TapHandle, FrameEncoder)>,
    pub resume: Arc<AtomicU32>,
    pub stats: Arc<PipelineStats>,
    pub state_dir: PathBuf,
    /// Set by SIGHUP: reload the mapping tables.
    pub reload: Arc<AtomicBool>,
    /// Loads the mapping tables again (same sources as at start).
    pub reload_mappings: Box<dyn Fn() -> Result<Mappings, String> + Send>,
    /// Stop once this many events have been emitted (the demo).
    pub stop_after: Option<u64>,
    pub stop: watch::Sender<bool>,
    /// True once the run is asked to stop (SIGTERM).
    pub shutdown: watch::Receiver<bool>,
    pub timers: Timers,
    pub msgids: MsgIds,
}

/// When the bookmark and the cache were last saved.
pub struct Timers {
    bookmark: Instant,
    cache: Instant,
}

impl Timers {
    pub fn new() -> Timers {
        Timers {
            bookmark: Instant::now(),
            cache: Instant::now(),
        }
    }
}

/// One wait for room in an output's queue.
enum Wait {
    Done(Handoff),
    /// Nothing yet: do the housekeeping and wait again.
    Again,
}

/// How handing a batch to the outputs went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handoff {
    /// Every output took it.
    Taken,
    /// This output has ended (it failed).
    OutputGone(usize),
    /// The run is stopping and this output had no room.
    Stopping(usize),
}

/// What the worker leaves for the final bookmark.
pub struct Finished {
    pub tracker: Tracker,
    pub stage: DecodeStage,
    pub emitted: u64,
}

const BOOKMARK_EVERY: Duration = Duration::from_secs(2);
const CACHE_EVERY: Duration = Duration::from_secs(10);
/// Longest the worker goes without housekeeping, also while it waits.
const IDLE_TICK: Duration = Duration::from_millis(250);

impl Worker {
    pub fn run(mut self) -> Finished {
        let mut seq = 0u64;
        let mut index = 0u64;
        let mut connection = 0u64;
        let mut buf = Vec::with_capacity(4096);
        let mut wire = Vec::new();
        let mut scratch = Scratch::new(
            self.tap
                .as_ref()
                .is_some_and(|t| t.0.format() == TapFormat::Json),
        );
        // Bundles of one connection have similar sizes: size each batch like the last one.
        let mut batch_capacity = 1;
        loop {
            let msg = self
                .rt
                .block_on(async { tokio::time::timeout(IDLE_TICK, self.source.recv()).await });
            match msg {
                Ok(Some(m)) => {
                    if m.connection != connection {
                        connection = m.connection;
                        if let Some(c) = self.stage.cursor.as_mut() {
                            c.begin_replay();
                        }
                    }
                    if let Some((_, framer)) = &mut self.tap {
                        // The wire tap shows the bytes as the outputs frame them, which stamp
                        // each batch with the time they take it.
                        framer.set_time(SystemTime::now());
                    }
                    let mut batch = Vec::with_capacity(batch_capacity);
                    let mut each = |body: &[u8], this: &mut Self| {
                        this.record(
                            index,
                            body,
                            &mut seq,
                            &mut batch,
                            &mut buf,
                            &mut wire,
                            &mut scratch,
                        );
                        index += 1;
                    };
                    match m.kind {
                        kind::EVENT_DATA => each(&m.body, &mut self),
                        kind::MESSAGE_BUNDLE => match Bundle::parse(&m.body) {
                            Ok(b) => {
                                for item in b.items() {
                                    match item {
                                        Ok((_, body)) => each(body, &mut self),
                                        Err(e) => {
                                            tracing::warn!(
                                                "message bundle {}: {e}; the rest of it is skipped",
                                                b.sequence
                                            );
                                            break;
                                        }
                                    }
                                }
                            }
                            Err(e) => tracing::warn!("message bundle: {e}"),
                        },
                        _ => {}
                    }
                    self.tracker.checkpoint(seq);
                    if let Some(c) = self.stage.cursor.as_ref() {
                        self.resume.store(c.second(), Ordering::Relaxed);
                    }
                    if !batch.is_empty() {
                        batch_capacity = batch.len();
                        match self.send(batch) {
                            Handoff::Taken => {}
                            Handoff::OutputGone(i) => {
                                tracing::error!(
                                    "output {} stopped; stopping the pipeline",
                                    self.output_names[i]
                                );
                                break;
                            }
                            Handoff::Stopping(i) => {
                                tracing::warn!(
                                    "stopping while output {} takes no events (is its receiver down?); \
                                     what it did not take stays undelivered",
                                    self.output_names[i]
                                );
                                break;
                            }
                        }
                    }
                    if self.stop_after.is_some_and(|n| seq >= n) {
                        let _ = self.stop.send(true);
                    }
                }
                Ok(None) => break,
                Err(_) => {}
            }
            self.housekeeping();
            if self.reload.swap(false, Ordering::Relaxed) {
                match (self.reload_mappings)() {
                    Ok(m) => {
                        self.mappings = Arc::new(m);
                        self.stats.mapping_reloads.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("mapping tables reloaded");
                    }
                    Err(e) => tracing::error!(
                        "mapping tables NOT reloaded, the previous ones stay in use:\n{e}"
                    ),
                }
            }
        }
        self.save_cache();
        self.outputs.clear();
        let _ = self.stop.send(true);
        Finished {
            tracker: self.tracker,
            stage: self.stage,
            emitted: seq,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        index: u64,
        body: &[u8],
        seq: &mut u64,
        batch: &mut Vec<OutEvent>,
        buf: &mut Vec<u8>,
        wire: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) {
        let st = &self.stats;
        st.received.fetch_add(1, Ordering::Relaxed);
        match self.stage.handle(index, body) {
            Handled::Record {
                record,
                cache,
                identity,
                second,
            } => {
                self.tracker.admitted(second, identity);
                let Some(plan) = self.mappings.plan_for(&record) else {
                    st.unmapped.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                buf.clear();
                let severity = plan.encode(&record, cache, &mut self.encoder, buf, scratch);
                *seq += 1;
                let ev = OutEvent {
                    seq: *seq,
                    cef: cef_string(buf),
                    cef_severity: severity,
                    msgid: self.msgids.get(&plan.msgid),
                };
                st.handled.fetch_add(1, Ordering::Relaxed);
                // Counted whatever the tap's format (the plan notes these two always).
                let notes = &scratch.notes;
                if !notes.missing_metadata.is_empty() {
                    st.metadata_missing
                        .fetch_add(notes.missing_metadata.len() as u64, Ordering::Relaxed);
                }
                if !notes.encoder.is_empty() {
                    st.encoder_warnings
                        .fetch_add(notes.encoder.len() as u64, Ordering::Relaxed);
                }
                if let Some((tap, framer)) = &mut self.tap {
                    let (fields, warnings) = match tap.format() {
                        TapFormat::Json => (
                            serde_json::Value::Object(record_fields(&record)),
                            scratch.notes.to_strings(),
                        ),
                        TapFormat::Wire => {
                            wire.clear();
                            framer.encode(&ev, wire);
                            (serde_json::Value::Null, Vec::new())
                        }
                    };
                    tap.send(TapRecord {
                        record_type: record.record_type(),
                        fields,
                        cef: Some(ev.cef.clone()),
                        warnings,
                        wire: wire.clone(),
                    });
                }
                batch.push(ev);
            }
            Handled::Filtered { identity, second } => {
                st.filtered.fetch_add(1, Ordering::Relaxed);
                self.tracker.admitted(second, identity);
            }
            Handled::Duplicate => {
                st.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            Handled::Malformed {
                identity, second, ..
            } => {
                st.malformed.fetch_add(1, Ordering::Relaxed);
                self.tracker.admitted(second, identity);
            }
        }
        let c = &self.stage.counters;
        st.metadata.store(c.metadata, Ordering::Relaxed);
        st.unknown.store(c.unknown, Ordering::Relaxed);
    }

    /// Hands a batch to every output, waiting while an output's queue is full. Gives up when
    /// an output has stopped (it failed) or when the run is asked to stop: an output that is
    /// not taking events (its receiver is down and its buffer full) must not hold up a clean
    /// stop. Whatever an output did not take is not delivered, so the bookmark stays before it.
    /// While waiting, the worker stays alive to the watchdog and keeps the bookmark moving
    /// (other outputs, or this one's older events, may still be delivered).
    fn send(&mut self, events: Vec<OutEvent>) -> Handoff {
        let last = events.last().map(|e| e.seq).unwrap_or(0);
        let batch = Arc::new(Batch { events });
        self.stats.emitted.store(last, Ordering::Relaxed);
        for i in 0..self.outputs.len() {
            loop {
                let tx = &self.outputs[i];
                let mut shutdown = self.shutdown.clone();
                let b = batch.clone();
                let wait = self.rt.block_on(async {
                    match tx.try_reserve() {
                        Ok(permit) => {
                            permit.send(b);
                            return Wait::Done(Handoff::Taken);
                        }
                        Err(mpsc::error::TrySendError::Closed(())) => {
                            return Wait::Done(Handoff::OutputGone(i));
                        }
                        Err(mpsc::error::TrySendError::Full(())) => {}
                    }
                    if *shutdown.borrow_and_update() {
                        return Wait::Done(Handoff::Stopping(i));
                    }
                    tokio::select! {
                        r = tx.reserve() => match r {
                            Ok(permit) => {
                                permit.send(b);
                                Wait::Done(Handoff::Taken)
                            }
                            Err(_) => Wait::Done(Handoff::OutputGone(i)),
                        },
                        r = shutdown.changed() => match r {
                            Ok(()) => Wait::Again,
                            Err(_) => Wait::Done(Handoff::Stopping(i)),
                        },
                        _ = tokio::time::sleep(IDLE_TICK) => Wait::Again,
                    }
                });
                match wait {
                    Wait::Done(Handoff::Taken) => break,
                    Wait::Done(other) => return other,
                    Wait::Again => self.housekeeping(),
                }
            }
        }
        Handoff::Taken
    }

    /// Done every time round the loop, and every [`IDLE_TICK`] while waiting for an output:
    /// the heartbeat (systemd's watchdog), delivery progress, the bookmark and cache files.
    fn housekeeping(&mut self) {
        self.stats.heartbeat.fetch_add(1, Ordering::Relaxed);
        self.observe_delivery();
        if self.timers.bookmark.elapsed() >= BOOKMARK_EVERY {
            self.timers.bookmark = Instant::now();
            self.save_bookmark();
        }
        if self.timers.cache.elapsed() >= CACHE_EVERY {
            self.timers.cache = Instant::now();
            self.save_cache();
        }
    }

    fn observe_delivery(&mut self) {
        let delivered = self
            .progress
            .iter()
            .map(|p| *p.borrow())
            .min()
            .unwrap_or_else(|| self.stats.emitted.load(Ordering::Relaxed));
        self.tracker.delivered(delivered);
        self.stats.acknowledged.store(delivered, Ordering::Relaxed);
    }

    fn save_bookmark(&mut self) {
        if let Some(b) = self.tracker.take_changed() {
            self.stats
                .bookmark_second
                .store(b.second as u64, Ordering::Relaxed);
            if let Err(e) = b.save(&self.state_dir) {
                tracing::error!(
                    "cannot save the bookmark in {}: {e}",
                    self.state_dir.display()
                );
            }
        }
    }

    fn save_cache(&mut self) {
        let cache = &mut self.stage.cache;
        self.stats
            .cache_entries
            .store(cache.stats().entries as u64, Ordering::Relaxed);
        if cache.take_dirty()
            && let Err(e) = crate::metadata::store::save(cache, &self.state_dir)
        {
            tracing::error!(
                "cannot save the metadata cache in {}: {e}",
                self.state_dir.display()
            );
        }
    }
}

/// The CEF line as a string. The encoder writes UTF-8 (it replaces invalid input), so the
/// check passes; it is the fast one, not the lossy conversion's chunk by chunk walk.
fn cef_string(buf: &[u8]) -> String {
    match std::str::from_utf8(buf) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(buf).into_owned(),
    }
}

/// The MSGIDs seen by this worker: a handful, compared without the global lock of [`intern`].
#[derive(Default)]
pub struct MsgIds(Vec<&'static str>);

impl MsgIds {
    fn get(&mut self, msgid: &str) -> &'static str {
        if let Some(m) = self.0.iter().find(|m| **m == msgid) {
            return m;
        }
        let m = intern(msgid);
        self.0.push(m);
        m
    }
}

/// MSGIDs live as long as the process (there are a handful).
fn intern(s: &str) -> &'static str {
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = SET
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&x) = set.get(s) {
        return x;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}
