//! Asks a `kafka` output's brokers for the cluster's metadata: do they answer, and does the
//! topic exist (`estreamer-cef test`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};

use super::{client, refusal};
use crate::config::output::KafkaConfig;
use crate::output::error::SyslogError;

/// What the brokers said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No broker answered within the time allowed (or the connection was refused, TLS or SASL
    /// failed): librdkafka's reason.
    NoAnswer(String),
    /// A broker answered and refused this client (credentials, certificates): librdkafka's
    /// reason, and what to check.
    Refused { reason: String, hint: String },
    /// The cluster answered: its brokers (`id host:port`), and the topic's partition count
    /// (`None`: the topic does not exist, or this client may not see it).
    Answered {
        brokers: Vec<String>,
        partitions: Option<usize>,
    },
}

/// librdkafka's client errors during the probe (served by `poll`).
#[derive(Default)]
struct Errors(Mutex<Vec<(Option<RDKafkaErrorCode>, String)>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push((error.rdkafka_error_code(), reason.to_string()));
        }
    }
}

impl ProducerContext for Errors {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// Fetches the metadata of every topic (which never creates one), waiting at most `wait`, and
/// less when a broker refuses this client. Blocking: run it on a blocking thread. An error is a
/// setup problem (a file named by a key).
pub fn probe(c: &KafkaConfig, key: &str, wait: Duration) -> Result<Probe, SyslogError> {
    let cc = client::connection(c, key)?;
    let producer: BaseProducer<Errors> = client::create(&cc, Errors::default(), key)?;
    let deadline = Instant::now() + wait;
    // Short requests, with librdkafka's events served between them: a refusal (a wrong
    // password, an untrusted certificate) is known in milliseconds, a broker that is down only
    // when the wait is over.
    let metadata = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let err = match producer
            .client()
            .fetch_metadata(None, left.min(Duration::from_secs(1)))
        {
            Ok(m) => break m,
            Err(e) => e,
        };
        producer.poll(Duration::ZERO);
        let seen = producer
            .context()
            .0
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        if let Some((reason, hint)) = seen.iter().find_map(|(code, reason)| {
            refusal::refusal_hint(*code, reason, key, &c.topic).map(|h| (reason.clone(), h))
        }) {
            return Ok(Probe::Refused { reason, hint });
        }
        if Instant::now() >= deadline {
            let why = seen
                .last()
                .map_or_else(|| err.to_string(), |(_, r)| r.clone());
            return Ok(Probe::NoAnswer(why));
        }
    };
    let brokers = metadata
        .brokers()
        .iter()
        .map(|b| format!("{} {}:{}", b.id(), b.host(), b.port()))
        .collect();
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == c.topic && t.error().is_none())
        .map(|t| t.partitions().len());
    Ok(Probe::Answered {
        brokers,
        partitions,
    })
}
