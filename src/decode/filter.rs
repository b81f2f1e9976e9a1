//! Which records are written out, by the categories eNcore users know (connections, intrusion,
//! packets, rna, rua, core, metadata) plus include/exclude lists of record types.
//! Metadata is always decoded for the cache; this only decides what is written.

use super::schema::{Category, RecordSchema};
use crate::config::RecordsConfig;

#[derive(Clone, Debug)]
pub struct RecordFilter {
    cfg: RecordsConfig,
}

impl RecordFilter {
    pub fn new(cfg: &RecordsConfig) -> RecordFilter {
        RecordFilter { cfg: cfg.clone() }
    }

    /// Everything, metadata included (for `decode`).
    pub fn all() -> RecordFilter {
        RecordFilter {
            cfg: RecordsConfig {
                metadata: true,
                ..RecordsConfig::default()
            },
        }
    }

    pub fn wants(&self, record_type: u32, schema: Option<&RecordSchema>) -> bool {
        if self.cfg.exclude.contains(&record_type) {
            return false;
        }
        if self.cfg.include.contains(&record_type) {
            return true;
        }
        let Some(schema) = schema else {
            return self.cfg.unknown;
        };
        let c = &self.cfg;
        match schema.category {
            Category::Connection => c.connections,
            Category::Intrusion => c.intrusion,
            Category::Packet => c.packets,
            Category::Rna => c.rna,
            Category::Rua | Category::Vpn => c.rua,
            Category::Metadata => c.metadata,
            Category::Event | Category::Correlation | Category::FileMalware => c.core,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::catalog;

    #[test]
    fn categories_and_lists() {
        let c = catalog();
        let mut cfg = RecordsConfig {
            connections: false,
            include: vec![71],
            exclude: vec![400],
            ..RecordsConfig::default()
        };
        let f = RecordFilter::new(&cfg);
        assert!(f.wants(71, c.record(71)), "include wins over the category");
        assert!(!f.wants(400, c.record(400)));
        assert!(f.wants(125, c.record(125)));
        assert!(
            !f.wants(123, c.record(123)),
            "metadata is not written by default"
        );
        assert!(f.wants(9999, None), "unknown types are passed on");
        cfg.unknown = false;
        assert!(!RecordFilter::new(&cfg).wants(9999, None));
        assert!(RecordFilter::all().wants(123, c.record(123)));
    }
}
