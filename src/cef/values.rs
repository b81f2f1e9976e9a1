//! Text forms of typed values (addresses), written straight into the line buffer without going
//! through `core::fmt`, which costs more than the rest of a pair.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::escape::append;

/// Dotted quad, `10.0.255.1`.
#[inline]
pub(crate) fn write_ipv4(out: &mut Vec<u8>, addr: Ipv4Addr) {
    let mut text = [0u8; 15];
    let mut n = 0;
    for (i, octet) in addr.octets().into_iter().enumerate() {
        if i > 0 {
            text[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            text[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            text[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        text[n] = b'0' + octet % 10;
        n += 1;
    }
    append(out, &text[..n]);
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 5952 text, the same as `Ipv6Addr`'s `Display`: lower-case hex without leading zeros, the
/// first longest run of two or more zero groups as `::`, IPv4-mapped as `::ffff:a.b.c.d`.
#[inline]
pub(crate) fn write_ipv6(out: &mut Vec<u8>, addr: Ipv6Addr) {
    if let Some(v4) = addr.to_ipv4_mapped() {
        out.extend_from_slice(b"::ffff:");
        write_ipv4(out, v4);
        return;
    }
    let groups = addr.segments();
    let (mut zeros_at, mut zeros_len) = (8, 0);
    let mut i = 0;
    while i < 8 {
        let start = i;
        while i < 8 && groups[i] == 0 {
            i += 1;
        }
        if i - start > zeros_len {
            (zeros_at, zeros_len) = (start, i - start);
        }
        i += 1;
    }
    if zeros_len < 2 {
        zeros_at = 8;
    }
    let mut text = [0u8; 39];
    let mut n = 0;
    let mut i = 0;
    while i < 8 {
        if i == zeros_at {
            text[n..n + 2].copy_from_slice(b"::");
            n += 2;
            i += zeros_len;
            continue;
        }
        if i > 0 && i != zeros_at + zeros_len {
            text[n] = b':';
            n += 1;
        }
        let g = groups[i];
        let digits = (4 - (g.leading_zeros() / 4) as usize).max(1);
        for d in (0..digits).rev() {
            text[n] = HEX_LOWER[((g >> (4 * d)) & 15) as usize];
            n += 1;
        }
        i += 1;
    }
    out.extend_from_slice(&text[..n]);
}

/// Six colon-separated upper-case hex octets, `00:0D:60:AF:1B:61` (the standard's example).
#[inline]
pub(crate) fn write_mac(out: &mut Vec<u8>, mac: [u8; 6]) {
    let mut text = [b':'; 17];
    for (i, b) in mac.into_iter().enumerate() {
        text[i * 3] = HEX_UPPER[(b >> 4) as usize];
        text[i * 3 + 1] = HEX_UPPER[(b & 15) as usize];
    }
    append(out, &text[..16]);
    out.push(text[16]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(addr: Ipv6Addr) -> String {
        let mut out = Vec::new();
        write_ipv6(&mut out, addr);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ipv6_text_is_the_same_as_std_display() {
        // Every pattern of zero/non-zero groups, with values of every digit count.
        let values = [0x1u16, 0xab, 0xdb8, 0x2001, 0xffff];
        for pattern in 0u32..256 {
            for (vi, &v) in values.iter().enumerate() {
                let mut g = [0u16; 8];
                for (i, slot) in g.iter_mut().enumerate() {
                    if pattern & (1 << i) != 0 {
                        *slot = values[(vi + i) % values.len()].max(v);
                    }
                }
                let addr = Ipv6Addr::from(g);
                assert_eq!(v6(addr), addr.to_string(), "{g:x?}");
            }
        }
        assert_eq!(v6("::ffff:192.0.2.7".parse().unwrap()), "::ffff:192.0.2.7");
    }

    #[test]
    fn ipv4_and_mac_text() {
        for a in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [10, 0, 99, 100],
            [1, 20, 255, 9],
        ] {
            let mut out = Vec::new();
            write_ipv4(&mut out, Ipv4Addr::from(a));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                Ipv4Addr::from(a).to_string()
            );
        }
        let mut out = Vec::new();
        write_mac(&mut out, [0x00, 0x0d, 0x60, 0xaf, 0x1b, 0x61]);
        assert_eq!(out, b"00:0D:60:AF:1B:61");
    }
}
