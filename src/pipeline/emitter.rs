//! Where every FMC's worker hands its events to the outputs: one sequence of event numbers for
//! the whole process (each output reports how far it has delivered in it), and one handoff at a
//! time so that every output sees the events in that order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, watch};

use crate::cef::CefText;
use crate::output::{Batch, OutEvent};

/// How handing a batch to the outputs went.
pub enum Handoff {
    /// Taken by every output; the last event's sequence number.
    Taken(u64),
    /// This output has ended (it failed).
    OutputGone(usize),
    /// The run is stopping and this output had no room.
    Stopping(usize),
}

/// The outputs, shared by the workers.
pub struct Emitter {
    senders: Mutex<Vec<mpsc::Sender<Arc<Batch>>>>,
    /// The last sequence number handed out.
    last: AtomicU64,
    pub names: Vec<String>,
    pub progress: Vec<watch::Receiver<u64>>,
}

/// One event to emit: its CEF line and what the outputs need to frame it.
pub struct Event {
    pub cef: CefText,
    pub severity: u8,
    pub msgid: &'static str,
}

impl Emitter {
    pub fn new(
        senders: Vec<mpsc::Sender<Arc<Batch>>>,
        names: Vec<String>,
        progress: Vec<watch::Receiver<u64>>,
    ) -> Emitter {
        Emitter {
            senders: Mutex::new(senders),
            last: AtomicU64::new(0),
            names,
            progress,
        }
    }

    /// The last sequence number handed out (0: none yet).
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// The sequence number every output has delivered up to (everything handed out when there
    /// are no outputs).
    pub fn delivered(&self) -> u64 {
        delivered_by_all(&self.progress, self.last())
    }

    /// Numbers `events` (of FMC `fmc`) on and hands them to every output, waiting while an output's queue is
    /// full (or another worker hands on its batch). Gives up when an output has stopped (it
    /// failed) or when the run is asked to stop: an output that is not taking events (its
    /// receiver down, its buffer full) must not hold up a clean stop. `wait` runs every
    /// `tick` while waiting (the worker's housekeeping).
    pub async fn send(
        &self,
        fmc: usize,
        events: Vec<Event>,
        shutdown: &watch::Receiver<bool>,
        tick: Duration,
        mut wait: impl FnMut(),
    ) -> Handoff {
        let senders = loop {
            tokio::select! {
                g = self.senders.lock() => break g,
                _ = tokio::time::sleep(tick) => wait(),
            }
        };
        let first = self.last() + 1;
        let events: Vec<OutEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| OutEvent {
                seq: first + i as u64,
                cef: e.cef,
                cef_severity: e.severity,
                msgid: e.msgid,
            })
            .collect();
        let last = first + events.len() as u64 - 1;
        // Numbered for good even if an output does not take the batch (the run then stops):
        // the outputs that took it report progress in these numbers.
        self.last.store(last, Ordering::Release);
        let batch = Arc::new(Batch { events, fmc });
        for (i, tx) in senders.iter().enumerate() {
            loop {
                if *shutdown.borrow() {
                    match tx.try_send(batch.clone()) {
                        Ok(()) => break,
                        Err(mpsc::error::TrySendError::Closed(_)) => return Handoff::OutputGone(i),
                        Err(mpsc::error::TrySendError::Full(_)) => return Handoff::Stopping(i),
                    }
                }
                let mut shutdown = shutdown.clone();
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
                    _ = tokio::time::sleep(tick) => wait(),
                }
            }
        }
        Handoff::Taken(last)
    }

    /// Closes the outputs' queues: they deliver what they took, then end.
    pub async fn close(&self) {
        self.senders.lock().await.clear();
    }
}

/// The sequence number every output has delivered up to, from their progress (`emitted` when
/// there are no outputs).
pub fn delivered_by_all(progress: &[watch::Receiver<u64>], emitted: u64) -> u64 {
    progress
        .iter()
        .map(|p| *p.borrow())
        .min()
        .unwrap_or(emitted)
}
