//! Embeds the built-in mapping tables (`mappings/*.toml`) and the profiles
//! (`mappings/profiles/<name>/*.toml`) so the binary works alone.

use std::path::Path;

fn main() {
    // Read when the script runs, not when it was compiled: a build script compiled in another
    // checkout (a copied target/ folder) would otherwise embed that checkout's tables.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("mappings");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code = String::from(
        "/// Built-in mapping tables: (file name, contents).\npub const BUILTIN: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_string_lossy();
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    // Profiles: `mappings/profiles/<name>/*.toml`, patches applied over the built-in tables.
    code.push_str(
        "/// Profiles: (name, [(file name, contents)]), patches over the built-in tables.\npub const PROFILES: &[(&str, &[(&str, &str)])] = &[\n",
    );
    let profiles = dir.join("profiles");
    println!("cargo:rerun-if-changed={}", profiles.display());
    let mut names: Vec<_> = std::fs::read_dir(&profiles)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for p in &names {
        println!("cargo:rerun-if-changed={}", p.display());
        let name = p.file_name().unwrap().to_string_lossy();
        code.push_str(&format!("    ({name:?}, &[\n"));
        let mut files: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in &files {
            println!("cargo:rerun-if-changed={}", f.display());
            let file = f.file_name().unwrap().to_string_lossy();
            code.push_str(&format!(
                "        ({:?}, include_str!({:?})),\n",
                format!("profiles/{name}/{file}"),
                f.display().to_string()
            ));
        }
        code.push_str("    ]),\n");
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("builtin_mappings.rs");
    std::fs::write(out, code).unwrap();
}
