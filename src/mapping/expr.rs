//! The source expressions of a mapping line (a closed set, no general language):
//!
//! ```text
//! fieldName            a decoded field (dotted path for nested blocks; `list[0].field` for a
//!                      list's first item; `recordType`, `recordLength`, `archiveTimestamp`,
//!                      `netmapId`, `payload` are available for every record)
//! @name                a resolved name (metadata); a missing name yields the id
//! 'text'               a constant (use it for labels: cs1Label = "'Firewall Rule'")
//! ms(sec)              seconds → milliseconds since the epoch (CEF timestamps)
//! ms(sec, usec)        seconds + microseconds → milliseconds
//! ipv4(addr)           the address when it is IPv4 (or IPv4-mapped IPv6), else nothing
//! ipv6(addr)           the address when it is real IPv6 (not mapped, not ::), else nothing
//! lookup(x, table)     x's text looked up in [tables.table] of the same file; unknown → x
//! first(a, b, ...)     the first argument that is not empty
//! truncate(x, n)       at most n characters
//! hex(x)               bytes as lowercase hex
//! ascii(x)             bytes as printable ASCII, others as '.' (packet payloads)
//! ```

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Field(String),
    Resolved(String),
    Const(String),
    Call(Func, Vec<Expr>),
    /// A number argument (truncate's length).
    Number(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Ms,
    Ipv4,
    Ipv6,
    Lookup,
    First,
    Truncate,
    Hex,
    Ascii,
    AsciiOnly,
    L7,
}

impl Func {
    fn from_name(s: &str) -> Option<Func> {
        Some(match s {
            "ms" => Func::Ms,
            "ipv4" => Func::Ipv4,
            "ipv6" => Func::Ipv6,
            "lookup" => Func::Lookup,
            "first" => Func::First,
            "truncate" => Func::Truncate,
            "hex" => Func::Hex,
            "ascii" => Func::Ascii,
            "ascii_only" => Func::AsciiOnly,
            "l7" => Func::L7,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Func::Ms => "ms",
            Func::Ipv4 => "ipv4",
            Func::Ipv6 => "ipv6",
            Func::Lookup => "lookup",
            Func::First => "first",
            Func::Truncate => "truncate",
            Func::Hex => "hex",
            Func::Ascii => "ascii",
            Func::AsciiOnly => "ascii_only",
            Func::L7 => "l7",
        }
    }

    /// Allowed argument counts.
    fn arity(self) -> (usize, usize) {
        match self {
            Func::Ms => (1, 2),
            Func::Ipv4 | Func::Ipv6 | Func::Hex | Func::Ascii | Func::AsciiOnly | Func::L7 => {
                (1, 1)
            }
            Func::Lookup | Func::Truncate => (2, 2),
            Func::First => (1, 16),
        }
    }
}

pub const FUNCTIONS: &str = "ms, ipv4, ipv6, lookup, first, truncate, hex, ascii, ascii_only, l7";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a source expression.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        text,
    };
    let e = p.expr()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(ParseError(format!(
            "unexpected {:?} after the expression in {text:?}",
            &text[p.i..]
        )));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return Err(ParseError(format!("empty expression in {:?}", self.text)));
        };
        match c {
            b'\'' => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != b'\'' {
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err(ParseError(format!("unclosed quote in {:?}", self.text)));
                }
                let v = self.text[start..self.i].to_string();
                self.i += 1;
                Ok(Expr::Const(v))
            }
            b'@' => {
                self.i += 1;
                let name = self.ident_path()?;
                Ok(Expr::Resolved(name))
            }
            b'0'..=b'9' => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                self.text[start..self.i]
                    .parse()
                    .map(Expr::Number)
                    .map_err(|_| ParseError(format!("number too large in {:?}", self.text)))
            }
            _ => {
                let name = self.ident_path()?;
                self.ws();
                if self.s.get(self.i) == Some(&b'(') {
                    let func = Func::from_name(&name).ok_or_else(|| {
                        ParseError(format!(
                            "unknown function {name}() in {:?}; the functions are {FUNCTIONS}",
                            self.text
                        ))
                    })?;
                    self.i += 1;
                    let mut args = Vec::new();
                    loop {
                        self.ws();
                        if self.s.get(self.i) == Some(&b')') {
                            self.i += 1;
                            break;
                        }
                        args.push(self.expr()?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b')') => {
                                self.i += 1;
                                break;
                            }
                            _ => {
                                return Err(ParseError(format!(
                                    "expected ',' or ')' in {:?}",
                                    self.text
                                )));
                            }
                        }
                    }
                    let (lo, hi) = func.arity();
                    if args.len() < lo || args.len() > hi {
                        return Err(ParseError(format!(
                            "{}() takes {} argument(s), not {} (in {:?})",
                            func.name(),
                            if lo == hi {
                                lo.to_string()
                            } else {
                                format!("{lo} to {hi}")
                            },
                            args.len(),
                            self.text
                        )));
                    }
                    Ok(Expr::Call(func, args))
                } else {
                    Ok(Expr::Field(name))
                }
            }
        }
    }

    fn ident_path(&mut self) -> Result<String, ParseError> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'_' | b'.' | b'[' | b']'))
        {
            self.i += 1;
        }
        if self.i == start {
            return Err(ParseError(format!(
                "expected a field name, @name, 'text' or a function at {:?}",
                &self.text[start..]
            )));
        }
        Ok(self.text[start..self.i].to_string())
    }
}

/// A header template: literal text with `{field}` and `{@name}` parts (`{{` and `}}` for braces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    Expr(Expr),
}

pub fn parse_template(text: &str) -> Result<Vec<TemplatePart>, ParseError> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|x| x.1) == Some('{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek().map(|x| x.1) == Some('}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let end = text[i..]
                    .find('}')
                    .ok_or_else(|| ParseError(format!("unclosed '{{' in template {text:?}")))?;
                let inner = &text[i + 1..i + end];
                if !lit.is_empty() {
                    parts.push(TemplatePart::Text(std::mem::take(&mut lit)));
                }
                parts.push(TemplatePart::Expr(parse(inner)?));
                while chars.peek().is_some_and(|x| x.0 <= i + end) {
                    chars.next();
                }
            }
            '}' => {
                return Err(ParseError(format!(
                    "stray '}}' in template {text:?} (write '}}}}')"
                )));
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(TemplatePart::Text(lit));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse() {
        assert_eq!(
            parse("initiatorPort").unwrap(),
            Expr::Field("initiatorPort".into())
        );
        assert_eq!(parse("@sensor").unwrap(), Expr::Resolved("sensor".into()));
        assert_eq!(
            parse("'fw Policy'").unwrap(),
            Expr::Const("fw Policy".into())
        );
        assert_eq!(
            parse("ms(eventSecond, eventMicrosecond)").unwrap(),
            Expr::Call(
                Func::Ms,
                vec![
                    Expr::Field("eventSecond".into()),
                    Expr::Field("eventMicrosecond".into())
                ]
            )
        );
        assert_eq!(
            parse("first(@user, 'unknown')").unwrap(),
            Expr::Call(
                Func::First,
                vec![Expr::Resolved("user".into()), Expr::Const("unknown".into())]
            )
        );
        assert_eq!(
            parse("userLogin.vpnSession[0].clientIP").unwrap(),
            Expr::Field("userLogin.vpnSession[0].clientIP".into())
        );
    }

    #[test]
    fn errors_say_what_is_valid() {
        assert!(parse("foo(x)").unwrap_err().0.contains("ms, ipv4"));
        assert!(parse("ms()").unwrap_err().0.contains("takes 1 to 2"));
        assert!(parse("'open").unwrap_err().0.contains("unclosed"));
        assert!(parse("a b").unwrap_err().0.contains("unexpected"));
    }

    #[test]
    fn templates_split_text_and_expressions() {
        assert_eq!(
            parse_template("INTRUSION:400:{generatorId}:{@renderedId}").unwrap(),
            vec![
                TemplatePart::Text("INTRUSION:400:".into()),
                TemplatePart::Expr(Expr::Field("generatorId".into())),
                TemplatePart::Text(":".into()),
                TemplatePart::Expr(Expr::Resolved("renderedId".into())),
            ]
        );
        assert_eq!(
            parse_template("a{{b}}").unwrap(),
            vec![TemplatePart::Text("a{b}".into())]
        );
        assert!(parse_template("x{y").is_err());
    }
}
