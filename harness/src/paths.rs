//! Where things live: the project's data folders and the user's cache;
//! and how a file a later step trusts is written there (atomically) and
//! read back (sealed with its hash).

use crate::failure::{Classify, Failure, Result};
use std::path::{Path, PathBuf};

/// The checkout's top level, holding kernels/, profiles/, workloads/,
/// rootfs/, matrix.yaml and results/. Found from the build, so tests and
/// `cargo run` work from any directory; BOUNCE_ROOT overrides it.
pub fn project_root() -> PathBuf {
    if let Some(p) = std::env::var_os("BOUNCE_ROOT") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness/ has a parent").to_path_buf()
}

/// The cache survives clones: kernels take a quarter of an hour each to build.
/// Without HOME (a bare CI container, a systemd unit) the cache goes to a
/// directory of our own under the temporary directory, made 0700 and
/// checked: everything in it (kernels, guest programs, apt answers) is later
/// trusted, so a directory someone else made there first must not be used.
pub fn cache_root() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BOUNCE_CACHE") {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(p).join("bounce"));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home).join(".cache").join("bounce"));
    }
    let dir = std::env::temp_dir().join(format!("bounce-cache-{}", nix::unistd::geteuid()));
    private_dir(&dir)?;
    Ok(dir)
}

/// Make `dir` (0700) or accept it only if it is a real directory, ours, and
/// private: the caller will trust what it finds there.
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let refuse = |why: String| {
        Failure::infra(format!("{}: {why}; set BOUNCE_CACHE (or HOME) to a directory of your own", dir.display()))
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(refuse(format!("cannot create it: {e}"))),
    }
    let m = std::fs::symlink_metadata(dir).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if !m.file_type().is_dir() {
        return Err(refuse("it is not a directory (a symlink?)".into()));
    }
    if m.uid() != nix::unistd::geteuid().as_raw() {
        return Err(refuse(format!("it belongs to uid {}, not to us", m.uid())));
    }
    if m.permissions().mode() & 0o077 != 0 {
        return Err(refuse(format!("others may write or read it (mode {:o})", m.permissions().mode() & 0o777)));
    }
    Ok(())
}

/// Names from data files and the command line (kernels, profiles,
/// workloads, swiotlb settings) become file names and path components:
/// refuse anything that could leave its folder or break a line of output.
pub fn check_name(kind: &str, name: &str) -> std::result::Result<(), String> {
    let bad = if name.is_empty() {
        Some("is empty")
    } else if name.len() > 100 {
        Some("is longer than 100 characters")
    } else if name.contains('/') || name.contains('\\') {
        Some("contains a path separator")
    } else if name.starts_with('.') {
        Some("starts with `.` (a hidden file, or `..`)")
    } else if name.starts_with('-') {
        Some("starts with `-` (it would read as an option)")
    } else if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("contains whitespace or a control character")
    } else {
        None
    };
    match bad {
        Some(why) => Err(format!("{kind} name {name:?} {why}: use letters, digits, `.`, `_`, `-`, `+`, `@`")),
        None => Ok(()),
    }
}

/// A name safe for a path component: kernel make chokes on some characters
/// (':' and spaces) and Debian versions contain '~' and '+'.
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

/// Write a file a later step trusts: to a temporary name of this process,
/// flushed to disk, then renamed over the old one. A full disk, a crash or
/// a kill leaves the previous version whole (a cell written after every
/// boot keeps the boots before it), and the error names the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = temp_beside(path);
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        rename_durably(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure::infra(format!("cannot write {}: {e}", path.display()))
    })
}

/// A name beside `path` that only this process writes (two harnesses
/// filling the same cache entry never write into one temporary file).
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Rename, then flush the directory so the rename itself is on disk.
pub fn rename_durably(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn seal_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{name}.blake3"))
}

fn blake3_of(path: &Path) -> std::io::Result<String> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path)?)?;
    Ok(h.finalize().to_hex().to_string())
}

/// Record `path`'s hash beside it (`NAME.blake3`), once it is complete.
pub fn seal(path: &Path) -> Result<()> {
    let hash = blake3_of(path).infra(|| format!("cannot read {}", path.display()))?;
    write_atomic(&seal_path(path), hash.as_bytes())
}

/// Whether `path` is what was sealed: a cache file that a full disk cut
/// short, or that rotted, is rebuilt instead of booted.
pub fn is_sealed(path: &Path) -> bool {
    match (std::fs::read_to_string(seal_path(path)), blake3_of(path)) {
        (Ok(want), Ok(have)) => want.trim() == have,
        _ => false,
    }
}

/// Put a finished temporary file (from [`temp_beside`]) in place: synced,
/// renamed durably, then sealed, so a reader that finds it sealed finds
/// it whole.
pub fn install_sealed(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::File::open(tmp).and_then(|f| f.sync_all()).and_then(|()| rename_durably(tmp, path)).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        Failure::infra(format!("cannot write {}: {e}", path.display()))
    })?;
    seal(path)
}

/// Whether `path` carries a seal at all (entries from before seals).
pub fn has_seal(path: &Path) -> bool {
    seal_path(path).exists()
}

#[cfg(test)]
mod tests {
    use super::{has_seal, is_sealed, seal, write_atomic};

    #[test]
    fn a_sealed_file_that_changed_is_not_sealed() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("initramfs.cpio");
        assert!(!is_sealed(&f));
        write_atomic(&f, b"whole").unwrap();
        assert!(!is_sealed(&f), "written but not sealed");
        seal(&f).unwrap();
        assert!(is_sealed(&f) && has_seal(&f));
        std::fs::write(&f, b"whol").unwrap();
        assert!(!is_sealed(&f), "cut short");
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
    }

    #[test]
    fn sanitize_debian_version() {
        assert_eq!(super::sanitize("linux-source-6.12_6.12.117-1~deb12u1"), "linux-source-6.12_6.12.117-1_deb12u1");
        assert_eq!(super::sanitize("a b:c+d"), "a_b_c_d");
    }

    #[test]
    fn names_that_would_leave_their_folder_are_refused() {
        for ok in ["6.12-dynamic", "6.12-dynamic+fix@2", "sev-emulated", "256k-io", "default"] {
            assert!(super::check_name("kernel", ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "a/b", "..", ".hidden", "-rf", "a b", "a\nb", "a\u{1b}[31m", "a\\b"] {
            let e = super::check_name("kernel", bad).unwrap_err();
            assert!(e.starts_with("kernel name "), "{e}");
        }
        assert!(super::check_name("kernel", &"x".repeat(101)).is_err());
    }

    #[test]
    fn a_private_directory_is_made_private_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("cache");
        super::private_dir(&d).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700);
        super::private_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = super::private_dir(&d).unwrap_err();
        assert!(e.message.contains("others may write or read it (mode 777)"), "{}", e.message);
        let l = t.path().join("link");
        std::os::unix::fs::symlink(t.path(), &l).unwrap();
        assert!(super::private_dir(&l).unwrap_err().message.contains("not a directory"));
    }
}
