//! Shortening an oversize message to a byte limit without breaking its CEF.
//!
//! Only extension values are shortened, the longest first (water-filling: every value longer than
//! some level is cut to that level), so short, identifying fields such as `src`, `dpt` or
//! `externalId` survive and long free text (`msg`, `request`, `cs*`) pays. The syslog header, the
//! CEF header and every key stay intact. A cut never splits a UTF-8 character or a `\x` escape,
//! and a shortened value does not end in a space (ArcSight drops trailing spaces of the last
//! value, and a space before the next key would be read as part of the value).
//!
//! The input is our own CEF output: a key starts after a space and runs to an unescaped `=`.

/// The message cannot be made to fit: even with every extension value emptied it is too long
/// (or it holds no CEF extension to shorten).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CannotFit;

/// Reusable scratch space for [`Truncator::fit`].
#[derive(Debug, Default, Clone)]
pub struct Truncator {
    /// (start, end, new_end) of each extension value, absolute offsets in the message.
    values: Vec<(usize, usize, usize)>,
    lengths: Vec<usize>,
}

impl Truncator {
    /// Shortens the message `msg[msg_start..]` to at most `max` bytes. `cef_start` is where
    /// `CEF:` begins in `msg`. Returns `Ok(false)` if it already fitted, `Ok(true)` if it was
    /// shortened. On `Err` the buffer is unchanged.
    pub fn fit(
        &mut self,
        msg: &mut Vec<u8>,
        msg_start: usize,
        cef_start: usize,
        max: usize,
    ) -> Result<bool, CannotFit> {
        if msg.len() - msg_start <= max {
            return Ok(false);
        }
        let need = msg.len() - msg_start - max;
        let ext_start = cef_start + extension_start(&msg[cef_start..]).ok_or(CannotFit)?;
        self.collect_values(msg, ext_start);
        let level = self.level(need).ok_or(CannotFit)?;

        for v in self.values.iter_mut() {
            let (start, end, _) = *v;
            let mut cut = end - start;
            if cut > level {
                cut = safe_cut(&msg[start..end], level);
                while cut > 0 && msg[start + cut - 1] == b' ' {
                    cut -= 1;
                }
            }
            v.2 = start + cut;
        }

        // Close the gaps left by the cuts, front to back.
        let len = msg.len();
        let (mut read, mut write) = (msg_start, msg_start);
        for &(_, end, new_end) in &self.values {
            if new_end < end {
                msg.copy_within(read..new_end, write);
                write += new_end - read;
                read = end;
            }
        }
        msg.copy_within(read..len, write);
        write += len - read;
        msg.truncate(write);
        debug_assert!(msg.len() - msg_start <= max);
        Ok(true)
    }

    fn collect_values(&mut self, msg: &[u8], ext_start: usize) {
        self.values.clear();
        // Positions of unescaped '=' signs.
        let mut i = ext_start;
        let mut prev_eq: Option<usize> = None;
        while i < msg.len() {
            match msg[i] {
                b'\\' => i += 2,
                b'=' => {
                    let floor = prev_eq.map_or(ext_start, |e| e + 1);
                    let key_start = msg[floor..i]
                        .iter()
                        .rposition(|&b| b == b' ')
                        .map_or(floor, |p| floor + p + 1);
                    if let Some(e) = prev_eq {
                        // The previous value ends at the space before this key.
                        let value_end = key_start.saturating_sub(1).max(e + 1);
                        self.values.push((e + 1, value_end, value_end));
                    }
                    prev_eq = Some(i);
                    i += 1;
                }
                _ => i += 1,
            }
        }
        if let Some(e) = prev_eq {
            self.values.push((e + 1, msg.len(), msg.len()));
        }
    }

    /// The largest level L such that cutting every value to L bytes frees at least `need` bytes.
    fn level(&mut self, need: usize) -> Option<usize> {
        self.lengths.clear();
        self.lengths.extend(self.values.iter().map(|v| v.1 - v.0));
        self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        let mut top_sum = 0usize;
        for k in 1..=self.lengths.len() {
            top_sum += self.lengths[k - 1];
            let next = self.lengths.get(k).copied().unwrap_or(0);
            if top_sum < need {
                continue;
            }
            // Cutting the k longest values to L frees top_sum - k*L >= need.
            let level = (top_sum - need) / k;
            if level >= next {
                return Some(level);
            }
        }
        None
    }
}

/// Offset just after the seventh unescaped `|` of a CEF line, where the extension begins.
pub fn extension_start(cef: &[u8]) -> Option<usize> {
    let mut pipes = 0;
    let mut i = 0;
    while i < cef.len() {
        match cef[i] {
            b'\\' => i += 2,
            b'|' => {
                pipes += 1;
                i += 1;
                if pipes == 7 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The longest prefix of `value` of at most `limit` bytes that ends neither inside a UTF-8
/// character nor between a backslash and the character it escapes.
fn safe_cut(value: &[u8], limit: usize) -> usize {
    let mut i = 0;
    while i < value.len() {
        let step = if value[i] == b'\\' {
            1 + value.get(i + 1).map_or(0, |&b| utf8_len(b))
        } else {
            utf8_len(value[i])
        };
        if i + step > limit {
            break;
        }
        i += step;
    }
    i.min(value.len())
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fit(msg: &str, cef_start: usize, max: usize) -> Result<String, CannotFit> {
        let mut m = msg.as_bytes().to_vec();
        Truncator::default().fit(&mut m, 0, cef_start, max)?;
        Ok(String::from_utf8(m).expect("truncation kept UTF-8 valid"))
    }

    #[test]
    fn longest_values_are_cut_first_header_and_keys_kept() {
        let hdr = "<134>1 - - - - - CEF:0|V|P|1|id|Name|5|";
        let msg = format!(
            "{hdr}src=10.0.0.1 msg={} request={} externalId=42",
            "m".repeat(100),
            "r".repeat(60)
        );
        let out = fit(&msg, 18, msg.len() - 50).unwrap();
        assert_eq!(out.len(), msg.len() - 50);
        // water level: msg and request both cut to 55
        assert_eq!(
            out,
            format!(
                "{hdr}src=10.0.0.1 msg={} request={} externalId=42",
                "m".repeat(55),
                "r".repeat(55)
            )
        );
    }

    #[test]
    fn cuts_respect_utf8_and_escapes_and_trim_spaces() {
        let hdr = "CEF:0|V|P|1|id|N|5|";
        // a cut at 4 bytes would fall inside "ä" (bytes 3..5) → 3 bytes kept
        assert_eq!(
            fit(&format!("{hdr}msg=abcäxyz"), 0, hdr.len() + 4 + 4).unwrap(),
            format!("{hdr}msg=abc")
        );
        // the cut would fall between '\' and '=' → the escape is dropped whole
        assert_eq!(
            fit(&format!("{hdr}msg=abc\\=def"), 0, hdr.len() + 4 + 4).unwrap(),
            format!("{hdr}msg=abc")
        );
        // trailing spaces of a cut value go
        assert_eq!(
            fit(
                &format!("{hdr}msg=ab   cdef dst=1"),
                0,
                hdr.len() + 4 + 4 + 6
            )
            .unwrap(),
            format!("{hdr}msg=ab dst=1")
        );
    }

    #[test]
    fn header_pipes_and_escapes_are_not_mistaken_for_the_extension() {
        let cef = "CEF:0|V|P|1|id|a \\| b \\\\|5|msg=xxxxxxxxxx";
        let out = fit(cef, 0, cef.len() - 5).unwrap();
        assert_eq!(out, "CEF:0|V|P|1|id|a \\| b \\\\|5|msg=xxxxx");
    }

    #[test]
    fn impossible_fits_are_reported() {
        let cef = "CEF:0|V|P|1|id|a long name that alone is too long|5|k=v";
        assert_eq!(fit(cef, 0, 20), Err(CannotFit));
        assert_eq!(fit("no cef here at all, just text", 0, 5), Err(CannotFit));
        assert_eq!(fit(cef, 0, 1000).unwrap(), cef);
    }

    fn value_strategy() -> impl Strategy<Value = String> {
        // escaped output as the CEF encoder writes it: \\ \= \n \r, spaces, pipes, multibyte text
        proptest::collection::vec(
            prop_oneof![
                Just("\\\\".to_string()),
                Just("\\=".to_string()),
                Just("\\n".to_string()),
                Just(" ".to_string()),
                Just("|".to_string()),
                Just("ä".to_string()),
                Just("日本".to_string()),
                Just("🦀".to_string()),
                "[a-z0-9]{1,8}".prop_map(|s| s),
            ],
            0..40,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn result_fits_and_stays_well_formed(values in proptest::collection::vec(value_strategy(), 1..8), shrink in 0usize..400) {
            let hdr = "<134>1 2024-05-01T10:34:56.123456Z h a 1 - - \u{feff}";
            let cef_hdr = "CEF:0|V|P|1|id|N \\| x|5|";
            let keys: Vec<String> = (0..values.len()).map(|i| format!("k{i}")).collect();
            let ext: Vec<String> = keys.iter().zip(&values).map(|(k, v)| format!("{k}={v}")).collect();
            let msg = format!("{hdr}{cef_hdr}{}", ext.join(" "));
            let max = msg.len().saturating_sub(shrink);
            let mut m = msg.clone().into_bytes();
            match Truncator::default().fit(&mut m, 0, hdr.len(), max) {
                Ok(_) => {
                    prop_assert!(m.len() <= max);
                    let s = String::from_utf8(m).expect("valid UTF-8");
                    let prefix = format!("{hdr}{cef_hdr}");
                    prop_assert!(s.starts_with(&prefix));
                    // Every key is still there, in order, and every value is a prefix of the
                    // original that does not end in a lone backslash.
                    let ext_out = &s[hdr.len() + cef_hdr.len()..];
                    let mut rest = ext_out;
                    for (i, (k, v)) in keys.iter().zip(&values).enumerate() {
                        prop_assert!(rest.starts_with(&format!("{k}=")), "key {k} missing in {ext_out}");
                        rest = &rest[k.len() + 1..];
                        let end = if i + 1 < keys.len() { rest.find(&format!(" {}=", keys[i + 1])).expect("next key") } else { rest.len() };
                        let got = &rest[..end];
                        prop_assert!(v.starts_with(got), "{got:?} is not a prefix of {v:?}");
                        let trailing = got.len() - got.trim_end_matches('\\').len();
                        prop_assert!(trailing.is_multiple_of(2), "split escape in {got:?}");
                        rest = rest[end..].strip_prefix(' ').unwrap_or(&rest[end..]);
                    }
                }
                Err(CannotFit) => {
                    let fixed = msg.len() - values.iter().map(|v| v.len()).sum::<usize>();
                    prop_assert!(fixed > max, "gave up although {fixed} <= {max}");
                }
            }
        }
    }
}
