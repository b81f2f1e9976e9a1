//! `estreamer-cef test`: walks the way to the FMC one step at a time and says, at the first step
//! that fails, what is wrong and what to do. Each step prints one line, `[ OK ]` or `[FAIL]`
//! (`[WARN]` for a risk that does not stop us), followed on failure by indented advice, so the
//! output reads well and greps well.
//!
//! Steps: configuration, what `run` checks before it connects (outputs configured, CEF header,
//! mapping tables, state folder: [`service`]), PKCS12 password and file, server trust, DNS, TCP
//! connect, TLS handshake, the FMC's acceptance of our certificate's CN (it silently closes the
//! connection otherwise), StreamingInformation with service 6667, message header version, then
//! each output ([`outputs`]). Like eNcore's test mode the request starts at "now" (0xFFFFFFFF),
//! so no events are fetched; nothing is sent to the outputs.

mod outputs;
mod service;

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use openssl::asn1::Asn1Time;
use tokio::time::{Instant, timeout};

use crate::config::{Config, duration};
use crate::estreamer::connection::{ConnError, Connection};
use crate::estreamer::message::{
    ESTREAMER_SERVICE, ErrorBody, FrameError, NULL_MESSAGE, kind, streaming_information,
};
use crate::estreamer::request::{StartAt, describe_flags, event_stream_request, flag};
use crate::estreamer::tls::{self, HandshakeError};
use crate::net::connect::{ConnectError, connect_tcp, resolve};
use crate::net::identity::{ClientIdentity, Pkcs12Error, load_pkcs12};
use crate::net::tls::ServerTrust;
use crate::net::tls::{build_connector, session_info};
use crate::net::x509::name_to_string;

/// Runs the checks for every FMC (every peer of an HA pair), each followed by the outputs', and
/// writes the report to `out`. True when every check passed (exit code 0).
pub async fn diagnose(cfg: &Config, config_source: Option<&Path>, out: &mut dyn Write) -> bool {
    diagnose_fmcs(cfg, config_source, out).await
}

/// The checks for every FMC (every peer of an HA pair).
async fn diagnose_fmcs(cfg: &Config, config_source: Option<&Path>, out: &mut dyn Write) -> bool {
    let mut targets = Vec::new();
    for (i, fmc) in cfg.fmcs.iter().enumerate() {
        match fmc.peers() {
            Ok(peers) => {
                for p in peers {
                    targets.push((fmc.name(), cfg.narrowed(i, &p)));
                }
            }
            Err(e) => {
                let _ = writeln!(out, "[FAIL] FMC {}: {e}", fmc.name());
                return false;
            }
        }
    }
    if let [(_, one)] = targets.as_slice() {
        return diagnose_one(one, config_source, out).await;
    }
    let mut passed = 0;
    for (name, one) in &targets {
        let _ = writeln!(
            out,
            "== FMC {name} at {}:{} ==",
            one.fmc().host,
            one.fmc().port
        );
        if diagnose_one(one, config_source, out).await {
            passed += 1;
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "{passed} of {} FMC connections passed every check.",
        targets.len()
    );
    passed == targets.len()
}

/// The checks for one FMC peer (`cfg` narrowed to it, see [`Config::narrowed`]).
async fn diagnose_one(cfg: &Config, config_source: Option<&Path>, out: &mut dyn Write) -> bool {
    let mut r = Report { out };
    let passed = run_checks(cfg, config_source, &mut r).await;
    let endpoint = endpoint(&cfg.fmc().host, cfg.fmc().port);
    if passed {
        let to = match cfg.outputs.len() {
            0 => " (to the tap only)".to_string(),
            1 => " and send them to its output".to_string(),
            n => format!(" and send them to its {n} outputs"),
        };
        r.line(&format!(
            "All checks passed: this machine can stream events from the FMC at {endpoint}{to}."
        ));
    } else {
        r.line(
            "A check failed: fix what the [FAIL] line says, then run `estreamer-cef test` again.",
        );
    }
    passed
}

struct Report<'a> {
    out: &'a mut dyn Write,
}

impl Report<'_> {
    fn line(&mut self, text: &str) {
        // A closed stdout must not turn the diagnosis into a panic; there is nobody to tell.
        let _ = writeln!(self.out, "{text}");
    }

    fn ok(&mut self, step: &str, detail: &str) {
        self.line(&format!("[ OK ] {step}: {detail}"));
    }

    /// A passed step, as [`Report::ok`]; returns true, the verdict.
    fn pass(&mut self, step: &str, detail: &str) -> bool {
        self.ok(step, detail);
        true
    }

    fn warn(&mut self, step: &str, detail: &str) {
        self.line(&format!("[WARN] {step}: {detail}"));
    }

    /// A failed step: the first line of `detail` goes on the `[FAIL]` line, its other lines and
    /// the advice are indented below it. Returns false, the verdict.
    fn fail(&mut self, step: &str, detail: &str, advice: &[String]) -> bool {
        let mut lines = detail.lines();
        self.line(&format!(
            "[FAIL] {step}: {}",
            lines.next().unwrap_or_default()
        ));
        for l in lines.map(str::trim).filter(|l| !l.is_empty()) {
            self.line(&format!("       {l}"));
        }
        for a in advice {
            self.line(&format!("       → {a}"));
        }
        false
    }
}

/// `host:port` as the FMC is dialled (the one display of an FMC peer).
fn endpoint(host: &str, port: u16) -> String {
    crate::config::Peer {
        host: host.to_string(),
        port,
    }
    .to_string()
}

async fn run_checks(cfg: &Config, config_source: Option<&Path>, r: &mut Report<'_>) -> bool {
    let fmc = cfg.fmc();
    let target = endpoint(&fmc.host, fmc.port);

    // 1. Configuration (the caller has loaded it; a load error never gets here).
    match config_source {
        Some(path) => r.ok(
            "configuration",
            &format!("read {} (FMC {target})", path.display()),
        ),
        None => r.ok(
            "configuration",
            &format!(
                "no configuration file, built-in defaults and ESTREAMER_CEF_* environment (FMC {target})"
            ),
        ),
    }
    if !service::check(cfg, r) {
        return false;
    }

    // 2. The client identity.
    let step = format!("client PKCS12 {}", fmc.pkcs12.display());
    let password = match fmc.password() {
        Ok(p) => p,
        Err(e) => return r.fail(&step, &format!("cannot get its password: {e}"), &[]),
    };
    let identity = match load_pkcs12(&fmc.pkcs12, &password) {
        Ok(id) => id,
        Err(e) => {
            let advice = pkcs12_advice(&e, cfg);
            return r.fail(&step, &e.to_string(), &advice);
        }
    };
    let cn = identity.subject_cn();
    let cn_text = cn.clone().unwrap_or_else(|| "(none)".to_string());
    if expired(&identity) {
        return r.fail(
            &step,
            &format!(
                "the client certificate {} expired on {}",
                identity.subject(),
                identity.not_after()
            ),
            &[
                "create the eStreamer client again on the FMC (System > Integration > eStreamer) \
               and download the new PKCS12 file"
                    .to_string(),
            ],
        );
    }
    r.ok(
        &step,
        &format!(
            "certificate {}, issued by {}, valid until {}",
            identity.subject(),
            name_to_string(identity.cert().issuer_name()),
            identity.not_after()
        ),
    );

    // 3. How the FMC's certificate will be verified.
    let connector = match build_connector(&identity, &fmc.server_ca) {
        Ok(c) => c,
        Err(e) => {
            return r.fail(
                &format!("server trust (fmc.server_ca = \"{}\")", fmc.server_ca),
                &e.to_string(),
                &[],
            );
        }
    };
    match &fmc.server_ca {
        ServerTrust::Insecure => r.warn("server trust", tls::insecure_warning()),
        ServerTrust::Pkcs12Ca => r.ok(
            "server trust",
            &format!(
                "the FMC's certificate must chain to the {} CA certificate(s) in the PKCS12{}",
                identity.ca_certs().len(),
                if fmc.verify_hostname {
                    format!(" and name {:?}", fmc.host)
                } else {
                    " (hostname not checked)".to_string()
                }
            ),
        ),
        ServerTrust::System => r.ok(
            "server trust",
            &format!(
                "the FMC's certificate must chain to this machine's system trust store{}",
                if fmc.verify_hostname {
                    format!(" and name {:?}", fmc.host)
                } else {
                    " (hostname not checked)".to_string()
                }
            ),
        ),
        ServerTrust::PemFile(path) => r.ok(
            "server trust",
            &format!(
                "the FMC's certificate must chain to {}{}",
                path.display(),
                if fmc.verify_hostname {
                    format!(" and name {:?}", fmc.host)
                } else {
                    " (hostname not checked)".to_string()
                }
            ),
        ),
    }

    // 4. DNS.
    let bare_host = fmc
        .host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&fmc.host);
    let addrs = match timeout(fmc.connect_timeout, resolve(&fmc.host, fmc.port)).await {
        Ok(Ok(addrs)) => {
            if bare_host.parse::<IpAddr>().is_ok() {
                r.ok(
                    "DNS",
                    &format!("{} is an IP address, no lookup needed", fmc.host),
                );
            } else {
                r.ok(
                    "DNS",
                    &format!("{} resolves to {}", fmc.host, list_ips(&addrs)),
                );
            }
            addrs
        }
        Ok(Err(e)) => {
            return r.fail(
                "DNS",
                &format!("cannot resolve {:?}: {e}", fmc.host),
                &[
                    "check fmc.host for a typo".to_string(),
                    "check this machine's DNS (/etc/resolv.conf), or set fmc.host to the FMC's IP address"
                        .to_string(),
                ],
            );
        }
        Err(_) => {
            return r.fail(
                "DNS",
                &format!(
                    "no answer for {:?} within {}",
                    fmc.host,
                    duration::format(&fmc.connect_timeout)
                ),
                &[
                    "this machine's DNS servers do not answer: check /etc/resolv.conf, or set \
                   fmc.host to the FMC's IP address"
                        .to_string(),
                ],
            );
        }
    };

    // 5. TCP.
    let step = format!("TCP connect to {target}");
    let tcp = match connect_tcp(&addrs, Instant::now() + fmc.connect_timeout).await {
        Ok(tcp) => tcp,
        Err(ConnectError::Timeout) => {
            let mut advice = vec![
                format!(
                    "a firewall between this machine and the FMC drops the connection, or {} is not the FMC's address",
                    fmc.host
                ),
                format!("allow TCP port {} from this machine to the FMC", fmc.port),
            ];
            if fmc.port != 8302 {
                advice.push(format!(
                    "eStreamer listens on port 8302; fmc.port is {}",
                    fmc.port
                ));
            }
            return r.fail(
                &step,
                &format!(
                    "no answer within {}",
                    duration::format(&fmc.connect_timeout)
                ),
                &advice,
            );
        }
        Err(ConnectError::Failed { addr, error }) => {
            let advice = match error.kind() {
                io::ErrorKind::ConnectionRefused => vec![
                    format!(
                        "nothing listens on {addr}: check fmc.port (eStreamer listens on 8302; it is {})",
                        fmc.port
                    ),
                    "check that eStreamer is enabled on the FMC (System > Integration > eStreamer)"
                        .to_string(),
                    format!("check that {} is the FMC", fmc.host),
                ],
                io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                    vec!["check this machine's network routes to the FMC".to_string()]
                }
                _ => Vec::new(),
            };
            let what = match error.kind() {
                io::ErrorKind::ConnectionRefused => format!("connection refused by {addr}"),
                _ => format!("{addr}: {error}"),
            };
            return r.fail(&step, &what, &advice);
        }
    };
    let peer = tcp.peer_addr().ok();
    let local = tcp.local_addr().ok();
    r.ok(
        &step,
        &match (peer, local) {
            (Some(p), Some(l)) => format!("connected to {p} from {l}"),
            _ => "connected".to_string(),
        },
    );

    // 6. TLS.
    let step = "TLS handshake";
    let stream = match timeout(
        fmc.connect_timeout,
        tls::connect(tcp, &connector, &fmc.host, fmc.verify_hostname),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let advice = handshake_advice(&e, cfg);
            return r.fail(step, &e.to_string(), &advice);
        }
        Err(_) => {
            return r.fail(
                step,
                &format!("no answer within {}", duration::format(&fmc.connect_timeout)),
                &[format!(
                    "whatever listens on {target} does not speak TLS like an eStreamer server: check fmc.host and fmc.port"
                )],
            );
        }
    };
    r.ok(step, &session_info(stream.ssl()).to_string());

    // 7. The request; the FMC's CN check shows as a silent close.
    let flags = cfg.subscription.flags();
    let extended = flags & flag::EXTENDED != 0;
    let mut conn = Connection::new(stream);
    let cn_step = format!("the FMC accepts this client (certificate CN {cn_text})");
    let refused = |r: &mut Report<'_>, when: &str| {
        r.fail(
            &cn_step,
            &format!("the FMC closed the connection {when}, without a message"),
            &cn_advice(&cn_text, local.map(|l| l.ip())),
        )
    };
    if let Err(e) = conn.write(&event_stream_request(StartAt::Now, flags)).await {
        if let Some(h) = HandshakeError::from_stream_error(&e) {
            let advice = handshake_advice(&h, cfg);
            return r.fail("TLS handshake", &h.to_string(), &advice);
        }
        if closed(&e) {
            return refused(r, "right after the TLS handshake");
        }
        return r.fail(
            &cn_step,
            &format!("sending the EventStreamRequest failed: {e}"),
            &[],
        );
    }
    let request = format!(
        "since now (4294967295), flags {flags:#010x}: {}",
        describe_flags(flags, &cfg.subscription.events)
    );

    let deadline = Instant::now() + fmc.connect_timeout;
    let mut accepted = false;
    loop {
        let message = match tokio::time::timeout_at(deadline, conn.read_message()).await {
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) if !accepted => return refused(r, "right after our EventStreamRequest"),
            Ok(Ok(None)) => {
                return r.fail(
                    "StreamingInformation",
                    "the FMC closed the connection before sending it",
                    &[],
                );
            }
            Ok(Err(ConnError::Io(e))) => {
                if let Some(h) = HandshakeError::from_stream_error(&e) {
                    let advice = handshake_advice(&h, cfg);
                    return r.fail("TLS handshake", &h.to_string(), &advice);
                }
                if closed(&e) && !accepted {
                    return refused(r, "right after our EventStreamRequest");
                }
                return r.fail(&cn_step, &format!("reading from the FMC failed: {e}"), &[]);
            }
            Ok(Err(ConnError::ClosedMidMessage { buffered })) => {
                return r.fail(
                    "StreamingInformation",
                    &format!("the FMC closed the connection in the middle of a message ({buffered} bytes received)"),
                    &[],
                );
            }
            Ok(Err(ConnError::Frame(e))) => {
                if !accepted {
                    r.ok(&cn_step, "the FMC answered our EventStreamRequest");
                }
                return match e {
                    FrameError::BadVersion(v) => r.fail(
                        "message header version",
                        &format!("the FMC sent a message with header version {v}, not 1"),
                        &[
                            "FMC 6.1.0.3 to 6.2 builds with defect CSCve44987 send invalid header versions"
                                .to_string(),
                            "upgrade the FMC or apply Cisco's hotfix for CSCve44987".to_string(),
                        ],
                    ),
                    other => r.fail("message header", &other.to_string(), &[]),
                };
            }
            Err(_) if !extended => {
                r.ok(
                    &cn_step,
                    &format!("the connection stays open after our EventStreamRequest ({request})"),
                );
                r.ok(
                    "StreamingInformation",
                    "not used: subscription.extended is off (no events since now yet)",
                );
                break;
            }
            Err(_) => {
                if !accepted {
                    r.ok(
                        &cn_step,
                        &format!(
                            "the connection stays open after our EventStreamRequest ({request})"
                        ),
                    );
                }
                return r.fail(
                    "StreamingInformation",
                    &format!(
                        "nothing from the FMC within {} of our extended EventStreamRequest",
                        duration::format(&fmc.connect_timeout)
                    ),
                    &[
                        "the FMC should answer an extended request (flag 0x40000000) at once; check that \
                         this is an FMC's eStreamer port"
                            .to_string(),
                        "or set subscription.extended = false".to_string(),
                    ],
                );
            }
        };
        if !accepted {
            accepted = true;
            r.ok(
                &cn_step,
                &format!("the FMC answered our EventStreamRequest ({request})"),
            );
        }
        match message.kind {
            kind::STREAMING_INFORMATION => {
                let services: Vec<u32> = streaming_information(&message.body)
                    .iter()
                    .map(|s| s.service_id)
                    .collect();
                let listed = services
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                if !services.contains(&ESTREAMER_SERVICE) {
                    return r.fail(
                        "StreamingInformation",
                        &format!(
                            "the FMC does not offer the eStreamer service 6667 (it offers: {})",
                            if listed.is_empty() { "nothing" } else { &listed }
                        ),
                        &[
                            "the FMC cannot stream events to an extended request: check its eStreamer \
                             settings (System > Integration > eStreamer)"
                                .to_string(),
                            "or set subscription.extended = false".to_string(),
                        ],
                    );
                }
                r.ok(
                    "StreamingInformation",
                    &format!("the FMC offers service 6667 (services {listed})"),
                );
                break;
            }
            kind::ERROR => {
                let e = ErrorBody::parse(&message.body);
                let (code, text) = e
                    .map(|e| (e.code, e.text))
                    .unwrap_or((-1, "(unreadable error message)".to_string()));
                return r.fail(
                    "EventStreamRequest",
                    &format!("the FMC answered with error {code}: {text}"),
                    &[
                        "check the [subscription] settings against what this FMC version supports"
                            .to_string(),
                    ],
                );
            }
            kind::NULL => {
                let _ = conn.write(&NULL_MESSAGE).await;
            }
            kind::EVENT_DATA | kind::MESSAGE_BUNDLE if !extended => {
                r.ok(
                    "StreamingInformation",
                    "not used: subscription.extended is off",
                );
                break;
            }
            other => {
                return r.fail(
                    "StreamingInformation",
                    &format!(
                        "the FMC sent a {} message (type {other}) instead",
                        kind::name(other)
                    ),
                    &[],
                );
            }
        }
    }
    r.ok("message header version", "1, as it must be");
    let _ = timeout(std::time::Duration::from_millis(500), conn.shutdown()).await;
    outputs::check(cfg, r).await
}

fn list_ips(addrs: &[SocketAddr]) -> String {
    let mut ips: Vec<String> = Vec::new();
    for a in addrs {
        let ip = a.ip().to_string();
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips.join(", ")
}

fn closed(e: &io::Error) -> bool {
    crate::estreamer::session::closed_by_peer(e)
}

fn expired(id: &ClientIdentity) -> bool {
    Asn1Time::days_from_now(0)
        .ok()
        .and_then(|now| id.cert().not_after().compare(&now).ok())
        .is_some_and(|o| o == std::cmp::Ordering::Less)
}

/// Where the password and the file come from, for the PKCS12 failures.
fn pkcs12_advice(e: &Pkcs12Error, cfg: &Config) -> Vec<String> {
    match e {
        Pkcs12Error::WrongPassword { .. } => {
            let from = if cfg.fmc().pkcs12_password.is_some() {
                "fmc.pkcs12_password (or ESTREAMER_CEF_FMC__PKCS12_PASSWORD)".to_string()
            } else if let Some(f) = &cfg.fmc().pkcs12_password_file {
                format!(
                    "the password file {} (fmc.pkcs12_password_file)",
                    f.display()
                )
            } else {
                "nowhere: neither fmc.pkcs12_password_file nor fmc.pkcs12_password is set, so the \
                 password is empty"
                    .to_string()
            };
            vec![format!("the password was taken from {from}")]
        }
        Pkcs12Error::Read { .. } => {
            vec!["set fmc.pkcs12 to the PKCS12 file the FMC issued".to_string()]
        }
        _ => Vec::new(),
    }
}

fn handshake_advice(e: &HandshakeError, cfg: &Config) -> Vec<String> {
    match e {
        HandshakeError::ServerNotTrusted { .. } => vec![format!(
            "fmc.server_ca is \"{}\": set it to a PEM file with the CA that signed the FMC's \
             certificate (or the FMC's own certificate), or \"pkcs12\" to use the CA certificates \
             in the client PKCS12",
            cfg.fmc().server_ca
        )],
        HandshakeError::HostnameMismatch { names_in_cert, .. } => {
            let names = if names_in_cert.is_empty() {
                "(none)".to_string()
            } else {
                names_in_cert.join(", ")
            };
            vec![
                format!("the FMC's certificate names: {names}"),
                format!(
                    "set fmc.host to one of those names, or set fmc.verify_hostname = false (the \
                     certificate chain is still verified, fmc.server_ca = \"{}\")",
                    cfg.fmc().server_ca
                ),
            ]
        }
        HandshakeError::ClientCertRejected { .. } => vec![format!(
            "check that fmc.pkcs12 ({}) is the file this FMC issued; if it is, create the client \
             again on the FMC and use the new file",
            cfg.fmc().pkcs12.display()
        )],
        _ => Vec::new(),
    }
}

fn cn_advice(cn: &str, local: Option<IpAddr>) -> Vec<String> {
    let mut advice = vec![format!(
        "the FMC compares the client certificate's Common Name ({cn}) with the address it sees \
         this connection come from, and hangs up when they differ"
    )];
    if let Some(ip) = local {
        advice.push(format!(
            "this machine connected from {ip}; behind NAT the FMC sees the translated address \
             instead"
        ));
    }
    advice.push(
        "the certificate must be issued for the address the FMC sees: create the eStreamer client \
         again on the FMC (System > Integration > eStreamer) for that address (a DNS name must \
         resolve to it on the FMC)"
            .to_string(),
    );
    advice.push(
        "the FMC's log says \"does not match remote host\" when this is the cause".to_string(),
    );
    advice
}
