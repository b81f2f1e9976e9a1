//! Writes CEF lines into a caller's reused buffer: header, then extension pairs in call order.
//!
//! ```
//! use estreamer_cef::cef::{CefEncoder, Key};
//! let (src, msg) = (Key::new("src").unwrap(), Key::new("msg").unwrap());
//! let mut enc = CefEncoder::default();
//! let mut buf = Vec::new();
//! let mut line = enc.begin(&mut buf, "1:2000:3", "ET POLICY a | b", 7);
//! line.text(&src, "10.0.0.1").text(&msg, "x=y");
//! assert!(line.finish().is_empty());
//! assert_eq!(buf, b"CEF:0|Cisco|Firepower|6.0|1:2000:3|ET POLICY a \\| b|7|src=10.0.0.1 msg=x\\=y");
//! ```
//!
//! Per value, in this order: invalid UTF-8 → U+FFFD (`bytes_lossy`), cut to the key's limit in
//! characters, trailing spaces trimmed, empty values omitted (zero is a value and is kept), then
//! escaped in one pass. A key already in the line is dropped with a warning, never sent twice.
//!
//! Integer-typed keys (`in`, `out`, `fsize`, ports, …) are 32-bit signed in ArcSight. A number
//! outside that range is **clamped** to `i32::MIN..=i32::MAX` and reported
//! ([`Warning::NumberClamped`], [`KeyStats::clamped`](super::KeyStats)): a saturated value stays
//! parseable and visibly saturated, where an out-of-range one may be rejected by the connector.
//! Mappings that need the exact value of a 64-bit counter send it in a Long key (`cn1`..`cn3`,
//! with a label) as well; [`Key::value_type`] lets them check at load time. Long keys and
//! timestamps are clamped to `i64` (a counter of 2^63 or more, which only a corrupted or hostile
//! record holds, is written as 9223372036854775807 and reported like any clamp: sending the exact
//! digits would make ArcSight reject the Long value); numbers into String and custom keys are
//! written as given.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::dictionary::ValueType;
use super::escape::{
    append, escape_extension, escape_extension_checked, escape_header, extension_needs_escaping,
    header_needs_escaping, trimmed_len, truncation_point,
};
use super::header::{CLASS_ID_MAX_CHARS, CefHeader, NAME_MAX_CHARS, SEVERITY_MAX};
use super::key::{AddressKeys, CUSTOM_SLOT, Counter, Key};
use super::values;
use super::warning::{Field, Warning};

/// Encodes lines with one header configuration. Holds the per-line scratch state so that
/// encoding allocates nothing once the buffers have grown. One per thread.
#[derive(Debug, Default)]
pub struct CefEncoder {
    header: CefHeader,
    state: LineState,
}

/// Totals since the encoder was created (the per-line detail is in the warnings; per-key
/// totals are in [`Key::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncoderStats {
    pub lines: u64,
    pub truncated: u64,
    pub invalid_utf8: u64,
    pub control_chars: u64,
    pub duplicate_keys: u64,
    pub clamped: u64,
    pub not_finite: u64,
}

#[derive(Debug, Default)]
struct LineState {
    warnings: Vec<Warning>,
    /// Dictionary keys already in the line, by slot.
    seen: [u64; 4],
    /// Byte ranges, in the output buffer, of the custom keys already in the line.
    custom: Vec<(usize, usize)>,
    pairs: u32,
    /// Holds the lossy UTF-8 conversion of a value that had invalid bytes.
    scratch: String,
    stats: EncoderStats,
}

impl CefEncoder {
    pub fn new(header: CefHeader) -> CefEncoder {
        CefEncoder {
            header,
            state: LineState::default(),
        }
    }

    pub fn header(&self) -> &CefHeader {
        &self.header
    }

    pub fn stats(&self) -> EncoderStats {
        self.state.stats
    }

    /// Starts a line: appends `CEF:0|vendor|product|version|class_id|name|severity|` to `buf`
    /// (which is not cleared: a syslog header may already be in it). Class id and name are cut
    /// to 1023 and 512 characters and escaped; severity above 10 is written as 10.
    pub fn begin<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
        class_id: &str,
        name: &str,
        severity: u8,
    ) -> CefLine<'a> {
        let mut line = self.start(buf);
        line.header_text(Field::ClassId, class_id, CLASS_ID_MAX_CHARS, 0);
        line.buf.push(b'|');
        line.header_text(Field::Name, name, NAME_MAX_CHARS, 0);
        line.finish_header(severity);
        line
    }

    /// Like [`begin`](Self::begin) with a class id and name checked beforehand: one copy.
    pub fn begin_prepared<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
        header: &PreparedHeader,
        severity: u8,
    ) -> CefLine<'a> {
        let mut line = self.start(buf);
        line.buf.extend_from_slice(&header.0);
        line.finish_header(severity);
        line
    }

    /// Like [`begin`](Self::begin) for class id and name given as bytes that may not be valid
    /// UTF-8 (rule messages from eStreamer): invalid sequences become U+FFFD and are reported.
    pub fn begin_lossy<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
        class_id: &[u8],
        name: &[u8],
        severity: u8,
    ) -> CefLine<'a> {
        let mut line = self.start(buf);
        line.header_bytes(Field::ClassId, class_id, CLASS_ID_MAX_CHARS);
        line.buf.push(b'|');
        line.header_bytes(Field::Name, name, NAME_MAX_CHARS);
        line.finish_header(severity);
        line
    }

    fn start<'a>(&'a mut self, buf: &'a mut Vec<u8>) -> CefLine<'a> {
        let st = &mut self.state;
        st.warnings.clear();
        st.seen = [0; 4];
        st.custom.clear();
        st.pairs = 0;
        st.stats.lines += 1;
        buf.extend_from_slice(self.header.prefix());
        CefLine { buf, st }
    }
}

/// Whether an extension value goes on the wire exactly as it is, whatever the key (short of the
/// key's length limit): not empty, no trailing blank, nothing to escape. The metadata cache
/// checks each name once when it stores it, so that [`CefLine::plain`] can copy it.
pub fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && trimmed_len(value.as_bytes()) == value.len()
        && !extension_needs_escaping(value.as_bytes())
}

/// A constant text value (a mapping's label) checked once for one key: written by
/// [`CefLine::prepared`] as one copy, exactly as [`CefLine::text`] would write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared(Box<str>);

impl Prepared {
    /// `None` when the encoder would change the value for this key (cut, trimmed, escaped, or
    /// left out as empty): such a value goes through [`CefLine::text`], which reports it.
    pub fn new(key: &Key, value: &str) -> Option<Prepared> {
        let unchanged = is_plain(value) && truncation_point(value, key.raw_max_chars()).is_none();
        unchanged.then(|| Prepared(value.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A constant class id and name (most mapping tables' `class_id` and `name`), checked once:
/// [`CefEncoder::begin_prepared`] writes `class_id|name` as one copy, exactly as
/// [`CefEncoder::begin`] would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedHeader(Box<[u8]>);

impl PreparedHeader {
    /// `None` when the encoder would change either (cut or escaped): such values go through
    /// [`CefEncoder::begin`], which reports it.
    pub fn new(class_id: &str, name: &str) -> Option<PreparedHeader> {
        let unchanged = |v: &str, max| {
            truncation_point(v, max).is_none() && !header_needs_escaping(v.as_bytes())
        };
        (unchanged(class_id, CLASS_ID_MAX_CHARS) && unchanged(name, NAME_MAX_CHARS))
            .then(|| PreparedHeader(format!("{class_id}|{name}").into_bytes().into()))
    }
}

/// One line being written. Each method appends one pair (or nothing, for an empty value) and
/// returns `self` for chaining.
pub struct CefLine<'a> {
    buf: &'a mut Vec<u8>,
    st: &'a mut LineState,
}

impl<'a> CefLine<'a> {
    /// Pairs written so far (a value that came out empty wrote none).
    pub fn pairs(&self) -> u32 {
        self.st.pairs
    }

    /// Ends the line; returns what had to be changed in it (empty in the common case).
    pub fn finish(self) -> &'a [Warning] {
        let st: &'a LineState = self.st;
        &st.warnings
    }

    /// Warnings so far.
    pub fn warnings(&self) -> &[Warning] {
        &self.st.warnings
    }

    /// A text value.
    #[inline]
    pub fn text(&mut self, key: &Key, value: &str) -> &mut Self {
        self.put_str(key, value, 0);
        self
    }

    /// A constant checked beforehand ([`Prepared`]): the same pair as [`text`](Self::text) with
    /// the value, without checking it again.
    #[inline]
    pub fn prepared(&mut self, key: &Key, value: &Prepared) -> &mut Self {
        if self.open_pair(key) {
            append(self.buf, value.0.as_bytes());
        }
        self
    }

    /// A text value that [`is_plain`] accepted: copied as it is when it fits the key's limit,
    /// written like [`text`](Self::text) otherwise.
    #[inline]
    pub fn plain(&mut self, key: &Key, value: &str) -> &mut Self {
        // Fewer bytes than the limit in characters means fewer characters too.
        if value.len() > key.raw_max_chars() as usize {
            self.put_str(key, value, 0);
        } else if self.open_pair(key) {
            append(self.buf, value.as_bytes());
        }
        self
    }

    /// A byte string that should be UTF-8 but may not be (eStreamer strings): invalid sequences
    /// become U+FFFD, counted.
    #[inline]
    pub fn bytes_lossy(&mut self, key: &Key, value: &[u8]) -> &mut Self {
        // Fewer bytes than the limit: it fits whatever the characters (a replaced sequence is
        // one character too). The check and the escape are then one pass; trimming the bytes
        // is trimming the text, as the trimmed characters are ASCII.
        if value.len() <= key.raw_max_chars() as usize {
            let bytes = &value[..trimmed_len(value)];
            if bytes.is_empty() || !self.open_pair(key) {
                return self;
            }
            let (invalid, replaced) = match escape_extension_checked(self.buf, bytes) {
                Some(replaced) => (0, replaced),
                None => {
                    let mut scratch = std::mem::take(&mut self.st.scratch);
                    let invalid = lossy_into(&mut scratch, bytes);
                    let replaced = escape_extension(self.buf, scratch.as_bytes());
                    self.st.scratch = scratch;
                    (invalid, replaced)
                }
            };
            if invalid > 0 || replaced > 0 {
                self.value_warnings(
                    Field::Extension(key.clone()),
                    Some(key),
                    None,
                    invalid,
                    replaced,
                    key.raw_max_chars(),
                );
            }
            return self;
        }
        match std::str::from_utf8(value) {
            Ok(s) => self.put_str(key, s, 0),
            Err(_) => {
                let mut scratch = std::mem::take(&mut self.st.scratch);
                let replaced = lossy_into(&mut scratch, value);
                self.put_str(key, &scratch, replaced);
                self.st.scratch = scratch;
            }
        }
        self
    }

    /// A signed number (clamped to the key's type, see the module docs).
    #[inline]
    pub fn int(&mut self, key: &Key, value: i64) -> &mut Self {
        if self.open_pair(key) {
            let written = match key.value_type() {
                ValueType::Integer => value.clamp(i32::MIN as i64, i32::MAX as i64),
                _ => value,
            };
            self.digits(written);
            if written != value {
                self.clamped(key, value as i128, written);
            }
        }
        self
    }

    /// An unsigned number (clamped to the key's type, see the module docs).
    #[inline]
    pub fn uint(&mut self, key: &Key, value: u64) -> &mut Self {
        // Most numbers fit every numeric type: no clamping to look at.
        if value <= i32::MAX as u64 {
            if self.open_pair(key) {
                self.digits(value as u32);
            }
            return self;
        }
        self.wide_uint(key, value)
    }

    /// Appends a number's decimal digits (the value of a pair just opened).
    #[inline(always)]
    fn digits(&mut self, n: impl itoa::Integer) {
        append(self.buf, itoa::Buffer::new().format(n).as_bytes());
    }

    #[inline(never)]
    fn wide_uint(&mut self, key: &Key, value: u64) -> &mut Self {
        if value <= i64::MAX as u64 {
            return self.int(key, value as i64);
        }
        if self.open_pair(key) {
            let written = match key.value_type() {
                ValueType::Integer => i32::MAX as i64,
                ValueType::Long | ValueType::Timestamp => i64::MAX,
                _ => {
                    self.digits(value);
                    return self;
                }
            };
            self.digits(written);
            self.clamped(key, value as i128, written);
        }
        self
    }

    /// A floating-point number, shortest form that reads back exactly; NaN and infinities are
    /// omitted with a warning.
    pub fn float(&mut self, key: &Key, value: f64) -> &mut Self {
        if !value.is_finite() {
            self.st.stats.not_finite += 1;
            self.st
                .warnings
                .push(Warning::NotFinite { key: key.clone() });
            return self;
        }
        if self.open_pair(key) {
            let _ = write!(self.buf, "{value}");
        }
        self
    }

    /// A timestamp as CEF's epoch milliseconds, from eStreamer's seconds and microseconds.
    #[inline]
    pub fn timestamp(&mut self, key: &Key, seconds: i64, microseconds: u32) -> &mut Self {
        let ms = seconds
            .saturating_mul(1000)
            .saturating_add((microseconds / 1000) as i64);
        self.int(key, ms)
    }

    /// An IPv4 address in dotted-quad form.
    #[inline]
    pub fn ipv4(&mut self, key: &Key, addr: Ipv4Addr) -> &mut Self {
        if self.open_pair(key) {
            values::write_ipv4(self.buf, addr);
        }
        self
    }

    /// An IPv6 address in RFC 5952 form (`2001:db8::1`).
    #[inline]
    pub fn ipv6(&mut self, key: &Key, addr: Ipv6Addr) -> &mut Self {
        if self.open_pair(key) {
            values::write_ipv6(self.buf, addr);
        }
        self
    }

    /// An address into the right key of `keys`: IPv4 and IPv4-mapped IPv6 (`::ffff:a.b.c.d`,
    /// unwrapped) into `keys.v4`, other IPv6 into `keys.v6` followed by its label pair, the
    /// unspecified address `::` nowhere (eStreamer's "no address").
    pub fn address(&mut self, keys: &AddressKeys, addr: IpAddr) -> &mut Self {
        match addr {
            IpAddr::V4(v4) => self.ipv4(&keys.v4, v4),
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    self.ipv4(&keys.v4, v4)
                } else if v6.is_unspecified() {
                    self
                } else {
                    self.ipv6(&keys.v6, v6);
                    if let Some((label_key, text)) = &keys.v6_label {
                        self.text(label_key, text);
                    }
                    self
                }
            }
        }
    }

    /// A MAC address as six colon-separated upper-case hex octets (`00:0D:60:AF:1B:61`).
    #[inline]
    pub fn mac(&mut self, key: &Key, mac: [u8; 6]) -> &mut Self {
        if self.open_pair(key) {
            values::write_mac(self.buf, mac);
        }
        self
    }

    // -- internals ------------------------------------------------------------------------

    #[inline]
    fn put_str(&mut self, key: &Key, value: &str, invalid_utf8: u32) {
        let cut = truncation_point(value, key.raw_max_chars());
        let bytes = match cut {
            Some((at, _)) => &value.as_bytes()[..at],
            None => value.as_bytes(),
        };
        let bytes = &bytes[..trimmed_len(bytes)];
        if bytes.is_empty() || !self.open_pair(key) {
            return;
        }
        let replaced = escape_extension(self.buf, bytes);
        if cut.is_some() || invalid_utf8 > 0 || replaced > 0 {
            self.value_warnings(
                Field::Extension(key.clone()),
                Some(key),
                cut,
                invalid_utf8,
                replaced,
                key.raw_max_chars(),
            );
        }
    }

    #[cold]
    fn clamped(&mut self, key: &Key, given: i128, written: i64) {
        key.count(Counter::Clamped, 1);
        self.st.stats.clamped += 1;
        self.st.warnings.push(Warning::NumberClamped {
            key: key.clone(),
            given,
            written,
        });
    }

    /// Writes the separator and `key=` unless the key is already in the line (then the pair is
    /// dropped and reported: a duplicate key has undefined meaning to consumers).
    #[inline(always)]
    fn open_pair(&mut self, key: &Key) -> bool {
        let slot = key.slot();
        if slot == CUSTOM_SLOT {
            return self.open_custom_pair(key);
        }
        let (word, bit) = (((slot >> 6) & 3) as usize, 1u64 << (slot & 63));
        if self.st.seen[word] & bit != 0 {
            self.duplicate(key);
            return false;
        }
        self.st.seen[word] |= bit;
        self.write_key(key);
        true
    }

    fn open_custom_pair(&mut self, key: &Key) -> bool {
        let name = key.name().as_bytes();
        if self.st.custom.iter().any(|&(s, e)| &self.buf[s..e] == name) {
            self.duplicate(key);
            return false;
        }
        self.write_key(key);
        let end = self.buf.len() - 1; // before the '='
        self.st.custom.push((end - name.len(), end));
        true
    }

    #[inline(always)]
    fn write_key(&mut self, key: &Key) {
        let wire = key.wire();
        // No space between the seventh `|` and the first key.
        let wire = if self.st.pairs == 0 { &wire[1..] } else { wire };
        append(self.buf, wire);
        self.st.pairs += 1;
    }

    #[cold]
    fn duplicate(&mut self, key: &Key) {
        key.count(Counter::Duplicates, 1);
        self.st.stats.duplicate_keys += 1;
        self.st
            .warnings
            .push(Warning::DuplicateKey { key: key.clone() });
    }

    #[cold]
    fn value_warnings(
        &mut self,
        field: Field,
        key: Option<&Key>,
        cut: Option<(usize, usize)>,
        invalid_utf8: u32,
        replaced: u32,
        max: u32,
    ) {
        let st = &mut *self.st;
        if invalid_utf8 > 0 {
            key.inspect(|k| k.count(Counter::InvalidUtf8, invalid_utf8 as u64));
            st.stats.invalid_utf8 += invalid_utf8 as u64;
            st.warnings.push(Warning::InvalidUtf8 {
                field: field.clone(),
                replaced: invalid_utf8,
            });
        }
        if let Some((_, chars)) = cut {
            key.inspect(|k| k.count(Counter::Truncated, 1));
            st.stats.truncated += 1;
            st.warnings.push(Warning::Truncated {
                field: field.clone(),
                chars,
                max,
            });
        }
        if replaced > 0 {
            key.inspect(|k| k.count(Counter::ControlChars, replaced as u64));
            st.stats.control_chars += replaced as u64;
            st.warnings.push(Warning::ControlChars { field, replaced });
        }
    }

    fn header_text(&mut self, field: Field, value: &str, max: u32, invalid_utf8: u32) {
        let cut = truncation_point(value, max);
        let bytes = match cut {
            Some((at, _)) => &value.as_bytes()[..at],
            None => value.as_bytes(),
        };
        let replaced = escape_header(self.buf, bytes);
        if cut.is_some() || invalid_utf8 > 0 || replaced > 0 {
            self.value_warnings(field, None, cut, invalid_utf8, replaced, max);
        }
    }

    fn header_bytes(&mut self, field: Field, value: &[u8], max: u32) {
        match std::str::from_utf8(value) {
            Ok(s) => self.header_text(field, s, max, 0),
            Err(_) => {
                let mut scratch = std::mem::take(&mut self.st.scratch);
                let replaced = lossy_into(&mut scratch, value);
                self.header_text(field, &scratch, max, replaced);
                self.st.scratch = scratch;
            }
        }
    }

    fn finish_header(&mut self, severity: u8) {
        self.buf.push(b'|');
        if severity >= SEVERITY_MAX {
            self.buf.extend_from_slice(b"10");
            if severity > SEVERITY_MAX {
                self.st.stats.clamped += 1;
                self.st
                    .warnings
                    .push(Warning::SeverityClamped { given: severity });
            }
        } else {
            self.buf.push(b'0' + severity);
        }
        self.buf.push(b'|');
    }
}

/// `String::from_utf8_lossy` into a reused string; returns the number of U+FFFD written (one per
/// maximal invalid subsequence, as the standard library does).
fn lossy_into(out: &mut String, bytes: &[u8]) -> u32 {
    out.clear();
    let mut replaced = 0;
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
            replaced += 1;
        }
    }
    replaced
}
