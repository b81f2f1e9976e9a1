//! TLS client side of the FMC session: our client identity (the FMC-issued PKCS12, or PEM files),
//! how we trust the FMC, and the handshake, with its failures sorted into causes an operator can act
//! on.
//!
//! The FMC requires mutual TLS (1.2 in every capture we have). It authenticates us by the client
//! certificate it issued, and after the handshake it also compares the certificate's CN with our
//! source address; when it rejects us it usually just closes the socket, so a bare "connection
//! closed" has to be turned into a list of likely causes here.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::OnceLock;

use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::provider::Provider;
use openssl::ssl::{ErrorCode, SslConnector, SslMethod, SslRef, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509NameRef, X509Ref, X509VerifyResult};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

// ---------------------------------------------------------------------------------------------
// OpenSSL providers
// ---------------------------------------------------------------------------------------------

/// The providers we load, kept for the life of the process: unloading them while a PKCS12 or
/// TLS context still refers to their algorithms would be undefined.
struct Providers {
    _default: Option<Provider>,
    legacy: Result<Provider, String>,
}

static PROVIDERS: OnceLock<Providers> = OnceLock::new();

/// Makes OpenSSL's `legacy` provider available (once per process), so that PKCS12 files
/// encrypted with RC2-40 / 3DES (what OpenSSL 1.x and older FMCs produce) can be read.
///
/// Loading any provider explicitly switches off OpenSSL's implicit fallback to `default`, so
/// `default` is loaded first and stays loaded. Returns the loader's error text when the legacy
/// provider is not installed (or `OPENSSL_MODULES` points elsewhere).
pub fn legacy_provider() -> Result<(), &'static str> {
    let providers = PROVIDERS.get_or_init(|| Providers {
        _default: Provider::load(None, "default").ok(),
        legacy: Provider::try_load(None, "legacy", true).map_err(|e| one_line(&e)),
    });
    match &providers.legacy {
        Ok(_) => Ok(()),
        Err(e) => Err(e.as_str()),
    }
}

// ---------------------------------------------------------------------------------------------
// Client identity
// ---------------------------------------------------------------------------------------------

/// Our client certificate, its private key and the CA certificates that came with it (the FMC's
/// CA when read from the FMC-issued PKCS12).
#[derive(Clone)]
pub struct ClientIdentity {
    cert: X509,
    key: PKey<Private>,
    ca_certs: Vec<X509>,
}

// Hand-written so that the private key can never end up in a log through `{:?}`.
impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("subject", &name_to_string(self.cert.subject_name()))
            .field("issuer", &name_to_string(self.cert.issuer_name()))
            .field("ca_certs", &self.ca_certs.len())
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// The client certificate.
    pub fn cert(&self) -> &X509Ref {
        &self.cert
    }

    /// The client certificate's private key.
    pub fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// CA certificates that came with the identity (PKCS12 "CA" bag, or extra certificates in the
    /// PEM certificate file).
    pub fn ca_certs(&self) -> &[X509] {
        &self.ca_certs
    }

    /// The client certificate's Common Name. The FMC compares it with our source address.
    pub fn subject_cn(&self) -> Option<String> {
        common_name(self.cert.subject_name())
    }

    /// The client certificate's subject, e.g. `CN=10.0.0.5, O=Cisco`.
    pub fn subject(&self) -> String {
        name_to_string(self.cert.subject_name())
    }

    /// The client certificate's expiry, as OpenSSL prints it (`Jun  1 12:00:00 2030 GMT`).
    pub fn not_after(&self) -> String {
        self.cert.not_after().to_string()
    }

    /// Reads an identity from a PEM certificate file (client certificate first, optionally followed
    /// by its chain) and an unencrypted PEM private key file.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ClientIdentity, PemIdentityError> {
        let cert_pem = std::fs::read(cert).map_err(|io| PemIdentityError::Read {
            path: cert.to_path_buf(),
            io,
        })?;
        let key_pem = std::fs::read(key).map_err(|io| PemIdentityError::Read {
            path: key.to_path_buf(),
            io,
        })?;

        let mut certs = X509::stack_from_pem(&cert_pem)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| PemIdentityError::NoCertificate {
                path: cert.to_path_buf(),
            })?
            .into_iter();
        let Some(leaf) = certs.next() else {
            return Err(PemIdentityError::NoCertificate {
                path: cert.to_path_buf(),
            });
        };

        // Without a callback OpenSSL would prompt on the terminal for the passphrase of an
        // encrypted key; a service must fail instead and say how to decrypt the key.
        let mut asked_for_passphrase = false;
        let private_key = PKey::private_key_from_pem_callback(&key_pem, |_buf| {
            asked_for_passphrase = true;
            Ok(0)
        });
        let private_key = match private_key {
            Ok(k) => k,
            Err(_) if asked_for_passphrase => {
                return Err(PemIdentityError::EncryptedKey {
                    path: key.to_path_buf(),
                });
            }
            Err(e) => {
                return Err(PemIdentityError::NoPrivateKey {
                    path: key.to_path_buf(),
                    detail: one_line(&e),
                });
            }
        };

        let matches = leaf
            .public_key()
            .map(|public| public.public_eq(&private_key))
            .unwrap_or(false);
        if !matches {
            return Err(PemIdentityError::KeyMismatch {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
            });
        }

        Ok(ClientIdentity {
            cert: leaf,
            key: private_key,
            ca_certs: certs.collect(),
        })
    }
}

/// Why the client PKCS12 file could not be used. Each message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs12Error {
    #[error(
        "cannot read the client PKCS12 file {}: {io}\n\
         Check the path, and that the user the service runs as may read the file.",
        path.display()
    )]
    Read { path: PathBuf, io: io::Error },

    #[error(
        "wrong password for the client PKCS12 file {} (MAC verify failure).\n\
         Give the password that was entered on the FMC when this eStreamer client was created \
         (System > Integration > eStreamer); if it is lost, create the client again on the FMC \
         and download the new PKCS12 file.",
        path.display()
    )]
    WrongPassword { path: PathBuf },

    #[error(
        "the password for the client PKCS12 file {} contains a NUL character, which no PKCS12 \
         password can contain.\nCheck how the password is supplied (a password file must hold \
         just the password, optionally followed by a newline).",
        path.display()
    )]
    PasswordHasNul { path: PathBuf },

    #[error(
        "the client PKCS12 file {path} is encrypted with legacy algorithms (RC2-40 / 3DES, as \
         older FMCs and OpenSSL 1.x write it), and this OpenSSL cannot decrypt them because its \
         `legacy` provider is not available ({provider_error}).\n\
         Install the OpenSSL legacy provider (Debian: ossl-modules/legacy.so from libssl3; check \
         OPENSSL_MODULES if it is set), or convert the file once to modern encryption (AES) with \
         bash, on a machine whose openssl command has the legacy provider, keeping the password:\n\
         \x20   read -rs P12PASS && export P12PASS\n\
         \x20   openssl pkcs12 -export -in <(openssl pkcs12 -legacy -in {quoted} -nodes -nokeys -passin env:P12PASS) -inkey <(openssl pkcs12 -legacy -in {quoted} -nodes -nocerts -passin env:P12PASS) -passout env:P12PASS -out {quoted_out}\n\
         \x20   unset P12PASS\n\
         then use {path}.aes instead.",
        path = path.display(),
        quoted = shell_quote(&path.display().to_string()),
        quoted_out = shell_quote(&format!("{}.aes", path.display())),
    )]
    LegacyUnsupported {
        path: PathBuf,
        provider_error: String,
    },

    #[error(
        "{} is not a readable PKCS12 file ({detail}).\n\
         Download the client's PKCS12 file again from the FMC (System > Integration > eStreamer) \
         and copy it byte for byte (binary mode, no conversion to text).",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },

    #[error(
        "the client PKCS12 file {} holds no certificate for its private key.\n\
         Download the client's PKCS12 file again from the FMC (System > Integration > eStreamer).",
        path.display()
    )]
    NoCertificate { path: PathBuf },

    #[error(
        "the client PKCS12 file {} holds no private key.\n\
         Download the client's PKCS12 file again from the FMC (System > Integration > eStreamer); \
         a file exported without its key cannot authenticate us.",
        path.display()
    )]
    NoPrivateKey { path: PathBuf },

    #[error(
        "in the client PKCS12 file {}, the private key does not belong to the certificate.\n\
         Download the client's PKCS12 file again from the FMC (System > Integration > eStreamer).",
        path.display()
    )]
    KeyMismatch { path: PathBuf },
}

/// Why a PEM certificate / key pair could not be used as our client identity.
#[derive(Debug, thiserror::Error)]
pub enum PemIdentityError {
    #[error(
        "cannot read {}: {io}\nCheck the path, and that the user the service runs as may read the file.",
        path.display()
    )]
    Read { path: PathBuf, io: io::Error },

    #[error(
        "{} holds no PEM certificate (expected a `-----BEGIN CERTIFICATE-----` block).\n\
         Extract it from the FMC's PKCS12 file with: openssl pkcs12 -in client.pkcs12 -clcerts -nokeys -out client.crt",
        path.display()
    )]
    NoCertificate { path: PathBuf },

    #[error(
        "{} holds no usable PEM private key ({detail}).\n\
         Extract it from the FMC's PKCS12 file with: openssl pkcs12 -in client.pkcs12 -nocerts -nodes -out client.key",
        path.display()
    )]
    NoPrivateKey { path: PathBuf, detail: String },

    #[error(
        "the private key in {} is encrypted with a passphrase, which a service cannot type.\n\
         Decrypt it once: openssl pkey -in '{}' -out client-plain.key (then chmod 600 client-plain.key), \
         or give the FMC's PKCS12 file and its password instead.",
        path.display(), path.display()
    )]
    EncryptedKey { path: PathBuf },

    #[error(
        "the private key in {} does not belong to the certificate in {}.\n\
         Extract both from the same PKCS12 file.",
        key.display(), cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
}

/// Reads the FMC-issued, password-protected PKCS12 file. Legacy RC2-40/3DES encryption is
/// supported through OpenSSL's `legacy` provider, which this loads. The password never appears in
/// an error.
pub fn load_pkcs12(path: &Path, password: &str) -> Result<ClientIdentity, Pkcs12Error> {
    let owned = || path.to_path_buf();
    let der = std::fs::read(path).map_err(|io| Pkcs12Error::Read { path: owned(), io })?;
    if password.contains('\0') {
        return Err(Pkcs12Error::PasswordHasNul { path: owned() });
    }

    let pkcs12 = Pkcs12::from_der(&der).map_err(|e| Pkcs12Error::Corrupt {
        path: owned(),
        detail: not_pkcs12_detail(&der, &e),
    })?;

    // Without it, RC2-40 bags fail with "unsupported"; with it, modern files read the same.
    let legacy = legacy_provider();

    let parsed = pkcs12
        .parse2(password)
        .map_err(|stack| classify_pkcs12_error(path, &stack, legacy))?;

    let key = parsed
        .pkey
        .ok_or_else(|| Pkcs12Error::NoPrivateKey { path: owned() })?;
    let mut ca_certs: Vec<X509> = parsed
        .ca
        .map(|stack| stack.into_iter().collect())
        .unwrap_or_default();
    let belongs_to_key = |cert: &X509| {
        cert.public_key()
            .map(|public| public.public_eq(&key))
            .unwrap_or(false)
    };
    let cert = match parsed.cert {
        Some(cert) if belongs_to_key(&cert) => cert,
        Some(_) => return Err(Pkcs12Error::KeyMismatch { path: owned() }),
        // OpenSSL pairs key and certificate by their localKeyID attributes; a file written
        // without them leaves the certificate among the "CA" certificates.
        None => match ca_certs.iter().position(belongs_to_key) {
            Some(index) => ca_certs.remove(index),
            None => return Err(Pkcs12Error::NoCertificate { path: owned() }),
        },
    };
    Ok(ClientIdentity {
        cert,
        key,
        ca_certs,
    })
}

/// Reads a PKCS12 password from a file holding just the password, optionally followed by one
/// newline (as `client.pass` from the simulator, or `echo secret > file`). An empty file is an
/// empty password, which the FMC allows.
pub fn read_password_file(path: &Path) -> Result<String, io::Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read the password file {}: {e}", path.display()),
        )
    })?;
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    Ok(password.to_string())
}

const ERR_LIB_PKCS12: i32 = 35;
const PKCS12_R_MAC_VERIFY_FAILURE: i32 = 113;
const ERR_LIB_EVP: i32 = 6;

fn classify_pkcs12_error(
    path: &Path,
    stack: &ErrorStack,
    legacy: Result<(), &'static str>,
) -> Pkcs12Error {
    let errors = stack.errors();
    let mac_failed = errors.iter().any(|e| {
        e.library_code() == ERR_LIB_PKCS12 && e.reason_code() == PKCS12_R_MAC_VERIFY_FAILURE
    });
    if mac_failed {
        return Pkcs12Error::WrongPassword {
            path: path.to_path_buf(),
        };
    }
    // OpenSSL 3 reports a cipher it has no provider for as EVP "unsupported" (error 0308010C).
    let unsupported = errors.iter().any(|e| {
        e.library_code() == ERR_LIB_EVP && e.reason().is_some_and(|r| r.contains("unsupported"))
    });
    match legacy {
        Err(provider_error) if unsupported => Pkcs12Error::LegacyUnsupported {
            path: path.to_path_buf(),
            provider_error: provider_error.to_string(),
        },
        _ => Pkcs12Error::Corrupt {
            path: path.to_path_buf(),
            detail: one_line(stack),
        },
    }
}

/// A short explanation of why bytes are not a PKCS12 structure, with a hint for the usual
/// mistakes (a PEM file, a text-mode copy).
fn not_pkcs12_detail(bytes: &[u8], error: &ErrorStack) -> String {
    if bytes.is_empty() {
        return "the file is empty".to_string();
    }
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return "it is a PEM text file, not a binary PKCS12; if it holds the certificate and key, \
                give it as PEM certificate and key files instead"
            .to_string();
    }
    let reason = error
        .errors()
        .first()
        .and_then(|e| e.reason())
        .unwrap_or("not DER");
    format!("not a DER-encoded PKCS12 structure: {reason}")
}

// ---------------------------------------------------------------------------------------------
// Server trust and the connector
// ---------------------------------------------------------------------------------------------

/// How we verify the FMC's certificate. Config strings: `"pkcs12"` (the CA certificates inside the
/// client PKCS12, which the FMC includes), a path to a PEM file with the FMC's CA or the FMC's own
/// certificate, or `"insecure"` (no verification, as eNcore does; logged at every connect).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ServerTrust {
    #[default]
    Pkcs12Ca,
    PemFile(PathBuf),
    Insecure,
}

impl FromStr for ServerTrust {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" => Err(
                "server trust is empty: use \"pkcs12\", \"insecure\", or the path of a \
                       PEM file with the FMC's CA certificate"
                    .to_string(),
            ),
            "pkcs12" => Ok(ServerTrust::Pkcs12Ca),
            "insecure" => Ok(ServerTrust::Insecure),
            path => Ok(ServerTrust::PemFile(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for ServerTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerTrust::Pkcs12Ca => f.write_str("pkcs12"),
            ServerTrust::PemFile(path) => write!(f, "{}", path.display()),
            ServerTrust::Insecure => f.write_str("insecure"),
        }
    }
}

impl serde::Serialize for ServerTrust {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ServerTrust {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The warning to log at every connect made with [`ServerTrust::Insecure`].
pub fn insecure_warning() -> &'static str {
    "server certificate verification is OFF (server_trust = \"insecure\"): anyone who can \
     intercept the connection can pose as the FMC and read or alter the event stream. Set \
     server_trust to \"pkcs12\" or to the FMC's CA certificate file."
}

/// Why the TLS client context could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(
        "server trust is \"pkcs12\" but the client identity holds no CA certificate to verify the \
         FMC with.\nSet server trust to the path of a PEM file with the FMC's CA certificate (or the \
         FMC's own certificate), or to \"insecure\" to skip verification as eNcore does."
    )]
    NoCaInIdentity,

    #[error(
        "cannot use {} to verify the FMC: {detail}\n\
         Give a PEM file holding the FMC's CA certificate (or the FMC's own certificate).",
        path.display()
    )]
    TrustFile { path: PathBuf, detail: String },

    #[error("cannot set up TLS ({what}): {}", one_line(.source))]
    OpenSsl {
        what: &'static str,
        #[source]
        source: ErrorStack,
    },
}

fn setup(what: &'static str) -> impl FnOnce(ErrorStack) -> TlsSetupError {
    move |source| TlsSetupError::OpenSsl { what, source }
}

/// Builds the TLS client context for the FMC: TLS 1.2 or newer, our certificate, key and chain,
/// and server verification according to `trust`.
pub fn build_connector(
    id: &ClientIdentity,
    trust: &ServerTrust,
) -> Result<SslConnector, TlsSetupError> {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(setup("context"))?;
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(setup("minimum TLS version"))?;
    builder
        .set_certificate(&id.cert)
        .map_err(setup("client certificate"))?;
    builder
        .set_private_key(&id.key)
        .map_err(setup("client private key"))?;
    builder
        .check_private_key()
        .map_err(setup("client key does not match the certificate"))?;
    // Send intermediates so the FMC can build the chain; a self-signed root adds nothing.
    for ca in &id.ca_certs {
        if ca.issued(ca) != X509VerifyResult::OK {
            builder
                .add_extra_chain_cert(ca.clone())
                .map_err(setup("client certificate chain"))?;
        }
    }

    let anchors: Vec<X509> = match trust {
        ServerTrust::Insecure => {
            builder.set_verify(SslVerifyMode::NONE);
            return Ok(builder.build());
        }
        ServerTrust::Pkcs12Ca => {
            if id.ca_certs.is_empty() {
                return Err(TlsSetupError::NoCaInIdentity);
            }
            id.ca_certs.clone()
        }
        ServerTrust::PemFile(path) => read_trust_file(path)?,
    };

    // Only the FMC's CA is trusted, never the system's public roots.
    let mut store = X509StoreBuilder::new().map_err(setup("trust store"))?;
    for cert in anchors {
        store.add_cert(cert).map_err(setup("trust store"))?;
    }
    // Lets the operator pin the FMC's own (non-self-signed) certificate as the trust anchor.
    store
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(setup("trust store"))?;
    builder.set_cert_store(store.build());
    builder.set_verify(SslVerifyMode::PEER);
    Ok(builder.build())
}

fn read_trust_file(path: &Path) -> Result<Vec<X509>, TlsSetupError> {
    let trust_file = |detail: String| TlsSetupError::TrustFile {
        path: path.to_path_buf(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| trust_file(e.to_string()))?;
    match X509::stack_from_pem(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(trust_file("it holds no PEM certificate".to_string())),
        Err(e) => Err(trust_file(format!(
            "not a PEM certificate file ({})",
            one_line(&e)
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// The handshake
// ---------------------------------------------------------------------------------------------

/// Why the TLS handshake with the FMC failed, in terms an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error(
        "the FMC's certificate is not trusted: {reason}{}.\n\
         Check that server trust names the CA that signed the FMC's certificate (or the FMC's own \
         certificate), and that this machine's clock is right.",
        describe_cert(server_subject.as_deref(), server_issuer.as_deref())
    )]
    ServerNotTrusted {
        /// OpenSSL's verification error, e.g. "unable to get local issuer certificate".
        reason: String,
        server_subject: Option<String>,
        server_issuer: Option<String>,
    },

    #[error(
        "the FMC's certificate is not valid for the name {host:?}: it is issued for {}.\n\
         Connect to the FMC by one of those names or addresses (or, if its certificate simply \
         lacks the name you use, turn hostname verification off; the chain is still verified).",
        if names_in_cert.is_empty() { "no name at all".to_string() } else { names_in_cert.join(", ") }
    )]
    HostnameMismatch {
        host: String,
        names_in_cert: Vec<String>,
    },

    #[error(
        "the FMC rejected our client certificate (TLS alert: {alert}).\n\
         The certificate is not one this FMC issued or still accepts. Create the eStreamer client \
         again on the FMC (System > Integration > eStreamer), download the new PKCS12 file and use \
         it here."
    )]
    ClientCertRejected { alert: String },

    #[error(
        "the FMC aborted the TLS handshake before checking our certificate (TLS alert: {alert}).\n\
         The FMC and this client share no TLS version or cipher suite; we offer TLS 1.2 and 1.3."
    )]
    ServerAlert { alert: String },

    #[error(
        "the FMC closed the connection during the TLS handshake without giving a reason.\n\
         The FMC does this when it refuses the client: the client certificate was revoked or \
         re-issued (create the client again on the FMC), or the address is not allowed. Look for \
         \"SSL_accept failed\" in the FMC's eStreamer log."
    )]
    ClosedDuringHandshake,

    #[error("network error during the TLS handshake with the FMC: {0}")]
    Io(#[source] io::Error),

    #[error("TLS handshake with the FMC failed: {detail}")]
    Tls { detail: String },
}

fn describe_cert(subject: Option<&str>, issuer: Option<&str>) -> String {
    match (subject, issuer) {
        (Some(s), Some(i)) => format!(" (certificate {s}, issued by {i})"),
        (Some(s), None) => format!(" (certificate {s})"),
        _ => String::new(),
    }
}

impl HandshakeError {
    /// Recognises, in an error from the first read or write after the handshake, a TLS alert by
    /// which the server refuses our certificate. With TLS 1.3 the client finishes its handshake
    /// before the server has checked the client certificate, so the rejection arrives there.
    pub fn from_stream_error(err: &io::Error) -> Option<HandshakeError> {
        let ssl_error = err.get_ref()?.downcast_ref::<openssl::ssl::Error>()?;
        let alert = received_alert(ssl_error.ssl_error()?)?;
        certificate_alert(alert.0).then(|| HandshakeError::ClientCertRejected {
            alert: alert.name(),
        })
    }
}

/// What to tell the operator when the FMC closes the connection right after a successful
/// handshake, before sending anything: that is how it refuses a client whose certificate CN does
/// not match the address it sees us connect from (it sends no error message).
pub fn closed_after_handshake_explanation(client_cn: Option<&str>) -> String {
    let cn = client_cn.unwrap_or("(none)");
    format!(
        "the FMC closed the connection right after the TLS handshake without a message. The FMC \
         does this when the client certificate's Common Name ({cn}) does not match the address \
         it sees us connect from: behind NAT the certificate must be issued for the translated \
         address, and a DNS name is resolved by the FMC's own DNS. Create the eStreamer client on \
         the FMC (System > Integration > eStreamer) for the address the FMC sees, and check the \
         FMC's log for \"does not match remote host\"."
    )
}

/// Performs the TLS handshake with the FMC over `tcp`. `host` is the name or address we dialled:
/// it is checked against the FMC's certificate when `verify_hostname` is set (and the connector
/// verifies at all), and sent as SNI unless it is an IP literal.
pub async fn connect(
    tcp: TcpStream,
    connector: &SslConnector,
    host: &str,
    verify_hostname: bool,
) -> Result<SslStream<TcpStream>, HandshakeError> {
    let tls_error = |e: ErrorStack| HandshakeError::Tls {
        detail: one_line(&e),
    };
    // "[::1]" as written in URLs; OpenSSL wants the bare address.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let mut config = connector.configure().map_err(tls_error)?;
    config.set_verify_hostname(verify_hostname);
    let ssl = config.into_ssl(host).map_err(tls_error)?;
    let mut stream = SslStream::new(ssl, tcp).map_err(tls_error)?;
    match Pin::new(&mut stream).connect().await {
        Ok(()) => Ok(stream),
        Err(error) => Err(classify_handshake_error(stream.ssl(), error, host)),
    }
}

const X509_V_ERR_HOSTNAME_MISMATCH: i32 = 62;
const X509_V_ERR_IP_ADDRESS_MISMATCH: i32 = 64;
const ERR_LIB_SSL: i32 = 20;
const SSL_AD_REASON_OFFSET: i32 = 1000;
const SSL_R_UNEXPECTED_EOF_WHILE_READING: i32 = 294;

fn classify_handshake_error(
    ssl: &SslRef,
    error: openssl::ssl::Error,
    host: &str,
) -> HandshakeError {
    // Our own verification of the server comes first: after it fails we send the alert ourselves.
    let verify = ssl.verify_result();
    if ssl.verify_mode().contains(SslVerifyMode::PEER) && verify != X509VerifyResult::OK {
        let server_cert = ssl.peer_cert_chain().and_then(|chain| chain.get(0));
        if matches!(
            verify.as_raw(),
            X509_V_ERR_HOSTNAME_MISMATCH | X509_V_ERR_IP_ADDRESS_MISMATCH
        ) {
            return HandshakeError::HostnameMismatch {
                host: host.to_string(),
                names_in_cert: server_cert.map(cert_names).unwrap_or_default(),
            };
        }
        return HandshakeError::ServerNotTrusted {
            reason: verify.error_string().to_string(),
            server_subject: server_cert.map(|c| name_to_string(c.subject_name())),
            server_issuer: server_cert.map(|c| name_to_string(c.issuer_name())),
        };
    }

    if let Some(stack) = error.ssl_error() {
        if let Some(alert) = received_alert(stack) {
            // Past the server's certificate, the server is answering our certificate flight.
            let after_server_cert = ssl.peer_cert_chain().is_some();
            return if certificate_alert(alert.0) || after_server_cert {
                HandshakeError::ClientCertRejected {
                    alert: alert.name(),
                }
            } else {
                HandshakeError::ServerAlert {
                    alert: alert.name(),
                }
            };
        }
        let eof = stack.errors().iter().any(|e| {
            e.library_code() == ERR_LIB_SSL && e.reason_code() == SSL_R_UNEXPECTED_EOF_WHILE_READING
        });
        if eof {
            return HandshakeError::ClosedDuringHandshake;
        }
    }

    match error.code() {
        ErrorCode::ZERO_RETURN => HandshakeError::ClosedDuringHandshake,
        ErrorCode::SYSCALL => match error.into_io_error() {
            Ok(io) if closed_by_peer(&io) => HandshakeError::ClosedDuringHandshake,
            Ok(io) => HandshakeError::Io(io),
            // SSL_ERROR_SYSCALL without an errno: the peer closed the socket.
            Err(_) => HandshakeError::ClosedDuringHandshake,
        },
        _ => HandshakeError::Tls {
            detail: error
                .ssl_error()
                .map(one_line)
                .unwrap_or_else(|| error.to_string()),
        },
    }
}

fn closed_by_peer(io: &io::Error) -> bool {
    matches!(
        io.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// A TLS alert received from the peer (its RFC 8446 / 5246 number).
struct Alert(i32);

impl Alert {
    fn name(&self) -> String {
        let name = match self.0 {
            10 => "unexpected_message",
            20 => "bad_record_mac",
            40 => "handshake_failure",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            49 => "access_denied",
            50 => "decode_error",
            51 => "decrypt_error",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            109 => "missing_extension",
            110 => "unsupported_extension",
            112 => "unrecognized_name",
            116 => "certificate_required",
            120 => "no_application_protocol",
            other => return format!("alert {other}"),
        };
        name.to_string()
    }
}

/// OpenSSL records a received alert as SSL library reason `1000 + alert number`.
fn received_alert(stack: &ErrorStack) -> Option<Alert> {
    stack.errors().iter().find_map(|e| {
        let alert = e.reason_code() - SSL_AD_REASON_OFFSET;
        (e.library_code() == ERR_LIB_SSL && (0..256).contains(&alert)).then_some(Alert(alert))
    })
}

/// Alerts by which a server says it does not accept the client's certificate.
fn certificate_alert(alert: i32) -> bool {
    matches!(alert, 42..=46 | 48 | 49 | 116)
}

// ---------------------------------------------------------------------------------------------
// Logging helpers
// ---------------------------------------------------------------------------------------------

/// What was negotiated, for the log line after a successful handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// e.g. "TLSv1.2".
    pub protocol: String,
    /// e.g. "ECDHE-RSA-AES256-GCM-SHA384".
    pub cipher: String,
    pub server_subject: Option<String>,
    pub server_issuer: Option<String>,
}

impl fmt::Display for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol, self.cipher)?;
        if let Some(subject) = &self.server_subject {
            write!(f, ", server certificate {subject}")?;
        }
        if let Some(issuer) = &self.server_issuer {
            write!(f, " issued by {issuer}")?;
        }
        Ok(())
    }
}

/// Describes an established TLS session: protocol version, cipher, the server certificate's
/// subject and issuer.
pub fn session_info(ssl: &SslRef) -> SessionInfo {
    let server_cert = ssl.peer_certificate();
    SessionInfo {
        protocol: ssl.version_str().to_string(),
        cipher: ssl
            .current_cipher()
            .map(|c| c.name().to_string())
            .unwrap_or_default(),
        server_subject: server_cert
            .as_ref()
            .map(|c| name_to_string(c.subject_name())),
        server_issuer: server_cert
            .as_ref()
            .map(|c| name_to_string(c.issuer_name())),
    }
}

/// Formats a certificate name as `CN=..., O=...`.
pub fn name_to_string(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_else(|_| "?".to_string());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first Common Name in a certificate name.
pub fn common_name(name: &X509NameRef) -> Option<String> {
    name.entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|entry| entry.data().to_string().ok())
}

/// The names a certificate is valid for: its DNS and IP subject alternative names, or its CN when
/// it has none (as hostname checking falls back to the CN).
fn cert_names(cert: &X509Ref) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        for san in &sans {
            if let Some(dns) = san.dnsname() {
                names.push(dns.to_string());
            } else if let Some(ip) = san.ipaddress().and_then(ip_from_bytes) {
                names.push(ip.to_string());
            }
        }
    }
    if names.is_empty() {
        names.extend(common_name(cert.subject_name()));
    }
    names
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Quotes a path for a POSIX shell command line shown to the operator.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// An OpenSSL error stack as one line of its reason strings, without file/line noise.
fn one_line(stack: &ErrorStack) -> String {
    let mut reasons: Vec<String> = Vec::new();
    for e in stack.errors() {
        // Entries without a reason string only repeat a code the user cannot act on.
        let Some(reason) = e.reason() else { continue };
        let text = match e.data() {
            Some(data) if !data.is_empty() => format!("{reason}: {data}"),
            _ => reason.to_string(),
        };
        if !reasons.contains(&text) {
            reasons.push(text);
        }
    }
    if reasons.is_empty() {
        match stack.errors().first() {
            Some(e) => format!("OpenSSL error code {:#x}", e.code()),
            None => "unknown OpenSSL error".to_string(),
        }
    } else {
        reasons.join("; ")
    }
}
