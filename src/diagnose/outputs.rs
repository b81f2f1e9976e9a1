//! Each `[[output]]`, checked as far as it can be without sending an event: its settings as `run`
//! validates them, then per transport the steps its connection takes (name lookup, TCP connect,
//! TLS handshake with the receiver's certificate) or the file it appends to. One arm per
//! transport in [`check_one`]: a new transport adds its arm there.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::{Report, list_ips};
use crate::config::output::{KafkaConfig, OutputConfig};
use crate::config::{Config, duration};
use crate::net::connect::{ConnectError, connect_tcp, resolve};
use crate::net::tls::session_info;
use crate::output::kafka::probe::{self, Probe};
use crate::output::tls::{TlsSetup, describe_handshake_error};

/// A UDP output has no connect timeout of its own; a name lookup that takes longer is broken.
const UDP_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Every output in order; stops at the first failure. True when all passed.
pub(super) async fn check(cfg: &Config, r: &mut Report<'_>) -> bool {
    for (i, o) in cfg.outputs.iter().enumerate() {
        if !check_one(i, o, r).await {
            return false;
        }
    }
    true
}

async fn check_one(i: usize, o: &OutputConfig, r: &mut Report<'_>) -> bool {
    let key = format!("output[{i}]");
    let step = format!("{key} {}", o.display_name());
    if let Err(e) = o.validate(&key) {
        return r.fail(&step, &e.to_string(), &[]);
    }
    match o {
        OutputConfig::Udp(c) => {
            let Some(addrs) = lookup(&step, &c.host, c.port, UDP_LOOKUP_TIMEOUT, r).await else {
                return false;
            };
            r.pass(
                &step,
                &format!(
                    "UDP to {}: sent without a connection, so nothing more can be checked here; \
                     watch the receiver for the events",
                    list_ips(&addrs)
                ),
            )
        }
        OutputConfig::Tcp(c) => {
            let within = o
                .stream_keys()
                .map_or(UDP_LOOKUP_TIMEOUT, |k| k.connect_timeout);
            tcp(&step, &c.host, c.port, within, r).await.is_some()
        }
        OutputConfig::Tls(c) => {
            let within = o
                .stream_keys()
                .map_or(UDP_LOOKUP_TIMEOUT, |k| k.connect_timeout);
            // Certificates, CA and password first: `run` loads them before it connects.
            let setup = match TlsSetup::new(c, &key) {
                Ok(s) => s,
                Err(e) => return r.fail(&step, &e.to_string(), &[]),
            };
            let Some(stream) = tcp(&step, &c.host, c.port, within, r).await else {
                return false;
            };
            handshake(&step, stream, &setup, within, r).await
        }
        OutputConfig::File(c) => file(&step, &c.path, r),
        OutputConfig::Stdout(_) => r.pass(&step, "standard output, nothing to check"),
        OutputConfig::Kafka(c) => kafka(&step, &key, c, r).await,
    }
}

/// How long the brokers have to answer the metadata request.
const KAFKA_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Do the brokers answer, and does the topic exist? (librdkafka's metadata request, on a
/// blocking thread: librdkafka's calls block.)
async fn kafka(step: &str, key: &str, c: &KafkaConfig, r: &mut Report<'_>) -> bool {
    let (c2, k2) = (c.clone(), key.to_string());
    let probe =
        tokio::task::spawn_blocking(move || probe::probe(&c2, &k2, KAFKA_PROBE_TIMEOUT)).await;
    let brokers = c.brokers.join(", ");
    let brokers_step = format!("{step}: brokers");
    match probe {
        Err(e) => r.fail(&brokers_step, &format!("the check itself failed: {e}"), &[]),
        Ok(Err(e)) => r.fail(
            step,
            &e.to_string(),
            &["fix the key named above".to_string()],
        ),
        Ok(Ok(Probe::NoAnswer(why))) => r.fail(
            &brokers_step,
            &format!(
                "no broker of {brokers} answered within {} ({why})",
                duration::format(&KAFKA_PROBE_TIMEOUT)
            ),
            &[
                format!(
                    "check {key}.brokers: host:port of the brokers' Kafka listener \
                     (Transformation Hub: port 9093 with TLS, 9092 without)"
                ),
                "check that the brokers run and that a firewall lets this machine reach them"
                    .to_string(),
                format!(
                    "with TLS or SASL, check {key}.tls, server_ca, client_cert and sasl_* (the \
                     brokers' logs say why they closed the connection)"
                ),
            ],
        ),
        Ok(Ok(Probe::Refused { reason, hint })) => r.fail(
            &brokers_step,
            &format!("the brokers of {brokers} refuse this client ({reason})"),
            &[hint],
        ),
        Ok(Ok(Probe::Answered {
            brokers: found,
            partitions,
        })) => {
            r.ok(
                &brokers_step,
                &format!(
                    "{brokers} answered; the cluster has {} broker(s): {}",
                    found.len(),
                    found.join(", ")
                ),
            );
            match partitions {
                Some(n) => r.pass(
                    &format!("{step}: topic"),
                    &format!("{} exists with {n} partition(s)", c.topic),
                ),
                None => r.fail(
                    &format!("{step}: topic"),
                    &format!(
                        "{} does not exist on the cluster (or this client may not see it)",
                        c.topic
                    ),
                    &[
                        format!(
                            "create it, e.g. `kafka-topics.sh --bootstrap-server {} --create \
                             --topic {} --partitions 6`, or set {key}.topic to an existing topic",
                            c.brokers[0], c.topic
                        ),
                        "with ACLs: allow this client's user to describe and write the topic"
                            .to_string(),
                    ],
                ),
            }
        }
    }
}

/// The name lookup, with a `[FAIL]` line when it fails.
async fn lookup(
    step: &str,
    host: &str,
    port: u16,
    within: Duration,
    r: &mut Report<'_>,
) -> Option<Vec<SocketAddr>> {
    match timeout(within, resolve(host, port)).await {
        Ok(Ok(a)) => Some(a),
        Ok(Err(e)) => {
            r.fail(
                &format!("{step}: DNS"),
                &format!("cannot resolve {host:?}: {e}"),
                &[
                    "check the output's host for a typo".to_string(),
                    "check this machine's DNS (/etc/resolv.conf), or use the receiver's IP address"
                        .to_string(),
                ],
            );
            None
        }
        Err(_) => {
            r.fail(
                &format!("{step}: DNS"),
                &format!(
                    "no answer for {host:?} within {}",
                    duration::format(&within)
                ),
                &["check /etc/resolv.conf, or use the receiver's IP address".to_string()],
            );
            None
        }
    }
}

/// Name lookup and TCP connect, one line each.
async fn tcp(
    step: &str,
    host: &str,
    port: u16,
    within: Duration,
    r: &mut Report<'_>,
) -> Option<TcpStream> {
    let addrs = lookup(step, host, port, within, r).await?;
    if host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_err()
    {
        r.pass(
            &format!("{step}: DNS"),
            &format!("{host} resolves to {}", list_ips(&addrs)),
        );
    }
    let tcp_step = format!("{step}: TCP connect");
    match connect_tcp(&addrs, Instant::now() + within).await {
        Ok(s) => {
            let peer = s
                .peer_addr()
                .map_or_else(|_| "the receiver".to_string(), |p| p.to_string());
            r.pass(&tcp_step, &format!("connected to {peer}"));
            Some(s)
        }
        Err(ConnectError::Timeout) => {
            r.fail(
                &tcp_step,
                &format!("no answer within {}", duration::format(&within)),
                &[format!(
                    "a firewall drops the connection, or nothing is at {host}: allow TCP port \
                     {port} from this machine to the receiver"
                )],
            );
            None
        }
        Err(ConnectError::Failed { addr, error }) => {
            let advice = match error.kind() {
                std::io::ErrorKind::ConnectionRefused => vec![format!(
                    "nothing listens on {addr}: start the receiver, or check the output's port \
                     (syslog: 514 for tcp, 6514 for tls)"
                )],
                _ => vec!["check this machine's network routes to the receiver".to_string()],
            };
            r.fail(&tcp_step, &format!("{addr}: {error}"), &advice);
            None
        }
    }
}

/// The TLS handshake as `run` makes it, and the receiver's certificate.
async fn handshake(
    step: &str,
    tcp: TcpStream,
    setup: &TlsSetup,
    within: Duration,
    r: &mut Report<'_>,
) -> bool {
    let step = format!("{step}: TLS handshake");
    let ssl = match setup.session() {
        Ok(s) => s,
        Err(e) => return r.fail(&step, &format!("cannot start a TLS session: {e}"), &[]),
    };
    let mut s = match tokio_openssl::SslStream::new(ssl, tcp) {
        Ok(s) => s,
        Err(e) => return r.fail(&step, &format!("cannot start a TLS session: {e}"), &[]),
    };
    match timeout(within, Pin::new(&mut s).connect()).await {
        Ok(Ok(())) => {
            let info = session_info(s.ssl()).to_string();
            let expires = s
                .ssl()
                .peer_certificate()
                .map(|c| format!(", certificate valid until {}", c.not_after()))
                .unwrap_or_default();
            let _ = timeout(
                Duration::from_millis(500),
                tokio::io::AsyncWriteExt::shutdown(&mut s),
            )
            .await;
            r.pass(&step, &format!("{info}; {}{expires}", setup.verification))
        }
        Ok(Err(e)) => {
            let what = describe_handshake_error(Some(s.ssl()), &e, setup);
            r.fail(&step, &what, &[])
        }
        Err(_) => r.fail(
            &step,
            &format!("not finished within {}", duration::format(&within)),
            &[
                "whatever listens there does not speak TLS: check the output's port, or use \
               transport = \"tcp\""
                    .to_string(),
            ],
        ),
    }
}

/// `run` appends to the file and creates it (not its folder) when missing. Checked without
/// creating or changing anything: the file opened for appending, or a probe file in its folder.
fn file(step: &str, path: &Path, r: &mut Report<'_>) -> bool {
    let uid = unsafe { libc::geteuid() };
    let advice = || {
        vec![format!(
            "let the service user write it: `sudo chown estreamer-cef: {}` (or its folder), or \
             set the output's path to a folder it may write",
            path.display()
        )]
    };
    if path.exists() {
        return match std::fs::OpenOptions::new().append(true).open(path) {
            Ok(_) => r.pass(
                step,
                &format!("{} is writable (checked as uid {uid})", path.display()),
            ),
            Err(e) => r.fail(
                step,
                &format!(
                    "cannot open {} for appending as uid {uid}: {e}",
                    path.display()
                ),
                &advice(),
            ),
        };
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return r.fail(
            step,
            &format!("the folder {} does not exist", dir.display()),
            &[format!(
                "create it: `sudo install -d -o estreamer-cef {}`",
                dir.display()
            )],
        );
    }
    let probe = dir.join(format!(".estreamer-cef-test-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            r.pass(
                step,
                &format!(
                    "{} does not exist yet; `run` can create it (checked as uid {uid})",
                    path.display()
                ),
            )
        }
        Err(e) => r.fail(
            step,
            &format!("cannot create files in {} as uid {uid}: {e}", dir.display()),
            &advice(),
        ),
    }
}
