//! Field values as read from the wire, and their text forms (reference 6.6): IPv4 dotted quad,
//! IPv6 in RFC 5952 form with IPv4-mapped addresses shown as IPv4, MAC as lowercase pairs, UUID in
//! 8-4-4-4-12 form, wide integers as lowercase hex in wire order.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::schema::{FieldKind, Scalar};

/// A field value borrowing the record bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Int(u64),
    /// 4 or 16 bytes.
    Ip(&'a [u8]),
    Mac(&'a [u8]),
    Uuid(&'a [u8]),
    /// 128/160/256-bit values, shown as hex.
    Hex(&'a [u8]),
    /// Text as sent: usually UTF-8, possibly not, possibly with NULs.
    Text(&'a [u8]),
    /// Binary payload.
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> {
    #[inline]
    pub fn from_field(kind: FieldKind, b: &'a [u8]) -> Option<Value<'a>> {
        Some(match kind {
            FieldKind::Scalar(s) => match s {
                Scalar::U8 | Scalar::U16 | Scalar::U32 | Scalar::U64 => Value::Int(be_uint(b)),
                Scalar::U128 | Scalar::U160 | Scalar::U256 => Value::Hex(b),
                Scalar::Ipv4 | Scalar::Ipv6 => Value::Ip(b),
                Scalar::Mac => Value::Mac(b),
                Scalar::Uuid => Value::Uuid(b),
            },
            FieldKind::Ip => Value::Ip(b),
            FieldKind::Text => Value::Text(b),
            FieldKind::Bytes => Value::Bytes(b),
            FieldKind::Group | FieldKind::List | FieldKind::ListItems => return None,
        })
    }

    pub fn as_int(&self) -> Option<u64> {
        match *self {
            Value::Int(v) => Some(v),
            _ => None,
        }
    }

    /// The address, with IPv4-mapped IPv6 addresses unwrapped to IPv4.
    pub fn as_ip(&self) -> Option<std::net::IpAddr> {
        match *self {
            Value::Ip(b) => ip_from_bytes(b),
            _ => None,
        }
    }

    /// Appends the value's text form (eNcore's conventions for text: NULs removed; bytes that are
    /// not valid UTF-8 become lowercase hex).
    pub fn write_text(&self, out: &mut String) {
        match *self {
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Ip(b) => write_ip(out, b),
            Value::Mac(b) => write_mac(out, b),
            Value::Uuid(b) => write_uuid(out, b),
            Value::Hex(b) => write_hex(out, b),
            Value::Text(b) | Value::Bytes(b) => write_text_or_hex(out, b),
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.write_text(&mut s);
        s
    }

    /// The value as JSON (integers stay numbers).
    pub fn to_json(&self) -> serde_json::Value {
        match *self {
            Value::Int(v) => serde_json::Value::from(v),
            _ => serde_json::Value::String(self.to_text()),
        }
    }
}

/// An address from 4 or 16 bytes; `::ffff:a.b.c.d` becomes `a.b.c.d`.
pub fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            let v6 = Ipv6Addr::from(a);
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => v4.into(),
                None => v6.into(),
            })
        }
        _ => None,
    }
}

pub fn write_ip(out: &mut String, b: &[u8]) {
    // IPv4-compatible addresses (::a.b.c.d) keep their dotted tail, as inet_ntop writes them and
    // eNcore shows them.
    if b.len() == 16 && b[..12].iter().all(|&x| x == 0) && (b[12] | b[13]) != 0 {
        let _ = write!(out, "::{}.{}.{}.{}", b[12], b[13], b[14], b[15]);
        return;
    }
    match ip_from_bytes(b) {
        Some(ip) => {
            let _ = write!(out, "{ip}");
        }
        None => write_hex(out, b),
    }
}

pub fn write_mac(out: &mut String, b: &[u8]) {
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        push_hex_byte(out, *x);
    }
}

pub fn write_uuid(out: &mut String, b: &[u8]) {
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        push_hex_byte(out, *x);
    }
}

pub fn write_hex(out: &mut String, b: &[u8]) {
    out.reserve(b.len() * 2);
    for x in b {
        push_hex_byte(out, *x);
    }
}

#[inline]
fn push_hex_byte(out: &mut String, x: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(HEX[(x >> 4) as usize] as char);
    out.push(HEX[(x & 15) as usize] as char);
}

/// Text with NULs removed when it is valid UTF-8, else the lowercase hex of the bytes.
pub fn write_text_or_hex(out: &mut String, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) if !s.contains('\0') => out.push_str(s),
        Ok(s) => out.extend(s.chars().filter(|&c| c != '\0')),
        Err(_) => write_hex(out, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Value) -> String {
        v.to_text()
    }

    #[test]
    fn addresses_follow_the_reference_forms() {
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[192, 0, 2, 7]);
        assert_eq!(text(Value::Ip(&mapped)), "192.0.2.7");
        assert_eq!(text(Value::Ip(&[0u8; 16])), "::");
        let v6: [u8; 16] = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(text(Value::Ip(&v6)), "2001:db8::1");
        assert_eq!(text(Value::Ip(&[10, 0, 0, 1])), "10.0.0.1");
        let compat: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 163, 218, 95];
        assert_eq!(text(Value::Ip(&compat)), "::10.163.218.95");
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!(text(Value::Ip(&one)), "::1");
    }

    #[test]
    fn mac_uuid_hex_and_text() {
        assert_eq!(
            text(Value::Mac(&[0, 0x50, 0x56, 0xab, 0xcd, 0xef])),
            "00:50:56:ab:cd:ef"
        );
        let u: Vec<u8> = (0..16).collect();
        assert_eq!(
            text(Value::Uuid(&u)),
            "00010203-0405-0607-0809-0a0b0c0d0e0f"
        );
        assert_eq!(text(Value::Hex(&[0xde, 0xad])), "dead");
        assert_eq!(text(Value::Text(b"a\0b")), "ab");
        assert_eq!(text(Value::Text(b"caf\xe9")), "636166e9");
    }
}

/// A big-endian unsigned integer of up to 8 bytes (longer values keep their last 8).
#[inline(always)]
pub(crate) fn be_uint(b: &[u8]) -> u64 {
    match *b {
        [a] => a as u64,
        [a, b] => u16::from_be_bytes([a, b]) as u64,
        [a, b, c, d] => u32::from_be_bytes([a, b, c, d]) as u64,
        [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64),
    }
}
