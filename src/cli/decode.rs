//! `estreamer-cef decode FILE`: the decoder on a byte stream, for troubleshooting and tests.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Map, Value as Json};

use super::Cli;
use crate::decode::filter::RecordFilter;
use crate::decode::json::record_fields;
use crate::decode::stage::{DecodeStage, Handled};
use crate::decode::stream::{StreamEvent, walk};
use crate::mapping::plan::Scratch;
use crate::metadata::{Cache, Limits};

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
    let mut cef = None;
    // JSON shows every record; CEF only what the service would send (the configured record
    // filter: metadata records are not sent by default).
    let mut filter = RecordFilter::all();
    if args.cef {
        let (cfg, _) = super::load_config(cli, Vec::new())?;
        filter = RecordFilter::new(&cfg.records);
        let dir = args
            .mappings_dir
            .clone()
            .unwrap_or(cfg.cef.mappings_dir.clone());
        let mappings = super::load_mappings(&cfg, Some(dir))?;
        let header =
            crate::cef::CefHeader::new(&cfg.cef.vendor, &cfg.cef.product, &cfg.cef.version)
                .map_err(|e| anyhow::anyhow!("[cef] header values: {e}"))?;
        cef = Some((
            mappings,
            crate::cef::CefEncoder::new(header),
            Scratch::default(),
            Vec::new(),
        ));
    }
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
    if let Some(dir) = &args.cache {
        if let Err(e) = crate::metadata::store::load(&mut cache, dir) {
            tracing::warn!("{e}");
        }
    }
    let mut stage = DecodeStage::new(cache, filter, None);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
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
        if !args.record_types.is_empty() {
            // Read metadata for the cache even when it is not printed.
            let t = crate::decode::RecordHeader::parse(r.body)
                .map(|h| h.record_type)
                .unwrap_or(0);
            if !args.record_types.contains(&t) {
                let _ = stage.handle(r.index, r.body);
                continue;
            }
        }
        if let Handled::Record { record, cache, .. } = stage.handle(r.index, r.body) {
            if let Some((mappings, encoder, scratch, buf)) = cef.as_mut() {
                if let Some(plan) = mappings.plan_for(&record) {
                    buf.clear();
                    plan.encode(&record, cache, encoder, buf, scratch);
                    write!(out, "{}\t", r.index)?;
                    out.write_all(buf)?;
                    out.write_all(b"\n")?;
                }
                continue;
            }
            let mut obj = Map::new();
            obj.insert("index".into(), r.index.into());
            let fields = record_fields(&record);
            obj.insert("recordType".into(), record.record_type().into());
            match record.schema {
                Some(s) => {
                    obj.insert("recordName".into(), Json::String(s.name.to_string()));
                    obj.insert(
                        "recordCategory".into(),
                        Json::String(s.category.as_str().into()),
                    );
                }
                None => {
                    obj.insert("recordName".into(), Json::String("Unknown".into()));
                    obj.insert("recordCategory".into(), Json::String("UNKNOWN".into()));
                }
            }
            obj.extend(fields);
            let computed = cache.resolve_all(&record);
            if !computed.is_empty() {
                obj.insert("@computed".into(), Json::Object(computed));
            }
            serde_json::to_writer(&mut out, &Json::Object(obj))?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    let c = &stage.counters;
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
