//! The FMC simulator: issues its own PKI, generates records of every type, and serves them over
//! the eStreamer protocol like an FMC. Tests, benchmarks and the demo use it.

pub mod cli;
mod encode;
pub mod faults;
pub mod generate;
pub mod pki;
pub mod sample;
pub mod scenario;
pub mod server;
mod values;
mod world;
