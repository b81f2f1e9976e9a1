//! One event → one framed message: format, size cap, framing.

use std::time::SystemTime;

use super::format::MessageFormat;
use super::framing::{WireFraming, frame_into};
use super::truncate::Truncator;
use crate::config::output::{Format, OutputConfig, Oversize};
use crate::output::OutEvent;
use crate::output::tap::{TapHandle, TapRecord};

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    /// A frame was appended to the output buffer.
    Framed {
        /// The message was shortened to fit `max_message_bytes`.
        truncated: bool,
        /// Raw CR/LF replaced for LF framing (should always be 0).
        newlines_replaced: usize,
    },
    /// Too long and could not (or must not) be shortened: nothing was appended.
    Dropped,
}

/// Turns events into framed messages for one output, writing into buffers the caller reuses.
#[derive(Debug, Clone)]
pub struct FrameEncoder {
    format: MessageFormat,
    framing: WireFraming,
    /// Cap on the message (without framing); `None` = no cap.
    max_message_bytes: Option<usize>,
    oversize: Oversize,
    scratch: Vec<u8>,
    truncator: Truncator,
    /// The wire tap: gets a copy of every frame made (see [`copy_to`](Self::copy_to)).
    tap: Option<TapHandle>,
}

impl FrameEncoder {
    /// The encoder an output uses. `default_hostname` applies when the config has no `hostname`.
    pub fn for_output(cfg: &OutputConfig, default_hostname: &str) -> FrameEncoder {
        let format = MessageFormat::new(&cfg.header_keys(), default_hostname, std::process::id());
        let (framing, max, oversize) = match cfg {
            OutputConfig::Udp(c) => (WireFraming::Datagram, Some(c.max_message_bytes), c.oversize),
            OutputConfig::Tcp(c) => (c.framing.into(), Some(c.max_message_bytes), c.oversize),
            OutputConfig::Tls(c) => (c.framing.into(), Some(c.max_message_bytes), c.oversize),
            OutputConfig::File(_) | OutputConfig::Stdout(_) => {
                (WireFraming::Lf, None, Oversize::Send)
            }
            // A Kafka message is the message alone: no framing, capped like a datagram.
            OutputConfig::Kafka(c) => {
                (WireFraming::Datagram, Some(c.max_message_bytes), c.oversize)
            }
        };
        FrameEncoder::new(format, framing, max, oversize)
    }

    pub(crate) fn new(
        format: MessageFormat,
        framing: WireFraming,
        max_message_bytes: Option<usize>,
        oversize: Oversize,
    ) -> Self {
        FrameEncoder {
            format,
            framing,
            max_message_bytes,
            oversize,
            scratch: Vec::with_capacity(4096),
            truncator: Truncator::default(),
            tap: None,
        }
    }

    pub fn framing(&self) -> WireFraming {
        self.framing
    }

    pub fn message_format(&self) -> Format {
        self.format.format()
    }

    /// Sets the syslog timestamp for the following events (once per batch is enough).
    pub fn set_time(&mut self, now: SystemTime) {
        self.format.set_time(now);
    }

    /// Copies every frame this encoder makes to the wire tap: the tap then holds exactly what
    /// this output sends, with its timestamps. UDP datagrams get a line feed in the copy, so the
    /// file can be read line by line.
    pub fn copy_to(&mut self, tap: TapHandle) {
        self.tap = Some(tap);
    }

    /// Appends the framed message for `ev` to `out` (or nothing, if it is dropped), and copies
    /// it to the wire tap if there is one.
    pub fn encode(&mut self, ev: &OutEvent, out: &mut Vec<u8>) -> Encoded {
        let start = out.len();
        let encoded = self.frame(ev, out);
        if let (Some(tap), Encoded::Framed { .. }) = (&self.tap, encoded) {
            let mut wire = out[start..].to_vec();
            if self.framing == WireFraming::Datagram {
                wire.push(b'\n');
            }
            tap.send(TapRecord::wire(wire));
        }
        encoded
    }

    /// The framed message for `ev`, appended to `out`.
    fn frame(&mut self, ev: &OutEvent, out: &mut Vec<u8>) -> Encoded {
        match self.framing {
            // The message goes straight into `out`; framing (if any) is a trailer.
            WireFraming::Datagram | WireFraming::Lf => {
                let start = out.len();
                let cef_start = self.format.write(out, ev);
                let truncated = match self.fit(out, start, cef_start) {
                    Ok(t) => t,
                    Err(()) => {
                        out.truncate(start);
                        return Encoded::Dropped;
                    }
                };
                let mut newlines_replaced = 0;
                if self.framing == WireFraming::Lf {
                    newlines_replaced = super::framing::replace_line_breaks(&mut out[start..]);
                    out.push(b'\n');
                }
                Encoded::Framed {
                    truncated,
                    newlines_replaced,
                }
            }
            // The length prefix comes first: build the message aside, then frame it.
            WireFraming::OctetCounting => {
                let mut msg = std::mem::take(&mut self.scratch);
                msg.clear();
                let cef_start = self.format.write(&mut msg, ev);
                let result = match self.fit(&mut msg, 0, cef_start) {
                    Ok(truncated) => {
                        frame_into(WireFraming::OctetCounting, &msg, out);
                        Encoded::Framed {
                            truncated,
                            newlines_replaced: 0,
                        }
                    }
                    Err(()) => Encoded::Dropped,
                };
                self.scratch = msg;
                result
            }
        }
    }

    /// Applies the size cap to `buf[msg_start..]`: Ok(truncated?) or Err(()) to drop.
    fn fit(&mut self, buf: &mut Vec<u8>, msg_start: usize, cef_start: usize) -> Result<bool, ()> {
        let Some(max) = self.max_message_bytes else {
            return Ok(false);
        };
        if buf.len() - msg_start <= max {
            return Ok(false);
        }
        match self.oversize {
            Oversize::Send => Ok(false),
            Oversize::Drop => Err(()),
            Oversize::Truncate => self
                .truncator
                .fit(buf, msg_start, cef_start, max)
                .map_err(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::syslog::framing::parse;

    fn cfg(toml_text: &str) -> OutputConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn ev(cef: String) -> OutEvent {
        OutEvent {
            seq: 1,
            cef: cef.into(),
            cef_severity: 5,
            msgid: "-",
        }
    }

    #[test]
    fn udp_datagrams_are_capped_truncated_or_dropped() {
        let long = format!("CEF:0|V|P|1|id|N|5|src=10.0.0.1 msg={}", "ä".repeat(400));
        let mut e = FrameEncoder::for_output(
            &cfg("transport = \"udp\"\nhost = \"h\"\nmax_message_bytes = 600"),
            "host",
        );
        let mut out = Vec::new();
        assert_eq!(
            e.encode(&ev(long.clone()), &mut out),
            Encoded::Framed {
                truncated: true,
                newlines_replaced: 0
            }
        );
        assert!(out.len() <= 600 && out.len() > 590, "{}", out.len());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("src=10.0.0.1 msg=ää"));

        let mut e = FrameEncoder::for_output(
            &cfg("transport = \"udp\"\nhost = \"h\"\nmax_message_bytes = 600\noversize = \"drop\""),
            "host",
        );
        let mut out = Vec::new();
        assert_eq!(e.encode(&ev(long.clone()), &mut out), Encoded::Dropped);
        assert!(out.is_empty());

        let mut e = FrameEncoder::for_output(
            &cfg("transport = \"udp\"\nhost = \"h\"\nmax_message_bytes = 600\noversize = \"send\""),
            "host",
        );
        let mut out = Vec::new();
        assert_eq!(
            e.encode(&ev(long.clone()), &mut out),
            Encoded::Framed {
                truncated: false,
                newlines_replaced: 0
            }
        );
        assert!(out.len() > 800);
    }

    #[test]
    fn octet_counted_frames_hold_the_capped_message() {
        let long = format!("CEF:0|V|P|1|id|N|5|msg={}", "x".repeat(10_000));
        let mut e = FrameEncoder::for_output(
            &cfg("transport = \"tcp\"\nhost = \"h\"\nframing = \"octet-counting\"\nbom = true"),
            "host",
        );
        let mut out = Vec::new();
        e.encode(&ev("CEF:0|V|P|1|id|N|5|a=b".into()), &mut out);
        e.encode(&ev(long), &mut out);
        let (first, used) = parse(WireFraming::OctetCounting, &out, 1 << 20)
            .unwrap()
            .unwrap();
        assert!(first.ends_with(b"\xEF\xBB\xBFCEF:0|V|P|1|id|N|5|a=b"));
        let (second, _) = parse(WireFraming::OctetCounting, &out[used..], 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(second.len(), 8192);
    }

    #[test]
    fn lf_frames_never_contain_a_raw_line_break() {
        let mut e = FrameEncoder::for_output(
            &cfg("transport = \"tcp\"\nhost = \"h\"\nframing = \"lf\""),
            "host",
        );
        let mut out = Vec::new();
        let r = e.encode(&ev("CEF:0|V|P|1|id|N|5|msg=a\nb".into()), &mut out);
        assert_eq!(
            r,
            Encoded::Framed {
                truncated: false,
                newlines_replaced: 1
            }
        );
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(out.ends_with(b"msg=a b\n"));
    }
}
