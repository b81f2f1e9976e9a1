//! `estreamer-cef import-encore`: eNcore's configuration (fixtures of our own in its format:
//! its default shape, what its `configure --output=cef` leaves for CEF over UDP, and one with
//! every kind of outputter) becomes a configuration our real loader accepts, and its bookmark
//! our first resume point; bad input is refused naming the file and the key.

mod delivery_support;
mod sim_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use delivery_support::*;
use estreamer_cef_sim::server::SimulatorConfig;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/encore")
        .join(name)
}

fn estreamer_cef(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("ESTREAMER_CEF_FMC__PKCS12_PASSWORD")
        .output()
        .unwrap()
}

fn import(conf: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["import-encore".as_ref(), conf.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    estreamer_cef(&args)
}

/// The imported configuration, checked by `check-config` (our real loader); returns the
/// imported text and what check-config printed.
fn import_and_check(conf: &Path, dir: &Path) -> (String, String) {
    let out = import(conf, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "import-encore failed: {stderr}");
    let toml = String::from_utf8(out.stdout).unwrap();
    let path = dir.join("estreamer-cef.toml");
    std::fs::write(&path, &toml).unwrap();
    let check = estreamer_cef(&["-c".as_ref(), path.as_os_str(), "check-config".as_ref()]);
    assert!(
        check.status.success(),
        "check-config refuses the imported configuration: {}\n{toml}",
        String::from_utf8_lossy(&check.stderr)
    );
    (toml, String::from_utf8(check.stdout).unwrap())
}

#[test]
fn the_default_configuration_carries_over_with_a_comment_on_what_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (toml, effective) = import_and_check(&fixture("default.conf"), dir.path());
    let pkcs12 = fixture("client.pkcs12");
    for want in [
        "host = \"1.2.3.4\"",
        "port = 8302",
        &format!("pkcs12 = \"{}\"", pkcs12.display()),
        "start = \"bookmark\"",
        "connect_timeout = \"10s\"",
        "period = \"120s\"",
        "archive_timestamps = true",
        "extra_data = true",
        "impact_alerts = true",
        "rna = true",
        "include = []",
        // Each setting with no equivalent is named, with why.
        "# eNcore: enabled = false",
        "# eNcore: workerProcesses = 4 is not carried over",
        "# eNcore: responseTimeout = 2",
        "# eNcore: tlsVersion = 1.2 is not carried over",
        "# eNcore: monitor.velocity, monitor.bookmark",
        "# eNcore: no enabled outputter wrote CEF",
    ] {
        assert!(toml.contains(want), "no {want:?} in:\n{toml}");
    }
    // What the loader made of it.
    for want in [
        "host = \"1.2.3.4\"",
        "start = \"bookmark\"",
        "connect_timeout = \"10s\"",
    ] {
        assert!(effective.contains(want), "no {want:?} in:\n{effective}");
    }
}

#[test]
fn cef_over_udp_as_encore_configure_writes_it_becomes_a_udp_output() {
    let dir = tempfile::tempdir().unwrap();
    let (toml, effective) = import_and_check(&fixture("cef-udp.conf"), dir.path());
    assert!(
        toml.contains("[[output]]\ntransport = \"udp\"\nhost = \"10.20.30.40\"\nport = 514\n")
            && toml.contains("host = \"fmc.example.net\""),
        "{toml}"
    );
    // eNcore's messages: BSD syslog header, facility user, severity notice.
    let output = effective
        .split("[[output]]")
        .nth(1)
        .unwrap_or_else(|| panic!("no output in:\n{effective}"));
    for want in [
        "transport = \"udp\"",
        "host = \"10.20.30.40\"",
        "port = 514",
        "format = \"rfc3164\"",
    ] {
        assert!(output.contains(want), "no {want:?} in:\n{output}");
    }
    assert!(!toml.contains("# eNcore: enabled"), "{toml}");
}

#[test]
fn every_server_and_outputter_is_carried_over_or_explained() {
    let dir = tempfile::tempdir().unwrap();
    let (toml, effective) = import_and_check(&fixture("many-outputs.conf"), dir.path());
    let base = fixture("");
    for want in [
        "[[fmc]]\nhost = \"fmc.example.net\"",
        "[[fmc]]\nhost = \"fmc2.example.net\"",
        "eNcore read only the first of subscription.servers",
        "start = \"genesis\"  # eNcore start = 0",
        "include = [400]",
        "exclude = [71, 160]",
        // splunk over relfile: a CEF file where eNcore wrote, relative to its folder.
        "the \"splunk\" adapter has no equivalent",
        &format!(
            "transport = \"file\"\npath = \"{}\"",
            base.join("data/splunk/encore.log").display()
        ),
        // json: the tap.
        "[tap]\npath = \"/var/log/encore/json/encore.json\"\nformat = \"json\"",
        "transport = \"tcp\"\nhost = \"siem.example.net\"\nport = 1514",
        "outputter 3 (cef, udp://old-siem.example.net:514) was disabled",
        "outputter 4 (cef, scp://",
        "maxLogs",
    ] {
        assert!(toml.contains(want), "no {want:?} in:\n{toml}");
    }
    assert!(!toml.contains("old-siem.example.net\""), "{toml}");
    assert_eq!(effective.matches("[[output]]").count(), 2, "{effective}");
    assert_eq!(effective.matches("[[fmc]]").count(), 2, "{effective}");
}

/// Runs import-encore on `text` written as estreamer.conf (in `dir`); the file and the stderr.
fn import_text_fails(dir: &Path, text: &str) -> (PathBuf, String) {
    let conf = dir.join("estreamer.conf");
    std::fs::write(&conf, text).unwrap();
    let out = import(&conf, &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stdout.is_empty(),
        "a configuration printed despite the error"
    );
    (conf, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_json_unknown_keys_and_missing_files_are_refused_naming_file_and_key() {
    let default = std::fs::read_to_string(fixture("default.conf")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let import_text_fails = |text: &str| import_text_fails(tmp.path(), text);

    let (conf, e) = import_text_fails(&default.replace("\"start\": 2,", "\"start\": 2"));
    assert!(
        e.contains(&format!("{} is not valid JSON", conf.display())) && e.contains("line"),
        "{e}"
    );

    let (conf, e) =
        import_text_fails(&default.replace("\"rua\": true", "\"rua\": true, \"ruaa\": 1"));
    assert!(
        e.contains(&format!(
            "{}: key `handler.records.ruaa`: unknown eNcore setting",
            conf.display()
        )),
        "{e}"
    );
    let (_, e) = import_text_fails(&default.replace("\"responseTimeout\"", "\"respnseTimeout\""));
    assert!(
        e.contains("key `respnseTimeout`: unknown eNcore setting"),
        "{e}"
    );

    // eNcore's configure leaves placeholders in the URI for the operator to fill in.
    let (_, e) = import_text_fails(&default.replace(
        "\"outputters\": []",
        r#""outputters": [{"adapter": "cef", "enabled": true, "stream": {"uri": "udp://{host}:{port}"}}]"#,
    ));
    assert!(
        e.contains("key `handler.outputters[0].stream.uri`") && e.contains("fill in"),
        "{e}"
    );
    let (_, e) = import_text_fails(&default.replace("\"start\": 2", "\"start\": 3"));
    assert!(e.contains("key `start`: is 3"), "{e}");

    let missing = Path::new("/nonexistent/encore/estreamer.conf");
    let out = import(missing, &[]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2)
            && e.contains("cannot read eNcore's configuration /nonexistent/encore/estreamer.conf"),
        "{e}"
    );
}

#[test]
fn a_bad_or_missing_bookmark_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_arg = state.display().to_string();
    let conf = fixture("cef-udp.conf");
    let bookmark = dir.path().join("fmc.example.net-8302_bookmark.dat");
    for (content, want) in [
        (None, "cannot read eNcore's bookmark"),
        (
            Some("{\"1\": 17356"),
            "is not eNcore's bookmark: not valid JSON",
        ),
        (
            Some("{\"1\": 1735689700, \"x\": 1}"),
            "key `x` is not one eNcore writes",
        ),
        (Some("[1735689700]"), "is not eNcore's bookmark"),
    ] {
        if let Some(c) = content {
            std::fs::write(&bookmark, c).unwrap();
        }
        let out = import(
            &conf,
            &[
                "--bookmark",
                &bookmark.display().to_string(),
                "--state-dir",
                &state_arg,
            ],
        );
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(2)
                && e.contains(&bookmark.display().to_string())
                && e.contains(want),
            "{content:?}: {e}"
        );
        assert!(!state.exists(), "state written for a bad bookmark");
    }
    // A bookmark of an FMC the configuration does not stream from.
    let other = dir.path().join("10.9.9.9-8302_bookmark.dat");
    std::fs::write(&other, "{\"1\": 1735689700}").unwrap();
    let out = import(
        &conf,
        &[
            "--bookmark",
            &other.display().to_string(),
            "--state-dir",
            &state_arg,
        ],
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("10.9.9.9-8302, which is not among"), "{e}");
}

#[test]
fn the_first_start_resumes_where_encore_stopped() {
    const N: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let pki = sim_support::TestPki::new();
    let port = free_port();
    let mut sim_cfg =
        SimulatorConfig::new(format!("127.0.0.1:{port}").parse().unwrap(), &pki.files);
    sim_cfg.rate = Some(5_000);
    let _fmc = SimFmc::start(sim_cfg, connection_scenario(N, 10, 1));

    // eNcore's folder: its configuration (CEF to a file) and the bookmark it left, 100
    // seconds into the FMC's archive (10 events a second).
    let encore = dir.path().join("encore");
    std::fs::create_dir_all(encore.join("data/cef")).unwrap();
    let resume = BASE_SECOND + 100;
    let conf = serde_json::json!({
        "connectTimeout": 10,
        "responseTimeout": 2,
        "start": 2,
        "enabled": true,
        "subscription": {
            "records": {
                "archiveTimestamps": true, "eventExtraData": true, "extended": true,
                "impactEventAlerts": true, "intrusion": true, "metadata": true, "packetData": true
            },
            "servers": [{
                "host": "127.0.0.1", "port": port, "tlsVersion": 1.2,
                "pkcs12Filepath": pki.files.client_pkcs12.display().to_string()
            }]
        },
        "handler": {
            "records": {
                "connections": true, "core": true, "exclude": [], "include": [], "intrusion": true,
                "metadata": true, "packets": true, "rna": true, "rua": true
            },
            "outputters": [{
                "adapter": "cef", "enabled": true,
                "stream": {"uri": "relfile:///data/cef/encore.{0}.log"}
            }]
        }
    });
    let conf_path = encore.join("estreamer.conf");
    std::fs::write(&conf_path, serde_json::to_string_pretty(&conf).unwrap()).unwrap();
    let bookmark = encore.join(format!("127.0.0.1-{port}_bookmark.dat"));
    std::fs::write(&bookmark, format!("{{\"1\": {resume}}}")).unwrap();

    let state = dir.path().join("state");
    let out = import(
        &conf_path,
        &[
            "--bookmark",
            &bookmark.display().to_string(),
            "--state-dir",
            &state.display().to_string(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "resumes from the FMC at 127.0.0.1:{port} since {resume}"
        )),
        "{stderr}"
    );
    // Only what eNcore could not know changes: the PKCS12 password file, and no mapping
    // overrides of this machine.
    let toml = String::from_utf8(out.stdout).unwrap().replace(
        "\"/etc/estreamer-cef/client.pass\"",
        &toml::Value::String(pki.files.client_pass.display().to_string()).to_string(),
    ) + &format!(
        "\n[cef]\nmappings_dir = {}\n",
        toml::Value::String(dir.path().join("no-mappings").display().to_string())
    );
    let cfg_path = dir.path().join("estreamer-cef.toml");
    std::fs::write(&cfg_path, &toml).unwrap();

    let out_file = encore.join("data/cef/encore.log");
    let mut fwd = Forwarder::run(&cfg_path, &[], &dir.path().join("run.log"));
    // Events from the bookmarked second on: 100 seconds × 10 events were delivered by eNcore.
    let want = N - 1_000;
    assert!(
        eventually(SOON, || file_lines(&out_file).len() >= want),
        "{} of {want} lines; log:\n{}",
        file_lines(&out_file).len(),
        tail(&fwd.log_text(), 30)
    );
    std::thread::sleep(Duration::from_secs(2));
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
    let log = fwd.log_text();
    assert!(
        log.contains(&format!("requested events since {resume}")),
        "{}",
        tail(&log, 30)
    );
    let lines = file_lines(&out_file);
    assert_eq!(lines.len(), want, "{}", tail(&log, 30));
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("<") && l.contains("CEF:0|")),
        "{}",
        lines[0]
    );
}
