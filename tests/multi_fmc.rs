//! Several FMCs in one service, with the real binary: three `[[fmc]]` tables feed one output;
//! one FMC refuses every connection. The other two are delivered completely and exactly once,
//! across a SIGTERM restart in the middle of their streams; every FMC is named in the log and at
//! `/metrics`; `check-config` shows all three and `test` checks each.

mod delivery_support;
mod sim_support;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use delivery_support::*;
use estreamer_cef_sim::faults::Fault;
use estreamer_cef_sim::server::SimulatorConfig;

const N: usize = 3_000;

/// A configuration with one `[[fmc]]` per (name, port), a file output and a metrics listener.
fn config(dir: &Path, pki: &sim_support::TestPki, fmcs: &[(&str, u16)], metrics: &str) -> String {
    let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let mut t = String::new();
    for (name, port) in fmcs {
        let _ = writeln!(
            t,
            "[[fmc]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\npkcs12 = {}\n\
             pkcs12_password_file = {}\nstart = \"bookmark\"\nreconnect_delay_min = \"200ms\"\n\
             reconnect_delay_max = \"1s\"\nconnect_timeout = \"20s\"\n",
            q(&pki.files.client_pkcs12),
            q(&pki.files.client_pass),
        );
    }
    let _ = writeln!(
        t,
        "[state]\ndir = {}\n[cef]\nmappings_dir = {}\n[monitor]\nperiod = \"1s\"\nlisten = \"{metrics}\"\n\
         [[output]]\ntransport = \"file\"\npath = {}\nformat = \"cef\"\n",
        q(&dir.join("state")),
        q(&dir.join("no-mappings")),
        q(&dir.join("out.cef")),
    );
    t
}

#[test]
fn three_fmcs_one_failing_the_others_delivered_exactly_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    let start = |seed: u64, faults: Vec<Fault>| {
        let mut c = SimulatorConfig::new("127.0.0.1:0".parse().unwrap(), &pki.files);
        c.rate = Some(1_000);
        c.faults = faults;
        SimFmc::start(c, connection_scenario(N, 10, seed))
    };
    let a = start(1, vec![]);
    let b = start(2, vec![]);
    // Refuses every client right after the TLS handshake, as an FMC does for a wrong CN.
    let c = start(3, vec![Fault::CloseAfterHandshake]);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let cfg_path = dir.path().join("estreamer-cef.toml");
    let fmcs = [("a", a.port()), ("b", b.port()), ("c", c.port())];
    std::fs::write(&cfg_path, config(dir.path(), &pki, &fmcs, &metrics_addr)).unwrap();
    let out = dir.path().join("out.cef");

    // What should arrive: every event of a and b, once.
    let mut expected = expected_lines(&cfg_path, &connection_scenario(N, 10, 1), dir.path());
    expected.extend(expected_lines(
        &cfg_path,
        &connection_scenario(N, 10, 2),
        dir.path(),
    ));
    assert_eq!(expected.len(), 2 * N);
    let distinct: HashSet<&str> = expected.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(distinct.len(), 2 * N, "the two FMCs' events differ");

    // `check-config` shows the three FMCs.
    let shown = Command::new(bin())
        .arg("-c")
        .arg(&cfg_path)
        .arg("check-config")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert_eq!(shown.matches("[[fmc]]").count(), 3, "{shown}");
    for name in ["a", "b", "c"] {
        assert!(shown.contains(&format!("name = \"{name}\"")), "{shown}");
    }

    // First run: stopped with SIGTERM in the middle of the streams.
    let mut fwd = Forwarder::run(&cfg_path, &[], &dir.path().join("run1.log"));
    assert!(
        eventually(SOON, || file_lines(&out).len() >= 1_500),
        "log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
    let after_first = file_lines(&out).len();
    assert!(after_first < 2 * N, "stopped mid-stream ({after_first})");
    let log1 = fwd.log_text();

    // Second run: the rest.
    let mut fwd = Forwarder::run(&cfg_path, &[], &dir.path().join("run2.log"));
    assert!(
        eventually(SOON, || file_lines(&out).len() >= 2 * N),
        "{} of {} lines; log:\n{}",
        file_lines(&out).len(),
        2 * N,
        tail(&fwd.log_text(), 30)
    );
    // The failing FMC keeps failing and stays named; the others' counters are theirs.
    let metrics = scrape(&metrics_addr).expect("GET /metrics");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
    let log2 = fwd.log_text();

    let got = file_lines(&out);
    assert_exactly_once(&expected, &got);
    assert_eq!(got.len(), 2 * N);

    for (name, connected) in [("a", 1.0), ("b", 1.0), ("c", 0.0)] {
        let series = format!("estreamer_cef_fmc_connected{{fmc=\"{name}\"}}");
        assert_eq!(
            metric(&metrics, &series),
            Some(connected),
            "{series}:\n{metrics}"
        );
    }
    let handled = |name: &str| {
        metric(
            &metrics,
            &format!("estreamer_cef_records_handled_total{{fmc=\"{name}\"}}"),
        )
        .unwrap_or(-1.0)
    };
    assert!(handled("a") > 0.0 && handled("b") > 0.0, "{metrics}");
    assert_eq!(handled("c"), 0.0);
    assert!(
        metric(&metrics, "estreamer_cef_fmc_reconnects_total{fmc=\"c\"}").unwrap() >= 1.0,
        "{metrics}"
    );
    // Log lines name their FMC: c's failures, and a status line per FMC.
    for log in [&log1, &log2] {
        assert!(
            log.lines()
                .any(|l| l.contains("fmc{name=c}") && l.contains("FMC connection failed")),
            "no failure of c named in:\n{}",
            tail(log, 40)
        );
    }
    for name in ["a", "b", "c"] {
        assert!(
            status_lines(&log2)
                .iter()
                .any(|(_, l)| l.contains(&format!("fmc{{name={name}}}"))),
            "no status line of {name}:\n{}",
            tail(&log2, 40)
        );
    }

    // `test` checks every FMC and says which one fails.
    let t = Command::new(bin())
        .arg("-c")
        .arg(&cfg_path)
        .arg("test")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&t.stdout).to_string();
    assert!(!t.status.success(), "{report}");
    for name in ["a", "b", "c"] {
        assert!(
            report.contains(&format!("== FMC {name} at 127.0.0.1:")),
            "{report}"
        );
    }
    assert!(report.contains("2 of 3 FMC connections passed"), "{report}");
}
