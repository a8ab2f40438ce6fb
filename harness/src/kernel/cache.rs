//! The content-addressed kernel cache: `CACHE/kernels/KEY/` holds a
//! build's image, .config, System.map, build log, the guest tools built
//! against its tree, and `meta.json` (what TuxMake keeps in its
//! metadata.json: inputs, toolchain, duration, a reproducer).
//!
//! An entry is staged beside its final place and renamed in with its
//! metadata written last, so whatever kills a build, an entry is either
//! complete or absent; an entry whose image no longer has the hash its
//! metadata recorded is treated as absent and rebuilt.

use super::arch::Arch;
use super::variant::Variant;
use crate::failure::{Classify, Failure, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A built kernel in the cache, with everything the guest side needs from
/// its tree (the dma_map_benchmark tool is built against the same headers).
#[derive(Debug, Clone)]
pub struct Kernel {
    pub variant: String,
    /// Boot options that belong to the variant.
    pub cmdline: Vec<String>,
    pub arch: Arch,
    pub dir: PathBuf,
    pub meta: BuildMeta,
}

impl Kernel {
    pub fn image(&self) -> PathBuf {
        self.dir.join("image")
    }
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config")
    }
    pub fn dma_map_benchmark(&self) -> PathBuf {
        self.dir.join("dma_map_benchmark")
    }
    /// Whether the resolved config has CONFIG_SWIOTLB_DYNAMIC=y.
    pub fn swiotlb_dynamic(&self) -> bool {
        self.meta.swiotlb_dynamic
    }
}

pub use crate::results::env::{BuildMeta, SeriesMeta};

impl SeriesMeta {
    pub fn of(s: &super::series::Series) -> SeriesMeta {
        SeriesMeta {
            name: s.name.clone(),
            origin: s.origin.display().to_string(),
            hash: s.hash(),
            subjects: s.patches.iter().map(|p| p.subject.clone()).collect(),
            patchset_hash: s.patchset_hash(),
        }
    }
}

pub fn entry_dir(cache: &Path, key: &str) -> PathBuf {
    cache.join("kernels").join(key)
}

/// The complete entry for `key`, if there is one.
pub fn load(cache: &Path, key: &str, variant: &Variant, arch: &Arch) -> Option<Kernel> {
    let dir = entry_dir(cache, key);
    let mut meta = read_meta(&dir)?;
    if !intact(&dir, &meta) {
        crate::ui::line(format!("cache entry {} is damaged; rebuilding", dir.display()));
        return None;
    }
    // What `cache gc` goes by.
    let _ = std::fs::write(dir.join("used"), "");
    // The key covers the series' content, so this is the same series; its
    // description is today's (where it was read from, what it records).
    meta.series = variant.extra.as_ref().map(SeriesMeta::of);
    Some(Kernel { variant: variant.name.clone(), cmdline: variant.cmdline.clone(), arch: arch.clone(), dir, meta })
}

fn read_meta(dir: &Path) -> Option<BuildMeta> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).ok()?).ok()
}

/// The image against the hash in its metadata; the files booted beside it
/// (the guest's dma_map_benchmark, the config the run records) against
/// their seals. Entries stored before seals existed have only the image's.
fn intact(dir: &Path, meta: &BuildMeta) -> bool {
    let beside = |name: &str| {
        let f = dir.join(name);
        if crate::paths::has_seal(&f) {
            crate::paths::is_sealed(&f)
        } else {
            f.exists()
        }
    };
    hash_file(&dir.join("image")).ok().as_deref() == Some(meta.image_blake3.as_str())
        && beside("dma_map_benchmark")
        && beside("config")
}

fn hash_file(path: &Path) -> Result<String> {
    let data = std::fs::read(path).infra(|| format!("cannot read {}", path.display()))?;
    Ok(blake3::hash(&data).to_hex().to_string())
}

/// Stage `files` (source path, name in the entry) and `meta`, then rename
/// the whole entry into place.
pub fn store(
    cache: &Path,
    mut meta: BuildMeta,
    files: &[(PathBuf, &str)],
    variant: &Variant,
    arch: &Arch,
) -> Result<Kernel> {
    let dir = entry_dir(cache, &meta.key);
    let staging = cache.join("kernels").join(format!("{}.partial", meta.key));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).infra(|| format!("cannot create {}", staging.display()))?;
    for (from, to) in files {
        std::fs::copy(from, staging.join(to)).infra(|| format!("cannot copy {}", from.display()))?;
        crate::paths::seal(&staging.join(to))?;
    }
    meta.image_blake3 = hash_file(&staging.join("image"))?;
    crate::paths::write_atomic(
        &staging.join("meta.json"),
        serde_json::to_string_pretty(&meta).unwrap_or_default().as_bytes(),
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).infra(|| format!("cannot move the build into {}", dir.display()))?;
    Ok(Kernel { variant: variant.name.clone(), cmdline: variant.cmdline.clone(), arch: arch.clone(), dir, meta })
}

/// One line of `bounce cache ls`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub meta: Option<BuildMeta>,
    pub intact: bool,
    pub bytes: u64,
    pub last_used: Option<SystemTime>,
}

pub fn list(cache: &Path) -> Result<Vec<Listed>> {
    let dir = cache.join("kernels");
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(out) };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if !p.is_dir() || name.ends_with(".partial") {
            continue;
        }
        let meta = read_meta(&p);
        let intact = meta.as_ref().is_some_and(|m| intact(&p, m));
        out.push(Listed { key: name, meta, intact, bytes: du(&p), last_used: last_used(&p) });
    }
    out.sort_by(|a, b| {
        let k = |l: &Listed| l.meta.as_ref().map(|m| (m.variant.clone(), m.arch.clone())).unwrap_or_default();
        k(a).cmp(&k(b)).then(a.key.cmp(&b.key))
    });
    Ok(out)
}

fn last_used(dir: &Path) -> Option<SystemTime> {
    ["used", "meta.json", "build.log"].iter().filter_map(|f| std::fs::metadata(dir.join(f)).ok()?.modified().ok()).max()
}

/// Bytes under `path`.
pub fn du(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map(|rd| rd.flatten().map(|e| du(&e.path())).sum()).unwrap_or(0)
}

/// What `cache gc` removed, for its report.
#[derive(Debug, Default)]
pub struct Collected {
    pub removed: Vec<(PathBuf, u64, String)>,
}

impl Collected {
    pub fn bytes(&self) -> u64 {
        self.removed.iter().map(|r| r.1).sum()
    }
}

/// Remove what is damaged, half-written, or unused for `max_age`: kernel
/// entries, build directories (the warm state incremental builds reuse),
/// and initramfs images. Holds the build lock: a build in progress keeps
/// its staging directory.
pub fn gc(cache: &Path, max_age: Duration) -> Result<Collected> {
    let _lock = crate::lock::Lock::exclusive(&cache.join("locks/kernel-build.lock"))?;
    let now = SystemTime::now();
    let old = |t: Option<SystemTime>| t.and_then(|t| now.duration_since(t).ok()).is_none_or(|age| age > max_age);
    let mut c = Collected::default();
    let mut remove = |p: PathBuf, why: String| {
        let bytes = du(&p);
        let gone = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        if gone.is_ok() {
            c.removed.push((p, bytes, why));
        }
    };
    if let Ok(rd) = std::fs::read_dir(cache.join("kernels")) {
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".partial") {
                remove(p, "an interrupted build's staging".into());
            } else if p.is_dir() {
                match read_meta(&p) {
                    None => remove(p, "no metadata (incomplete)".into()),
                    Some(m) if !intact(&p, &m) => remove(p, "damaged (image hash differs)".into()),
                    Some(_) if old(last_used(&p)) => remove(p, format!("unused for more than {}", days(max_age))),
                    Some(_) => {}
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(cache.join("build")) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with("resolve-") {
                remove(p, "a config resolution's scratch".into());
            } else if old(std::fs::metadata(p.join("build.log")).and_then(|m| m.modified()).ok()) {
                remove(p, format!("build directory unused for more than {}", days(max_age)));
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(cache.join("initramfs")) {
        for e in rd.flatten() {
            let p = e.path();
            if old(std::fs::metadata(&p).and_then(|m| m.accessed().or(m.modified())).ok()) {
                remove(p, format!("initramfs unused for more than {}", days(max_age)));
            }
        }
    }
    Ok(c)
}

fn days(d: Duration) -> String {
    format!("{} days", d.as_secs() / 86400)
}

pub fn not_found(key: &str) -> Failure {
    Failure::input(format!("no cache entry {key} (see `bounce cache ls`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> BuildMeta {
        BuildMeta {
            key: key.into(),
            variant: "v".into(),
            arch: "x86_64".into(),
            source: "s".into(),
            kernel_version: "6.12".into(),
            config_base: "guest".into(),
            fragments: vec![],
            series: None,
            repository_url: None,
            toolchain: "gcc".into(),
            swiotlb_dynamic: true,
            objects: 1,
            incremental: false,
            duration_s: 1.0,
            image_blake3: String::new(),
            reproducer: String::new(),
            built_at: String::new(),
        }
    }

    fn fixture() -> (tempfile::TempDir, Variant, Arch) {
        let d = tempfile::tempdir().unwrap();
        let root = crate::paths::project_root();
        let v = Variant::load(&root, "6.12-dynamic").unwrap();
        let a = Arch::load(&root, "x86_64").unwrap();
        (d, v, a)
    }

    fn stage(d: &Path, v: &Variant, a: &Arch, key: &str) -> Kernel {
        let src = d.join("src");
        std::fs::create_dir_all(&src).unwrap();
        for f in ["image", "config", "tool"] {
            std::fs::write(src.join(f), format!("{key} {f}")).unwrap();
        }
        let files =
            [(src.join("image"), "image"), (src.join("config"), "config"), (src.join("tool"), "dma_map_benchmark")];
        store(&d.join("cache"), meta(key), &files, v, a).unwrap()
    }

    #[test]
    fn a_stored_entry_loads_and_a_damaged_one_does_not() {
        let (d, v, a) = fixture();
        let k = stage(d.path(), &v, &a, "k1");
        let cache = d.path().join("cache");
        assert!(load(&cache, "k1", &v, &a).is_some());
        assert_eq!(k.meta.image_blake3, blake3::hash(b"k1 image").to_hex().to_string());
        std::fs::write(k.image(), "bit rot").unwrap();
        assert!(load(&cache, "k1", &v, &a).is_none());
        let l = list(&cache).unwrap();
        assert_eq!(l.len(), 1);
        assert!(!l[0].intact);
        // The guest's tool and the config are checked as well as the image.
        for f in ["dma_map_benchmark", "config"] {
            let k = stage(d.path(), &v, &a, f);
            assert!(load(&cache, f, &v, &a).is_some());
            std::fs::write(k.dir.join(f), "cut sho").unwrap();
            assert!(load(&cache, f, &v, &a).is_none(), "{f}");
        }
    }

    #[test]
    fn gc_removes_staging_damaged_and_old_but_keeps_the_rest() {
        let (d, v, a) = fixture();
        let cache = d.path().join("cache");
        stage(d.path(), &v, &a, "keep");
        let bad = stage(d.path(), &v, &a, "bad");
        std::fs::write(bad.image(), "bit rot").unwrap();
        std::fs::create_dir_all(cache.join("kernels/half.partial")).unwrap();
        std::fs::write(cache.join("kernels/half.partial/image"), "x").unwrap();
        let c = gc(&cache, Duration::from_secs(3600)).unwrap();
        let names: Vec<String> =
            c.removed.iter().map(|r| r.0.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert!(names.contains(&"bad".to_string()) && names.contains(&"half.partial".to_string()), "{names:?}");
        assert!(load(&cache, "keep", &v, &a).is_some());
        // Everything is "old" with a zero age.
        let c = gc(&cache, Duration::ZERO).unwrap();
        assert_eq!(c.removed.len(), 1);
        assert!(list(&cache).unwrap().is_empty());
    }
}
