//! The Kafka output's TLS and SASL keys against real programs: a real Kafka-protocol broker
//! (tansu) with SASL SCRAM users, and OpenSSL (socat's `OPENSSL-LISTEN`) terminating TLS in
//! front of it, with certificates made by the `openssl` command. The shipped sample goes through
//! `estreamer-cef replay`, and the topic is read back with the same credentials:
//!
//! - SCRAM-SHA-256 and SCRAM-SHA-512: every event arrives once, as `decode --cef` prints it;
//!   a wrong password delivers nothing, says the brokers refuse the client, and never shows
//!   the password;
//! - TLS with the broker's certificate checked against `server_ca` (host name included) and a
//!   client certificate whose key is encrypted: every event arrives once; a broker certificate
//!   from another CA, or no client certificate where one is required, delivers nothing and says
//!   why; SCRAM over TLS (Transformation Hub's usual `SASL_SSL`) delivers too.
//!
//! tansu 0.6.0 speaks no TLS itself (its broker builds a TLS acceptor it never uses) and its
//! PLAIN handshake offers no mechanism, so TLS goes through socat and PLAIN is not tried here.

mod delivery_support;
#[path = "support/replay.rs"]
mod replay;
mod sim_support;
#[path = "support/tansu.rs"]
mod tansu;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use delivery_support::{Setup, SimFmc, connection_scenario};
use estreamer_cef_sim::server::SimulatorConfig;
use rdkafka::ClientConfig;
use replay::{bin, decoded_cef, replay, sample, text};
use tansu::{Tansu, free_port, read_topic_with};

const PARTITIONS: i32 = 2;

/// The `[[output]]` body of a Kafka output to `bootstrap`, topic `topic`, with these more keys.
fn kafka_output(bootstrap: &str, topic: &str, keys: &str) -> String {
    format!(
        "transport = \"kafka\"\nbrokers = [\"{bootstrap}\"]\ntopic = \"{topic}\"\n\
         shutdown_timeout = \"5s\"\n{keys}"
    )
}

/// A configuration with one Kafka output to `bootstrap`, topic `topic`, and these more keys.
fn config(dir: &Path, name: &str, bootstrap: &str, topic: &str, keys: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "[state]\ndir = \"{}\"\n\n[[output]]\n{}",
            dir.join("state").display(),
            kafka_output(bootstrap, topic, keys)
        ),
    )
    .unwrap();
    p
}

/// What `estreamer-cef test` prints for this Kafka output (a simulated FMC answers: `test`
/// checks the outputs after the FMC).
fn test_says(dir: &Path, output: String) -> String {
    let pki = sim_support::TestPki::new();
    let mut sim_cfg = SimulatorConfig::new("127.0.0.1:0".parse().unwrap(), &pki.files);
    sim_cfg.rate = Some(1_000);
    let sim = SimFmc::start(sim_cfg, connection_scenario(10, 2, 5));
    let mut setup = Setup::new(&pki.files, sim.port(), dir.join("test-state"));
    setup.outputs = vec![output];
    let config = setup.write(&dir.join("test.toml"));
    let out = bin().arg("-c").arg(&config).arg("test").output().unwrap();
    drop(sim);
    text(&out.stdout)
}

/// The CEF lines `decode --cef` gives for the file (what `replay` sends), sorted.
fn sorted_cef(cfg: &Path, file: &Path) -> Vec<String> {
    let mut lines = decoded_cef(cfg, file);
    lines.sort();
    lines
}

/// What `topic` holds, read with `client` (TLS, SASL), sorted. Waits for `at_least` messages,
/// then 2 s more for any extra (a duplicate).
fn topic_values(mut client: ClientConfig, topic: &str, at_least: usize) -> Vec<String> {
    client.set("socket.timeout.ms", "10000");
    let mut v: Vec<String> = read_topic_with(
        client,
        topic,
        PARTITIONS,
        at_least,
        Duration::from_secs(2),
        Duration::from_secs(60),
    )
    .into_iter()
    .map(|r| r.value)
    .collect();
    v.sort();
    v
}

/// A replay that delivered everything, and a topic that holds exactly `decode --cef`'s lines.
fn assert_delivered_once(cfg: &Path, file: &Path, client: ClientConfig, topic: &str) {
    let expected = sorted_cef(cfg, file);
    assert!(
        expected.len() > 50,
        "the sample maps to {} CEF lines",
        expected.len()
    );
    let (out, _) = replay(cfg, &[file.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "replay failed:\n{err}");
    let n = expected.len();
    assert!(
        err.contains(&format!("{n} of {n} events delivered")),
        "replay did not say every event was delivered:\n{err}"
    );
    let got = topic_values(client, topic, n);
    assert_eq!(got.len(), n, "messages in {topic}, expected one per event");
    assert!(
        got == expected,
        "{topic} holds other lines than decode --cef prints"
    );
}

/// A replay that delivered nothing, failed, and whose messages say `why` (one of them).
fn assert_refused(cfg: &Path, file: &Path, why: &[&str], secret: Option<&str>) -> String {
    let (out, _) = replay(cfg, &[file.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "replay should fail:\n{err}");
    assert!(
        err.contains(": 0 of "),
        "replay should say nothing was delivered:\n{err}"
    );
    assert!(
        why.iter().any(|w| err.contains(w)),
        "replay's messages do not say why ({why:?}):\n{err}"
    );
    if let Some(s) = secret {
        assert!(!err.contains(s), "the password is in the output:\n{err}");
    }
    err
}

#[test]
fn scram_sha_256_and_512_deliver_and_a_wrong_password_is_refused_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample(dir.path());
    let mut broker = Tansu::start(&dir.path().join("broker"));
    broker.create_user("alice", "alice-pw-256", "scram256");
    broker.create_user("bob", "bob-pw-512", "scram512");
    for t in ["cef-256", "cef-512", "cef-refused"] {
        broker.create_topic(t, PARTITIONS as u32);
    }
    let port = broker.port;
    broker.restart_with(port, &["--authentication"]);
    let bootstrap = broker.bootstrap();

    for (mechanism, user, password, topic) in [
        ("scram-sha-256", "alice", "alice-pw-256", "cef-256"),
        ("scram-sha-512", "bob", "bob-pw-512", "cef-512"),
    ] {
        let pw = dir.path().join(format!("{user}.password"));
        std::fs::write(&pw, format!("{password}\n")).unwrap();
        let cfg = config(
            dir.path(),
            mechanism,
            &bootstrap,
            topic,
            &format!(
                "sasl_mechanism = \"{mechanism}\"\nsasl_username = \"{user}\"\n\
                 sasl_password_file = \"{}\"\n",
                pw.display()
            ),
        );
        let mut reader = ClientConfig::new();
        reader
            .set("bootstrap.servers", &bootstrap)
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanism", mechanism.to_uppercase())
            .set("sasl.username", user)
            .set("sasl.password", password);
        assert_delivered_once(&cfg, &file, reader, topic);
    }

    // The right user with a wrong password.
    let wrong = dir.path().join("wrong.password");
    std::fs::write(&wrong, "not-bobs-password-4711\n").unwrap();
    let cfg = config(
        dir.path(),
        "wrong",
        &bootstrap,
        "cef-refused",
        &format!(
            "sasl_mechanism = \"scram-sha-512\"\nsasl_username = \"bob\"\nsasl_password_file = \"{}\"\n",
            wrong.display()
        ),
    );
    let err = assert_refused(
        &cfg,
        &file,
        &["the brokers refuse this client"],
        Some("not-bobs-password-4711"),
    );
    assert!(
        err.contains("SASL authentication"),
        "the refusal should say SASL authentication failed:\n{err}"
    );

    // `estreamer-cef test` says the same, names the keys to check, and not the password.
    let keys = |pw: &Path| {
        format!(
            "sasl_mechanism = \"scram-sha-512\"\nsasl_username = \"bob\"\n\
             sasl_password_file = \"{}\"\n",
            pw.display()
        )
    };
    let said = test_says(
        dir.path(),
        kafka_output(&bootstrap, "cef-512", &keys(&wrong)),
    );
    assert!(
        said.contains(&format!(
            "[FAIL] output[0] kafka://{bootstrap}/cef-512: brokers: the brokers of {bootstrap} \
             refuse this client"
        )) && said.contains("SASL authentication")
            && said.contains("output[0].sasl_password_file")
            && !said.contains("not-bobs-password-4711"),
        "{said}"
    );
    let said = test_says(
        dir.path(),
        kafka_output(
            &bootstrap,
            "cef-512",
            &keys(&dir.path().join("bob.password")),
        ),
    );
    assert!(
        said.contains("/cef-512: topic: cef-512 exists with 2 partition(s)")
            && said.contains("All checks passed"),
        "{said}"
    );
}

/// A CA, a broker certificate for 127.0.0.1 and a client certificate with an encrypted key,
/// made by the `openssl` command as an administrator would.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        for ca in ["ca", "other-ca"] {
            pki.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=estreamer-cef test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ]);
        }
        pki.issue("broker", "127.0.0.1", "subjectAltName=IP:127.0.0.1", "ca");
        pki.issue(
            "other-broker",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1",
            "other-ca",
        );
        pki.issue(
            "client",
            "estreamer-cef",
            "extendedKeyUsage=clientAuth",
            "ca",
        );
        std::fs::write(dir.join("client-key.password"), "key-pw-9042\n").unwrap();
        pki.openssl(&[
            "pkey",
            "-in",
            "client.key",
            "-aes256",
            "-passout",
            "pass:key-pw-9042",
            "-out",
            "client-encrypted.key",
        ]);
        pki
    }

    fn issue(&self, name: &str, cn: &str, ext: &str, ca: &str) {
        std::fs::write(self.dir.join(format!("{name}.ext")), format!("{ext}\n")).unwrap();
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            "1",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run openssl (tests/install-deps.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            text(&out.stderr)
        );
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// socat terminating TLS on `port` with `cert`, passing the plain bytes to the broker. With
/// `client_ca`, a client certificate issued by it is required.
struct TlsProxy(Child);

impl TlsProxy {
    fn start(pki: &Pki, port: u16, cert: &str, client_ca: Option<&str>, broker: u16) -> TlsProxy {
        let verify = match client_ca {
            Some(ca) => format!("verify=1,cafile={}", pki.path(&format!("{ca}.pem"))),
            None => "verify=0".to_string(),
        };
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},{verify}",
            pki.path(&format!("{cert}.pem")),
            pki.path(&format!("{cert}.key")),
        );
        let child = Command::new("socat")
            .args([&listen, &format!("TCP:127.0.0.1:{broker}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start socat (tests/install-deps.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "socat did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsProxy(child)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The reader's TLS settings: the test CA and the client certificate.
fn tls_reader(pki: &Pki, bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", pki.path("ca.pem"))
        .set("ssl.certificate.location", pki.path("client.pem"))
        .set("ssl.key.location", pki.path("client.key"));
    c
}

#[test]
fn tls_checks_the_brokers_certificate_and_presents_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample(dir.path());
    let pki = Pki::new(&dir.path().join("pki"));
    let mut broker = Tansu::start(&dir.path().join("broker"));
    broker.create_user("th", "th-pw-512", "scram512");
    for t in ["th-cef", "th-cef-refused", "th-cef-sasl"] {
        broker.create_topic(t, PARTITIONS as u32);
    }
    // Clients reach the broker only through the proxy: it is what the broker advertises.
    let tls_port = free_port();
    broker.restart_with(tls_port, &[]);
    let proxy = TlsProxy::start(&pki, tls_port, "broker", Some("ca"), broker.port);
    let bootstrap = format!("127.0.0.1:{tls_port}");
    let tls_keys = format!(
        "server_ca = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n\
         client_key_password_file = \"{}\"\n",
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client-encrypted.key"),
        pki.path("client-key.password"),
    );

    let cfg = config(dir.path(), "tls", &bootstrap, "th-cef", &tls_keys);
    assert_delivered_once(&cfg, &file, tls_reader(&pki, &bootstrap), "th-cef");

    // The brokers' certificate is checked: a CA that did not issue it is refused.
    let other_ca = tls_keys.replace(&pki.path("ca.pem"), &pki.path("other-ca.pem"));
    let cfg = config(
        dir.path(),
        "other-ca",
        &bootstrap,
        "th-cef-refused",
        &other_ca,
    );
    assert_refused(
        &cfg,
        &file,
        &["certificate verify failed"],
        Some("key-pw-9042"),
    );

    // A broker that requires a client certificate refuses a client without one.
    let no_client_cert = format!("server_ca = \"{}\"\n", pki.path("ca.pem"));
    let cfg = config(
        dir.path(),
        "no-client-cert",
        &bootstrap,
        "th-cef-refused",
        &no_client_cert,
    );
    assert_refused(
        &cfg,
        &file,
        &[
            "the brokers require a client certificate: set output[0].client_cert and output[0].client_key",
        ],
        None,
    );
    assert!(
        topic_values(tls_reader(&pki, &bootstrap), "th-cef-refused", 0).is_empty(),
        "a refused client delivered something"
    );
    let said = test_says(
        dir.path(),
        kafka_output(&bootstrap, "th-cef", &no_client_cert),
    );
    assert!(
        said.contains("brokers: the brokers of") && said.contains("set output[0].client_cert"),
        "{said}"
    );
    let said = test_says(dir.path(), kafka_output(&bootstrap, "th-cef", &other_ca));
    assert!(
        said.contains("brokers: the brokers of")
            && said.contains("certificate verify failed")
            && said.contains("check output[0].server_ca"),
        "{said}"
    );
    drop(proxy);

    // A broker certificate from another CA, behind the same address: refused with the CA that
    // the output trusts.
    let proxy = TlsProxy::start(&pki, tls_port, "other-broker", None, broker.port);
    let cfg = config(
        dir.path(),
        "tls-again",
        &bootstrap,
        "th-cef-refused",
        &tls_keys,
    );
    assert_refused(
        &cfg,
        &file,
        &["certificate verify failed"],
        Some("key-pw-9042"),
    );
    drop(proxy);

    // SCRAM over TLS, as Transformation Hub is usually set up.
    broker.restart_with(tls_port, &["--authentication"]);
    let _proxy = TlsProxy::start(&pki, tls_port, "broker", None, broker.port);
    let pw = dir.path().join("th.password");
    std::fs::write(&pw, "th-pw-512\n").unwrap();
    let cfg = config(
        dir.path(),
        "sasl-ssl",
        &bootstrap,
        "th-cef-sasl",
        &format!(
            "server_ca = \"{}\"\nsasl_mechanism = \"scram-sha-512\"\nsasl_username = \"th\"\n\
             sasl_password_file = \"{}\"\n",
            pki.path("ca.pem"),
            pw.display()
        ),
    );
    let mut reader = ClientConfig::new();
    reader
        .set("bootstrap.servers", &bootstrap)
        .set("security.protocol", "sasl_ssl")
        .set("ssl.ca.location", pki.path("ca.pem"))
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", "th")
        .set("sasl.password", "th-pw-512");
    assert_delivered_once(&cfg, &file, reader, "th-cef-sasl");
}
