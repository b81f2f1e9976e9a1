//! A checked extension key, resolved once (when a mapping table is loaded) so that encoding a
//! pair is a copy of pre-rendered bytes plus the value: no lookup, no validation per event.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::dictionary::{
    self, CUSTOM_KEY_MAX_CHARS, KeyCheck, KeyError, KeyInfo, KeyOptions, ValueType,
};

/// A key that may be sent: a dictionary key or a valid custom key (see
/// [`check_key`](super::dictionary::check_key)). Cheap to clone; clones share the counters.
#[derive(Clone)]
pub struct Key(Arc<KeyData>);

struct KeyData {
    name: Box<str>,
    /// `" name="`: the separator, the key and the equals sign, written with one copy.
    wire: Box<[u8]>,
    /// Limit in characters; `u32::MAX` when the standard gives none.
    max_chars: u32,
    value_type: ValueType,
    /// Position in the dictionary (duplicate-key bitset), or `CUSTOM_SLOT`.
    slot: u16,
    info: Option<&'static KeyInfo>,
    counters: Counters,
}

pub(crate) const CUSTOM_SLOT: u16 = u16::MAX;

#[derive(Default)]
struct Counters {
    truncated: AtomicU64,
    invalid_utf8: AtomicU64,
    control_chars: AtomicU64,
    clamped: AtomicU64,
    duplicates: AtomicU64,
}

/// How often something had to be changed or dropped for this key, since the key was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyStats {
    /// Values cut to the key's length limit.
    pub truncated: u64,
    /// Invalid UTF-8 sequences replaced by U+FFFD.
    pub invalid_utf8: u64,
    /// Control characters (other than CR, LF) replaced by a space.
    pub control_chars: u64,
    /// Numbers clamped to the key's type (Integer is 32-bit signed).
    pub clamped: u64,
    /// Pairs dropped because the key was already in the line.
    pub duplicates: u64,
}

pub(crate) enum Counter {
    Truncated,
    InvalidUtf8,
    ControlChars,
    Clamped,
    Duplicates,
}

impl Key {
    /// Checks `name` against the dictionary (default limits: `cs1`..`cs6` at 1023 characters).
    pub fn new(name: &str) -> Result<Key, KeyError> {
        Key::with_options(name, &KeyOptions::default())
    }

    /// Checks `name` against the dictionary with configured limits.
    pub fn with_options(name: &str, options: &KeyOptions) -> Result<Key, KeyError> {
        let (info, slot, value_type, max_chars) = match dictionary::check_key(name)? {
            KeyCheck::Predefined(info) => (
                Some(info),
                dictionary::slot(name).expect("a predefined key has a slot"),
                info.value_type,
                info.max_chars(options).unwrap_or(u32::MAX),
            ),
            KeyCheck::Custom => (None, CUSTOM_SLOT, ValueType::String, CUSTOM_KEY_MAX_CHARS),
        };
        Ok(Key::built(name, info, slot, value_type, max_chars))
    }

    /// A key sent as another producer sends it (a compatibility profile's `bytesIn`, `eventId`,
    /// `fsize` above 32 bits): not held to the dictionary's names or types, its value written as
    /// text (numbers exact, not clamped). It must still be a well-formed key; a header field or an
    /// out-of-range custom field (`cs7`) stays refused. Its duplicate check is by name.
    pub fn verbatim(name: &str) -> Result<Key, KeyError> {
        match dictionary::check_key(name) {
            Ok(_)
            | Err(
                KeyError::FullName { .. }
                | KeyError::WrongCase { .. }
                | KeyError::ConsumerOnly { .. },
            ) => {}
            Err(e) => return Err(e),
        }
        Ok(Key::built(
            name,
            None,
            CUSTOM_SLOT,
            ValueType::String,
            CUSTOM_KEY_MAX_CHARS,
        ))
    }

    /// The key's data, with its wire form ` name=` written once.
    fn built(
        name: &str,
        info: Option<&'static KeyInfo>,
        slot: u16,
        value_type: ValueType,
        max_chars: u32,
    ) -> Key {
        let mut wire = Vec::with_capacity(name.len() + 2);
        wire.push(b' ');
        wire.extend_from_slice(name.as_bytes());
        wire.push(b'=');
        Key(Arc::new(KeyData {
            name: name.into(),
            wire: wire.into(),
            max_chars,
            value_type,
            slot,
            info,
            counters: Counters::default(),
        }))
    }

    /// The key as written on the wire.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The dictionary type; custom keys are strings. The mapping layer uses this to check what
    /// it puts where (e.g. a 64-bit counter into an Integer key).
    pub fn value_type(&self) -> ValueType {
        self.0.value_type
    }

    /// The length limit in characters, `None` where the standard gives none.
    pub fn max_chars(&self) -> Option<u32> {
        (self.0.max_chars != u32::MAX).then_some(self.0.max_chars)
    }

    /// The dictionary row, `None` for a custom key.
    pub fn info(&self) -> Option<&'static KeyInfo> {
        self.0.info
    }

    pub fn is_custom(&self) -> bool {
        self.0.info.is_none()
    }

    pub fn stats(&self) -> KeyStats {
        let c = &self.0.counters;
        KeyStats {
            truncated: c.truncated.load(Ordering::Relaxed),
            invalid_utf8: c.invalid_utf8.load(Ordering::Relaxed),
            control_chars: c.control_chars.load(Ordering::Relaxed),
            clamped: c.clamped.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
        }
    }

    #[inline(always)]
    pub(crate) fn wire(&self) -> &[u8] {
        &self.0.wire
    }

    #[inline(always)]
    pub(crate) fn slot(&self) -> u16 {
        self.0.slot
    }

    #[inline(always)]
    pub(crate) fn raw_max_chars(&self) -> u32 {
        self.0.max_chars
    }

    pub(crate) fn count(&self, counter: Counter, n: u64) {
        let c = &self.0.counters;
        let a = match counter {
            Counter::Truncated => &c.truncated,
            Counter::InvalidUtf8 => &c.invalid_utf8,
            Counter::ControlChars => &c.control_chars,
            Counter::Clamped => &c.clamped,
            Counter::Duplicates => &c.duplicates,
        };
        a.fetch_add(n, Ordering::Relaxed);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.0.name == other.0.name
    }
}
impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.0.name)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.name)
    }
}

/// The keys one address goes to: IPv4 (and IPv4-mapped IPv6) into `v4`, other IPv6 into `v6`
/// with its label pair, `::` nowhere. This is what the standard's "Special Mappings" prescribe
/// (and what eNcore does): `src`/`dst`/`dvc` are IPv4-only fields.
#[derive(Debug, Clone)]
pub struct AddressKeys {
    pub v4: Key,
    pub v6: Key,
    /// Label key and text sent with an IPv6 value (`c6a2Label=Source IPv6 Address`).
    pub v6_label: Option<(Key, Box<str>)>,
}

impl AddressKeys {
    /// `src`, or `c6a2` labelled `Source IPv6 Address`.
    pub fn source() -> AddressKeys {
        AddressKeys::conventional("src", "c6a2")
    }

    /// `dst`, or `c6a3` labelled `Destination IPv6 Address`.
    pub fn destination() -> AddressKeys {
        AddressKeys::conventional("dst", "c6a3")
    }

    /// `dvc`, or `c6a1` labelled `Device IPv6 Address`.
    pub fn device() -> AddressKeys {
        AddressKeys::conventional("dvc", "c6a1")
    }

    fn conventional(v4: &str, v6: &str) -> AddressKeys {
        let known = "dictionary keys are valid";
        let v6_key = Key::new(v6).expect(known);
        let info = v6_key.info().expect(known);
        let label_key = Key::new(info.label_key.expect(known)).expect(known);
        let text = info.conventional_label.expect(known);
        AddressKeys {
            v4: Key::new(v4).expect(known),
            v6: v6_key,
            v6_label: Some((label_key, text.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_keys_skip_the_dictionary_rules_but_not_the_syntax() {
        // eNcore's keys: a dictionary full name, a connector-only key, an Integer key unclamped.
        for name in ["bytesIn", "eventId", "fsize"] {
            let k = Key::verbatim(name).unwrap();
            assert_eq!(k.value_type(), ValueType::String, "{name}");
            assert!(k.is_custom(), "{name}");
        }
        assert!(Key::new("bytesIn").is_err() && Key::new("eventId").is_err());
        // Still refused: not a key at all, a header field, a custom field CEF does not have.
        for bad in ["", "bytes In", "severity", "cs7"] {
            assert!(Key::verbatim(bad).is_err(), "{bad:?}");
        }
    }
}
