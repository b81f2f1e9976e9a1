//! Dependencies between the source files point one way: configuration types at the bottom, the
//! stages above them. Two files that import each other (`config.rs` needing the session's type
//! while the session needs the configuration's) make every change to one a change to both; this
//! test finds such circles of any length in `src/` and names them.
//!
//! A file's imports are the `crate::a::b` and `super::a` paths in its code before its
//! `#[cfg(test)]` part (unit tests may reach anywhere). Each path is taken to the file that
//! defines its longest existing module prefix; a module's own children and parents are not
//! counted (a `mod.rs` declares its children, and children may use their parent's items).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`net::tls`) → source file, for every `.rs` file under `src/`.
fn modules(src: &Path) -> BTreeMap<String, std::path::PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|p| p == "mod") {
                    parts.pop();
                }
                out.insert(parts.join("::"), path);
            }
        }
    }
    out
}

/// The identifiers-and-`::` path that starts at `at` in `code`.
fn path_at(code: &str, at: usize) -> &str {
    let rest = &code[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].trim_end_matches(':')
}

fn resolve(mods: &BTreeMap<String, std::path::PathBuf>, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|k| parts[..k].join("::"))
        .find(|m| mods.contains_key(m))
}

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(src);
    let mut graph = BTreeMap::new();
    for (module, file) in &mods {
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let parent: Vec<&str> = module.split("::").collect();
        let parent = parent[..parent.len().saturating_sub(1)].join("::");
        let mut deps = BTreeSet::new();
        for (prefix, base) in [("crate::", String::new()), ("super::", parent)] {
            for (at, _) in code.match_indices(prefix) {
                // `estreamer_cef::crate::` never appears; skip `xcrate::`-like identifiers.
                if code[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                let path = path_at(code, at + prefix.len());
                let full = if base.is_empty() {
                    path.to_string()
                } else {
                    format!("{base}::{path}")
                };
                if let Some(target) = resolve(&mods, &full)
                    && !related(module, &target)
                {
                    deps.insert(target);
                }
            }
        }
        graph.insert(module.clone(), deps);
    }
    graph
}

/// Every circle of imports, each as the list of modules around it (smallest module first).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        trail: &mut Vec<String>,
        found: &mut BTreeSet<Vec<String>>,
    ) {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                found.insert(trail.clone());
            } else if next.as_str() > start && !trail.contains(next) && trail.len() < 8 {
                trail.push(next.clone());
                walk(graph, start, next, trail, found);
                trail.pop();
            }
        }
    }
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        let mut trail = vec![start.clone()];
        walk(graph, start, start, &mut trail, &mut found);
    }
    found
}

#[test]
fn no_source_file_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    assert!(
        graph.len() > 50,
        "found only {} modules under src/",
        graph.len()
    );
    let found = circles(&graph);
    let shown: Vec<String> = found
        .iter()
        .map(|c| format!("{} -> {}", c.join(" -> "), c[0]))
        .collect();
    assert!(
        found.is_empty(),
        "import circles in src/ (give the shared type one home below both):\n  {}",
        shown.join("\n  ")
    );
}

#[test]
fn the_circle_finder_sees_a_circle() {
    // The checker itself: a graph with a known three-module circle and a tail.
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [
        ("config", "net::tls"),
        ("net::tls", "output"),
        ("output", "config"),
        ("cli", "config"),
    ] {
        g.entry(a.into()).or_default().insert(b.into());
        g.entry(b.into()).or_default();
    }
    let found = circles(&g);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec![vec![
            "config".to_string(),
            "net::tls".into(),
            "output".into()
        ]]
    );
}
