//! Cache keys built from record fields, on the stack.
//!
//! Every key part has one canonical encoding so that a metadata record and an event that refer to
//! the same thing build the same key: integers as 8 bytes big-endian whatever their wire width,
//! UUIDs and 128-bit values as their 16 bytes, 160/256-bit values and hash strings as lowercase
//! hex text, text as
//! its bytes. Parts are separated by their length so ("ab", "c") ≠ ("a", "bc").

use std::hash::{Hash, Hasher};

use crate::decode::Value;

/// Longest key: a (u32, UUID) pair is 26 bytes, a SHA-256 as hex 65; text parts are cut to fit.
pub const MAX_KEY: usize = 72;
// Keys compare word by word.
const _: () = assert!(MAX_KEY.is_multiple_of(8));

/// A one-part key as a number (see [`Key::short`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Short {
    Int(u64),
    Wide(u128),
    /// Any other key of at most 32 bytes (two parts such as a policy UUID and a rule id, an
    /// IPv4 address), zero-padded: the parts carry their lengths, so the padding is unambiguous.
    Compact([u64; 4]),
}

/// A value whose key part is its own bytes (no conversion).
enum Part<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

/// Integers, UUIDs, addresses, MACs and 128-bit values are keyed by their bytes; other hex
/// values and text by a conversion (`None`).
#[inline]
fn raw_part<'a>(v: &Value<'a>) -> Option<Part<'a>> {
    match *v {
        Value::Int(i) => Some(Part::Int(i)),
        Value::Uuid(b) | Value::Ip(b) | Value::Mac(b) => Some(Part::Bytes(b)),
        // A 128-bit value is a UUID typed as u128 by the catalog (security context, SSL
        // policy): key it like the UUID its metadata record carries.
        Value::Hex(b) if b.len() == 16 => Some(Part::Bytes(b)),
        _ => None,
    }
}

/// Builds the [`Short::Compact`] form of the key [`Key::push_value`] would build from these
/// values, on the stack; `None` when a value is keyed by a conversion (text, hex) or the key
/// would be longer than 32 bytes (then build the [`Key`]).
#[inline]
pub fn compact_of(values: &[Value]) -> Option<[u64; 4]> {
    let mut b = [0u8; 32];
    let mut at = 0;
    for v in values {
        match raw_part(v)? {
            Part::Int(i) if at + 9 <= 32 => {
                b[at] = 8;
                b[at + 1..at + 9].copy_from_slice(&i.to_be_bytes());
                at += 9;
            }
            Part::Bytes(x) if at + 1 + x.len() <= 32 => {
                b[at] = x.len() as u8;
                // Fixed-size copies for UUIDs and IPv4 addresses (no call to memcpy).
                match x.len() {
                    16 => b[at + 1..at + 17].copy_from_slice(&x[..16]),
                    4 => b[at + 1..at + 5].copy_from_slice(&x[..4]),
                    n => b[at + 1..at + 1 + n].copy_from_slice(x),
                }
                at += 1 + x.len();
            }
            _ => return None,
        }
    }
    Some(words(&b))
}

fn words(b: &[u8; 32]) -> [u64; 4] {
    let w = |i: usize| u64::from_ne_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or_default());
    [w(0), w(1), w(2), w(3)]
}

#[derive(Clone, Copy)]
pub struct Key {
    len: u8,
    bytes: [u8; MAX_KEY],
}

impl Key {
    pub const fn new() -> Key {
        Key {
            len: 0,
            bytes: [0; MAX_KEY],
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    fn push(&mut self, part: &[u8]) {
        let room = MAX_KEY - self.len as usize;
        if room == 0 {
            return;
        }
        let n = part.len().min(room - 1).min(255);
        self.bytes[self.len as usize] = n as u8;
        self.bytes[self.len as usize + 1..self.len as usize + 1 + n].copy_from_slice(&part[..n]);
        self.len += (n + 1) as u8;
    }

    pub fn push_int(&mut self, v: u64) {
        // The same bytes as `push`, with a fixed-size copy (most keys are integers).
        let at = self.len as usize;
        if at + 9 <= MAX_KEY {
            self.bytes[at] = 8;
            self.bytes[at + 1..at + 9].copy_from_slice(&v.to_be_bytes());
            self.len += 9;
        } else {
            self.push(&v.to_be_bytes());
        }
    }

    pub fn push_text(&mut self, t: &[u8]) {
        self.push(t);
    }

    /// Adds a field value in its canonical key encoding.
    pub fn push_value(&mut self, v: &Value) {
        match raw_part(v) {
            Some(Part::Int(i)) => return self.push_int(i),
            Some(Part::Bytes(b)) => return self.push(b),
            None => {}
        }
        match *v {
            Value::Int(_) | Value::Uuid(_) | Value::Ip(_) | Value::Mac(_) => {}
            Value::Hex(b) => {
                let mut hex = [0u8; 64];
                let n = b.len().min(32);
                for (i, x) in b[..n].iter().enumerate() {
                    const H: &[u8; 16] = b"0123456789abcdef";
                    hex[2 * i] = H[(x >> 4) as usize];
                    hex[2 * i + 1] = H[(x & 15) as usize];
                }
                self.push(&hex[..2 * n]);
            }
            Value::Text(t) | Value::Bytes(t) => {
                // Hash strings arrive in either case; NULs are padding.
                let mut buf = [0u8; MAX_KEY];
                let mut n = 0;
                for &c in t.iter().filter(|&&c| c != 0).take(MAX_KEY) {
                    buf[n] = c.to_ascii_lowercase();
                    n += 1;
                }
                self.push(&buf[..n]);
            }
        }
    }

    /// A key of one 8-byte part (an integer) or one 16-byte part (a UUID, a 128-bit value, an
    /// IPv6 address) as that number; any other key of at most 32 bytes as four words.
    #[inline]
    pub fn short(&self) -> Option<Short> {
        match (self.len, self.bytes[0]) {
            (9, 8) => Some(Short::Int(u64::from_be_bytes(
                self.bytes[1..9].try_into().ok()?,
            ))),
            (17, 16) => Some(Short::Wide(u128::from_be_bytes(
                self.bytes[1..17].try_into().ok()?,
            ))),
            (1..=32, _) => Some(Short::Compact(words(self.bytes[..32].try_into().ok()?))),
            _ => None,
        }
    }

    /// Rebuilds a key from its stored bytes (the persisted cache).
    pub fn from_bytes(b: &[u8]) -> Option<Key> {
        if b.len() > MAX_KEY {
            return None;
        }
        let mut k = Key::new();
        k.bytes[..b.len()].copy_from_slice(b);
        k.len = b.len() as u8;
        Some(k)
    }

    /// The key as readable text: integers in decimal, 16-byte parts as UUIDs, text as text.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let mut rest = self.as_bytes();
        while let Some((&n, tail)) = rest.split_first() {
            let n = (n as usize).min(tail.len());
            let (part, tail) = tail.split_at(n);
            if !out.is_empty() {
                out.push('/');
            }
            match part.len() {
                8 => {
                    out.push_str(&u64::from_be_bytes(part.try_into().unwrap_or([0; 8])).to_string())
                }
                16 => crate::decode::value::write_uuid(&mut out, part),
                _ => out.push_str(&String::from_utf8_lossy(part)),
            }
            rest = tail;
        }
        out
    }
}

impl Default for Key {
    fn default() -> Self {
        Key::new()
    }
}

impl PartialEq for Key {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        // Unused bytes are always zero, so whole arrays compare equal exactly when the keys do.
        // Word by word without branches: `==` on the arrays calls memcmp, which costs more than
        // the comparison itself (two per name lookup: the memo, then the hash table's probe).
        let mut diff = 0u64;
        for (a, b) in self.bytes.chunks_exact(8).zip(other.bytes.chunks_exact(8)) {
            diff |= u64::from_ne_bytes(a.try_into().unwrap_or_default())
                ^ u64::from_ne_bytes(b.try_into().unwrap_or_default());
        }
        self.len == other.len && diff == 0
    }
}
impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The bytes carry their own part lengths: no extra length prefix needed.
        state.write(self.as_bytes())
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_widths_and_hash_case_do_not_matter() {
        let mut a = Key::new();
        a.push_value(&Value::Int(7));
        let mut b = Key::new();
        b.push_int(7);
        assert_eq!(a, b);
        let mut h1 = Key::new();
        h1.push_value(&Value::Hex(&[0xab, 0xcd]));
        let mut h2 = Key::new();
        h2.push_value(&Value::Text(b"ABCD"));
        assert_eq!(h1, h2);
        let mut p1 = Key::new();
        p1.push_text(b"ab");
        p1.push_text(b"c");
        let mut p2 = Key::new();
        p2.push_text(b"a");
        p2.push_text(b"bc");
        assert_ne!(p1, p2);
        assert_eq!(b.describe(), "7");
    }
}
