//! The connection layer shared by the FMC session, `estreamer-cef test` and the TCP/TLS outputs:
//! client identity (PKCS12 / PEM), password files, secrets, TLS client contexts, how certificates are described (`x509`), reconnect
//! backoff, connecting within a deadline, and socket options.

pub mod backoff;
pub mod connect;
pub mod identity;
pub mod password;
pub mod secret;
pub mod socket;
pub mod tls;
pub mod x509;
