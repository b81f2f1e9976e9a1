//! Signals and systemd notifications for the long-running commands.

use std::sync::Arc;
use tokio::sync::{Notify, watch};

use crate::pipeline::StopFlag;

/// SIGTERM and SIGINT set the returned stop flag (the first time: a clean stop); SIGHUP
/// notifies `reload`. The run sets the same flag when it stops on its own.
pub fn install(reload: Option<Arc<Notify>>) -> std::io::Result<StopFlag> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop: StopFlag = Arc::new(watch::channel(false).0);
    let tx = stop.clone();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping cleanly"); tx.send_replace(true); }
                _ = int.recv() => { tracing::info!("interrupted: stopping cleanly"); tx.send_replace(true); }
                _ = hup.recv() => match &reload {
                    Some(r) => { tracing::info!("SIGHUP: reloading the mapping tables"); r.notify_one(); }
                    None => tracing::info!("SIGHUP ignored"),
                },
            }
        }
    });
    Ok(stop)
}

/// Sends a notification to systemd (`READY=1`, `WATCHDOG=1`, `STOPPING=1`, `STATUS=...`) when
/// running under a unit with `NOTIFY_SOCKET`. Does nothing otherwise.
pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let p = path.to_string_lossy();
    let r = if let Some(abstract_name) = p.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &*p)
    };
    if let Err(e) = r {
        tracing::debug!("sd_notify {state}: {e}");
    }
}

/// The watchdog interval systemd asks for (`WATCHDOG_USEC`), if any.
pub fn watchdog_interval() -> Option<std::time::Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok()? != std::process::id()
    {
        return None;
    }
    Some(std::time::Duration::from_micros(usec))
}
