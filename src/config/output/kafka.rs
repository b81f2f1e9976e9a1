//! The keys of `transport = "kafka"`: where the brokers are, which topic, how messages are keyed
//! and compressed, TLS and SASL, and a pass-through table for any other librdkafka property.
//! The delivery settings (idempotent producer, `acks=all`, no message timeout) are not keys:
//! they make the delivery promise and cannot be changed.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize, Serializer};

use super::{Facility, Format, Oversize, SeverityMap, default_app_name, default_facility};
use super::{default_line_format, default_shutdown_timeout, default_true};
use crate::config::duration;

output_struct! {
    /// `transport = "kafka"`: each event is one Kafka message on `topic` (ArcSight
    /// Transformation Hub reads CEF text from `th-cef`). A message counts as delivered once
    /// every in-sync replica of its partition has it (idempotent producer, `acks=all`): only
    /// then does the bookmark move past it. A broker outage holds the stream back (librdkafka
    /// retries for as long as it takes; reading from the FMC pauses once `queue_messages` wait);
    /// a message the brokers reject for good (too large, topic missing, not authorized) is
    /// logged with the topic and the reason, counted in the output's errors, and skipped.
    KafkaConfig [line_format, header] {
        /// Bootstrap brokers, `host:port` each, e.g. `["th1.example.com:9093",
        /// "th2.example.com:9093"]`. The others of the cluster are learnt from them.
        pub brokers: Vec<String>,
        /// Topic to write to. Default `th-cef` (Transformation Hub's CEF topic). It must exist:
        /// the producer does not create it.
        #[serde(default = "default_topic")]
        pub topic: String,
        /// What each message's key is made of, joined with `/`: `fmc` (the FMC's name) or the
        /// name of a CEF extension key of the event (e.g. `deviceExternalId`, `dvchost`; an
        /// event without it contributes an empty part). Messages with one key go to one
        /// partition, in order. Default `["fmc", "deviceExternalId"]`: one device's events stay
        /// in order. `[]` sends messages without a key (spread over the partitions, no order).
        #[serde(default = "default_key")]
        pub key: Vec<String>,
        /// Compression of message batches: `none` (default), `gzip`, `snappy`, `lz4` or `zstd`.
        /// `lz4` costs little CPU and usually shrinks CEF four- to six-fold.
        #[serde(default)]
        pub compression: Compression,
        /// Largest message in bytes. Larger messages follow `oversize`. Default 1000000 (the
        /// brokers' default `message.max.bytes`); a message the brokers still refuse as too
        /// large is an error, counted and skipped. At most 100000000.
        #[serde(default = "default_kafka_max")]
        pub max_message_bytes: usize,
        /// What to do with a message longer than `max_message_bytes`: `truncate` (default:
        /// shorten the longest CEF extension values, never the header, and count it), `drop`
        /// (count and skip it) or `send` (send it whole; the brokers may refuse it).
        #[serde(default)]
        pub oversize: Oversize,
        /// Messages that may wait for the brokers' acknowledgement before this output stops
        /// taking events (which pauses reading from the FMC; nothing is lost). Default 100000.
        /// After a crash of estreamer-cef at most these are sent again.
        #[serde(default = "default_queue_messages")]
        pub queue_messages: usize,
        /// How long to gather messages into one request (librdkafka `linger.ms`). Default "5ms".
        #[serde(default = "default_linger", with = "duration")]
        pub linger: Duration,
        /// When estreamer-cef stops: how long to wait for the brokers to acknowledge what was
        /// sent before giving up on the rest (it stays undelivered and is read again from the
        /// FMC next time). Default "10s".
        #[serde(default = "default_shutdown_timeout", with = "duration")]
        pub shutdown_timeout: Duration,
        /// Connect to the brokers with TLS. Default `false`; implied by `server_ca`,
        /// `client_cert`.
        #[serde(default)]
        pub tls: bool,
        /// PEM file with the CA certificate(s) that issued the brokers' certificates. Default:
        /// the system trust store.
        #[serde(default)]
        pub server_ca: Option<PathBuf>,
        /// Check that each broker's certificate is issued for its host name. Default `true`.
        #[serde(default = "default_true")]
        pub verify_hostname: bool,
        /// PEM file with the client certificate, for brokers that require mutual TLS.
        #[serde(default)]
        pub client_cert: Option<PathBuf>,
        /// PEM file with the client certificate's private key.
        #[serde(default)]
        pub client_key: Option<PathBuf>,
        /// File whose first line is the password of an encrypted `client_key`.
        #[serde(default)]
        pub client_key_password_file: Option<PathBuf>,
        /// SASL authentication: `plain`, `scram-sha-256` or `scram-sha-512`. Default: none. Use
        /// it with `tls = true`: PLAIN sends the password as it is.
        #[serde(default)]
        pub sasl_mechanism: Option<SaslMechanism>,
        /// SASL user name.
        #[serde(default)]
        pub sasl_username: Option<String>,
        /// File whose first line is the SASL password (a trailing CR/LF is ignored).
        #[serde(default)]
        pub sasl_password_file: Option<PathBuf>,
        /// Any other librdkafka producer property, e.g.
        /// `properties = { "client.id" = "fmc-forwarder", "socket.keepalive.enable" = "true" }`
        /// (see librdkafka's CONFIGURATION.md). The properties set from the keys above and
        /// those the delivery promise fixes (`enable.idempotence`, `acks`, `message.timeout.ms`,
        /// `bootstrap.servers`) cannot be set here. Values of properties whose name says
        /// password, secret or key material are never shown.
        #[serde(default)]
        pub properties: Properties,
    }
}

/// Compression codec of message batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// librdkafka's `compression.codec` value.
    pub fn codec(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum SaslMechanism {
    #[serde(rename = "plain")]
    Plain,
    // The mechanisms' own names (RFC 7677), as the README and the packaged example write them.
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's `sasl.mechanism` value.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Pass-through librdkafka properties. Printed (`check-config`) with the values of secret ones
/// replaced by `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Properties(pub IndexMap<String, String>);

/// Properties the output sets itself; setting them through `properties` is an error naming the
/// key to use instead (or why it is fixed).
pub(crate) const OWNED_PROPERTIES: [(&str, &str); 16] = [
    ("bootstrap.servers", "use `brokers`"),
    ("metadata.broker.list", "use `brokers`"),
    (
        "enable.idempotence",
        "it is always on (no duplicates from retries)",
    ),
    (
        "acks",
        "it is always \"all\" (a message is delivered once every in-sync replica has it)",
    ),
    ("request.required.acks", "it is always \"all\""),
    (
        "message.timeout.ms",
        "it is always 0 (retry until the brokers take it; nothing is dropped)",
    ),
    (
        "delivery.timeout.ms",
        "it is always 0 (retry until the brokers take it)",
    ),
    ("compression.codec", "use `compression`"),
    ("compression.type", "use `compression`"),
    ("queue.buffering.max.messages", "use `queue_messages`"),
    ("linger.ms", "use `linger`"),
    ("security.protocol", "use `tls` and `sasl_mechanism`"),
    ("sasl.mechanism", "use `sasl_mechanism`"),
    ("sasl.mechanisms", "use `sasl_mechanism`"),
    ("sasl.password", "use `sasl_password_file`"),
    ("ssl.key.password", "use `client_key_password_file`"),
];

impl Properties {
    /// Whether a property's value must not be shown (passwords, secrets, inline keys).
    pub fn is_secret(name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        [
            "password",
            "secret",
            "jaas",
            ".pem",
            "oauthbearer.config",
            "token",
        ]
        .iter()
        .any(|s| n.contains(s))
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if Properties::is_secret(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k, shown)
            }))
            .finish()
    }
}

impl Serialize for Properties {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| {
            let shown = if Properties::is_secret(k) {
                "<redacted>"
            } else {
                v.as_str()
            };
            (k, shown)
        }))
    }
}

impl KafkaConfig {
    /// Whether the connection uses TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls || self.server_ca.is_some() || self.client_cert.is_some()
    }

    /// Checks what serde cannot. The error is (key, problem).
    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, problem: String| (key.to_string(), problem);
        if self.brokers.is_empty() {
            return Err(bad(
                "brokers",
                "is empty; list at least one broker as \"host:port\"".into(),
            ));
        }
        for b in &self.brokers {
            let ok = b
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok || b.chars().any(|c| c.is_whitespace() || c == ',') {
                return Err(bad(
                    "brokers",
                    format!(
                        "has {b:?}, which is not \"host:port\" (e.g. \"th1.example.com:9093\")"
                    ),
                ));
            }
        }
        if self.topic.is_empty()
            || self.topic.len() > 249
            || !self
                .topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(bad(
                "topic",
                format!(
                    "= {:?} is not a Kafka topic name (1-249 characters of a-z, A-Z, 0-9, '.', '_', '-')",
                    self.topic
                ),
            ));
        }
        if !(1..=100_000_000).contains(&self.max_message_bytes) {
            return Err(bad(
                "max_message_bytes",
                format!("= {} is outside 1..=100000000", self.max_message_bytes),
            ));
        }
        if !(1..=10_000_000).contains(&self.queue_messages) {
            return Err(bad(
                "queue_messages",
                format!("= {} is outside 1..=10000000", self.queue_messages),
            ));
        }
        if self.linger > Duration::from_secs(900) {
            return Err(bad("linger", "must be at most \"900s\"".into()));
        }
        if self.shutdown_timeout > Duration::from_secs(86_400) {
            return Err(bad("shutdown_timeout", "must be at most \"24h\"".into()));
        }
        if self.client_key.is_some() != self.client_cert.is_some() {
            return Err(bad(
                "client_cert",
                "and client_key go together: give both (mutual TLS) or neither".into(),
            ));
        }
        match (
            self.sasl_mechanism,
            &self.sasl_username,
            &self.sasl_password_file,
        ) {
            (None, None, None) | (Some(_), Some(_), Some(_)) => {}
            (None, _, _) => {
                return Err(bad(
                    "sasl_mechanism",
                    "is missing: sasl_username and sasl_password_file need it (plain, \
                     scram-sha-256 or scram-sha-512)"
                        .into(),
                ));
            }
            (Some(_), None, _) => {
                return Err(bad(
                    "sasl_username",
                    "is missing (sasl_mechanism is set)".into(),
                ));
            }
            (Some(_), _, None) => {
                return Err(bad(
                    "sasl_password_file",
                    "is missing (sasl_mechanism is set): name a file whose first line is the password"
                        .into(),
                ));
            }
        }
        for (name, _) in &self.properties.0 {
            if let Some((_, why)) = OWNED_PROPERTIES.iter().find(|(p, _)| p == name) {
                return Err(bad(
                    &format!("properties.\"{name}\""),
                    format!("cannot be set here: {why}"),
                ));
            }
        }
        Ok(())
    }
}

fn default_topic() -> String {
    "th-cef".to_string()
}
fn default_key() -> Vec<String> {
    vec!["fmc".to_string(), "deviceExternalId".to_string()]
}
fn default_kafka_max() -> usize {
    1_000_000
}
fn default_queue_messages() -> usize {
    100_000
}
fn default_linger() -> Duration {
    Duration::from_millis(5)
}

#[cfg(test)]
mod tests {
    use crate::config::output::OutputConfig;

    fn parse(s: &str) -> OutputConfig {
        toml::from_str(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn problem(s: &str) -> String {
        parse(s).validate("output[1]").unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let OutputConfig::Kafka(c) = parse("transport = \"kafka\"\nbrokers = [\"th:9093\"]") else {
            panic!("kafka")
        };
        assert_eq!(c.topic, "th-cef");
        assert_eq!(c.key, ["fmc", "deviceExternalId"]);
        assert_eq!(c.format, crate::output::Format::Cef);
        assert_eq!(c.queue_messages, 100_000);
        assert!(!c.uses_tls());
        let o = parse("transport = \"kafka\"\nbrokers = [\"th:9093\"]");
        assert_eq!(o.display_name(), "kafka://th:9093/th-cef");
        o.validate("output[0]").unwrap();
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        let k = "transport = \"kafka\"\n";
        assert!(
            problem(&format!("{k}brokers = []")).starts_with("output[1].brokers is empty"),
            "{}",
            problem(&format!("{k}brokers = []"))
        );
        let e = problem(&format!("{k}brokers = [\"th\"]"));
        assert!(e.starts_with("output[1].brokers has \"th\""), "{e}");
        let e = problem(&format!("{k}brokers = [\"th:1\"]\ntopic = \"a b\""));
        assert!(
            e.starts_with("output[1].topic = \"a b\" is not a Kafka topic"),
            "{e}"
        );
        let e = problem(&format!(
            "{k}brokers = [\"th:1\"]\nproperties = {{ \"acks\" = \"1\" }}"
        ));
        assert!(
            e.starts_with("output[1].properties.\"acks\" cannot be set here: it is always \"all\""),
            "{e}"
        );
        let e = problem(&format!("{k}brokers = [\"th:1\"]\nsasl_username = \"u\""));
        assert!(e.starts_with("output[1].sasl_mechanism is missing"), "{e}");
        let e = problem(&format!("{k}brokers = [\"th:1\"]\nclient_cert = \"c.pem\""));
        assert!(e.contains("client_key go together"), "{e}");
        let e = toml::from_str::<OutputConfig>(&format!("{k}brokers = [\"th:1\"]\nhost = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `host`"), "{e}");
    }

    #[test]
    fn secret_properties_are_never_printed() {
        let o = parse(
            "transport = \"kafka\"\nbrokers = [\"th:1\"]\nproperties = { \"client.id\" = \"hq\", \
             \"sasl.oauthbearer.client.secret\" = \"hunter2\", \"ssl.keystore.password\" = \"pw2\" }",
        );
        let shown = toml::to_string(&o).unwrap();
        assert!(shown.contains("\"client.id\" = \"hq\""), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw2"),
            "{shown}"
        );
        assert_eq!(shown.matches("<redacted>").count(), 2, "{shown}");
        assert!(!format!("{o:?}").contains("hunter2"));
    }
}
