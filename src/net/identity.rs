//! Our TLS client identity: the PKCS12 file (legacy RC2-40/3DES included, through OpenSSL's
//! `legacy` provider) or PEM certificate and key files, with load failures sorted into causes an
//! operator can act on. Used by the FMC session and by `tls` outputs with a client certificate.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openssl::error::ErrorStack;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::provider::Provider;
use openssl::x509::{X509, X509Ref};

use super::x509::{common_name, name_to_string, one_line};

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

/// Quotes a path for a POSIX shell command line shown to the operator.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
