//! `estreamer-cef run`: the service.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::{Cli, signals};
use crate::pipeline::{self, RunOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also write what is sent to this file (see --tap-format), with or without outputs.
    #[arg(long, value_name = "PATH")]
    pub tap_file: Option<PathBuf>,
    /// `wire`: every message exactly as framed; `json`: one object per record with its decoded
    /// fields, CEF line and the warnings raised on the way.
    #[arg(long, value_name = "FORMAT", default_value = "json", value_parser = ["json", "wire"])]
    pub tap_format: String,
    /// Where to start, overriding fmc.start: genesis, now or bookmark.
    #[arg(long, value_parser = ["genesis", "now", "bookmark"])]
    pub start: Option<String>,
}

pub fn overrides(args: &Args) -> Vec<(String, toml::Value)> {
    let mut o = Vec::new();
    if let Some(p) = &args.tap_file {
        o.push((
            "tap.path".into(),
            toml::Value::String(p.display().to_string()),
        ));
        o.push((
            "tap.format".into(),
            toml::Value::String(args.tap_format.clone()),
        ));
    }
    o
}

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let (mut cfg, file) = super::load_config(cli, overrides(args))?;
    // `--start` applies to every FMC.
    if let Some(s) = &args.start {
        let start: crate::config::Start =
            serde::Deserialize::deserialize(serde::de::value::StrDeserializer::<
                serde::de::value::Error,
            >::new(s))
            .map_err(|e| anyhow::anyhow!("--start {s}: {e}"))?;
        for f in &mut cfg.fmcs {
            f.start = start;
        }
    }
    if let Some(f) = &file {
        tracing::info!("configuration from {}", f.display());
    }
    for w in cfg.warnings() {
        tracing::warn!("{w}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let reload = Arc::new(tokio::sync::Notify::new());
        let stop = signals::install(Some(reload.clone()))?;
        let (mon_tx, mon_rx) = tokio::sync::oneshot::channel::<crate::monitor::Monitor>();
        if let Some(interval) = signals::watchdog_interval() {
            // Fed only while the worker makes progress (its heartbeat moves).
            tokio::spawn(async move {
                let Ok(monitor) = mon_rx.await else { return };
                let mut last = Vec::new();
                loop {
                    tokio::time::sleep(interval / 2).await;
                    // Every FMC's worker must have moved.
                    let beats = monitor.heartbeats();
                    if last.is_empty() || beats.iter().zip(&last).all(|(b, l)| b != l) {
                        signals::sd_notify("WATCHDOG=1");
                        last = beats;
                    }
                }
            });
        }
        let opts = RunOptions {
            on_ready: Some(Box::new(|| {
                tracing::info!("FMC session up");
                signals::sd_notify("READY=1\nSTATUS=streaming");
            })),
            reload: Some(reload),
            monitor: Some(mon_tx),
            ..RunOptions::default()
        };
        let summary = pipeline::run(cfg, opts, stop).await?;
        signals::sd_notify("STOPPING=1");
        tracing::info!(
            "stopped: {} events taken, {} acknowledged by every output",
            summary.emitted,
            summary.delivered,
        );
        for (name, bookmark) in &summary.bookmarks {
            tracing::info_span!("fmc", name = %name)
                .in_scope(|| tracing::info!("bookmark at archive second {}", bookmark.second));
        }
        Ok(ExitCode::SUCCESS)
    })
}
