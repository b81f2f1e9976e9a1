//! estreamer
