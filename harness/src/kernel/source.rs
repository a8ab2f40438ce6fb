//! Kernel source trees, unpacked once into the cache and named by what
//! they are (package and version, tarball checksum, commit), never by
//! where they came from: the same tarball from a URL or a disk is one tree.

use super::variant::Source;
use crate::failure::{Classify, Failure, Result};
use crate::host::cmd;
use crate::paths::sanitize;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceTree {
    pub path: PathBuf,
    /// Stable identity for the build key: `debian:PKG=VERSION`,
    /// `tarball:SHA256` or `git:COMMIT`.
    pub identity: String,
    /// `make kernelversion` of the tree.
    pub version: String,
    /// Where a git tree is published (its `origin` remote), when that is
    /// an https URL a dashboard can link to; a local path is not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_url: Option<String>,
}

pub fn prepare(cache: &Path, source: &Source) -> Result<SourceTree> {
    match source {
        Source::Debian(pkg) => debian(cache, pkg),
        Source::Tarball { path, sha256 } => {
            let identity = format!("tarball:{sha256}");
            unpack_once(cache, &identity, &format!("tarball-{}", &sha256[..16]), |tmp| {
                check_sha256(path, sha256)?;
                untar(path, tmp)
            })
        }
        Source::Url { url, sha256 } => {
            let identity = format!("tarball:{sha256}");
            unpack_once(cache, &identity, &format!("tarball-{}", &sha256[..16]), |tmp| {
                let file = download(cache, url, sha256)?;
                untar(&file, tmp)
            })
        }
        Source::Git { path, reference } => {
            let commit = cmd::stdout(
                Command::new("git")
                    .arg("-C")
                    .arg(path)
                    .args(["rev-parse", "--verify"])
                    .arg(format!("{reference}^{{commit}}")),
            )
            .map_err(|e| {
                Failure::input(format!(
                    "git tree {}: `{reference}` is not a commit there: {}",
                    path.display(),
                    e.message
                ))
            })?;
            let identity = format!("git:{commit}");
            let mut tree = unpack_once(cache, &identity, &format!("git-{}", &commit[..16]), |tmp| {
                let script = "git -C \"$1\" archive --format=tar \"$2\" | tar -x -C \"$3\"";
                cmd::run(Command::new("sh").args(["-c", script, "archive"]).arg(path).arg(&commit).arg(tmp)).map(|_| ())
            })?;
            // Read each time, not cached with the tree: the same commit
            // may be published from another remote later.
            tree.repository_url =
                cmd::stdout(Command::new("git").arg("-C").arg(path).args(["config", "--get", "remote.origin.url"]))
                    .ok()
                    .and_then(|u| https_url(&u));
            Ok(tree)
        }
    }
}

/// KCIDB's `git_repository_url` must be a public https URL: a remote
/// that is not one (ssh, a path) or that carries credentials is not kept.
fn https_url(remote: &str) -> Option<String> {
    let u = remote.trim();
    (u.starts_with("https://") && u.len() > 8 && !u.contains(['@', ' '])).then(|| u.to_string())
}

/// The candidate version apt would download; local, no network.
fn candidate_version(cache: &Path, pkg: &str) -> Result<String> {
    let out = crate::host::apt::query(cache, &["show".into(), "--no-all-versions".into(), pkg.into()])?;
    out.lines().find_map(|l| l.strip_prefix("Version: ")).map(|v| v.trim().to_string()).ok_or_else(|| {
        Failure::infra(format!("apt knows no package `{pkg}`: run `apt-get update` (as root) and check the name"))
    })
}

fn debian(cache: &Path, pkg: &str) -> Result<SourceTree> {
    // A fresh machine has no package lists; root can fetch them.
    let version = match candidate_version(cache, pkg) {
        Err(_) if crate::host::tools::may_install() => {
            crate::ui::line("apt knows no kernel source package yet: running apt-get update");
            cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
            candidate_version(cache, pkg)?
        }
        v => v?,
    };
    let identity = format!("debian:{pkg}={version}");
    unpack_once(cache, &identity, &format!("{pkg}_{version}"), |tmp| {
        let dl = cache.join("downloads");
        std::fs::create_dir_all(&dl).infra(|| format!("cannot create {}", dl.display()))?;
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
            .infra(|| format!("cannot read {}", dl.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                let f = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
                f.starts_with(&format!("{pkg}_")) && f.ends_with(".deb")
            })
            .ok_or_else(|| {
                Failure::infra(format!("apt-get download left no {pkg}_{version}*.deb in {}", dl.display()))
            })?;
        crate::ui::line(format!("unpacking {}", deb.display()));
        let script = "dpkg-deb --fsys-tarfile \"$1\" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' | tar -xJ --strip-components=1 -C \"$2\"";
        cmd::run(Command::new("sh").args(["-c", script, "unpack"]).arg(&deb).arg(tmp))?;
        let _ = std::fs::remove_file(&deb);
        Ok(())
    })
}

/// Unpack a tree once per identity: `fill` writes it into a scratch
/// directory that is renamed into place, and a marker written last says the
/// tree is complete, so a half-unpacked tree never looks like one.
fn unpack_once(cache: &Path, identity: &str, name: &str, fill: impl FnOnce(&Path) -> Result<()>) -> Result<SourceTree> {
    let name = sanitize(name);
    let src_root = cache.join("src");
    let tree = src_root.join(&name);
    let marker = src_root.join(format!("{name}.json"));
    if let Some(t) = read_marker(&marker) {
        return Ok(t);
    }
    std::fs::create_dir_all(&src_root).infra(|| format!("cannot create {}", src_root.display()))?;
    let _lock = crate::lock::Lock::exclusive(&src_root.join(format!("{name}.lock")))?;
    // Another process may have finished it while we waited for the lock.
    if let Some(t) = read_marker(&marker) {
        return Ok(t);
    }
    let tmp = src_root.join(format!("{name}.partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).infra(|| format!("cannot create {}", tmp.display()))?;
    fill(&tmp)?;
    // A tarball with one top-level directory (linux-6.12/): use its inside.
    let top = single_subdir(&tmp);
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::rename(top.as_deref().unwrap_or(&tmp), &tree)
        .infra(|| format!("cannot move {} into place", tmp.display()))?;
    let _ = std::fs::remove_dir_all(&tmp);
    if !tree.join("Makefile").is_file() || !tree.join("Kconfig").is_file() {
        return Err(Failure::input(format!("{identity}: no kernel tree (no top-level Makefile and Kconfig) in it")));
    }
    // A tree that had patches on it under this name before is pristine now.
    let _ = std::fs::remove_file(src_root.join(format!("{name}.applied.json")));
    let _ = std::fs::remove_dir_all(src_root.join(format!("{name}.backup")));
    let version = cmd::stdout(Command::new("make").arg("-s").arg("-C").arg(&tree).arg("kernelversion"))?;
    let t = SourceTree { path: tree, identity: identity.to_string(), version, repository_url: None };
    crate::paths::write_atomic(&marker, serde_json::to_string_pretty(&t).unwrap_or_default().as_bytes())?;
    Ok(t)
}

fn single_subdir(dir: &Path) -> Option<PathBuf> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir).ok()?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    match entries.as_slice() {
        [only] if only.is_dir() && !only.join("Kconfig").exists() && only.join("Makefile").exists() => {
            Some(only.clone())
        }
        [only] if only.is_dir() && only.join("Kconfig").exists() => Some(only.clone()),
        _ => None,
    }
}

fn untar(file: &Path, into: &Path) -> Result<()> {
    cmd::run(Command::new("tar").arg("-xf").arg(file).arg("-C").arg(into)).map(|_| ())
}

fn sha256_of(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).input(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).infra(|| format!("cannot read {}", path.display()))?;
    Ok(format!("{:x}", h.finalize()))
}

fn check_sha256(path: &Path, want: &str) -> Result<()> {
    let got = sha256_of(path)?;
    if got != want {
        return Err(Failure::input(format!(
            "{}: sha256 is {got}, the variant says {want}: a different file, or a typo in the variant",
            path.display()
        )));
    }
    Ok(())
}

/// Fetch `url` into the download cache and check it.
fn download(cache: &Path, url: &str, sha256: &str) -> Result<PathBuf> {
    let dl = cache.join("downloads");
    std::fs::create_dir_all(&dl).infra(|| format!("cannot create {}", dl.display()))?;
    let file = dl.join(format!("{sha256}.tar"));
    if !file.exists() || check_sha256(&file, sha256).is_err() {
        crate::ui::line(format!("downloading {url}"));
        let tmp = dl.join(format!("{sha256}.part"));
        cmd::run(Command::new("curl").args(["-fsSL", "--retry", "2", "-o"]).arg(&tmp).arg(url)).map_err(|e| {
            Failure::infra(format!(
                "cannot download {url}: {} (no network? use a `tarball:` source with a local copy)",
                e.message
            ))
        })?;
        std::fs::rename(&tmp, &file).infra(|| format!("cannot move {}", tmp.display()))?;
    }
    check_sha256(&file, sha256)?;
    Ok(file)
}

/// The marker is written last, after the rename: its presence means complete.
fn read_marker(marker: &Path) -> Option<SourceTree> {
    let t: SourceTree = serde_json::from_str(&std::fs::read_to_string(marker).ok()?).ok()?;
    t.path.join("Makefile").exists().then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "kernel tree" small enough for a unit test: make kernelversion works.
    fn fake_tree(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("Makefile"), "kernelversion:\n\t@echo 6.99.0\n").unwrap();
        std::fs::write(dir.join("Kconfig"), "").unwrap();
    }

    #[test]
    fn a_tarball_is_checked_and_unpacked_once_by_checksum() {
        let d = tempfile::tempdir().unwrap();
        fake_tree(&d.path().join("linux-6.99"));
        let tarball = d.path().join("linux.tar.gz");
        cmd::run(Command::new("tar").arg("-czf").arg(&tarball).arg("-C").arg(d.path()).arg("linux-6.99")).unwrap();
        let sha = sha256_of(&tarball).unwrap();
        let cache = d.path().join("cache");
        let t = prepare(&cache, &Source::Tarball { path: tarball.clone(), sha256: sha.clone() }).unwrap();
        assert_eq!(t.identity, format!("tarball:{sha}"));
        assert_eq!(t.version, "6.99.0");
        assert!(t.path.join("Kconfig").exists());
        let bad = "0".repeat(64);
        let e = prepare(&cache, &Source::Tarball { path: tarball, sha256: bad }).unwrap_err();
        assert!(e.message.contains("sha256 is"), "{}", e.message);
    }

    #[test]
    fn a_git_tree_is_named_by_its_commit() {
        let d = tempfile::tempdir().unwrap();
        let repo = d.path().join("linux");
        fake_tree(&repo);
        let git = |args: &[&str]| {
            cmd::run(
                Command::new("git").arg("-C").arg(&repo).args(["-c", "user.name=t", "-c", "user.email=t@t"]).args(args),
            )
            .unwrap()
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&["commit", "-qm", "base"]);
        git(&["tag", "v6.99"]);
        let commit = cmd::stdout(Command::new("git").arg("-C").arg(&repo).args(["rev-parse", "HEAD"])).unwrap();
        let cache = d.path().join("cache");
        let t = prepare(&cache, &Source::Git { path: repo.clone(), reference: "v6.99".into() }).unwrap();
        assert_eq!(t.identity, format!("git:{commit}"));
        assert!(!t.path.join(".git").exists());
        assert_eq!(t.repository_url, None, "no remote, no URL");
        git(&["remote", "add", "origin", "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git"]);
        let t = prepare(&cache, &Source::Git { path: repo.clone(), reference: "v6.99".into() }).unwrap();
        assert_eq!(
            t.repository_url.as_deref(),
            Some("https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git")
        );
        for private in ["git@github.com:torvalds/linux.git", "https://user:token@example.org/linux.git", "/srv/linux"] {
            assert_eq!(https_url(private), None, "{private}");
        }
        let e = prepare(&cache, &Source::Git { path: repo, reference: "v7.0".into() }).unwrap_err();
        assert!(e.message.contains("`v7.0` is not a commit"), "{}", e.message);
    }

    #[test]
    fn an_unreachable_url_says_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        let e =
            prepare(d.path(), &Source::Url { url: "http://127.0.0.1:9/linux.tar.xz".into(), sha256: "a".repeat(64) })
                .unwrap_err();
        assert!(e.message.contains("use a `tarball:` source"), "{}", e.message);
    }
}
