//! What an operator sees, with the real binary: `--tap-file` in both formats (the exact bytes an
//! output sends, and per record the decoded fields, the CEF line and the warnings: a value cut to
//! fit a length-limited key, a name sent as its id because its metadata is missing), and the
//! monitor (one status line every `monitor.period`, the same counters at `GET /metrics`).

mod delivery_support;
mod sim_support;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::thread::JoinHandle;

use delivery_support::*;
use estreamer_cef::output::WireReader;
use estreamer_cef_sim::generate::{GenOptions, Generated, generate};
use estreamer_cef_sim::server::SimulatorConfig;

/// A TCP receiver that keeps every byte of the first connection, until the sender closes it.
fn raw_receiver() -> (u16, JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    (port, t)
}

/// The messages of an RFC 6587 byte stream (octet counting or LF).
fn messages(bytes: &[u8]) -> Vec<String> {
    let mut r = WireReader::new(bytes);
    let mut out = Vec::new();
    while let Some(m) = r.next_message().unwrap() {
        out.push(String::from_utf8(m).expect("UTF-8"));
    }
    out
}

/// An RFC 5424 message split into its TIMESTAMP and the rest (timestamp replaced by `*`).
fn split_timestamp(msg: &str) -> (chrono::DateTime<chrono::FixedOffset>, String) {
    let mut parts = msg.splitn(3, ' ');
    let (pri, ts, rest) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let t = chrono::DateTime::parse_from_rfc3339(ts).unwrap_or_else(|e| panic!("{e}: {msg}"));
    (t, format!("{pri} * {rest}"))
}

/// Names the override table resolves, with the field each is keyed by (metadata/tables.toml).
const RESOLVED: [(&str, &str); 8] = [
    ("sensor", "deviceId"),
    ("user", "userId"),
    ("applicationProtocol", "applicationId"),
    ("clientApplication", "clientApplicationId"),
    ("ingressInterface", "ingressInterface"),
    ("egressInterface", "egressInterface"),
    ("ingressSecurityZone", "ingressZone"),
    ("egressSecurityZone", "egressZone"),
];

/// `act` holds at most 63 characters: this constant is cut, with a warning.
const LONG_ACTION: &str =
    "Allowed after a long deliberation of the access control policy and the intrusion policy";

/// An override table for connection events: some resolved names, a value too long for its key
/// and an explicit truncate().
fn override_table(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("connection.toml"),
        format!(
            r#"[[mapping]]
records = [71]
class_id = "RNA:1003:1"
name = "CONNECTION STATISTICS"
severity = 3
msgid = "CONNECTION"

[mapping.extension]
externalId = "connectionCounter"
src = "ipv4(initiatorIpAddress)"
dvchost = "@sensor"
suser = "@user"
app = "@applicationProtocol"
requestClientApplication = "@clientApplication"
deviceInboundInterface = "@ingressInterface"
deviceOutboundInterface = "@egressInterface"
cs3 = "@ingressSecurityZone"
cs3Label = "'ingressZone'"
cs4 = "@egressSecurityZone"
cs4Label = "'egressZone'"
act = "'{LONG_ACTION}'"
cs1 = "truncate(@sensor, 4)"
cs1Label = "'sensorShort'"
"#
        ),
    )
    .unwrap();
}

struct TapRun {
    tap: Vec<u8>,
    received: Vec<u8>,
    metrics: String,
    log: String,
}

/// Runs the forwarder over the scenario (from genesis, fresh state) with a TCP output to a raw
/// receiver and the tap in `format`, until every event was sent.
fn tap_run(g: &Generated, dir: &Path, format: &str, events: usize) -> TapRun {
    let pki = sim_support::TestPki::new();
    let mut sim_cfg = SimulatorConfig::new("127.0.0.1:0".parse().unwrap(), &pki.files);
    // Spread the stream over a few seconds (metadata first, then the events), so that the
    // tap's timestamps have to move.
    sim_cfg.rate = Some(60);
    sim_cfg.bundle_size = 4;
    let sim = SimFmc::start(sim_cfg, g.scenario.clone());
    let (port, receiver) = raw_receiver();
    let run_dir = dir.join(format);
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut setup = Setup::new(&pki.files, sim.port(), run_dir.join("state"));
    setup.start = "genesis";
    setup.mappings_dir = Some(dir.join("mappings"));
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    setup.monitor_listen = Some(metrics_addr.clone());
    setup.outputs = vec![stream_output("tcp", port, "octet-counting", "")];
    let config = setup.write(&run_dir.join("estreamer-cef.toml"));
    let tap = run_dir.join("tap");
    let mut fwd = Forwarder::run(
        &config,
        &["--tap-file", tap.to_str().unwrap(), "--tap-format", format],
        &run_dir.join("forwarder.log"),
    );
    let sent =
        |m: &str| metric(m, "estreamer_cef_events_acknowledged_total").unwrap_or(0.0) as usize;
    let mut metrics = String::new();
    assert!(
        eventually(SOON, || {
            metrics = scrape(&metrics_addr).unwrap_or_default();
            sent(&metrics) >= events
        }),
        "events delivered: {}; log:\n{}",
        sent(&metrics),
        tail(&fwd.log_text(), 30)
    );
    let status = fwd.terminate(SOON);
    assert!(status.success());
    drop(sim);
    TapRun {
        tap: std::fs::read(&tap).unwrap(),
        received: receiver.join().unwrap(),
        metrics,
        log: fwd.log_text(),
    }
}

#[test]
fn tap_shows_the_exact_bytes_and_the_warnings_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    override_table(&dir.path().join("mappings"));
    let g = generate(&GenOptions {
        record_types: Some(vec![71]),
        events_per_type: 60,
        unknown_id_rate: 0.2,
        seed: 3,
        ..GenOptions::default()
    });
    let n = g.scenario.events.len();

    // What decode --cef makes of the same stream with the same tables.
    let pki = sim_support::TestPki::new();
    let mut setup = Setup::new(&pki.files, 1, dir.path().join("state"));
    setup.mappings_dir = Some(dir.path().join("mappings"));
    let decode_cfg = setup.write(&dir.path().join("decode.toml"));
    let expected = expected_lines(&decode_cfg, &g.scenario, dir.path());
    assert_eq!(expected.len(), n);
    assert!(
        expected.iter().all(|e| !e.line.contains(LONG_ACTION)),
        "act is cut"
    );

    // Records whose metadata is missing for a name the table resolves.
    let meta = g.scenario.metadata.len();
    let mut missing_names: HashMap<usize, BTreeSet<&str>> = HashMap::new();
    for u in &g.unknown_ids {
        if let Some((name, _)) = RESOLVED.iter().find(|(_, f)| *f == u.field) {
            missing_names
                .entry(u.index - meta)
                .or_default()
                .insert(name);
        }
    }
    assert!(!missing_names.is_empty(), "some events lack metadata");

    // Wire: the framed messages exactly as the output sent them.
    let wire = tap_run(&g, dir.path(), "wire", n);
    let tapped = messages(&wire.tap);
    let received = messages(&wire.received);
    assert_eq!(tapped.len(), n, "one message per event in the wire tap");
    assert_eq!(received.len(), n, "one message per event at the receiver");
    let mut first_ts = None;
    let mut last_ts = None;
    for (i, (t, r)) in tapped.iter().zip(&received).enumerate() {
        let (tt, t_rest) = split_timestamp(t);
        let (rt, r_rest) = split_timestamp(r);
        assert_eq!(
            t_rest, r_rest,
            "message {i}: the tap shows other bytes than were sent"
        );
        assert_eq!(
            tt, rt,
            "message {i}: the tap is a copy of what the output sent, timestamp included"
        );
        assert!(
            t.ends_with(&expected[i].line),
            "message {i} carries the mapped CEF line:\n  {t}\n  {}",
            expected[i].line
        );
        first_ts.get_or_insert(tt);
        last_ts = Some(tt);
    }
    assert!(
        last_ts.unwrap() > first_ts.unwrap(),
        "the stream took a few seconds and the tap's timestamps show it"
    );

    // JSON: decoded fields, CEF line and warnings per record.
    let json = tap_run(&g, dir.path(), "json", n);
    let records: Vec<serde_json::Value> = String::from_utf8(json.tap.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), n);
    let mut missing_total = 0;
    let mut encoder_total = 0;
    for (k, r) in records.iter().enumerate() {
        assert_eq!(r["record_type"], 71);
        assert_eq!(
            r["cef"].as_str(),
            Some(expected[k].line.as_str()),
            "record {k}"
        );
        let truth = &g.truth[meta + k].1;
        assert_eq!(
            r["fields"]["connectionCounter"], truth["connectionCounter"],
            "record {k}: the decoded fields"
        );
        let warnings: Vec<&str> = r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        let cut = format!(
            "`act`: value cut from {} to 63 characters",
            LONG_ACTION.chars().count()
        );
        assert!(warnings.contains(&cut.as_str()), "record {k}: {warnings:?}");
        // Every note but these two kinds is the encoder's.
        encoder_total += warnings
            .iter()
            .filter(|w| !w.starts_with("metadata missing") && !w.starts_with("field absent"))
            .count();
        let named: BTreeSet<&str> = warnings
            .iter()
            .filter_map(|w| w.strip_prefix("metadata missing: @"))
            .map(|w| w.split(' ').next().unwrap())
            .collect();
        missing_total += warnings
            .iter()
            .filter(|w| w.starts_with("metadata missing"))
            .count();
        let want = missing_names.get(&k).cloned().unwrap_or_default();
        assert_eq!(named, want, "record {k}: names sent as ids: {warnings:?}");
        for w in warnings
            .iter()
            .filter(|w| w.starts_with("metadata missing"))
        {
            // The id is what was sent in place of the name.
            let id = w.rsplit_once("(id ").unwrap().1.trim_end_matches(')');
            assert!(r["cef"].as_str().unwrap().contains(id), "{w}: {}", r["cef"]);
        }
    }
    // The same counts in the monitor, whatever the tap's format.
    for (run, name) in [(&wire, "wire"), (&json, "json")] {
        assert_eq!(
            metric(&run.metrics, "estreamer_cef_metadata_missing_total"),
            Some(missing_total as f64),
            "{name} run: names sent as ids"
        );
        assert_eq!(
            metric(&run.metrics, "estreamer_cef_encoder_warnings_total"),
            Some(encoder_total as f64),
            "{name} run: encoder warnings; log:\n{}",
            tail(&run.log, 10)
        );
    }
}

/// The number just before `suffix` in `text` (e.g. "12.5 ev/s average").
fn number_before(text: &str, suffix: &str) -> f64 {
    let i = text
        .find(suffix)
        .unwrap_or_else(|| panic!("{suffix:?} in {text}"));
    let head = text[..i].trim_end();
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |j| j + 1);
    head[start..]
        .parse()
        .unwrap_or_else(|_| panic!("number before {suffix:?} in {text}"))
}

#[test]
fn monitor_logs_a_status_line_every_period_and_serves_the_same_counters() {
    const N: usize = 3_000;
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    let scenario = connection_scenario(N, 10, 5);
    let mut sim_cfg = SimulatorConfig::new("127.0.0.1:0".parse().unwrap(), &pki.files);
    sim_cfg.rate = Some(1_000);
    let sim = SimFmc::start(sim_cfg, scenario.clone());
    let (port, receiver) = raw_receiver();
    let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
    setup.start = "genesis";
    setup.monitor_period = Some("1s");
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    setup.monitor_listen = Some(metrics_addr.clone());
    setup.outputs = vec![stream_output("tcp", port, "octet-counting", "")];
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    let mut fwd = Forwarder::run(&config, &[], &dir.path().join("forwarder.log"));

    // The stream takes about 3 s; then wait for a status line that shows it complete, the
    // bookmark (saved every few seconds) included.
    let last_second = scenario.events.last().unwrap().archive_second;
    let date = chrono::DateTime::from_timestamp(last_second as i64, 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let done = format!("handled {N} ");
    let complete = |l: &str| {
        l.contains(&done)
            && l.contains(&format!(" {N} sent"))
            && l.contains(&format!("bookmark {date}"))
    };
    assert!(
        eventually(SOON, || status_lines(&fwd.log_text())
            .iter()
            .any(|(_, l)| complete(l))),
        "log:\n{}",
        tail(&fwd.log_text(), 20)
    );
    let metrics = scrape(&metrics_addr).expect("GET /metrics");
    let lines = status_lines(&fwd.log_text());
    fwd.terminate(SOON);
    let bytes = receiver.join().unwrap();
    assert_eq!(messages(&bytes).len(), N);

    assert!(lines.len() >= 3, "{lines:?}");
    for w in lines.windows(2) {
        let gap = (w[1].0 - w[0].0).num_milliseconds();
        assert!(gap >= 500, "status lines {gap} ms apart: {:?}", w);
    }
    // While streaming, the current rate is not zero; the average is.
    assert!(
        lines
            .iter()
            .any(|(_, l)| number_before(l, "ev/s now") > 0.0),
        "{lines:?}"
    );
    let (_, last) = lines.iter().find(|(_, l)| complete(l)).unwrap();
    assert!(number_before(last, "ev/s average") > 0.0, "{last}");
    let out = format!("tcp://127.0.0.1:{port}");
    for part in [
        format!("bookmark {date}"),
        "queue 0".to_string(),
        format!("{out} {N} sent"),
        "FMC connected, 0 reconnects".to_string(),
        // (The generated byte counts do not all fit CEF's 32-bit `in`/`out`: clamped, counted.)
        format!(
            "warnings: 0 unknown, 0 malformed, 0 unmapped, 0 missing metadata, {} encoder",
            metric(&metrics, "estreamer_cef_encoder_warnings_total").unwrap()
        ),
    ] {
        assert!(
            last.contains(&part),
            "{part:?} not in the status line: {last}"
        );
    }
    let received = number_before(last, " handled");
    assert!(received >= N as f64, "{last}");

    // The same counters at /metrics.
    for (name, want) in [
        ("estreamer_cef_records_handled_total".to_string(), N as f64),
        ("estreamer_cef_events_emitted_total".to_string(), N as f64),
        (
            "estreamer_cef_events_acknowledged_total".to_string(),
            N as f64,
        ),
        ("estreamer_cef_queue_events".to_string(), 0.0),
        (
            "estreamer_cef_bookmark_seconds".to_string(),
            last_second as f64,
        ),
        // The FMC's series name it (its default name: host:port, the port not being 8302).
        (
            format!(
                "estreamer_cef_fmc_connected{{fmc=\"127.0.0.1:{}\"}}",
                sim.port()
            ),
            1.0,
        ),
        ("estreamer_cef_fmc_reconnects_total".to_string(), 0.0),
        (
            format!("estreamer_cef_output_sent_total{{output=\"{out}\"}}"),
            N as f64,
        ),
        (format!("estreamer_cef_output_up{{output=\"{out}\"}}"), 1.0),
    ] {
        assert_eq!(metric(&metrics, &name), Some(want), "{name} in\n{metrics}");
    }
    assert_eq!(
        metric(&metrics, "estreamer_cef_records_received_total"),
        Some(received),
        "records received, as in the status line"
    );
}
