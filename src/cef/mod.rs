//! CEF encoder: turns mapped events into `CEF:0|…` lines for ArcSight.
//!
//! - [`dictionary`]: the extension dictionary as data ([`lookup`], [`label_for`], [`check_key`]).
//! - [`Key`]: a key checked once against the dictionary, with its type, limit and counters.
//! - [`CefEncoder`] / [`CefLine`]: write a line into a reused buffer, escaping in one pass.
//! - [`Warning`]: what was truncated, replaced or dropped in a line.
//! - [`CefText`]: a finished line as the outputs receive it.
//!
//! The rules implemented here are those of `shared/reference/cef-and-syslog.md`, section 1.

pub mod dictionary;
mod encoder;
mod escape;
mod header;
mod key;
mod text;
mod values;
mod warning;

pub use dictionary::{
    KeyCheck, KeyError, KeyInfo, KeyOptions, KeyOptionsError, MaxLen, Since, ValueType, check_key,
    label_for, lookup,
};
pub use encoder::{CefEncoder, CefLine, EncoderStats, Prepared, PreparedHeader, is_plain};
pub use header::{
    CLASS_ID_MAX_CHARS, CefHeader, DEFAULT_PRODUCT, DEFAULT_VENDOR, DEFAULT_VERSION, HeaderError,
    NAME_MAX_CHARS, PRODUCT_MAX_CHARS, SEVERITY_MAX, VENDOR_MAX_CHARS, VERSION_MAX_CHARS,
};
pub use key::{AddressKeys, Key, KeyStats};
pub use text::CefText;
pub use warning::{Field, Warning};
