//! sim

pub mod pki;
