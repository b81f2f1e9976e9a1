//! estreamer

pub mod tls;
