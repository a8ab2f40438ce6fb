//! The house's one rule that a compiler does not check: data flows one way
//! through harness/src (matrix -> guest -> workload -> results -> stats ->
//! report). A module that imports one which imports it back fails here,
//! naming the modules of the cycle.

use petgraph::graphmap::DiGraphMap;
use regex::Regex;
use std::collections::BTreeMap;
use std::path::Path;

/// `kernel::build` for src/kernel/build.rs, `results` for src/results/mod.rs.
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Each module of harness/src and the modules its non-test code names
/// (`crate::a::b`, `super::x`), resolved to the longest module that exists.
/// A child naming its own ancestor is how Rust modules share their parent's
/// items, not a cycle.
fn imports() -> BTreeMap<String, Vec<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut text = BTreeMap::new();
    for e in walkdir::WalkDir::new(&src).into_iter().map(|e| e.unwrap()) {
        if e.path().extension().is_some_and(|x| x == "rs") {
            let m = module_of(e.path().strip_prefix(&src).unwrap());
            if m != "main" && m != "lib" {
                let t = std::fs::read_to_string(e.path()).unwrap();
                text.insert(m, t.split("#[cfg(test)]").next().unwrap().to_string());
            }
        }
    }
    let path = Regex::new(r"\b(crate|super)::([a-z_]+(?:::[a-z_]+)*)").unwrap();
    let mut out = BTreeMap::new();
    for (m, t) in &text {
        let parent = m.rsplit_once("::").map(|(p, _)| p.to_string()).unwrap_or_default();
        let mut to = Vec::new();
        for c in path.captures_iter(t) {
            let base = if &c[1] == "super" { parent.clone() } else { String::new() };
            let parts: Vec<&str> = c[2].split("::").collect();
            let found = (1..=parts.len()).rev().map(|k| {
                let tail = parts[..k].join("::");
                if base.is_empty() {
                    tail
                } else {
                    format!("{base}::{tail}")
                }
            });
            if let Some(target) = found.into_iter().find(|t| text.contains_key(t)) {
                if &target != m && !m.starts_with(&format!("{target}::")) && !to.contains(&target) {
                    to.push(target);
                }
            }
        }
        out.insert(m.clone(), to);
    }
    out
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let deps = imports();
    assert!(deps.len() > 40 && deps["matrix::run"].contains(&"guest::machine".to_string()), "{deps:?}");
    let mut g = DiGraphMap::<&str, ()>::new();
    for (m, to) in &deps {
        g.add_node(m);
        for t in to {
            g.add_edge(m, t, ());
        }
    }
    // Folder level too: matrix/ -> guest/ -> matrix/ through different files
    // is still a loop a reader has to follow.
    let top = |m: &str| m.split("::").next().unwrap().to_string();
    let tops: Vec<(String, String)> =
        deps.iter().flat_map(|(m, to)| to.iter().map(move |t| (top(m), top(t)))).filter(|(a, b)| a != b).collect();
    let mut t = DiGraphMap::<&str, ()>::new();
    for (a, b) in &tops {
        t.add_edge(a.as_str(), b.as_str(), ());
    }
    let cycles: Vec<Vec<&str>> = petgraph::algo::tarjan_scc(&g)
        .into_iter()
        .chain(petgraph::algo::tarjan_scc(&t))
        .filter(|c| c.len() > 1)
        .collect();
    assert!(cycles.is_empty(), "import cycles (each group imports itself through the others): {cycles:?}");
}
