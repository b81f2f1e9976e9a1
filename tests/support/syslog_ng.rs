//! A real syslog-ng receiver for integration tests, run from `shared/testkit/syslog-ng-cef.conf`:
//! foreground, its own persist/pid/control files in a temp dir, loopback ports chosen free,
//! stopped by its PID. Every received message becomes one JSON object (syslog header as
//! syslog-ng parsed it, CEF parsed by the PyPI `cefp` parser).
//!
//! Needs `syslog-ng-core`, `syslog-ng-mod-python` and `cefp` (see `tests/install-deps.sh`). The
//! config is looked up in `$CEFT_SYSLOG_NG_CONF`, `tests/data/testkit/` (a copy kept in the
//! repository), `shared/testkit/` next to the repository, or
//! `/work/shared/testkit/`; `cefp` in `$CEFT_PYLIB` or `.test-deps/pylib`.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

pub struct SyslogNg {
    dir: tempfile::TempDir,
    /// RFC 5424 over TCP, octet counting only (`syslog()` source). UDP shares the number.
    pub tcp_port: u16,
    pub udp_port: u16,
    /// RFC 5424 over TLS, octet counting.
    pub tls_port: u16,
    /// RFC 5424 over TCP, LF framing (`network()` source).
    pub lf_port: u16,
    /// CA certificate (PEM) that issued the TLS listener's certificate (for `localhost`, 127.0.0.1).
    pub ca_pem: PathBuf,
    out: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: usize,
}

/// A CA and a certificate it issued, as PEM files.
pub struct TestPki {
    pub ca_cert: X509,
    pub ca_key: PKey<Private>,
    pub ca_pem: PathBuf,
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    n.build()
}

impl TestPki {
    /// A fresh CA, its certificate written to `dir/<label>-ca.pem`.
    pub fn new(dir: &Path, label: &str) -> TestPki {
        let key = ec_key();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name(&format!("{label} test CA")))
            .unwrap();
        b.set_issuer_name(&name(&format!("{label} test CA")))
            .unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        let ca_pem = dir.join(format!("{label}-ca.pem"));
        std::fs::write(&ca_pem, cert.to_pem().unwrap()).unwrap();
        TestPki {
            ca_cert: cert,
            ca_key: key,
            ca_pem,
        }
    }

    /// A certificate for `cn` with the given DNS / IP subjectAltNames.
    pub fn issue(
        &self,
        cn: &str,
        dns: &[&str],
        ips: &[&str],
        serial: u32,
    ) -> (X509, PKey<Private>) {
        let key = ec_key();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&BigNum::from_u32(serial).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name(cn)).unwrap();
        b.set_issuer_name(self.ca_cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        if !dns.is_empty() || !ips.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for d in dns {
                san.dns(d);
            }
            for i in ips {
                san.ip(i);
            }
            let ext = san
                .build(&b.x509v3_context(Some(&self.ca_cert), None))
                .unwrap();
            b.append_extension(ext).unwrap();
        }
        b.sign(&self.ca_key, MessageDigest::sha256()).unwrap();
        (b.build(), key)
    }
}

fn testkit_conf() -> PathBuf {
    if let Ok(p) = std::env::var("CEFT_SYSLOG_NG_CONF") {
        return PathBuf::from(p);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for c in [
        // A copy of the shared testkit's receiver lives in the repository, so CI needs nothing else.
        manifest.join("tests/data/testkit/syslog-ng-cef.conf"),
        manifest.join("shared/testkit/syslog-ng-cef.conf"),
        manifest.join("../shared/testkit/syslog-ng-cef.conf"),
        manifest.join("../../shared/testkit/syslog-ng-cef.conf"),
        PathBuf::from("/work/shared/testkit/syslog-ng-cef.conf"),
    ] {
        if c.exists() {
            return c;
        }
    }
    panic!(
        "syslog-ng-cef.conf not found; set CEFT_SYSLOG_NG_CONF to shared/testkit/syslog-ng-cef.conf"
    );
}

fn pylib() -> PathBuf {
    let p = std::env::var("CEFT_PYLIB")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".test-deps/pylib"));
    assert!(
        p.join("cefp.py").exists() || p.join("cefp/__init__.py").exists(),
        "the CEF parser cefp is not in {}; run tests/install-deps.sh (or set CEFT_PYLIB)",
        p.display()
    );
    p
}

/// A loopback port that is free for both TCP and UDP right now.
pub fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl SyslogNg {
    /// Starts a receiver and waits until it listens.
    pub fn start() -> SyslogNg {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::new(dir.path(), "syslog-ng");
        let (cert, key) = pki.issue("localhost", &["localhost"], &["127.0.0.1"], 2);
        std::fs::write(dir.path().join("cert.pem"), cert.to_pem().unwrap()).unwrap();
        std::fs::write(
            dir.path().join("key.pem"),
            key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        let mut s = SyslogNg {
            ca_pem: pki.ca_pem,
            out: dir.path().join("out.jsonl"),
            log: dir.path().join("syslog-ng.log"),
            dir,
            tcp_port: 0,
            udp_port: 0,
            tls_port: 0,
            lf_port: 0,
            child: None,
            starts: 0,
        };
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let mut ports = Vec::new();
            while ports.len() < 3 {
                let p = free_port();
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
            (s.tcp_port, s.udp_port, s.tls_port, s.lf_port) =
                (ports[0], ports[0], ports[1], ports[2]);
            match s.spawn() {
                Ok(()) => return s,
                Err(log) => last_log = log, // most likely a port taken meanwhile: new ports
            }
        }
        panic!("syslog-ng did not start; its log:\n{last_log}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("syslog-ng")
            .args(["-F", "-e", "--no-caps", "-f"])
            .arg(testkit_conf())
            .arg("-R")
            .arg(d.join("sng.persist"))
            .arg("-p")
            .arg(d.join("sng.pid"))
            .arg("-c")
            .arg(d.join("sng.ctl"))
            .env("CEFT_TCP_PORT", self.tcp_port.to_string())
            .env("CEFT_UDP_PORT", self.udp_port.to_string())
            .env("CEFT_TLS_PORT", self.tls_port.to_string())
            .env("CEFT_LF_PORT", self.lf_port.to_string())
            .env("CEFT_CERT", d.join("cert.pem"))
            .env("CEFT_KEY", d.join("key.pem"))
            .env("CEFT_OUT", &self.out)
            .env("PYTHONPATH", pylib())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run syslog-ng ({e}); run tests/install-deps.sh"));
        self.child = Some(child);
        let want = self.starts + 1;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.log_text();
            if text.matches("syslog-ng starting up").count() >= want {
                self.starts = want;
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("exited with {status}:\n{text}"));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("not ready after 20 s:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// syslog-ng's own diagnostics so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn signal_and_wait(&mut self, sig: libc::c_int) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child by its PID.
            unsafe { libc::kill(child.id() as libc::pid_t, sig) };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    // SAFETY: as above.
                    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Stops the receiver (SIGTERM), as an operator would.
    pub fn stop(&mut self) {
        self.signal_and_wait(libc::SIGTERM);
    }

    /// Kills the receiver (SIGKILL): whatever sat unread in its socket buffers is lost.
    pub fn kill(&mut self) {
        self.signal_and_wait(libc::SIGKILL);
        // A line cut by the kill would glue onto the first line of the next run.
        if let Ok(text) = std::fs::read(&self.out) {
            let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if keep < text.len() {
                std::fs::write(&self.out, &text[..keep]).unwrap();
            }
        }
    }

    /// Freezes the receiver (SIGSTOP): it stops reading; the kernel still acknowledges data
    /// until the socket buffer is full.
    pub fn freeze(&self) {
        if let Some(pid) = self.pid() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
        }
    }

    /// Starts it again on the same ports, appending to the same output file.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(log) if Instant::now() < deadline => {
                    let _ = log;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(log) => panic!("syslog-ng did not restart on the same ports:\n{log}"),
            }
        }
    }

    /// Every message received so far, one JSON object each.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("syslog-ng wrote a line that is not JSON ({e}): {l}")
                })
            })
            .collect()
    }

    /// Waits until at least `n` messages were received (or `timeout` passes) and returns all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.records();
            if r.len() >= n || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the number of messages stops growing for `quiet`.
    pub fn wait_quiet(&self, quiet: Duration, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut last = usize::MAX;
        let mut since = Instant::now();
        loop {
            let r = self.records();
            if r.len() != last {
                last = r.len();
                since = Instant::now();
            } else if since.elapsed() >= quiet || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SyslogNg {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // a frozen receiver must be thawed to handle SIGTERM
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) };
        }
        self.stop();
    }
}
