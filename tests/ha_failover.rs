//! An FMC HA pair as one source, with the real binary: two simulated peers serve the same
//! device events with different archive timestamps. The active peer dies mid-stream, the
//! forwarder is stopped with SIGTERM and started again, the other peer dies too and the first
//! comes back: every event arrives exactly once.

mod delivery_support;
mod sim_support;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use delivery_support::*;
use estreamer_cef_sim::faults::Fault;
use estreamer_cef_sim::server::SimulatorConfig;

const N: usize = 4_000;

fn peer(pki: &sim_support::TestPki, port: u16, offset: i64, faults: Vec<Fault>) -> SimFmc {
    let mut c = SimulatorConfig::new(format!("127.0.0.1:{port}").parse().unwrap(), &pki.files);
    c.rate = Some(1_000);
    c.archive_offset = offset;
    c.faults = faults;
    SimFmc::start(c, connection_scenario(N, 10, 1))
}

/// The HA pair at `ports` as one FMC "hq", a file output `out.cef`, metrics at `metrics`.
fn write_config(
    dir: &Path,
    pki: &sim_support::TestPki,
    ports: [u16; 2],
    metrics: &str,
) -> std::path::PathBuf {
    let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let mut cfg = String::new();
    let _ = writeln!(
        cfg,
        "[fmc]\nname = \"hq\"\nhosts = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\n\
         pkcs12 = {}\npkcs12_password_file = {}\nstart = \"bookmark\"\n\
         reconnect_delay_min = \"200ms\"\nreconnect_delay_max = \"1s\"\nconnect_timeout = \"20s\"\n\
         failover_after = \"2s\"\nfailover_overlap = \"60s\"\n\
         [state]\ndir = {}\n[cef]\nmappings_dir = {}\n[monitor]\nlisten = \"{metrics}\"\n\
         [[output]]\ntransport = \"file\"\npath = {}\nformat = \"cef\"\n",
        ports[0],
        ports[1],
        q(&pki.files.client_pkcs12),
        q(&pki.files.client_pass),
        q(&dir.join("state")),
        q(&dir.join("no-mappings")),
        q(&dir.join("out.cef")),
    );
    let path = dir.join("estreamer-cef.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[test]
fn a_peer_that_goes_silent_is_left_for_the_other_without_loss_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    let (port_a, port_b) = (free_port(), free_port());
    // A stops sending anything (not even keepalives) for a minute after 500 messages, with the
    // connection open; failover_after is 2 s.
    let _a = peer(
        &pki,
        port_a,
        0,
        vec![Fault::StallAfter {
            after: 500,
            duration: Duration::from_secs(60),
        }],
    );
    let _b = peer(&pki, port_b, -5, vec![]);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let cfg_path = write_config(dir.path(), &pki, [port_a, port_b], &metrics_addr);
    let out = dir.path().join("out.cef");
    let expected = expected_lines(&cfg_path, &connection_scenario(N, 10, 1), dir.path());
    let mut fwd = Forwarder::run(&cfg_path, &[], &dir.path().join("run.log"));
    assert!(
        eventually(SOON, || file_lines(&out).len() >= N),
        "{} of {N} lines; log:\n{}",
        file_lines(&out).len(),
        tail(&fwd.log_text(), 30)
    );
    std::thread::sleep(Duration::from_secs(3));
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
    let log = fwd.log_text();
    assert!(
        log.contains("no message from the FMC for 2s")
            && log.contains(&format!("switching to its peer 127.0.0.1:{port_b}")),
        "{}",
        tail(&log, 30)
    );
    let got = file_lines(&out);
    assert_exactly_once(&expected, &got);
}

#[test]
fn ha_pair_survives_both_peers_dying_and_a_restart_with_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    let (port_a, port_b) = (free_port(), free_port());
    // Paced at 1,000 records/s. A dies after 1,000 messages (a message holds one record or
    // a few); B is 7 s later on its archive clock, and is stopped by the test later.
    let a = peer(&pki, port_a, 0, vec![Fault::ExitAfter(1_000)]);
    let b = peer(&pki, port_b, 7, vec![]);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let cfg_path = write_config(dir.path(), &pki, [port_a, port_b], &metrics_addr);
    let out = dir.path().join("out.cef");
    let expected = expected_lines(&cfg_path, &connection_scenario(N, 10, 1), dir.path());
    assert_eq!(expected.len(), N);

    // A streams, dies; the forwarder switches to B.
    let mut fwd = Forwarder::run(&cfg_path, &[], &dir.path().join("run1.log"));
    assert!(
        eventually(SOON, || a.handle.as_ref().unwrap().exited().is_some()),
        "peer A did not die"
    );
    let switches = || {
        scrape(&metrics_addr)
            .ok()
            .and_then(|m| metric(&m, "estreamer_cef_fmc_peer_switches_total"))
            .unwrap_or(0.0)
    };
    assert!(
        eventually(SOON, || switches() >= 1.0),
        "no switch after A died; log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    let at_switch = file_lines(&out).len();
    assert!(at_switch < N, "A died mid-stream ({at_switch} lines)");
    assert!(
        eventually(SOON, || file_lines(&out).len() >= at_switch + 300),
        "B sends nothing new: {} lines; log:\n{}",
        file_lines(&out).len(),
        tail(&fwd.log_text(), 30)
    );
    // SIGTERM in the middle of B's stream, and a new start: it resumes on B from the bookmark.
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
    let log1 = fwd.log_text();
    assert!(
        log1.contains(&format!("switching to its peer 127.0.0.1:{port_b}")),
        "{}",
        tail(&log1, 30)
    );
    let state = dir.path().join("state").join(format!("127.0.0.1-{port_a}"));
    let bookmark = std::fs::read_to_string(state.join("bookmark.json")).unwrap();
    assert!(
        bookmark.contains(&format!("\"peer\": \"127.0.0.1:{port_b}\"")),
        "the bookmark is on B's clock: {bookmark}"
    );

    let mut fwd = Forwarder::run(&cfg_path, &[], &dir.path().join("run2.log"));
    // B streams on from the bookmark, then dies too (its process gone: connections and
    // listener); A comes back (same address) and is switched to.
    let restarted = file_lines(&out).len();
    assert!(
        eventually(SOON, || file_lines(&out).len() >= restarted + 300),
        "B sends nothing after the restart; log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    assert!(file_lines(&out).len() < N, "B died mid-stream");
    drop(b);
    drop(a);
    let _a2 = peer(&pki, port_a, 0, vec![]);
    assert!(
        eventually(SOON * 2, || file_lines(&out).len() >= N),
        "{} of {N} lines; log:\n{}",
        file_lines(&out).len(),
        tail(&fwd.log_text(), 30)
    );
    // Anything repeated would come now.
    std::thread::sleep(Duration::from_secs(3));
    // A' was asked for the overlap before B's last second: repeats came, and were dropped.
    let metrics = scrape(&metrics_addr).unwrap();
    let dropped = metric(&metrics, "estreamer_cef_records_duplicate_total").unwrap();
    assert!(dropped > 0.0, "no repeat recognized:\n{metrics}");
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
    let log2 = fwd.log_text();
    assert!(
        log2.contains(&format!("switching to its peer 127.0.0.1:{port_a}")),
        "{}",
        tail(&log2, 30)
    );

    let got = file_lines(&out);
    assert_exactly_once(&expected, &got);
}
