//! The librdkafka configuration of a `kafka` output, from its keys: brokers, TLS, SASL, the
//! pass-through properties, and the fixed settings that make the delivery promise. Shared by
//! the output and by `estreamer-cef test`.

use std::path::Path;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext;

use crate::config::output::{KafkaConfig, Properties};
use crate::net::password::read_password_file;
use crate::output::error::SyslogError;

/// Connection settings (brokers, TLS, SASL, pass-through). `key` names the output in errors
/// (`output[1]`). Files named by the keys are checked here, so that a wrong path is reported
/// with its key instead of by librdkafka at the first connection.
pub fn connection(c: &KafkaConfig, key: &str) -> Result<ClientConfig, SyslogError> {
    let mut cc = ClientConfig::new();
    for (name, value) in &c.properties.0 {
        cc.set(name, value);
    }
    cc.set("bootstrap.servers", c.brokers.join(","));
    if !c.properties.0.contains_key("client.id") {
        cc.set("client.id", "estreamer-cef");
    }
    let protocol = match (c.uses_tls(), c.sasl_mechanism.is_some()) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    cc.set("security.protocol", protocol);
    if c.uses_tls() {
        if let Some(ca) = &c.server_ca {
            readable(ca, &format!("{key}.server_ca"))?;
            cc.set("ssl.ca.location", ca.to_string_lossy());
        }
        cc.set(
            "ssl.endpoint.identification.algorithm",
            if c.verify_hostname { "https" } else { "none" },
        );
        if let (Some(cert), Some(k)) = (&c.client_cert, &c.client_key) {
            readable(cert, &format!("{key}.client_cert"))?;
            readable(k, &format!("{key}.client_key"))?;
            cc.set("ssl.certificate.location", cert.to_string_lossy());
            cc.set("ssl.key.location", k.to_string_lossy());
        }
        if let Some(f) = &c.client_key_password_file {
            let p = password(f, &format!("{key}.client_key_password_file"))?;
            cc.set("ssl.key.password", p);
        }
    }
    if let (Some(m), Some(user), Some(f)) =
        (c.sasl_mechanism, &c.sasl_username, &c.sasl_password_file)
    {
        cc.set("sasl.mechanism", m.name());
        cc.set("sasl.username", user);
        cc.set(
            "sasl.password",
            password(f, &format!("{key}.sasl_password_file"))?,
        );
    }
    Ok(cc)
}

/// [`connection`] plus the producer settings: idempotent, `acks=all`, no message timeout (a
/// broker outage holds messages back instead of failing them), the bounded queue, compression.
pub fn producer(c: &KafkaConfig, key: &str) -> Result<ClientConfig, SyslogError> {
    let mut cc = connection(c, key)?;
    cc.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "0")
        .set("queue.buffering.max.messages", c.queue_messages.to_string())
        // The message count is the limit that matters; the byte limit (librdkafka's default is
        // 1 GiB) must not hold back a queue of large messages first.
        .set("queue.buffering.max.kbytes", "2147483647")
        .set("linger.ms", c.linger.as_millis().to_string())
        .set("compression.codec", c.compression.codec());
    // A message up to `max_message_bytes` plus its key and record overhead must pass
    // librdkafka's own request size check; the brokers have the last word.
    if !c.properties.0.contains_key("message.max.bytes") {
        let request = (c.max_message_bytes + 64 * 1024).clamp(1_000_000, 1_000_000_000);
        cc.set("message.max.bytes", request.to_string());
    }
    Ok(cc)
}

/// A librdkafka client (producer) from `cc` with `context`; a property librdkafka refuses is an
/// error naming `key`'s `properties`, with secret values redacted.
pub fn create<T, C>(cc: &ClientConfig, context: C, key: &str) -> Result<T, SyslogError>
where
    C: ClientContext,
    T: FromClientConfigAndContext<C>,
{
    cc.create_with_context(context)
        .map_err(|e| SyslogError::Config {
            key: format!("{key}.properties"),
            problem: format!(
                "are refused by librdkafka: {}; check the property names and values against \
                 librdkafka's CONFIGURATION.md",
                redact(&e.to_string(), cc)
            ),
        })
}

fn readable(path: &Path, key: &str) -> Result<(), SyslogError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| SyslogError::file(key, "read", path, e))
}

fn password(path: &Path, key: &str) -> Result<String, SyslogError> {
    read_password_file(path, key)
        .map(|s| s.expose().to_string())
        .map_err(|e| SyslogError::Config {
            key: e.key.clone(),
            problem: e.problem(),
        })
}

/// librdkafka's message about `cc` with the values of secret properties (passwords, secrets,
/// inline keys) replaced: its configuration errors quote the value they refuse.
pub fn redact(message: &str, cc: &ClientConfig) -> String {
    let mut out = message.to_string();
    // (`config_map` gives the names; its values of a few known secrets are placeholders.)
    for name in cc.config_map().keys() {
        let secret = Properties::is_secret(name) || name.ends_with("password");
        if let (true, Some(value)) = (secret, cc.get(name))
            && !value.is_empty()
        {
            out = out.replace(value, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_do_not_quote_secrets() {
        let mut cc = ClientConfig::new();
        cc.set("sasl.password", "pw-1").set("client.id", "hq");
        cc.set("sasl.oauthbearer.client.secret", "hunter2");
        let Err(e) = cc.create::<rdkafka::producer::BaseProducer>() else {
            panic!("librdkafka accepted an OAuth property in a build without libcurl");
        };
        let said = redact(&e.to_string(), &cc);
        assert!(
            !said.contains("hunter2") && !said.contains("pw-1"),
            "{said}"
        );
        assert!(said.contains("sasl.oauthbearer.client.secret"), "{said}");
    }
}
