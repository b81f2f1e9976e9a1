//! The forwarder: source (the FMC session, or a [`Recording`] for `replay`) → decode → mapping + CEF → syslog outputs, with the
//! bookmark and the metadata cache beside them. Stages meet through bounded channels.
//!
//! Shutdown order (SIGTERM/SIGINT or the demo's end): the session stops and acknowledges no
//! more; the worker finishes what it has; the outputs deliver what they took and close; then the
//! final bookmark records exactly what was delivered, so a clean restart sends no duplicate.

mod emitter;
mod pool;
mod recording;
mod worker;

pub use recording::Recording;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, mpsc, watch};
use tracing::Instrument;

use crate::cef::CefHeader;
use crate::config::SessionConfig;
use crate::config::{Config, Start};
use crate::decode::filter::RecordFilter;
use crate::delivery::{Bookmark, Delivery, HaOptions};
use crate::estreamer::session::{self, Resume, SessionStats};
use crate::mapping::Mappings;
use crate::metadata::Cache;
use crate::monitor::{FmcStats, Monitor, PipelineStats};
use crate::output::{self, Output, OutputStats, OutputStatsSnapshot};
use crate::transform::Transform;
use emitter::Emitter;
use pool::Pool;

/// How a run was asked to behave beyond the configuration.
#[derive(Default)]
pub struct RunOptions {
    /// Stop after this many events were emitted (the demo).
    pub stop_after: Option<u64>,
    /// Called once an FMC session and the outputs are up (systemd readiness).
    pub on_ready: Option<Box<dyn FnOnce() + Send>>,
    /// Notified to reload the mapping tables (SIGHUP).
    pub reload: Option<Arc<Notify>>,
    /// Receives the monitor once the pipeline runs (watchdog, tests).
    pub monitor: Option<tokio::sync::oneshot::Sender<Monitor>>,
    /// Read this recorded stream instead of the configured FMCs (`replay`): no FMC is
    /// contacted, no bookmark, metadata cache or resend journal of the state folder is read or
    /// written, and no metrics listener is opened (the service may be running beside it).
    pub recording: Option<Recording>,
    /// Stop the run when an output has delivered nothing for this long while it holds events
    /// (`replay`: a receiver that is down must not keep a one-shot command waiting). The
    /// service waits instead: outputs hold events and reconnect.
    pub stall_limit: Option<Duration>,
}

/// What a run did (all FMCs together; the bookmark of the first FMC).
#[derive(Debug, Clone)]
pub struct Summary {
    pub emitted: u64,
    pub delivered: u64,
    pub bookmark: Bookmark,
    pub counters: crate::transform::Counters,
    /// Each FMC's name and bookmark.
    pub bookmarks: Vec<(String, Bookmark)>,
    /// What each output did, in configuration order.
    pub outputs: Vec<OutputReport>,
}

/// What one output did in a run.
#[derive(Debug, Clone)]
pub struct OutputReport {
    pub name: String,
    /// Every event up to this sequence number is delivered by it (events are numbered from 1).
    pub delivered_up_to: u64,
    pub stats: OutputStatsSnapshot,
}

/// Loads the mapping tables the configuration names.
pub fn load_mappings(cfg: &Config) -> Result<Mappings, String> {
    Mappings::for_config(cfg, None)
}

/// One FMC, set up: its state, its session's parts and its worker's.
struct Fmc {
    name: String,
    span: tracing::Span,
    delivery: Delivery,
    cache: Arc<std::sync::RwLock<Cache>>,
    source: Source,
    resume: Arc<Resume>,
    session_stats: Arc<SessionStats>,
    stats: Arc<PipelineStats>,
    transform: Transform,
}

/// Where an [`Fmc`]'s messages come from.
enum Source {
    Session(SessionConfig),
    Recording(Recording),
}

/// Opens FMC `i`'s state (bookmark, identity window, metadata cache) and loads its identity.
fn open_fmc(
    cfg: &Config,
    i: usize,
    mappings: &Arc<Mappings>,
    header: &CefHeader,
    notes: bool,
) -> anyhow::Result<Fmc> {
    let fmc = &cfg.fmcs[i];
    let name = fmc.name();
    let span = tracing::info_span!("fmc", name = %name);
    let _entered = span.enter();
    let state_dir = cfg.fmc_state_dir_of(i);
    std::fs::create_dir_all(&state_dir).with_context(|| {
        format!(
            "cannot create the state folder {} (state.dir): check it exists and the service user may write it",
            state_dir.display()
        )
    })?;
    let peers = fmc.peers().map_err(anyhow::Error::msg)?;
    let ha = fmc.is_ha().then(|| HaOptions {
        peers: peers.iter().map(|p| p.to_string()).collect(),
        window: fmc.identity_window,
        overlap_secs: fmc.failover_overlap.as_secs().min(u32::MAX as u64) as u32,
    });
    let delivery = Delivery::open_ha(&state_dir, fmc.start == Start::Bookmark, ha)
        .map_err(anyhow::Error::msg)?;
    let bookmark = Some(delivery.bookmark_second()).filter(|s| *s > 0);
    let start = cfg.start_at_of(i, bookmark);
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
    let password = fmc.password().map_err(anyhow::Error::msg)?;
    let identity = crate::net::identity::load_pkcs12(&fmc.pkcs12, &password).map_err(|e| {
        anyhow::anyhow!(
            "FMC {name}: {e}\n  → run `estreamer-cef test` for a step-by-step diagnosis"
        )
    })?;
    drop(password);
    let session =
        SessionConfig::from_config(cfg, i, identity, start).map_err(anyhow::Error::msg)?;
    let resume = Arc::new(Resume::new(delivery.resume_point()));
    let filter = RecordFilter::new(cfg.records_of(i));
    drop(_entered);
    Ok(Fmc {
        name,
        span,
        delivery,
        cache: Arc::new(std::sync::RwLock::new(cache)),
        source: Source::Session(session),
        resume,
        session_stats: Arc::new(SessionStats::default()),
        stats: Arc::new(PipelineStats::default()),
        transform: Transform::new(filter, mappings.clone(), header.clone(), notes),
    })
}

/// A recorded stream in place of the FMCs: the first FMC's record filter (as `decode --cef`),
/// an empty metadata cache, delivery followed in memory only.
fn open_recording(
    cfg: &Config,
    rec: Recording,
    mappings: &Arc<Mappings>,
    header: &CefHeader,
    notes: bool,
) -> Fmc {
    let span = tracing::info_span!("replay", file = %rec.name);
    Fmc {
        name: rec.name.clone(),
        span,
        delivery: Delivery::in_memory(),
        cache: Arc::new(std::sync::RwLock::new(Cache::new(cfg.metadata.limits()))),
        source: Source::Recording(rec),
        resume: Arc::new(session::Resume::default()),
        session_stats: Arc::new(SessionStats::default()),
        stats: Arc::new(PipelineStats::default()),
        transform: Transform::new(
            RecordFilter::new(cfg.records_of(0)),
            mappings.clone(),
            header.clone(),
            notes,
        ),
    }
}

/// Batches (of one message's events, about 100) waiting for each output. Four made the emitter
/// wait at almost every batch, so the workers and transform threads slept and woke in turn:
/// 16 gave 15-20 % more records/s end to end on 2 vCPUs and less CPU per record (`bench`);
/// 32 and 64 no more. The output's resend buffer, not this queue, bounds what is in flight.
const OUTPUT_QUEUE_BATCHES: usize = 16;

/// The run's one stop flag: SIGTERM sets it, and so does the pipeline when it stops on its own
/// (the demo's event count reached, an output that failed). Everything that must stop watches
/// it (`subscribe`).
pub type StopFlag = Arc<watch::Sender<bool>>;

/// Runs the forwarder until `stop` is set (or the demo's event count is reached).
/// Every configured FMC has its own session, worker, bookmark and metadata cache; they share
/// the transform threads and the outputs.
pub async fn run(cfg: Config, mut opts: RunOptions, stop: StopFlag) -> anyhow::Result<Summary> {
    if cfg.outputs.is_empty() && cfg.tap.is_none() {
        anyhow::bail!(
            "no output configured: add an [[output]] table (udp, tcp, tls, file or stdout) to the \
             configuration, or use --tap-file to only look at what would be sent"
        );
    }
    let mappings = Arc::new(
        load_mappings(&cfg)
            .map_err(|e| anyhow::anyhow!("the mapping tables have problems:\n{e}"))?,
    );
    let header = CefHeader::new(&cfg.cef.vendor, &cfg.cef.product, &cfg.cef.version)
        .map_err(|e| anyhow::anyhow!("[cef]: {e}"))?;
    let json_tap_wanted = cfg
        .tap
        .as_ref()
        .is_some_and(|t| t.format == output::TapFormat::Json);
    let replay = opts.recording.is_some();
    let mut fmcs = Vec::new();
    match opts.recording.take() {
        Some(rec) => fmcs.push(open_recording(
            &cfg,
            rec,
            &mappings,
            &header,
            json_tap_wanted,
        )),
        None => {
            for i in 0..cfg.fmcs.len() {
                fmcs.push(open_fmc(&cfg, i, &mappings, &header, json_tap_wanted)?);
            }
        }
    }
    // Output journals live in the first FMC's state folder (where they always have).
    let state_dir = cfg.fmc_state_dir_of(0);

    // The tap, then the outputs: a wire tap copies what the first network output (else the
    // first output) frames.
    let tap = match &cfg.tap {
        Some(t) => {
            if t.format == output::TapFormat::Wire && cfg.outputs.is_empty() {
                anyhow::bail!(
                    "tap.format = \"wire\" copies the messages the first output sends, and there \
                     is no [[output]]: add one, or use tap.format = \"json\""
                );
            }
            let (h, task) = output::spawn_tap(t, "tap")?;
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
        .filter(|(h, _)| h.format() == output::TapFormat::Wire)
        .map(|(h, _)| h.clone());
    let tapped = cfg.outputs.iter().position(|o| o.is_network()).unwrap_or(0);
    let hostname = output::local_hostname();
    let mut out_tx = Vec::new();
    let mut progress = Vec::new();
    let mut out_stats = Vec::new();
    let mut out_tasks = Vec::new();
    for (i, o) in cfg.outputs.iter().enumerate() {
        let mut output = Output::new(o, &format!("output[{i}]"), &hostname)?;
        if !replay {
            output.keep_journal_in(&state_dir, i);
        }
        output.name_fmcs(fmcs.iter().map(|f| f.name.clone()).collect());
        if i == tapped
            && let Some(t) = &wire_tap
        {
            output.copy_to_tap(t.clone());
        }
        let (tx, rx) = mpsc::channel(OUTPUT_QUEUE_BATCHES);
        let (ptx, prx) = watch::channel(0u64);
        let stats = Arc::new(OutputStats::default());
        out_stats.push((output.name().to_string(), stats.clone()));
        out_tasks.push(output.spawn(rx, ptx, stats));
        out_tx.push(tx);
        progress.push(prx);
    }
    drop(wire_tap);
    let emitter = Arc::new(Emitter::new(
        out_tx,
        out_stats.iter().map(|(n, _)| n.clone()).collect(),
        progress,
    ));

    let stopping = stop.subscribe();
    if let Some(limit) = opts.stall_limit {
        tokio::spawn(stop_when_stalled(
            emitter.clone(),
            limit,
            stop.clone(),
            stopping.clone(),
        ));
    }

    // Monitor.
    let monitor = Monitor::new(
        fmcs.iter()
            .map(|f| FmcStats {
                name: f.name.clone(),
                pipeline: f.stats.clone(),
                session: f.session_stats.clone(),
            })
            .collect(),
        out_stats.clone(),
    );
    if let Some(tx) = opts.monitor.take() {
        let _ = tx.send(monitor.clone());
    }
    tokio::spawn(crate::monitor::log_periodically(
        monitor.clone(),
        cfg.monitor.period,
        stopping.clone(),
    ));
    if let Some(addr) = cfg.monitor.listen.filter(|_| !replay) {
        let m = monitor.clone();
        let sd = stopping.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::monitor::serve_metrics(m, addr, sd).await {
                tracing::error!("metrics listener on {addr}: {e}");
            }
        });
    }
    if let Some(ready) = opts.on_ready.take() {
        let sessions: Vec<_> = fmcs.iter().map(|f| f.session_stats.clone()).collect();
        let mut sd = stopping.clone();
        tokio::spawn(async move {
            // Ready once an FMC session is up (the outputs connect on their own and buffer).
            loop {
                if sessions
                    .iter()
                    .any(|s| s.connected.load(std::sync::atomic::Ordering::Relaxed))
                {
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

    // The transform on every core, shared by the FMCs.
    let json_tap = tap
        .as_ref()
        .filter(|(h, _)| h.format() == output::TapFormat::Json)
        .map(|(h, _)| h.clone());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sources: Vec<pool::Source> = fmcs
        .iter()
        .map(|f| pool::Source {
            transform: f.transform.sibling(),
            cache: f.cache.clone(),
            span: f.span.clone(),
        })
        .collect();
    let pool =
        Arc::new(Pool::start(threads, &sources).context("cannot start the transform threads")?);
    drop(sources);
    // SIGHUP: new mapping tables for every FMC's transforms.
    if let Some(reload) = opts.reload.clone() {
        let pool = pool.clone();
        let reload_cfg = cfg.clone();
        let stats: Vec<_> = fmcs.iter().map(|f| f.stats.clone()).collect();
        let mut sd = stopping.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = reload.notified() => {}
                    _ = sd.changed() => if *sd.borrow() { return; } else { continue; },
                }
                match load_mappings(&reload_cfg) {
                    Ok(m) => {
                        pool.set_mappings(Arc::new(m));
                        for s in &stats {
                            s.mapping_reloads
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        tracing::info!("mapping tables reloaded");
                    }
                    Err(e) => tracing::error!(
                        "mapping tables NOT reloaded, the previous ones stay in use:\n{e}"
                    ),
                }
            }
        });
    }

    // Each FMC: its session and its worker.
    let mut sessions = Vec::new();
    let mut workers = Vec::new();
    let count = fmcs.len();
    // Messages queued between a session and its worker: enough to ride out a slow moment, and
    // shared out so that memory does not grow by a full queue per FMC.
    let queue = (32 / count).clamp(4, 32);
    for (i, f) in fmcs.into_iter().enumerate() {
        let (src_tx, src_rx) = mpsc::channel(queue);
        let source = match f.source {
            Source::Session(config) => tokio::spawn(
                session::run(
                    config,
                    f.resume.clone(),
                    src_tx,
                    stopping.clone(),
                    f.session_stats.clone(),
                )
                .instrument(f.span.clone()),
            ),
            Source::Recording(rec) => {
                let (stopping, stats) = (stopping.clone(), f.session_stats.clone());
                tokio::spawn(
                    async move {
                        recording::feed(rec, src_tx, stopping, stats).await;
                        Ok(())
                    }
                    .instrument(f.span.clone()),
                )
            }
        };
        sessions.push((f.name.clone(), source));
        let w = worker::Worker {
            fmc: i,
            source: src_rx,
            pool: pool.clone(),
            cache: f.cache.clone(),
            delivery: f.delivery,
            emitter: emitter.clone(),
            json_tap: json_tap.clone(),
            resume: f.resume,
            stats: f.stats,
            fmcs: count,
            stop_after: opts.stop_after,
            stop: stop.clone(),
            shutdown: stopping.clone(),
        };
        workers.push((f.name, f.cache, tokio::spawn(w.run().instrument(f.span))));
    }
    drop(json_tap);

    // Each worker ends once its session has (shutdown), or when an output failed.
    let mut finished = Vec::new();
    for (name, cache, w) in workers {
        finished.push((name, cache, w.await.context("a worker failed")?));
    }
    stop.send_replace(true);
    for (name, s) in sessions {
        match s.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("FMC {name} session: {e}"),
            Err(e) => tracing::error!("FMC {name} session task: {e}"),
        }
    }
    // The outputs deliver what they took, then end.
    emitter.close().await;
    for t in out_tasks {
        let _ = t.await;
    }
    let outputs = out_stats
        .iter()
        .zip(&emitter.progress)
        .map(|((name, stats), progress)| OutputReport {
            name: name.clone(),
            delivered_up_to: *progress.borrow(),
            stats: stats.snapshot(),
        })
        .collect();
    if let Some((h, task)) = tap {
        drop(h);
        let _ = task.await;
    }
    drop(pool);

    // The final bookmarks record exactly what was delivered.
    let delivered = emitter.delivered();
    let mut summary = Summary {
        emitted: 0,
        delivered,
        bookmark: Bookmark::default(),
        counters: Default::default(),
        bookmarks: Vec::new(),
        outputs,
    };
    for (name, cache, mut f) in finished {
        f.delivery.delivered(delivered);
        // A replay (no state folder) saves nothing.
        let dir = f.delivery.dir().map(|d| d.to_path_buf());
        let bm = f.delivery.save().with_context(|| {
            format!(
                "FMC {name}: cannot save the bookmark in {}",
                dir.as_deref().unwrap_or(std::path::Path::new("")).display()
            )
        })?;
        if let Some(dir) = &dir {
            let cache = cache.read().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = crate::metadata::store::save(&cache, dir) {
                tracing::error!("FMC {name}: cannot save the metadata cache: {e}");
            }
        }
        summary.emitted += f.emitted;
        summary.counters.add(&f.counters);
        if summary.bookmarks.is_empty() {
            summary.bookmark = bm.clone();
        }
        summary.bookmarks.push((name, bm));
    }
    let undelivered = emitter.last().saturating_sub(delivered);
    if undelivered > 0 && !replay {
        tracing::warn!(
            "{undelivered} events taken were not confirmed delivered before stopping; they will be read from the FMC again"
        );
    }
    // `delivered` in the summary: events (of all FMCs) every output delivered.
    summary.delivered = delivered.min(summary.emitted);
    Ok(summary)
}

/// Sets `stop` once an output has held events without delivering any for `limit`, and says
/// which (see [`RunOptions::stall_limit`]).
async fn stop_when_stalled(
    emitter: Arc<Emitter>,
    limit: Duration,
    stop: StopFlag,
    mut stopping: watch::Receiver<bool>,
) {
    let started = tokio::time::Instant::now();
    let mut last: Vec<(u64, tokio::time::Instant)> = emitter
        .progress
        .iter()
        .map(|p| (*p.borrow(), started))
        .collect();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            r = stopping.changed() => if r.is_err() || *stopping.borrow() { return; },
        }
        let handed = emitter.last();
        for (i, p) in emitter.progress.iter().enumerate() {
            let now = *p.borrow();
            if now != last[i].0 || now >= handed {
                last[i] = (now, tokio::time::Instant::now());
            } else if last[i].1.elapsed() >= limit {
                tracing::error!(
                    "output {} delivered nothing for {} s while holding {} events: stopping",
                    emitter.names[i],
                    limit.as_secs_f64(),
                    handed - now
                );
                stop.send_replace(true);
                return;
            }
        }
    }
}
