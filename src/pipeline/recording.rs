//! A recorded eStreamer stream as the pipeline's source, in place of an FMC session
//! (`estreamer-cef replay`): the messages of the file handed to the worker as a session hands
//! them, at the recorded pace (as fast as the pipeline takes them) or at a set number of events
//! per second.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::estreamer::message::{MessageIter, kind, records};
use crate::estreamer::session::{SessionStats, SourceMessage};

/// A recorded stream, checked to be whole eStreamer messages.
#[derive(Clone, Debug)]
pub struct Recording {
    /// What it is called in logs (the file's name).
    pub name: String,
    bytes: Bytes,
    /// Event records per second (`None`: as fast as the outputs take them).
    pub rate: Option<u32>,
}

impl Recording {
    /// Checks that `bytes` are whole eStreamer messages (what `decode` reads: the messages the
    /// FMC sends after the handshake), so that a wrong file fails before anything is sent.
    pub fn new(name: &str, bytes: Vec<u8>, rate: Option<u32>) -> Result<Recording, String> {
        let mut data_messages = 0usize;
        for m in MessageIter::new(&bytes) {
            match m {
                Ok((_, kind::EVENT_DATA | kind::MESSAGE_BUNDLE, _)) => data_messages += 1,
                Ok(_) => {}
                Err((offset, e)) => {
                    return Err(format!(
                        "{name}: not a recorded eStreamer stream past byte {offset} ({e}): give a \
                         file of whole eStreamer messages, such as a capture of what the FMC sends \
                         after the handshake or /usr/share/estreamer-cef/examples/sample.estreamer"
                    ));
                }
            }
        }
        if data_messages == 0 {
            return Err(format!(
                "{name}: holds no eStreamer event data (no EventData or MessageBundle message): \
                 nothing to replay"
            ));
        }
        if rate == Some(0) {
            return Err("--rate 0: give a number of events per second of at least 1".into());
        }
        Ok(Recording {
            name: name.to_string(),
            bytes: Bytes::from(bytes),
            rate,
        })
    }
}

/// Hands the recording's data messages to the worker until the end of the stream or `shutdown`.
/// With a rate, each record goes alone (an EventData message), event records spaced evenly;
/// metadata records are not counted and not held back.
pub(super) async fn feed(
    rec: Recording,
    tx: mpsc::Sender<SourceMessage>,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<SessionStats>,
) {
    stats.connected.store(true, Ordering::Relaxed);
    stats.connects.store(1, Ordering::Relaxed);
    let started = Instant::now();
    let mut events = 0u64;
    for m in MessageIter::new(&rec.bytes) {
        // Checked whole by `Recording::new`.
        let Ok((_, k @ (kind::EVENT_DATA | kind::MESSAGE_BUNDLE), body)) = m else {
            continue;
        };
        stats.messages.fetch_add(1, Ordering::Relaxed);
        stats
            .bytes
            .fetch_add(body.len() as u64 + 8, Ordering::Relaxed);
        let body = rec.bytes.slice_ref(body);
        let Some(rate) = rec.rate else {
            if !send(&tx, &mut shutdown, k, body).await {
                break;
            }
            continue;
        };
        for item in records(k, &body) {
            let record = match item {
                Ok(r) => body.slice_ref(r),
                Err(e) => {
                    tracing::warn!("message bundle: {e}; the rest of it is skipped");
                    break;
                }
            };
            if !super::worker::is_metadata(&record) {
                events += 1;
                let due = started + Duration::from_secs_f64(events as f64 / f64::from(rate));
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = shutdown.changed() => {}
                }
            }
            if !send(&tx, &mut shutdown, kind::EVENT_DATA, record).await {
                stats.connected.store(false, Ordering::Relaxed);
                return;
            }
        }
    }
    stats.connected.store(false, Ordering::Relaxed);
}

/// Hands one message on; false once the run stops or the worker is gone.
async fn send(
    tx: &mpsc::Sender<SourceMessage>,
    shutdown: &mut watch::Receiver<bool>,
    kind: u16,
    body: Bytes,
) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    let m = SourceMessage {
        connection: 1,
        peer: 0,
        kind,
        body,
    };
    tokio::select! {
        r = tx.send(m) => r.is_ok(),
        _ = shutdown.changed() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_stream_is_refused_with_its_name_and_offset() {
        let e = Recording::new("notes.txt", b"hello, this is text\n".to_vec(), None).unwrap_err();
        assert!(
            e.starts_with("notes.txt: not a recorded eStreamer stream past byte 0"),
            "{e}"
        );
    }

    #[test]
    fn a_stream_without_event_data_is_refused() {
        let null = crate::estreamer::message::encode(kind::NULL, &[]);
        let e = Recording::new("nulls.bin", null, None).unwrap_err();
        assert!(e.contains("no eStreamer event data"), "{e}");
    }

    #[test]
    fn a_rate_of_zero_is_refused() {
        let data = crate::estreamer::message::encode(kind::EVENT_DATA, &[0; 8]);
        let e = Recording::new("x", data, Some(0)).unwrap_err();
        assert!(e.contains("--rate 0"), "{e}");
    }
}
