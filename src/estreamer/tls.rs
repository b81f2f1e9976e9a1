//! TLS with the FMC: the handshake, with its failures sorted into causes an operator can act on.
//! The client identity, trust and context building are the shared connection layer's
//! ([`crate::net`]).
//!
//! The FMC requires mutual TLS (1.2 in every capture we have). It authenticates us by the client
//! certificate it issued, and after the handshake it also compares the certificate's CN with our
//! source address; when it rejects us it usually just closes the socket, so a bare "connection
//! closed" has to be turned into a list of likely causes here.

use std::io;
use std::pin::Pin;

use openssl::error::ErrorStack;
use openssl::ssl::{ErrorCode, SslConnector, SslRef, SslVerifyMode};
use openssl::x509::X509VerifyResult;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::net::x509::{cert_names, name_to_string, one_line};

/// The warning to log at every connect made with [`ServerTrust::Insecure`](crate::net::tls::ServerTrust::Insecure).
pub fn insecure_warning() -> &'static str {
    "server certificate verification is OFF (fmc.server_ca = \"insecure\"): anyone who can \
     intercept the connection can pose as the FMC and read or alter the event stream. Set \
     fmc.server_ca to \"pkcs12\" or to the FMC's CA certificate file."
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
