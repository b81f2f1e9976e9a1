//! cef
