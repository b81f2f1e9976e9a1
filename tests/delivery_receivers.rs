//! End to end through real receivers: `estreamer-cef simulate` (a separate process, the simulated
//! FMC) → `estreamer-cef run` (the real binary, a configuration file) → syslog-ng over UDP, TCP
//! with LF framing, TCP with octet counting and TLS with octet counting, all four at once. Every
//! record the simulator sent must arrive once on every transport, byte for byte the CEF line
//! `estreamer-cef decode --cef` makes of the same byte stream, with every extension key intact as
//! cefp parses it. And UDP with a 600-byte cap: every datagram fits, is still valid CEF and the
//! truncations are counted.
//!
//! Needs syslog-ng-core, syslog-ng-mod-python (apt) and cefp 0.0.2 (pip), see
//! tests/install-deps.sh.

#[path = "support/cef_parsers.rs"]
mod cef_parsers;
mod delivery_support;
#[path = "support/syslog_ng.rs"]
mod syslog_ng;

use std::collections::{BTreeMap, HashMap};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cef_parsers::{ParsedCef, Parser};
use delivery_support::*;
use estreamer_cef_sim::pki::PkiFiles;
use syslog_ng::{SyslogNg, free_port};

/// UDP has no flow control: a receiver whose socket buffer overflows (syslog-ng's default is the
/// kernel's, about 200 KiB, and it parses every message in Python) loses datagrams. The
/// simulated FMC therefore streams at a pace receivers keep up with: 150 records a second in
/// messages of 10.
const UDP_PACE: &[&str] = &["--rate", "150", "--bundle-size", "10"];

/// A simulated FMC run as `estreamer-cef-sim simulate`, with its PKI and the byte stream of what it
/// serves (`simulate --record`).
struct SimProcess {
    /// Killed when dropped.
    _process: Forwarder,
    port: u16,
    pki: PkiFiles,
    stream: PathBuf,
}

impl SimProcess {
    fn start(dir: &Path, extra: &[&str]) -> SimProcess {
        let pki_dir = dir.join("pki");
        let out = Command::new(sim_bin())
            .args(["simulate", "--init"])
            .arg(&pki_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "simulate --init: {out:?}");
        let stream = dir.join("stream.bin");
        let mut rec = vec!["simulate", "--record", stream.to_str().unwrap()];
        rec.extend_from_slice(extra);
        let out = Command::new(sim_bin()).args(&rec).output().unwrap();
        assert!(out.status.success(), "simulate --record: {out:?}");
        let log = dir.join("simulator.log");
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            let mut args = vec![
                "simulate",
                "--pki",
                pki_dir.to_str().unwrap(),
                "--listen",
                &listen,
            ];
            args.extend_from_slice(extra);
            let mut fwd = Forwarder::start_simulator(&args, &log);
            let listening = eventually(SOON, || {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains(&format!("listening on {listen}"))
                    || !fwd.is_running()
            });
            if listening && fwd.is_running() {
                return SimProcess {
                    _process: fwd,
                    port,
                    pki: PkiFiles::in_dir(&pki_dir),
                    stream,
                };
            }
            last = fwd.log_text();
        }
        panic!("the simulator did not start:\n{last}");
    }
}

/// The records follow from the seed alone: `simulate --record` in one process writes what the
/// simulator of another process serves (the tests below compare with it).
#[test]
fn generated_records_are_the_same_in_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let f = dir.path().join(format!("stream{i}.bin"));
            let out = Command::new(sim_bin())
                .args(["simulate", "--record"])
                .arg(&f)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            std::fs::read(&f).unwrap()
        })
        .collect();
    assert!(
        files[1] == files[0] && files[2] == files[0],
        "simulate --record wrote different streams for the same seed"
    );
}

#[test]
fn every_record_arrives_once_on_every_transport_with_every_key_intact() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(dir.path(), UDP_PACE);
    let receiver = SyslogNg::start();

    let mut setup = Setup::new(&sim.pki, sim.port, dir.path().join("state"));
    setup.start = "genesis";
    setup.outputs = vec![
        format!(
            "transport = \"udp\"\nhost = \"127.0.0.1\"\nport = {}\nhostname = \"fwd.test\"\nmax_message_bytes = 65000",
            receiver.udp_port
        ),
        stream_output("tcp", receiver.lf_port, "lf", ""),
        stream_output("tcp", receiver.tcp_port, "octet-counting", ""),
        stream_output(
            "tls",
            receiver.tls_port,
            "octet-counting",
            &format!("server_ca = {:?}", receiver.ca_pem.display().to_string()),
        ),
    ];
    setup.monitor_listen = Some(format!("127.0.0.1:{}", free_port()));
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));

    let expected = decode_cef(&config, &sim.stream);
    assert!(
        expected.len() >= 4,
        "the simulated stream maps to CEF lines: {}",
        expected.len()
    );
    let mut fwd = Forwarder::run(&config, &[], &dir.path().join("forwarder.log"));
    let total = expected.len() * 4;
    let arrived_all = wait_received(receiver.dir(), total, SOON);
    // Anything beyond the expected count would be a duplicate: give it time to show up.
    let n = wait_received_quiet(receiver.dir(), Duration::from_secs(2), SOON);
    let metrics = scrape(setup.monitor_listen.as_deref().unwrap()).unwrap();
    let status = fwd.terminate(SOON);
    if !(arrived_all && n == total) {
        let mut per: BTreeMap<String, usize> = BTreeMap::new();
        for a in arrived(receiver.dir()) {
            *per.entry(a.listener).or_default() += 1;
        }
        panic!(
            "{n} messages arrived, {total} expected (4 transports × {}): {per:?}\n\
             forwarder log:\n{}\nsyslog-ng log:\n{}\nmetrics:\n{}",
            expected.len(),
            tail(&fwd.log_text(), 20),
            tail(&receiver.log_text(), 20),
            metrics
                .lines()
                .filter(|l| l.starts_with("estreamer_cef_output"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(status.success(), "exit status {status}");

    eprintln!(
        "{} CEF lines expected per transport, {} messages arrived in all",
        expected.len(),
        n
    );
    let arrivals = arrived(receiver.dir());
    let mut by_listener: BTreeMap<String, Vec<&Arrived>> = BTreeMap::new();
    for a in &arrivals {
        by_listener.entry(a.listener.clone()).or_default().push(a);
    }
    assert_eq!(
        by_listener.keys().collect::<Vec<_>>(),
        ["s_lf", "s_tcp", "s_tls", "s_udp"],
        "one stream of messages per transport"
    );
    // What cefp makes of each expected line.
    let expected_lines: Vec<&str> = expected.iter().map(|e| e.line.as_str()).collect();
    let parsed: HashMap<&str, ParsedCef> = expected_lines
        .iter()
        .zip(Parser::Cefp.parse(&expected_lines))
        .map(|(l, p)| (*l, p.unwrap_or_else(|e| panic!("cefp rejects {l}: {e}"))))
        .collect();
    for (listener, got) in &by_listener {
        let msgs: Vec<String> = got.iter().map(|a| a.msg.clone()).collect();
        let (missing, extra) = compare(&expected, &msgs);
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{listener}: {} expected lines missing, {} unexpected; first missing: {:?}; first unexpected: {:?}",
            missing.len(),
            extra.len(),
            missing.first(),
            extra.first()
        );
        for a in got {
            let r = &a.record;
            assert!(r["cef"]["error"].is_null(), "{listener}: cefp rejected {r}");
            let want = &parsed[a.msg.as_str()];
            assert_eq!(
                ext_map(r),
                want.extension,
                "{listener}: the extension cefp parsed at the receiver differs from the mapped one"
            );
            assert_eq!(r["cef"]["name"].as_str(), Some(want.name.as_str()));
            assert_eq!(r["cef"]["class_id"].as_str(), Some(want.class_id.as_str()));
            assert_eq!(r["cef"]["severity"].as_str(), Some(want.severity.as_str()));
            assert_eq!(r["syslog"]["host"], "fwd.test", "{listener}: {r}");
            assert_eq!(r["syslog"]["app"], "estreamer-cef", "{listener}: {r}");
        }
    }
    // Nothing was truncated, dropped or sent twice on the way.
    for m in [
        "estreamer_cef_output_truncated_total",
        "estreamer_cef_output_dropped_total",
        "estreamer_cef_output_resent_total",
    ] {
        for line in metrics.lines().filter(|l| l.starts_with(m)) {
            assert!(line.ends_with(" 0"), "{line}");
        }
    }
    drop(sim);
}

/// The `cef.ext` object of a syslog-ng record.
fn ext_map(record: &serde_json::Value) -> BTreeMap<String, String> {
    record["cef"]["ext"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn udp_datagrams_never_exceed_600_bytes_and_stay_valid_cef() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(dir.path(), UDP_PACE);
    let capture = UdpSocket::bind("127.0.0.1:0").unwrap();
    capture
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let _ = set_recv_buffer(&capture, 8 << 20);
    let port = capture.local_addr().unwrap().port();

    let mut setup = Setup::new(&sim.pki, sim.port, dir.path().join("state"));
    setup.start = "genesis";
    setup.outputs = vec![format!(
        "transport = \"udp\"\nhost = \"127.0.0.1\"\nport = {port}\nhostname = \"fwd.test\"\nmax_message_bytes = 600"
    )];
    setup.monitor_listen = Some(format!("127.0.0.1:{}", free_port()));
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    let expected = decode_cef(&config, &sim.stream);
    let long = expected.iter().filter(|e| e.line.len() > 600).count();
    assert!(long > 0, "some lines are longer than 600 bytes");

    let mut fwd = Forwarder::run(&config, &[], &dir.path().join("forwarder.log"));
    let mut datagrams: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 65536];
    let metrics_addr = setup.monitor_listen.clone().unwrap();
    let deadline = Instant::now() + SOON;
    let mut dropped = 0usize;
    loop {
        match capture.recv(&mut buf) {
            Ok(n) => datagrams.push(buf[..n].to_vec()),
            Err(_) => {
                // Quiet for a moment: is everything accounted for?
                if let Ok(m) = scrape(&metrics_addr) {
                    dropped = metric(&m, &format!("estreamer_cef_output_dropped_total{{output=\"udp://127.0.0.1:{port}\"}}"))
                        .unwrap_or(0.0) as usize;
                }
                if datagrams.len() + dropped >= expected.len() || Instant::now() > deadline {
                    break;
                }
            }
        }
    }
    let metrics = scrape(&metrics_addr).unwrap();
    fwd.terminate(SOON);
    assert_eq!(
        datagrams.len() + dropped,
        expected.len(),
        "every event is either sent or dropped as unable to fit (and counted); log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    let too_big: Vec<usize> = datagrams
        .iter()
        .map(|d| d.len())
        .filter(|&n| n > 600)
        .collect();
    assert!(too_big.is_empty(), "datagrams over 600 bytes: {too_big:?}");

    // Split each datagram into its RFC 5424 header and the CEF line.
    let mut cef_lines = Vec::new();
    for d in &datagrams {
        let text = std::str::from_utf8(d).expect("a datagram is UTF-8 (no character was cut)");
        let parsed = syslog_loose::parse_message(text, syslog_loose::Variant::RFC5424);
        assert_eq!(parsed.hostname, Some("fwd.test"), "{text}");
        assert_eq!(parsed.appname, Some("estreamer-cef"), "{text}");
        let cef = text
            .find("CEF:")
            .map(|i| &text[i..])
            .unwrap_or_else(|| panic!("no CEF in {text}"));
        cef_lines.push(cef.to_string());
    }
    let by_cefp = Parser::Cefp.parse(&cef_lines);
    let expected_lines: Vec<&str> = expected.iter().map(|e| e.line.as_str()).collect();
    let want: Vec<ParsedCef> = Parser::Cefp
        .parse(&expected_lines)
        .into_iter()
        .map(|p| p.unwrap())
        .collect();
    // Each datagram is an expected line, or a shortened one: same header, same keys, every value
    // a prefix of the original. Match greedily (lines are distinct enough for that).
    let mut unused: Vec<usize> = (0..want.len()).collect();
    let mut shortened = 0;
    for (i, p) in by_cefp.into_iter().enumerate() {
        let p = p.unwrap_or_else(|e| panic!("cefp rejects datagram {i} ({e}): {}", cef_lines[i]));
        let exact = unused
            .iter()
            .position(|&k| expected_lines[k] == cef_lines[i]);
        let pos = exact.or_else(|| unused.iter().position(|&k| is_shortened(&p, &want[k])));
        if pos.is_none() {
            for &k in &unused {
                let o = &want[k];
                if o.class_id == p.class_id && o.name == p.name {
                    let bad: Vec<_> = p
                        .extension
                        .iter()
                        .filter(|(kk, v)| {
                            !o.extension
                                .get(*kk)
                                .is_some_and(|ov| ov.starts_with(v.as_str()))
                        })
                        .collect();
                    let missing: Vec<_> = o
                        .extension
                        .keys()
                        .filter(|kk| !p.extension.contains_key(*kk))
                        .collect();
                    eprintln!(
                        "DBG candidate {k}: bad {bad:?} missing {missing:?}\n  {}",
                        expected_lines[k]
                    );
                }
            }
        }
        let pos = pos.unwrap_or_else(|| {
            panic!(
                "datagram {i} is neither an expected line nor a shortened one: {}",
                cef_lines[i]
            )
        });
        if exact.is_none() {
            shortened += 1;
        }
        unused.remove(pos);
    }
    eprintln!(
        "{} events: {} datagrams ({shortened} shortened), {dropped} dropped as unable to fit",
        expected.len(),
        datagrams.len()
    );
    assert!(shortened > 0, "some lines had to be shortened");
    let counted = metric(
        &metrics,
        &format!("estreamer_cef_output_truncated_total{{output=\"udp://127.0.0.1:{port}\"}}"),
    )
    .unwrap() as usize;
    assert_eq!(counted, shortened, "every truncation is counted");
}

/// Same header and keys, every value a prefix of the original's.
fn is_shortened(got: &ParsedCef, orig: &ParsedCef) -> bool {
    got.class_id == orig.class_id
        && got.name == orig.name
        && got.severity == orig.severity
        && got.extension.len() == orig.extension.len()
        && got.extension.iter().all(|(k, v)| {
            orig.extension
                .get(k)
                .is_some_and(|o| o.starts_with(v.as_str()))
        })
}

fn set_recv_buffer(sock: &UdpSocket, bytes: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on our own socket with a valid int.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &bytes as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
