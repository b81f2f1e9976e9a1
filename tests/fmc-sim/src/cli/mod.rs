//! The `estreamer-cef-sim` command: the simulated FMC, the demo and the benchmark. One file per
//! subcommand (the benchmark's separate-process mode and its receiver have their own).

pub mod bench;
mod bench_processes;
pub mod demo;
pub mod receive;
pub mod sample;
pub mod simulate;
