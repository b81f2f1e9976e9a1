//! Every duration in the configuration is text with a unit: "500ms", "10s", "2m", "1h" (decimals
//! allowed: "1.5s"). A bare number is read as seconds, so that environment variables and old
//! habits (`= 10`) keep working; `check-config` always prints the text form.
//!
//! Used as `#[serde(with = "crate::config::duration")]` on `std::time::Duration` fields.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// The longest duration accepted (about 31 years): anything longer is a typo.
const MAX_SECS: f64 = 1e9;

pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (examples: \"10s\", \"500ms\", \"2m\")"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => {
            return Err(format!(
                "unknown unit {u:?} in duration {s:?} (use ms, s, m or h)"
            ));
        }
    };
    from_secs(secs).ok_or_else(|| format!("duration {s:?} is out of range"))
}

fn from_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..=MAX_SECS).contains(&secs)).then(|| {
        // Whole milliseconds: "0.1s" is 100ms, not 100.000000000000005ms.
        Duration::from_millis((secs * 1000.0).round() as u64)
    })
}

/// "10s", "500ms" below a second, "12.5s" otherwise (to the millisecond); `parse` reads it back.
pub fn format(d: &Duration) -> String {
    let millis = d.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else if millis < 1000 {
        format!("{millis}ms")
    } else {
        let text = format!("{}.{:03}", millis / 1000, millis % 1000);
        format!("{}s", text.trim_end_matches('0'))
    }
}

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(d))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Secs(u64),
        FractionalSecs(f64),
    }
    let out_of_range = |n: f64| {
        serde::de::Error::custom(format!(
            "duration {n} is out of range (give it as text, e.g. \"10s\")"
        ))
    };
    match Raw::deserialize(d)? {
        Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
        Raw::Secs(n) => from_secs(n as f64).ok_or_else(|| out_of_range(n as f64)),
        Raw::FractionalSecs(n) => from_secs(n).ok_or_else(|| out_of_range(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_numbers() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("500ms", ms(500)),
            ("10s", ms(10_000)),
            ("1.5s", ms(1_500)),
            ("0.1s", ms(100)),
            ("2m", ms(120_000)),
            ("2min", ms(120_000)),
            ("1h", ms(3_600_000)),
            (" 10 s ", ms(10_000)),
            ("10", ms(10_000)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(parse(text), Ok(want), "{text:?}");
        }
        for bad in [
            "",
            "s",
            "ten seconds",
            "10 parsecs",
            "-1s",
            "1e12s",
            "1.2.3s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse("10 parsecs").unwrap_err().contains("ms, s, m or h"));
    }

    #[test]
    fn printing_reads_back_the_same() {
        for millis in [
            0, 1, 100, 999, 1_000, 1_500, 10_000, 120_000, 3_600_000, 86_400_123,
        ] {
            let d = Duration::from_millis(millis);
            let text = format(&d);
            assert_eq!(parse(&text), Ok(d), "{text}");
        }
        assert_eq!(format(&Duration::from_secs(10)), "10s");
        assert_eq!(format(&Duration::from_millis(500)), "500ms");
        assert_eq!(format(&Duration::from_millis(12_500)), "12.5s");
        assert_eq!(format(&Duration::from_millis(1_001)), "1.001s");
    }

    #[test]
    fn toml_text_integers_and_floats() {
        #[derive(Deserialize, serde::Serialize)]
        struct T {
            #[serde(with = "super")]
            d: Duration,
        }
        let read = |s: &str| toml::from_str::<T>(s).map(|t| t.d);
        assert_eq!(read("d = \"2m\"").unwrap(), Duration::from_secs(120));
        assert_eq!(read("d = 5").unwrap(), Duration::from_secs(5));
        assert_eq!(read("d = 0.25").unwrap(), Duration::from_millis(250));
        assert!(read("d = -1").is_err());
        assert!(read("d = \"soon\"").is_err());
        let t = T {
            d: Duration::from_millis(1500),
        };
        assert_eq!(toml::to_string(&t).unwrap().trim(), "d = \"1.5s\"");
    }
}
