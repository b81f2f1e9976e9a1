//! `estreamer-cef decode FILE`: the decoder on a byte stream, for troubleshooting and tests.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Map, Value as Json};

use super::Cli;
use crate::decode::Record;
use crate::decode::filter::RecordFilter;
use crate::decode::json::record_fields;
use crate::decode::stream::{StreamEvent, walk};
use crate::metadata::{Cache, Limits};
use crate::transform::{Outcome, Transform};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The byte stream file, or - for standard input.
    pub file: PathBuf,
    /// Only print these record types (comma-separated, e.g. 71,400). Metadata records are still
    /// read so that names resolve.
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub record_types: Vec<u32>,
    /// Start with the metadata cache saved in this state folder (its metadata.cache).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Print, for each record that maps to CEF, its index in the stream (0-based, counting every
    /// record including metadata and records inside bundles), a tab, and the CEF line.
    #[arg(long)]
    pub cef: bool,
    /// Mapping tables that override the built-in ones [default: [cef] mappings_dir of the
    /// configuration].
    #[arg(long, value_name = "DIR")]
    pub mappings_dir: Option<PathBuf>,
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    // JSON shows every record; CEF only what the service would send (the configured record
    // filter and mapping tables: metadata records are not sent by default).
    let mut transform = if args.cef {
        let (cfg, _) = super::load_config(cli, Vec::new())?;
        let dir = args
            .mappings_dir
            .clone()
            .unwrap_or(cfg.cef.mappings_dir.clone());
        let mappings = super::load_mappings(&cfg, Some(dir))?;
        let header =
            crate::cef::CefHeader::new(&cfg.cef.vendor, &cfg.cef.product, &cfg.cef.version)
                .map_err(|e| anyhow::anyhow!("[cef] header values: {e}"))?;
        Transform::new(
            RecordFilter::new(&cfg.records),
            Arc::new(mappings),
            header,
            false,
        )
    } else {
        Transform::builtin()
    };
    let bytes = if args.file.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .context("reading standard input")?;
        v
    } else {
        std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let mut cache = Cache::new(Limits::default());
    if let Some(dir) = &args.cache
        && let Err(e) = crate::metadata::store::load(&mut cache, dir)
    {
        tracing::warn!("{e}");
    }
    let cache = std::sync::RwLock::new(cache);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut line = Vec::new();
    let mut broken = None;
    for ev in walk(&bytes) {
        let r = match ev {
            StreamEvent::Record(r) => r,
            StreamEvent::Other { .. } => continue,
            StreamEvent::BadBundle { offset, reason } => {
                tracing::warn!("message at byte {offset}: {reason}; rest of the bundle skipped");
                continue;
            }
            StreamEvent::Broken { offset, error } => {
                broken = Some(format!(
                    "the stream cannot be read past byte {offset}: {error}"
                ));
                break;
            }
        };
        // Records of other types are still read: their metadata makes names resolve.
        let shown = args.record_types.is_empty()
            || crate::decode::RecordHeader::parse(r.body)
                .is_ok_and(|h| args.record_types.contains(&h.record_type));
        line.clear();
        let (outcome, json) =
            transform.apply_inspect(r.index, r.body, &cache, &mut line, |record, cache| {
                (shown && !args.cef).then(|| record_json(r.index, record, cache))
            });
        if let Some(Some(obj)) = json {
            serde_json::to_writer(&mut out, &obj)?;
            out.write_all(b"\n")?;
        }
        if shown && args.cef && matches!(outcome, Outcome::Event { .. }) {
            write!(out, "{}\t", r.index)?;
            out.write_all(&line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    let c = transform.counters();
    let summary = format!(
        "{} records: {} metadata, {} of unknown types, {} malformed (skipped)",
        c.records, c.metadata, c.unknown, c.malformed
    );
    match broken {
        Some(b) => {
            eprintln!("estreamer-cef: {b}\n{summary}");
            Ok(ExitCode::from(1))
        }
        None => {
            tracing::info!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A record as eNcore's JSON showed it: index, type, name, category, every field and the
/// resolved names (`@computed`).
fn record_json(index: u64, record: &Record<'_>, cache: &Cache) -> Json {
    let mut obj = Map::new();
    obj.insert("index".into(), index.into());
    obj.insert("recordType".into(), record.record_type().into());
    let (name, category) = match record.schema {
        Some(s) => (s.name.to_string(), s.category.as_str().to_string()),
        None => ("Unknown".into(), "UNKNOWN".into()),
    };
    obj.insert("recordName".into(), Json::String(name));
    obj.insert("recordCategory".into(), Json::String(category));
    obj.extend(record_fields(record));
    let computed = cache.resolve_all(record);
    if !computed.is_empty() {
        obj.insert("@computed".into(), Json::Object(computed));
    }
    Json::Object(obj)
}
