//! The guest's root filesystem: an initramfs assembled in-process (no
//! cpio/fakeroot on the host), cached by the content of everything in it.
//!
//! Contents: Debian's static busybox for the guest's architecture,
//! `rootfs/overlay/` as is (the /init that runs workloads and the channel
//! helpers), every `workloads/*.sh` under /bounce/workloads, and the
//! programs built from the kernel tree under test (dma_map_benchmark).

pub mod debian;
pub mod programs;
pub mod tools;

use crate::failure::{Classify, Failure, Result};
use crate::kernel::Kernel;
use std::io::Cursor;
use std::path::{Path, PathBuf};

struct Entry {
    path: String,
    mode: u32,
    data: Vec<u8>,
    rdev: Option<(u32, u32)>,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).infra(|| format!("initramfs: cannot read {}", path.display()))
}

fn file(path: &str, mode: u32, data: Vec<u8>) -> Entry {
    Entry { path: path.into(), mode: S_IFREG | mode, data, rdev: None }
}

/// Files under `dir`, relative paths sorted (so the archive, and its key,
/// do not depend on directory order).
pub(crate) fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).follow_links(true).sort_by_file_name() {
        let e = e.infra(|| format!("cannot walk {}", dir.display()))?;
        if !e.file_type().is_dir() {
            out.push(e.path().strip_prefix(dir).unwrap_or(e.path()).to_path_buf());
        }
    }
    out.sort();
    Ok(out)
}

fn entries(root: &Path, cache: &Path, kernel: &Kernel) -> Result<Vec<Entry>> {
    let mut v = shared_entries(root, cache, &kernel.arch)?;
    v.push(file("usr/bin/dma_map_benchmark", 0o755, read(&kernel.dma_map_benchmark())?));
    Ok(v)
}

/// What every kernel of `arch` boots with (all but the tool built against
/// each kernel's tree): its hash is the guest root filesystem's identity,
/// which two runs must share for their numbers to compare.
pub fn identity(root: &Path, cache: &Path, arch: &crate::kernel::arch::Arch) -> Result<String> {
    Ok(key(&shared_entries(root, cache, arch)?))
}

fn key(entries: &[Entry]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"bounce-initramfs-v1\0");
    for e in entries {
        h.update(e.path.as_bytes());
        h.update(&e.mode.to_le_bytes());
        h.update(&(e.data.len() as u64).to_le_bytes());
        h.update(&e.data);
    }
    h.finalize().to_hex()[..20].to_string()
}

fn shared_entries(root: &Path, cache: &Path, arch: &crate::kernel::arch::Arch) -> Result<Vec<Entry>> {
    use std::os::unix::fs::PermissionsExt;
    let mut v = Vec::new();
    for d in [
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "etc",
        "root",
        "bounce",
        "bounce/workloads",
    ] {
        v.push(Entry { path: d.into(), mode: S_IFDIR | 0o755, data: Vec::new(), rdev: None });
    }
    // The kernel opens /dev/console before /init runs (and before devtmpfs
    // is mounted): without the node, init has no stdin/stdout.
    v.push(Entry { path: "dev/console".into(), mode: S_IFCHR | 0o600, data: Vec::new(), rdev: Some((5, 1)) });
    let busybox = debian::unpacked(cache, &arch.debian_arch, &["busybox-static".to_string()])?;
    v.push(file("bin/busybox", 0o755, read(&busybox.join("bin/busybox"))?));
    let overlay = root.join("rootfs/overlay");
    for rel in walk(&overlay)? {
        let p = overlay.join(&rel);
        let mode = std::fs::metadata(&p).infra(|| format!("cannot read {}", p.display()))?.permissions().mode() & 0o777;
        v.push(file(&rel.to_string_lossy(), mode, read(&p)?));
    }
    let wl = root.join("workloads");
    for rel in walk(&wl)?.into_iter().filter(|p| p.extension().is_some_and(|e| e == "sh")) {
        v.push(file(&format!("bounce/workloads/{}", rel.display()), 0o644, read(&wl.join(&rel))?));
    }
    for (name, bin) in programs::build_all(root, cache, arch)? {
        v.push(file(&format!("usr/bin/{name}"), 0o755, read(&bin)?));
    }
    Ok(v)
}

/// Build (or find) the initramfs for `kernel`; returns its path.
pub fn ensure(root: &Path, cache: &Path, kernel: &Kernel) -> Result<PathBuf> {
    let entries = entries(root, cache, kernel)?;
    let key = key(&entries);
    let dir = cache.join("initramfs");
    let out = dir.join(format!("{key}.cpio"));
    if crate::paths::is_sealed(&out) {
        return Ok(out);
    }
    std::fs::create_dir_all(&dir).infra(|| format!("cannot create {}", dir.display()))?;
    let tmp = crate::paths::temp_beside(&out);
    let f = std::fs::File::create(&tmp).infra(|| format!("cannot create {}", tmp.display()))?;
    let inputs = entries.into_iter().enumerate().map(|(i, e)| {
        let mut b = cpio::newc::Builder::new(&e.path).ino(i as u32 + 1).mode(e.mode).nlink(if e.mode & S_IFDIR != 0 {
            2
        } else {
            1
        });
        if let Some((maj, min)) = e.rdev {
            b = b.rdev_major(maj).rdev_minor(min);
        }
        (b, Cursor::new(e.data))
    });
    // Flushed and synced by hand: a BufWriter dropped swallows the error
    // of its last write (a full disk), and the cut archive would boot.
    let written =
        cpio::write_cpio(inputs, std::io::BufWriter::new(f)).and_then(|w| w.into_inner().map_err(|e| e.into_error()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Failure::infra(format!("cannot write {}: {e}", out.display())));
    }
    crate::paths::install_sealed(&tmp, &out)?;
    Ok(out)
}
