//! The checks that exist for a defect, each failing for it: seeded
//! defects under kernels/patches/ that the old default matrix's checks
//! pass, caught by dmacheck (the DMA-API conformance driver), the NVMe
//! storage cells (min_align_mask) and dmacheck on 4 vCPUs at once (area
//! locking), the DRM cells (PRIME into a second device), with exit 6 and
//! the case that broke; and the unpatched
//! kernels passing the same cells.

mod common;
use bounce::failure::FailureClass;
use bounce::results::Status;
use common::*;

/// Each of `patches` as a series on the `on` kernels.
fn series(on: &[&str], patches: &[&str]) -> String {
    let entries: Vec<String> = patches
        .iter()
        .map(|s| format!("  - {{path: {}, on: [{}]}}", root().join("kernels/patches").join(s).display(), on.join(", ")))
        .collect();
    format!("series:\n{}\n", entries.join("\n"))
}

/// `cells` (profiles, workloads, params, swiotlb settings) booted once on
/// `kernels`, and on the `on` kernels with each of `defects` on them: a
/// run that must fail as correctness (exit 6).
fn run_caught(kernels: &[&str], on: &[&str], defects: &[&str], cells: &str) -> MatrixRun {
    for k in kernels {
        build_x86_64_first(k, None);
    }
    let yaml = format!("repetitions: 1\nkernels: [{}]\n{}{cells}", kernels.join(", "), series(on, defects));
    let r = run_matrix_in(None, &yaml, &[]);
    assert_eq!(r.code, Some(6), "exit 6 (correctness) expected:\n{}\n{}", r.out, r.err);
    r
}

fn failure_of(r: &MatrixRun, id: &str) -> bounce::failure::Failure {
    r.cell(id).worst_failure().cloned().unwrap_or_else(|| panic!("{id} passed\n{}", r.out))
}

/// Four defects of the DMA API's guarantees, each caught by the dmacheck
/// case that covers it (the failing line names direction, size, offset and
/// thread, and the first differing byte), while the unpatched fixed and
/// dynamic kernels pass every case with and without NVMe's
/// min_align_mask, and the fixed kernel's refusals on a full 1 MiB pool
/// are its expected "buffer is full".
#[test]
fn dmacheck_names_each_seeded_dma_api_defect_and_passes_the_unpatched_kernels() {
    let _lock = heavy_lock();
    let r = run_caught(
        &["6.12-fixed", "6.12-dynamic"],
        &["6.12-dynamic"],
        &["defect-bidi-map.mbox", "defect-partial-sync.mbox", "defect-align.mbox", "defect-unbounced.mbox"],
        r#"profiles: [sev-emulated]
workloads: [dmacheck]
swiotlb:
  default: ""
  1mib: {args: "swiotlb=512,1", workloads: [dmacheck]}
"#,
    );
    for k in ["6.12-fixed", "6.12-dynamic"] {
        for s in ["default", "1mib"] {
            let id = format!("{k}.sev-emulated.dmacheck.{s}");
            assert_eq!(r.cell(&id).status(), Status::Pass, "{id}: {:?}", r.cell(&id).worst_failure());
            assert!(r.value(&id, "dmacheck.cases") > 3000.0, "{id}");
            assert_eq!(r.value(&id, "dmacheck.cases_failed"), 0.0, "{id}");
        }
    }
    // The fixed 1 MiB pool refuses some held mappings; the dynamic one grows.
    assert!(r.value("6.12-fixed.sev-emulated.dmacheck.1mib", "dmacheck.mappings_refused") > 0.0);
    assert_eq!(r.value("6.12-dynamic.sev-emulated.dmacheck.1mib", "dmacheck.mappings_refused"), 0.0);
    for (defect, words) in [
        ("bidi-map", "dir=bidi size=1 offset=0: device side after map: byte 0 is"),
        ("partial-sync", "device side after a partial sync_for_device: byte"),
        ("align", "min_align_mask 0xfff: device address"),
        ("unbounced", "size=1 offset=0: device given the buffer itself"),
    ] {
        let id = format!("6.12-dynamic+defect-{defect}.sev-emulated.dmacheck.default");
        let f = failure_of(&r, &id);
        assert_eq!(f.class, FailureClass::Correctness, "{id}: {f:?}");
        assert!(f.message.starts_with("dmacheck (min_align_mask "), "{id}: {}", f.message);
        assert!(f.message.contains(words), "{id}: {}", f.message);
    }
}

/// NVMe keeps its buffers' offsets through swiotlb (min_align_mask): a
/// kernel that drops them hands the controller PRP entries that point at
/// the wrong bytes of partial-page buffers, and the NVMe cell fails, while
/// the unpatched kernel's cell passes on a pool that grows under it.
#[test]
fn the_nvme_cells_catch_a_bounce_that_loses_min_align_mask() {
    let _lock = heavy_lock();
    let r = run_caught(
        &["6.12-dynamic"],
        &["6.12-dynamic"],
        &["defect-align.mbox"],
        r#"profiles: [nvme]
workloads: [storage]
params:
  storage: {jobs: [rand-512to64k, seq-1m], size_mib: 4}
swiotlb:
  256k-io: "swiotlb=128,1"
"#,
    );
    let base = "6.12-dynamic.nvme.storage.256k-io";
    assert_eq!(r.cell(base).status(), Status::Pass, "{:?}", r.cell(base).worst_failure());
    assert!(r.value(base, "storage.pool_growth_slabs") > 0.0, "the 256 KiB pool did not grow under NVMe");
    let f = failure_of(&r, "6.12-dynamic+defect-align.nvme.storage.256k-io");
    assert_eq!(f.class, FailureClass::Correctness, "{f:?}");
    // Before fio can verify: the nvme driver warns that the bounce broke
    // its PRP rules (drivers/nvme/host/pci.c), or QEMU's NVMe refuses the
    // misplaced PRP entries (an I/O error), whichever the kernel logs first.
    assert!(
        f.message.contains("I/O error, dev nvme0n1") || f.message.contains("drivers/nvme/host/pci.c"),
        "{}",
        f.message
    );
}

/// The slot search of an area without its lock: one vCPU never notices
/// (the old default matrix's gated cells all have one; dmacheck's four
/// threads there only take turns), four vCPUs mapping into one area at
/// once do: two mappings get the same slots, and the kernel's own
/// overflow check or dmacheck's bytes say so.
#[test]
fn four_vcpus_at_once_catch_an_area_searched_without_its_lock() {
    let _lock = heavy_lock();
    let r = run_caught(
        &["6.12-dynamic"],
        &["6.12-dynamic"],
        &["defect-area-lock.mbox"],
        // Six rounds, not the matrix's two: a race is caught by chance,
        // and at two rounds one boot of four missed it (measured).
        r#"profiles: [sev-emulated]
workloads: [dmacheck, dmacheck-smp]
params:
  dmacheck-smp: {rounds: 6}
swiotlb:
  1mib: "swiotlb=512,1"
"#,
    );
    for id in
        ["6.12-dynamic.sev-emulated.dmacheck-smp.1mib", "6.12-dynamic+defect-area-lock.sev-emulated.dmacheck.1mib"]
    {
        assert_eq!(r.cell(id).status(), Status::Pass, "{id}: {:?}", r.cell(id).worst_failure());
    }
    let f = failure_of(&r, "6.12-dynamic+defect-area-lock.sev-emulated.dmacheck-smp.1mib");
    assert_eq!(f.class, FailureClass::Correctness, "{f:?}");
    assert!(
        // Which check sees the race first varies: the kernel's overflow
        // check, dmacheck's bytes, or the used-slot counter (below zero when
        // two mappings freed the same slots, or slots never freed).
        f.message.contains("Buffer overflow detected")
            || f.message.starts_with("dmacheck (min_align_mask ")
            || f.message.starts_with("swiotlb counters: io_tlb_used"),
        "{}",
        f.message
    );
}

/// A transient pool allocated with GFP_KERNEL in the receive path
/// (softirq): the default kernel says nothing and passes; the debug
/// kernel (DEBUG_ATOMIC_SLEEP) names it, while the unpatched debug kernel
/// passes the same cell.
#[test]
fn only_the_debug_kernel_reports_a_sleeping_allocation_in_atomic_context() {
    let _lock = heavy_lock();
    let both = ["6.12-dynamic", "6.12-dynamic-debug"];
    let r = run_caught(
        &both,
        &both,
        &["defect-gfp.mbox"],
        r#"profiles: [sev-emulated]
workloads: [network]
params:
  network: {seconds: 1, stream_mib: 2}
swiotlb:
  256k-io: "swiotlb=128,1"
"#,
    );
    for id in [
        "6.12-dynamic.sev-emulated.network.256k-io",
        "6.12-dynamic+defect-gfp.sev-emulated.network.256k-io",
        "6.12-dynamic-debug.sev-emulated.network.256k-io",
    ] {
        assert_eq!(r.cell(id).status(), Status::Pass, "{id}: {:?}", r.cell(id).worst_failure());
    }
    let caught = "6.12-dynamic-debug+defect-gfp.sev-emulated.network.256k-io";
    let f = failure_of(&r, caught);
    assert_eq!(f.class, FailureClass::Correctness, "{f:?}");
    // Two checkers see it: lockdep (fs_reclaim taken under a softirq-safe
    // lock, reported as a bad lock order or an inconsistent lock state,
    // as the boot's lock history has it) and might_sleep; the failure is
    // whichever the kernel printed first, and might_sleep always prints.
    let lockdep = f.message.starts_with("kernel log (lockdep): ")
        && (f.message.contains("SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected")
            || f.message.contains("inconsistent lock state"));
    let atomic = f.message.starts_with("kernel log (atomic-sleep): ")
        && f.message.contains("sleeping function called from invalid context");
    assert!(lockdep || atomic, "{}", f.message);
    assert!(r.guest_file(caught, "console.log").contains("BUG: sleeping function called from invalid context"));
}

/// Forty framebuffers held at once run sev-emulated's 128 MiB default pool
/// out: the dynamic kernel's background worker adds pools and every
/// buffer is mapped. A worker that frees the pool it made (transient
/// pools still map everything, every byte still arrives) fails the check
/// that a pool which ran out grew.
#[test]
fn a_default_size_pool_runs_out_and_a_worker_that_does_not_grow_it_fails() {
    let _lock = heavy_lock();
    let r = run_caught(
        &["6.12-dynamic"],
        &["6.12-dynamic"],
        &["defect-no-grow.mbox"],
        r#"profiles: [sev-emulated]
workloads: [drm-many]
swiotlb:
  default: ""
"#,
    );
    let base = "6.12-dynamic.sev-emulated.drm-many.default";
    assert_eq!(r.cell(base).status(), Status::Pass, "{:?}", r.cell(base).worst_failure());
    assert_eq!(r.value(base, "drm-many.buffers_held"), 40.0);
    assert!(r.value(base, "drm-many.pool_growth_slabs") > 0.0);
    assert!(r.value(base, "drm-many.used_hiwater_slabs") > r.value(base, "drm-many.tlb_nslabs.boot"));
    let f = failure_of(&r, "6.12-dynamic+defect-no-grow.sev-emulated.drm-many.default");
    assert_eq!(f.class, FailureClass::Correctness, "{f:?}");
    assert!(f.message.contains("the background worker did not grow it"), "{}", f.message);
}

/// An upstream bug, found by dmacheck's transient probe. With every pool
/// full, a 6.12 dynamic kernel refuses a 4 KiB mapping from an address
/// with bit 11 set under NVMe's min_align_mask: the transient pool made
/// for it starts on a page, and its first slot cannot keep the bit. The
/// probe fails the unpatched dynamic kernel, passes it with the fix
/// (kernels/patches/fix-transient-align.mbox), and the fixed kernel, which
/// cannot grow, skips it and passes its cases.
#[test]
fn the_transient_probe_finds_the_upstream_alignment_bug_and_passes_its_fix() {
    let _lock = heavy_lock();
    let r = run_caught(
        &["6.12-fixed", "6.12-dynamic"],
        &["6.12-dynamic"],
        &["fix-transient-align.mbox"],
        r#"profiles: [sev-emulated]
workloads: [dmacheck-transient]
swiotlb:
  default: ""
"#,
    );
    let bug = "6.12-dynamic.sev-emulated.dmacheck-transient.default";
    let f = failure_of(&r, bug);
    assert_eq!(f.class, FailureClass::Correctness, "{f:?}");
    // The kernel's own word first; dmacheck's line names the mapping.
    assert!(
        f.message.starts_with("kernel log (swiotlb-full): ")
            && f.message.contains("swiotlb buffer is full (sz: 4096 bytes)"),
        "{}",
        f.message
    );
    let said = r.guest_file(bug, "channel.log");
    assert!(
        said.contains("FAIL thread=0 single dir=to size=4096 offset=2048: refused though swiotlb can grow"),
        "{said}"
    );
    for id in [
        "6.12-dynamic+fix-transient-align.sev-emulated.dmacheck-transient.default",
        "6.12-fixed.sev-emulated.dmacheck-transient.default",
    ] {
        assert_eq!(r.cell(id).status(), Status::Pass, "{id}: {:?}", r.cell(id).worst_failure());
    }
}

/// PRIME into a second device: the framebuffer exported by virtio-gpu and
/// imported by dmacheck is mapped by drm_gem_map_dma_buf() with
/// DMA_ATTR_SKIP_CPU_SYNC. A swiotlb that copies into the slot only when
/// CPU syncs are not skipped (as kernels before 5.18 did) hands that
/// device stale slots: the DRM cell fails on the import's first segment,
/// while dmacheck's own cases (which never skip syncs) pass on the same
/// kernel and the unpatched kernel's DRM cell passes.
#[test]
fn the_drm_import_into_a_second_device_catches_a_map_that_skips_the_copy() {
    let _lock = heavy_lock();
    let r = run_caught(
        &["6.12-dynamic"],
        &["6.12-dynamic"],
        &["defect-skip-sync-map.mbox"],
        r#"profiles: [sev-emulated]
workloads: [drm, dmacheck]
params:
  drm: {frames: 6}
swiotlb:
  default: ""
"#,
    );
    for id in
        ["6.12-dynamic.sev-emulated.drm.default", "6.12-dynamic+defect-skip-sync-map.sev-emulated.dmacheck.default"]
    {
        assert_eq!(r.cell(id).status(), Status::Pass, "{id}: {:?}", r.cell(id).worst_failure());
    }
    let f = failure_of(&r, "6.12-dynamic+defect-skip-sync-map.sev-emulated.drm.default");
    assert_eq!(f.class, FailureClass::Correctness, "{f:?}");
    assert!(
        f.message.starts_with("drm: PRIME import into a second device: FAIL thread=0 prime dir=bidi size="),
        "{}",
        f.message
    );
    assert!(f.message.contains("offset=0: device side after the importer's map: byte"), "{}", f.message);
}

/// Every pool growth adds is recorded (slabs, areas), and the pools the
/// kernel lists must add up to the slabs it counts: a worker that counts
/// its pool twice (every mapping still succeeds, the pool still grows,
/// no counter goes below zero or past its total) fails that check alone,
/// while the unpatched kernel records the pool it added.
#[test]
fn a_growth_pool_counted_twice_fails_the_pool_list_check() {
    let _lock = heavy_lock();
    let r = run_caught(
        &["6.12-dynamic"],
        &["6.12-dynamic"],
        &["defect-pool-count.mbox"],
        r#"profiles: [sev-emulated]
workloads: [growth]
swiotlb:
  256k: "swiotlb=128,1"
"#,
    );
    let base = "6.12-dynamic.sev-emulated.growth.256k";
    assert_eq!(r.cell(base).status(), Status::Pass, "{:?}", r.cell(base).worst_failure());
    assert!(r.value(base, "growth.pools_added") >= 1.0);
    assert_eq!((r.value(base, "growth.pool_slabs.0"), r.value(base, "growth.pool_slabs.1")), (128.0, 128.0));
    assert_eq!(r.value(base, "growth.pool_areas.1"), 1.0);
    let f = failure_of(&r, "6.12-dynamic+defect-pool-count.sev-emulated.growth.256k");
    assert_eq!(f.class, FailureClass::Correctness, "{f:?}");
    assert!(f.message.contains("pools listed hold"), "{}", f.message);
}

/// A storage controller (the dma32 guest's LSI, which bounces for its
/// 32-bit mask) whose bounces change the bytes on the way out and change
/// them back on the way in: fio's verify of every job reads through the
/// same kernel and passes, so only the host reading the disk image after
/// the guest sees what the device was given (and the unpatched kernel's
/// disk holds exactly the guest's pattern).
#[test]
fn a_corruption_the_read_path_undoes_is_caught_by_the_host_reading_the_disk() {
    let _lock = heavy_lock();
    let r = run_caught(
        &["6.12-dynamic"],
        &["6.12-dynamic"],
        &["defect-disk-flip.mbox"],
        r#"profiles: [dma32]
workloads: [storage]
swiotlb:
  default: ""
"#,
    );
    let base = "6.12-dynamic.dma32.storage.default";
    assert_eq!(r.cell(base).status(), Status::Pass, "{:?}", r.cell(base).worst_failure());
    let f = failure_of(&r, "6.12-dynamic+defect-disk-flip.dma32.storage.default");
    assert_eq!(f.class, FailureClass::Correctness, "{f:?}");
    // The cell's first failure: fio's verify, checked before it, passed.
    assert!(f.message.contains("the host read the scratch disk after the guest"), "{}", f.message);
}
