//! The Kafka output's delivery promise, end to end: the real `estreamer-cef` binary, the
//! simulated FMC, and a real Kafka-protocol broker (tansu, sqlite storage) started by each test
//! on its own port. What the topic holds is read back with an rdkafka consumer.
//!
//! - every event arrives once, and one device's events in order (one key, one partition);
//! - the broker killed (SIGKILL) mid-stream and restarted 10 s later: nothing lost, and while
//!   it is down the forwarder stops reading from the FMC;
//! - the forwarder killed (SIGKILL), then stopped (SIGTERM) and restarted: nothing lost, no
//!   duplicate after the clean stop, and after the kill only what the bookmark did not cover;
//! - a topic that does not exist: an error naming it, counted, and the other output goes on;
//! - `estreamer-cef test` says whether the brokers answer and the topic exists.
//!
//! Needs tansu 0.6.0 (tests/install-deps.sh installs it with cargo install).

mod delivery_support;
mod sim_support;
#[path = "support/tansu.rs"]
mod tansu;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use delivery_support::*;
use estreamer_cef::delivery::{Bookmark, cursor};
use estreamer_cef::output::kafka::key::extension_value;
use estreamer_cef_sim::server::SimulatorConfig;
use tansu::{Tansu, free_port, read_topic};

const PARTITIONS: i32 = 3;

fn simulator(pki: &sim_support::TestPki, rate: u32) -> SimulatorConfig {
    let mut cfg = SimulatorConfig::new("127.0.0.1:0".parse().unwrap(), &pki.files);
    cfg.rate = Some(rate);
    cfg.bundle_size = 100;
    cfg
}

fn kafka_output(broker: &Tansu, extra: &str) -> String {
    format!(
        "transport = \"kafka\"\nbrokers = [\"{}\"]\n{extra}",
        broker.bootstrap()
    )
}

/// A counter of the Kafka output from `/metrics` (0 while it cannot be read).
fn output_metric(addr: &str, bootstrap: &str, topic: &str, name: &str) -> f64 {
    scrape(addr)
        .ok()
        .and_then(|m| {
            metric(
                &m,
                &format!("estreamer_cef_{name}{{output=\"kafka://{bootstrap}/{topic}\"}}"),
            )
        })
        .unwrap_or(0.0)
}

fn values(records: &[tansu::Record]) -> Vec<String> {
    records.iter().map(|r| r.value.clone()).collect()
}

#[test]
fn every_event_arrives_once_and_one_devices_events_stay_in_order() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let broker = Tansu::start(&dir.path().join("broker"));
    broker.create_topic("th-cef", PARTITIONS as u32);
    let bootstrap = broker.bootstrap();
    let pki = sim_support::TestPki::new();
    let scenario = connection_scenario(N, 10, 21);
    let sim = SimFmc::start(simulator(&pki, 20_000), scenario.clone());
    let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
    // A fixed name makes the keys, and so their partitions, the same in every run.
    setup.fmc_name = Some("fmc-hq");
    setup.outputs = vec![kafka_output(&broker, "")];
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    setup.monitor_listen = Some(metrics_addr.clone());
    setup.monitor_period = Some("1s");
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    let expected = expected_lines(&config, &scenario, dir.path());
    assert_eq!(expected.len(), N);

    let mut fwd = Forwarder::run(&config, &[], &dir.path().join("forwarder.log"));
    assert!(
        eventually(Duration::from_secs(180), || output_metric(
            &metrics_addr,
            &bootstrap,
            "th-cef",
            "output_acknowledged_total"
        ) >= N as f64),
        "the brokers acknowledge all {N}; log:\n{}\nbroker log:\n{}",
        tail(&fwd.log_text(), 20),
        tail(&broker.log_text(), 20)
    );
    assert_eq!(
        output_metric(&metrics_addr, &bootstrap, "th-cef", "output_in_flight"),
        0.0
    );
    let said = format!(
        "kafka://{}/th-cef {N} sent, {N} delivered;",
        broker.bootstrap()
    );
    assert!(
        eventually(SOON, || status_lines(&fwd.log_text())
            .iter()
            .any(|(_, l)| l.contains(&said))),
        "no status line says {said:?}:\n{}",
        tail(&fwd.log_text(), 5)
    );
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");

    let got = read_topic(
        &broker.bootstrap(),
        "th-cef",
        PARTITIONS,
        N,
        Duration::from_secs(3),
        Duration::from_secs(120),
    );
    assert_exactly_once(&expected, &values(&got));

    // The key is the FMC's name and the device's id; one key stays in one partition, in the
    // order of the stream.
    let position: HashMap<&str, usize> = expected
        .iter()
        .map(|e| (e.line.as_str(), e.index))
        .collect();
    let fmc = "fmc-hq";
    let mut last: HashMap<&str, (i32, usize)> = HashMap::new();
    for r in &got {
        let key = r.key.as_deref().expect("every message has a key");
        let device = extension_value(&r.value, "deviceExternalId").expect("deviceExternalId");
        assert_eq!(key, format!("{fmc}/{device}"));
        let at = position[r.value.as_str()];
        if let Some((partition, before)) = last.insert(key, (r.partition, at)) {
            assert_eq!(partition, r.partition, "key {key} is in two partitions");
            assert!(before < at, "key {key}: record {at} comes after {before}");
        }
    }
    let partitions: HashSet<i32> = got.iter().map(|r| r.partition).collect();
    eprintln!(
        "{N} events in {} partitions, {} keys",
        partitions.len(),
        last.len()
    );
    assert!(
        last.len() > 1 && partitions.len() > 1,
        "several devices, spread out"
    );
    drop(sim);
}

#[test]
fn broker_killed_mid_stream_and_back_10s_later_loses_nothing() {
    const N: usize = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Tansu::start(&dir.path().join("broker"));
    broker.create_topic("th-cef", PARTITIONS as u32);
    let bootstrap = broker.bootstrap();
    let pki = sim_support::TestPki::new();
    let scenario = connection_scenario(N, 10, 23);
    let sim = SimFmc::start(simulator(&pki, 3_000), scenario.clone());
    let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
    setup.outputs = vec![kafka_output(&broker, "queue_messages = 2000")];
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    setup.monitor_listen = Some(metrics_addr.clone());
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    let expected = expected_lines(&config, &scenario, dir.path());
    let acked = || {
        output_metric(
            &metrics_addr,
            &bootstrap,
            "th-cef",
            "output_acknowledged_total",
        )
    };

    let mut fwd = Forwarder::run(&config, &[], &dir.path().join("forwarder.log"));
    assert!(
        eventually(SOON, || acked() >= (N / 4) as f64),
        "a quarter is acknowledged; log:\n{}",
        tail(&fwd.log_text(), 20)
    );
    broker.kill();
    let before = acked();
    // The outage itself (part of the scenario): while it lasts the output reports itself down
    // and, its queue full, holds the FMC back.
    std::thread::sleep(Duration::from_secs(10));
    let metrics = scrape(&metrics_addr).unwrap();
    let output = format!("{{output=\"kafka://{}/th-cef\"}}", broker.bootstrap());
    assert_eq!(
        metric(&metrics, &format!("estreamer_cef_output_up{output}")),
        Some(0.0),
        "the output reports the brokers down"
    );
    let received = |m: &str| metric(m, "estreamer_cef_records_received_total").unwrap();
    let held = received(&metrics);
    std::thread::sleep(Duration::from_secs(2));
    let still = received(&scrape(&metrics_addr).unwrap());
    assert_eq!(held, still, "reading from the FMC pauses during the outage");
    assert!(
        held < N as f64,
        "the outage came mid-stream ({held} received)"
    );
    broker.restart();

    assert!(
        eventually(Duration::from_secs(240), || acked() >= N as f64),
        "{} of {N} acknowledged after the outage; log:\n{}",
        acked(),
        tail(&fwd.log_text(), 20)
    );
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
    let got = read_topic(
        &broker.bootstrap(),
        "th-cef",
        PARTITIONS,
        N,
        Duration::from_secs(3),
        Duration::from_secs(120),
    );
    let got = values(&got);
    let (missing, extra) = compare(&expected, &got);
    eprintln!(
        "{N} events, {before} acknowledged before the kill; {} in the topic: {} missing, {} duplicates",
        got.len(),
        missing.len(),
        extra.len()
    );
    assert!(
        missing.is_empty(),
        "{} lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    // The idempotent producer: retries after the outage do not duplicate.
    assert!(
        extra.is_empty(),
        "{} duplicates, e.g. {:?}",
        extra.len(),
        extra.first()
    );
    drop(sim);
}

/// Whether the bookmark covers a record (it will not be asked for again).
fn covered(bm: &Bookmark, second: u32, identity: u64) -> bool {
    second < bm.second
        || (second == bm.second && bm.delivered_at_second.contains(&format!("{identity:016x}")))
}

#[test]
fn killed_forwarder_loses_nothing_and_a_clean_restart_sends_no_duplicate() {
    const N: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let broker = Tansu::start(&dir.path().join("broker"));
    broker.create_topic("th-cef", PARTITIONS as u32);
    let bootstrap = broker.bootstrap();
    let pki = sim_support::TestPki::new();
    let scenario = connection_scenario(N, 10, 29);
    let sim = SimFmc::start(simulator(&pki, 2_000), scenario.clone());
    let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
    setup.outputs = vec![kafka_output(&broker, "queue_messages = 5000")];
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    setup.monitor_listen = Some(metrics_addr.clone());
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    let expected = expected_lines(&config, &scenario, dir.path());
    let log = dir.path().join("forwarder.log");
    let state = setup.fmc_state_dir();
    let acked = || {
        output_metric(
            &metrics_addr,
            &bootstrap,
            "th-cef",
            "output_acknowledged_total",
        )
    };
    let topic = |at_least: usize| {
        values(&read_topic(
            &bootstrap,
            "th-cef",
            PARTITIONS,
            at_least,
            Duration::from_secs(2),
            Duration::from_secs(120),
        ))
    };

    // Run 1, killed mid-stream.
    let mut fwd = Forwarder::run(&config, &[], &log);
    assert!(
        eventually(SOON, || acked() >= (N / 5) as f64
            && Bookmark::load(&state).ok().flatten().is_some()),
        "log:\n{}",
        tail(&fwd.log_text(), 20)
    );
    fwd.kill();
    let at_kill = Bookmark::load(&state).unwrap().expect("bookmark");

    // Run 2 from that bookmark, stopped cleanly mid-stream.
    let mut fwd = Forwarder::run(&config, &[], &log);
    assert!(
        eventually(SOON, || acked() >= (N / 4) as f64),
        "log:\n{}",
        tail(&fwd.log_text(), 20)
    );
    let status = fwd.terminate(SOON);
    assert!(status.success(), "a clean stop exits 0: {status}");
    let before = topic(0);
    let distinct_before: HashSet<&str> = before.iter().map(String::as_str).collect();
    assert!(distinct_before.len() < N, "stopped mid-stream");

    // Run 3 to the end.
    let rest = N - distinct_before.len();
    let mut fwd = Forwarder::run(&config, &[], &log);
    assert!(
        eventually(Duration::from_secs(180), || acked() >= rest as f64),
        "{} of {rest} acknowledged; log:\n{}",
        acked(),
        tail(&fwd.log_text(), 20)
    );
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
    let all = topic(before.len() + rest);
    let (missing, extra) = compare(&expected, &all);
    eprintln!(
        "{N} events: {} in the topic at the clean stop, {} in all; {} missing, {} duplicates",
        before.len(),
        all.len(),
        missing.len(),
        extra.len()
    );
    assert!(
        missing.is_empty(),
        "{} lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    // After the clean stop: nothing that was there before, and nothing twice.
    let mut before_counts = counts(before.iter().map(String::as_str));
    let mut seen = HashSet::new();
    for l in &all {
        match before_counts.get_mut(l.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => {
                assert!(
                    !distinct_before.contains(l.as_str()),
                    "sent again after the clean stop: {l}"
                );
                assert!(seen.insert(l.as_str()), "twice after the clean stop: {l}");
            }
        }
    }
    // Before it, only what the bookmark at the kill did not cover may have come twice.
    let line_record: HashMap<&str, usize> = expected
        .iter()
        .map(|e| (e.line.as_str(), e.index - scenario.metadata.len()))
        .collect();
    for l in &extra {
        let r = &scenario.events[line_record[l]];
        assert!(
            !covered(&at_kill, r.archive_second, cursor::identity(&r.body)),
            "sent again although the bookmark at the kill covered it: {l}"
        );
    }
    drop(sim);
}

#[test]
fn a_missing_topic_is_an_error_naming_it_and_the_other_output_goes_on() {
    const N: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let broker = Tansu::start(&dir.path().join("broker"));
    let bootstrap = broker.bootstrap();
    let pki = sim_support::TestPki::new();
    let scenario = connection_scenario(N, 10, 31);
    let sim = SimFmc::start(simulator(&pki, 20_000), scenario.clone());
    let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
    let file = dir.path().join("events.cef");
    setup.outputs = vec![
        kafka_output(
            &broker,
            "topic = \"no-such-topic\"\nproperties = { \"topic.metadata.propagation.max.ms\" = \"1000\" }",
        ),
        format!("transport = \"file\"\npath = \"{}\"", file.display()),
    ];
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    setup.monitor_listen = Some(metrics_addr.clone());
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    let expected = expected_lines(&config, &scenario, dir.path());

    let mut fwd = Forwarder::run(&config, &[], &dir.path().join("forwarder.log"));
    assert!(
        eventually(Duration::from_secs(120), || file_lines(&file).len() >= N),
        "{} of {N} in the file output; log:\n{}",
        file_lines(&file).len(),
        tail(&fwd.log_text(), 20)
    );
    assert!(
        eventually(SOON, || output_metric(
            &metrics_addr,
            &bootstrap,
            "no-such-topic",
            "output_refused_total"
        ) >= N as f64),
        "every refused message is counted; log:\n{}",
        tail(&fwd.log_text(), 20)
    );
    let log = fwd.log_text();
    assert!(
        log.contains("topic no-such-topic: the brokers refused a message for good")
            && log.contains("create the topic"),
        "the error names the topic, the reason and the fix:\n{}",
        tail(&log, 20)
    );
    assert!(fwd.is_running(), "the run goes on");
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
    assert_exactly_once(&expected, &file_lines(&file));
    drop(sim);
}

#[test]
fn test_command_says_whether_the_brokers_answer_and_the_topic_exists() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Tansu::start(&dir.path().join("broker"));
    broker.create_topic("th-cef", 2);
    let pki = sim_support::TestPki::new();
    // `test` checks the outputs after the FMC, as `run` needs both: a simulated FMC answers.
    let sim = SimFmc::start(simulator(&pki, 20_000), connection_scenario(10, 2, 5));
    let nobody = free_port();
    let run = |outputs: Vec<String>| {
        let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
        setup.outputs = outputs;
        let config = setup.write(&dir.path().join("estreamer-cef.toml"));
        let out = Command::new(bin())
            .arg("-c")
            .arg(&config)
            .arg("test")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let said = run(vec![kafka_output(&broker, "")]);
    assert!(
        said.contains(&format!(
            "[ OK ] output[0] kafka://{}/th-cef: brokers: {} answered",
            broker.bootstrap(),
            broker.bootstrap()
        )) && said.contains("/th-cef: topic: th-cef exists with 2 partition(s)")
            && said.contains("All checks passed"),
        "{said}"
    );

    let said = run(vec![kafka_output(&broker, "topic = \"elsewhere\"")]);
    assert!(
        said.contains("/elsewhere: topic: elsewhere does not exist") && said.contains("create it"),
        "{said}"
    );

    let said = run(vec![format!(
        "transport = \"kafka\"\nbrokers = [\"127.0.0.1:{nobody}\"]"
    )]);
    assert!(
        said.contains(&format!(
            "[FAIL] output[0] kafka://127.0.0.1:{nobody}/th-cef: brokers: no broker of 127.0.0.1:{nobody} answered"
        )) && said.contains("check output[0].brokers"),
        "{said}"
    );
}
