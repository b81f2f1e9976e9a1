//! Asks a `kafka` output's brokers for the cluster's metadata: do they answer, and does the
//! topic exist (`estreamer-cef test`).

use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};

use super::client;
use crate::config::output::KafkaConfig;
use crate::output::error::SyslogError;

/// What the brokers said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No broker answered within the time allowed (or the connection was refused, TLS or SASL
    /// failed): librdkafka's reason.
    NoAnswer(String),
    /// The cluster answered: its brokers (`id host:port`), and the topic's partition count
    /// (`None`: the topic does not exist, or this client may not see it).
    Answered {
        brokers: Vec<String>,
        partitions: Option<usize>,
    },
}

/// Fetches the metadata of every topic (which never creates one), waiting at most `wait`.
/// Blocking: run it on a blocking thread. An error is a setup problem (a file named by a key).
pub fn probe(c: &KafkaConfig, key: &str, wait: Duration) -> Result<Probe, SyslogError> {
    let cc = client::connection(c, key)?;
    let producer: BaseProducer = cc.create().map_err(|e| SyslogError::Config {
        key: format!("{key}.properties"),
        problem: format!(
            "are refused by librdkafka: {}",
            client::redact(&e.to_string(), &cc)
        ),
    })?;
    let metadata = match producer.client().fetch_metadata(None, wait) {
        Ok(m) => m,
        Err(e) => return Ok(Probe::NoAnswer(e.to_string())),
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
