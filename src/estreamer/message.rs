//! eStreamer message framing (reference 2.1–2.6): an 8-byte header (`u16 version = 1`,
//! `u16 type`, `u32 length`) and `length` body bytes.
//!
//! Like mini-redis's `Frame::check`, [`check`] tells whether a whole message is in a buffer
//! without copying or consuming anything; the connection then splits the message off its buffer.

use std::fmt;

use bytes::Bytes;

pub const HEADER_LEN: usize = 8;
pub const VERSION: u16 = 1;
/// Default upper bound on a message body. The protocol has none; a mis-synchronised stream would
/// otherwise make us allocate whatever 4 bytes of garbage say.
pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;

/// Message types (reference 2.2).
pub mod kind {
    pub const NULL: u16 = 0;
    pub const ERROR: u16 = 1;
    pub const EVENT_STREAM_REQUEST: u16 = 2;
    pub const EVENT_DATA: u16 = 4;
    pub const HOST_DATA_REQUEST: u16 = 5;
    pub const SINGLE_HOST_DATA: u16 = 6;
    pub const MULTIPLE_HOST_DATA: u16 = 7;
    pub const STREAMING_REQUEST: u16 = 2049;
    pub const STREAMING_INFORMATION: u16 = 2051;
    pub const MESSAGE_BUNDLE: u16 = 4002;

    pub fn name(k: u16) -> &'static str {
        match k {
            NULL => "Null",
            ERROR => "Error",
            EVENT_STREAM_REQUEST => "EventStreamRequest",
            EVENT_DATA => "EventData",
            HOST_DATA_REQUEST => "HostDataRequest",
            SINGLE_HOST_DATA => "SingleHostData",
            MULTIPLE_HOST_DATA => "MultipleHostData",
            STREAMING_REQUEST => "StreamingRequest",
            STREAMING_INFORMATION => "StreamingInformation",
            MESSAGE_BUNDLE => "MessageBundle",
            _ => "unknown",
        }
    }
}

/// One message, its body sharing the receive buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: u16,
    pub body: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not enough bytes yet for a whole message.
    Incomplete,
    /// The header version is not 1: the stream is out of step, or the FMC has defect CSCve44987.
    BadVersion(u16),
    /// The announced body is larger than we accept.
    TooLong { len: usize, max: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Incomplete => write!(f, "incomplete message"),
            FrameError::BadVersion(v) => write!(
                f,
                "message header version is {v}, not 1: the stream is out of step; FMC 6.1.0.3–6.2 \
                 builds with defect CSCve44987 send invalid versions (upgrade or apply the hotfix)"
            ),
            FrameError::TooLong { len, max } => write!(
                f,
                "a message announces {len} body bytes, more than the {max} we accept: the stream is out of step"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// Checks whether `buf` starts with a whole message. Returns its type and total length
/// (header included).
pub fn check(buf: &[u8], max_body: usize) -> Result<(u16, usize), FrameError> {
    if buf.len() < HEADER_LEN {
        return Err(FrameError::Incomplete);
    }
    let version = u16::from_be_bytes([buf[0], buf[1]]);
    if version != VERSION {
        return Err(FrameError::BadVersion(version));
    }
    let kind = u16::from_be_bytes([buf[2], buf[3]]);
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if len > max_body {
        return Err(FrameError::TooLong { len, max: max_body });
    }
    if buf.len() - HEADER_LEN < len {
        return Err(FrameError::Incomplete);
    }
    Ok((kind, HEADER_LEN + len))
}

/// Splits whole messages off the front of a byte slice (a file of captured messages, for
/// example). Stops at the first incomplete or invalid message and reports it.
pub struct MessageIter<'a> {
    rest: &'a [u8],
    offset: usize,
    max_body: usize,
}

impl<'a> MessageIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        MessageIter {
            rest: bytes,
            offset: 0,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Byte offset of the next message.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for MessageIter<'a> {
    /// (offset, type, body) or the error at `offset`.
    type Item = Result<(usize, u16, &'a [u8]), (usize, FrameError)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match check(self.rest, self.max_body) {
            Ok((kind, total)) => {
                let body = &self.rest[HEADER_LEN..total];
                let at = self.offset;
                self.rest = &self.rest[total..];
                self.offset += total;
                Some(Ok((at, kind, body)))
            }
            Err(e) => {
                let at = self.offset;
                self.rest = &[];
                Some(Err((at, e)))
            }
        }
    }
}

/// Writes a message header and body.
pub fn encode(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + body.len());
    v.extend_from_slice(&VERSION.to_be_bytes());
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// The Null message: the client's acknowledgement / "ready for more", the server's keepalive.
pub const NULL_MESSAGE: [u8; 8] = [0, 1, 0, 0, 0, 0, 0, 0];

/// An Error message (client errors use code -1).
pub fn error_message(code: i32, text: &str) -> Vec<u8> {
    let text = &text.as_bytes()[..text.len().min(u16::MAX as usize)];
    let mut body = Vec::with_capacity(6 + text.len());
    body.extend_from_slice(&code.to_be_bytes());
    body.extend_from_slice(&(text.len() as u16).to_be_bytes());
    body.extend_from_slice(text);
    encode(kind::ERROR, &body)
}

/// A server or client Error message's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: i32,
    pub text: String,
}

impl ErrorBody {
    /// Parses an Error body; tolerates a text length that disagrees with the body (the text is
    /// then what is there), removes NULs.
    pub fn parse(body: &[u8]) -> Option<ErrorBody> {
        if body.len() < 6 {
            return None;
        }
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let n = u16::from_be_bytes([body[4], body[5]]) as usize;
        let text = &body[6..(6 + n).min(body.len())];
        let text = String::from_utf8_lossy(text).replace('\0', "");
        Some(ErrorBody { code, text })
    }
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}: {}", self.code, self.text)
    }
}

/// Items of a MessageBundle body: `u32 connection id`, `u32 sequence`, then repeated
/// `u32 type (= 4)`, `u32 length`, EventData body.
pub struct Bundle<'a> {
    pub connection_id: u32,
    pub sequence: u32,
    items: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleError {
    TooShort,
    /// An item header says a type other than EventData (4).
    ItemType {
        offset: usize,
        kind: u32,
    },
    /// An item runs past the end of the bundle.
    ItemLength {
        offset: usize,
        len: usize,
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::TooShort => write!(f, "message bundle shorter than its 8-byte header"),
            BundleError::ItemType { offset, kind } => write!(
                f,
                "bundle item at offset {offset} has type {kind}, expected EventData (4)"
            ),
            BundleError::ItemLength { offset, len } => write!(
                f,
                "bundle item at offset {offset} announces {len} bytes, past the end of the bundle"
            ),
        }
    }
}

impl<'a> Bundle<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Bundle<'a>, BundleError> {
        if body.len() < 8 {
            return Err(BundleError::TooShort);
        }
        Ok(Bundle {
            connection_id: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            sequence: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
            items: &body[8..],
        })
    }

    /// Each item's EventData body with its offset in the bundle body.
    pub fn items(&self) -> BundleItems<'a> {
        BundleItems {
            rest: self.items,
            offset: 8,
        }
    }
}

/// The records a data message carries: its body for EventData, each item of a MessageBundle,
/// nothing for other messages. The one place bundles are unpacked. A bundle whose items do not
/// add up yields the error last (the rest of it is skipped).
pub fn records(kind: u16, body: &[u8]) -> Records<'_> {
    match kind {
        kind::EVENT_DATA => Records::One(Some(body)),
        kind::MESSAGE_BUNDLE => match Bundle::parse(body) {
            Ok(b) => Records::Bundle(b.items()),
            Err(e) => Records::Failed(Some(e)),
        },
        _ => Records::One(None),
    }
}

/// Iterator of [`records`].
pub enum Records<'a> {
    One(Option<&'a [u8]>),
    Bundle(BundleItems<'a>),
    Failed(Option<BundleError>),
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<&'a [u8], BundleError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Records::One(body) => body.take().map(Ok),
            Records::Bundle(items) => match items.next()? {
                Ok((_, body)) => Some(Ok(body)),
                Err(e) => {
                    *self = Records::Failed(None);
                    Some(Err(e))
                }
            },
            Records::Failed(e) => e.take().map(Err),
        }
    }
}

pub struct BundleItems<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for BundleItems<'a> {
    type Item = Result<(usize, &'a [u8]), BundleError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let at = self.offset;
        if self.rest.len() < 8 {
            self.rest = &[];
            return Some(Err(BundleError::ItemLength { offset: at, len: 8 }));
        }
        let kind = u32::from_be_bytes([self.rest[0], self.rest[1], self.rest[2], self.rest[3]]);
        let len =
            u32::from_be_bytes([self.rest[4], self.rest[5], self.rest[6], self.rest[7]]) as usize;
        if kind != kind::EVENT_DATA as u32 {
            self.rest = &[];
            return Some(Err(BundleError::ItemType { offset: at, kind }));
        }
        if self.rest.len() - 8 < len {
            self.rest = &[];
            return Some(Err(BundleError::ItemLength { offset: at, len }));
        }
        let item = &self.rest[8..8 + len];
        self.rest = &self.rest[8 + len..];
        self.offset += 8 + len;
        Some(Ok((at, item)))
    }
}

/// A service entry of StreamingInformation (reference 2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    pub service_id: u32,
    pub flags: u32,
    pub initial_timestamp: u32,
}

/// The eStreamer service in StreamingInformation / StreamingRequest.
pub const ESTREAMER_SERVICE: u32 = 6667;

/// Walks StreamingInformation entries with `next = offset + 8 + length` (the server's
/// convention). Returns the entries it could read.
pub fn streaming_information(body: &[u8]) -> Vec<ServiceEntry> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while body.len() >= at + 8 {
        let service_id = u32::from_be_bytes(body[at..at + 4].try_into().unwrap_or([0; 4]));
        let len = u32::from_be_bytes(body[at + 4..at + 8].try_into().unwrap_or([0; 4])) as usize;
        let entry = &body[at + 8..(at + 8 + len).min(body.len())];
        let word = |i: usize| {
            entry
                .get(i..i + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0)
        };
        out.push(ServiceEntry {
            service_id,
            flags: word(0),
            initial_timestamp: word(4),
        });
        match at.checked_add(8 + len) {
            Some(next) if next > at => at = next,
            _ => break,
        }
    }
    out
}

/// The StreamingInformation the FMC sent in the reference capture (services 5001, 5000, 6667).
pub fn streaming_information_message(services: &[u32]) -> Vec<u8> {
    let mut body = Vec::with_capacity(services.len() * 16);
    for &s in services {
        body.extend_from_slice(&s.to_be_bytes());
        body.extend_from_slice(&8u32.to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes());
    }
    encode(kind::STREAMING_INFORMATION, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn check_reports_incomplete_until_the_whole_message_is_there() {
        let msg = error_message(-1, "bye");
        assert_eq!(msg, hex("0001000100000009ffffffff0003627965"));
        for n in 0..msg.len() {
            assert_eq!(
                check(&msg[..n], DEFAULT_MAX_BODY),
                Err(FrameError::Incomplete)
            );
        }
        assert_eq!(check(&msg, DEFAULT_MAX_BODY), Ok((kind::ERROR, msg.len())));
    }

    #[test]
    fn bad_version_and_oversize_are_errors() {
        assert_eq!(
            check(&hex("0002000000000000"), DEFAULT_MAX_BODY),
            Err(FrameError::BadVersion(2))
        );
        assert_eq!(
            check(&hex("00010004ffffffff"), 1024),
            Err(FrameError::TooLong {
                len: 0xffff_ffff,
                max: 1024
            })
        );
    }

    #[test]
    fn null_and_error_golden_vectors() {
        assert_eq!(NULL_MESSAGE.to_vec(), hex("0001000000000000"));
        let e =
            ErrorBody::parse(&hex("000100010000000f0000001300094e6f20737061636500")[8..]).unwrap();
        assert_eq!(e.code, 19);
        assert_eq!(e.text, "No space");
    }

    #[test]
    fn streaming_information_capture_lists_6667() {
        let wire = hex(
            "0001080300000030000013890000000800000000000000000000138800000008000000000000000000001a0b000000080000000000000000",
        );
        assert_eq!(streaming_information_message(&[5001, 5000, 6667]), wire);
        let (k, total) = check(&wire, DEFAULT_MAX_BODY).unwrap();
        assert_eq!((k, total), (kind::STREAMING_INFORMATION, wire.len()));
        let ids: Vec<u32> = streaming_information(&wire[8..])
            .iter()
            .map(|e| e.service_id)
            .collect();
        assert_eq!(ids, vec![5001, 5000, 6667]);
    }

    #[test]
    fn bundle_items_split() {
        let wire = hex(
            "00010fa20000003f000000070000000100000004000000150000007b0000000d00000001000000054654442d310000000400000012000000040000000a00000001000468696768",
        );
        let (k, total) = check(&wire, DEFAULT_MAX_BODY).unwrap();
        assert_eq!(k, kind::MESSAGE_BUNDLE);
        let b = Bundle::parse(&wire[8..total]).unwrap();
        assert_eq!((b.connection_id, b.sequence), (7, 1));
        let items: Vec<_> = b.items().map(|r| r.unwrap().1.to_vec()).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(&items[0][..8], &hex("0000007b0000000d")[..]);
    }
}
