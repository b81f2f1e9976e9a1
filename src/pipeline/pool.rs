//! The transform on every core: one plain thread per CPU, each with its own [`Transform`] per
//! FMC (each FMC has its own record filter, metadata cache and counters), taking a message's
//! admitted records and answering with their CEF lines on a oneshot. Every FMC's worker shares
//! the pool and keeps its stream's order by awaiting the answers in the order it handed the
//! jobs out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::cef::CefText;
use crate::decode::json::record_fields;
use crate::delivery::family::families;
use crate::mapping::Mappings;
use crate::metadata::Cache;
use crate::output::TapRecord;
use crate::transform::{Counters, Outcome, Transform};

/// Records of one message to transform.
pub struct Job {
    /// Which FMC (index in the configuration) the records are from.
    pub fmc: usize,
    /// Compute each event's device identity (an HA pair).
    pub identities: bool,
    /// (index in the stream, EventData body) of each admitted record, in order.
    pub records: Vec<(u64, Bytes)>,
    /// Make a JSON tap record for every event.
    pub tap_json: bool,
    pub reply: oneshot::Sender<Done>,
}

/// One event of a job: its CEF line and what the outputs need to frame it.
pub struct Line {
    /// The event's device identity (see `delivery::family`), when the job asked for it.
    pub identity: Option<u64>,
    pub cef: CefText,
    pub severity: u8,
    pub msgid: &'static str,
}

/// A job's answer.
pub struct Done {
    pub lines: Vec<Line>,
    /// JSON tap records, one per line, when asked for.
    pub tap: Vec<TapRecord>,
    /// The thread that did it and its transform's counters (for this FMC) after it.
    pub thread: usize,
    pub counters: Counters,
}

enum Work {
    Job(Job),
    Mappings(Arc<Mappings>),
}

/// The transform threads. Dropping the pool ends them.
pub struct Pool {
    senders: Vec<std_mpsc::Sender<Work>>,
    next: AtomicUsize,
    threads: Vec<JoinHandle<()>>,
}

/// One FMC as the pool sees it: its transform (filter, tables, header) and its metadata cache.
pub struct Source {
    pub transform: Transform,
    pub cache: Arc<RwLock<Cache>>,
    /// The FMC's log span: what the transform logs (an unknown record type, a malformed
    /// record) names the FMC.
    pub span: tracing::Span,
}

impl Pool {
    /// `threads` threads, each with a sibling of every source's transform.
    pub fn start(threads: usize, sources: &[Source]) -> std::io::Result<Pool> {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for thread in 0..threads.max(1) {
            let (tx, rx) = std_mpsc::channel::<Work>();
            let mut fmcs: Vec<(Transform, Arc<RwLock<Cache>>, tracing::Span)> = sources
                .iter()
                .map(|s| (s.transform.sibling(), s.cache.clone(), s.span.clone()))
                .collect();
            let handle = std::thread::Builder::new()
                .name(format!("transform-{thread}"))
                .spawn(move || {
                    while let Ok(work) = rx.recv() {
                        match work {
                            Work::Mappings(m) => {
                                for (t, _, _) in &mut fmcs {
                                    t.set_mappings(m.clone());
                                }
                            }
                            Work::Job(job) => {
                                // A job for an FMC the pool does not know is a bug: its reply
                                // is dropped and the worker reports the job failed.
                                let Some((transform, cache, span)) = fmcs.get_mut(job.fmc) else {
                                    continue;
                                };
                                let _in_span = span.enter();
                                let done = run(transform, cache, &job, thread);
                                let _ = job.reply.send(done);
                            }
                        }
                    }
                })?;
            senders.push(tx);
            handles.push(handle);
        }
        Ok(Pool {
            senders,
            next: AtomicUsize::new(0),
            threads: handles,
        })
    }

    pub fn threads(&self) -> usize {
        self.senders.len()
    }

    /// Hands a job to the next thread (round robin: jobs are bundles of similar size).
    pub fn submit(&self, job: Job) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        // A thread that died (a bug) drops the reply: the worker sees the job fail.
        let _ = self.senders[i].send(Work::Job(job));
    }

    /// New mapping tables for every thread; jobs handed out after this use them.
    pub fn set_mappings(&self, m: Arc<Mappings>) {
        for tx in &self.senders {
            let _ = tx.send(Work::Mappings(m.clone()));
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.senders.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn run(transform: &mut Transform, cache: &RwLock<Cache>, job: &Job, thread: usize) -> Done {
    // Every line of the job goes into one buffer, which the events then share.
    let mut text = Vec::with_capacity(job.records.len() * 1024);
    let mut ranges = Vec::with_capacity(job.records.len());
    let mut events = Vec::with_capacity(job.records.len());
    let mut tap = Vec::new();
    for (index, body) in &job.records {
        let start = text.len();
        let (outcome, seen) =
            transform.apply_inspect(*index, body, cache, &mut text, |record, _| {
                (
                    job.identities.then(|| families().identity(record)),
                    job.tap_json
                        .then(|| (record.record_type(), record_fields(record))),
                )
            });
        let Outcome::Event { severity, msgid } = outcome else {
            text.truncate(start);
            continue;
        };
        let (identity, seen) = seen.unwrap_or((None, None));
        if let Some((record_type, fields)) = seen {
            tap.push(TapRecord {
                record_type,
                fields: serde_json::Value::Object(fields),
                cef: Some(String::from_utf8_lossy(&text[start..]).into_owned()),
                warnings: transform.notes().to_strings(),
                wire: Vec::new(),
            });
        }
        ranges.push(start..text.len());
        events.push((identity, severity, msgid));
    }
    let lines = CefText::split(text, &ranges)
        .into_iter()
        .zip(events)
        .map(|(cef, (identity, severity, msgid))| Line {
            identity,
            cef,
            severity,
            msgid,
        })
        .collect();
    Done {
        lines,
        tap,
        thread,
        counters: transform.counters().clone(),
    }
}
