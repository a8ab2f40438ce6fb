//! YAML loading with errors that name the file, line and column.

use crate::failure::{Classify, Failure, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_yaml::from_str(text).map_err(|e| {
        let at = match e.location() {
            Some(l) => format!("{}:{}:{}", path.display(), l.line(), l.column()),
            None => path.display().to_string(),
        };
        // The library appends "at line L column C"; we already said where.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        Failure::input(format!("{at}: {msg}"))
    })
}

pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).input(|| format!("cannot read {}", path.display()))?;
    parse(path, &text)
}

/// Load `DIR/NAME.yaml`, one of the project's named data files (variants,
/// arches, profiles, workloads). An unknown name lists the known ones.
pub fn load_named<T: DeserializeOwned>(dir: &Path, kind: &str, name: &str) -> Result<(T, std::path::PathBuf)> {
    crate::paths::check_name(kind, name).map_err(Failure::input)?;
    let file = dir.join(format!("{name}.yaml"));
    if !file.exists() {
        return Err(Failure::input(format!(
            "unknown {kind} `{name}`: no {} (known: {})",
            file.display(),
            names(dir).join(", ")
        )));
    }
    Ok((load(&file)?, file))
}

/// The stems of every `*.yaml` in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".yaml").map(str::to_string)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The first of `wanted` that names no `*.yaml` in `dir`, with the known
/// names: for data files that name others (a profile's workloads, a
/// workload's profiles).
pub fn first_unknown<'a>(dir: &Path, wanted: &'a [String]) -> Option<(&'a str, String)> {
    let known = names(dir);
    wanted.iter().find(|w| !known.contains(w)).map(|w| (w.as_str(), known.join(", ")))
}
