//! SIGHUP reloads the mapping tables of a running forwarder: a new override takes effect with no
//! restart; a table that fails the check is refused and the tables in use stay.

#[path = "sim_support/mod.rs"]
mod sim_support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use estreamer_cef_sim::generate::{GenOptions, generate};
use estreamer_cef_sim::server::serve;
use sim_support::TestPki;

const BIN: &str = env!("CARGO_BIN_EXE_estreamer-cef");

const OVERRIDE: &str = r#"
[[mapping]]
records = [71]
class_id = "CONN:71"
name = "Connection (remapped)"
severity = 3
[mapping.extension]
cs6 = "@firewallRule"
cs6Label = "'Access Rule'"
externalId = "connectionCounter"
"#;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_for(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_mappings_and_refuses_broken_ones() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let g = generate(&GenOptions {
        seed: 5,
        events_per_type: 20,
        record_types: Some(vec![71]),
        ..GenOptions::default()
    });
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let mut sim = pki.simulator();
    sim.loop_events = true;
    sim.rate = Some(50);
    sim.bundle_size = 1;
    let handle = serve(sim, Arc::new(g.scenario), shutdown).await.unwrap();
    let mappings = dir.path().join("mappings");
    std::fs::create_dir(&mappings).unwrap();
    let out = dir.path().join("out.cef");
    let cfg = dir.path().join("estreamer-cef.toml");
    std::fs::write(
        &cfg,
        format!(
            "[fmc]\nhost = \"127.0.0.1\"\nport = {}\npkcs12 = \"{}\"\npkcs12_password_file = \"{}\"\n\
             start = \"genesis\"\n[state]\ndir = \"{}\"\n[cef]\nmappings_dir = \"{}\"\n\
             [[output]]\ntransport = \"file\"\npath = \"{}\"\nformat = \"cef\"\n",
            handle.local_addr().port(),
            pki.files.client_pkcs12.display(),
            pki.files.client_pass.display(),
            dir.path().join("state").display(),
            mappings.display(),
            out.display()
        ),
    )
    .unwrap();

    let mut child = Command::new(BIN)
        .args(["-v", "-c"])
        .arg(&cfg)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let result = std::panic::catch_unwind(|| {
        // Built-in table first.
        wait_for("built-in lines", Duration::from_secs(60), || {
            lines(&out)
                .iter()
                .any(|l| l.contains("|RNA:1003:1|CONNECTION STATISTICS|"))
        });
        // A valid override, then SIGHUP: new lines use it.
        std::fs::write(mappings.join("connection.toml"), OVERRIDE).unwrap();
        unsafe { libc::kill(pid, libc::SIGHUP) };
        wait_for("remapped lines", Duration::from_secs(60), || {
            lines(&out)
                .iter()
                .any(|l| l.contains("|CONN:71|Connection (remapped)|3|"))
        });
        let remapped = lines(&out)
            .into_iter()
            .find(|l| l.contains("|CONN:71|"))
            .unwrap();
        assert!(remapped.contains("cs6Label=Access Rule"), "{remapped}");
        // A broken override: refused, the remapped table stays in use.
        std::fs::write(
            mappings.join("connection.toml"),
            OVERRIDE.replace("connectionCounter", "connectionCountr"),
        )
        .unwrap();
        let before = lines(&out).len();
        unsafe { libc::kill(pid, libc::SIGHUP) };
        wait_for(
            "more lines after the refused reload",
            Duration::from_secs(60),
            || lines(&out).len() > before + 10,
        );
        assert!(
            lines(&out)[before..]
                .iter()
                .all(|l| l.contains("|CONN:71|")),
            "the previous tables stay in use"
        );
    });
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let _ = child.wait();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    if let Err(e) = result {
        eprintln!("{err}");
        std::panic::resume_unwind(e);
    }
    assert!(err.contains("mapping tables reloaded"), "{err}");
    assert!(err.contains("mapping tables NOT reloaded"), "{err}");
    assert!(
        err.contains("connection.toml:") && err.contains("connectionCountr"),
        "the refusal names the file, the line and the field: {err}"
    );
}
