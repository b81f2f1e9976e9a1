//! The simulator's own PKI: a CA, the simulated FMC's server certificate, and client PKCS12 files
//! like the ones an FMC issues, so that a new user can run the simulator without any other tool.
//!
//! Layout of a PKI directory (see [`PkiFiles`]): `ca.pem`, `ca.key`, `server.pem`, `server.key`,
//! `client.pkcs12` and `client.pass`. Private keys and the password file are created mode 0600.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslRef, SslVerifyMode, SslVersion};
use openssl::stack::Stack;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Name, X509NameBuilder, X509Ref};
use rand::Rng;
use rand::distr::Alphanumeric;

use estreamer_cef::net::identity;

const ORGANIZATION: &str = "estreamer-cef simulator";
/// Validity of certificates issued by [`issue_client`].
pub const DEFAULT_DAYS: u32 = 825;
/// Certificates start one hour in the past, so that a clock slightly behind does not reject them.
const BACKDATE_SECS: i64 = 3600;

/// What [`init`] creates.
#[derive(Clone)]
pub struct PkiOptions {
    /// Common Name of the client certificate. A real FMC compares it with the client's source
    /// address, so the default is the loopback address the simulator is usually reached from.
    pub client_cn: String,
    /// Names and addresses the simulated FMC's certificate is valid for (DNS or IP subject
    /// alternative names; the first is also its CN).
    pub server_names: Vec<String>,
    /// Password of `client.pkcs12`, also written to `client.pass`. The default is random.
    pub password: String,
    /// Encrypt `client.pkcs12` like OpenSSL 1.x and older FMCs do (RC2-40 certificate bag, 3DES
    /// key bag, SHA-1 MAC) instead of AES-256. Needs OpenSSL's legacy provider.
    pub legacy_pkcs12: bool,
    /// Validity of every certificate, in days.
    pub days: u32,
    /// Replace existing files instead of refusing.
    pub overwrite: bool,
}

// Hand-written so that the password never reaches a log through `{:?}`.
impl std::fmt::Debug for PkiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkiOptions")
            .field("client_cn", &self.client_cn)
            .field("server_names", &self.server_names)
            .field("password", &"<redacted>")
            .field("legacy_pkcs12", &self.legacy_pkcs12)
            .field("days", &self.days)
            .field("overwrite", &self.overwrite)
            .finish()
    }
}

impl Default for PkiOptions {
    fn default() -> Self {
        PkiOptions {
            client_cn: "127.0.0.1".to_string(),
            server_names: vec!["localhost".to_string(), "127.0.0.1".to_string()],
            password: random_password(),
            legacy_pkcs12: true,
            days: DEFAULT_DAYS,
            overwrite: false,
        }
    }
}

/// A random 20-character alphanumeric password.
pub fn random_password() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

/// The files of a PKI directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiFiles {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_pkcs12: PathBuf,
    pub client_pass: PathBuf,
}

impl PkiFiles {
    /// The file names [`init`] uses in `dir` (whether or not they exist).
    pub fn in_dir(dir: &Path) -> PkiFiles {
        PkiFiles {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_pkcs12: dir.join("client.pkcs12"),
            client_pass: dir.join("client.pass"),
        }
    }

    /// The CA's certificate and key, for [`issue_client`].
    pub fn ca(&self) -> CaFiles {
        CaFiles {
            cert: self.ca_cert.clone(),
            key: self.ca_key.clone(),
        }
    }

    fn all(&self) -> [&PathBuf; 6] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.client_pkcs12,
            &self.client_pass,
        ]
    }
}

/// A CA certificate and its private key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the simulator's PKI could not be created or used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(
        "{} already exists; not overwriting the simulator's PKI.\n\
         Use the existing files, remove them, or ask for them to be overwritten.",
        path.display()
    )]
    Exists { path: PathBuf },

    #[error("cannot write {}: {io}", path.display())]
    Write { path: PathBuf, io: io::Error },

    #[error("cannot use {}: {detail}", path.display())]
    Read { path: PathBuf, detail: String },

    #[error("invalid PKI option: {0}")]
    Invalid(String),

    #[error(
        "cannot write a legacy-encrypted (RC2-40/3DES) PKCS12 file: OpenSSL's legacy provider is \
         not available ({0}).\nInstall it (Debian: ossl-modules/legacy.so from libssl3; check \
         OPENSSL_MODULES if it is set) or issue a modern (AES) PKCS12 instead."
    )]
    LegacyUnavailable(String),

    #[error("cannot create {what}: {source}")]
    OpenSsl {
        what: &'static str,
        #[source]
        source: ErrorStack,
    },
}

fn ossl(what: &'static str) -> impl FnOnce(ErrorStack) -> PkiError {
    move |source| PkiError::OpenSsl { what, source }
}

/// Creates a CA, a server certificate for the simulated FMC and a client PKCS12 in `dir`
/// (created if missing). Refuses to replace any existing file unless `opts.overwrite` is set;
/// in that case nothing is written.
pub fn init(dir: &Path, opts: &PkiOptions) -> Result<PkiFiles, PkiError> {
    if opts.server_names.is_empty() {
        return Err(PkiError::Invalid(
            "the server certificate needs at least one name or address".to_string(),
        ));
    }
    check_password(&opts.password)?;
    if opts.days == 0 {
        return Err(PkiError::Invalid(
            "certificates must be valid for at least one day".to_string(),
        ));
    }
    if opts.legacy_pkcs12 {
        identity::legacy_provider().map_err(|e| PkiError::LegacyUnavailable(e.to_string()))?;
    }

    let files = PkiFiles::in_dir(dir);
    if !opts.overwrite
        && let Some(existing) = files.all().into_iter().find(|p| p.exists())
    {
        return Err(PkiError::Exists {
            path: existing.clone(),
        });
    }
    create_dir(dir)?;

    let ca_key = new_key()?;
    let ca_cert = build_cert(
        &ca_key,
        "estreamer-cef simulator CA",
        &Role::Ca,
        None,
        opts.days,
    )?;

    let server_key = new_key()?;
    let server_cert = build_cert(
        &server_key,
        &opts.server_names[0],
        &Role::Server(&opts.server_names),
        Some((&ca_cert, &ca_key)),
        opts.days,
    )?;

    let client_key = new_key()?;
    let client_cert = build_cert(
        &client_key,
        &opts.client_cn,
        &Role::Client,
        Some((&ca_cert, &ca_key)),
        opts.days,
    )?;
    let pkcs12 = build_pkcs12(
        &client_cert,
        &client_key,
        &ca_cert,
        &opts.password,
        opts.legacy_pkcs12,
    )?;

    write_file(&files.ca_cert, &pem(ca_cert.to_pem())?, 0o644)?;
    write_file(
        &files.ca_key,
        &pem(ca_key.private_key_to_pem_pkcs8())?,
        0o600,
    )?;
    write_file(&files.server_cert, &pem(server_cert.to_pem())?, 0o644)?;
    write_file(
        &files.server_key,
        &pem(server_key.private_key_to_pem_pkcs8())?,
        0o600,
    )?;
    write_file(&files.client_pkcs12, &pkcs12, 0o600)?;
    write_file(
        &files.client_pass,
        format!("{}\n", opts.password).as_bytes(),
        0o600,
    )?;
    Ok(files)
}

/// Issues another client certificate from the CA in `ca`, as a PKCS12 file
/// `dir/client-<cn>.pkcs12` protected by `password`. Refuses to replace an existing file.
pub fn issue_client(
    dir: &Path,
    ca: &CaFiles,
    cn: &str,
    password: &str,
    legacy: bool,
) -> Result<PathBuf, PkiError> {
    check_password(password)?;
    if legacy {
        identity::legacy_provider().map_err(|e| PkiError::LegacyUnavailable(e.to_string()))?;
    }
    let safe_cn = estreamer_cef::metadata::store::safe_file_part(cn);
    let path = dir.join(format!("client-{safe_cn}.pkcs12"));
    if path.exists() {
        return Err(PkiError::Exists { path });
    }

    let ca_cert = X509::from_pem(&read(&ca.cert)?).map_err(|e| PkiError::Read {
        path: ca.cert.clone(),
        detail: format!("not a PEM certificate ({e})"),
    })?;
    let ca_key = PKey::private_key_from_pem(&read(&ca.key)?).map_err(|e| PkiError::Read {
        path: ca.key.clone(),
        detail: format!("not an unencrypted PEM private key ({e})"),
    })?;
    let key = new_key()?;
    let cert = build_cert(
        &key,
        cn,
        &Role::Client,
        Some((&ca_cert, &ca_key)),
        DEFAULT_DAYS,
    )?;
    let pkcs12 = build_pkcs12(&cert, &key, &ca_cert, password, legacy)?;
    create_dir(dir)?;
    write_file(&path, &pkcs12, 0o600)?;
    Ok(path)
}

/// The simulated FMC's TLS server context: its certificate and key, and a mandatory client
/// certificate that must chain to `client_ca`. Like the FMCs we have captures of, it speaks
/// TLS 1.2 only.
pub fn build_acceptor(
    server_cert: &Path,
    server_key: &Path,
    client_ca: &Path,
) -> Result<SslAcceptor, PkiError> {
    let read_error = |path: &Path| {
        let path = path.to_path_buf();
        move |e: ErrorStack| PkiError::Read {
            path,
            detail: e.to_string(),
        }
    };
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(ossl("the TLS server context"))?;
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .and_then(|()| builder.set_max_proto_version(Some(SslVersion::TLS1_2)))
        .map_err(ossl("the TLS server context"))?;
    builder
        .set_certificate_chain_file(server_cert)
        .map_err(read_error(server_cert))?;
    builder
        .set_private_key_file(server_key, SslFiletype::PEM)
        .map_err(read_error(server_key))?;
    builder.check_private_key().map_err(|e| PkiError::Read {
        path: server_key.to_path_buf(),
        detail: format!("the key does not belong to {} ({e})", server_cert.display()),
    })?;

    builder
        .set_ca_file(client_ca)
        .map_err(read_error(client_ca))?;
    // The CertificateRequest names the acceptable CAs, as the FMC's does.
    let ca_certs = X509::stack_from_pem(&read(client_ca)?).map_err(read_error(client_ca))?;
    for ca in &ca_certs {
        builder.add_client_ca(ca).map_err(read_error(client_ca))?;
    }
    builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    // Required for session resumption whenever client certificates are verified.
    builder
        .set_session_id_context(b"estreamer-cef-sim")
        .map_err(ossl("the TLS server context"))?;
    Ok(builder.build())
}

/// The Common Name of the client certificate on an accepted connection.
pub fn peer_cn(ssl: &SslRef) -> Option<String> {
    ssl.peer_certificate()
        .and_then(|cert| estreamer_cef::net::x509::common_name(cert.subject_name()))
}

// ---------------------------------------------------------------------------------------------

enum Role<'a> {
    Ca,
    Server(&'a [String]),
    Client,
}

fn check_password(password: &str) -> Result<(), PkiError> {
    if password.contains('\0') || password.contains('\n') {
        return Err(PkiError::Invalid(
            "the PKCS12 password cannot contain NUL or newline characters".to_string(),
        ));
    }
    Ok(())
}

/// EC P-256: as strong as RSA-3072 and generated in microseconds, which keeps tests fast.
fn new_key() -> Result<PKey<Private>, PkiError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ossl("an EC P-256 key"))?;
    let key = EcKey::generate(&group).map_err(ossl("an EC P-256 key"))?;
    PKey::from_ec_key(key).map_err(ossl("an EC P-256 key"))
}

fn subject(cn: &str) -> Result<X509Name, PkiError> {
    if cn.is_empty() || cn.len() > 64 {
        return Err(PkiError::Invalid(format!(
            "a certificate Common Name must be 1 to 64 bytes long, not {:?}",
            cn
        )));
    }
    let mut name = X509NameBuilder::new().map_err(ossl("a certificate name"))?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, ORGANIZATION)
        .and_then(|()| name.append_entry_by_nid(Nid::COMMONNAME, cn))
        .map_err(ossl("a certificate name"))?;
    Ok(name.build())
}

fn build_cert(
    key: &PKey<Private>,
    cn: &str,
    role: &Role<'_>,
    issuer: Option<(&X509Ref, &PKey<Private>)>,
    days: u32,
) -> Result<X509, PkiError> {
    let what = "a certificate";
    let name = subject(cn)?;
    let mut b = X509::builder().map_err(ossl(what))?;
    b.set_version(2).map_err(ossl(what))?;
    let serial = {
        let mut bn = BigNum::new().map_err(ossl(what))?;
        bn.rand(127, MsbOption::MAYBE_ZERO, false)
            .map_err(ossl(what))?;
        Asn1Integer::from_bn(&bn).map_err(ossl(what))?
    };
    b.set_serial_number(&serial).map_err(ossl(what))?;
    b.set_subject_name(&name).map_err(ossl(what))?;
    b.set_issuer_name(issuer.map_or(&name, |(ca, _)| ca.subject_name()))
        .map_err(ossl(what))?;
    b.set_pubkey(key).map_err(ossl(what))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let not_before = Asn1Time::from_unix((now - BACKDATE_SECS) as _).map_err(ossl(what))?;
    let not_after = Asn1Time::days_from_now(days).map_err(ossl(what))?;
    b.set_not_before(&not_before).map_err(ossl(what))?;
    b.set_not_after(&not_after).map_err(ossl(what))?;

    let mut extensions = Vec::new();
    match role {
        Role::Ca => {
            extensions.push(BasicConstraints::new().critical().ca().pathlen(0).build());
            extensions.push(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build(),
            );
        }
        Role::Server(_) | Role::Client => {
            extensions.push(BasicConstraints::new().critical().build());
            extensions.push(KeyUsage::new().critical().digital_signature().build());
            let mut eku = ExtendedKeyUsage::new();
            match role {
                Role::Server(_) => eku.server_auth(),
                _ => eku.client_auth(),
            };
            extensions.push(eku.build());
        }
    }
    for ext in extensions {
        b.append_extension(ext.map_err(ossl(what))?)
            .map_err(ossl(what))?;
    }

    let issuer_cert = issuer.map(|(ca, _)| ca);
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(issuer_cert, None))
        .map_err(ossl(what))?;
    b.append_extension(ski).map_err(ossl(what))?;
    if let Some(ca) = issuer_cert {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(ca), None))
            .map_err(ossl(what))?;
        b.append_extension(aki).map_err(ossl(what))?;
    }

    let names: Vec<&str> = match role {
        Role::Ca => Vec::new(),
        Role::Server(names) => names.iter().map(String::as_str).collect(),
        Role::Client => vec![cn],
    };
    if !names.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for name in names {
            if name.parse::<IpAddr>().is_ok() {
                san.ip(name);
            } else {
                san.dns(name);
            }
        }
        let san = san
            .build(&b.x509v3_context(issuer_cert, None))
            .map_err(ossl("the subject alternative names"))?;
        b.append_extension(san).map_err(ossl(what))?;
    }

    let signer = issuer.map_or(key, |(_, ca_key)| ca_key);
    b.sign(signer, MessageDigest::sha256())
        .map_err(ossl(what))?;
    Ok(b.build())
}

fn build_pkcs12(
    cert: &X509Ref,
    key: &PKey<Private>,
    ca: &X509Ref,
    password: &str,
    legacy: bool,
) -> Result<Vec<u8>, PkiError> {
    let what = "the client PKCS12";
    let mut chain = Stack::new().map_err(ossl(what))?;
    chain.push(ca.to_owned()).map_err(ossl(what))?;
    let mut builder = Pkcs12::builder();
    builder
        .name("estreamer client")
        .pkey(key)
        .cert(cert)
        .ca(chain);
    if legacy {
        // What `openssl pkcs12 -export -legacy` (and OpenSSL 1.x by default) writes.
        builder
            .cert_algorithm(Nid::PBE_WITHSHA1AND40BITRC2_CBC)
            .key_algorithm(Nid::PBE_WITHSHA1AND3_KEY_TRIPLEDES_CBC)
            .mac_md(MessageDigest::sha1());
    }
    builder
        .build2(password)
        .and_then(|p| p.to_der())
        .map_err(ossl(what))
}

fn pem(result: Result<Vec<u8>, ErrorStack>) -> Result<Vec<u8>, PkiError> {
    result.map_err(ossl("a PEM encoding"))
}

fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|e| PkiError::Read {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|io| PkiError::Write {
            path: dir.to_path_buf(),
            io,
        })
}

/// Writes through a temporary file and a rename, so a reader never sees half a file and a key
/// never exists with wider permissions than `mode`.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let werr = |io| PkiError::Write {
        path: path.to_path_buf(),
        io,
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed `mode`; a public certificate must stay readable.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(werr)
}
