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

/// Seconds in a logged duration such as "4.012s" or "850ms" at the start of `text`.
fn logged_seconds(text: &str) -> Option<f64> {
    let word = text.split_whitespace().next()?;
    match word.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>().ok().map(|v| v / 1000.0),
        None => word.strip_suffix('s')?.parse().ok(),
    }
}

#[test]
fn a_killed_peer_is_left_within_failover_after_plus_one_connect_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    let (port_a, port_b) = (free_port(), free_port());
    // Long enough that A is still streaming when it is killed.
    let scenario = || connection_scenario(40_000, 10, 1);
    let sim = |port, offset| {
        let mut c = SimulatorConfig::new(format!("127.0.0.1:{port}").parse().unwrap(), &pki.files);
        c.rate = Some(1_000);
        c.archive_offset = offset;
        SimFmc::start(c, scenario())
    };
    let a = sim(port_a, 0);
    let _b = sim(port_b, -5);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let cfg_path = write_config(dir.path(), &pki, [port_a, port_b], &metrics_addr);
    // failover_after 4 s; the backoff starts at 3.5 s, so that the old rule (switch only after
    // a failed reconnect, waits doubling: 2.6-3.5 s, then 5.25-7 s) switched 7.9 s or more
    // after the kill. A refused connect is immediate, so the bound is failover_after plus the
    // connect timeout (2 s), and that 2 s is also the slack for a loaded machine.
    // identity_window = 16 on this pair must be warned about at start.
    let text = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace(
            "reconnect_delay_min = \"200ms\"",
            "reconnect_delay_min = \"3.5s\"",
        )
        .replace(
            "reconnect_delay_max = \"1s\"",
            "reconnect_delay_max = \"60s\"",
        )
        .replace("connect_timeout = \"20s\"", "connect_timeout = \"2s\"")
        .replace(
            "failover_after = \"2s\"",
            "failover_after = \"4s\"\nidentity_window = 16",
        );
    std::fs::write(&cfg_path, text).unwrap();
    let out = dir.path().join("out.cef");
    let mut fwd = Forwarder::run(&cfg_path, &[], &dir.path().join("run.log"));
    assert!(
        eventually(SOON, || file_lines(&out).len() >= 500),
        "A streams nothing; log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    let switches = || {
        scrape(&metrics_addr)
            .ok()
            .and_then(|m| metric(&m, "estreamer_cef_fmc_peer_switches_total"))
            .unwrap_or(-1.0)
    };
    assert!(switches() < 1.0, "a switch before A was killed");
    let killed = std::time::Instant::now();
    drop(a);
    assert!(
        eventually(SOON, || switches() >= 1.0),
        "no switch after A was killed; log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    let took = killed.elapsed();
    let log = fwd.log_text();
    assert!(
        took < Duration::from_secs(6),
        "the switch came {took:?} after the kill (failover_after 4s + connect_timeout 2s); \
         log:\n{}",
        tail(&log, 30)
    );
    // The log says the silence observed (at least failover_after, and not the configured
    // value word for word).
    let line = log
        .lines()
        .find(|l| l.contains(&format!("switching to its peer 127.0.0.1:{port_b}")))
        .unwrap_or_else(|| panic!("no switch logged:\n{}", tail(&log, 30)));
    let observed = line
        .split("has sent nothing for ")
        .nth(1)
        .and_then(logged_seconds)
        .unwrap_or_else(|| panic!("no silence in {line:?}"));
    assert!(
        (4.0..6.0).contains(&observed) && line.contains("failover_after = \"4s\""),
        "{line}"
    );
    assert!(
        log.contains("fmc.identity_window = 16 cannot hold"),
        "no warning about the window at start:\n{}",
        tail(&log, 30)
    );
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
}

#[test]
fn check_config_and_test_warn_about_a_window_too_small_for_the_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    // Nothing listens on these ports: `test` fails to connect, but warns first.
    let cfg_path = write_config(
        dir.path(),
        &pki,
        [free_port(), free_port()],
        &format!("127.0.0.1:{}", free_port()),
    );
    let text = std::fs::read_to_string(&cfg_path).unwrap().replace(
        "failover_after = \"2s\"",
        "failover_after = \"2s\"\nidentity_window = 16",
    );
    std::fs::write(&cfg_path, text).unwrap();
    let run = |cmd: &str| {
        std::process::Command::new(bin())
            .arg("-c")
            .arg(&cfg_path)
            .arg(cmd)
            .output()
            .unwrap()
    };
    let check = run("check-config");
    assert!(check.status.success(), "{check:?}");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("warning: fmc.identity_window = 16 cannot hold")
            && stderr.contains("fmc.failover_overlap = \"60s\"")
            && stderr.contains("fmc.expected_rate = 2000")
            && stderr.contains("Set fmc.identity_window = 240000"),
        "{stderr}"
    );
    // The printed configuration itself stays a loadable file (the warning is not in it).
    assert!(!String::from_utf8_lossy(&check.stdout).contains("cannot hold"));
    let test = run("test");
    let stdout = String::from_utf8_lossy(&test.stdout);
    assert!(
        stdout.contains("[WARN] configuration: fmc.identity_window = 16 cannot hold"),
        "{stdout}"
    );
    // With the value proposed, no warning.
    let text = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace("identity_window = 16", "identity_window = 240000");
    std::fs::write(&cfg_path, text).unwrap();
    let check = run("check-config");
    assert!(
        !String::from_utf8_lossy(&check.stderr).contains("warning"),
        "{check:?}"
    );
}
