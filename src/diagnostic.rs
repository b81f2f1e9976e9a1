//! What every user-facing error about a file shares: the line of a byte offset, and "did you
//! mean" suggestions for a misspelt name. The mapping tables and the configuration both use it,
//! so that both kinds of errors read alike.

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Up to three known names closest to a misspelt one, each in backticks, closest first.
pub fn suggest(wrong: &str, known: impl Iterator<Item = String>) -> Vec<String> {
    let w = wrong.to_ascii_lowercase();
    let mut scored: Vec<(usize, String)> = known
        .filter(|k| !k.contains('#'))
        .map(|k| (distance(&w, &k.to_ascii_lowercase()), k))
        .filter(|(d, k)| *d <= 2 + k.len() / 4)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, k)| format!("`{k}`"))
        .collect()
}

/// "; did you mean `a`, `b`?" or nothing.
pub fn did_you_mean(wrong: &str, known: impl Iterator<Item = String>) -> String {
    let s = suggest(wrong, known);
    if s.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", s.join(", "))
    }
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_near_misses() {
        let known = ["initiatorPort", "responderPort", "initiatorIpAddress"].map(String::from);
        assert_eq!(
            suggest("initiatorPrt", known.into_iter()),
            vec!["`initiatorPort`"]
        );
        let keys = ["host", "hosts", "port", "pkcs12"].map(String::from);
        // The closest first.
        assert!(did_you_mean("prot", keys.into_iter()).starts_with("; did you mean `port`"));
        assert_eq!(
            did_you_mean("zz_unknown", ["port".to_string()].into_iter()),
            ""
        );
    }

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
