//! The read-only tools disk: Debian's fio and iperf3 for the guest's
//! architecture, with exactly the shared libraries they load, on an ext2
//! image (built by `mke2fs -d`, no root needed). Debian's fio pulls in
//! about 80 MB of libraries (ceph, gluster, ICU): far too much for an
//! initramfs every boot unpacks, but a disk is read only as far as used.
//!
//! In the guest: `/tools/bin/NAME` runs a program through the image's own
//! dynamic loader, so nothing of the image needs to be installed.

use super::debian;
use crate::failure::{Classify, Failure, Result};
use crate::host::{apt, cmd};
use crate::kernel::arch::Arch;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

const SCHEMA: &str = "bounce-tools-v1";

/// The programs and the Debian packages that carry them.
pub const PROGRAMS: &[(&str, &str)] = &[("fio", "fio"), ("iperf3", "iperf3")];

/// The image for `arch`, built once per set of package versions.
pub fn image(cache: &Path, arch: &Arch) -> Result<PathBuf> {
    let packages = closure(cache, &arch.debian_arch, &PROGRAMS.iter().map(|p| p.1.to_string()).collect::<Vec<_>>())?;
    let unpacked = debian::unpacked(cache, &arch.debian_arch, &packages)?;
    let key = {
        let mut h = blake3::Hasher::new();
        h.update(SCHEMA.as_bytes());
        h.update(unpacked.to_string_lossy().as_bytes());
        h.finalize().to_hex()[..16].to_string()
    };
    let dir = cache.join("tools").join(&arch.name);
    let img = dir.join(format!("{key}.ext2"));
    if crate::paths::is_sealed(&img) {
        return Ok(img);
    }
    std::fs::create_dir_all(&dir).infra(|| format!("cannot create {}", dir.display()))?;
    let _lock = crate::lock::Lock::exclusive(&dir.join(format!("{key}.lock")))?;
    if crate::paths::is_sealed(&img) {
        return Ok(img);
    }
    let staging = dir.join(format!("{key}.root"));
    let _ = std::fs::remove_dir_all(&staging);
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    let loader = find_loader(&unpacked)?;
    files.insert(loader.clone());
    let mut wrappers = Vec::new();
    for (prog, _) in PROGRAMS {
        let bin = PathBuf::from(format!("usr/bin/{prog}"));
        if !unpacked.join(&bin).is_file() {
            return Err(Failure::infra(format!("{} has no {}", unpacked.display(), bin.display())));
        }
        libraries(&unpacked, &bin, &mut files)?;
        wrappers.push((prog, bin));
    }
    for rel in &files {
        let to = staging.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).infra(|| format!("cannot create {}", to.display()))?;
        // Follow symlinks: the image holds plain files only.
        std::fs::copy(unpacked.join(rel), &to).infra(|| format!("cannot copy {}", rel.display()))?;
    }
    let lib_path: Vec<String> = files
        .iter()
        .filter_map(|f| f.parent().map(|p| format!("/tools/{}", p.display())))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    std::fs::create_dir_all(staging.join("bin")).infra(|| "cannot create bin/".into())?;
    for (prog, bin) in wrappers {
        let w = staging.join("bin").join(prog);
        std::fs::write(
            &w,
            format!(
                "#!/bin/sh\nexec /tools/{} --library-path {} /tools/{} \"$@\"\n",
                loader.display(),
                lib_path.join(":"),
                bin.display()
            ),
        )
        .infra(|| format!("cannot write {}", w.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).infra(|| "chmod".into())?;
    }
    let bytes = crate::kernel::cache::du(&staging);
    let mib = bytes / (1 << 20) * 5 / 4 + 16;
    let tmp = crate::paths::temp_beside(&img);
    let _ = std::fs::remove_file(&tmp);
    cmd::run(
        Command::new("mke2fs")
            .args(["-q", "-t", "ext2", "-L", "bounce-tools", "-d"])
            .arg(&staging)
            .arg(&tmp)
            .arg(format!("{mib}M")),
    )?;
    crate::paths::install_sealed(&tmp, &img)?;
    let _ = std::fs::remove_dir_all(&staging);
    Ok(img)
}

/// The packages that hold `top` and every library package they depend on,
/// transitively (Depends and Pre-Depends, first of each alternative). Only
/// packages in Debian's `libs` section are followed: the rest (python3,
/// perl, debconf) are scripts and setup that the binaries never load.
fn closure(cache: &Path, arch: &str, top: &[String]) -> Result<Vec<String>> {
    let mut seen: BTreeSet<String> = top.iter().cloned().collect();
    let mut queue: VecDeque<String> = top.iter().cloned().collect();
    while !queue.is_empty() {
        let batch: Vec<String> = queue.drain(..).collect();
        let mut found: Vec<String> = Vec::new();
        let mut args: Vec<String> = ["depends", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks"]
            .iter()
            .chain(&["--no-replaces", "--no-enhances"])
            .map(|a| a.to_string())
            .collect();
        args.extend(batch.iter().map(|p| format!("{p}:{arch}")));
        let out = apt::query(cache, &args)?;
        let mut alternative = false;
        for line in out.lines() {
            let t = line.trim_start();
            let (is_dep, alt) = match t.split_once(':') {
                Some(("Depends" | "PreDepends", _)) => (true, false),
                Some(("|Depends" | "|PreDepends", _)) => (true, true),
                _ => (false, false),
            };
            if !is_dep {
                alternative = false;
                continue;
            }
            let skip = alternative;
            alternative = alt;
            if skip {
                continue;
            }
            let name = t.split_once(':').unwrap().1.trim();
            let name = name.split(':').next().unwrap_or(name).to_string();
            if !name.starts_with('<') && !seen.contains(&name) && !found.contains(&name) {
                found.push(name);
            }
        }
        for name in libraries_among(cache, arch, &found)? {
            seen.insert(name.clone());
            queue.push_back(name);
        }
    }
    Ok(seen.into_iter().collect())
}

/// The packages of `names` that Debian files under a `libs` section.
fn libraries_among(cache: &Path, arch: &str, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["show".to_string(), "--no-all-versions".to_string()];
    args.extend(names.iter().map(|p| format!("{p}:{arch}")));
    let out = apt::query(cache, &args)?;
    let mut libs = Vec::new();
    let mut package: Option<&str> = None;
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("Package: ") {
            package = Some(p.trim());
        } else if let (Some(p), Some(section)) = (package, line.strip_prefix("Section: ")) {
            if section.trim().rsplit('/').next().is_some_and(|s| s.ends_with("libs")) && !libs.iter().any(|l| l == p) {
                libs.push(p.to_string());
            }
        }
    }
    Ok(libs)
}

fn find_loader(root: &Path) -> Result<PathBuf> {
    for dir in ["lib", "usr/lib", "lib64"] {
        let d = root.join(dir);
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("ld-linux") && name.contains(".so") {
                return Ok(p.strip_prefix(root).unwrap().to_path_buf());
            }
            if p.is_dir() {
                if let Some(l) = std::fs::read_dir(&p).ok().and_then(|rd| {
                    rd.flatten().find(|e| e.file_name().to_string_lossy().starts_with("ld-linux")).map(|e| e.path())
                }) {
                    return Ok(l.strip_prefix(root).unwrap().to_path_buf());
                }
            }
        }
    }
    Err(Failure::infra(format!("no ld-linux*.so in {} (is libc6 unpacked?)", root.display())))
}

/// The directories a soname is looked up in, relative to the root.
fn lib_dirs(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for base in ["lib", "usr/lib"] {
        if let Ok(rd) = std::fs::read_dir(root.join(base)) {
            for e in rd.flatten() {
                if e.path().is_dir() && e.file_name().to_string_lossy().contains("-linux-") {
                    v.push(PathBuf::from(base).join(e.file_name()));
                }
            }
        }
        v.push(PathBuf::from(base));
    }
    v
}

/// Add the shared libraries `bin` loads, transitively, to `files`
/// (read with readelf, which reads any architecture's ELF).
fn libraries(root: &Path, bin: &Path, files: &mut BTreeSet<PathBuf>) -> Result<()> {
    let dirs = lib_dirs(root);
    let mut queue = vec![bin.to_path_buf()];
    while let Some(f) = queue.pop() {
        let out = cmd::stdout(Command::new("readelf").args(["-d", "-W"]).arg(root.join(&f)))?;
        let bracketed = |l: &str| l.split('[').nth(1).and_then(|s| s.split(']').next()).map(str::to_string);
        // RUNPATH/RPATH (librados keeps libceph-common in a ceph/ subdir).
        let mut search: Vec<PathBuf> = out
            .lines()
            .filter(|l| l.contains("(RUNPATH)") || l.contains("(RPATH)"))
            .filter_map(bracketed)
            .flat_map(|p| p.split(':').map(|d| PathBuf::from(d.trim_start_matches('/'))).collect::<Vec<_>>())
            .collect();
        search.extend(dirs.iter().cloned());
        for line in out.lines().filter(|l| l.contains("(NEEDED)")) {
            let Some(soname) = bracketed(line) else { continue };
            let found = search.iter().map(|d| d.join(&soname)).find(|p| root.join(p).exists()).ok_or_else(|| {
                Failure::infra(format!("{} needs {soname}, which no unpacked package provides", f.display()))
            })?;
            if files.insert(found.clone()) {
                queue.push(found);
            }
        }
        files.insert(f);
    }
    Ok(())
}
