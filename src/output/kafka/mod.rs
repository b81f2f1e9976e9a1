//! Kafka output: each event one message on a topic (ArcSight Transformation Hub's `th-cef`),
//! through librdkafka (the `rdkafka` crate, built from its bundled sources).
//!
//! Delivery: the producer is idempotent with `acks=all` and no message timeout, so librdkafka
//! retries through broker outages and leader changes without duplicating or reordering, and a
//! message is acknowledged once every in-sync replica has it. The output reports progress up
//! to the oldest message not yet acknowledged (the bookmark never passes it). Its queue holds
//! at most `queue_messages`; when full, the output stops taking batches, which pauses reading
//! from the FMC. A message the brokers reject for good (too large, topic missing, not
//! authorized) is logged with the topic and reason, counted as an error, and passed over: it
//! must not hold back the other outputs forever. A fatal producer error (the idempotence
//! guarantee lost) ends the output, and with it the run: a restart resends from the bookmark.

pub mod client;
pub mod key;
pub mod probe;
pub mod refusal;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use super::error::SyslogError;
use super::syslog::encoder::{Encoded, FrameEncoder};
use super::{Batch, OutputStats, publish_progress};
use crate::config::output::KafkaConfig;
use key::KeyMaker;

/// A rejection reason is logged at most this often (with the count since).
const COMPLAIN_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct KafkaOutput {
    name: String,
    /// The output's place in the configuration (`output[0]`), for the keys a message names.
    key: String,
    topic: String,
    keys: KeyMaker,
    /// The FMCs' names, by index (`Batch::fmc`), for the `fmc` part of the key.
    pub fmc_names: Vec<String>,
    pub encoder: FrameEncoder,
    producer: ThreadedProducer<Reporter>,
    reports: mpsc::UnboundedReceiver<Report>,
    shutdown_timeout: Duration,
}

/// What librdkafka's threads tell the output.
enum Report {
    /// The message with this sequence number is acknowledged.
    Acked(u64),
    /// The message with this sequence number failed for good.
    Failed(u64, KafkaError),
    /// A client-level error (a broker down, authentication, fatal).
    Client(KafkaError, String),
}

/// librdkafka's callbacks, turned into [`Report`]s for the output's task.
struct Reporter {
    tx: mpsc::UnboundedSender<Report>,
}

impl ClientContext for Reporter {
    fn error(&self, error: KafkaError, reason: &str) {
        let _ = self.tx.send(Report::Client(error, reason.to_string()));
    }
}

impl ProducerContext for Reporter {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let report = match result {
            Ok(_) => Report::Acked(seq as u64),
            Err((e, _)) => Report::Failed(seq as u64, e.clone()),
        };
        let _ = self.tx.send(report);
    }
}

/// Why the output ends early.
enum Stop {
    /// The producer's fatal state.
    Fatal,
    /// Stopping, and the brokers did not take the rest within `shutdown_timeout`.
    GaveUp,
}

/// The output's bookkeeping while running.
struct State {
    stats: Arc<OutputStats>,
    /// Sequence numbers sent and not yet acknowledged (or rejected).
    pending: BTreeSet<u64>,
    /// The last sequence number taken from a batch.
    taken: u64,
    /// Per rejection reason: when it was last logged, and how many since.
    complaints: HashMap<String, (Option<Instant>, u64)>,
    /// Whether the brokers are unreachable (logged once per outage).
    down: bool,
}

impl State {
    /// Everything up to here is acknowledged or given up.
    fn progress(&self) -> u64 {
        self.pending.first().map_or(self.taken, |s| s - 1)
    }

    fn set_in_flight(&self) {
        self.stats
            .in_flight
            .store(self.pending.len() as u64, Ordering::Relaxed);
    }

    /// Marks the brokers down (`output_up` 0) until the next acknowledgement; true when they
    /// were up until now.
    fn set_down(&mut self) -> bool {
        self.stats.up.store(false, Ordering::Relaxed);
        !std::mem::replace(&mut self.down, true)
    }
}

impl KafkaOutput {
    /// Checks the files the config names and creates the producer (it connects in the
    /// background). `key` names the output in errors.
    pub(crate) fn new(
        c: &KafkaConfig,
        key: &str,
        name: String,
        encoder: FrameEncoder,
    ) -> Result<KafkaOutput, SyslogError> {
        let cc = client::producer(c, key)?;
        let (tx, reports) = mpsc::unbounded_channel();
        let producer: ThreadedProducer<Reporter> = client::create(&cc, Reporter { tx }, key)?;
        Ok(KafkaOutput {
            name,
            key: key.to_string(),
            topic: c.topic.clone(),
            keys: KeyMaker::new(&c.key),
            fmc_names: Vec::new(),
            encoder,
            producer,
            reports,
            shutdown_timeout: c.shutdown_timeout,
        })
    }

    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Arc<Batch>>,
        progress: watch::Sender<u64>,
        stats: Arc<OutputStats>,
    ) {
        stats.up.store(true, Ordering::Relaxed);
        let mut st = State {
            stats: stats.clone(),
            pending: BTreeSet::new(),
            taken: 0,
            complaints: HashMap::new(),
            down: false,
        };
        let mut payload = Vec::with_capacity(4096);
        let mut key = String::new();
        loop {
            let step = tokio::select! {
                r = self.reports.recv() => match r {
                    Some(r) => self.on_report(r, &mut st),
                    None => Err(Stop::Fatal),
                },
                b = rx.recv() => match b {
                    Some(batch) => self.take(&batch, &rx, &mut st, &mut payload, &mut key).await,
                    None => break,
                },
            };
            if step.is_err() {
                stats.up.store(false, Ordering::Relaxed);
                return;
            }
            publish_progress(&progress, Some(st.progress()));
        }
        // The input has ended: wait for the acknowledgements of what was sent.
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        while !st.pending.is_empty() {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(r)) => {
                    if self.on_report(r, &mut st).is_err() {
                        break;
                    }
                    publish_progress(&progress, Some(st.progress()));
                }
                _ => {
                    self.gave_up(&st);
                    break;
                }
            }
        }
        stats.up.store(false, Ordering::Relaxed);
    }

    /// Sends a batch's messages, waiting for acknowledgements while librdkafka's queue is full.
    async fn take(
        &mut self,
        batch: &Batch,
        input: &mpsc::Receiver<Arc<Batch>>,
        st: &mut State,
        payload: &mut Vec<u8>,
        key: &mut String,
    ) -> Result<(), Stop> {
        self.encoder.set_time(SystemTime::now());
        let fmc = self.fmc_names.get(batch.fmc).map_or("", String::as_str);
        // Set once the run is stopping (the input closed) while the queue is full.
        let mut stopping_since: Option<Instant> = None;
        for ev in &batch.events {
            payload.clear();
            match self.encoder.encode(ev, payload) {
                Encoded::Framed { truncated, .. } => {
                    if truncated {
                        st.stats.truncated.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Encoded::Dropped => {
                    st.stats.dropped_oversize.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            self.keys.make(fmc, &ev.cef, key);
            loop {
                let mut record =
                    BaseRecord::with_opaque_to(&self.topic, ev.seq as usize).payload(&payload[..]);
                if !self.keys.is_empty() {
                    record = record.key(key.as_str());
                }
                match self.producer.send(record) {
                    Ok(()) => {
                        st.pending.insert(ev.seq);
                        st.stats.sent.fetch_add(1, Ordering::Relaxed);
                        st.stats
                            .bytes
                            .fetch_add(payload.len() as u64, Ordering::Relaxed);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        // `queue_messages` wait: take nothing more until some are acknowledged
                        // (this holds the batches back, and then the FMC). A stop must not
                        // wait for a broker that does not come back.
                        st.set_in_flight();
                        if input.is_closed() {
                            let since = *stopping_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= self.shutdown_timeout {
                                self.gave_up(st);
                                return Err(Stop::GaveUp);
                            }
                        }
                        if let Ok(Some(r)) =
                            tokio::time::timeout(Duration::from_millis(100), self.reports.recv())
                                .await
                        {
                            self.on_report(r, st)?;
                        }
                    }
                    Err((e, _)) => {
                        self.rejected(&e, st)?;
                        break;
                    }
                }
            }
            while let Ok(r) = self.reports.try_recv() {
                self.on_report(r, st)?;
            }
        }
        if let Some(last) = batch.events.last() {
            st.taken = last.seq;
        }
        st.set_in_flight();
        Ok(())
    }

    fn on_report(&self, report: Report, st: &mut State) -> Result<(), Stop> {
        match report {
            Report::Acked(seq) => {
                st.pending.remove(&seq);
                st.stats.acknowledged.fetch_add(1, Ordering::Relaxed);
                st.stats.delivered.fetch_add(1, Ordering::Relaxed);
                if st.down {
                    st.down = false;
                    st.stats.up.store(true, Ordering::Relaxed);
                    info!(output = %self.name, "the brokers acknowledge messages again");
                }
            }
            Report::Failed(seq, e) => match e.rdkafka_error_code() {
                // Purged when the producer is dropped at the end: not delivered, not an error
                // of the brokers (the bookmark stays before them).
                Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight) => {}
                _ => {
                    self.rejected(&e, st)?;
                    st.pending.remove(&seq);
                }
            },
            Report::Client(e, reason) => {
                let code = e.rdkafka_error_code();
                if code == Some(RDKafkaErrorCode::Fatal) {
                    return Err(self.fatal());
                }
                if let Some(hint) = refusal::refusal_hint(code, &reason, &self.key, &self.topic) {
                    // Nothing changes until the configuration does: down, and said (at most
                    // every COMPLAIN_EVERY) as an error.
                    st.stats.errors.fetch_add(1, Ordering::Relaxed);
                    st.set_down();
                    self.complain(st, &format!("{e}"), || {
                        format!("the brokers refuse this client: {reason}; {hint}")
                    });
                } else if matches!(
                    code,
                    Some(
                        RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure
                    )
                ) {
                    // A broker connection failing (librdkafka does not always add "all brokers
                    // down" when the cluster's only broker is gone): down until the next
                    // acknowledgement.
                    st.stats.errors.fetch_add(1, Ordering::Relaxed);
                    if st.set_down() {
                        warn!(
                            output = %self.name,
                            "a Kafka broker does not answer ({reason}); messages wait (reading \
                             from the FMC pauses once queue_messages wait) and are sent when it is back"
                        );
                    }
                } else {
                    // Single broker connections failing and recovering: librdkafka retries;
                    // "all brokers down" above is what the user needs to see.
                    tracing::debug!(output = %self.name, "librdkafka: {e}: {reason}");
                }
            }
        }
        st.set_in_flight();
        Ok(())
    }

    /// The stop's wait for acknowledgements is over with messages still pending.
    fn gave_up(&self, st: &State) {
        warn!(
            output = %self.name,
            "shutdown_timeout passed with {} messages not acknowledged by the brokers; they are \
             not counted as delivered",
            st.pending.len()
        );
    }

    /// A message refused for good: count it and say why (at most every [`COMPLAIN_EVERY`] per
    /// reason).
    fn rejected(&self, e: &KafkaError, st: &mut State) -> Result<(), Stop> {
        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            return Err(self.fatal());
        }
        st.stats.errors.fetch_add(1, Ordering::Relaxed);
        st.stats.refused.fetch_add(1, Ordering::Relaxed);
        let hint = match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
                "lower max_message_bytes below the topic's max.message.bytes, or raise that"
            }
            Some(
                RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownPartition,
            ) => "create the topic on the cluster, or set topic to one that exists",
            Some(RDKafkaErrorCode::TopicAuthorizationFailed) => {
                "allow this client's user to write to the topic (ACL), or use another user"
            }
            _ => "see the brokers' logs",
        };
        self.complain(st, &e.to_string(), || {
            format!(
                "topic {}: the brokers refused a message for good ({e}); it is skipped and \
                 counted as an error; {hint}",
                self.topic
            )
        });
        Ok(())
    }

    fn complain(&self, st: &mut State, reason: &str, message: impl FnOnce() -> String) {
        let now = Instant::now();
        let entry = st.complaints.entry(reason.to_string()).or_insert((None, 0));
        entry.1 += 1;
        if entry
            .0
            .is_none_or(|t| now.duration_since(t) >= COMPLAIN_EVERY)
        {
            let more = if entry.1 > 1 {
                format!(" ({} times since the last report)", entry.1)
            } else {
                String::new()
            };
            error!(output = %self.name, "{}{more}", message());
            *entry = (Some(now), 0);
        }
    }

    fn fatal(&self) -> Stop {
        let (code, why) = self
            .producer
            .client()
            .fatal_error()
            .unwrap_or((RDKafkaErrorCode::Fatal, "unknown".into()));
        error!(
            output = %self.name,
            "the Kafka producer stopped with a fatal error ({code:?}: {why}); this output ends, \
             and with it the run: after a restart, what was not acknowledged is sent again from \
             the bookmark"
        );
        Stop::Fatal
    }
}
