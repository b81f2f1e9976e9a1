//! Decoding eStreamer records: the catalog of layouts (data), its compiled form, the interpreter,
//! values and their text forms, and JSON output for `estreamer-cef decode`.

pub mod catalog;
pub mod record;
pub mod schema;
pub mod value;

pub use catalog::{Catalog, catalog};
pub use record::{DecodeError, Decoder, Record, RecordHeader};
pub use schema::Slot;
pub use schema::{Category, FieldKind, FieldRef, RecordSchema, Scalar, Scope};
pub use value::Value;
pub mod filter;
pub mod json;
pub mod stream;
