//! The worker: one async loop that takes the FMC session's messages, admits their records
//! ([`Delivery`]), has the [`Pool`] transform them on every core (a bundle is one job), hands
//! the CEF events to every output in the stream's order, follows delivery and keeps the bookmark
//! and the metadata cache saved. Bounded on both sides: a slow output holds the worker, which
//! stops taking messages from the session, which stops acknowledging the FMC.
//!
//! A message that carries metadata waits until every job before it is done, and no job starts
//! before it is: the cache never lags behind an event that needs its names.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::pool::{Done, Job, Pool};
use crate::decode::RecordHeader;
use crate::delivery::{Delivery, Mark};
use crate::estreamer::message::records as records_of;
use crate::estreamer::session::SourceMessage;
use crate::mapping::Mappings;
use crate::metadata::Cache;
use crate::monitor::PipelineStats;
use crate::syslog::{Batch, OutEvent, TapHandle};
use crate::transform::Counters;

/// The outputs as the worker sees them: where batches go, and how far each has delivered.
pub struct Outputs {
    pub senders: Vec<mpsc::Sender<Arc<Batch>>>,
    pub names: Vec<String>,
    pub progress: Vec<watch::Receiver<u64>>,
}

impl Outputs {
    /// The sequence number every output has delivered up to (`emitted` when there are none).
    pub fn delivered(&self, emitted: u64) -> u64 {
        delivered_by_all(&self.progress, emitted)
    }
}

/// The sequence number every output has delivered up to, from their progress (`emitted` when
/// there are no outputs). Also read once more after the outputs have ended.
pub(super) fn delivered_by_all(progress: &[watch::Receiver<u64>], emitted: u64) -> u64 {
    progress
        .iter()
        .map(|p| *p.borrow())
        .min()
        .unwrap_or(emitted)
}

/// What the worker needs.
pub(super) struct Worker {
    pub source: mpsc::Receiver<SourceMessage>,
    pub pool: Pool,
    pub cache: Arc<RwLock<Cache>>,
    pub delivery: Delivery,
    pub outputs: Outputs,
    /// The JSON tap: decoded fields, CEF line and warnings per event (a wire tap is fed by the
    /// output it copies).
    pub json_tap: Option<TapHandle>,
    /// Where a new FMC connection resumes (read by the session).
    pub resume: Arc<AtomicU32>,
    pub stats: Arc<PipelineStats>,
    /// Notified by SIGHUP: reload the mapping tables.
    pub reload: Arc<Notify>,
    /// Loads the mapping tables again (same sources as at start).
    pub reload_mappings: Box<dyn Fn() -> Result<Mappings, String> + Send>,
    /// Stop once this many events have been emitted (the demo).
    pub stop_after: Option<u64>,
    /// Tells the rest of the pipeline to stop (the demo's end, an output that failed).
    pub stop: watch::Sender<bool>,
    /// True once the run is asked to stop (SIGTERM).
    pub shutdown: watch::Receiver<bool>,
}

/// What the worker leaves for the final bookmark.
pub(super) struct Finished {
    pub delivery: Delivery,
    pub counters: Counters,
    pub emitted: u64,
}

/// How handing a batch to the outputs went.
enum Handoff {
    Taken,
    /// This output has ended (it failed).
    OutputGone(usize),
    /// The run is stopping and this output had no room.
    Stopping(usize),
}

const BOOKMARK_EVERY: Duration = Duration::from_secs(2);
const CACHE_EVERY: Duration = Duration::from_secs(10);
/// Longest the worker goes without housekeeping, also while it waits for an output.
const IDLE_TICK: Duration = Duration::from_millis(250);
/// Jobs handed out per transform thread and not yet answered, at most: enough to keep every
/// thread busy while the worker hands results on, few enough to keep memory small.
const JOBS_PER_THREAD: usize = 3;

/// A job handed out: its answer, and what its records' delivery covers.
struct InFlight {
    done: oneshot::Receiver<Done>,
    mark: Option<Mark>,
}

/// Mutable state of one run of the loop, beside the [`Worker`]'s parts.
struct Run {
    seq: u64,
    index: u64,
    connection: u64,
    in_flight: VecDeque<InFlight>,
    /// Each transform thread's latest counters.
    counters: Vec<Counters>,
    bookmark_saved: Instant,
    cache_saved: Instant,
}

/// Why the loop ended early.
enum Stop {
    Output(Handoff),
}

impl Worker {
    pub async fn run(mut self) -> Finished {
        let mut run = Run {
            seq: 0,
            index: 0,
            connection: 0,
            in_flight: VecDeque::new(),
            counters: vec![Counters::default(); self.pool.threads()],
            bookmark_saved: Instant::now(),
            cache_saved: Instant::now(),
        };
        let max_in_flight = JOBS_PER_THREAD * self.pool.threads();
        let mut tick = tokio::time::interval(IDLE_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let reload = self.reload.clone();
        let ended = loop {
            let r = tokio::select! {
                biased;
                done = next_done(&mut run.in_flight), if !run.in_flight.is_empty() => {
                    let f = run.in_flight.pop_front().expect("not empty");
                    self.emit(done, f.mark, &mut run).await
                }
                m = self.source.recv(), if run.in_flight.len() < max_in_flight => match m {
                    Some(m) => self.take(m, &mut run).await,
                    None => break None,
                },
                _ = tick.tick() => Ok(()),
                _ = reload.notified() => {
                    self.reload_mappings();
                    Ok(())
                }
            };
            if let Err(stop) = r {
                break Some(stop);
            }
            self.housekeeping(&mut run);
        };
        match ended {
            // The session has ended (shutdown): hand on what is being transformed.
            None => {
                if let Err(Stop::Output(h)) = self.drain(&mut run).await {
                    self.log_handoff(h);
                }
            }
            Some(Stop::Output(h)) => self.log_handoff(h),
        }
        self.save_cache();
        self.outputs.senders.clear();
        let _ = self.stop.send(true);
        Finished {
            delivery: self.delivery,
            counters: sum(&run.counters),
            emitted: run.seq,
        }
    }

    fn log_handoff(&self, h: Handoff) {
        match h {
            Handoff::Taken => {}
            Handoff::OutputGone(i) => tracing::error!(
                "output {} stopped; stopping the pipeline",
                self.outputs.names[i]
            ),
            Handoff::Stopping(i) => tracing::warn!(
                "stopping while output {} takes no events (is its receiver down?); \
                 what it did not take stays undelivered",
                self.outputs.names[i]
            ),
        }
    }

    /// Admits a message's records and hands them to the pool. A message with metadata first
    /// lets every job before it finish, and is finished before anything after it starts.
    async fn take(&mut self, m: SourceMessage, run: &mut Run) -> Result<(), Stop> {
        if m.connection != run.connection {
            run.connection = m.connection;
            self.delivery.reconnected();
        }
        let mut records = Vec::new();
        let mut received = 0u64;
        let mut duplicates = 0u64;
        let mut metadata = false;
        for item in records_of(m.kind, &m.body) {
            let body = match item {
                Ok(body) => body,
                Err(e) => {
                    tracing::warn!("message bundle: {e}; the rest of it is skipped");
                    break;
                }
            };
            let index = run.index;
            run.index += 1;
            received += 1;
            if !self.delivery.admit(body) {
                duplicates += 1;
                continue;
            }
            metadata |= is_metadata(body);
            records.push((index, m.body.slice_ref(body)));
        }
        self.resume
            .store(self.delivery.resume_second(), Ordering::Relaxed);
        let st = &self.stats;
        st.received.fetch_add(received, Ordering::Relaxed);
        st.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        if records.is_empty() {
            // Nothing new (a replayed message): no job, and nothing for delivery to cover.
            return Ok(());
        }
        if metadata {
            self.drain(run).await?;
        }
        let (reply, done) = oneshot::channel();
        self.pool.submit(Job {
            records,
            tap_json: self.json_tap.is_some(),
            reply,
        });
        run.in_flight.push_back(InFlight {
            done,
            mark: self.delivery.mark(),
        });
        if metadata {
            self.drain(run).await?;
        }
        Ok(())
    }

    /// Hands on the answers of every job handed out, in order.
    async fn drain(&mut self, run: &mut Run) -> Result<(), Stop> {
        while let Some(f) = run.in_flight.pop_front() {
            let done = f.done.await.ok();
            self.emit(done, f.mark, run).await?;
        }
        Ok(())
    }

    /// A job's events, numbered on from `run.seq`, to every output; its records are behind us
    /// once they are delivered.
    async fn emit(
        &mut self,
        done: Option<Done>,
        mark: Option<Mark>,
        run: &mut Run,
    ) -> Result<(), Stop> {
        let Some(done) = done else {
            // The transform thread died: a bug, already reported by the panic. Its records
            // stay undelivered (the bookmark does not pass them).
            tracing::error!("a transform thread failed; its records are not sent");
            return Ok(());
        };
        run.counters[done.thread] = done.counters;
        self.publish_counters(run);
        let mut batch = Vec::with_capacity(done.lines.len());
        if let Some(tap) = &self.json_tap {
            for record in done.tap {
                tap.send(record);
            }
        }
        for line in done.lines {
            run.seq += 1;
            batch.push(OutEvent {
                seq: run.seq,
                cef: line.cef,
                cef_severity: line.severity,
                msgid: line.msgid,
            });
        }
        self.delivery.emitted_at(run.seq, mark);
        if !batch.is_empty() {
            match self.send(batch, run).await {
                Handoff::Taken => {}
                other => return Err(Stop::Output(other)),
            }
        }
        if self.stop_after.is_some_and(|n| run.seq >= n) {
            let _ = self.stop.send(true);
        }
        Ok(())
    }

    /// The transform threads' counters into the monitor's (once per job, not per record).
    fn publish_counters(&self, run: &Run) {
        let c = sum(&run.counters);
        let st = &self.stats;
        for (a, v) in [
            (&st.handled, c.events),
            (&st.metadata, c.metadata),
            (&st.unknown, c.unknown),
            (&st.malformed, c.malformed),
            (&st.filtered, c.filtered),
            (&st.unmapped, c.unmapped),
            (&st.metadata_missing, c.metadata_missing),
            (&st.encoder_warnings, c.encoder_warnings),
        ] {
            a.store(v, Ordering::Relaxed);
        }
    }

    /// Hands a batch to every output, waiting while an output's queue is full. Gives up when
    /// an output has stopped (it failed) or when the run is asked to stop: an output that is
    /// not taking events (its receiver is down and its buffer full) must not hold up a clean
    /// stop. Whatever an output did not take is not delivered, so the bookmark stays before it.
    /// While waiting, the worker stays alive to the watchdog and keeps the bookmark moving
    /// (other outputs, or this one's older events, may still be delivered).
    async fn send(&mut self, events: Vec<OutEvent>, run: &mut Run) -> Handoff {
        let last = events.last().map(|e| e.seq).unwrap_or(0);
        let batch = Arc::new(Batch { events });
        self.stats.emitted.store(last, Ordering::Relaxed);
        for i in 0..self.outputs.senders.len() {
            let tx = self.outputs.senders[i].clone();
            loop {
                if *self.shutdown.borrow() {
                    match tx.try_send(batch.clone()) {
                        Ok(()) => break,
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            return Handoff::OutputGone(i);
                        }
                        Err(mpsc::error::TrySendError::Full(_)) => return Handoff::Stopping(i),
                    }
                }
                let mut shutdown = self.shutdown.clone();
                tokio::select! {
                    r = tx.reserve() => match r {
                        Ok(permit) => {
                            permit.send(batch.clone());
                            break;
                        }
                        Err(_) => return Handoff::OutputGone(i),
                    },
                    r = shutdown.changed() => if r.is_err() {
                        return Handoff::Stopping(i);
                    },
                    _ = tokio::time::sleep(IDLE_TICK) => self.housekeeping(run),
                }
            }
        }
        Handoff::Taken
    }

    /// Done every time round the loop, and every [`IDLE_TICK`] while waiting for an output:
    /// the heartbeat (systemd's watchdog), delivery progress, the bookmark and cache files.
    fn housekeeping(&mut self, run: &mut Run) {
        self.stats.heartbeat.fetch_add(1, Ordering::Relaxed);
        let delivered = self
            .outputs
            .delivered(self.stats.emitted.load(Ordering::Relaxed));
        self.delivery.delivered(delivered);
        self.stats.acknowledged.store(delivered, Ordering::Relaxed);
        if run.bookmark_saved.elapsed() >= BOOKMARK_EVERY {
            run.bookmark_saved = Instant::now();
            match self.delivery.save_if_moved() {
                Ok(Some(second)) => self
                    .stats
                    .bookmark_second
                    .store(u64::from(second), Ordering::Relaxed),
                Ok(None) => {}
                Err(e) => tracing::error!(
                    "cannot save the bookmark in {}: {e}",
                    self.delivery.dir().display()
                ),
            }
        }
        if run.cache_saved.elapsed() >= CACHE_EVERY {
            run.cache_saved = Instant::now();
            self.save_cache();
        }
    }

    fn reload_mappings(&mut self) {
        match (self.reload_mappings)() {
            Ok(m) => {
                self.pool.set_mappings(Arc::new(m));
                self.stats.mapping_reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!("mapping tables reloaded");
            }
            Err(e) => {
                tracing::error!("mapping tables NOT reloaded, the previous ones stay in use:\n{e}")
            }
        }
    }

    fn save_cache(&mut self) {
        let dir: PathBuf = self.delivery.dir().to_path_buf();
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        self.stats
            .cache_entries
            .store(cache.stats().entries as u64, Ordering::Relaxed);
        if cache.take_dirty()
            && let Err(e) = crate::metadata::store::save(&cache, &dir)
        {
            tracing::error!("cannot save the metadata cache in {}: {e}", dir.display());
        }
    }
}

/// The answer of the oldest job handed out.
async fn next_done(in_flight: &mut VecDeque<InFlight>) -> Option<Done> {
    match in_flight.front_mut() {
        Some(f) => (&mut f.done).await.ok(),
        None => std::future::pending().await,
    }
}

/// Whether a record feeds the metadata cache.
fn is_metadata(body: &[u8]) -> bool {
    RecordHeader::parse(body)
        .ok()
        .and_then(|h| crate::decode::catalog().record(h.record_type))
        .is_some_and(|s| s.is_metadata())
}

fn sum(counters: &[Counters]) -> Counters {
    let mut total = Counters::default();
    for c in counters {
        total.add(c);
    }
    total
}
