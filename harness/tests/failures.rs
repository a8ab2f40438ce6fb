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
    std::fs::write(w.join("hang.sh"), "workload_main() {\n\techo hanging >&3\n\twhile :; do sleep 1; done\n}\n")
        .unwrap();
    std::fs::write(w.join("hang.yaml"), "description: never finishes\nguest: hang.sh\ntimeout_s: 8\nmetrics: {}\n")
        .unwrap();
    // The same guest with room to be interrupted long before its timeout.
    std::fs::write(w.join("stall.yaml"), "description: never finishes\nguest: hang.sh\ntimeout_s: 600\nmetrics: {}\n")
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
    assert!(qemu_pids_mentioning(&results.display().to_string()).is_empty(), "QEMU left running");
    assert!(out.contains("FAIL 6.12-fixed.dma32.hang.default [workload]: guest did not finish within 8s"), "{out}");
    assert!(out.contains("console: ") && out.contains("hang.default/rep-0/console.log"), "{out}");
    assert!(
        out.contains("FAIL 6.12-fixed.dma32.panic.default [correctness]: kernel panicked during the workload: ")
            && out.contains("Kernel panic - not syncing: sysrq triggered crash"),
        "{out}"
    );
}

fn matrix(project: &Path, workloads: &str) -> std::path::PathBuf {
    let f = project.join(format!("matrix-{}.yaml", workloads.replace(", ", "-")));
    std::fs::write(&f, format!("repetitions: 1\nkernels: [6.12-fixed]\nprofiles: [dma32]\nworkloads: [{workloads}]\nswiotlb: {{default: \"\"}}\n")).unwrap();
    f
}

/// Start `bounce matrix` and wait until the stalling guest's QEMU runs.
fn start_until_stalled(project: &Path, matrix: &Path, results: &Path) -> (std::process::Child, i32) {
    let child = bounce()
        .args(["matrix", "--accel", "tcg", "--matrix"])
        .arg(matrix)
        .arg("--results")
        .arg(results)
        .env("BOUNCE_ROOT", project)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        assert!(std::time::Instant::now() < deadline, "the stalling guest never started");
        if let Some(status) = child.try_wait().unwrap() {
            let o = child.wait_with_output().unwrap();
            panic!("bounce exited ({status}) before the guest stalled:\n{}\n{}", text(&o).0, text(&o).1);
        }
        let pids = qemu_pids_mentioning("bounce.workload=hang");
        if let Some(pid) = pids.first() {
            // Let it get past boot into the workload.
            std::thread::sleep(std::time::Duration::from_secs(8));
            return (child, *pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn ctrl_c_kills_the_guest_and_keeps_finished_cells() {
    let _lock = heavy_lock();
    let project = project_with_bad_workloads();
    let results = project.path().join("results");
    let m = matrix(project.path(), "memory, stall");
    let (child, _) = start_until_stalled(project.path(), &m, &results);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(130), "{out}\n{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(qemu_pids_mentioning(&results.display().to_string()).is_empty(), "QEMU left running");
    let runs: Vec<_> = std::fs::read_dir(results.join("runs")).unwrap().flatten().collect();
    let cell = runs[0].path().join("cells/6.12-fixed.dma32.memory.default.json");
    assert!(cell.exists(), "the finished cell was lost");
}

#[test]
fn a_qemu_killed_mid_run_is_an_infrastructure_failure() {
    let _lock = heavy_lock();
    let project = project_with_bad_workloads();
    let results = project.path().join("results");
    let m = matrix(project.path(), "stall");
    let (child, qemu) = start_until_stalled(project.path(), &m, &results);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(qemu), nix::sys::signal::Signal::SIGKILL).unwrap();
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(out.contains("[infrastructure]: QEMU exited unexpectedly (signal: 9 (SIGKILL))"), "{out}");
}
