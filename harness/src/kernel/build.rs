//! Building a variant, or finding it already built.

use super::arch::Arch;
use super::config;
use super::source::{self, SourceTree};
use super::variant::Variant;
use crate::failure::{Failure, Result};
use crate::host::{cmd, tools};
use crate::lock::Lock;
use crate::ui;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A built kernel in the cache, with everything the guest side needs from
/// its tree (the dma_map_benchmark tool is built against the same headers).
#[derive(Debug, Clone)]
pub struct Kernel {
    pub variant: String,
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

/// What TuxMake keeps in metadata.json: enough to trust and to reproduce.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildMeta {
    pub key: String,
    pub variant: String,
    pub arch: String,
    pub source: String,
    pub kernel_version: String,
    pub config_base: String,
    pub fragments: Vec<String>,
    pub toolchain: String,
    pub swiotlb_dynamic: bool,
    pub objects: u64,
    pub duration_s: f64,
    pub image_blake3: String,
    /// The make command line that built it, runnable by hand.
    pub reproducer: String,
    pub built_at: String,
}

const KEY_SCHEMA: &str = "bounce-kernel-v1";

/// Build `name` unless a complete build of the same inputs is cached.
pub async fn ensure(root: &Path, cache: &Path, name: &str) -> Result<Kernel> {
    let variant = Variant::load(root, name)?;
    let arch = Arch::load(root, &variant.arch)?;
    let mut reqs = tools::common();
    reqs.extend(arch.requirements());
    tools::ensure(&reqs)?;

    let tree = source::prepare(cache, &variant.source)?;
    let mut wanted = Vec::new();
    let mut fragment_texts = Vec::new();
    for f in &variant.config.fragments {
        let path = root.join("kernels/config").join(f);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Failure::input(format!("{}: fragment {f}: cannot read {}: {e}", variant.file.display(), path.display()))
        })?;
        wanted.extend(config::parse_fragment(&path, &text)?);
        fragment_texts.push(text);
    }
    let cc = compiler(&arch);
    let toolchain = cmd::stdout(Command::new(arch.gcc()).arg("--version"))?.lines().next().unwrap_or("").to_string();
    let resolved = resolve_config(cache, &tree, &arch, &variant, &cc, &toolchain, &fragment_texts)?;
    config::verify(&wanted, &resolved)?;

    let key = {
        let mut h = blake3::Hasher::new();
        for part in [KEY_SCHEMA, &tree.identity, &arch.name, &toolchain, &resolved] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        h.finalize().to_hex()[..20].to_string()
    };
    let dir = cache.join("kernels").join(&key);
    if let Some(k) = load_complete(&dir, &variant, &arch) {
        return Ok(k);
    }
    // One kernel build at a time on this machine, across processes: two
    // would each take twice as long and may run the machine out of memory.
    let _build = Lock::exclusive(&cache.join("locks/kernel-build.lock"))?;
    let _key = Lock::exclusive(&cache.join("kernels").join(format!("{key}.lock")))?;
    if let Some(k) = load_complete(&dir, &variant, &arch) {
        return Ok(k);
    }
    let build_dir = cache.join("build").join(&key);
    std::fs::create_dir_all(&build_dir)
        .map_err(|e| Failure::infra(format!("cannot create {}: {e}", build_dir.display())))?;
    // Keep the old .config (and so every object's mtime) when unchanged.
    let cfg = build_dir.join(".config");
    if std::fs::read_to_string(&cfg).ok().as_deref() != Some(resolved.as_str()) {
        std::fs::write(&cfg, &resolved).map_err(|e| Failure::infra(e.to_string()))?;
    }

    let stats_path = cache.join("kernels").join(format!("last-{}.json", crate::paths::sanitize(name)));
    let expected = std::fs::read_to_string(&stats_path)
        .ok()
        .and_then(|s| serde_json::from_str::<LastBuild>(&s).ok())
        .map(|l| l.objects)
        .unwrap_or(arch.objects_estimate);
    let mut make = make_command(cache, &tree, &build_dir, &arch, &cc);
    make.arg(&arch.target);
    let reproducer = cmd::display(make.as_std());
    let log = build_dir.join("build.log");
    let started = Instant::now();
    let objects = run_make(make, &log, expected, &format!("building {name}"))
        .await
        .map_err(|e| Failure::infra(format!("kernel build of `{name}` failed: {} (full log: {})", e, log.display())))?;
    let tool = build_dma_map_benchmark(&tree, &build_dir, &arch)?;
    let duration_s = started.elapsed().as_secs_f64();

    let image = build_dir.join(&arch.image);
    let image_blake3 = hash_file(&image)?;
    let resolved_map = config::parse_resolved(&resolved);
    let meta = BuildMeta {
        key: key.clone(),
        variant: name.to_string(),
        arch: arch.name.clone(),
        source: tree.identity.clone(),
        kernel_version: tree.version.clone(),
        config_base: variant.config.base.clone(),
        fragments: variant.config.fragments.clone(),
        toolchain,
        swiotlb_dynamic: resolved_map.get("SWIOTLB_DYNAMIC").map(|v| v == "y").unwrap_or(false),
        objects,
        duration_s,
        image_blake3,
        reproducer,
        built_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    };
    // Stage everything, write the metadata last, then rename: an entry is
    // either complete or absent, whatever kills us.
    let staging = cache.join("kernels").join(format!("{key}.partial"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| Failure::infra(e.to_string()))?;
    let copies = [
        (image.clone(), "image"),
        (cfg.clone(), "config"),
        (build_dir.join("System.map"), "System.map"),
        (log.clone(), "build.log"),
        (tool, "dma_map_benchmark"),
    ];
    for (from, to) in copies {
        std::fs::copy(&from, staging.join(to))
            .map_err(|e| Failure::infra(format!("cannot copy {}: {e}", from.display())))?;
    }
    std::fs::write(staging.join("meta.json"), serde_json::to_string_pretty(&meta).unwrap())
        .map_err(|e| Failure::infra(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir)
        .map_err(|e| Failure::infra(format!("cannot move build into {}: {e}", dir.display())))?;
    let _ = std::fs::write(&stats_path, serde_json::to_string(&LastBuild { objects, seconds: duration_s }).unwrap());
    ui::line(format!("built {name} ({key}) in {:.0} s, {objects} objects", duration_s));
    Ok(Kernel { variant: name.to_string(), arch, dir, meta })
}

#[derive(Serialize, Deserialize)]
struct LastBuild {
    objects: u64,
    seconds: f64,
}

/// A cache entry counts only if its metadata parses and its image still
/// has the hash recorded at build time: a damaged entry is rebuilt.
fn load_complete(dir: &Path, variant: &Variant, arch: &Arch) -> Option<Kernel> {
    let meta: BuildMeta = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).ok()?).ok()?;
    if hash_file(&dir.join("image")).ok()? != meta.image_blake3 || !dir.join("dma_map_benchmark").exists() {
        ui::line(format!("cache entry {} is damaged; rebuilding", dir.display()));
        return None;
    }
    Some(Kernel { variant: variant.name.clone(), arch: arch.clone(), dir: dir.to_path_buf(), meta })
}

fn hash_file(path: &Path) -> Result<String> {
    let data = std::fs::read(path).map_err(|e| Failure::infra(format!("cannot read {}: {e}", path.display())))?;
    Ok(blake3::hash(&data).to_hex().to_string())
}

/// ccache when present. The same CC string is used for resolving the config
/// and building, so both see the same compiler.
fn compiler(arch: &Arch) -> String {
    if which::which("ccache").is_ok() {
        format!("ccache {}", arch.gcc())
    } else {
        arch.gcc()
    }
}

fn make_command(cache: &Path, tree: &SourceTree, out: &Path, arch: &Arch, cc: &str) -> tokio::process::Command {
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let mut c = tokio::process::Command::new("make");
    c.arg("-C").arg(&tree.path).arg(format!("O={}", out.display())).arg(format!("ARCH={}", arch.kernel_arch));
    if !arch.cross_compile.is_empty() {
        c.arg(format!("CROSS_COMPILE={}", arch.cross_compile));
    }
    c.arg(format!("CC={cc}"))
        .args(["KBUILD_BUILD_USER=bounce", "KBUILD_BUILD_HOST=bounce", "KBUILD_BUILD_TIMESTAMP=@0"])
        .arg(format!("-j{jobs}"));
    // ccache shares objects between build directories only when paths are
    // relative to a common base and the working directory is not hashed.
    c.env("CCACHE_DIR", cache.join("ccache"))
        .env("CCACHE_BASEDIR", cache)
        .env("CCACHE_NOHASHDIR", "true")
        .env("CCACHE_MAXSIZE", "20G");
    c
}

/// Resolve base + fragments into a .config, cached by its inputs (a
/// resolution costs ~15 s of make and is needed on every run).
fn resolve_config(
    cache: &Path,
    tree: &SourceTree,
    arch: &Arch,
    variant: &Variant,
    cc: &str,
    toolchain: &str,
    fragments: &[String],
) -> Result<String> {
    let mut h = blake3::Hasher::new();
    for part in [KEY_SCHEMA, &tree.identity, &arch.name, toolchain, cc, &variant.config.base] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    for f in fragments {
        h.update(f.as_bytes());
        h.update(b"\0");
    }
    let stored = cache.join("configs").join(format!("{}.config", &h.finalize().to_hex()[..20]));
    if let Ok(text) = std::fs::read_to_string(&stored) {
        return Ok(text);
    }
    let scratch = cache.join("build").join(format!("resolve-{}", crate::paths::sanitize(&variant.name)));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| Failure::infra(e.to_string()))?;
    let std_make = |target: &str| -> Result<()> {
        let mut c = make_command(cache, tree, &scratch, arch, cc).into_std();
        c.arg("-s").arg(target);
        cmd::run(&mut c)
            .map(|_| ())
            .map_err(|e| Failure::input(format!("{}: config base `{target}`: {}", variant.file.display(), e.message)))
    };
    std_make(&variant.config.base)?;
    let cfg = scratch.join(".config");
    let mut text = std::fs::read_to_string(&cfg).map_err(|e| Failure::infra(e.to_string()))?;
    for f in fragments {
        text.push('\n');
        text.push_str(f);
    }
    std::fs::write(&cfg, text).map_err(|e| Failure::infra(e.to_string()))?;
    std_make("olddefconfig")?;
    let resolved = std::fs::read_to_string(&cfg).map_err(|e| Failure::infra(e.to_string()))?;
    std::fs::create_dir_all(stored.parent().unwrap()).map_err(|e| Failure::infra(e.to_string()))?;
    std::fs::write(&stored, &resolved).map_err(|e| Failure::infra(e.to_string()))?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(resolved)
}

/// Run make with its output in `log`, counting compiled objects for the
/// progress bar. Returns the count; on failure, the first compiler error.
async fn run_make(
    mut make: tokio::process::Command,
    log: &Path,
    expected: u64,
    label: &str,
) -> std::result::Result<u64, String> {
    let file = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    make.stdout(file).stderr(err).stdin(std::process::Stdio::null()).kill_on_drop(true);
    let mut child = make.spawn().map_err(|e| format!("cannot run make: {e}"))?;
    let pb = ui::bar(expected, "objects");
    pb.set_message(label.to_string());
    if !ui::interactive() {
        ui::line(format!("{label}: log in {}", log.display()));
    }
    let mut seen = 0u64;
    let mut last_line = Instant::now();
    let status = loop {
        tokio::select! {
            s = child.wait() => break s.map_err(|e| e.to_string())?,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                seen = count_objects(log);
                if seen > pb.length().unwrap_or(0) { pb.set_length(seen + seen / 10); }
                pb.set_position(seen);
                if !ui::interactive() && last_line.elapsed() > Duration::from_secs(60) {
                    ui::line(format!("{label}: {seen}/{expected} objects"));
                    last_line = Instant::now();
                }
            }
        }
    };
    pb.finish_and_clear();
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        return Err(first_error(&text).unwrap_or_else(|| format!("make exited with {status}")));
    }
    Ok(count_objects(log).max(seen))
}

fn count_objects(log: &Path) -> u64 {
    std::fs::read_to_string(log).map(|t| t.lines().filter(|l| is_compile_line(l)).count() as u64).unwrap_or(0)
}

fn is_compile_line(line: &str) -> bool {
    let mut words = line.split_whitespace();
    matches!(words.next(), Some("CC") | Some("AS")) && line.starts_with("  ")
}

/// The first line a human needs from a failed kernel build.
pub fn first_error(log: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains("error:") || l.contains("Error:"))
        .or_else(|| log.lines().find(|l| l.starts_with("make") && l.contains("Error")))
        .map(|l| l.trim().to_string())
}

/// The kernel's own map/unmap microbenchmark tool, built from the tree under
/// test. Only `linux/map_benchmark.h` comes from the tree: the kernel's
/// include/ clashes with libc's types.
fn build_dma_map_benchmark(tree: &SourceTree, build_dir: &Path, arch: &Arch) -> Result<PathBuf> {
    let inc = build_dir.join("bounce-include");
    std::fs::create_dir_all(inc.join("linux")).map_err(|e| Failure::infra(e.to_string()))?;
    let header = tree.path.join("include/linux/map_benchmark.h");
    std::fs::copy(&header, inc.join("linux/map_benchmark.h"))
        .map_err(|e| Failure::infra(format!("cannot copy {}: {e}", header.display())))?;
    let out = build_dir.join("dma_map_benchmark");
    cmd::run(
        Command::new(arch.gcc())
            .args(["-static", "-O2", "-Wall"])
            .arg("-I")
            .arg(&inc)
            .arg("-o")
            .arg(&out)
            .arg(tree.path.join("tools/testing/selftests/dma/dma_map_benchmark.c")),
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_error_finds_the_compiler_line() {
        let log = "  CC      kernel/fork.o\n../kernel/dma/swiotlb.c:12:1: error: expected ';' before 'int'\nmake[3]: *** [x] Error 1\n";
        assert_eq!(first_error(log).unwrap(), "../kernel/dma/swiotlb.c:12:1: error: expected ';' before 'int'");
        assert_eq!(first_error("make: *** [Makefile:2] Error 2\n").unwrap(), "make: *** [Makefile:2] Error 2");
    }

    #[test]
    fn counts_compile_lines_only() {
        assert!(is_compile_line("  CC      kernel/fork.o"));
        assert!(is_compile_line("  AS      arch/x86/entry/entry_64.o"));
        assert!(!is_compile_line("  LD      vmlinux"));
        assert!(!is_compile_line("CC is gcc"));
    }
}
