//! The eStreamer source: message framing, the client's requests, the TLS connection to the FMC
//! and the session that holds it (handshake, acknowledgements, reconnects).

pub mod connection;
pub mod message;
pub mod request;
pub mod session;
pub mod tls;
