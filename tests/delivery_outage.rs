//! The delivery promise under failure, end to end with the real binary and a real receiver:
//!
//! - the receiver (syslog-ng) is down for 10 s in the middle of a 50,000-record stream: nothing
//!   is lost, and the duplicates it sees are counted by the forwarder (`resent`) and bounded;
//! - the forwarder is killed (SIGKILL) mid-stream and started again on the same state: nothing
//!   is lost, and whatever comes twice is only what the bookmark did not yet cover; then it is
//!   stopped cleanly (SIGTERM) and started again: not one duplicate.
//!
//! The simulated FMC runs in the test (connection records, ten per archive second, paced so the
//! faults land mid-stream); the CEF lines expected are what `estreamer-cef decode --cef` makes of
//! the same byte stream.
//!
//! Needs syslog-ng-core, syslog-ng-mod-python (apt) and cefp 0.0.2 (pip): tests/install-deps.sh.

mod delivery_support;
mod sim_support;
#[path = "support/syslog_ng.rs"]
mod syslog_ng;

use std::collections::HashSet;
use std::time::Duration;

use delivery_support::*;
use estreamer_cef::delivery::Bookmark;
use estreamer_cef::delivery::cursor;
use estreamer_cef_sim::server::SimulatorConfig;
use syslog_ng::{SyslogNg, free_port};

fn simulator(pki: &sim_support::TestPki, rate: u32) -> SimulatorConfig {
    let mut cfg = SimulatorConfig::new("127.0.0.1:0".parse().unwrap(), &pki.files);
    cfg.rate = Some(rate);
    cfg.bundle_size = 100;
    cfg
}

#[test]
fn receiver_down_for_10s_mid_stream_loses_nothing_and_duplicates_are_counted() {
    const N: usize = 50_000;
    const RESEND: usize = 2 << 20;
    const REPLAY: usize = 4 << 20;
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    let scenario = connection_scenario(N, 10, 7);
    let sim = SimFmc::start(simulator(&pki, 4_000), scenario.clone());
    let mut receiver = SyslogNg::start();

    let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
    setup.outputs = vec![stream_output(
        "tcp",
        receiver.tcp_port,
        "octet-counting",
        &format!("resend_bytes = {RESEND}\nreplay_buffer_bytes = {REPLAY}"),
    )];
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    setup.monitor_listen = Some(metrics_addr.clone());
    setup.monitor_period = Some("2s");
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    let expected = expected_lines(&config, &scenario, dir.path());
    assert_eq!(
        expected.len(),
        N,
        "every connection record maps to one CEF line"
    );

    let mut fwd = Forwarder::run(&config, &[], &dir.path().join("forwarder.log"));
    assert!(
        wait_received(receiver.dir(), N / 4, SOON),
        "a quarter of the stream arrives; log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    receiver.kill();
    let before_outage = received_count(receiver.dir());
    // The outage itself (part of the scenario, not a check).
    std::thread::sleep(Duration::from_secs(10));
    let metrics = scrape(&metrics_addr).unwrap();
    assert_eq!(
        metric(
            &metrics,
            &format!(
                "estreamer_cef_output_up{{output=\"tcp://127.0.0.1:{}\"}}",
                receiver.tcp_port
            )
        ),
        Some(0.0),
        "the output reports the receiver down"
    );
    receiver.restart();
    assert!(
        before_outage < N,
        "the outage came mid-stream ({before_outage} of {N} had arrived)"
    );

    // Everything arrives; extra messages are duplicates.
    assert!(
        wait_received(receiver.dir(), N, Duration::from_secs(240)),
        "{} of {N} arrived after the outage; log:\n{}",
        received_count(receiver.dir()),
        tail(&fwd.log_text(), 30)
    );
    let total = wait_received_quiet(receiver.dir(), Duration::from_secs(3), SOON);
    let metrics = scrape(&metrics_addr).unwrap();
    let out = format!("{{output=\"tcp://127.0.0.1:{}\"}}", receiver.tcp_port);
    let resent =
        metric(&metrics, &format!("estreamer_cef_output_resent_total{out}")).unwrap() as usize;
    let reconnects = metric(
        &metrics,
        &format!("estreamer_cef_output_reconnects_total{out}"),
    )
    .unwrap();
    let acknowledged = metric(
        &metrics,
        &format!("estreamer_cef_output_acknowledged_total{out}"),
    )
    .unwrap();
    let delivered = metric(
        &metrics,
        &format!("estreamer_cef_output_delivered_total{out}"),
    )
    .unwrap();
    assert_eq!(acknowledged, N as f64, "everything is acknowledged");
    assert!(
        delivered < acknowledged,
        "the last resend_bytes acknowledged are not yet confirmed delivered ({delivered})"
    );
    // The status line tells the same story.
    let said = format!(
        "tcp://127.0.0.1:{} {N} sent, {acknowledged} acknowledged, {delivered} delivered, {reconnects} reconnects, {resent} resent;",
        receiver.tcp_port
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

    let arrivals: Vec<String> = arrived(receiver.dir()).into_iter().map(|a| a.msg).collect();
    assert_eq!(arrivals.len(), total);
    let (missing, extra) = compare(&expected, &arrivals);
    let wanted: HashSet<&str> = expected.iter().map(|e| e.line.as_str()).collect();
    let garbage: Vec<&&str> = extra.iter().filter(|l| !wanted.contains(**l)).collect();
    eprintln!(
        "{N} records; {before_outage} arrived before the outage; {total} messages in all: {} missing, {} duplicates; resent {resent}, reconnects {reconnects}",
        missing.len(),
        extra.len()
    );
    assert!(
        missing.is_empty(),
        "{} records lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(
        garbage.is_empty(),
        "messages nobody sent: {:?}",
        garbage.first()
    );
    assert!(reconnects >= 1.0, "the output counted its reconnect");
    assert!(
        extra.len() <= resent,
        "every duplicate the receiver got was counted as resent ({} duplicates, {resent} resent)",
        extra.len()
    );
    // Resending is bounded by what the output keeps: the acknowledged tail it resends
    // (`resend_bytes`) plus what was not acknowledged (`replay_buffer_bytes`).
    let shortest = expected.iter().map(|e| e.line.len()).min().unwrap();
    let bound = (RESEND + REPLAY) / shortest;
    assert!(resent <= bound, "{resent} resent, more than {bound}");
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
    let pki = sim_support::TestPki::new();
    let scenario = connection_scenario(N, 10, 11);
    let sim = SimFmc::start(simulator(&pki, 2_000), scenario.clone());
    let receiver = SyslogNg::start();
    let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
    setup.outputs = vec![stream_output(
        "tcp",
        receiver.tcp_port,
        "octet-counting",
        "",
    )];
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    let expected = expected_lines(&config, &scenario, dir.path());
    assert_eq!(expected.len(), N);
    let log = dir.path().join("forwarder.log");
    let state = setup.fmc_state_dir();

    // Run 1, killed mid-stream.
    let mut fwd = Forwarder::run(&config, &[], &log);
    assert!(
        wait_received(receiver.dir(), N / 5, SOON),
        "log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    assert!(
        eventually(SOON, || Bookmark::load(&state).ok().flatten().is_some()),
        "a bookmark is saved while running"
    );
    fwd.kill();
    let at_kill = Bookmark::load(&state).unwrap().expect("bookmark");
    let after_kill = received_count(receiver.dir());
    assert!(after_kill < N, "killed mid-stream");

    // Run 2 from that bookmark, stopped cleanly.
    let mut fwd = Forwarder::run(&config, &[], &log);
    assert!(
        wait_received(receiver.dir(), after_kill + N / 4, SOON),
        "log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    let status = fwd.terminate(SOON);
    assert!(status.success(), "a clean stop exits 0: {status}");
    let at_stop = received_count(receiver.dir());
    let before: Vec<String> = arrived(receiver.dir()).into_iter().map(|a| a.msg).collect();
    assert_eq!(
        before.len(),
        at_stop,
        "nothing arrives after the forwarder has exited"
    );
    let distinct_before: HashSet<&str> = before.iter().map(String::as_str).collect();
    assert!(distinct_before.len() < N, "stopped mid-stream");

    // Run 3 to the end.
    let mut fwd = Forwarder::run(&config, &[], &log);
    let target = at_stop + (N - distinct_before.len());
    assert!(
        wait_received(receiver.dir(), target, SOON),
        "{} of {target} arrived; log:\n{}",
        received_count(receiver.dir()),
        tail(&fwd.log_text(), 30)
    );
    let total = wait_received_quiet(receiver.dir(), Duration::from_secs(3), SOON);
    fwd.terminate(SOON);

    let all: Vec<String> = arrived(receiver.dir()).into_iter().map(|a| a.msg).collect();
    assert_eq!(all.len(), total);
    let (missing, extra) = compare(&expected, &all);
    eprintln!(
        "{N} records: {after_kill} arrived before the kill, {at_stop} before the clean stop, {total} in all; {} missing, {} duplicates",
        missing.len(),
        extra.len()
    );
    assert!(
        missing.is_empty(),
        "{} records lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );

    // After the clean restart: nothing that had arrived before, and nothing twice.
    let mut seen = HashSet::new();
    for (i, l) in all[at_stop..].iter().enumerate() {
        assert!(
            !distinct_before.contains(l.as_str()),
            "message {} after the clean restart had arrived before it: {l}",
            at_stop + i
        );
        assert!(
            seen.insert(l.as_str()),
            "arrived twice after the clean restart: {l}"
        );
    }

    // Before it, only what the bookmark at the kill did not cover may have come twice.
    let line_record: std::collections::HashMap<&str, usize> = expected
        .iter()
        .map(|e| (e.line.as_str(), e.index - scenario.metadata.len()))
        .collect();
    for l in &extra {
        let r = &scenario.events[line_record[l]];
        assert!(
            !covered(&at_kill, r.archive_second, cursor::identity(&r.body)),
            "sent again although the bookmark (second {}, {} delivered there) covered it: {l}",
            at_kill.second,
            at_kill.delivered_at_second.len()
        );
    }
    drop(sim);
}

#[test]
fn stopping_while_the_receiver_is_down_and_the_output_full_is_prompt_and_loses_nothing() {
    const N: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    let scenario = connection_scenario(N, 10, 13);
    let sim = SimFmc::start(simulator(&pki, 50_000), scenario.clone());
    // Nothing listens on the receiver's port yet.
    let mut receiver = SyslogNg::start();
    receiver.stop();
    let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
    setup.outputs = vec![stream_output(
        "tcp",
        receiver.tcp_port,
        "octet-counting",
        "replay_buffer_bytes = 65536\nshutdown_timeout = \"2s\"",
    )];
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    setup.monitor_listen = Some(metrics_addr.clone());
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    let expected = expected_lines(&config, &scenario, dir.path());
    let log = dir.path().join("forwarder.log");

    let mut fwd = Forwarder::run(&config, &[], &log);
    // The output's buffer fills and the pipeline stops taking records from the FMC.
    let received = || {
        scrape(&metrics_addr)
            .ok()
            .and_then(|m| metric(&m, "estreamer_cef_records_received_total"))
            .unwrap_or(0.0)
    };
    // Stalled: no record taken for three seconds in a row (one slow second on a loaded
    // machine is not a stall).
    let mut last = -1.0;
    let mut still = 0;
    assert!(
        eventually(SOON, || {
            std::thread::sleep(Duration::from_secs(1));
            let now = received();
            still = if now > 0.0 && now == last {
                still + 1
            } else {
                0
            };
            last = now;
            still >= 3
        }),
        "the pipeline stalls behind the full output"
    );
    assert!(
        last < N as f64,
        "backpressure held the stream back ({last} received)"
    );
    let asked = std::time::Instant::now();
    let status = fwd.terminate(Duration::from_secs(30));
    eprintln!(
        "stopped {:?} after SIGTERM with {last} records received",
        asked.elapsed()
    );
    assert!(status.success(), "exit status {status}");
    assert!(
        fwd.log_text().contains("will be read from the FMC again"),
        "the log says what was not delivered: {}",
        tail(&fwd.log_text(), 10)
    );

    // Receiver back, forwarder again: everything arrives, once.
    receiver.restart();
    let mut fwd = Forwarder::run(&config, &[], &log);
    assert!(
        wait_received(receiver.dir(), N, SOON),
        "{} of {N}; log:\n{}",
        received_count(receiver.dir()),
        tail(&fwd.log_text(), 30)
    );
    let total = wait_received_quiet(receiver.dir(), Duration::from_secs(2), SOON);
    fwd.terminate(SOON);
    let all: Vec<String> = arrived(receiver.dir()).into_iter().map(|a| a.msg).collect();
    assert_eq!(all.len(), total);
    let (missing, extra) = compare(&expected, &all);
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} missing, {} extra",
        missing.len(),
        extra.len()
    );
    drop(sim);
}

#[test]
fn the_systemd_watchdog_is_fed_while_a_receiver_outage_holds_the_pipeline_back() {
    const N: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    let sim = SimFmc::start(simulator(&pki, 50_000), connection_scenario(N, 10, 17));
    let mut receiver = SyslogNg::start();
    receiver.stop();
    let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
    setup.outputs = vec![stream_output(
        "tcp",
        receiver.tcp_port,
        "octet-counting",
        "replay_buffer_bytes = 65536\nshutdown_timeout = \"2s\"",
    )];
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    setup.monitor_listen = Some(metrics_addr.clone());
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    // Play systemd: a notification socket and a 1 s watchdog.
    let notify_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_nonblocking(true).unwrap();
    let mut fwd = Forwarder::run_with_env(
        &config,
        &[],
        &[
            ("NOTIFY_SOCKET", notify_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
        ],
        &dir.path().join("forwarder.log"),
    );
    let received = || {
        scrape(&metrics_addr)
            .ok()
            .and_then(|m| metric(&m, "estreamer_cef_records_received_total"))
            .unwrap_or(0.0)
    };
    // Stalled: no record taken for three seconds in a row (one slow second on a loaded
    // machine is not a stall).
    let mut last = -1.0;
    let mut still = 0;
    assert!(
        eventually(SOON, || {
            std::thread::sleep(Duration::from_secs(1));
            let now = received();
            still = if now > 0.0 && now == last {
                still + 1
            } else {
                0
            };
            last = now;
            still >= 3
        }),
        "the pipeline stalls behind the full output"
    );
    // Drain what was sent so far, then wait for three more feeds: a live service keeps feeding
    // the watchdog (systemd would otherwise kill and restart it during every long outage). The
    // deadline is generous (a loaded machine delays them); a service that stopped feeding never
    // reaches three.
    let mut buf = [0u8; 256];
    while notify.recv(&mut buf).is_ok() {}
    let mut feeds = 0;
    let fed = eventually(SOON, || {
        while let Ok(n) = notify.recv(&mut buf) {
            if &buf[..n] == b"WATCHDOG=1" {
                feeds += 1;
            }
        }
        feeds >= 3
    });
    assert!(
        fed,
        "{feeds} watchdog notifications in {SOON:?} while waiting for the receiver"
    );
    assert_eq!(received(), last, "still held back");
    let status = fwd.terminate(SOON);
    assert!(status.success());
    drop(sim);
}

#[test]
fn fmc_connection_broken_mid_stream_delivers_every_record_exactly_once() {
    const N: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    let scenario = connection_scenario(N, 10, 19);
    let mut sim_cfg = simulator(&pki, 5_000);
    // Full bundles of 100 (about 100 messages in all), broken mid-message twice, in the first
    // sessions that get that far: a session resumes from the second last received, inclusive.
    sim_cfg.rate = None;
    sim_cfg.faults = vec![
        estreamer_cef_sim::faults::Fault::CloseAfter(30),
        estreamer_cef_sim::faults::Fault::CloseAfter(50),
    ];
    let sim = SimFmc::start(sim_cfg, scenario.clone());
    let receiver = SyslogNg::start();
    let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
    setup.outputs = vec![stream_output(
        "tcp",
        receiver.tcp_port,
        "octet-counting",
        "",
    )];
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    setup.monitor_listen = Some(metrics_addr.clone());
    let config = setup.write(&dir.path().join("estreamer-cef.toml"));
    let expected = expected_lines(&config, &scenario, dir.path());
    let mut fwd = Forwarder::run(&config, &[], &dir.path().join("forwarder.log"));
    assert!(
        wait_received(receiver.dir(), N, SOON),
        "{} of {N}; log:\n{}",
        received_count(receiver.dir()),
        tail(&fwd.log_text(), 30)
    );
    let total = wait_received_quiet(receiver.dir(), Duration::from_secs(2), SOON);
    let metrics = scrape(&metrics_addr).unwrap();
    fwd.terminate(SOON);
    let resumed = sim
        .handle
        .as_ref()
        .unwrap()
        .sessions()
        .iter()
        .filter_map(|s| s.streaming_request.as_ref())
        .filter(|r| r.initial_timestamp > 0)
        .count();
    assert!(
        resumed >= 2,
        "the FMC connection broke twice mid-stream and the forwarder resumed from a second"
    );
    assert!(
        metric(&metrics, "estreamer_cef_fmc_reconnects_total").unwrap() >= 2.0,
        "reconnects counted"
    );
    assert!(
        metric(&metrics, "estreamer_cef_records_duplicate_total").unwrap() > 0.0,
        "the FMC sent records again after a reconnect, and they were recognised:\n{metrics}\n{}",
        sim.handle.as_ref().unwrap().log_lines().join("\n")
    );
    let all: Vec<String> = arrived(receiver.dir()).into_iter().map(|a| a.msg).collect();
    assert_eq!(all.len(), total);
    let (missing, extra) = compare(&expected, &all);
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} missing, {} duplicates",
        missing.len(),
        extra.len()
    );
    drop(sim);
}
