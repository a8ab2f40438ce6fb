//! Building a variant for an architecture, or finding it already built.
//!
//! One build path for every kind of kernel: the source tree is put in the
//! state "pristine + series" (kernel/series.rs), the config is resolved and
//! checked, and the build runs in a directory shared by every series on the
//! same source and config, so a patch rebuilds only what it touches.

use super::arch::Arch;
use super::cache::{self, BuildMeta, Kernel, SeriesMeta};
use super::config;
use super::series::PatchableTree;
use super::source::{self, SourceTree};
use super::variant::{ConfigBase, Toolchain, Variant};
use crate::failure::{Classify, Failure, FailureClass, Result};
use crate::host::{cmd, tools};
use crate::lock::Lock;
use crate::ui;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const KEY_SCHEMA: &str = "bounce-kernel-v1";

/// The compiler side of a build: what make is told, and what goes into
/// the key.
struct Compiler {
    /// CC= for make (ccache-wrapped when ccache is there).
    cc: String,
    make_args: Vec<String>,
    /// First line of the compiler's --version: part of the build key.
    version: String,
}

fn compiler(arch: &Arch, tc: Toolchain) -> Result<Compiler> {
    let ccache = which::which("ccache").is_ok();
    let wrap = |c: String| if ccache { format!("ccache {c}") } else { c };
    Ok(match tc {
        Toolchain::Gcc => {
            let gcc = arch.gcc();
            let version = cmd::stdout(Command::new(&gcc).arg("--version"))?.lines().next().unwrap_or("").to_string();
            Compiler { cc: wrap(gcc), make_args: vec![], version }
        }
        Toolchain::Clang => {
            let version = cmd::stdout(Command::new("clang").arg("--version"))?.lines().next().unwrap_or("").to_string();
            Compiler { cc: wrap("clang".into()), make_args: vec!["LLVM=1".into()], version }
        }
    })
}

fn toolchain_requirements(tc: Toolchain) -> Vec<tools::Requirement> {
    use tools::{Probe, Requirement};
    match tc {
        Toolchain::Gcc => vec![],
        Toolchain::Clang => vec![
            Requirement::new(Probe::Bin("clang".into()), "clang", "kernel build with toolchain: clang"),
            Requirement::new(Probe::Bin("ld.lld".into()), "lld", "kernel build with toolchain: clang"),
            Requirement::new(Probe::Bin("llvm-ar".into()), "llvm", "kernel build with toolchain: clang"),
        ],
    }
}

/// Everything that decides what a build produces, gathered without
/// building: enough to find it in the cache.
pub struct Plan {
    pub variant: Variant,
    pub arch: Arch,
    tree: SourceTree,
    compiler: Compiler,
    pub resolved: String,
    /// The cache key: source, series, resolved config, arch, compiler.
    pub key: String,
    /// The build directory's key: the same without the series, so every
    /// series on one source and config shares (and warms) one directory.
    dir_key: String,
}

fn hash(parts: &[&str]) -> String {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\0");
    }
    h.finalize().to_hex()[..20].to_string()
}

/// Work out the key of `variant` built for `arch`; resolves the config (and
/// so may apply the series, under the build lock) when it is not cached.
pub fn plan(root: &Path, cache: &Path, variant: &Variant, arch: &str) -> Result<Plan> {
    if !variant.supports(arch) {
        return Err(Failure::input(format!(
            "{}: variant `{}` is not built for {arch} (its arches: {})",
            variant.file.display(),
            variant.name,
            variant.arches.join(", ")
        )));
    }
    let arch = Arch::load(root, arch)?;
    let mut reqs = tools::common();
    reqs.extend(arch.requirements());
    reqs.extend(toolchain_requirements(variant.toolchain));
    tools::ensure(&reqs)?;

    let mut variant = variant.clone();
    // The variant's own patches first, then whatever the harness put on top.
    let series = match (variant.own_series(root)?, variant.extra.take()) {
        (Some(own), Some(extra)) => Some(extra.on_top_of(own)),
        (own, extra) => extra.or(own),
    };
    variant.extra = series;
    let tree = source::prepare(cache, &variant.source)?;
    let compiler = compiler(&arch, variant.toolchain)?;

    // Fragments in order: the arch's guest fragments when the base is
    // `guest`, then the variant's own.
    let mut fragment_files: Vec<PathBuf> = Vec::new();
    if variant.config.base == ConfigBase::Target("guest".into()) {
        fragment_files.extend(arch.guest_fragments.iter().map(|f| root.join("kernels/config").join(f)));
    }
    fragment_files.extend(variant.config.fragments.iter().map(|f| root.join("kernels/config").join(f)));
    let mut wanted = Vec::new();
    let mut fragments = Vec::new();
    for path in &fragment_files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::input(format!("{}: fragment {}: {e}", variant.file.display(), path.display())))?;
        wanted.extend(config::parse_fragment(path, &text)?);
        fragments.push(text);
    }
    let base_config =
        match &variant.config.base {
            ConfigBase::File { file } => {
                let p = super::variant::resolve(&root.join("kernels"), file);
                Some(std::fs::read_to_string(&p).map_err(|e| {
                    Failure::input(format!("{}: config base {}: {e}", variant.file.display(), p.display()))
                })?)
            }
            ConfigBase::Target(_) => None,
        };
    let resolved = config::resolve(
        cache,
        &config::Resolve {
            tree: &tree,
            arch: &arch,
            variant: &variant,
            cc: &compiler.cc,
            make_args: &compiler.make_args,
            toolchain: &compiler.version,
            base_config: base_config.as_deref(),
            fragments: &fragments,
            prepare_tree: &|| checkout(&tree, &variant),
        },
    )?;
    config::verify(&wanted, &resolved)?;

    let dir_key = hash(&[KEY_SCHEMA, &tree.identity, &arch.name, &compiler.version, &resolved]);
    // Unpatched builds keep the key they always had; a series extends it.
    let key = match &variant.extra {
        Some(s) => hash(&[KEY_SCHEMA, &tree.identity, &arch.name, &compiler.version, &resolved, "series", &s.hash()]),
        None => dir_key.clone(),
    };
    Ok(Plan { variant, arch, tree, compiler, resolved, key, dir_key })
}

/// The tree as this variant needs it: pristine plus its series.
fn checkout(tree: &SourceTree, variant: &Variant) -> Result<()> {
    PatchableTree::new(&tree.path).checkout(variant.extra.as_ref())
}

/// Build `variant` for `arch` unless a complete build of the same inputs
/// is cached.
pub async fn ensure(root: &Path, cache: &Path, variant: &Variant, arch: &str) -> Result<Kernel> {
    if let Some(key) = variant.pinned.get(arch) {
        let a = Arch::load(root, arch)?;
        return cache::load(cache, key, variant, &a).ok_or_else(|| {
            Failure::input(format!(
                "{}: build {key} ({arch}) is not in this machine's cache ({}): a nightly keeps its cache between nights; \
                 `--stored` judges against the baseline's stored samples instead",
                variant.name,
                cache::entry_dir(cache, key).display()
            ))
        });
    }
    let plan = plan(root, cache, variant, arch)?;
    build(cache, plan).await
}

pub async fn build(cache: &Path, plan: Plan) -> Result<Kernel> {
    let Plan { variant, arch, tree, compiler, resolved, key, dir_key } = plan;
    let label = format!("{} ({})", variant.name, arch.name);
    if let Some(k) = cache::load(cache, &key, &variant, &arch) {
        return Ok(k);
    }
    // One kernel build at a time on this machine, across processes: two
    // would each take twice as long and may run the machine out of memory.
    let _build = Lock::exclusive(&cache.join("locks/kernel-build.lock"))?;
    if let Some(k) = cache::load(cache, &key, &variant, &arch) {
        return Ok(k);
    }
    checkout(&tree, &variant)?;
    let build_dir = cache.join("build").join(&dir_key);
    std::fs::create_dir_all(&build_dir).infra(|| format!("cannot create {}", build_dir.display()))?;
    // Keep the old .config (and so every object's mtime) when unchanged.
    let cfg = build_dir.join(".config");
    if std::fs::read_to_string(&cfg).ok().as_deref() != Some(resolved.as_str()) {
        std::fs::write(&cfg, &resolved).infra(|| format!("cannot write {}", cfg.display()))?;
    }
    let incremental = build_dir.join("vmlinux").exists();
    let stats = LastBuild::path(cache, &dir_key);
    let last = LastBuild::read(&stats).or_else(|| LastBuild::read(&LastBuild::path(cache, &arch.name)));
    let expected =
        if incremental { None } else { Some(last.as_ref().map(|l| l.objects).unwrap_or(arch.objects_estimate)) };

    let mut make = super::make::command(cache, &tree, &build_dir, &arch, &compiler.cc, &compiler.make_args);
    make.arg(&arch.target);
    let reproducer = format!("cd {} && {}", build_dir.display(), cmd::display(make.as_std()));
    let log = build_dir.join("build.log");
    let started = Instant::now();
    let what = if incremental { "rebuilding" } else { "building" };
    let objects = run_make(
        make,
        &log,
        expected,
        last.filter(|_| !incremental).map(|l| l.seconds),
        &format!("{what} {label}"),
        stall_limit(),
    )
    .await
    .map_err(|e| Failure::infra(format!("kernel build of {label} failed: {e} (full log: {})", log.display())))?;
    let tool = build_dma_map_benchmark(&tree, &build_dir, &arch)?;
    let duration_s = started.elapsed().as_secs_f64();

    let resolved_map = config::parse_resolved(&resolved);
    let meta = BuildMeta {
        key: key.clone(),
        variant: variant.name.clone(),
        arch: arch.name.clone(),
        source: tree.identity.clone(),
        repository_url: tree.repository_url.clone(),
        kernel_version: tree.version.clone(),
        config_base: variant.config.base.describe(),
        fragments: variant.config.fragments.clone(),
        series: variant.extra.as_ref().map(SeriesMeta::of),
        toolchain: compiler.version.clone(),
        swiotlb_dynamic: resolved_map.get("SWIOTLB_DYNAMIC").map(|v| v == "y").unwrap_or(false),
        objects,
        incremental,
        duration_s,
        image_blake3: String::new(),
        reproducer,
        built_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    };
    let k = cache::store(
        cache,
        meta,
        &[
            (build_dir.join(&arch.image), "image"),
            (cfg.clone(), "config"),
            (build_dir.join("System.map"), "System.map"),
            (log.clone(), "build.log"),
            (tool, "dma_map_benchmark"),
        ],
        &variant,
        &arch,
    )?;
    if !incremental {
        let l = LastBuild { objects, seconds: duration_s };
        l.write(&stats);
        l.write(&LastBuild::path(cache, &arch.name));
    }
    ui::line(format!(
        "built {label} ({key}) in {duration_s:.0} s, {objects} objects{}",
        if incremental { ", incremental" } else { "" }
    ));
    Ok(k)
}

/// The last full build of a config (or an arch): the progress bar's
/// expectation and ETA for the next one.
#[derive(Serialize, Deserialize)]
struct LastBuild {
    objects: u64,
    seconds: f64,
}

impl LastBuild {
    fn path(cache: &Path, name: &str) -> PathBuf {
        cache.join("kernels").join(format!("last-{}.json", crate::paths::sanitize(name)))
    }
    fn read(path: &Path) -> Option<LastBuild> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }
    fn write(&self, path: &Path) {
        // Only the progress bar's guess: a failed write costs nothing.
        let _ = crate::paths::write_atomic(path, serde_json::to_string(self).unwrap_or_default().as_bytes());
    }
}

/// make printing nothing for this long is stuck (a cold arm64 build here
/// never goes a minute without a line); `BOUNCE_MAKE_STALL_S` overrides.
fn stall_limit() -> Duration {
    let s = std::env::var("BOUNCE_MAKE_STALL_S").ok().and_then(|v| v.parse().ok()).unwrap_or(20 * 60);
    Duration::from_secs(s)
}

/// SIGTERM to make when its future is dropped (a cancelled build): make
/// passes it down its tree, where SIGKILL would stop only the first make.
struct TermOnDrop(Option<nix::unistd::Pid>);

impl TermOnDrop {
    fn term(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
}

impl Drop for TermOnDrop {
    fn drop(&mut self) {
        self.term();
    }
}

/// Run make with its output in `log`, counting compiled objects for the
/// progress bar. Returns the count; on failure, the first compiler error;
/// a make that prints nothing for `stall` is stopped and named.
async fn run_make(
    mut make: tokio::process::Command,
    log: &Path,
    expected: Option<u64>,
    last_seconds: Option<f64>,
    label: &str,
    stall: Duration,
) -> std::result::Result<u64, String> {
    let file = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    make.stdout(file).stderr(err).stdin(std::process::Stdio::null());
    let mut child = make.spawn().map_err(|e| format!("cannot run make: {e}"))?;
    let mut guard = TermOnDrop(child.id().map(|p| nix::unistd::Pid::from_raw(p as i32)));
    let pb = ui::build_bar(expected, last_seconds);
    pb.set_message(label.to_string());
    if !ui::interactive() {
        ui::line(format!("{label}: log in {}", log.display()));
    }
    let mut seen = 0u64;
    let mut last_line = Instant::now();
    let (mut size, mut grew) = (0u64, Instant::now());
    let status = loop {
        tokio::select! {
            s = child.wait() => break s.map_err(|e| e.to_string())?,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                let now = std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
                if now != size {
                    (size, grew) = (now, Instant::now());
                    seen = count_objects(log);
                } else if grew.elapsed() >= stall {
                    guard.term();
                    let _ = child.wait().await;
                    pb.finish_and_clear();
                    let text = std::fs::read_to_string(log).unwrap_or_default();
                    let last = cmd::last_line(&text);
                    return Err(format!(
                        "make printed nothing for {} s and was stopped (last line: `{last}`; BOUNCE_MAKE_STALL_S sets the limit)",
                        stall.as_secs()
                    ));
                }
                if expected.is_some() && seen > pb.length().unwrap_or(0) { pb.set_length(seen + seen / 10); }
                pb.set_position(seen);
                if !ui::interactive() && last_line.elapsed() > Duration::from_secs(60) {
                    let of = expected.map(|e| format!("/{e}")).unwrap_or_default();
                    ui::line(format!("{label}: {seen}{of} objects"));
                    last_line = Instant::now();
                }
            }
        }
    };
    guard.0 = None;
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
    std::fs::create_dir_all(inc.join("linux")).infra(|| format!("cannot create {}", inc.display()))?;
    let header = tree.path.join("include/linux/map_benchmark.h");
    std::fs::copy(&header, inc.join("linux/map_benchmark.h")).map_err(|e| {
        Failure::new(
            FailureClass::Input,
            format!("{} has no {} ({e}): dma_map_benchmark needs Linux 5.11 or later", tree.identity, header.display()),
        )
    })?;
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

    #[tokio::test]
    async fn a_make_that_prints_nothing_is_stopped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        let mut c = tokio::process::Command::new("sh");
        c.args(["-c", "echo '  CC      kernel/a.o'; exec sleep 60"]);
        let started = Instant::now();
        let e = run_make(c, &log, None, None, "test", Duration::from_secs(1)).await.unwrap_err();
        assert!(e.starts_with("make printed nothing for 1 s and was stopped (last line: `CC      kernel/a.o`"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(30), "stopped, not waited out");
    }

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

    #[test]
    fn the_key_schema_is_pinned() {
        // Cached kernels take minutes each: a change to how keys are made
        // must be deliberate (bump KEY_SCHEMA), never a side effect.
        let inputs = [
            KEY_SCHEMA,
            "debian:linux-source-6.12=6.12.117-1~deb12u1",
            "x86_64",
            "gcc (Debian 12.2.0-14) 12.2.0",
            "CONFIG_SWIOTLB=y\n",
        ];
        assert_eq!(hash(&inputs), "0327703fc81a700a5e44");
        // Parts are separated: moving a byte across a boundary is a new key.
        assert_ne!(hash(&["ab", ""]), hash(&["a", "b"]));
    }
}
