//! The worker of one FMC: one async loop that takes the FMC session's messages, admits their
//! records ([`Delivery`]), has the shared [`Pool`] transform them on every core (a bundle is one
//! job), hands the CEF events to the [`Emitter`] (every output) in the stream's order, follows
//! delivery and keeps the FMC's bookmark and metadata cache saved. Bounded on both sides: a slow output holds the worker, which
//! stops taking messages from the session, which stops acknowledging the FMC.
//!
//! A message that carries metadata waits until every job before it is done, and no job starts
//! before it is: the cache never lags behind an event that needs its names.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::emitter::{Emitter, Event, Handoff};
use super::pool::{Done, Job, Pool};
use crate::decode::RecordHeader;
use crate::delivery::{Delivery, Mark};
use crate::estreamer::message::records as records_of;
use crate::estreamer::session::{Resume, SourceMessage};
use crate::metadata::Cache;
use crate::monitor::PipelineStats;
use crate::output::TapHandle;
use crate::transform::Counters;

/// What the worker of one FMC needs.
pub(super) struct Worker {
    /// Index of the FMC in the configuration (its transforms in the pool).
    pub fmc: usize,
    pub source: mpsc::Receiver<SourceMessage>,
    pub pool: Arc<Pool>,
    pub cache: Arc<RwLock<Cache>>,
    pub delivery: Delivery,
    pub emitter: Arc<Emitter>,
    /// The JSON tap: decoded fields, CEF line and warnings per event (a wire tap is fed by the
    /// output it copies).
    pub json_tap: Option<TapHandle>,
    /// Where a new FMC connection resumes (read by the session).
    pub resume: Arc<Resume>,
    pub stats: Arc<PipelineStats>,
    /// How many FMCs share the pool: each keeps its share of the jobs in flight.
    pub fmcs: usize,
    /// Stop once this many events have been emitted by all FMCs together (the demo).
    pub stop_after: Option<u64>,
    /// Tells the rest of the pipeline to stop (the demo's end, an output that failed).
    pub stop: super::StopFlag,
    /// True once the run is asked to stop (SIGTERM, or `stop`).
    pub shutdown: watch::Receiver<bool>,
}

/// What the worker leaves for the final bookmark.
pub(super) struct Finished {
    pub delivery: Delivery,
    pub counters: Counters,
    /// Events this FMC emitted.
    pub emitted: u64,
}

const BOOKMARK_EVERY: Duration = Duration::from_secs(2);
const CACHE_EVERY: Duration = Duration::from_secs(10);
/// Longest the worker goes without housekeeping, also while it waits for an output.
const IDLE_TICK: Duration = Duration::from_millis(250);
/// Jobs handed out per transform thread and not yet answered, at most (shared by the FMCs, at
/// least two each): enough to keep every thread busy while the worker hands results on, few
/// enough to keep memory small.
const JOBS_PER_THREAD: usize = 3;

/// A job handed out: its answer, what its records' delivery covers, and whether its events
/// must be checked against the HA identity window.
struct InFlight {
    done: oneshot::Receiver<Done>,
    mark: Option<Mark>,
    check: bool,
}

/// Mutable state of one run of the loop, beside the [`Worker`]'s parts.
struct Run {
    /// Events this FMC emitted.
    emitted: u64,
    /// Of them, acknowledged by every output.
    acknowledged: u64,
    /// (last sequence number, events) of each batch not yet acknowledged by every output.
    unacknowledged: VecDeque<(u64, u64)>,
    /// The last sequence number of this FMC's events (0: none yet).
    last_seq: u64,
    index: u64,
    connection: u64,
    in_flight: VecDeque<InFlight>,
    /// Each transform thread's latest counters (for this FMC).
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
            emitted: 0,
            acknowledged: 0,
            unacknowledged: VecDeque::new(),
            last_seq: 0,
            index: 0,
            connection: 0,
            in_flight: VecDeque::new(),
            counters: vec![Counters::default(); self.pool.threads()],
            bookmark_saved: Instant::now(),
            cache_saved: Instant::now(),
        };
        let max_in_flight = (JOBS_PER_THREAD * self.pool.threads() / self.fmcs.max(1)).max(2);
        let mut tick = tokio::time::interval(IDLE_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let ended = loop {
            let r = tokio::select! {
                biased;
                done = next_done(&mut run.in_flight), if !run.in_flight.is_empty() => {
                    let f = run.in_flight.pop_front().expect("not empty");
                    self.emit(done, f.mark, f.check, &mut run).await
                }
                m = self.source.recv(), if run.in_flight.len() < max_in_flight => match m {
                    Some(m) => self.take(m, &mut run).await,
                    None => break None,
                },
                _ = tick.tick() => Ok(()),
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
        Finished {
            delivery: self.delivery,
            counters: sum(&run.counters),
            emitted: run.emitted,
        }
    }

    fn log_handoff(&self, h: Handoff) {
        match h {
            Handoff::Taken(_) => {}
            Handoff::OutputGone(i) => {
                tracing::error!(
                    "output {} stopped; stopping the pipeline",
                    self.emitter.names[i]
                );
                // Every FMC stops: the outputs are shared.
                self.stop.send_replace(true);
            }
            Handoff::Stopping(i) => tracing::warn!(
                "stopping while output {} takes no events (is its receiver down?); \
                 what it did not take stays undelivered",
                self.emitter.names[i]
            ),
        }
    }

    /// Admits a message's records and hands them to the pool. A message with metadata first
    /// lets every job before it finish, and is finished before anything after it starts.
    async fn take(&mut self, m: SourceMessage, run: &mut Run) -> Result<(), Stop> {
        if m.connection != run.connection {
            run.connection = m.connection;
            self.delivery.reconnected(m.peer);
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
        self.resume.set(self.delivery.resume_point());
        let check = self.delivery.checking();
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
            fmc: self.fmc,
            identities: self.delivery.wants_identities(),
            records,
            tap_json: self.json_tap.is_some(),
            reply,
        });
        run.in_flight.push_back(InFlight {
            done,
            mark: self.delivery.mark(),
            check,
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
            self.emit(done, f.mark, f.check, run).await?;
        }
        Ok(())
    }

    /// A job's events to every output; its records are behind us once they are delivered.
    /// After an HA switch, events already delivered (by identity) are dropped.
    async fn emit(
        &mut self,
        done: Option<Done>,
        mark: Option<Mark>,
        check: bool,
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
        if let Some(tap) = &self.json_tap {
            for record in done.tap {
                tap.send(record);
            }
        }
        let mut events = Vec::with_capacity(done.lines.len());
        let mut identities = Vec::new();
        let mut duplicates = 0u64;
        for line in done.lines {
            if let Some(id) = line.identity {
                if self.delivery.is_repeat(id, check) {
                    duplicates += 1;
                    continue;
                }
                identities.push((events.len() as u64, id));
            }
            events.push(Event {
                cef: line.cef,
                severity: line.severity,
                msgid: line.msgid,
            });
        }
        if duplicates > 0 {
            self.stats
                .duplicates
                .fetch_add(duplicates, Ordering::Relaxed);
        }
        if !events.is_empty() {
            let n = events.len() as u64;
            let emitter = self.emitter.clone();
            let shutdown = self.shutdown.clone();
            match emitter
                .send(self.fmc, events, &shutdown, IDLE_TICK, || {
                    self.housekeeping(run)
                })
                .await
            {
                Handoff::Taken(last) => {
                    let first = last + 1 - n;
                    for (i, id) in identities {
                        self.delivery.remember(id, first + i);
                    }
                    run.last_seq = last;
                    run.emitted += n;
                    run.unacknowledged.push_back((last, n));
                    self.stats.emitted.store(run.emitted, Ordering::Relaxed);
                }
                other => return Err(Stop::Output(other)),
            }
        }
        // Records that made no event (filtered, duplicates) are behind us once this FMC's
        // events before them are delivered.
        self.delivery.emitted_at(run.last_seq, mark);
        if self.stop_after.is_some_and(|n| self.emitter.last() >= n) {
            self.stop.send_replace(true);
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

    /// Done every time round the loop, and every [`IDLE_TICK`] while waiting for an output:
    /// the heartbeat (systemd's watchdog), delivery progress, the bookmark and cache files.
    fn housekeeping(&mut self, run: &mut Run) {
        self.stats.heartbeat.fetch_add(1, Ordering::Relaxed);
        let delivered = self.emitter.delivered();
        self.delivery.delivered(delivered);
        while let Some(&(last, n)) = run.unacknowledged.front() {
            if last > delivered {
                break;
            }
            run.acknowledged += n;
            run.unacknowledged.pop_front();
        }
        self.stats
            .acknowledged
            .store(run.acknowledged, Ordering::Relaxed);
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
                    self.delivery
                        .dir()
                        .unwrap_or(std::path::Path::new(""))
                        .display()
                ),
            }
        }
        if run.cache_saved.elapsed() >= CACHE_EVERY {
            run.cache_saved = Instant::now();
            self.save_cache();
        }
    }

    /// Saves the metadata cache beside the bookmark (not at all when delivery is followed in
    /// memory only: a replay).
    fn save_cache(&mut self) {
        let dir: Option<PathBuf> = self.delivery.dir().map(|d| d.to_path_buf());
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        self.stats
            .cache_entries
            .store(cache.stats().entries as u64, Ordering::Relaxed);
        let Some(dir) = dir else { return };
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
pub(super) fn is_metadata(body: &[u8]) -> bool {
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
