//! Debian's binaries for a guest architecture (busybox, and the tools the
//! workloads run), fetched with `apt-get download` (no root needed once the
//! architecture is known to dpkg) and unpacked into the cache, keyed by the
//! exact package versions.

use crate::failure::{Classify, Failure, Result};
use crate::host::cmd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `PKG:ARCH` at the version apt would install.
fn version(cache: &Path, pkg: &str, arch: &str) -> Result<String> {
    let out = crate::host::apt::query(cache, &["show".into(), "--no-all-versions".into(), format!("{pkg}:{arch}")])
        .map_err(|_| {
            Failure::infra(format!(
                "apt knows no {pkg} for {arch}: run `dpkg --add-architecture {arch} && apt-get update` (as root; `bounce doctor` does it)"
            ))
        })?;
    out.lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| Failure::infra(format!("apt-cache shows no version of {pkg}:{arch}")))
}

/// A directory holding `packages` for `arch` unpacked over each other, as
/// they would be installed (without their maintainer scripts).
pub fn unpacked(cache: &Path, arch: &str, packages: &[String]) -> Result<PathBuf> {
    let mut pinned: Vec<String> = Vec::new();
    for p in packages {
        pinned.push(format!("{p}:{arch}={}", version(cache, p, arch)?));
    }
    pinned.sort();
    pinned.dedup();
    let mut h = blake3::Hasher::new();
    for p in &pinned {
        h.update(p.as_bytes());
        h.update(b"\0");
    }
    let key = &h.finalize().to_hex()[..16];
    let base = cache.join("debian").join(arch);
    let dir = base.join(key);
    let marker = base.join(format!("{key}.complete"));
    if marker.exists() && dir.is_dir() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&base).infra(|| format!("cannot create {}", base.display()))?;
    let _lock = crate::lock::Lock::exclusive(&base.join(format!("{key}.lock")))?;
    if marker.exists() && dir.is_dir() {
        return Ok(dir);
    }
    let debs = base.join(format!("{key}.debs"));
    let staging = base.join(format!("{key}.partial"));
    for d in [&debs, &staging] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).infra(|| format!("cannot create {}", d.display()))?;
    }
    crate::ui::line(format!("downloading {} for the {arch} guest", pinned.join(" ")));
    cmd::run(Command::new("apt-get").current_dir(&debs).arg("download").args(&pinned)).map_err(|e| {
        Failure::infra(format!("{} (offline? `apt-get update` first; the Debian mirror must be reachable)", e.message))
    })?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&debs)
        .infra(|| format!("cannot read {}", debs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for deb in files {
        cmd::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&staging))?;
    }
    let _ = std::fs::remove_dir_all(&debs);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).infra(|| format!("cannot move {} into place", staging.display()))?;
    crate::paths::write_atomic(&marker, pinned.join("\n").as_bytes())?;
    Ok(dir)
}
