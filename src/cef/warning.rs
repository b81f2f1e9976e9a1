//! What the encoder changed or dropped in one line, so the caller can count it and the tap can
//! show it next to the line.

use std::fmt;

use super::key::Key;

/// The part of a line a warning is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Header field 4, Device Event Class ID.
    ClassId,
    /// Header field 5, Name.
    Name,
    /// An extension pair.
    Extension(Key),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::ClassId => f.write_str("header Device Event Class ID"),
            Field::Name => f.write_str("header Name"),
            Field::Extension(key) => write!(f, "`{key}`"),
        }
    }
}

/// One change the encoder made to keep the line valid.
#[derive(Debug, Clone, PartialEq)]
pub enum Warning {
    /// The value had `chars` characters and was cut to `max`.
    Truncated {
        field: Field,
        chars: usize,
        max: u32,
    },
    /// `replaced` invalid UTF-8 sequences became U+FFFD.
    InvalidUtf8 { field: Field, replaced: u32 },
    /// `replaced` control characters (TAB, NUL, …; CR and LF too in the header) became spaces.
    ControlChars { field: Field, replaced: u32 },
    /// The key was already in this line; the second value was dropped.
    DuplicateKey { key: Key },
    /// Severity above 10 was written as 10.
    SeverityClamped { given: u8 },
    /// The number does not fit the key's type (Integer is 32-bit signed) and was clamped.
    NumberClamped { key: Key, given: i128, written: i64 },
    /// NaN or infinity has no CEF form; the pair was omitted.
    NotFinite { key: Key },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Truncated { field, chars, max } => {
                write!(f, "{field}: value cut from {chars} to {max} characters")
            }
            Warning::InvalidUtf8 { field, replaced } => write!(
                f,
                "{field}: {replaced} invalid UTF-8 sequence(s) replaced by U+FFFD"
            ),
            Warning::ControlChars { field, replaced } => write!(
                f,
                "{field}: {replaced} control character(s) replaced by a space"
            ),
            Warning::DuplicateKey { key } => {
                write!(f, "`{key}`: key already in this line; second value dropped")
            }
            Warning::SeverityClamped { given } => {
                write!(f, "severity {given} is above 10; written as 10")
            }
            Warning::NumberClamped {
                key,
                given,
                written,
            } => write!(
                f,
                "`{key}`: {given} does not fit its {} type; written as {written}",
                key.value_type()
            ),
            Warning::NotFinite { key } => {
                write!(f, "`{key}`: value is not a finite number; pair omitted")
            }
        }
    }
}
