//! Byte-level escaping and truncation for CEF header fields and extension values.
//!
//! Both escapers work on UTF-8 bytes: every byte that needs work is ASCII, and bytes of a
//! multi-byte character are all ≥ 0x80, so they are copied untouched. A word-at-a-time check
//! (8 bytes per step) finds values that need no escaping, which is almost all of them; those are
//! copied with one `extend_from_slice`.
//!
//! Rules (`shared/reference/cef-and-syslog.md` 1.5, 1.6):
//! - header: `\` → `\\`, `|` → `\|`, CR, LF and every other C0 control and DEL → space;
//! - extension: `\` → `\\`, `=` → `\=`, LF → `\n`, CR → `\r`, other C0 controls and DEL → space.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero if some byte of `x` is zero.
#[inline(always)]
const fn has_zero(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// Non-zero if some byte of `x` equals `b`.
#[inline(always)]
const fn has_byte(x: u64, b: u8) -> u64 {
    has_zero(x ^ (LO * b as u64))
}

/// Non-zero if some byte of `x` is below 0x20 (a C0 control). Exact as a yes/no answer: a borrow
/// can only start at a byte that is itself below 0x20.
#[inline(always)]
const fn has_control(x: u64) -> u64 {
    x.wrapping_sub(LO * 0x20) & !x & HI
}

/// What to do with one byte.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Copy,
    /// Write a backslash, then this byte.
    Escape(u8),
    /// A control character: write a space instead, and count it.
    Space,
}

#[inline(always)]
const fn action<const HEADER: bool>(b: u8) -> Action {
    match b {
        b'\\' => Action::Escape(b'\\'),
        b'|' if HEADER => Action::Escape(b'|'),
        b'=' if !HEADER => Action::Escape(b'='),
        b'\n' if !HEADER => Action::Escape(b'n'),
        b'\r' if !HEADER => Action::Escape(b'r'),
        0..=0x1f | 0x7f => Action::Space,
        _ => Action::Copy,
    }
}

/// A mask with the high bit set in the lowest byte of `x` that needs work (bits above it may be
/// wrong because of borrows; only the lowest one is used), zero if none does.
#[inline(always)]
fn work_mask<const HEADER: bool>(x: u64) -> u64 {
    let special = if HEADER {
        has_byte(x, b'|')
    } else {
        has_byte(x, b'=')
    };
    has_control(x) | has_byte(x, b'\\') | has_byte(x, 0x7f) | special
}

#[inline(always)]
fn word_needs_work<const HEADER: bool>(x: u64) -> bool {
    work_mask::<HEADER>(x) != 0
}

/// Whether `bytes` contains anything the escaper would change.
#[inline]
fn needs_work<const HEADER: bool>(bytes: &[u8]) -> bool {
    let n = bytes.len();
    if n >= 8 {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            if word_needs_work::<HEADER>(u64::from_le_bytes(c.try_into().unwrap())) {
                return true;
            }
        }
        // The tail: the last 8 bytes, overlapping bytes already checked (checking twice is
        // harmless; copying the tail into a padded buffer would stall on store forwarding).
        return !chunks.remainder().is_empty()
            && word_needs_work::<HEADER>(u64::from_le_bytes(bytes[n - 8..].try_into().unwrap()));
    }
    if n >= 4 {
        let lo = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as u64;
        let hi = u32::from_le_bytes(bytes[n - 4..].try_into().unwrap()) as u64;
        return word_needs_work::<HEADER>(lo | hi << 32);
    }
    bytes
        .iter()
        .any(|&b| !matches!(action::<HEADER>(b), Action::Copy))
}

/// Appends `bytes` escaped; returns how many control characters became spaces.
#[inline]
fn escape_into<const HEADER: bool>(out: &mut Vec<u8>, bytes: &[u8]) -> u32 {
    if !needs_work::<HEADER>(bytes) {
        append(out, bytes);
        return 0;
    }
    escape_slow::<HEADER>(out, bytes)
}

#[cold]
fn escape_slow<const HEADER: bool>(out: &mut Vec<u8>, bytes: &[u8]) -> u32 {
    out.reserve(2 * bytes.len());
    escape_loop::<HEADER, false>(out, bytes).unwrap_or(0)
}

/// Appends a byte string that should be UTF-8 as an extension value, escaped, checking it as it
/// goes: one pass instead of a UTF-8 check and then an escape scan. `None` (and `out` as it
/// was) when the bytes are not valid UTF-8; the caller then replaces the invalid sequences
/// first. Otherwise the number of control characters replaced by a space.
pub(crate) fn escape_extension_checked(out: &mut Vec<u8>, bytes: &[u8]) -> Option<u32> {
    escape_loop::<false, true>(out, bytes)
}

/// Copies the runs of bytes that need no work and escapes or replaces the others; returns how
/// many control characters became spaces. With `CHECK_UTF8` it also checks the bytes as UTF-8
/// and gives `None` (and `out` as it was) at the first invalid sequence.
#[inline(always)]
fn escape_loop<const HEADER: bool, const CHECK_UTF8: bool>(
    out: &mut Vec<u8>,
    bytes: &[u8],
) -> Option<u32> {
    let start = out.len();
    let mut replaced = 0;
    let mut run = 0; // start of the bytes not yet copied
    let mut i = 0;
    while i < bytes.len() {
        // Skip 8 bytes at a time to the next byte that needs work (or is not ASCII, when
        // checking). The lowest flagged byte is exact: `x & HI` is exact per byte, and the work
        // mask's lowest bit is.
        if let Some(word) = bytes.get(i..i + 8) {
            let x = u64::from_le_bytes(word.try_into().unwrap());
            let mask = work_mask::<HEADER>(x) | if CHECK_UTF8 { x & HI } else { 0 };
            if mask == 0 {
                i += 8;
                continue;
            }
            i += (mask.trailing_zeros() / 8) as usize;
        }
        let b = bytes[i];
        if CHECK_UTF8 && b >= 0x80 {
            // The whole run of non-ASCII bytes, checked by the standard library in one call
            // (overlong forms, surrogates and values past U+10FFFF are invalid). A character's
            // bytes are all non-ASCII, so a valid run holds whole characters; it is copied
            // with the bytes around it.
            let end = bytes[i..]
                .iter()
                .position(|&c| c < 0x80)
                .map_or(bytes.len(), |n| i + n);
            if std::str::from_utf8(&bytes[i..end]).is_err() {
                out.truncate(start);
                return None;
            }
            i = end;
            continue;
        }
        match action::<HEADER>(b) {
            Action::Copy => {}
            Action::Escape(e) => {
                append(out, &bytes[run..i]);
                out.extend_from_slice(&[b'\\', e]);
                run = i + 1;
            }
            Action::Space => {
                append(out, &bytes[run..i]);
                out.push(b' ');
                replaced += 1;
                run = i + 1;
            }
        }
        i += 1;
    }
    append(out, &bytes[run..]);
    Some(replaced)
}

/// Appends an extension value, escaped. Returns the number of control characters replaced by a
/// space (CR and LF are escaped, not replaced, and are not counted).
#[inline]
pub(crate) fn escape_extension(out: &mut Vec<u8>, value: &[u8]) -> u32 {
    escape_into::<false>(out, value)
}

/// Whether [`escape_extension`] would change the value.
pub(crate) fn extension_needs_escaping(value: &[u8]) -> bool {
    needs_work::<false>(value)
}

/// Whether [`escape_header`] would change the value.
pub(crate) fn header_needs_escaping(value: &[u8]) -> bool {
    needs_work::<true>(value)
}

/// Appends a header field, escaped. Returns the number of control characters (CR and LF included)
/// replaced by a space.
#[inline]
pub(crate) fn escape_header(out: &mut Vec<u8>, value: &[u8]) -> u32 {
    escape_into::<true>(out, value)
}

/// Length of `value` without its trailing spaces, counting control characters other than CR and
/// LF as spaces (they become spaces on the wire). ArcSight drops trailing spaces of the last pair
/// and a consumer keeps all but one before the next key, so no value ends in one.
#[inline]
pub(crate) fn trimmed_len(value: &[u8]) -> usize {
    let mut end = value.len();
    while end > 0 {
        match value[end - 1] {
            b'\n' | b'\r' => break,
            b' ' | 0..=0x1f | 0x7f => end -= 1,
            _ => break,
        }
    }
    end
}

/// Where to cut `s` so that it keeps at most `max` characters (Unicode scalar values). `None` if
/// it already fits; otherwise the byte offset of the cut (always a character boundary) and the
/// number of characters `s` had.
#[inline]
pub(crate) fn truncation_point(s: &str, max: u32) -> Option<(usize, usize)> {
    let max = max as usize;
    if s.len() <= max {
        return None; // fewer bytes than the limit means fewer characters too
    }
    let (cut, _) = s.char_indices().nth(max)?;
    let total = max + s[cut..].chars().count();
    Some((cut, total))
}

/// `out.extend_from_slice(src)` without a call to `memcpy` for the short slices that make up most
/// of a line (keys, numbers, short names): two overlapping 8-byte (or 4-byte) stores.
#[inline(always)]
pub(crate) fn append(out: &mut Vec<u8>, src: &[u8]) {
    let n = src.len();
    if n > 16 {
        out.extend_from_slice(src);
        return;
    }
    out.reserve(16);
    let len = out.len();
    let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    // SAFETY: `reserve(16)` leaves at least 16 writable bytes after `len`; every store below
    // ends at or before `dst + n` with `n <= 16`, and those `n` bytes are all written before
    // `set_len` makes them part of the vector.
    unsafe {
        if n >= 8 {
            let head = u64::from_ne_bytes(src[..8].try_into().unwrap());
            let tail = u64::from_ne_bytes(src[n - 8..].try_into().unwrap());
            dst.cast::<u64>().write_unaligned(head);
            dst.add(n - 8).cast::<u64>().write_unaligned(tail);
        } else if n >= 4 {
            let head = u32::from_ne_bytes(src[..4].try_into().unwrap());
            let tail = u32::from_ne_bytes(src[n - 4..].try_into().unwrap());
            dst.cast::<u32>().write_unaligned(head);
            dst.add(n - 4).cast::<u32>().write_unaligned(tail);
        } else {
            for (i, &b) in src.iter().enumerate() {
                dst.add(i).write(b);
            }
        }
        out.set_len(len + n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(s: &str) -> (String, u32) {
        let mut out = Vec::new();
        let n = escape_extension(&mut out, s.as_bytes());
        (String::from_utf8(out).unwrap(), n)
    }

    fn hdr(s: &str) -> (String, u32) {
        let mut out = Vec::new();
        let n = escape_header(&mut out, s.as_bytes());
        (String::from_utf8(out).unwrap(), n)
    }

    #[test]
    fn word_check_agrees_with_the_byte_table_for_every_byte_at_every_position() {
        for b in 0..=255u8 {
            for pos in 0..11 {
                let mut v = vec![b'x'; 11];
                v[pos] = b;
                assert_eq!(
                    needs_work::<false>(&v),
                    action::<false>(b) != Action::Copy,
                    "ext byte {b:#x} at {pos}"
                );
                assert_eq!(
                    needs_work::<true>(&v),
                    action::<true>(b) != Action::Copy,
                    "hdr byte {b:#x} at {pos}"
                );
            }
        }
    }

    #[test]
    fn lowest_bit_of_the_mask_is_the_first_byte_that_needs_work() {
        // escape_slow skips to this byte; later bits may be wrong (borrows), the lowest may not.
        let specials = [b'\\', b'=', b'|', 0u8, b'\n', 0x1f, 0x7f];
        for &first in &specials {
            for p in 0..8 {
                for later in 0..=255u8 {
                    for q in p + 1..8 {
                        let mut w = [b'x'; 8];
                        w[p] = first;
                        w[q] = later;
                        let x = u64::from_le_bytes(w);
                        for (mask, header) in
                            [(work_mask::<false>(x), false), (work_mask::<true>(x), true)]
                        {
                            let expect = if header {
                                action::<true>(first) != Action::Copy
                            } else {
                                action::<false>(first) != Action::Copy
                            };
                            if expect {
                                assert_eq!(
                                    mask.trailing_zeros() / 8,
                                    p as u32,
                                    "{w:?} header={header}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn extension_and_header_rules() {
        assert_eq!(
            ext("a=b\\c|d\ne\rf\tg\0h\x7f"),
            ("a\\=b\\\\c|d\\ne\\rf g h ".into(), 3)
        );
        assert_eq!(hdr("a=b\\c|d\ne\rf\tg"), ("a=b\\\\c\\|d e f g".into(), 3));
        assert_eq!(ext("plain ascii value"), ("plain ascii value".into(), 0));
    }

    #[test]
    fn checked_escape_agrees_with_the_utf8_check_and_the_escaper() {
        // Every byte at every position of a short and a word-long value, and some characters.
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for b in 0..=255u8 {
            for pos in 0..11 {
                let mut v = b"xa=b\\cdefgh".to_vec();
                v[pos] = b;
                cases.push(v);
            }
        }
        for s in ["", "ü", "日本語=x", "a\u{10FFFF}b", "Привет\nмир", "ab\tc"] {
            cases.push(s.as_bytes().to_vec());
        }
        for bad in [
            &b"\xC0\x80"[..],
            b"\xED\xA0\x80",
            b"\xF4\x90\x80\x80",
            b"ab\xE2\x82",
            b"\xFF",
        ] {
            cases.push(bad.to_vec());
            cases.push([b"0123456789".as_slice(), bad, b"z"].concat());
        }
        for v in cases {
            let mut out = b"kept".to_vec();
            let got = escape_extension_checked(&mut out, &v);
            match std::str::from_utf8(&v) {
                Ok(s) => {
                    let mut want = b"kept".to_vec();
                    let n = escape_extension(&mut want, s.as_bytes());
                    assert_eq!((out, got), (want, Some(n)), "{v:?}");
                }
                Err(_) => assert_eq!((out, got), (b"kept".to_vec(), None), "{v:?}"),
            }
        }
    }

    #[test]
    fn trimming_and_truncation() {
        assert_eq!(trimmed_len(b"ab  \t "), 2);
        assert_eq!(trimmed_len(b"ab\n "), 3);
        assert_eq!(trimmed_len(b"   "), 0);
        assert_eq!(truncation_point("äöü", 2), Some((4, 3)));
        assert_eq!(truncation_point("äöü", 3), None);
        assert_eq!(truncation_point("abc", 3), None);
    }
}
