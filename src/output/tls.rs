//! TLS client setup for `tls` outputs, on the shared connection layer ([`crate::net`]): trust as
//! `server_ca` says or by `fingerprint`, host name verification, optional client certificate from
//! `pkcs12`, TLS 1.2 minimum; and what to tell the user when a receiver's handshake fails.

use openssl::ssl::{Ssl, SslConnector};

use super::error::SyslogError;
use crate::config::output::TlsConfig;
use crate::net::identity::load_pkcs12;
use crate::net::password::pkcs12_password;
use crate::net::tls::{ServerTrust, client_connector, parse_fingerprint};

/// Everything needed to start TLS sessions to one receiver.
#[derive(Clone)]
pub struct TlsSetup {
    connector: SslConnector,
    server_name: String,
    verify_hostname: bool,
    /// Nothing about the receiver is verified (`server_ca = "insecure"`).
    pub insecure: bool,
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
        let identity = match &cfg.pkcs12 {
            Some(p12) => {
                let password = pkcs12_password(
                    cfg.pkcs12_password.as_ref(),
                    cfg.pkcs12_password_file.as_deref(),
                    &format!("{key}.pkcs12_password_file"),
                )
                .map_err(|e| SyslogError::Tls {
                    key: e.key.clone(),
                    problem: e.problem(),
                })?;
                Some(
                    load_pkcs12(p12, password.expose())
                        .map_err(|e| tls_err("pkcs12", e.to_string()))?,
                )
            }
            None => None,
        };
        let pin = match &cfg.fingerprint {
            Some(fp) => Some(parse_fingerprint(fp).map_err(|p| tls_err("fingerprint", p))?),
            None => None,
        };
        let connector = client_connector(identity.as_ref(), &cfg.server_ca, pin)
            .map_err(|e| tls_err("server_ca", e.to_string()))?;

        let server_name = cfg.server_name.clone().unwrap_or_else(|| cfg.host.clone());
        let insecure = pin.is_none() && cfg.server_ca == ServerTrust::Insecure;
        // A pinned fingerprint replaces chain and name checks.
        let verify_hostname = cfg.verify_hostname && pin.is_none() && !insecure;
        let verification = if insecure {
            "NOT VERIFIED (server_ca = \"insecure\")".to_string()
        } else if pin.is_some() {
            "certificate fingerprint pinned".to_string()
        } else {
            format!(
                "certificate verified against {}{}",
                match &cfg.server_ca {
                    ServerTrust::PemFile(p) => p.display().to_string(),
                    ServerTrust::Pkcs12Ca => "the CA certificates in pkcs12".to_string(),
                    _ => "the system trust store".to_string(),
                },
                if verify_hostname {
                    format!(", name {server_name}")
                } else {
                    ", host name NOT checked".to_string()
                }
            )
        };
        Ok(TlsSetup {
            connector,
            server_name,
            verify_hostname,
            insecure,
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
                "; set `server_ca` to the receiver's CA certificate (PEM), or pin it with `fingerprint`"
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
