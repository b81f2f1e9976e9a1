//! TLS client setup for `tls` outputs: trust anchors, host name or fingerprint verification,
//! optional client certificate from PKCS#12, TLS 1.2 minimum.

use std::path::Path;
use std::sync::OnceLock;

use openssl::hash::MessageDigest;
use openssl::pkcs12::{ParsedPkcs12_2, Pkcs12};
use openssl::ssl::{Ssl, SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

use super::config::TlsConfig;
use super::error::SyslogError;

/// Everything needed to start TLS sessions to one receiver.
#[derive(Clone)]
pub struct TlsSetup {
    connector: SslConnector,
    server_name: String,
    verify_hostname: bool,
    /// Human description of what is verified, for the "connected" log line.
    pub verification: String,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("server_name", &self.server_name)
            .field("verification", &self.verification)
            .finish()
    }
}

impl TlsSetup {
    /// Loads CA, client certificate and settings. `key` names the output in errors (`outputs[1]`).
    pub fn new(cfg: &TlsConfig, key: &str) -> Result<TlsSetup, SyslogError> {
        let tls_err = |k: &str, problem: String| SyslogError::Tls {
            key: format!("{key}.{k}"),
            problem,
        };
        let mut b = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| tls_err("transport", format!("cannot initialise OpenSSL: {e}")))?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))
            .map_err(|e| tls_err("transport", format!("cannot require TLS 1.2: {e}")))?;

        if let Some(ca) = &cfg.ca {
            let pem = std::fs::read(ca)
                .map_err(|e| SyslogError::file(format!("{key}.ca"), "read", ca, e))?;
            let certs = X509::stack_from_pem(&pem).map_err(|e| {
                tls_err(
                    "ca",
                    format!("{} is not a PEM certificate file: {e}", ca.display()),
                )
            })?;
            if certs.is_empty() {
                return Err(tls_err(
                    "ca",
                    format!(
                        "{} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                        ca.display()
                    ),
                ));
            }
            // Only the configured CA is trusted, not the system store as well.
            let mut store = X509StoreBuilder::new().map_err(|e| tls_err("ca", e.to_string()))?;
            for c in certs {
                store
                    .add_cert(c)
                    .map_err(|e| tls_err("ca", format!("{}: {e}", ca.display())))?;
            }
            b.set_cert_store(store.build());
        }

        if let Some(p12) = &cfg.client_pkcs12 {
            let password = match (&cfg.password, &cfg.password_file) {
                (Some(p), _) => p.expose().to_string(),
                (None, Some(f)) => read_password_file(f, &format!("{key}.password_file"))?,
                (None, None) => String::new(),
            };
            let parsed = load_pkcs12(p12, &password, &format!("{key}.client_pkcs12"))?;
            let cert = parsed.cert.ok_or_else(|| {
                tls_err(
                    "client_pkcs12",
                    format!("{} holds no certificate", p12.display()),
                )
            })?;
            let pkey = parsed.pkey.ok_or_else(|| {
                tls_err(
                    "client_pkcs12",
                    format!("{} holds no private key", p12.display()),
                )
            })?;
            b.set_certificate(&cert)
                .map_err(|e| tls_err("client_pkcs12", format!("{}: {e}", p12.display())))?;
            b.set_private_key(&pkey)
                .map_err(|e| tls_err("client_pkcs12", format!("{}: {e}", p12.display())))?;
            b.check_private_key().map_err(|_| {
                tls_err(
                    "client_pkcs12",
                    format!(
                        "{}: the private key does not belong to the certificate",
                        p12.display()
                    ),
                )
            })?;
            for extra in parsed.ca.into_iter().flatten() {
                b.add_extra_chain_cert(extra)
                    .map_err(|e| tls_err("client_pkcs12", e.to_string()))?;
            }
        }

        let server_name = cfg.server_name.clone().unwrap_or_else(|| cfg.host.clone());
        let mut verify_hostname = cfg.verify_hostname;
        let verification;
        if cfg.insecure_skip_verify {
            b.set_verify(SslVerifyMode::NONE);
            verify_hostname = false;
            verification = "NOT VERIFIED (insecure_skip_verify = true)".to_string();
        } else if let Some(fp) = &cfg.fingerprint {
            let pinned = parse_fingerprint(fp).map_err(|p| tls_err("fingerprint", p))?;
            // The fingerprint identifies the receiver; chain and name errors are not ours to judge.
            b.set_verify_callback(SslVerifyMode::PEER, move |_preverified, ctx| {
                if ctx.error_depth() != 0 {
                    return true;
                }
                ctx.current_cert()
                    .and_then(|c| c.digest(MessageDigest::sha256()).ok())
                    .is_some_and(|d| d.as_ref() == pinned.as_slice())
            });
            verify_hostname = false;
            verification = "certificate fingerprint pinned".to_string();
        } else {
            verification = format!(
                "certificate verified against {}{}",
                cfg.ca
                    .as_ref()
                    .map_or("the system trust store".to_string(), |p| p
                        .display()
                        .to_string()),
                if verify_hostname {
                    format!(", name {server_name}")
                } else {
                    ", host name NOT checked".to_string()
                }
            );
        }
        Ok(TlsSetup {
            connector: b.build(),
            server_name,
            verify_hostname,
            verification,
        })
    }

    /// A new session for one connection (SNI and host name check as configured).
    pub fn session(&self) -> Result<Ssl, openssl::error::ErrorStack> {
        self.connector
            .configure()?
            .verify_hostname(self.verify_hostname)
            .into_ssl(&self.server_name)
    }

    pub fn server_name(&self) -> &str {
        &self.server_name
    }
}

fn read_password_file(path: &Path, key: &str) -> Result<String, SyslogError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| SyslogError::file(key, "read", path, e))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// Keeps OpenSSL 3's `legacy` provider loaded once it is needed (RC2/3DES-encrypted PKCS#12, the
/// default of older OpenSSL and of many Windows exports).
static LEGACY_PROVIDER: OnceLock<Option<openssl::provider::Provider>> = OnceLock::new();

fn load_pkcs12(path: &Path, password: &str, key: &str) -> Result<ParsedPkcs12_2, SyslogError> {
    let der = std::fs::read(path).map_err(|e| SyslogError::file(key, "read", path, e))?;
    let p12 = Pkcs12::from_der(&der).map_err(|e| SyslogError::Tls {
        key: key.to_string(),
        problem: format!(
            "{} is not a PKCS#12 file (.p12/.pfx, DER): {e}",
            path.display()
        ),
    })?;
    match p12.parse2(password) {
        Ok(p) => Ok(p),
        Err(first) => {
            let legacy = LEGACY_PROVIDER
                .get_or_init(|| openssl::provider::Provider::try_load(None, "legacy", true).ok());
            let retry = if legacy.is_some() {
                p12.parse2(password).ok()
            } else {
                None
            };
            retry.ok_or_else(|| {
                let text = first.to_string();
                let hint = if text.contains("mac verify failure") || text.contains("mac") {
                    "wrong password? Check password / password_file".to_string()
                } else if legacy.is_none() {
                    "the file may use legacy encryption and OpenSSL's legacy provider could not be loaded".to_string()
                } else {
                    "check the password and that the file is a valid PKCS#12 bundle".to_string()
                };
                SyslogError::Tls { key: key.to_string(), problem: format!("cannot open {}: {hint} ({text})", path.display()) }
            })
        }
    }
}

/// Parses `sha256:AB:CD:…` (prefix optional, colons optional, any case) into 32 bytes.
pub fn parse_fingerprint(text: &str) -> Result<Vec<u8>, String> {
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
    Ok((0..32)
        .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("checked hex"))
        .collect())
}

/// Explains a failed handshake in the user's terms.
pub fn describe_handshake_error(
    ssl: Option<&openssl::ssl::SslRef>,
    err: &openssl::ssl::Error,
    setup: &TlsSetup,
) -> String {
    if let Some(ssl) = ssl {
        let v = ssl.verify_result();
        if v != openssl::x509::X509VerifyResult::OK {
            // X509_V_ERR_HOSTNAME_MISMATCH, _EMAIL_MISMATCH, _IP_ADDRESS_MISMATCH
            let hint = if matches!(v.as_raw(), 62..=64) {
                format!(
                    "; the certificate is not issued for {:?}: set server_name to a name it lists",
                    setup.server_name
                )
            } else {
                "; set `ca` to the receiver's CA certificate (PEM), or pin it with `fingerprint`"
                    .to_string()
            };
            return format!(
                "certificate verification failed: {}{hint}",
                v.error_string()
            );
        }
    }
    match err.ssl_error() {
        Some(stack) => format!("TLS handshake failed: {stack}"),
        None => match err.io_error() {
            Some(io) => format!("TLS handshake failed: {io}"),
            None => format!("TLS handshake failed: {err}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_in_the_usual_spellings() {
        let hex = "3A:F1:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD";
        let a = parse_fingerprint(&format!("sha256:{hex}")).unwrap();
        assert_eq!(a.len(), 32);
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
}
