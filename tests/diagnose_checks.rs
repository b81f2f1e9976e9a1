//! `estreamer-cef test`: one test per way the connection to the FMC can fail, each against the
//! simulated FMC (or a plain socket) over loopback, asserting the lines a user reads; and what
//! `run` needs besides the FMC (an output, mapping tables, a state folder, each output reachable
//! or writable), the TLS output against a real syslog-ng.

mod sim_support;
#[path = "support/syslog_ng.rs"]
mod syslog_ng;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use estreamer_cef::config::{Config, Secret};
use estreamer_cef::diagnose::diagnose;
use estreamer_cef::net::tls::ServerTrust;
use estreamer_cef::output::OutputConfig;
use estreamer_cef_sim::faults::Fault;
use estreamer_cef_sim::pki::{self, PkiOptions};
use sim_support::*;

/// An `[[output]]` table as a user writes it.
fn output(toml_text: &str) -> OutputConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{toml_text}: {e}"))
}

/// The configuration a user would write for the simulator's PKI and port, with a file output and
/// a state folder in the test's folder (the built-in mapping tables).
fn config(pki: &TestPki, host: &str, port: u16) -> Config {
    let mut cfg = Config::default();
    let dir = pki.dir.path();
    cfg.state.dir = dir.join("state");
    cfg.cef.mappings_dir = dir.join("mappings");
    cfg.outputs = vec![output(&format!(
        "transport = \"file\"\npath = \"{}\"",
        dir.join("events.cef").display()
    ))];
    cfg.fmc_mut().host = host.to_string();
    cfg.fmc_mut().port = port;
    cfg.fmc_mut().pkcs12 = pki.files.client_pkcs12.clone();
    cfg.fmc_mut().pkcs12_password_file = Some(pki.files.client_pass.clone());
    cfg.fmc_mut().server_ca = ServerTrust::Pkcs12Ca;
    cfg.fmc_mut().connect_timeout = Duration::from_secs(20);
    cfg
}

async fn run(cfg: &Config) -> (bool, String) {
    let mut out = Vec::new();
    let passed = diagnose(
        cfg,
        Some(Path::new("/etc/estreamer-cef/test.toml")),
        &mut out,
    )
    .await;
    (passed, String::from_utf8(out).unwrap())
}

async fn sim(pki: &TestPki, faults: Vec<Fault>) -> Sim {
    let mut cfg = pki.simulator();
    cfg.check_cn = true;
    cfg.faults = faults;
    Sim::start(cfg, Arc::new(corpus_scenario(4))).await
}

/// The report stops at one `[FAIL]` line containing `what`, followed only by advice and the
/// closing sentence; every `advice` text appears in an indented line under it.
fn assert_fails_at(passed: bool, out: &str, what: &str, advice: &[&str]) {
    assert!(!passed, "expected a failure:\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    let fails: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("[FAIL] "))
        .collect();
    assert_eq!(fails.len(), 1, "exactly one failed step:\n{out}");
    let at = fails[0];
    assert!(
        lines[at].contains(what),
        "expected {what:?} in the [FAIL] line:\n{out}"
    );
    let after = &lines[at + 1..];
    assert!(
        after[..after.len() - 1]
            .iter()
            .all(|l| l.starts_with("       ")),
        "only indented advice after the failure:\n{out}"
    );
    assert!(after.last().unwrap().starts_with("A check failed"), "{out}");
    for a in advice {
        assert!(
            after.iter().any(|l| l.contains(a)),
            "expected advice {a:?}:\n{out}"
        );
    }
    assert!(
        lines[..at]
            .iter()
            .all(|l| l.starts_with("[ OK ] ") || l.starts_with("[WARN] "))
    );
}

#[tokio::test]
async fn every_check_passes_against_a_healthy_fmc() {
    let pki = TestPki::with(PkiOptions {
        legacy_pkcs12: false,
        ..PkiOptions::default()
    });
    let sim = sim(&pki, vec![]).await;
    let port = sim.addr().port();
    let (passed, out) = run(&config(&pki, "localhost", port)).await;
    assert!(passed, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let expected_starts = [
        "[ OK ] configuration: read /etc/estreamer-cef/test.toml".to_string(),
        format!("[ OK ] outputs: file:{}", pki.dir.path().join("events.cef").display()),
        format!(
            "[ OK ] mapping tables ({}): no such folder: the built-in tables are used",
            pki.dir.path().join("mappings").display()
        ),
        format!(
            "[ OK ] state folder {}: missing; `run` can create it in {}",
            pki.dir.path().join(format!("state/localhost-{port}")).display(),
            pki.dir.path().display()
        ),
        format!(
            "[ OK ] client PKCS12 {}: certificate O=estreamer-cef simulator, CN=127.0.0.1, issued by",
            pki.files.client_pkcs12.display()
        ),
        "[ OK ] server trust: the FMC's certificate must chain to the 1 CA certificate(s) in the PKCS12 and name \"localhost\"".to_string(),
        "[ OK ] DNS: localhost resolves to 127.0.0.1".to_string(),
        format!("[ OK ] TCP connect to localhost:{port}: connected to 127.0.0.1:{port} from 127.0.0.1:"),
        "[ OK ] TLS handshake: TLSv1.2 ".to_string(),
        "[ OK ] the FMC accepts this client (certificate CN 127.0.0.1): the FMC answered our EventStreamRequest (since now (4294967295), flags 0x48900061: w/ NS Events".to_string(),
        "[ OK ] StreamingInformation: the FMC offers service 6667 (services 5001, 5000, 6667)".to_string(),
        "[ OK ] message header version: 1".to_string(),
        format!(
            "[ OK ] output[0] file:{}: {} does not exist yet; `run` can create it",
            pki.dir.path().join("events.cef").display(),
            pki.dir.path().join("events.cef").display()
        ),
        format!("All checks passed: this machine can stream events from the FMC at localhost:{port} and send them to its output."),
    ];
    assert_eq!(lines.len(), expected_starts.len(), "{out}");
    for (line, start) in lines.iter().zip(&expected_starts) {
        assert!(
            line.starts_with(start.as_str()),
            "{line:?} should start with {start:?}\n{out}"
        );
    }
    // Like eNcore's test mode, the request starts at "now": nothing is fetched.
    let s = &sim.handle.sessions()[0];
    assert_eq!(s.request.unwrap().initial_timestamp, u32::MAX);
    assert_eq!(s.request.unwrap().flags, 0x4890_0061);
    assert!(s.logged("Got EVENT_STREAM_REQUEST length 8"));
}

#[tokio::test]
async fn a_legacy_encrypted_pkcs12_loads_and_every_check_passes() {
    // RC2-40 / 3DES, as older FMCs and OpenSSL 1.x write it.
    let pki = TestPki::with(PkiOptions {
        legacy_pkcs12: true,
        ..PkiOptions::default()
    });
    let sim = sim(&pki, vec![]).await;
    let (passed, out) = run(&config(&pki, "127.0.0.1", sim.addr().port())).await;
    assert!(passed, "{out}");
    assert!(out.contains("[ OK ] client PKCS12 "), "{out}");
    assert!(
        out.contains("[ OK ] DNS: 127.0.0.1 is an IP address, no lookup needed"),
        "{out}"
    );
    assert!(!out.contains("[FAIL]"));
}

#[tokio::test]
async fn insecure_server_trust_passes_with_a_warning() {
    let pki = TestPki::new();
    let other = TestPki::new();
    // The FMC's certificate is from a CA we do not know; without verification that goes unseen.
    let mut sim_cfg = other.simulator();
    sim_cfg.client_ca = pki.files.ca_cert.clone();
    let sim = Sim::start(sim_cfg, Arc::new(corpus_scenario(4))).await;
    let mut cfg = config(&pki, "127.0.0.1", sim.addr().port());
    cfg.fmc_mut().server_ca = ServerTrust::Insecure;
    let (passed, out) = run(&cfg).await;
    assert!(passed, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("[WARN] server trust: server certificate verification is OFF")),
        "{out}"
    );
}

#[tokio::test]
async fn a_wrong_pkcs12_password_says_where_the_password_came_from() {
    let pki = TestPki::new();
    let mut cfg = config(&pki, "127.0.0.1", 8302);
    cfg.fmc_mut().pkcs12_password = Some(Secret::new("not the password"));
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        &format!(
            "[FAIL] client PKCS12 {}: wrong password for the client PKCS12 file",
            pki.files.client_pkcs12.display()
        ),
        &[
            "Give the password that was entered on the FMC",
            "→ the password was taken from fmc.pkcs12_password",
        ],
    );
    assert!(
        !out.contains("not the password"),
        "the password must not be shown"
    );
}

#[tokio::test]
async fn a_corrupt_pkcs12_is_named_and_explained() {
    let pki = TestPki::new();
    let bad = pki.dir.path().join("broken.pkcs12");
    let mut bytes = std::fs::read(&pki.files.client_pkcs12).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&bad, bytes).unwrap();
    let mut cfg = config(&pki, "127.0.0.1", 8302);
    cfg.fmc_mut().pkcs12 = bad.clone();
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        &format!("{} is not a readable PKCS12 file", bad.display()),
        &["Download the client's PKCS12 file again from the FMC"],
    );
}

#[tokio::test]
async fn a_missing_pkcs12_is_named() {
    let pki = TestPki::new();
    let mut cfg = config(&pki, "127.0.0.1", 8302);
    cfg.fmc_mut().pkcs12 = pki.dir.path().join("nowhere.pkcs12");
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        "nowhere.pkcs12: cannot read the client PKCS12 file",
        &["→ set fmc.pkcs12 to the PKCS12 file the FMC issued"],
    );
}

#[tokio::test]
async fn a_name_that_does_not_resolve_fails_at_dns() {
    let pki = TestPki::new();
    let (passed, out) = run(&config(&pki, "no-such-host.invalid", 8302)).await;
    assert_fails_at(
        passed,
        &out,
        "[FAIL] DNS: cannot resolve \"no-such-host.invalid\"",
        &[
            "check fmc.host for a typo",
            "set fmc.host to the FMC's IP address",
        ],
    );
}

#[tokio::test]
async fn a_closed_port_is_connection_refused() {
    let pki = TestPki::new();
    let port = closed_port();
    let (passed, out) = run(&config(&pki, "127.0.0.1", port.port())).await;
    assert_fails_at(
        passed,
        &out,
        &format!(
            "[FAIL] TCP connect to 127.0.0.1:{}: connection refused by 127.0.0.1:{}",
            port.port(),
            port.port()
        ),
        &[
            "nothing listens on",
            "check fmc.port (eStreamer listens on 8302",
            "eStreamer is enabled on the FMC (System > Integration > eStreamer)",
        ],
    );
}

#[tokio::test]
async fn an_unanswered_connect_times_out_with_the_firewall_hint() {
    let pki = TestPki::new();
    // A listener whose accept queue is full drops further SYNs, like a firewall: the connect
    // gets no answer at all, on loopback, without any network.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    let mut full = false;
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => queued.push(s),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    assert!(full, "could not fill the accept queue");

    let mut cfg = config(&pki, "127.0.0.1", addr.port());
    cfg.fmc_mut().connect_timeout = Duration::from_secs(1);
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        &format!(
            "[FAIL] TCP connect to 127.0.0.1:{}: no answer within 1s",
            addr.port()
        ),
        &[
            "a firewall between this machine and the FMC drops the connection",
            &format!(
                "allow TCP port {} from this machine to the FMC",
                addr.port()
            ),
            "eStreamer listens on port 8302",
        ],
    );
    drop(queued);
}

#[tokio::test]
async fn a_listener_that_never_speaks_tls_times_out_the_handshake() {
    let pki = TestPki::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(LIMIT).await;
        drop(socket);
    });
    let mut cfg = config(&pki, "127.0.0.1", addr.port());
    cfg.fmc_mut().connect_timeout = Duration::from_secs(1);
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        "[FAIL] TLS handshake: no answer within 1s",
        &["does not speak TLS like an eStreamer server"],
    );
    holder.abort();
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_not_trusted() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let sim = sim(&pki, vec![]).await;
    let mut cfg = config(&pki, "127.0.0.1", sim.addr().port());
    cfg.fmc_mut().server_ca = ServerTrust::PemFile(other.files.ca_cert.clone());
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        "[FAIL] TLS handshake: the FMC's certificate is not trusted",
        &[&format!(
            "→ fmc.server_ca is \"{}\": set it to a PEM file with the CA that signed the FMC's certificate",
            other.files.ca_cert.display()
        )],
    );
}

#[tokio::test]
async fn a_hostname_the_certificate_lacks_is_a_mismatch_with_its_names_listed() {
    let pki = TestPki::with(PkiOptions {
        server_names: vec!["fmc.example.org".into()],
        ..PkiOptions::default()
    });
    let sim = sim(&pki, vec![]).await;
    let (passed, out) = run(&config(&pki, "127.0.0.1", sim.addr().port())).await;
    assert_fails_at(
        passed,
        &out,
        "[FAIL] TLS handshake: the FMC's certificate is not valid for the name \"127.0.0.1\"",
        &[
            "→ the FMC's certificate names: fmc.example.org",
            "set fmc.host to one of those names, or set fmc.verify_hostname = false",
        ],
    );

    // And with hostname verification off, the same FMC passes.
    let mut cfg = config(&pki, "127.0.0.1", sim.addr().port());
    cfg.fmc_mut().verify_hostname = false;
    let (passed, out) = run(&cfg).await;
    assert!(passed, "{out}");
    assert!(out.contains("(hostname not checked)"), "{out}");
}

#[tokio::test]
async fn a_client_certificate_the_fmc_did_not_issue_is_rejected() {
    let pki = TestPki::new();
    let stranger = TestPki::new();
    let sim = sim(&pki, vec![]).await;
    let mut cfg = config(&stranger, "127.0.0.1", sim.addr().port());
    cfg.fmc_mut().server_ca = ServerTrust::PemFile(pki.files.ca_cert.clone());
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        "[FAIL] TLS handshake: the FMC rejected our client certificate",
        &[
            "Create the eStreamer client again on the FMC",
            &format!(
                "→ check that fmc.pkcs12 ({}) is the file this FMC issued",
                stranger.files.client_pkcs12.display()
            ),
        ],
    );
    assert!(
        sim.handle
            .wait_until(LIMIT, |s| s.len() == 1 && s[0].logged("SSL_accept failed"))
            .await
    );
}

#[tokio::test]
async fn a_certificate_cn_other_than_our_address_is_the_nat_explanation() {
    let pki = TestPki::new();
    let p12 = pki.issue("192.168.27.100");
    let sim = sim(&pki, vec![]).await;
    let mut cfg = config(&pki, "127.0.0.1", sim.addr().port());
    cfg.fmc_mut().pkcs12 = p12;
    cfg.fmc_mut().pkcs12_password_file = None;
    cfg.fmc_mut().pkcs12_password = Some(Secret::new("pw"));
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        "[FAIL] the FMC accepts this client (certificate CN 192.168.27.100): the FMC closed the connection right after",
        &[
            "Common Name (192.168.27.100) with the address it sees",
            "this machine connected from 127.0.0.1; behind NAT",
            "the certificate must be issued for the address the FMC sees",
            "does not match remote host",
        ],
    );
    assert!(
        sim.handle
            .wait_until(LIMIT, |s| s.len() == 1
                && s[0].logged(
                    "Certificate Common Name 192.168.27.100 does not match remote host: 127.0.0.1."
                ))
            .await
    );
}

#[tokio::test]
async fn streaming_information_without_service_6667_fails() {
    let pki = TestPki::new();
    let sim = sim(&pki, vec![Fault::NoEstreamerService]).await;
    let (passed, out) = run(&config(&pki, "127.0.0.1", sim.addr().port())).await;
    assert_fails_at(
        passed,
        &out,
        "[FAIL] StreamingInformation: the FMC does not offer the eStreamer service 6667 (it offers: 5001, 5000)",
        &["or set subscription.extended = false"],
    );
    assert!(out.contains("[ OK ] the FMC accepts this client"), "{out}");
}

#[tokio::test]
async fn a_server_that_never_sends_streaming_information_fails_after_the_timeout() {
    let pki = TestPki::new();
    // A TLS server with the FMC's certificate that accepts the request and says nothing.
    let acceptor = pki::build_acceptor(
        &pki.files.server_cert,
        &pki.files.server_key,
        &pki.files.ca_cert,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
        let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
        std::pin::Pin::new(&mut tls).accept().await.unwrap();
        tokio::time::sleep(LIMIT).await;
        drop(tls);
    });
    let mut cfg = config(&pki, "127.0.0.1", addr.port());
    cfg.fmc_mut().connect_timeout = Duration::from_secs(1);
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        "[FAIL] StreamingInformation: nothing from the FMC within 1s of our extended EventStreamRequest",
        &["check that this is an FMC's eStreamer port"],
    );
    silent.abort();
}

#[tokio::test]
async fn a_header_version_other_than_1_is_defect_cscve44987() {
    let pki = TestPki::new();
    let sim = sim(&pki, vec![Fault::BadVersion]).await;
    let (passed, out) = run(&config(&pki, "127.0.0.1", sim.addr().port())).await;
    assert_fails_at(
        passed,
        &out,
        "[FAIL] message header version: the FMC sent a message with header version 2, not 1",
        &["CSCve44987", "upgrade the FMC or apply Cisco's hotfix"],
    );
    assert!(out.contains("[ OK ] the FMC accepts this client"), "{out}");
}

/// An address on which nothing listens.
fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

// ---------------------------------------------------------------------------------------------
// What `run` needs besides the FMC
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_output_fails_before_the_fmc_is_contacted() {
    let pki = TestPki::new();
    let mut cfg = config(&pki, "127.0.0.1", 8302);
    cfg.outputs.clear();
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        "[FAIL] outputs: no [[output]] is configured",
        &["add an [[output]] table"],
    );
}

#[tokio::test]
async fn a_broken_mapping_table_is_named_with_its_file() {
    let pki = TestPki::new();
    let mut cfg = config(&pki, "127.0.0.1", 8302);
    let dir = pki.dir.path().join("mappings");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("connection.toml"), "[[patch]\nrecord = 71\n").unwrap();
    cfg.cef.mappings_dir = dir.clone();
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        &format!(
            "[FAIL] mapping tables ({}): they have problems",
            dir.display()
        ),
        &["connection.toml", "`estreamer-cef mappings check"],
    );
}

#[tokio::test]
async fn a_state_folder_that_cannot_be_created_is_named() {
    let pki = TestPki::new();
    let mut cfg = config(&pki, "127.0.0.1", 8302);
    // A file where a folder should be: no user, root included, can create the folder.
    let blocker = pki.dir.path().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    cfg.state.dir = blocker.join("state");
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        &format!("[FAIL] state folder {}", blocker.join("state").display()),
        &["sudo install -d -o estreamer-cef", "or set state.dir"],
    );
    assert!(out.contains("is not a folder"), "{out}");
}

#[tokio::test]
async fn a_file_output_in_a_missing_folder_fails_after_the_fmc_checks() {
    let pki = TestPki::new();
    let sim = sim(&pki, vec![]).await;
    let mut cfg = config(&pki, "127.0.0.1", sim.addr().port());
    let path = pki.dir.path().join("nowhere").join("events.cef");
    cfg.outputs = vec![output(&format!(
        "transport = \"file\"\npath = \"{}\"",
        path.display()
    ))];
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        &format!("[FAIL] output[0] file:{}: the folder", path.display()),
        &["create it"],
    );
    assert!(out.contains("[ OK ] message header version"), "{out}");
    assert!(!path.exists(), "test creates nothing");
}

#[tokio::test]
async fn a_tcp_output_nobody_listens_on_is_connection_refused() {
    let pki = TestPki::new();
    let sim = sim(&pki, vec![]).await;
    let mut cfg = config(&pki, "127.0.0.1", sim.addr().port());
    let port = syslog_ng::free_port();
    cfg.outputs = vec![output(&format!(
        "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}"
    ))];
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        &format!("[FAIL] output[0] tcp://127.0.0.1:{port}: TCP connect"),
        &["nothing listens on"],
    );
}

/// Against a real syslog-ng TLS source: the handshake and certificate pass with its CA, and a
/// CA that did not sign its certificate is a verification failure with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_output_is_checked_through_the_handshake_against_syslog_ng() {
    let sng = tokio::task::spawn_blocking(syslog_ng::SyslogNg::start)
        .await
        .unwrap();
    let pki = TestPki::new();
    let sim = sim(&pki, vec![]).await;
    let mut cfg = config(&pki, "127.0.0.1", sim.addr().port());
    let tls = |ca: &Path| {
        output(&format!(
            "transport = \"tls\"\nhost = \"localhost\"\nport = {}\nserver_ca = \"{}\"",
            sng.tls_port,
            ca.display()
        ))
    };
    cfg.outputs = vec![tls(&sng.ca_pem)];
    let (passed, out) = run(&cfg).await;
    assert!(passed, "{out}");
    let step = format!("output[0] tls://localhost:{}", sng.tls_port);
    for start in [
        format!("[ OK ] {step}: DNS: localhost resolves to"),
        format!("[ OK ] {step}: TCP connect: connected to"),
        format!("[ OK ] {step}: TLS handshake: TLSv1."),
    ] {
        assert!(out.lines().any(|l| l.starts_with(&start)), "{start}\n{out}");
    }
    assert!(out.contains("certificate valid until"), "{out}");

    // The simulator's CA did not sign syslog-ng's certificate.
    cfg.outputs = vec![tls(&pki.files.ca_cert)];
    let (passed, out) = run(&cfg).await;
    assert_fails_at(
        passed,
        &out,
        &format!("[FAIL] {step}: TLS handshake: certificate verification failed"),
        &[],
    );
    assert!(
        out.contains("set `server_ca` to the receiver's CA certificate"),
        "{out}"
    );
}
