//! Loading the client identity: PKCS12 files as the `openssl` CLI writes them (legacy RC2-40/3DES
//! and modern AES), the ways such a file goes wrong, PEM files, and the simulator's own PKCS12.
//!
//! Needs the `openssl` command (Debian package `openssl`); the tests fail if it is missing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use estreamer_cef::net::identity::{ClientIdentity, PemIdentityError, Pkcs12Error, load_pkcs12};
use estreamer_cef::net::password::read_password_file;
use estreamer_cef_sim::pki::{self, PkiError, PkiOptions};

const PASSWORD: &str = "S3cret-pass";

fn run_openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run the openssl command ({e}); install it: apt-get install openssl")
        })
}

fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let out = run_openssl(dir, args);
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A CA, a client certificate it signed (CN 10.1.2.3), and PKCS12 exports of them, all made by
/// the openssl CLI as an operator (or an FMC) would.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Fixture {
    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pass = format!("pass:{PASSWORD}");
        #[rustfmt::skip]
        let steps: &[&[&str]] = &[
            &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
              "-subj", "/O=Test/CN=Test FMC CA", "-days", "30"],
            &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
              "-subj", "/CN=10.1.2.3"],
            &["x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
              "-CAcreateserial", "-out", "client.pem", "-days", "30"],
            &["pkcs12", "-export", "-legacy", "-in", "client.pem", "-inkey", "client.key",
              "-certfile", "ca.pem", "-passout", &pass, "-out", "legacy.p12"],
            &["pkcs12", "-export", "-in", "client.pem", "-inkey", "client.key",
              "-certfile", "ca.pem", "-passout", &pass, "-out", "modern.p12"],
            &["pkcs12", "-export", "-nokeys", "-in", "client.pem", "-passout", &pass,
              "-out", "certonly.p12"],
            &["pkcs12", "-export", "-nocerts", "-inkey", "client.key", "-passout", &pass,
              "-out", "keyonly.p12"],
            &["pkey", "-in", "client.key", "-aes256", "-passout", &pass, "-out", "encrypted.key"],
        ];
        for step in steps {
            openssl_ok(d, step);
        }
        Fixture {
            path: d.to_path_buf(),
            _dir: dir,
        }
    })
}

fn assert_is_client(id: &ClientIdentity, fx: &Fixture) {
    assert_eq!(id.subject_cn().as_deref(), Some("10.1.2.3"));
    let expected = std::fs::read(fx.file("client.pem")).unwrap();
    let expected = openssl::x509::X509::from_pem(&expected).unwrap();
    assert_eq!(id.cert().to_der().unwrap(), expected.to_der().unwrap());
    assert!(id.cert().public_key().unwrap().public_eq(id.key().as_ref()));
    let ca_cns: Vec<_> = id
        .ca_certs()
        .iter()
        .map(|c| estreamer_cef::net::x509::common_name(c.subject_name()))
        .collect();
    assert_eq!(ca_cns, vec![Some("Test FMC CA".to_string())]);
}

#[test]
fn legacy_rc2_3des_pkcs12_from_openssl_loads() {
    let fx = fixture();
    // The fixture must really need the legacy algorithms: plain OpenSSL 3 refuses it.
    let info = openssl_ok(
        &fx.path,
        &[
            "pkcs12",
            "-legacy",
            "-info",
            "-in",
            "legacy.p12",
            "-passin",
            &format!("pass:{PASSWORD}"),
            "-noout",
        ],
    );
    assert!(info.contains("pbeWithSHA1And40BitRC2-CBC"), "{info}");
    assert!(info.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{info}");
    let without_legacy = run_openssl(
        &fx.path,
        &[
            "pkcs12",
            "-in",
            "legacy.p12",
            "-passin",
            &format!("pass:{PASSWORD}"),
            "-nodes",
            "-out",
            "/dev/null",
        ],
    );
    assert!(!without_legacy.status.success());
    assert!(String::from_utf8_lossy(&without_legacy.stderr).contains("unsupported"));

    let id = load_pkcs12(&fx.file("legacy.p12"), PASSWORD).unwrap();
    assert_is_client(&id, fx);
}

#[test]
fn modern_aes_pkcs12_from_openssl_loads() {
    let fx = fixture();
    let info = openssl_ok(
        &fx.path,
        &[
            "pkcs12",
            "-info",
            "-in",
            "modern.p12",
            "-passin",
            &format!("pass:{PASSWORD}"),
            "-noout",
        ],
    );
    assert!(info.contains("AES-256-CBC"), "{info}");
    let id = load_pkcs12(&fx.file("modern.p12"), PASSWORD).unwrap();
    assert_is_client(&id, fx);
}

#[test]
fn wrong_password_is_reported_as_such_without_the_password() {
    let fx = fixture();
    for name in ["legacy.p12", "modern.p12"] {
        let path = fx.file(name);
        let err = load_pkcs12(&path, "not-the-password").unwrap_err();
        assert!(
            matches!(err, Pkcs12Error::WrongPassword { .. }),
            "{name}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("wrong password"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains("not-the-password"), "{msg}");
        assert!(!format!("{err:?}").contains("not-the-password"));
    }
    // An empty password is a wrong password too (the FMC allows empty ones, so it is tried).
    let err = load_pkcs12(&fx.file("modern.p12"), "").unwrap_err();
    assert!(matches!(err, Pkcs12Error::WrongPassword { .. }), "{err:?}");
}

#[test]
fn password_with_nul_is_an_error_not_a_panic() {
    let fx = fixture();
    let err = load_pkcs12(&fx.file("modern.p12"), "a\0b").unwrap_err();
    assert!(matches!(err, Pkcs12Error::PasswordHasNul { .. }), "{err:?}");
}

#[test]
fn truncated_garbage_empty_and_pem_files_are_corrupt() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(fx.file("legacy.p12")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.p12",
            whole[..whole.len() / 2].to_vec(),
            "not a DER-encoded PKCS12",
        ),
        (
            "garbage.p12",
            (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect(),
            "not a DER-encoded PKCS12",
        ),
        ("empty.p12", Vec::new(), "empty"),
        (
            "client.pem.p12",
            std::fs::read(fx.file("client.pem")).unwrap(),
            "PEM",
        ),
    ];
    for (name, bytes, hint) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = load_pkcs12(&path, PASSWORD).unwrap_err();
        assert!(
            matches!(err, Pkcs12Error::Corrupt { .. }),
            "{name}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(hint), "{name}: {msg}");
        assert!(
            msg.contains("Download the client's PKCS12 file again"),
            "{msg}"
        );
    }
}

#[test]
fn missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere").join("client.pkcs12");
    let err = load_pkcs12(&path, PASSWORD).unwrap_err();
    assert!(matches!(err, Pkcs12Error::Read { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("No such file or directory"), "{msg}");
}

#[test]
fn pkcs12_without_key_or_certificate_says_which_is_missing() {
    let fx = fixture();
    let err = load_pkcs12(&fx.file("certonly.p12"), PASSWORD).unwrap_err();
    assert!(matches!(err, Pkcs12Error::NoPrivateKey { .. }), "{err:?}");
    assert!(err.to_string().contains("holds no private key"));
    let err = load_pkcs12(&fx.file("keyonly.p12"), PASSWORD).unwrap_err();
    assert!(matches!(err, Pkcs12Error::NoCertificate { .. }), "{err:?}");
    assert!(err.to_string().contains("holds no certificate"));

    // Without localKeyID attributes OpenSSL cannot pair key and certificate by itself; the
    // certificate that matches the key is still found.
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("bare.p12");
    let cert =
        openssl::x509::X509::from_pem(&std::fs::read(fx.file("client.pem")).unwrap()).unwrap();
    let key =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(fx.file("client.key")).unwrap())
            .unwrap();
    let mut ca = openssl::stack::Stack::new().unwrap();
    ca.push(cert).unwrap();
    let mut b = openssl::pkcs12::Pkcs12::builder();
    b.pkey(&key).ca(ca);
    std::fs::write(&bare, b.build2(PASSWORD).unwrap().to_der().unwrap()).unwrap();
    let id = load_pkcs12(&bare, PASSWORD).unwrap();
    assert_eq!(id.subject_cn().as_deref(), Some("10.1.2.3"));
    assert!(id.ca_certs().is_empty());
}

#[test]
fn pem_certificate_and_key_files_load() {
    let fx = fixture();
    let id =
        ClientIdentity::from_pem_files(&fx.file("client.pem"), &fx.file("client.key")).unwrap();
    assert_eq!(id.subject_cn().as_deref(), Some("10.1.2.3"));
    assert!(id.ca_certs().is_empty());

    // A certificate file with the chain appended carries the CA along.
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.pem");
    let mut bytes = std::fs::read(fx.file("client.pem")).unwrap();
    bytes.extend(std::fs::read(fx.file("ca.pem")).unwrap());
    std::fs::write(&chain, bytes).unwrap();
    let id = ClientIdentity::from_pem_files(&chain, &fx.file("client.key")).unwrap();
    assert_is_client(&id, fx);
}

#[test]
fn pem_problems_are_explained() {
    let fx = fixture();
    let err = ClientIdentity::from_pem_files(&fx.file("client.pem"), &fx.file("encrypted.key"))
        .unwrap_err();
    assert!(
        matches!(err, PemIdentityError::EncryptedKey { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("openssl pkey -in"), "{err}");

    let err =
        ClientIdentity::from_pem_files(&fx.file("client.pem"), &fx.file("ca.key")).unwrap_err();
    assert!(
        matches!(err, PemIdentityError::KeyMismatch { .. }),
        "{err:?}"
    );

    let err =
        ClientIdentity::from_pem_files(&fx.file("client.key"), &fx.file("client.key")).unwrap_err();
    assert!(
        matches!(err, PemIdentityError::NoCertificate { .. }),
        "{err:?}"
    );

    let err =
        ClientIdentity::from_pem_files(&fx.file("client.pem"), &fx.file("client.pem")).unwrap_err();
    assert!(
        matches!(err, PemIdentityError::NoPrivateKey { .. }),
        "{err:?}"
    );

    let missing = fx.file("missing.key");
    let err = ClientIdentity::from_pem_files(&fx.file("client.pem"), &missing).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

#[test]
fn simulator_legacy_pkcs12_is_really_legacy_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let opts = PkiOptions {
        legacy_pkcs12: true,
        ..PkiOptions::default()
    };
    let files = pki::init(dir.path(), &opts).unwrap();

    let info = openssl_ok(
        dir.path(),
        &[
            "pkcs12",
            "-legacy",
            "-info",
            "-in",
            "client.pkcs12",
            "-passin",
            "file:client.pass",
            "-noout",
        ],
    );
    assert!(info.contains("pbeWithSHA1And40BitRC2-CBC"), "{info}");
    assert!(info.contains("pbeWithSHA1And3-KeyTripleDES-CBC"), "{info}");
    assert!(info.contains("MAC: sha1"), "{info}");
    let without_legacy = run_openssl(
        dir.path(),
        &[
            "pkcs12",
            "-in",
            "client.pkcs12",
            "-passin",
            "file:client.pass",
            "-nodes",
            "-out",
            "/dev/null",
        ],
    );
    assert!(
        !without_legacy.status.success(),
        "plain OpenSSL 3 read a legacy file"
    );

    let password = read_password_file(&files.client_pass, "client.pass")
        .unwrap()
        .expose()
        .to_string();
    assert_eq!(password, opts.password);
    assert_eq!(password.len(), 20, "a random default password");
    assert!(
        !format!("{opts:?}").contains(&password),
        "password in Debug output"
    );
    let id = load_pkcs12(&files.client_pkcs12, &password).unwrap();
    assert_eq!(id.subject_cn().as_deref(), Some("127.0.0.1"));
    assert_eq!(id.ca_certs().len(), 1);

    // The openssl CLI agrees the client certificate chains to the CA written next to it.
    std::fs::write(dir.path().join("client.pem"), id.cert().to_pem().unwrap()).unwrap();
    let verify = openssl_ok(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslclient",
            "client.pem",
        ],
    );
    assert!(verify.contains("client.pem: OK"), "{verify}");
    let verify = openssl_ok(
        dir.path(),
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "sslserver",
            "server.pem",
        ],
    );
    assert!(verify.contains("server.pem: OK"), "{verify}");
}

#[test]
fn simulator_modern_pkcs12_uses_aes_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let opts = PkiOptions {
        legacy_pkcs12: false,
        password: "modern pass".to_string(),
        client_cn: "10.20.30.40".to_string(),
        ..PkiOptions::default()
    };
    let files = pki::init(dir.path(), &opts).unwrap();
    let info = openssl_ok(
        dir.path(),
        &[
            "pkcs12",
            "-info",
            "-in",
            "client.pkcs12",
            "-passin",
            "file:client.pass",
            "-noout",
        ],
    );
    assert!(info.contains("AES-256-CBC"), "{info}");
    let id = load_pkcs12(&files.client_pkcs12, "modern pass").unwrap();
    assert_eq!(id.subject_cn().as_deref(), Some("10.20.30.40"));
}

#[test]
fn simulator_pki_protects_keys_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let files = pki::init(dir.path(), &PkiOptions::default()).unwrap();
    for secret in [
        &files.ca_key,
        &files.server_key,
        &files.client_pkcs12,
        &files.client_pass,
    ] {
        let mode = std::fs::metadata(secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", secret.display());
    }
    for public in [&files.ca_cert, &files.server_cert] {
        let mode = std::fs::metadata(public).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", public.display());
    }

    let before = std::fs::read(&files.ca_key).unwrap();
    let err = pki::init(dir.path(), &PkiOptions::default()).unwrap_err();
    assert!(matches!(err, PkiError::Exists { .. }), "{err:?}");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&files.ca_key).unwrap(), before);

    let again = PkiOptions {
        overwrite: true,
        ..PkiOptions::default()
    };
    pki::init(dir.path(), &again).unwrap();
    assert_ne!(std::fs::read(&files.ca_key).unwrap(), before);
    assert_eq!(
        read_password_file(&files.client_pass, "client.pass")
            .unwrap()
            .expose()
            .to_string(),
        again.password
    );
}

#[test]
fn issue_client_makes_extra_certificates_from_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let files = pki::init(dir.path(), &PkiOptions::default()).unwrap();
    let path = pki::issue_client(dir.path(), &files.ca(), "10.9.9.9", "other", true).unwrap();
    let id = load_pkcs12(&path, "other").unwrap();
    assert_eq!(id.subject_cn().as_deref(), Some("10.9.9.9"));
    let ca = openssl::x509::X509::from_pem(&std::fs::read(&files.ca_cert).unwrap()).unwrap();
    assert_eq!(ca.issued(id.cert()), openssl::x509::X509VerifyResult::OK);

    let err = pki::issue_client(dir.path(), &files.ca(), "10.9.9.9", "other", true).unwrap_err();
    assert!(matches!(err, PkiError::Exists { .. }), "{err:?}");
}

// --- OpenSSL without its legacy provider ------------------------------------------------------

const CHILD_ENV: &str = "ESTREAMER_CEF_TEST_LEGACY_FIXTURE";

/// Runs `legacy_provider_missing_child` in a fresh process whose OpenSSL cannot find its legacy
/// provider (as on a system without it): the error must say so and give a conversion command that
/// works.
#[test]
fn legacy_pkcs12_without_legacy_provider_explains_the_conversion() {
    let fx = fixture();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "legacy_provider_missing_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, fx.file("legacy.p12"))
        .env("OPENSSL_MODULES", "/nonexistent-openssl-modules")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "run by legacy_pkcs12_without_legacy_provider_explains_the_conversion in a child process"]
fn legacy_provider_missing_child() {
    let fixture = PathBuf::from(
        std::env::var_os(CHILD_ENV)
            .expect("run by legacy_pkcs12_without_legacy_provider_explains_the_conversion"),
    );
    let work = tempfile::tempdir().unwrap();
    // A space and a quote in the name: the printed command must quote the path.
    let p12 = work.path().join("fmc client's.pkcs12");
    std::fs::copy(&fixture, &p12).unwrap();

    let err = load_pkcs12(&p12, PASSWORD).unwrap_err();
    assert!(
        matches!(err, Pkcs12Error::LegacyUnsupported { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&p12.display().to_string()), "{msg}");
    assert!(msg.contains("legacy"), "{msg}");
    assert!(!msg.contains(PASSWORD), "{msg}");

    // The conversion command in the message works as printed (run where openssl has its
    // legacy provider), and the result loads without the legacy provider.
    let command = msg
        .lines()
        .find(|l| l.trim_start().starts_with("openssl pkcs12 -export"))
        .unwrap_or_else(|| panic!("no conversion command in: {msg}"));
    let out = Command::new("bash")
        .arg("-c")
        .arg(command)
        .env("P12PASS", PASSWORD)
        .env_remove("OPENSSL_MODULES")
        .output()
        .expect("cannot run bash");
    assert!(
        out.status.success(),
        "conversion failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let converted = PathBuf::from(format!("{}.aes", p12.display()));
    assert!(msg.contains(&converted.display().to_string()), "{msg}");
    let id = load_pkcs12(&converted, PASSWORD).unwrap();
    assert_eq!(id.subject_cn().as_deref(), Some("10.1.2.3"));
    assert_eq!(
        id.ca_certs().len(),
        1,
        "the FMC's CA must survive the conversion"
    );
}
