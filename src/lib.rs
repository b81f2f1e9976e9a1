//! estreamer-cef: reads Cisco Firepower eStreamer events and ships them to ArcSight as CEF over syslog.
//!
//! Stages (see README "Architecture"): `estreamer` (source) → `decode` → `mapping` + `cef` → `output`
//! (sinks), with `bookmark`, `metadata` and `config` beside them. The FMC simulator used by tests,
//! benchmarks and the demo is its own crate, `tests/fmc-sim`.

pub mod cef;
pub mod cli;
pub mod config;
pub mod decode;
pub mod delivery;
pub mod diagnose;
pub mod diagnostic;
pub mod encore_import;
pub mod estreamer;
pub mod mapping;
pub mod metadata;
pub mod monitor;
pub mod net;
pub mod output;
pub mod pipeline;
pub mod transform;
