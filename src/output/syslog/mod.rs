//! The syslog side of the outputs: a CEF event becomes a syslog message
//! ([`format`](mod@format): RFC 5424, RFC 3164 or bare CEF), capped in size ([`truncate`]), framed
//! for its transport ([`framing`]: octet counting or LF), all in one pass by [`encoder`].

pub mod encoder;
pub mod format;
pub mod framing;
pub mod hostname;
pub mod truncate;
