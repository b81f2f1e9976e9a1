//! The forwarder: source (the FMC session) → decode → mapping + CEF → syslog outputs, with the
//! bookmark and the metadata cache beside them. Stages meet through bounded channels.
//!
//! Shutdown order (SIGTERM/SIGINT or the demo's end): the session stops and acknowledges no
//! more; the worker finishes what it has; the outputs deliver what they took and close; then the
//! final bookmark records exactly what was delivered, so a clean restart sends no duplicate.

mod pool;
mod worker;

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, mpsc, watch};

use crate::cef::CefHeader;
use crate::config::{Config, Start};
use crate::decode::filter::RecordFilter;
use crate::delivery::{Bookmark, Delivery};
use crate::estreamer::session::{self, SessionConfig, SessionStats};
use crate::mapping::Mappings;
use crate::metadata::Cache;
use crate::monitor::{Monitor, PipelineStats};
use crate::syslog::{self, Output, OutputStats};
use crate::transform::Transform;
use pool::Pool;

/// How a run was asked to behave beyond the configuration.
#[derive(Default)]
pub struct RunOptions {
    /// Stop after this many events were emitted (the demo).
    pub stop_after: Option<u64>,
    /// Called once the FMC session and the outputs are up (systemd readiness).
    pub on_ready: Option<Box<dyn FnOnce() + Send>>,
    /// Notified to reload the mapping tables (SIGHUP).
    pub reload: Option<Arc<Notify>>,
    /// Receives the monitor once the pipeline runs (watchdog, tests).
    pub monitor: Option<tokio::sync::oneshot::Sender<Monitor>>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub emitted: u64,
    pub delivered: u64,
    pub bookmark: Bookmark,
    pub counters: crate::transform::Counters,
}

/// Loads the mapping tables the configuration names.
pub fn load_mappings(cfg: &Config) -> Result<Mappings, String> {
    Mappings::for_config(cfg, None)
}

/// Runs the forwarder until `shutdown` becomes true (or the demo's event count is reached).
pub async fn run(
    cfg: Config,
    mut opts: RunOptions,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Summary> {
    if cfg.outputs.is_empty() && cfg.tap.is_none() {
        anyhow::bail!(
            "no output configured: add an [[output]] table (udp, tcp, tls, file or stdout) to the \
             configuration, or use --tap-file to only look at what would be sent"
        );
    }
    // State: bookmark and metadata cache of this FMC.
    let state_dir = cfg.fmc_state_dir();
    std::fs::create_dir_all(&state_dir).with_context(|| {
        format!(
            "cannot create the state folder {} (state.dir): check it exists and the service user may write it",
            state_dir.display()
        )
    })?;
    let delivery =
        Delivery::open(&state_dir, cfg.fmc.start == Start::Bookmark).map_err(anyhow::Error::msg)?;
    let bookmark = Some(delivery.bookmark_second()).filter(|s| *s > 0);
    let start = cfg.start_at(bookmark);
    tracing::info!(
        "starting {} ({})",
        session::describe_start(start),
        match bookmark {
            Some(_) => format!("bookmark from {}", Bookmark::path(&state_dir).display()),
            None => "no bookmark".into(),
        }
    );
    let mut cache = Cache::new(cfg.metadata.limits());
    match crate::metadata::store::load(&mut cache, &state_dir) {
        Ok(n) if n > 0 => tracing::info!("metadata cache: {n} entries loaded"),
        Ok(_) => {}
        Err(e) => tracing::warn!("{e}"),
    }
    let mappings = load_mappings(&cfg)
        .map_err(|e| anyhow::anyhow!("the mapping tables have problems:\n{e}"))?;
    let header = CefHeader::new(&cfg.cef.vendor, &cfg.cef.product, &cfg.cef.version)
        .map_err(|e| anyhow::anyhow!("[cef]: {e}"))?;

    // The tap, then the outputs: a wire tap copies what the first network output (else the
    // first output) frames.
    let tap = match &cfg.tap {
        Some(t) => {
            if t.format == syslog::TapFormat::Wire && cfg.outputs.is_empty() {
                anyhow::bail!(
                    "tap.format = \"wire\" copies the messages the first output sends, and there \
                     is no [[output]]: add one, or use tap.format = \"json\""
                );
            }
            let (h, task) = syslog::spawn_tap(t, "tap")?;
            tracing::info!(
                "tap: writing {:?} records to {}",
                t.format,
                t.path.display()
            );
            Some((h, task))
        }
        None => None,
    };
    let wire_tap = tap
        .as_ref()
        .filter(|(h, _)| h.format() == syslog::TapFormat::Wire)
        .map(|(h, _)| h.clone());
    let tapped = cfg.outputs.iter().position(|o| o.is_network()).unwrap_or(0);
    let hostname = syslog::local_hostname();
    let mut out_tx = Vec::new();
    let mut progress = Vec::new();
    let mut out_stats = Vec::new();
    let mut out_tasks = Vec::new();
    for (i, o) in cfg.outputs.iter().enumerate() {
        let mut output = Output::new(o, &format!("output[{i}]"), &hostname)?;
        output.keep_journal_in(&state_dir, i);
        if i == tapped
            && let Some(t) = &wire_tap
        {
            output.copy_to_tap(t.clone());
        }
        let (tx, rx) = mpsc::channel(4);
        let (ptx, prx) = watch::channel(0u64);
        let stats = Arc::new(OutputStats::default());
        out_stats.push((output.name().to_string(), stats.clone()));
        out_tasks.push(output.spawn(rx, ptx, stats));
        out_tx.push(tx);
        progress.push(prx);
    }
    drop(wire_tap);

    // Source.
    let password = cfg.fmc.password().map_err(anyhow::Error::msg)?;
    let identity = crate::net::identity::load_pkcs12(&cfg.fmc.pkcs12, &password).map_err(|e| {
        anyhow::anyhow!("{e}\n  → run `estreamer-cef test` for a step-by-step diagnosis")
    })?;
    drop(password);
    let session_cfg = SessionConfig::from_config(&cfg, identity, start);
    let resume = Arc::new(AtomicU32::new(delivery.resume_second()));
    let (src_tx, src_rx) = mpsc::channel(32);
    let session_stats = Arc::new(SessionStats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let session_shutdown = merge_shutdown(shutdown.clone(), stop_rx.clone());
    let session_task = tokio::spawn(session::run(
        session_cfg,
        resume.clone(),
        src_tx,
        session_shutdown.clone(),
        session_stats.clone(),
    ));

    // Monitor.
    let stats = Arc::new(PipelineStats::default());
    let monitor = Monitor::new(stats.clone(), session_stats.clone(), out_stats.clone());
    if let Some(tx) = opts.monitor.take() {
        let _ = tx.send(monitor.clone());
    }
    tokio::spawn(crate::monitor::log_periodically(
        monitor.clone(),
        cfg.monitor.period,
        session_shutdown.clone(),
    ));
    if let Some(addr) = cfg.monitor.listen {
        let m = monitor.clone();
        let sd = session_shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::monitor::serve_metrics(m, addr, sd).await {
                tracing::error!("metrics listener on {addr}: {e}");
            }
        });
    }
    if let Some(ready) = opts.on_ready.take() {
        let ss = session_stats.clone();
        let mut sd = session_shutdown.clone();
        tokio::spawn(async move {
            // Ready once the FMC session is up (the outputs connect on their own and buffer).
            loop {
                if ss.connected.load(std::sync::atomic::Ordering::Relaxed) {
                    ready();
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = sd.changed() => if *sd.borrow() { return; },
                }
            }
        });
    }

    // Worker, and the transform on every core.
    let filter = RecordFilter::new(&cfg.records);
    let mappings = Arc::new(mappings);
    let json_tap = tap
        .as_ref()
        .filter(|(h, _)| h.format() == syslog::TapFormat::Json)
        .map(|(h, _)| h.clone());
    let cache = Arc::new(std::sync::RwLock::new(cache));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let transform = Transform::new(filter, mappings, header, json_tap.is_some());
    let pool = Pool::start(threads, || transform.sibling(), cache.clone())
        .context("cannot start the transform threads")?;
    let reload_cfg = cfg.clone();
    let outputs = worker::Outputs {
        senders: out_tx,
        names: out_stats.iter().map(|(n, _)| n.clone()).collect(),
        progress,
    };
    let w = worker::Worker {
        source: src_rx,
        pool,
        cache: cache.clone(),
        delivery,
        outputs,
        json_tap,
        resume,
        stats: stats.clone(),
        reload: opts.reload.clone().unwrap_or_default(),
        reload_mappings: Box::new(move || load_mappings(&reload_cfg)),
        stop_after: opts.stop_after,
        stop: stop_tx,
        shutdown: shutdown.clone(),
    };
    let progress: Vec<watch::Receiver<u64>> = w.outputs.progress.clone();
    let finished = tokio::spawn(w.run()).await.context("the worker failed")?;

    // The worker has ended (shutdown, or an output failed); it told the session to stop.
    match session_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("FMC session: {e}"),
        Err(e) => tracing::error!("FMC session task: {e}"),
    }
    for t in out_tasks {
        let _ = t.await;
    }
    if let Some((h, task)) = tap {
        drop(h);
        let _ = task.await;
    }
    let mut delivery = finished.delivery;
    let delivered = worker::delivered_by_all(&progress, finished.emitted);
    delivery.delivered(delivered);
    let bm = delivery
        .save()
        .with_context(|| format!("cannot save the bookmark in {}", state_dir.display()))?;
    let cache = cache.read().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = crate::metadata::store::save(&cache, &state_dir) {
        tracing::error!("cannot save the metadata cache: {e}");
    }
    if delivered < finished.emitted {
        tracing::warn!(
            "{} events taken were not confirmed delivered before stopping; they will be read from the FMC again",
            finished.emitted - delivered
        );
    }
    Ok(Summary {
        emitted: finished.emitted,
        delivered,
        bookmark: bm,
        counters: finished.counters,
    })
}

/// True when either signal says stop.
fn merge_shutdown(a: watch::Receiver<bool>, b: watch::Receiver<bool>) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(*a.borrow() || *b.borrow());
    tokio::spawn(async move {
        let (mut a, mut b) = (a, b);
        loop {
            if *a.borrow() || *b.borrow() {
                let _ = tx.send(true);
                return;
            }
            tokio::select! {
                r = a.changed() => if r.is_err() { let _ = tx.send(true); return; },
                r = b.changed() => if r.is_err() { let _ = tx.send(true); return; },
                _ = tx.closed() => return,
            }
        }
    });
    rx
}
