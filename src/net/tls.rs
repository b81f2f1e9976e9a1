//! TLS client contexts, shared by the FMC session and `tls` outputs: TLS 1.2 or newer, our
//! client identity if we have one, and how the server's certificate is trusted (the CA
//! certificates of our PKCS12, a PEM file, the system store, a pinned fingerprint, or nothing);
//! plus what the log says about a session and about certificates.
//!
//! How a failed handshake is explained stays with each caller: the FMC and a syslog receiver fail
//! for different reasons and need different advice.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::ssl::{SslConnector, SslMethod, SslRef, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509VerifyResult};

use super::identity::ClientIdentity;
use super::x509::{name_to_string, one_line};

/// How we verify the server's certificate (the `server_ca` key). Config strings: `"pkcs12"` (the
/// CA certificates inside our client PKCS12, which the FMC includes), `"system"` (the system
/// trust store), a path to a PEM file with the server's CA or the server's own certificate, or
/// `"insecure"` (no verification; logged at every connect).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ServerTrust {
    #[default]
    Pkcs12Ca,
    System,
    PemFile(PathBuf),
    Insecure,
}

impl FromStr for ServerTrust {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" => Err(
                "server_ca is empty: use \"pkcs12\", \"system\", \"insecure\", or the path of a \
                 PEM file with the server's CA certificate"
                    .to_string(),
            ),
            "pkcs12" => Ok(ServerTrust::Pkcs12Ca),
            "system" => Ok(ServerTrust::System),
            "insecure" => Ok(ServerTrust::Insecure),
            path => Ok(ServerTrust::PemFile(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for ServerTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerTrust::Pkcs12Ca => f.write_str("pkcs12"),
            ServerTrust::System => f.write_str("system"),
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

/// Why the TLS client context could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(
        "server_ca is \"pkcs12\" but the client identity holds no CA certificate to verify the \
         server with.\nSet server_ca to the path of a PEM file with the server's CA certificate (or \
         the server's own certificate), or to \"insecure\" to skip verification as eNcore does."
    )]
    NoCaInIdentity,

    #[error(
        "cannot use {} to verify the server: {detail}\n\
         Give a PEM file holding the server's CA certificate (or the server's own certificate).",
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
    client_connector(Some(id), trust, None)
}

/// Builds a TLS client context: TLS 1.2 or newer, our certificate, key and chain when we have an
/// identity, and server verification according to `trust`, or by the server certificate's
/// SHA-256 fingerprint when `pin` is given (RFC 5425 4.2.2: it replaces chain and name checks).
pub fn client_connector(
    id: Option<&ClientIdentity>,
    trust: &ServerTrust,
    pin: Option<[u8; 32]>,
) -> Result<SslConnector, TlsSetupError> {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(setup("context"))?;
    builder
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(setup("minimum TLS version"))?;
    if let Some(id) = id {
        builder
            .set_certificate(id.cert())
            .map_err(setup("client certificate"))?;
        builder
            .set_private_key(id.key())
            .map_err(setup("client private key"))?;
        builder
            .check_private_key()
            .map_err(setup("client key does not match the certificate"))?;
        // Send intermediates so the server can build the chain; a self-signed root adds nothing.
        for ca in id.ca_certs() {
            if ca.issued(ca) != X509VerifyResult::OK {
                builder
                    .add_extra_chain_cert(ca.clone())
                    .map_err(setup("client certificate chain"))?;
            }
        }
    }

    if let Some(pinned) = pin {
        // The fingerprint identifies the server; chain and name errors are not ours to judge.
        builder.set_verify_callback(SslVerifyMode::PEER, move |_preverified, ctx| {
            if ctx.error_depth() != 0 {
                return true;
            }
            ctx.current_cert()
                .and_then(|c| c.digest(MessageDigest::sha256()).ok())
                .is_some_and(|d| d.as_ref() == pinned.as_slice())
        });
        return Ok(builder.build());
    }

    let anchors: Vec<X509> = match trust {
        ServerTrust::Insecure => {
            builder.set_verify(SslVerifyMode::NONE);
            return Ok(builder.build());
        }
        ServerTrust::System => {
            // `SslConnector::builder` has loaded the system's default trust store.
            builder.set_verify(SslVerifyMode::PEER);
            return Ok(builder.build());
        }
        ServerTrust::Pkcs12Ca => match id {
            Some(id) if !id.ca_certs().is_empty() => id.ca_certs().to_vec(),
            _ => return Err(TlsSetupError::NoCaInIdentity),
        },
        ServerTrust::PemFile(path) => read_trust_file(path)?,
    };

    // Only the configured anchors are trusted, never the system's public roots as well.
    let mut store = X509StoreBuilder::new().map_err(setup("trust store"))?;
    for cert in anchors {
        store.add_cert(cert).map_err(setup("trust store"))?;
    }
    // Lets the operator pin the server's own (non-self-signed) certificate as the trust anchor.
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
    let pem = std::fs::read(path).map_err(|e| {
        trust_file(match e.kind() {
            std::io::ErrorKind::NotFound => format!("{e}; check the path"),
            std::io::ErrorKind::PermissionDenied => {
                format!("{e}; give the service's user read access")
            }
            _ => e.to_string(),
        })
    })?;
    match X509::stack_from_pem(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(trust_file("it holds no PEM certificate".to_string())),
        Err(e) => Err(trust_file(format!(
            "not a PEM certificate file ({})",
            one_line(&e)
        ))),
    }
}

/// Parses `sha256:AB:CD:…` (prefix optional, colons optional, any case) into 32 bytes.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let hex_part = ["sha256:", "sha-256:", "sha256 fingerprint="]
        .iter()
        .find_map(|p| lower.strip_prefix(p))
        .unwrap_or(&lower);
    if lower.starts_with("sha1") || lower.starts_with("sha-1") || lower.starts_with("md5") {
        return Err(format!(
            "= {t:?}: only SHA-256 fingerprints are accepted (openssl x509 -noout -fingerprint -sha256)"
        ));
    }
    let digits: String = hex_part.chars().filter(|c| *c != ':').collect();
    if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "= {t:?} is not a SHA-256 fingerprint; expected 32 hex bytes like \"sha256:3A:F1:…\" \
             (openssl x509 -noout -fingerprint -sha256 -in cert.pem)"
        ));
    }
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(bytes)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_in_the_usual_spellings() {
        let hex = "3A:F1:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD";
        let a = parse_fingerprint(&format!("sha256:{hex}")).unwrap();
        assert_eq!(a[0], 0x3a);
        assert_eq!(
            parse_fingerprint(&format!("SHA256 Fingerprint={hex}")).unwrap(),
            a
        );
        assert_eq!(
            parse_fingerprint(&hex.replace(':', "").to_lowercase()).unwrap(),
            a
        );
        assert!(
            parse_fingerprint("sha1:AA:BB")
                .unwrap_err()
                .contains("SHA-256")
        );
        assert!(parse_fingerprint("sha256:AA:BB").is_err());
    }

    #[test]
    fn server_trust_reads_and_prints_the_config_words() {
        for text in ["pkcs12", "system", "insecure", "/etc/ca.pem"] {
            let t: ServerTrust = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
        }
        assert_eq!(
            "/etc/ca.pem".parse::<ServerTrust>().unwrap(),
            ServerTrust::PemFile("/etc/ca.pem".into())
        );
        assert!(
            " ".parse::<ServerTrust>()
                .unwrap_err()
                .contains("server_ca")
        );
    }
}
