//! The walking skeleton, for real: both 6.12 kernels built by the harness
//! (cached across runs), booted under QEMU on the dma32 profile, measured,
//! and the facts the design rests on asserted from the stored results.

mod common;
use common::*;

/// What the default matrix shows on dma32, one boot per cell, with short
/// benchmark runs and no OOM probe (the profiles test has that).
const SKELETON: &str = r#"
repetitions: 1
kernels: [6.12-fixed, 6.12-dynamic]
profiles: [dma32]
workloads: [memory, dmabench, growth]
params:
  memory: {oom_probe: 0}
  dmabench: {sweep_threads: [1], sweep_granules: [1], sweep_dirs: [to]}
  growth: {seconds: 1}
swiotlb:
  default: {args: "", workloads: [memory, dmabench]}
  1mib: {args: "swiotlb=512,1", workloads: [memory]}
  256k: {args: "swiotlb=128,1", workloads: [growth]}
compare:
  - {axis: kernel, base: 6.12-fixed, new: 6.12-dynamic}
  - {axis: swiotlb, base: default, new: 1mib}
"#;

#[test]
fn fixed_and_dynamic_kernels_show_pool_memory_growth_and_exhaustion() {
    let _lock = heavy_lock();
    let r = run_matrix(SKELETON);
    assert_eq!(r.code, Some(0), "bounce matrix failed:\n{}\n{}", r.out, r.err);
    assert_eq!(r.cells.len(), 8);
    r.assert_all_passed();

    for k in ["6.12-fixed", "6.12-dynamic"] {
        let id = |w: &str, s: &str| format!("{k}.dma32.{w}.{s}");
        // The pool sizes asked for on the command line are what the kernel built.
        assert_eq!(r.value(&id("memory", "default"), "memory.swiotlb_nslabs"), 32768.0);
        assert_eq!(r.value(&id("memory", "1mib"), "memory.swiotlb_nslabs"), 512.0);
        assert_eq!(r.value(&id("growth", "256k"), "growth.growth_nslabs_before"), 128.0);
        // 64 MiB - 1 MiB = 63 MiB goes back to the system, within a few MiB.
        let gain_kib = r.value(&id("memory", "1mib"), "memory.mem_total_kib")
            - r.value(&id("memory", "default"), "memory.mem_total_kib");
        assert!((60.0 * 1024.0..=66.0 * 1024.0).contains(&gain_kib), "{k}: MemTotal gain {gain_kib} KiB");
        // With the default pool nothing grows.
        assert_eq!(r.value(&id("dmabench", "default"), "dmabench.pool_growth_slabs"), 0.0);
        assert!(r.value(&id("dmabench", "default"), "dmabench.map_us") > 0.0);
        assert!(r.value(&id("dmabench", "default"), "dmabench.map_us.t1-g1-to") > 0.0);
    }
    let g = |k: &str, m: &str| r.value(&format!("{k}.dma32.growth.256k"), &format!("growth.{m}"));
    // Dynamic: the small pool grows and every mapping succeeds.
    assert!(g("6.12-dynamic", "growth_slabs_added") > 0.0);
    assert_eq!(g("6.12-dynamic", "growth_ok"), 1.0);
    assert_eq!(g("6.12-dynamic", "map_failures"), 0.0);
    // Fixed: the pool cannot grow, so mappings fail and the kernel says so
    // (declared as expected of a fixed kernel, so the cell still passes).
    assert_eq!(g("6.12-fixed", "growth_slabs_added"), 0.0);
    assert_eq!(g("6.12-fixed", "growth_ok"), 0.0);
    assert!(g("6.12-fixed", "buffer_full_msgs") > 0.0);
    assert!(g("6.12-fixed", "map_failures") > 0.0);
    let fixed = r.cell("6.12-fixed.dma32.growth.256k");
    assert!(fixed.reps[0].log_findings.iter().any(|f| f.rule == "swiotlb-full" && f.expected_because.is_some()));

    for c in r.cells.values() {
        let dynamic = c.key.kernel == "6.12-dynamic";
        assert_eq!(c.swiotlb_dynamic, dynamic, "{}", c.key.id());
        // All four debugfs counters on the dynamic kernel; the fixed one has
        // no transient pools and so no io_tlb_transient_nslabs.
        let channel = r.guest_file(&c.key.id(), "channel.log");
        let boot = channel.split("@@bounce begin swiotlb-boot").nth(1).unwrap().split("@@bounce end").next().unwrap();
        for counter in ["io_tlb_nslabs ", "io_tlb_used ", "io_tlb_used_hiwater "] {
            assert!(boot.contains(counter), "{}: no {counter}in {boot}", c.key.id());
        }
        assert_eq!(boot.contains("io_tlb_transient_nslabs "), dynamic, "{}: {boot}", c.key.id());
        // The result model records how each cell ran.
        assert_eq!(c.accel.accel, bounce::host::accel::Accel::Tcg, "this machine runs no KVM guest");
    }
    assert!(r.out.contains("kernel: 6.12-fixed (base) vs 6.12-dynamic (new)"), "{}", r.out);
    assert!(r.out.contains("swiotlb: default (base) vs 1mib (new)"), "{}", r.out);
    assert!(r.out.contains("mem_total_kib"), "{}", r.out);
    for f in ["env.json", "report.txt", "report.md"] {
        assert!(r.run_dir.join(f).is_file(), "{f} missing");
    }
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
    for a in ["x86_64", "arm64"] {
        std::fs::copy(
            src.join(format!("kernels/arch/{a}.yaml")),
            project.path().join(format!("kernels/arch/{a}.yaml")),
        )
        .unwrap();
    }
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
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.config:2: CONFIG_SWIOTLB_DYNAMICC=y was dropped by olddefconfig"), "{err}");
}

/// Results under a path with a comma: QEMU splits option strings on
/// commas, so the scratch disk's `file=` must escape it (`,,`), or the
/// guest has no disk.
#[test]
fn a_results_directory_with_a_comma_still_gets_its_disk() {
    let _lock = heavy_lock();
    let (dir, file, _) = matrix_dir(
        "repetitions: 1\nkernels: [6.12-fixed]\nprofiles: [dma32]\nworkloads: [storage]\nparams: {storage: {jobs: [seq-64k], size_mib: 1}}\nswiotlb: {default: \"\"}\n",
    );
    let results = dir.path().join("a,b");
    let o = bounce().args(["matrix", "--matrix"]).arg(&file).arg("--results").arg(&results).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("1 cells, 1 boots: 1 passed"), "{out}");
}
