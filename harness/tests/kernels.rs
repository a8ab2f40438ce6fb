//! Kernel builds for patch review, for real: a series from an mbox and from
//! a directory, built patch by patch in the warm build directory, booted
//! and compared; a patch that does not apply; an interrupted build; the
//! pre-feature 6.1 baseline's config.

mod common;
use common::*;
use std::path::Path;

fn meta_of(stdout: &str, name: &str) -> bounce::kernel::cache::BuildMeta {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name} (")))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{stdout}"));
    let dir = line.split(": ").nth(1).unwrap().split_whitespace().next().unwrap();
    serde_json::from_str(&std::fs::read_to_string(Path::new(dir).join("meta.json")).unwrap()).unwrap()
}

/// The shipped two-patch series on 6.12-dynamic: every prefix is its own
/// kernel, built incrementally, and booting each shows what the patch did.
#[test]
fn a_series_is_built_patch_by_patch_and_each_prefix_boots_with_its_change() {
    let _lock = heavy_lock();
    let mbox = root().join("kernels/patches/swiotlb-log.mbox");
    let o = bounce()
        .args(["build", "6.12-dynamic", "--arch", "x86_64", "--per-patch", "--series"])
        .arg(&mbox)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let base = meta_of(&out, "6.12-dynamic");
    let first = meta_of(&out, "6.12-dynamic+swiotlb-log@1");
    let whole = meta_of(&out, "6.12-dynamic+swiotlb-log");
    // The variant's own patch (the harness's dmacheck driver) comes first.
    let own = "dma: dmacheck, a streaming DMA-API conformance test for the bounce harness";
    assert_eq!(base.series.as_ref().unwrap().subjects, [own]);
    assert_eq!(
        first.series.as_ref().unwrap().subjects,
        [own, "swiotlb: report the default pool's slabs and areas at boot"]
    );
    assert_eq!(whole.series.as_ref().unwrap().subjects.len(), 3);
    // A patch recompiles what it touches, in the base's warm build directory.
    assert!(first.incremental && whole.incremental, "{first:?}\n{whole:?}");
    assert!(first.objects < 20 && whole.objects < 20, "{} / {} objects", first.objects, whole.objects);
    assert!(first.key != base.key && whole.key != first.key);

    // The same series as a directory of format-patch files is the same kernel.
    let o = bounce()
        .args(["build", "6.12-dynamic", "--arch", "x86_64", "--series"])
        .arg(root().join("kernels/patches/swiotlb-log"))
        .output()
        .unwrap();
    let (out2, err2) = text(&o);
    assert!(o.status.success(), "{err2}");
    assert_eq!(meta_of(&out2, "6.12-dynamic+swiotlb-log").key, whole.key);
    assert!(!err2.contains("building") && !err2.contains("rebuilding"), "rebuilt:\n{err2}");

    // Booted patch by patch, on a pool small enough to grow.
    let r = run_matrix(&format!(
        r#"
repetitions: 1
kernels: [6.12-dynamic]
series:
  - {{path: {}, per_patch: true}}
profiles: [dma32]
workloads: [growth]
params:
  growth: {{seconds: 1}}
swiotlb:
  256k: "swiotlb=128,1"
"#,
        mbox.display()
    ));
    assert_eq!(r.code, Some(0), "{}\n{}", r.out, r.err);
    r.assert_all_passed();
    let dmesg = |k: &str| r.guest_file(&format!("{k}.dma32.growth.256k"), "channel.log");
    let (b, one, all) = (dmesg("6.12-dynamic"), dmesg("6.12-dynamic+swiotlb-log@1"), dmesg("6.12-dynamic+swiotlb-log"));
    assert!(!b.contains("software IO TLB: default pool:"));
    assert!(one.contains("software IO TLB: default pool: 128 slabs in 1 areas"), "{one}");
    assert!(!one.contains("software IO TLB: grew by a pool of"));
    assert!(all.contains("software IO TLB: grew by a pool of"), "{all}");
    // Which patch moved what: base -> @1 -> whole, and base -> whole.
    for t in [
        "kernel: 6.12-dynamic (base) vs 6.12-dynamic+swiotlb-log@1 (new)",
        "kernel: 6.12-dynamic+swiotlb-log@1 (base) vs 6.12-dynamic+swiotlb-log (new)",
        "kernel: 6.12-dynamic (base) vs 6.12-dynamic+swiotlb-log (new)",
    ] {
        assert!(r.out.contains(t), "{t} missing:\n{}", r.out);
    }
}

#[test]
fn a_patch_that_does_not_apply_names_the_patch_its_subject_and_the_hunk() {
    let _lock = heavy_lock();
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("kernels/patches/swiotlb-log.mbox")).unwrap();
    // Patch 2's context no longer matches the tree.
    let bad = good.replace(" \tadd_mem_pool(mem, pool);", " \tadd_mem_pool(mem, pool); /* rebased away */");
    assert_ne!(bad, good);
    let mbox = dir.path().join("stale.mbox");
    std::fs::write(&mbox, bad).unwrap();
    let o = bounce().args(["build", "6.12-dynamic", "--arch", "x86_64", "--series"]).arg(&mbox).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}: patch 2/2 `swiotlb: log every pool added by dynamic growth` ({}#3) does not apply: kernel/dma/swiotlb.c:",
            mbox.display(),
            mbox.display()
        )) && err.contains(": first rejected hunk `@@ -"),
        "{err}"
    );
    // Nothing half-applied is left on the tree.
    assert_eq!(bounce::kernel::series::PatchableTree::new(&source_tree()).applied(), None);
}

/// The unpacked 6.12 tree the builds use.
fn source_tree() -> std::path::PathBuf {
    std::fs::read_dir(bounce::paths::cache_root().unwrap().join("src"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        // The tree itself, not its `.backup` of patched files beside it
        // (read_dir's order is the filesystem's: either may come first).
        .find(|p| {
            p.join("Makefile").is_file() && p.file_name().unwrap().to_string_lossy().starts_with("linux-source-6.12_")
        })
        .expect("the 6.12 source is unpacked by the earlier builds")
}

/// Killed mid-build (harness and make alike), nothing in the cache looks
/// complete; the next run builds it whole.
#[test]
fn an_interrupted_build_leaves_no_entry_and_the_next_run_completes_it() {
    let _lock = heavy_lock();
    // The base first: its warm build directory is what the patch builds in.
    build_x86_64_first("6.12-dynamic", None);
    let cache = bounce::paths::cache_root().unwrap();
    let tree = source_tree();
    let pristine = bounce::kernel::series::PatchableTree::new(&tree).pristine("kernel/dma/swiotlb.c").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("one-line.patch");
    std::fs::write(&patch, bounce::bench::one_line_patch(&pristine).unwrap()).unwrap();

    let mut child = bounce()
        .args(["build", "6.12-dynamic", "--arch", "x86_64", "--series"])
        .arg(&patch)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the build's make runs (not the config step's, in a
    // `resolve-` directory), then kill the harness outright.
    let cmdline = |pid: &i32| std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    wait_for(&mut child, 300, "the build's make to start", || {
        let out_dir = format!("O={}/", cache.join("build").display());
        processes_mentioning("make", &out_dir)
            .iter()
            .any(|p| !String::from_utf8_lossy(&cmdline(p)).contains("/resolve-"))
            .then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    // Every process of the build: both makes (kbuild's second make, and
    // the one per directory) and the compilers, by the tree's name.
    let tree_name = tree.file_name().unwrap().to_string_lossy().into_owned();
    let building = || processes_mentioning("", &tree_name);
    assert!(!building().is_empty(), "the build ended before the kill: the test would prove nothing");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    // The whole build follows the harness (make's parent-death signal is
    // SIGTERM, which make passes down its tree). 3 s, far less than what
    // is left of the incremental build, so an orphaned make still shows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !building().is_empty() {
        let left: Vec<_> = building().iter().map(|p| String::from_utf8_lossy(&cmdline(p)).replace('\0', " ")).collect();
        assert!(std::time::Instant::now() < deadline, "the build outlived the killed harness: {left:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let incomplete: Vec<_> = std::fs::read_dir(cache.join("kernels"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir() && !e.path().join("meta.json").exists())
        .collect();
    assert!(incomplete.iter().all(|e| e.file_name().to_string_lossy().ends_with(".partial")), "{incomplete:?}");

    let o = bounce().args(["build", "6.12-dynamic", "--arch", "x86_64", "--series"]).arg(&patch).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let m = meta_of(&out, "6.12-dynamic+one-line");
    assert!(m.incremental);
    // Of no further use: the nonce makes it unique.
    std::fs::remove_dir_all(cache.join("kernels").join(&m.key)).unwrap();
}

/// 6.1, before CONFIG_SWIOTLB_DYNAMIC: its config resolves with every
/// guest option, swiotlb on, and no dynamic pools to ask for.
#[test]
fn the_pre_feature_baseline_config_resolves_without_the_option() {
    let _lock = heavy_lock();
    let o = bounce().args(["build", "6.1", "--config-only"]).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("6.1 (x86_64): key ") && out.contains("SWIOTLB=y, SWIOTLB_DYNAMIC=n"), "{out}");
}

#[test]
fn cache_ls_lists_the_builds() {
    let _lock = heavy_lock();
    let o = bounce().args(["build", "6.12-fixed", "--arch", "x86_64"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let o = bounce().args(["cache", "ls"]).output().unwrap();
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(
        out.lines()
            .any(|l| l.contains("6.12-fixed") && l.contains("x86_64") && l.contains("fixed") && l.contains(" ok")),
        "{out}"
    );
}
