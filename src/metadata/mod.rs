//! Metadata: the records that turn ids and UUIDs into names (sensors, policies, rules, zones,
//! users, applications, ...), kept in a bounded cache that survives restarts, and the resolution
//! of an event's ids through it. What fills which map and how names resolve is data
//! (`tables.toml`).

pub mod cache;
pub mod event_time;
pub mod key;
pub mod rules;
pub mod store;

pub use cache::{Cache, CacheStats, Limits, Resolved};
pub use rules::{NameId, rules};
