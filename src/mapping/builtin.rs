//! The built-in mapping tables and profiles, embedded by `src/build.rs`, and the profile names.
//! A leaf module: the configuration checks `[cef] profile` against these names without
//! depending on the mapping compiler (which depends on the configuration).

include!(concat!(env!("OUT_DIR"), "/builtin_mappings.rs"));

/// The profile that changes nothing: the built-in tables as they are.
pub const STANDARD: &str = "standard";

/// The profiles `[cef] profile` can name: "standard", then the shipped ones.
pub fn profile_names() -> Vec<&'static str> {
    std::iter::once(STANDARD)
        .chain(PROFILES.iter().map(|(name, _)| *name))
        .collect()
}

/// The patch files of a profile; `None` for a name that is not a profile.
pub fn profile_files(name: &str) -> Option<&'static [(&'static str, &'static str)]> {
    if name == STANDARD {
        return Some(&[]);
    }
    PROFILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, files)| *files)
}
