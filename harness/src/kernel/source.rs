//! Kernel source trees, unpacked once into the cache.

use super::variant::Source;
use crate::failure::{Failure, Result};
use crate::host::cmd;
use crate::paths::sanitize;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceTree {
    pub path: PathBuf,
    /// Stable identity for the build key: `debian:PKG=VERSION`.
    pub identity: String,
    /// `make kernelversion` of the tree.
    pub version: String,
}

pub fn prepare(cache: &Path, source: &Source) -> Result<SourceTree> {
    match source {
        Source::Debian(pkg) => debian(cache, pkg),
    }
}

/// The candidate version apt would download; local, no network.
fn candidate_version(pkg: &str) -> Result<String> {
    let out = cmd::stdout(Command::new("apt-cache").args(["show", "--no-all-versions", pkg]))?;
    out.lines().find_map(|l| l.strip_prefix("Version: ")).map(|v| v.trim().to_string()).ok_or_else(|| {
        Failure::infra(format!("apt knows no package `{pkg}`: run `apt-get update` (as root) and check the name"))
    })
}

fn debian(cache: &Path, pkg: &str) -> Result<SourceTree> {
    // A fresh machine has no package lists; root can fetch them.
    let version = match candidate_version(pkg) {
        Err(_) if crate::host::tools::may_install() => {
            crate::ui::line("apt knows no kernel source package yet: running apt-get update");
            cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
            candidate_version(pkg)?
        }
        v => v?,
    };
    let name = sanitize(&format!("{pkg}_{version}"));
    let src_root = cache.join("src");
    let tree = src_root.join(&name);
    let marker = src_root.join(format!("{name}.json"));
    if let Some(t) = read_marker(&marker) {
        return Ok(t);
    }
    std::fs::create_dir_all(&src_root)
        .map_err(|e| Failure::infra(format!("cannot create {}: {e}", src_root.display())))?;
    let _lock = crate::lock::Lock::exclusive(&src_root.join(format!("{name}.lock")))?;
    // Another process may have finished it while we waited for the lock.
    if let Some(t) = read_marker(&marker) {
        return Ok(t);
    }
    let dl = cache.join("downloads");
    std::fs::create_dir_all(&dl).map_err(|e| Failure::infra(format!("cannot create {}: {e}", dl.display())))?;
    crate::ui::line(format!("downloading {pkg} {version} with apt-get download"));
    cmd::run(Command::new("apt-get").current_dir(&dl).arg("download").arg(format!("{pkg}={version}"))).map_err(
        |e| {
            Failure::infra(format!(
                "{} (offline? run `apt-get update`, or put the .deb in {})",
                e.message,
                dl.display()
            ))
        },
    )?;
    let deb = std::fs::read_dir(&dl)
        .map_err(|e| Failure::infra(e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let f = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
            f.starts_with(&format!("{pkg}_")) && f.ends_with(".deb")
        })
        .ok_or_else(|| Failure::infra(format!("apt-get download left no {pkg}_{version}*.deb in {}", dl.display())))?;

    // Unpack beside the final place and rename: a half-unpacked tree must
    // never look like a tree.
    let tmp = src_root.join(format!("{name}.partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Failure::infra(e.to_string()))?;
    crate::ui::line(format!("unpacking {}", deb.display()));
    let script = "dpkg-deb --fsys-tarfile \"$1\" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' | tar -xJ --strip-components=1 -C \"$2\"";
    cmd::run(Command::new("sh").args(["-c", script, "unpack"]).arg(&deb).arg(&tmp))?;
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::rename(&tmp, &tree)
        .map_err(|e| Failure::infra(format!("cannot move {} into place: {e}", tmp.display())))?;
    let kver = cmd::stdout(Command::new("make").arg("-s").arg("-C").arg(&tree).arg("kernelversion"))?;
    let t = SourceTree { path: tree, identity: format!("debian:{pkg}={version}"), version: kver };
    std::fs::write(&marker, serde_json::to_string_pretty(&t).unwrap()).map_err(|e| Failure::infra(e.to_string()))?;
    let _ = std::fs::remove_file(&deb);
    Ok(t)
}

/// The marker is written last, after the rename: its presence means complete.
fn read_marker(marker: &Path) -> Option<SourceTree> {
    let t: SourceTree = serde_json::from_str(&std::fs::read_to_string(marker).ok()?).ok()?;
    t.path.join("Makefile").exists().then_some(t)
}
