//! TLS output security and shutdown: certificate and host name verification, fingerprint pinning,
//! the insecure escape hatch, client certificates from PKCS#12 (legacy encryption included),
//! close_notify on a clean stop, and setup errors that name the key and the file.
//!
//! The receiver here is a small OpenSSL server in the test, so the test can see what a receiver
//! would: the handshake outcome, the client certificate, every frame, and the close_notify.

#[path = "support/syslog_events.rs"]
mod syslog_events;
#[path = "support/syslog_ng.rs"]
mod syslog_ng;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use estreamer_cef::output::syslog::framing::{WireFraming, parse};
use estreamer_cef::output::{Output, OutputConfig};
use openssl::hash::MessageDigest;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{ShutdownState, SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use syslog_events::*;
use syslog_ng::TestPki;

#[derive(Debug, Default, Clone)]
struct Conn {
    handshake_error: Option<String>,
    messages: Vec<Vec<u8>>,
    close_notify: bool,
    client_cn: Option<String>,
}

struct Server {
    port: u16,
    conns: Arc<Mutex<Vec<Conn>>>,
}

impl Server {
    fn conns(&self) -> Vec<Conn> {
        self.conns.lock().unwrap().clone()
    }
}

/// A TLS syslog receiver (octet counting) with `cert`; requires a client certificate issued by
/// `client_ca` when given.
fn tls_server(cert: &X509, key: &PKey<Private>, client_ca: Option<&X509>) -> Server {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    b.set_certificate(cert).unwrap();
    b.set_private_key(key).unwrap();
    if let Some(ca) = client_ca {
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(ca.clone()).unwrap();
        b.set_verify_cert_store(store.build()).unwrap();
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    let acceptor = Arc::new(b.build());
    // Blocking OpenSSL on plain threads: the synchronous stream exposes the shutdown state, which
    // tells a close_notify apart from a bare TCP close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let conns = Arc::new(Mutex::new(Vec::new()));
    let c = conns.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let acceptor = acceptor.clone();
            let c = c.clone();
            std::thread::spawn(move || {
                tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut conn = Conn::default();
                let mut s = match acceptor.accept(tcp) {
                    Ok(s) => s,
                    Err(e) => {
                        conn.handshake_error = Some(e.to_string());
                        c.lock().unwrap().push(conn);
                        return;
                    }
                };
                conn.client_cn = s.ssl().peer_certificate().and_then(|p| {
                    p.subject_name()
                        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                        .next()
                        .and_then(|e| e.data().to_string().ok())
                });
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 65536];
                loop {
                    match std::io::Read::read(&mut s, &mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                conn.close_notify = s.get_shutdown().contains(ShutdownState::RECEIVED);
                let _ = s.shutdown();
                let mut rest = &buf[..];
                while let Ok(Some((m, used))) = parse(WireFraming::OctetCounting, rest, 1 << 20) {
                    conn.messages.push(m.to_vec());
                    rest = &rest[used..];
                }
                c.lock().unwrap().push(conn);
            });
        }
    });
    Server { port, conns }
}

fn seq_in(msg: &[u8]) -> u64 {
    let text = std::str::from_utf8(msg).unwrap();
    let at = text.find("externalId=").unwrap() + "externalId=".len();
    text[at..].split(' ').next().unwrap().parse().unwrap()
}

fn sha256_fingerprint(cert: &X509) -> String {
    let d = cert.digest(MessageDigest::sha256()).unwrap();
    let hex: Vec<String> = d.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha256:{}", hex.join(":"))
}

fn tls_toml(port: u16, extra: &str) -> String {
    format!(
        "transport = \"tls\"\nhost = \"127.0.0.1\"\nport = {port}\nframing = \"octet-counting\"\nshutdown_timeout = \"2s\"\nreconnect_delay_max = \"500ms\"\n{extra}"
    )
}

/// Runs an output for 100 events; returns (progress, stats) once stopped.
async fn deliver(toml_text: &str) -> (u64, estreamer_cef::output::OutputStatsSnapshot) {
    let out = Running::start(toml_text);
    out.send_all(batches(1, 100, 25)).await;
    let (progress, stats) = out.finish(Duration::from_secs(20)).await;
    (progress, stats.snapshot())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_stop_delivers_everything_and_sends_close_notify() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "recv");
    let (cert, key) = pki.issue("receiver", &["localhost"], &["127.0.0.1"], 10);
    let server = tls_server(&cert, &key, None);
    let (progress, s) = deliver(&tls_toml(
        server.port,
        &format!("server_ca = \"{}\"", pki.ca_pem.display()),
    ))
    .await;
    assert_eq!(progress, 100);
    assert_eq!(
        (s.sent, s.errors, s.reconnects, s.up),
        (100, 0, 0, false),
        "{s:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let conns = server.conns();
    assert_eq!(conns.len(), 1, "{conns:?}");
    let c = &conns[0];
    assert!(c.close_notify, "the receiver got a TLS close_notify");
    let seqs: Vec<u64> = c.messages.iter().map(|m| seq_in(m)).collect();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    let first = std::str::from_utf8(&c.messages[0]).unwrap();
    let m = syslog_loose::parse_message(first, syslog_loose::Variant::RFC5424);
    assert_eq!(m.msg.trim_start_matches('\u{feff}'), cef(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_for_another_name_is_refused_unless_server_name_matches() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "recv");
    let (cert, key) = pki.issue("other.example", &["other.example"], &[], 11);
    let server = tls_server(&cert, &key, None);
    let ca = format!("server_ca = \"{}\"", pki.ca_pem.display());

    let (progress, s) = deliver(&tls_toml(server.port, &ca)).await;
    assert_eq!(
        (progress, s.sent),
        (0, 0),
        "nothing may be sent to an unverified receiver: {s:?}"
    );
    assert!(s.errors >= 1);

    let (progress, s) = deliver(&tls_toml(
        server.port,
        &format!("{ca}\nserver_name = \"other.example\""),
    ))
    .await;
    assert_eq!((progress, s.sent), (100, 100), "{s:?}");

    let (progress, _) = deliver(&tls_toml(
        server.port,
        &format!("{ca}\nverify_hostname = false"),
    ))
    .await;
    assert_eq!(progress, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ca_is_refused_fingerprint_pin_or_insecure_flag_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "private");
    let (cert, key) = pki.issue("receiver", &["localhost"], &["127.0.0.1"], 12);
    let server = tls_server(&cert, &key, None);

    // Not in the system trust store.
    let (progress, s) = deliver(&tls_toml(server.port, "")).await;
    assert_eq!((progress, s.sent), (0, 0), "{s:?}");

    let (progress, _) = deliver(&tls_toml(
        server.port,
        &format!("fingerprint = \"{}\"", sha256_fingerprint(&cert)),
    ))
    .await;
    assert_eq!(
        progress, 100,
        "the pinned certificate is accepted without a CA"
    );

    let other = pki
        .issue("someone-else", &["localhost"], &["127.0.0.1"], 13)
        .0;
    let (progress, s) = deliver(&tls_toml(
        server.port,
        &format!("fingerprint = \"{}\"", sha256_fingerprint(&other)),
    ))
    .await;
    assert_eq!(
        (progress, s.sent),
        (0, 0),
        "a different certificate does not match the pin: {s:?}"
    );

    let (progress, _) = deliver(&tls_toml(server.port, "server_ca = \"insecure\"")).await;
    assert_eq!(progress, 100);
}

fn write_pkcs12_modern(
    dir: &std::path::Path,
    cert: &X509,
    key: &PKey<Private>,
    password: &str,
) -> std::path::PathBuf {
    let p12 = Pkcs12::builder()
        .name("client")
        .pkey(key)
        .cert(cert)
        .build2(password)
        .unwrap();
    let path = dir.join("client.p12");
    std::fs::write(&path, p12.to_der().unwrap()).unwrap();
    path
}

/// RC2/3DES-encrypted PKCS#12 as older OpenSSL and many Windows exports write it (needs the
/// openssl CLI, package `openssl`).
fn write_pkcs12_legacy(
    dir: &std::path::Path,
    cert: &X509,
    key: &PKey<Private>,
    password: &str,
) -> std::path::PathBuf {
    std::fs::write(dir.join("c.pem"), cert.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("k.pem"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let path = dir.join("legacy.p12");
    let st = std::process::Command::new("openssl")
        .args(["pkcs12", "-export", "-legacy", "-in"])
        .arg(dir.join("c.pem"))
        .arg("-inkey")
        .arg(dir.join("k.pem"))
        .arg("-out")
        .arg(&path)
        .arg("-passout")
        .arg(format!("pass:{password}"))
        .status()
        .expect("the openssl CLI is needed (apt package openssl)");
    assert!(st.success());
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_from_pkcs12_modern_and_legacy() {
    let dir = tempfile::tempdir().unwrap();
    let server_pki = TestPki::new(dir.path(), "server");
    let client_pki = TestPki::new(dir.path(), "client");
    let (cert, key) = server_pki.issue("receiver", &["localhost"], &["127.0.0.1"], 20);
    let server = tls_server(&cert, &key, Some(&client_pki.ca_cert));
    let ca = format!("server_ca = \"{}\"", server_pki.ca_pem.display());

    // Without a client certificate the receiver refuses us.
    let (progress, _) = deliver(&tls_toml(server.port, &ca)).await;
    assert_eq!(progress, 0);

    let (ccert, ckey) = client_pki.issue("estreamer-cef-client", &[], &[], 21);
    let modern = write_pkcs12_modern(dir.path(), &ccert, &ckey, "s3cret");
    let legacy = write_pkcs12_legacy(dir.path(), &ccert, &ckey, "s3cret");
    // The file really needs OpenSSL 3's legacy provider (RC2-40): the CLI cannot read it without.
    let plain = std::process::Command::new("openssl")
        .args(["pkcs12", "-noout", "-passin", "pass:s3cret", "-in"])
        .arg(&legacy)
        .output()
        .unwrap();
    assert!(
        !plain.status.success(),
        "expected a legacy-encrypted PKCS#12"
    );
    std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
    for (p12, password) in [
        (&modern, "pkcs12_password = \"s3cret\"".to_string()),
        (
            &legacy,
            format!(
                "pkcs12_password_file = \"{}\"",
                dir.path().join("pw").display()
            ),
        ),
    ] {
        let before = server.conns().len();
        let (progress, s) = deliver(&tls_toml(
            server.port,
            &format!("{ca}\npkcs12 = \"{}\"\n{password}", p12.display()),
        ))
        .await;
        assert_eq!(progress, 100, "{} {s:?}", p12.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let conns = server.conns();
        let ok: Vec<&Conn> = conns[before..]
            .iter()
            .filter(|c| c.handshake_error.is_none())
            .collect();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].client_cn.as_deref(), Some("estreamer-cef-client"));
        assert_eq!(ok[0].messages.len(), 100);
    }
}

fn setup_error(toml_text: &str) -> String {
    let cfg: OutputConfig = toml::from_str(toml_text).unwrap();
    match Output::new(&cfg, "outputs[3]", "h") {
        Ok(_) => panic!("expected a setup error for:\n{toml_text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_tls_material_is_reported_with_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path(), "x");
    let (ccert, ckey) = pki.issue("client", &[], &[], 30);
    let p12 = write_pkcs12_modern(dir.path(), &ccert, &ckey, "right");

    let e = setup_error(&tls_toml(1, "server_ca = \"/nonexistent/ca.pem\""));
    assert!(
        e.contains("outputs[3].server_ca")
            && e.contains("/nonexistent/ca.pem")
            && e.contains("check the path"),
        "{e}"
    );

    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let e = setup_error(&tls_toml(
        1,
        &format!("server_ca = \"{}\"", dir.path().join("junk.pem").display()),
    ));
    assert!(
        e.contains("outputs[3].server_ca") && e.contains("no PEM certificate"),
        "{e}"
    );

    let e = setup_error(&tls_toml(
        1,
        &format!(
            "pkcs12 = \"{}\"\npkcs12_password = \"wrong\"",
            p12.display()
        ),
    ));
    assert!(
        e.contains("outputs[3].pkcs12") && e.contains("wrong password"),
        "{e}"
    );
    assert!(
        !e.contains("\"wrong\""),
        "the password itself is never shown: {e}"
    );

    let e = setup_error(&tls_toml(
        1,
        &format!("pkcs12 = \"{}\"", dir.path().join("junk.pem").display()),
    ));
    assert!(e.contains("not a readable PKCS12 file"), "{e}");

    let e = setup_error(&tls_toml(1, "fingerprint = \"sha1:00:11\""));
    assert!(
        e.contains("outputs[3].fingerprint") && e.contains("SHA-256"),
        "{e}"
    );
}
