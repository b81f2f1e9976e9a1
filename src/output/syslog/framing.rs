//! Transport framing (RFC 6587), kept apart from the message format: how one message is delimited
//! on a byte stream, and the matching parser.
//!
//! The parser follows mini-redis: [`parse`] looks at a buffer and either returns the next message
//! (borrowed, not copied) with the number of bytes it used, or `Ok(None)` when the buffer does not
//! yet hold a whole frame.

use super::format::push_decimal;
use crate::config::output::Framing;

/// How a message is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFraming {
    /// No framing: the transport keeps messages apart (one UDP datagram each).
    Datagram,
    /// Message followed by LF.
    Lf,
    /// `LEN SP message`.
    OctetCounting,
}

impl From<Framing> for WireFraming {
    fn from(f: Framing) -> Self {
        match f {
            Framing::Lf => WireFraming::Lf,
            Framing::OctetCounting => WireFraming::OctetCounting,
        }
    }
}

/// Appends `msg` framed as `framing` to `out`. With LF framing a raw CR or LF inside the message
/// would end the frame early and forge a second event; CEF escaping means there is none, but if
/// one slips through it is replaced by a space. Returns how many were replaced.
pub fn frame_into(framing: WireFraming, msg: &[u8], out: &mut Vec<u8>) -> usize {
    match framing {
        WireFraming::Datagram => {
            out.extend_from_slice(msg);
            0
        }
        WireFraming::OctetCounting => {
            push_decimal(out, msg.len());
            out.push(b' ');
            out.extend_from_slice(msg);
            0
        }
        WireFraming::Lf => {
            let start = out.len();
            out.extend_from_slice(msg);
            let replaced = replace_line_breaks(&mut out[start..]);
            out.push(b'\n');
            replaced
        }
    }
}

/// Replaces raw CR and LF by spaces; returns how many.
pub fn replace_line_breaks(bytes: &mut [u8]) -> usize {
    // Fast path: scanning is vectorised by the compiler; replacing is the rare case.
    if !bytes.iter().any(|&b| b == b'\n' || b == b'\r') {
        return 0;
    }
    let mut n = 0;
    for b in bytes.iter_mut() {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
            n += 1;
        }
    }
    n
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error(
        "octet-counted frame has an invalid length field {0:?} (expected digits without leading zeros, then a space)"
    )]
    BadLength(String),
    #[error("frame of {len} bytes is larger than the limit of {max}")]
    TooLong { len: usize, max: usize },
}

/// Longest decimal length field accepted (RFC 6587 has no limit; 10 digits is beyond any receiver).
const MAX_LENGTH_DIGITS: usize = 10;

/// Parses the next frame from `buf`: `Ok(Some((message, consumed)))`, or `Ok(None)` when more
/// bytes are needed. `max_len` bounds the message length (an LF frame longer than it, or an
/// octet count above it, is an error rather than a reason to wait forever).
///
/// With [`WireFraming::Datagram`] the whole buffer is one message.
pub fn parse(
    framing: WireFraming,
    buf: &[u8],
    max_len: usize,
) -> Result<Option<(&[u8], usize)>, FrameError> {
    match framing {
        WireFraming::Datagram => {
            if buf.is_empty() {
                Ok(None)
            } else {
                Ok(Some((buf, buf.len())))
            }
        }
        WireFraming::Lf => parse_lf(buf, max_len),
        WireFraming::OctetCounting => parse_octet_counted(buf, max_len),
    }
}

/// Detects the framing per frame as RFC 6587 section 3.4 describes: a frame starting with a digit
/// is octet-counted, anything else (normally `<`) is LF-terminated.
pub fn parse_auto(buf: &[u8], max_len: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    match buf.first() {
        None => Ok(None),
        Some(b) if b.is_ascii_digit() => parse_octet_counted(buf, max_len),
        Some(_) => parse_lf(buf, max_len),
    }
}

fn parse_lf(buf: &[u8], max_len: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i > max_len => Err(FrameError::TooLong {
            len: i,
            max: max_len,
        }),
        Some(i) => Ok(Some((&buf[..i], i + 1))),
        None if buf.len() > max_len => Err(FrameError::TooLong {
            len: buf.len(),
            max: max_len,
        }),
        None => Ok(None),
    }
}

fn parse_octet_counted(buf: &[u8], max_len: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let mut len: usize = 0;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b' ' if i > 0 => {
                if len > max_len {
                    return Err(FrameError::TooLong { len, max: max_len });
                }
                let start = i + 1;
                if buf.len() - start < len {
                    return Ok(None);
                }
                return Ok(Some((&buf[start..start + len], start + len)));
            }
            // No leading zeros, except a lone "0" (an empty message, which we never send).
            b'0'..=b'9' if !(i == 1 && buf[0] == b'0') && i < MAX_LENGTH_DIGITS => {
                len = len * 10 + (b - b'0') as usize;
            }
            _ => {
                let shown = &buf[..(i + 1).min(buf.len())];
                return Err(FrameError::BadLength(
                    String::from_utf8_lossy(shown).into_owned(),
                ));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn octet_counting_counts_bytes_not_characters() {
        let msg = "<134>1 - - - - - - \u{feff}CEF:0|a|b|c|d|Jörg 日本|1|".as_bytes();
        let mut out = Vec::new();
        frame_into(WireFraming::OctetCounting, msg, &mut out);
        let expected = format!("{} ", msg.len());
        assert!(out.starts_with(expected.as_bytes()));
        assert_eq!(
            parse(WireFraming::OctetCounting, &out, 1 << 20).unwrap(),
            Some((msg, out.len()))
        );
    }

    #[test]
    fn lf_framing_replaces_and_counts_raw_line_breaks() {
        let mut out = Vec::new();
        let n = frame_into(
            WireFraming::Lf,
            b"CEF:0|a|b|c|d|e|1|msg=one\ntwo\r",
            &mut out,
        );
        assert_eq!(n, 2);
        assert_eq!(out, b"CEF:0|a|b|c|d|e|1|msg=one two \n");
        assert_eq!(frame_into(WireFraming::Lf, b"clean", &mut Vec::new()), 0);
    }

    #[test]
    fn incomplete_frames_ask_for_more() {
        assert_eq!(parse(WireFraming::OctetCounting, b"", 100), Ok(None));
        assert_eq!(parse(WireFraming::OctetCounting, b"12", 100), Ok(None));
        assert_eq!(parse(WireFraming::OctetCounting, b"12 <13>", 100), Ok(None));
        assert_eq!(
            parse(WireFraming::Lf, b"<13>1 no newline yet", 100),
            Ok(None)
        );
        assert_eq!(parse_auto(b"5 ab", 100), Ok(None));
    }

    #[test]
    fn an_empty_octet_counted_frame_is_zero_then_space() {
        let mut out = Vec::new();
        frame_into(WireFraming::OctetCounting, b"", &mut out);
        assert_eq!(out, b"0 ");
        assert_eq!(
            parse(WireFraming::OctetCounting, &out, 10),
            Ok(Some((&b""[..], 2)))
        );
    }

    #[test]
    fn bad_frames_are_errors() {
        assert!(matches!(
            parse(WireFraming::OctetCounting, b"<13>1 x", 100),
            Err(FrameError::BadLength(_))
        ));
        assert!(matches!(
            parse(WireFraming::OctetCounting, b"012 x", 100),
            Err(FrameError::BadLength(_))
        ));
        assert!(matches!(
            parse(WireFraming::OctetCounting, b" 12 x", 100),
            Err(FrameError::BadLength(_))
        ));
        assert!(matches!(
            parse(WireFraming::OctetCounting, b"12345678901 x", usize::MAX),
            Err(FrameError::BadLength(_))
        ));
        assert_eq!(
            parse(WireFraming::OctetCounting, b"101 x", 100),
            Err(FrameError::TooLong { len: 101, max: 100 })
        );
        assert!(matches!(
            parse(WireFraming::Lf, &[b'a'; 20], 10),
            Err(FrameError::TooLong { .. })
        ));
    }

    #[test]
    fn auto_detects_per_frame() {
        let mut buf = Vec::new();
        frame_into(WireFraming::OctetCounting, b"<13>1 first", &mut buf);
        frame_into(WireFraming::Lf, b"<13>1 second", &mut buf);
        frame_into(WireFraming::OctetCounting, b"<13>1 third", &mut buf);
        let mut got = Vec::new();
        let mut rest = &buf[..];
        while let Some((m, used)) = parse_auto(rest, 1000).unwrap() {
            got.push(m.to_vec());
            rest = &rest[used..];
        }
        assert_eq!(
            got,
            vec![
                b"<13>1 first".to_vec(),
                b"<13>1 second".to_vec(),
                b"<13>1 third".to_vec()
            ]
        );
    }

    proptest! {
        // Any sequence of messages framed and concatenated parses back to the same messages,
        // whatever the chunk boundaries the bytes arrive in.
        #[test]
        fn framing_round_trips(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20), cut in 1usize..50, lf in any::<bool>()) {
            let framing = if lf { WireFraming::Lf } else { WireFraming::OctetCounting };
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for m in &msgs {
                let mut m = m.clone();
                if lf { replace_line_breaks(&mut m); }
                frame_into(framing, &m, &mut wire);
                expected.push(m);
            }
            // feed in chunks of `cut` bytes, as a socket would
            let mut buf: Vec<u8> = Vec::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(cut) {
                buf.extend_from_slice(chunk);
                while let Some((m, used)) = parse(framing, &buf, 1 << 16).unwrap() {
                    got.push(m.to_vec());
                    buf.drain(..used);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(got, expected);
        }
    }
}
