//! The fixed part of the CEF header (`CEF:0|vendor|product|version|`), checked and escaped once.

use super::escape;

/// Vendor, product and version of every line. With the defaults, ArcSight content built for
/// Cisco's eNcore (which sends `Cisco|Firepower|6.0`) keeps matching our events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CefHeader {
    vendor: String,
    product: String,
    version: String,
    /// `CEF:0|vendor|product|version|`, escaped.
    prefix: Box<[u8]>,
}

/// Header field limits in characters (CEF standard, "Header Information").
pub const VENDOR_MAX_CHARS: u32 = 63;
pub const PRODUCT_MAX_CHARS: u32 = 63;
pub const VERSION_MAX_CHARS: u32 = 31;
pub const CLASS_ID_MAX_CHARS: u32 = 1023;
pub const NAME_MAX_CHARS: u32 = 512;
/// Highest CEF severity; larger values are clamped.
pub const SEVERITY_MAX: u8 = 10;

pub const DEFAULT_VENDOR: &str = "Cisco";
pub const DEFAULT_PRODUCT: &str = "Firepower";
pub const DEFAULT_VERSION: &str = "6.0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error(
        "CEF header field `{field}` is empty; some CEF parsers reject a line with an empty header field. Set a value (default {default:?})"
    )]
    Empty {
        field: &'static str,
        default: &'static str,
    },
    #[error(
        "CEF header field `{field}` is {chars} characters long; the CEF limit is {max}. Shorten it"
    )]
    TooLong {
        field: &'static str,
        chars: usize,
        max: u32,
    },
    #[error(
        "CEF header field `{field}` contains the control character {found:?}; use printable text only"
    )]
    ControlCharacter { field: &'static str, found: char },
}

impl Default for CefHeader {
    fn default() -> Self {
        CefHeader::new(DEFAULT_VENDOR, DEFAULT_PRODUCT, DEFAULT_VERSION)
            .expect("the default header is valid")
    }
}

impl CefHeader {
    /// Checks and escapes the three configured header fields. These come from configuration, so
    /// problems are errors (naming the field) instead of silent repairs.
    pub fn new(vendor: &str, product: &str, version: &str) -> Result<CefHeader, HeaderError> {
        check("vendor", vendor, VENDOR_MAX_CHARS, DEFAULT_VENDOR)?;
        check("product", product, PRODUCT_MAX_CHARS, DEFAULT_PRODUCT)?;
        check("version", version, VERSION_MAX_CHARS, DEFAULT_VERSION)?;
        let mut prefix = b"CEF:0|".to_vec();
        for field in [vendor, product, version] {
            escape::escape_header(&mut prefix, field.as_bytes());
            prefix.push(b'|');
        }
        Ok(CefHeader {
            vendor: vendor.to_owned(),
            product: product.to_owned(),
            version: version.to_owned(),
            prefix: prefix.into(),
        })
    }

    pub fn vendor(&self) -> &str {
        &self.vendor
    }
    pub fn product(&self) -> &str {
        &self.product
    }
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `CEF:0|vendor|product|version|` as written on the wire.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }
}

fn check(
    field: &'static str,
    value: &str,
    max: u32,
    default: &'static str,
) -> Result<(), HeaderError> {
    if value.is_empty() {
        return Err(HeaderError::Empty { field, default });
    }
    if let Some(found) = value.chars().find(|c| c.is_ascii_control()) {
        return Err(HeaderError::ControlCharacter { field, found });
    }
    let chars = value.chars().count();
    if chars > max as usize {
        return Err(HeaderError::TooLong { field, chars, max });
    }
    Ok(())
}
