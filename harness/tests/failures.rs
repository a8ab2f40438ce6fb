//! Induced failures, each of which must end its cell with the right class,
//! a one-line cause, and no QEMU left behind.

mod common;
use common::*;
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A copy of the project with two extra workloads: one whose guest never
/// finishes, one that panics the kernel through sysrq.
fn project_with_bad_workloads() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["kernels", "profiles", "rootfs", "workloads"] {
        copy_dir(&root().join(d), &dir.path().join(d));
    }
    let w = dir.path().join("workloads");
    std::fs::write(
        w.join("hang.sh"),
        "workload_main() {\n\techo hanging >&3\n\twhile :; do sleep 1; done\n}\n",
    )
    .unwrap();
    std::fs::write(
        w.join("hang.yaml"),
        "description: never finishes\nguest: hang.sh\ntimeout_s: 8\nmetrics: {}\n",
    )
    .unwrap();
    std::fs::write(
        w.join("panic.sh"),
        "workload_main() {\n\techo 1 > /proc/sys/kernel/sysrq\n\techo c > /proc/sysrq-trigger\n}\n",
    )
    .unwrap();
    std::fs::write(
        w.join("panic.yaml"),
        "description: crashes the kernel\nguest: panic.sh\ntimeout_s: 60\nmetrics: {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("matrix.yaml"),
        "repetitions: 1\nkernels: [6.12-fixed]\nprofiles: [dma32]\nworkloads: [hang, panic]\nswiotlb: {default: \"\"}\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_hanging_guest_times_out_and_a_panicking_one_is_caught() {
    let _lock = heavy_lock();
    let project = project_with_bad_workloads();
    let results = project.path().join("results");
    let o = bounce()
        .args(["matrix", "--accel", "tcg", "--matrix"])
        .arg(project.path().join("matrix.yaml"))
        .arg("--results")
        .arg(&results)
        .env("BOUNCE_ROOT", project.path())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    // The worst class wins the exit code: correctness (the panic) is 6.
    assert_eq!(o.status.code(), Some(6), "{out}\n{err}");
    assert!(
        qemu_processes_mentioning(&results.display().to_string()).is_empty(),
        "QEMU left running"
    );
    assert!(
        out.contains(
            "FAIL 6.12-fixed.dma32.hang.default [workload]: guest did not finish within 8s"
        ),
        "{out}"
    );
    assert!(
        out.contains("console: ") && out.contains("hang.default/rep-0/console.log"),
        "{out}"
    );
    assert!(
        out.contains("FAIL 6.12-fixed.dma32.panic.default [correctness]: kernel panicked during the workload: ")
            && out.contains("Kernel panic - not syncing: sysrq triggered crash"),
        "{out}"
    );
}
