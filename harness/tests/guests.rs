//! The walking skeleton, for real: both 6.12 kernels built by the harness
//! (cached across runs), booted under QEMU, measured, and the facts the
//! design rests on asserted from the stored results.

mod common;
use bounce::results::CellResult;
use common::*;
use std::collections::BTreeMap;

fn cells(run_root: &std::path::Path) -> BTreeMap<String, CellResult> {
    let runs: Vec<_> = std::fs::read_dir(run_root.join("runs")).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1, "one run directory expected");
    let dir = bounce::results::store::RunDir::open(&runs[0].path()).unwrap();
    dir.read_cells().unwrap().into_iter().map(|c| (c.key.id(), c)).collect()
}

fn value(cells: &BTreeMap<String, CellResult>, id: &str, metric: &str) -> f64 {
    let c = cells.get(id).unwrap_or_else(|| panic!("no cell {id}"));
    let m = c.metrics.get(metric).unwrap_or_else(|| panic!("{id}: no metric {metric}; has {:?}", c.metrics.keys()));
    assert_eq!(m.samples.len(), 1, "{id} {metric}");
    m.samples[0].value
}

#[test]
fn fixed_and_dynamic_kernels_show_pool_memory_growth_and_exhaustion() {
    let _lock = heavy_lock();
    let results = tempfile::tempdir().unwrap();
    let o = bounce()
        .args(["matrix", "--matrix"])
        .arg(root().join("harness/tests/matrices/skeleton.yaml"))
        .arg("--results")
        .arg(results.path())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "bounce matrix failed ({:?}):\n{out}\n{err}", o.status);
    assert!(qemu_pids_mentioning(&results.path().display().to_string()).is_empty(), "QEMU left running");
    let cells = cells(results.path());
    assert_eq!(cells.len(), 12);

    for k in ["6.12-fixed", "6.12-dynamic"] {
        let id = |w: &str, s: &str| format!("{k}.dma32.{w}.{s}");
        // The pool sizes asked for on the command line are what the kernel built.
        assert_eq!(value(&cells, &id("memory", "default"), "memory.swiotlb_nslabs"), 32768.0);
        assert_eq!(value(&cells, &id("memory", "1mib"), "memory.swiotlb_nslabs"), 512.0);
        assert_eq!(value(&cells, &id("memory", "256k"), "memory.swiotlb_nslabs"), 128.0);
        // 64 MiB - 1 MiB = 63 MiB goes back to the system, within a few MiB.
        let gain_kib = value(&cells, &id("memory", "1mib"), "memory.mem_total_kib")
            - value(&cells, &id("memory", "default"), "memory.mem_total_kib");
        assert!((60.0 * 1024.0..=66.0 * 1024.0).contains(&gain_kib), "{k}: MemTotal gain {gain_kib} KiB");
        // With the default pool nothing grows and nothing fails.
        assert_eq!(value(&cells, &id("dmabench", "default"), "dmabench.growth_slabs_added"), 0.0);
        assert_eq!(value(&cells, &id("dmabench", "default"), "dmabench.growth_ok"), 1.0);
        assert!(value(&cells, &id("dmabench", "default"), "dmabench.map_us") > 0.0);
    }
    let g = |k: &str, m: &str| value(&cells, &format!("{k}.dma32.dmabench.256k"), &format!("dmabench.{m}"));
    // Dynamic: the small pool grows and every mapping succeeds.
    assert!(g("6.12-dynamic", "growth_slabs_added") > 0.0);
    assert_eq!(g("6.12-dynamic", "growth_ok"), 1.0);
    assert_eq!(g("6.12-dynamic", "map_failures"), 0.0);
    // Fixed: the pool cannot grow, so mappings fail and the kernel says so.
    assert_eq!(g("6.12-fixed", "growth_slabs_added"), 0.0);
    assert_eq!(g("6.12-fixed", "growth_ok"), 0.0);
    assert!(g("6.12-fixed", "buffer_full_msgs") > 0.0);
    assert!(g("6.12-fixed", "map_failures") > 0.0);

    let run_dir = std::fs::read_dir(results.path().join("runs")).unwrap().flatten().next().unwrap().path();
    for c in cells.values() {
        let dynamic = c.key.kernel == "6.12-dynamic";
        assert_eq!(c.swiotlb_dynamic, dynamic, "{}", c.key.id());
        // All four debugfs counters on the dynamic kernel; the fixed one has
        // no transient pools and so no io_tlb_transient_nslabs.
        let channel = std::fs::read_to_string(run_dir.join(&c.reps[0].guest_dir).join("channel.log")).unwrap();
        let boot = channel.split("@@bounce begin swiotlb-boot").nth(1).unwrap().split("@@bounce end").next().unwrap();
        for counter in ["io_tlb_nslabs ", "io_tlb_used ", "io_tlb_used_hiwater "] {
            assert!(boot.contains(counter), "{}: no {counter}in {boot}", c.key.id());
        }
        assert_eq!(boot.contains("io_tlb_transient_nslabs "), dynamic, "{}: {boot}", c.key.id());
    }
    assert!(out.contains("kernel: 6.12-fixed (base) vs 6.12-dynamic (new)"), "{out}");
    assert!(out.contains("mem_total_kib"), "{out}");
}

#[test]
fn an_unchanged_variant_is_not_rebuilt() {
    let _lock = heavy_lock();
    let first = bounce().args(["build", "6.12-dynamic", "--arch", "x86_64"]).output().unwrap();
    assert!(first.status.success(), "{}", text(&first).1);
    let meta = |o: &std::process::Output| {
        let dir = text(o).0.split(": ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        std::fs::read_to_string(std::path::Path::new(&dir).join("meta.json")).unwrap()
    };
    let second = bounce().args(["build", "6.12-dynamic", "--arch", "x86_64"]).output().unwrap();
    let (_, err) = text(&second);
    assert!(second.status.success(), "{err}");
    assert!(!err.contains("built 6.12-dynamic") && !err.contains("building"), "rebuilt:\n{err}");
    assert_eq!(meta(&first), meta(&second));
}

#[test]
fn a_dropped_config_option_fails_naming_fragment_and_line() {
    let _lock = heavy_lock();
    let project = tempfile::tempdir().unwrap();
    let src = root();
    for d in ["kernels/arch", "kernels/config", "kernels/variants"] {
        std::fs::create_dir_all(project.path().join(d)).unwrap();
    }
    std::fs::copy(src.join("kernels/arch/x86_64.yaml"), project.path().join("kernels/arch/x86_64.yaml")).unwrap();
    std::fs::write(project.path().join("kernels/config/bad.config"), "# a typo'd option\nCONFIG_SWIOTLB_DYNAMICC=y\n")
        .unwrap();
    std::fs::write(
        project.path().join("kernels/variants/bad.yaml"),
        "arches: [x86_64]\nsource: {debian: linux-source-6.12}\nconfig: {base: tinyconfig, fragments: [bad.config]}\n",
    )
    .unwrap();
    let o = bounce().args(["build", "bad"]).env("BOUNCE_ROOT", project.path()).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.config:2: CONFIG_SWIOTLB_DYNAMICC=y was dropped by olddefconfig"), "{err}");
}
