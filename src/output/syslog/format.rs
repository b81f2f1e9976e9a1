//! Syslog message formats: RFC 5424, RFC 3164, or the bare CEF line.
//!
//! Everything that does not change per event (PRI text per severity, HOSTNAME, APP-NAME, PROCID,
//! the timestamp within one second) is rendered once; a message is then a handful of
//! `extend_from_slice` calls into the caller's reused buffer.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, Timelike};

use crate::config::output::{Format, HeaderKeys};
use crate::output::OutEvent;

/// UTF-8 byte order mark, written before an RFC 5424 MSG when `bom = true`.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// RFC 5424 field limits (section 6).
pub const HOSTNAME_MAX: usize = 255;
pub const APP_NAME_MAX: usize = 48;
pub const PROCID_MAX: usize = 128;
pub const MSGID_MAX: usize = 32;
/// RFC 3164 TAG limit.
pub const TAG_MAX: usize = 32;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Renders syslog messages for one output.
#[derive(Debug, Clone)]
pub struct MessageFormat {
    format: Format,
    /// Per CEF severity 0..=10: `<PRI>1 ` (5424) or `<PRI>` (3164).
    pri: [Vec<u8>; 11],
    /// 5424: ` HOSTNAME APP-NAME PROCID `; 3164: ` HOSTNAME TAG: ` or ` HOSTNAME `.
    middle: Vec<u8>,
    bom: bool,
    clock: Clock,
}

/// The timestamp text for the current time, re-rendered fully only when the second changes.
#[derive(Debug, Clone)]
struct Clock {
    /// Second the cached text is for (`i64::MIN` = none yet).
    second: i64,
    text: [u8; 32],
    len: usize,
    /// Length of the per-second part (5424: up to and including the `.`).
    second_len: usize,
}

impl MessageFormat {
    /// `default_hostname` is used when the config has no `hostname`; `procid` is our PID.
    pub(crate) fn new(keys: &HeaderKeys<'_>, default_hostname: &str, procid: u32) -> MessageFormat {
        let mut pri: [Vec<u8>; 11] = Default::default();
        for (cef_sev, p) in pri.iter_mut().enumerate() {
            let sev = keys.severity_map.syslog_severity(cef_sev as u8).0 as u32;
            let prival = keys.facility.0 as u32 * 8 + sev;
            p.push(b'<');
            push_decimal(p, prival as usize);
            p.push(b'>');
            if keys.format == Format::Rfc5424 {
                p.extend_from_slice(b"1 ");
            }
        }
        // RFC 3164 wants the host name without its domain; an explicit `hostname` is kept as is.
        let hostname = match keys.hostname {
            Some(h) => h,
            None if keys.format == Format::Rfc3164
                && default_hostname.parse::<std::net::IpAddr>().is_err() =>
            {
                default_hostname
                    .split('.')
                    .next()
                    .unwrap_or(default_hostname)
            }
            None => default_hostname,
        };
        let mut middle = Vec::with_capacity(64);
        match keys.format {
            Format::Rfc5424 => {
                middle.push(b' ');
                push_header_field(&mut middle, hostname, HOSTNAME_MAX);
                middle.push(b' ');
                push_header_field(&mut middle, keys.app_name, APP_NAME_MAX);
                middle.push(b' ');
                push_header_field(&mut middle, &procid.to_string(), PROCID_MAX);
                middle.push(b' ');
            }
            Format::Rfc3164 => {
                middle.push(b' ');
                push_header_field(&mut middle, hostname, HOSTNAME_MAX);
                middle.push(b' ');
                if keys.app_name != "-" {
                    // A TAG ends at the first character that is not part of a name; keep ':' and
                    // '[' out so receivers find the same TAG we meant.
                    let tag: String = keys
                        .app_name
                        .chars()
                        .map(|c| {
                            if c.is_ascii_graphic() && c != ':' && c != '[' && c != ']' {
                                c
                            } else {
                                '_'
                            }
                        })
                        .take(TAG_MAX)
                        .collect();
                    middle.extend_from_slice(tag.as_bytes());
                    middle.extend_from_slice(b": ");
                }
            }
            Format::Cef => {}
        }
        let mut f = MessageFormat {
            format: keys.format,
            pri,
            middle,
            bom: keys.bom && keys.format == Format::Rfc5424,
            clock: Clock {
                second: i64::MIN,
                text: [0; 32],
                len: 0,
                second_len: 0,
            },
        };
        f.set_time(SystemTime::now());
        f
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Sets the time written into the following messages (call once per batch).
    pub fn set_time(&mut self, now: SystemTime) {
        let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs() as i64;
        let c = &mut self.clock;
        if secs != c.second {
            let dt = DateTime::from_timestamp(secs, 0).unwrap_or_default();
            let mut t = Vec::with_capacity(32);
            match self.format {
                Format::Rfc5424 => {
                    push_padded(&mut t, dt.year() as u32, 4);
                    t.push(b'-');
                    push_padded(&mut t, dt.month(), 2);
                    t.push(b'-');
                    push_padded(&mut t, dt.day(), 2);
                    t.push(b'T');
                    push_padded(&mut t, dt.hour(), 2);
                    t.push(b':');
                    push_padded(&mut t, dt.minute(), 2);
                    t.push(b':');
                    push_padded(&mut t, dt.second(), 2);
                    t.push(b'.');
                }
                Format::Rfc3164 => {
                    t.extend_from_slice(MONTHS[dt.month0() as usize]);
                    t.push(b' ');
                    let day = dt.day();
                    t.push(if day < 10 {
                        b' '
                    } else {
                        b'0' + (day / 10) as u8
                    });
                    t.push(b'0' + (day % 10) as u8);
                    t.push(b' ');
                    push_padded(&mut t, dt.hour(), 2);
                    t.push(b':');
                    push_padded(&mut t, dt.minute(), 2);
                    t.push(b':');
                    push_padded(&mut t, dt.second(), 2);
                }
                Format::Cef => {}
            }
            c.text[..t.len()].copy_from_slice(&t);
            c.second_len = t.len();
            c.len = t.len();
            c.second = secs;
        }
        if self.format == Format::Rfc5424 {
            let mut micros = d.subsec_micros();
            let start = c.second_len;
            for i in (0..6).rev() {
                c.text[start + i] = b'0' + (micros % 10) as u8;
                micros /= 10;
            }
            c.text[start + 6] = b'Z';
            c.len = start + 7;
        }
    }

    /// Appends the message for `ev` to `out` and returns the offset in `out` where the CEF text
    /// starts (everything before it is syslog header and BOM).
    pub fn write(&self, out: &mut Vec<u8>, ev: &OutEvent) -> usize {
        match self.format {
            Format::Cef => {}
            Format::Rfc5424 => {
                out.extend_from_slice(&self.pri[ev.cef_severity.min(10) as usize]);
                out.extend_from_slice(&self.clock.text[..self.clock.len]);
                out.extend_from_slice(&self.middle);
                push_msgid(out, ev.msgid);
                out.extend_from_slice(b" - ");
                if self.bom {
                    out.extend_from_slice(BOM);
                }
            }
            Format::Rfc3164 => {
                out.extend_from_slice(&self.pri[ev.cef_severity.min(10) as usize]);
                out.extend_from_slice(&self.clock.text[..self.clock.len]);
                out.extend_from_slice(&self.middle);
            }
        }
        let cef_start = out.len();
        out.extend_from_slice(ev.cef.as_bytes());
        cef_start
    }
}

fn push_msgid(out: &mut Vec<u8>, msgid: &str) {
    let b = msgid.as_bytes();
    if !b.is_empty() && b.len() <= MSGID_MAX && b.iter().all(|&c| (0x21..=0x7e).contains(&c)) {
        out.extend_from_slice(b);
    } else {
        push_header_field(out, msgid, MSGID_MAX);
    }
}

/// Writes an RFC 5424 header field: printable US-ASCII only (others become `_`), at most `max`
/// characters, `-` when empty.
pub(crate) fn push_header_field(out: &mut Vec<u8>, value: &str, max: usize) {
    if value.is_empty() {
        out.push(b'-');
        return;
    }
    for c in value.chars().take(max) {
        out.push(if c.is_ascii_graphic() { c as u8 } else { b'_' });
    }
}

fn push_padded(out: &mut Vec<u8>, v: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut n = v;
    let mut i = digits.len();
    while n > 0 && i > 0 {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let used = digits.len() - i;
    let start = digits.len() - used.max(width);
    out.extend_from_slice(&digits[start..]);
}

/// Appends `n` in decimal without leading zeros.
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::output::{Facility, SeverityMap};
    use std::time::Duration;
    use syslog_loose::{Protocol, SyslogFacility, SyslogSeverity, Variant, parse_message};

    fn keys(format: Format, app: &str, host: Option<&'static str>) -> HeaderKeys<'static> {
        HeaderKeys {
            format,
            facility: Facility(16),
            severity_map: SeverityMap::default(),
            hostname: host,
            app_name: Box::leak(app.to_string().into_boxed_str()),
            bom: true,
        }
    }

    fn ev(cef: &str, sev: u8, msgid: &'static str) -> OutEvent {
        OutEvent {
            seq: 1,
            cef: cef.into(),
            cef_severity: sev,
            msgid,
        }
    }

    // 2024-05-01T10:34:56.123456Z
    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(1_714_559_696_123_456)
    }

    #[test]
    fn rfc5424_exact_bytes() {
        let mut f = MessageFormat::new(
            &keys(Format::Rfc5424, "estreamer-cef", Some("fwd01.example.com")),
            "x",
            4242,
        );
        f.set_time(t0());
        let mut out = Vec::new();
        let at = f.write(
            &mut out,
            &ev("CEF:0|a|b|c|d|e|7|src=1.2.3.4", 7, "INTRUSION"),
        );
        let expected = b"<132>1 2024-05-01T10:34:56.123456Z fwd01.example.com estreamer-cef 4242 INTRUSION - \xEF\xBB\xBFCEF:0|a|b|c|d|e|7|src=1.2.3.4";
        assert_eq!(out, expected.to_vec(), "{}", String::from_utf8_lossy(&out));
        assert_eq!(&out[at..at + 4], b"CEF:");
    }

    #[test]
    fn rfc5424_parsed_back_by_syslog_loose() {
        let mut f = MessageFormat::new(
            &keys(Format::Rfc5424, "estreamer-cef", Some("h.example")),
            "x",
            77,
        );
        let cef = "CEF:0|Cisco|Firepower|7.2|1:2:3|Name \\| pipe|9|msg=a\\=b suser=Jörg 日本";
        for (sev, want) in [
            (0u8, SyslogSeverity::SEV_INFO),
            (5, SyslogSeverity::SEV_NOTICE),
            (8, SyslogSeverity::SEV_WARNING),
            (10, SyslogSeverity::SEV_CRIT),
        ] {
            f.set_time(t0() + Duration::from_secs(sev as u64 * 3700));
            let mut out = Vec::new();
            f.write(&mut out, &ev(cef, sev, "-"));
            let text = std::str::from_utf8(&out).unwrap();
            let m = parse_message(text, Variant::RFC5424);
            assert_eq!(m.protocol, Protocol::RFC5424(1));
            assert_eq!(m.facility, Some(SyslogFacility::LOG_LOCAL0));
            assert_eq!(m.severity, Some(want));
            assert_eq!(m.hostname, Some("h.example"));
            assert_eq!(m.appname, Some("estreamer-cef"));
            assert_eq!(m.procid.map(|p| p.to_string()), Some("77".to_string()));
            assert_eq!(m.msgid, None, "NILVALUE MSGID");
            assert!(m.structured_data.is_empty());
            let ts = m.timestamp.unwrap();
            let sent = DateTime::<chrono::Utc>::from(t0() + Duration::from_secs(sev as u64 * 3700));
            assert_eq!(ts, sent);
            assert_eq!(m.msg.trim_start_matches('\u{feff}'), cef);
        }
    }

    #[test]
    fn header_fields_are_sanitised_and_limited() {
        let long_app = "a".repeat(60);
        let k = keys(Format::Rfc5424, &long_app, Some("bad host\u{e9}"));
        let f = MessageFormat::new(&k, "x", 1);
        let mut out = Vec::new();
        f.write(
            &mut out,
            &ev(
                "CEF:0|a|b|c|d|e|1|",
                1,
                "A MSGID THAT IS MUCH TOO LONG FOR RFC 5424",
            ),
        );
        let text = String::from_utf8(out).unwrap();
        let fields: Vec<&str> = text.splitn(8, ' ').collect();
        assert_eq!(fields[2], "bad_host_");
        assert_eq!(fields[3].len(), APP_NAME_MAX);
        assert_eq!(fields[5], "A_MSGID_THAT_IS_MUCH_TOO_LONG_FO");
        assert_eq!(fields[5].len(), MSGID_MAX);
        assert_eq!(fields[6], "-");
        // empty msgid / app name → NILVALUE
        let f = MessageFormat::new(&keys(Format::Rfc5424, "-", Some("h")), "x", 1);
        let mut out = Vec::new();
        f.write(&mut out, &ev("CEF:0|a|b|c|d|e|1|", 1, ""));
        let m = parse_message(std::str::from_utf8(&out).unwrap(), Variant::RFC5424);
        assert_eq!((m.appname, m.msgid), (None, None));
    }

    #[test]
    fn rfc3164_exact_bytes_space_padded_day_utc() {
        let mut f = MessageFormat::new(
            &keys(Format::Rfc3164, "estreamer-cef", Some("fwd01")),
            "x",
            1,
        );
        f.set_time(t0());
        let mut out = Vec::new();
        f.write(&mut out, &ev("CEF:0|a|b|c|d|e|3|x=1", 3, "-"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<134>May  1 10:34:56 fwd01 estreamer-cef: CEF:0|a|b|c|d|e|3|x=1"
        );
        f.set_time(t0() + Duration::from_secs(86_400 * 230)); // 2024-12-17
        let mut out = Vec::new();
        f.write(&mut out, &ev("CEF:0|a|b|c|d|e|3|x=1", 9, "-"));
        assert!(
            String::from_utf8(out)
                .unwrap()
                .starts_with("<130>Dec 17 10:34:56 fwd01 ")
        );
        let f = MessageFormat::new(&keys(Format::Rfc3164, "-", Some("fwd01")), "x", 1);
        let mut out = Vec::new();
        f.write(&mut out, &ev("CEF:0|a|b|c|d|e|3|x=1", 3, "-"));
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with(" fwd01 CEF:0|a|b|c|d|e|3|x=1"),
            "no TAG with app_name = \"-\""
        );
    }

    #[test]
    fn rfc3164_parsed_back_by_syslog_loose() {
        let mut f = MessageFormat::new(
            &keys(Format::Rfc3164, "estreamer-cef", Some("fwd01")),
            "x",
            1,
        );
        for day in [0u64, 9, 20] {
            let t = t0() + Duration::from_secs(86_400 * day);
            f.set_time(t);
            let mut out = Vec::new();
            let cef = "CEF:0|a|b|c|d|e|7|msg=x\\=y suser=Jörg";
            f.write(&mut out, &ev(cef, 7, "-"));
            let text = std::str::from_utf8(&out).unwrap();
            let m = syslog_loose::parse_message_with_year_tz(
                text,
                |_| 2024,
                Some(chrono::FixedOffset::east_opt(0).unwrap()),
                Variant::RFC3164,
            );
            assert_eq!(m.protocol, Protocol::RFC3164);
            assert_eq!(m.facility, Some(SyslogFacility::LOG_LOCAL0));
            assert_eq!(m.severity, Some(SyslogSeverity::SEV_WARNING));
            assert_eq!(m.hostname, Some("fwd01"));
            assert_eq!(m.appname, Some("estreamer-cef"));
            assert_eq!(m.msg, cef);
            let sent = DateTime::<chrono::Utc>::from(t);
            assert_eq!(m.timestamp.unwrap(), sent - Duration::from_micros(123_456));
        }
    }

    #[test]
    fn default_hostname_is_the_fqdn_in_5424_and_the_short_name_in_3164() {
        let mut out = Vec::new();
        MessageFormat::new(&keys(Format::Rfc5424, "a", None), "fwd01.example.com", 1)
            .write(&mut out, &ev("CEF:0|a|b|c|d|e|1|", 1, "-"));
        assert!(String::from_utf8_lossy(&out).contains("Z fwd01.example.com a 1 "));
        let mut out = Vec::new();
        MessageFormat::new(&keys(Format::Rfc3164, "a", None), "fwd01.example.com", 1)
            .write(&mut out, &ev("CEF:0|a|b|c|d|e|1|", 1, "-"));
        assert!(String::from_utf8_lossy(&out).contains(" fwd01 a: CEF:0"));
        let mut out = Vec::new();
        MessageFormat::new(&keys(Format::Rfc3164, "a", None), "192.0.2.1", 1)
            .write(&mut out, &ev("CEF:0|a|b|c|d|e|1|", 1, "-"));
        assert!(String::from_utf8_lossy(&out).contains(" 192.0.2.1 a: CEF:0"));
        let mut out = Vec::new();
        MessageFormat::new(&keys(Format::Rfc3164, "a", Some("fw.example")), "x", 1)
            .write(&mut out, &ev("CEF:0|a|b|c|d|e|1|", 1, "-"));
        assert!(
            String::from_utf8_lossy(&out).contains(" fw.example a: CEF:0"),
            "explicit hostname kept"
        );
    }

    #[test]
    fn cef_format_is_the_bare_line_and_micros_update_within_a_second() {
        let f = MessageFormat::new(&keys(Format::Cef, "estreamer-cef", Some("h")), "x", 1);
        let mut out = Vec::new();
        assert_eq!(f.write(&mut out, &ev("CEF:0|a|b|c|d|e|3|x=1", 3, "-")), 0);
        assert_eq!(out, b"CEF:0|a|b|c|d|e|3|x=1");
        let mut f = MessageFormat::new(&keys(Format::Rfc5424, "a", Some("h")), "x", 1);
        f.set_time(t0());
        f.set_time(t0() + Duration::from_micros(7));
        let mut out = Vec::new();
        f.write(&mut out, &ev("CEF:0|a|b|c|d|e|3|", 3, "-"));
        assert!(String::from_utf8_lossy(&out).contains(" 2024-05-01T10:34:56.123463Z "));
    }
}
