//! Properties of the encoder for arbitrary input: the line never contains a raw CR/LF or an
//! unescaped `=` in a value, and undoing the escapes gives back the input after the documented
//! changes (cut to the limit, invalid UTF-8 → U+FFFD, control characters → space, trailing spaces
//! trimmed). The decoder below is written from the CEF rules, independently of the encoder.

use proptest::prelude::*;

use estreamer_cef::cef::{CefEncoder, Key};

/// Characters that matter to CEF, mixed with arbitrary ones.
fn cef_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        2 => prop::sample::select(vec![
            '=', '\\', '|', '\n', '\r', '\t', '\0', ' ', '\x7f', '\x1b', 'n', 'r', 'ä', '日', '🦀',
            '\u{85}', '\u{2028}', '\u{fffd}',
        ]),
        3 => prop::char::range('a', 'z'),
    ]
}

fn cef_string(max_len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(cef_char(), 0..max_len).prop_map(|v| v.into_iter().collect())
}

fn cef_bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => any::<u8>(),
            2 => prop::sample::select(vec![b'=', b'\\', b'|', b'\n', b'\r', b' ', 0xc3, 0xa4, 0xe6, 0x97, 0xf0, 0x9f]),
            3 => b'a'..=b'z',
        ],
        0..max_len,
    )
}

/// Extension value as a consumer must read it back (reference 1.6, 1.7, 1.9).
fn model_value(input: &str, max: Option<u32>) -> String {
    let kept: String = input
        .chars()
        .take(max.map_or(usize::MAX, |m| m as usize))
        .map(|c| match c {
            '\n' | '\r' => c,
            '\0'..='\x1f' | '\x7f' => ' ',
            _ => c,
        })
        .collect();
    kept.trim_end_matches(' ').to_owned()
}

fn model_header(input: &str, max: usize) -> String {
    input
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_control() { ' ' } else { c })
        .collect()
}

/// Splits a line into its seven header fields (unescaped) and the raw extension.
fn split_header(line: &str) -> Result<(Vec<String>, &str), String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\\' | '|'))) => cur.push(e),
                other => return Err(format!("undefined header escape {other:?}")),
            },
            '|' => {
                fields.push(std::mem::take(&mut cur));
                if fields.len() == 7 {
                    return Ok((fields, &line[i + 1..]));
                }
            }
            _ => cur.push(c),
        }
    }
    Err("fewer than seven `|`".into())
}

/// Splits an extension into (key, unescaped value) pairs: a key is the run of non-space
/// characters before an unescaped `=`; the value runs to the space before the next key.
fn split_extension(ext: &str) -> Result<Vec<(String, String)>, String> {
    if ext.is_empty() {
        return Ok(vec![]);
    }
    if ext.starts_with(' ') {
        return Err("space after the seventh `|`".into());
    }
    // Positions of unescaped `=`.
    let bytes = ext.as_bytes();
    let mut eqs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'=' => eqs.push(i),
            _ => {}
        }
        i += 1;
    }
    let mut pairs = Vec::new();
    let mut key_start = 0;
    for (n, &eq) in eqs.iter().enumerate() {
        let key = &ext[key_start..eq];
        if key.is_empty() || key.contains(' ') {
            return Err(format!("bad key {key:?}"));
        }
        let value_end = match eqs.get(n + 1) {
            Some(&next_eq) => {
                let sp = ext[..next_eq].rfind(' ').ok_or("no space before a key")?;
                if sp <= eq {
                    return Err(format!("empty value or key with a space before {next_eq}"));
                }
                key_start = sp + 1;
                sp
            }
            None => ext.len(),
        };
        pairs.push((key.to_owned(), unescape_value(&ext[eq + 1..value_end])?));
    }
    Ok(pairs)
}

fn unescape_value(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\\') => out.push('\\'),
                Some('=') => out.push('='),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                other => return Err(format!("undefined escape \\{other:?} in {raw:?}")),
            },
            '=' => return Err(format!("raw `=` in value {raw:?}")),
            c if c.is_ascii_control() => return Err(format!("raw control {c:?} in {raw:?}")),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn check_line(line: &[u8], name: &str, pairs: &[(&Key, String)]) -> Result<(), TestCaseError> {
    prop_assert!(
        !line.contains(&b'\n') && !line.contains(&b'\r'),
        "raw CR/LF"
    );
    let line = std::str::from_utf8(line).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let (header, ext) = split_header(line).map_err(TestCaseError::fail)?;
    prop_assert_eq!(&header[5], &model_header(name, 512));
    let got = split_extension(ext).map_err(TestCaseError::fail)?;
    let want: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.name().to_owned(), model_value(v, k.max_chars())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    prop_assert_eq!(got, want);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn text_values_round_trip(
        name in cef_string(40),
        a in cef_string(120),
        b in cef_string(40),
        c in cef_string(1200),
    ) {
        // act: 63 characters (frequent cuts); msg: 1023; a custom key: 1023.
        let keys = [Key::new("act").unwrap(), Key::new("CiscoFirepowerX").unwrap(), Key::new("msg").unwrap()];
        let mut enc = CefEncoder::default();
        let mut buf = Vec::new();
        enc.begin(&mut buf, "c", &name, 3)
            .text(&keys[0], &a)
            .text(&keys[1], &b)
            .text(&keys[2], &c);
        check_line(&buf, &name, &[(&keys[0], a), (&keys[1], b), (&keys[2], c)])?;
    }

    #[test]
    fn byte_values_round_trip_lossily(
        name in cef_bytes(40),
        a in cef_bytes(120),
        b in cef_bytes(40),
    ) {
        let keys = [Key::new("act").unwrap(), Key::new("suser").unwrap()];
        let mut enc = CefEncoder::default();
        let mut buf = Vec::new();
        enc.begin_lossy(&mut buf, b"c", &name, 3)
            .bytes_lossy(&keys[0], &a)
            .bytes_lossy(&keys[1], &b);
        let lossy = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        check_line(
            &buf,
            &lossy(&name),
            &[(&keys[0], lossy(&a)), (&keys[1], lossy(&b))],
        )?;
    }

    #[test]
    fn long_names_are_cut_to_512_characters(name in cef_string(700)) {
        let mut enc = CefEncoder::default();
        let mut buf = Vec::new();
        enc.begin(&mut buf, "c", &name, 3);
        check_line(&buf, &name, &[])?;
    }
}
