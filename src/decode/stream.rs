//! Walks a byte stream of whole eStreamer messages (what the FMC sends after the handshake, e.g.
//! a capture file) and yields every record with its index: records inside bundles count one by
//! one, Null and other non-record messages do not count.

use crate::estreamer::message::{Bundle, FrameError, MessageIter, kind, records};

/// One record's EventData body and where it came from.
#[derive(Clone, Copy, Debug)]
pub struct StreamRecord<'a> {
    /// 0-based index over every record of the stream.
    pub index: u64,
    /// Byte offset of the message that carries it.
    pub message_offset: usize,
    /// Bundle sequence number and position in the bundle, for records inside a bundle.
    pub bundle: Option<(u32, u32)>,
    pub body: &'a [u8],
}

/// Something in the stream that is not a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    Record(StreamRecord<'a>),
    /// A message that carries no record (Null keepalive, StreamingInformation, ...).
    Other {
        offset: usize,
        kind: u16,
    },
    /// A bundle whose items do not add up: the rest of the bundle is skipped.
    BadBundle {
        offset: usize,
        reason: String,
    },
    /// The stream itself cannot be read further (bad header, truncated message).
    Broken {
        offset: usize,
        error: FrameError,
    },
}

impl PartialEq for StreamRecord<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.body == other.body
    }
}
impl Eq for StreamRecord<'_> {}

/// Iterates over a stream's records and other messages in order.
pub fn walk(bytes: &[u8]) -> impl Iterator<Item = StreamEvent<'_>> {
    let mut index = 0u64;
    MessageIter::new(bytes).flat_map(move |m| {
        let mut out: Vec<StreamEvent<'_>> = Vec::new();
        match m {
            Err((offset, FrameError::Incomplete)) => out.push(StreamEvent::Broken {
                offset,
                error: FrameError::Incomplete,
            }),
            Err((offset, error)) => out.push(StreamEvent::Broken { offset, error }),
            Ok((offset, k @ (kind::EVENT_DATA | kind::MESSAGE_BUNDLE), body)) => {
                let bundle = (k == kind::MESSAGE_BUNDLE)
                    .then(|| Bundle::parse(body).map(|b| b.sequence).unwrap_or(0));
                for (pos, item) in records(k, body).enumerate() {
                    match item {
                        Ok(body) => {
                            out.push(StreamEvent::Record(StreamRecord {
                                index,
                                message_offset: offset,
                                bundle: bundle.map(|seq| (seq, pos as u32)),
                                body,
                            }));
                            index += 1;
                        }
                        Err(e) => out.push(StreamEvent::BadBundle {
                            offset,
                            reason: e.to_string(),
                        }),
                    }
                }
            }
            Ok((offset, k, _)) => out.push(StreamEvent::Other { offset, kind: k }),
        }
        out
    })
}
