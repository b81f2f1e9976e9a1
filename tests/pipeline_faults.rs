//! Records the decoder cannot handle, in the middle of a live stream: an unknown record type
//! (9999, twice) and a truncated record. Both are counted and logged — the unknown type once,
//! however often it comes — the records around them are forwarded, and the FMC session stays up.
//! Then a restart: the metadata cache saved by the first run names the events of a second run
//! whose FMC sends no metadata at all.

#[path = "sim_support/mod.rs"]
mod sim_support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use estreamer_cef_sim::generate::{GenOptions, generate, truncated, unknown_record};
use estreamer_cef_sim::scenario::Scenario;
use estreamer_cef_sim::server::serve;
use sim_support::TestPki;

const BIN: &str = env!("CARGO_BIN_EXE_estreamer-cef");

fn write_config(dir: &Path, pki: &TestPki, port: u16, out: &Path) -> std::path::PathBuf {
    let cfg = format!(
        "[fmc]\nhost = \"127.0.0.1\"\nport = {port}\npkcs12 = \"{}\"\npkcs12_password_file = \"{}\"\n\
         start = \"bookmark\"\nidle_timeout = \"30s\"\n\
         [state]\ndir = \"{}\"\n[cef]\nmappings_dir = \"{}\"\n\
         [[output]]\ntransport = \"file\"\npath = \"{}\"\nformat = \"cef\"\n",
        pki.files.client_pkcs12.display(),
        pki.files.client_pass.display(),
        dir.join("state").display(),
        dir.join("no-overrides").display(),
        out.display()
    );
    let p = dir.join("estreamer-cef.toml");
    std::fs::write(&p, cfg).unwrap();
    p
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs `estreamer-cef run` until `out` has `want` lines, then stops it with SIGTERM.
/// Returns its stderr.
fn run_until(cfg: &Path, out: &Path, want: usize) -> String {
    let mut child = Command::new(BIN)
        .args(["-v", "-c"])
        .arg(cfg)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while lines(out).len() < want && Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("estreamer-cef run exited early ({status}):\n{err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "estreamer-cef run failed ({status}):\n{err}"
    );
    assert!(
        lines(out).len() >= want,
        "only {} of {want} lines:\n{err}",
        lines(out).len()
    );
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_records_are_counted_logged_and_skipped() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let g = generate(&GenOptions {
        seed: 3,
        events_per_type: 6,
        record_types: Some(vec![71]),
        ..GenOptions::default()
    });
    let mut scenario: Scenario = g.scenario.clone();
    let events = std::mem::take(&mut scenario.events);
    assert_eq!(events.len(), 6);
    let second = events[2].archive_second;
    // 0 1 2 [9999] [3 truncated] [9999] 4 5
    let mut with_faults = events[..3].to_vec();
    with_faults.push(unknown_record(9999, second, 40));
    with_faults.push(truncated(&events[3], 5));
    with_faults.push(unknown_record(9999, second, 12));
    with_faults.extend_from_slice(&events[4..]);
    scenario.events = with_faults;

    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let mut sim = pki.simulator();
    sim.bundle_size = 2;
    let handle = serve(sim, Arc::new(scenario), shutdown).await.unwrap();
    let out = dir.path().join("out.cef");
    let cfg = write_config(dir.path(), &pki, handle.local_addr().port(), &out);

    // 5 connection events and the 2 unknown records (the built-in "unknown" table ships them
    // as generic events when there is one; either way the 5 connection events must be there).
    let err = tokio::task::spawn_blocking({
        let (cfg, out) = (cfg.clone(), out.clone());
        move || run_until(&cfg, &out, 5)
    })
    .await
    .unwrap();

    let got = lines(&out);
    let connections = got.iter().filter(|l| l.contains("|RNA:1003:1|")).count();
    assert_eq!(
        connections, 5,
        "the records around the bad ones are forwarded:\n{got:#?}"
    );
    assert_eq!(
        err.matches("record type 9999 is not in the catalog")
            .count(),
        1,
        "the unknown type is warned about once:\n{err}"
    );
    let malformed: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("skipping malformed record #"))
        .collect();
    assert_eq!(malformed.len(), 1, "{err}");
    assert!(
        malformed[0].contains("record type 71") && malformed[0].contains("first bytes: 00000047"),
        "the warning names the type, the index and the first bytes: {}",
        malformed[0]
    );
    assert!(
        malformed[0].contains(&format!("#{}", g.scenario.metadata.len() + 4)),
        "{}",
        malformed[0]
    );
    // One FMC session only: nothing made it reconnect.
    assert_eq!(handle.sessions().len(), 1, "the session stayed up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_cache_survives_a_restart() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let g = generate(&GenOptions {
        seed: 11,
        events_per_type: 3,
        record_types: Some(vec![71]),
        unknown_id_rate: 0.0,
        ..GenOptions::default()
    });
    let out = dir.path().join("out.cef");

    // First run: metadata, then three events.
    let (_stop1, sd1) = tokio::sync::watch::channel(false);
    let h1 = serve(pki.simulator(), Arc::new(g.scenario.clone()), sd1)
        .await
        .unwrap();
    let cfg = write_config(dir.path(), &pki, h1.local_addr().port(), &out);
    tokio::task::spawn_blocking({
        let (cfg, out) = (cfg.clone(), out.clone());
        move || run_until(&cfg, &out, 3)
    })
    .await
    .unwrap();
    let first = lines(&out);
    assert!(
        dir.path()
            .join("state")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );

    // Second run: the same FMC (same address: the state is kept per FMC) now sends the same
    // events again but no metadata at all (start from genesis so they are not skipped as
    // already delivered).
    let port = h1.local_addr().port();
    drop(_stop1);
    h1.stopped().await;
    let mut no_meta = g.scenario.clone();
    no_meta.metadata.clear();
    let (_stop2, sd2) = tokio::sync::watch::channel(false);
    let mut sim = pki.simulator();
    sim.listen = format!("127.0.0.1:{port}").parse().unwrap();
    let h2 = serve(sim, Arc::new(no_meta), sd2).await.unwrap();
    std::fs::remove_file(&out).unwrap();
    let cfg2 = write_config(dir.path(), &pki, h2.local_addr().port(), &out);
    let text = std::fs::read_to_string(&cfg2)
        .unwrap()
        .replace("start = \"bookmark\"", "start = \"genesis\"");
    std::fs::write(&cfg2, text).unwrap();
    tokio::task::spawn_blocking({
        let (cfg2, out) = (cfg2.clone(), out.clone());
        move || run_until(&cfg2, &out, 3)
    })
    .await
    .unwrap();
    let second = lines(&out);
    assert_eq!(first, second, "the same names resolve from the saved cache");
    assert!(
        second.iter().all(|l| l.contains("dvchost=ftd-")),
        "sensor names come from the saved cache: {second:#?}"
    );
}
