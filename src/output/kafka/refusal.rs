//! Whether a librdkafka client error means the brokers refuse this client (credentials,
//! certificates, ACLs: nothing changes until the configuration does) rather than that they are
//! down or slow (librdkafka retries), and what the user should check. Used by the output's run
//! loop and by `estreamer-cef test`.

use rdkafka::error::RDKafkaErrorCode;

/// What to check when `code`/`reason` (librdkafka's error and its words, which carry
/// OpenSSL's) say the brokers refuse this client; `None` when they do not. `key` names the
/// output in the configuration (`output[0]`).
pub fn refusal_hint(
    code: Option<RDKafkaErrorCode>,
    reason: &str,
    key: &str,
    topic: &str,
) -> Option<String> {
    let r = reason.to_ascii_lowercase();
    let alert = |names: &[&str]| names.iter().any(|a| r.contains(&format!("alert {a}")));
    let hint = match code? {
        RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => format!(
            "check {key}.sasl_mechanism, {key}.sasl_username and the password in \
             {key}.sasl_password_file against the user the brokers know"
        ),
        RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::ClusterAuthorizationFailed => {
            format!(
                "allow this client's user to write to topic {topic} (the brokers' ACLs), or \
                 use another user"
            )
        }
        _ if r.contains("certificate verify failed") => format!(
            "check {key}.server_ca: it must hold the CA that issued the brokers' certificates \
             (and with verify_hostname, their certificates must name the host in {key}.brokers)"
        ),
        _ if alert(&["certificate required"]) => format!(
            "the brokers require a client certificate: set {key}.client_cert and {key}.client_key \
             (and client_key_password_file for an encrypted key)"
        ),
        _ if alert(&[
            "unknown ca",
            "bad certificate",
            "certificate unknown",
            "certificate expired",
            "certificate revoked",
            "unsupported certificate",
        ]) =>
        {
            format!(
                "the brokers do not accept this output's client certificate: check that \
                 {key}.client_cert is valid and issued by a CA the brokers trust"
            )
        }
        _ if alert(&["handshake failure", "protocol version"]) => format!(
            "the brokers end the TLS handshake: check that they expect TLS on this port, and the \
             TLS keys of {key} (a client certificate, the TLS version)"
        ),
        RDKafkaErrorCode::SSL => format!("check the TLS keys of {key} against the brokers' setup"),
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSPORT: Option<RDKafkaErrorCode> = Some(RDKafkaErrorCode::BrokerTransportFailure);

    fn hint(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<String> {
        refusal_hint(code, reason, "output[0]", "th-cef")
    }

    #[test]
    fn tls_alerts_about_the_client_certificate_say_what_to_set() {
        // librdkafka's words when socat (OpenSSL) requires a client certificate.
        let missing = "ssl://127.0.0.1:44991/bootstrap: Receive failed: error:0A00045C:SSL \
                       routines::tlsv13 alert certificate required: SSL alert number 116";
        let h = hint(TRANSPORT, missing).unwrap();
        assert!(
            h.contains("set output[0].client_cert and output[0].client_key"),
            "{h}"
        );
        let untrusted = "ssl://b:9093/1: SSL handshake failed: error:0A000418:SSL routines::\
                         tlsv1 alert unknown ca: SSL alert number 48";
        let h = hint(Some(RDKafkaErrorCode::SSL), untrusted).unwrap();
        assert!(h.contains("a CA the brokers trust"), "{h}");
    }

    #[test]
    fn an_unverified_broker_certificate_points_at_server_ca() {
        let r = "ssl://127.0.0.1:44991/bootstrap: SSL handshake failed: error:0A000086:SSL \
                 routines::certificate verify failed: broker certificate could not be verified";
        let h = hint(Some(RDKafkaErrorCode::SSL), r).unwrap();
        assert!(h.starts_with("check output[0].server_ca"), "{h}");
    }

    #[test]
    fn sasl_and_acl_refusals_name_the_keys_and_the_topic() {
        let h = hint(
            Some(RDKafkaErrorCode::Authentication),
            "SASL SCRAM authentication failed: broker responded with invalid-proof",
        )
        .unwrap();
        assert!(h.contains("output[0].sasl_password_file"), "{h}");
        let h = hint(Some(RDKafkaErrorCode::TopicAuthorizationFailed), "").unwrap();
        assert!(h.contains("topic th-cef"), "{h}");
    }

    #[test]
    fn a_broker_that_is_down_or_slow_is_not_a_refusal() {
        let down = "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: \
                    Connection refused (after 0ms in state CONNECT)";
        assert_eq!(hint(TRANSPORT, down), None);
        assert_eq!(
            hint(
                Some(RDKafkaErrorCode::AllBrokersDown),
                "1/1 brokers are down"
            ),
            None
        );
        assert_eq!(
            hint(Some(RDKafkaErrorCode::RequestTimedOut), "timed out"),
            None
        );
        assert_eq!(hint(None, "alert certificate required"), None);
    }
}
