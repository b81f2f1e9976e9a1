//! The `estreamer-cef-sim` command: the simulated FMC, the demo and the benchmark. One file per
//! subcommand.

pub mod bench;
pub mod demo;
pub mod simulate;
