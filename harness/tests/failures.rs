//! Induced failures, each of which must end its cell with the right class,
//! a one-line cause, and no QEMU left behind; and the cells finished
//! before a failure (or a Ctrl-C) must still be in the results.

mod common;
use common::*;
use std::path::Path;

/// The project with test-only workloads and profiles added:
/// - hang / stall: a guest that never finishes (short and long timeout);
/// - panic: a kernel crash through sysrq during the workload;
/// - corrupt: fio writes with checksums, a block is overwritten behind
///   its back, fio's verify pass must catch it (the storage checks);
/// - dma32-mute: the 8250 driver registers no UART (`8250.nr_uarts=0`), so
///   nothing of the guest is ever heard: what a kernel built without its
///   console driver looks like from outside;
/// - dma32-noinit: the initramfs's init is not found and the kernel
///   panics before user space.
fn project_with_bad_parts() -> tempfile::TempDir {
    let dir = project_copy();
    let w = dir.path().join("workloads");
    let write = |name: &str, text: &str| std::fs::write(w.join(name), text).unwrap();
    write("hang.sh", "workload_main() {\n\techo hanging >&3\n\twhile :; do sleep 1; done\n}\n");
    write("hang.yaml", "description: never finishes\nguest: hang.sh\nkind: common\ntimeout_s: 8\nmetrics: {}\n");
    // The same guest with room to be interrupted long before its timeout.
    write("stall.yaml", "description: never finishes\nguest: hang.sh\nkind: common\ntimeout_s: 600\nmetrics: {}\n");
    // A child left holding the result channel; then, while the harness is
    // stopped (a host too busy to read), the last few KiB of the report
    // (the kernel log cleared to keep it short): more than QEMU's socket
    // takes, less than the guest's UART buffer, so /init gets to its end
    // with them still in the guest.
    write(
        "tail.sh",
        "workload_main() {\n\tdmesg -c > /dev/null\n\tsleep 600 &\n\techo tail-go >&3\n\tsleep 3\n\tsection tail awk 'BEGIN { for (i = 0; i < 20; i++) printf \"tail line %d of a report that must arrive whole\\n\", i }'\n}\n",
    );
    write(
        "tail.yaml",
        "description: a report that waits in the guest\nguest: tail.sh\nkind: common\ntimeout_s: 120\nmetrics: {}\n",
    );
    write("panic.sh", "workload_main() {\n\techo 1 > /proc/sys/kernel/sysrq\n\techo c > /proc/sysrq-trigger\n}\n");
    write("panic.yaml", "description: crashes the kernel\nguest: panic.sh\nkind: common\ntimeout_s: 60\nmetrics: {}\n");
    write(
        "corrupt.sh",
        r#"workload_main() {
	tools_mount || return 1
	disk=$(scratch_disk) || return 1
	/tools/bin/fio --name=seq-4k --filename="$disk" --direct=1 --rw=write --bs=4k --size=4M --verify=crc32c --do_verify=0 --eta=never --output=/dev/null || return 1
	# One block rewritten behind fio's back: what a bounce buffer copied
	# to the wrong place would look like.
	dd if=/dev/urandom of="$disk" bs=4096 seek=100 count=1 conv=fsync 2>/dev/null
	section fio-seq-4k /tools/bin/fio --name=seq-4k --filename="$disk" --direct=1 --rw=write --bs=4k --size=4M --verify=crc32c --verify_only --eta=never --output-format=json --output=/tmp/fio.json
	section fio-seq-4k-json cat /tmp/fio.json
	return 0
}
"#,
    );
    let storage = std::fs::read_to_string(w.join("storage.yaml")).unwrap();
    write(
        "corrupt.yaml",
        &storage
            .replace("guest: storage.sh", "guest: corrupt.sh\nkind: storage")
            .replace("must_bounce: true", "must_bounce: false"),
    );
    let p = dir.path().join("profiles");
    let dma32 = std::fs::read_to_string(p.join("dma32.yaml")).unwrap();
    // Mute and hung: no UART at all, and an init that sleeps instead of
    // running the workload, so neither the console nor the results channel
    // ever says a word (a mute guest whose init powers off would stop
    // before the timeout instead, depending on the host's speed).
    std::fs::write(
        p.join("dma32-mute.yaml"),
        format!("{dma32}cmdline: [\"8250.nr_uarts=0\", \"rdinit=/bin/busybox\", \"sleep\", \"3600\"]\n"),
    )
    .unwrap();
    std::fs::write(p.join("dma32-noinit.yaml"), format!("{dma32}cmdline: [\"rdinit=/no-such-init\"]\n")).unwrap();
    dir
}

/// 6.12-fixed's variant file with `patch` (under kernels/patches/) in
/// place of the harness's own patches.
fn fixed_with(project: &Path, patch: &str) -> String {
    std::fs::read_to_string(project.join("kernels/variants/6.12-fixed.yaml"))
        .unwrap()
        .replace("patches: patches/harness", &format!("patches: patches/{patch}"))
}

fn write_variant(project: &Path, name: &str, text: &str) {
    std::fs::write(project.join(format!("kernels/variants/{name}.yaml")), text).unwrap();
}

fn matrix(profile: &str, workloads: &str) -> String {
    format!("repetitions: 1\nkernels: [6.12-fixed]\nprofiles: [{profile}]\nworkloads: [{workloads}]\nswiotlb: {{default: \"\"}}\nboot_timeout_s: 40\n")
}

#[test]
fn a_hanging_guest_times_out_and_a_panicking_one_is_caught() {
    let _lock = heavy_lock();
    let project = project_with_bad_parts();
    let r = run_matrix_in(Some(project.path()), &matrix("dma32", "hang, panic"), &["--accel", "tcg"]);
    // The worst class wins the exit code: correctness (the panic) is 6.
    assert_eq!(r.code, Some(6), "{}\n{}", r.out, r.err);
    assert!(
        r.out.contains("FAIL 6.12-fixed.dma32.hang.default [workload]: guest did not finish within 8s"),
        "{}",
        r.out
    );
    assert!(r.out.contains("console: ") && r.out.contains("hang.default/rep-0/console.log"), "{}", r.out);
    assert!(
        r.out.contains("FAIL 6.12-fixed.dma32.panic.default [correctness]: kernel panicked during the workload: ")
            && r.out.contains("Kernel panic - not syncing: sysrq triggered crash"),
        "{}",
        r.out
    );
}

#[test]
fn a_guest_never_heard_from_and_one_that_panics_before_init_are_boot_failures() {
    let _lock = heavy_lock();
    let project = project_with_bad_parts();
    let r = run_matrix_in(Some(project.path()), &matrix("dma32-mute", "memory"), &["--accel", "tcg"]);
    assert_eq!(r.code, Some(4), "{}\n{}", r.out, r.err);
    assert!(
        r.out.contains("FAIL 6.12-fixed.dma32-mute.memory.default [boot]: guest did not reach init within 40s (last console line: `(nothing)`"),
        "{}",
        r.out
    );
    let r = run_matrix_in(Some(project.path()), &matrix("dma32-noinit", "memory"), &["--accel", "tcg"]);
    assert_eq!(r.code, Some(4), "{}\n{}", r.out, r.err);
    assert!(
        r.out.contains("FAIL 6.12-fixed.dma32-noinit.memory.default [boot]: kernel panicked before init: "),
        "{}",
        r.out
    );
}

#[test]
fn data_corrupted_behind_fio_s_back_fails_the_cell_as_correctness() {
    let _lock = heavy_lock();
    let project = project_with_bad_parts();
    let r = run_matrix_in(Some(project.path()), &matrix("dma32", "corrupt"), &["--accel", "tcg"]);
    assert_eq!(r.code, Some(6), "{}\n{}", r.out, r.err);
    assert!(
        r.out.contains("FAIL 6.12-fixed.dma32.corrupt.default [correctness]: storage: fio job seq-4k"),
        "{}",
        r.out
    );
}

/// The one run directory a matrix writes under `results`, once it exists.
fn the_run(results: &Path) -> Option<std::path::PathBuf> {
    Some(std::fs::read_dir(results.join("runs")).ok()?.flatten().next()?.path())
}

/// Start `bounce matrix` and wait until the stalling guest's QEMU runs.
fn start_until_stalled(project: &Path, matrix: &Path, results: &Path) -> (std::process::Child, i32) {
    build_x86_64_first("6.12-fixed", Some(project));
    // The run order is random within a repetition, and seeded: take a seed
    // whose schedule runs every other cell before the stalling one, so
    // the interrupted run has finished cells to keep.
    let m = bounce::matrix::Matrix::load(project, matrix).unwrap();
    let cells = m.expand().0;
    let seed = (0..100u64).find(|s| m.schedule(&cells, *s).last().is_some_and(|(c, _)| c.workload == "stall")).unwrap();
    let mut child = bounce()
        .args(["matrix", "--accel", "tcg", "--seed", &seed.to_string(), "--matrix"])
        .arg(matrix)
        .arg("--results")
        .arg(results)
        .env("BOUNCE_ROOT", project)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = wait_for(&mut child, 600, "the stalling guest to start", || {
        qemu_pids_mentioning("bounce.workload=hang").first().copied()
    });
    // Let it get past boot into the workload.
    std::thread::sleep(std::time::Duration::from_secs(8));
    (child, pid)
}

fn write_matrix(project: &Path, workloads: &str) -> std::path::PathBuf {
    let f = project.join(format!("matrix-{}.yaml", workloads.replace(", ", "-")));
    let params = if workloads.contains("memory") { "params: {memory: {oom_probe: 0}}\n" } else { "" };
    std::fs::write(&f, format!("{}{params}", matrix("dma32", workloads))).unwrap();
    f
}

/// Ctrl-C at a terminal, SIGTERM from a CI job's cancellation, SIGHUP from
/// a closed session: each kills the guest, keeps the finished cells, marks
/// the run interrupted and exits 128 + the signal.
#[test]
fn ctrl_c_sigterm_and_sighup_kill_the_guest_and_keep_finished_cells() {
    use nix::sys::signal::Signal;
    let _lock = heavy_lock();
    let project = project_with_bad_parts();
    let m = write_matrix(project.path(), "memory, stall");
    for (signal, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143), (Signal::SIGHUP, 129)] {
        let results = project.path().join(format!("results-{signal}"));
        let (child, _) = start_until_stalled(project.path(), &m, &results);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let o = child.wait_with_output().unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(code), "{signal}: {out}\n{err}");
        assert!(err.contains("interrupted"), "{signal}: {err}");
        assert!(qemu_pids_mentioning(&results.display().to_string()).is_empty(), "{signal}: QEMU left running");
        let runs: Vec<_> = std::fs::read_dir(results.join("runs")).unwrap().flatten().collect();
        let cell = runs[0].path().join("cells/6.12-fixed.dma32.memory.default.json");
        assert!(cell.exists(), "{signal}: the finished cell was lost");
        assert!(runs[0].path().join("report.txt").exists(), "{signal}: no report for the interrupted run");
        let plan = std::fs::read_to_string(runs[0].path().join("plan.json")).unwrap();
        assert!(plan.contains("\"interrupted\""), "{signal}: {plan}");
    }
}

#[test]
fn a_qemu_killed_mid_run_is_an_infrastructure_failure() {
    let _lock = heavy_lock();
    let project = project_with_bad_parts();
    let results = project.path().join("results");
    let m = write_matrix(project.path(), "stall");
    let (child, qemu) = start_until_stalled(project.path(), &m, &results);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(qemu), nix::sys::signal::Signal::SIGKILL).unwrap();
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(out.contains("[infrastructure]: QEMU exited unexpectedly (signal: 9 (SIGKILL))"), "{out}");
    assert!(qemu_pids_mentioning(&results.display().to_string()).is_empty(), "QEMU left running");
}

/// An interrupted run says so (its plan, the report's first line, exit
/// 130 from `bounce report`); `--resume` boots only what is missing, into
/// the same directory, and then the run is whole.
#[test]
fn an_interrupted_run_resumes_with_only_the_missing_boots() {
    let _lock = heavy_lock();
    build_x86_64_first("6.12-dynamic", None);
    let (dir, file, results) = matrix_dir(
        "repetitions: 3\nkernels: [6.12-dynamic]\nprofiles: [dma32]\nworkloads: [memory]\nparams:\n  memory: {oom_probe: 0}\nswiotlb:\n  default: \"\"\n",
    );
    let mut child = spawn_matrix(&file, &results, &["--seed", "1"]);
    // Interrupted once the first boot is stored, while the next one runs.
    let run = wait_for(&mut child, 900, "the first boot's record", || {
        let run = the_run(&results)?;
        run.join("cells/6.12-dynamic.dma32.memory.default.json").exists().then_some(run)
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(130), "{out}\n{err}");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["state"], "interrupted");
    assert_eq!(plan["boots"].as_array().unwrap().len(), 3);
    let stored = bounce::results::store::RunDir::open(&run).unwrap().read_cells().unwrap();
    let ran = stored[0].reps.len();
    assert!((1..3).contains(&ran), "{ran} boots stored");

    let o = bounce().arg("report").arg(&run).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(130), "{out}\n{err}");
    let first =
        format!("INTERRUPTED: {ran} of 3 planned boots ran; `bounce matrix --resume RUN` runs the {} missing", 3 - ran);
    // The text report wraps it at 80 columns.
    assert!(out.replace("\n  ", " ").starts_with(&first), "{out}");
    let o = bounce().arg("report").arg(&run).args(["--format", "junit"]).output().unwrap();
    assert_eq!(o.status.code(), Some(130));
    let xml = dir.path().join("interrupted.xml");
    std::fs::write(&xml, &o.stdout).unwrap();
    let cases = junit_cases(&xml);
    assert!(cases.iter().any(|l| l.contains(" run.complete FAIL INTERRUPTED: ")), "{cases:#?}");

    let o = bounce().args(["matrix", "--resume"]).arg(&run).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains(&format!("{} of 3 planned boots to run", 3 - ran)), "{err}");
    let boots = err.lines().filter(|l| l.contains("6.12-dynamic.dma32.memory.default rep")).count();
    assert_eq!(boots, 3 - ran, "only the missing boots run:\n{err}");
    assert!(!out.contains("INTERRUPTED"), "{out}");
    assert_eq!(std::fs::read_dir(results.join("runs")).unwrap().count(), 1, "resumed into the same directory");
    let cells = bounce::results::store::RunDir::open(&run).unwrap().read_cells().unwrap();
    let mut reps: Vec<u32> = cells[0].reps.iter().map(|r| r.rep).collect();
    reps.sort();
    assert_eq!(reps, [0, 1, 2]);
    assert_eq!(cells[0].metrics["memory.mem_total_kib"].samples.len(), 3);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["state"], "complete");
    let o = bounce().arg("report").arg(&run).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).0);

    // The raw results validate against the published JSON Schemas.
    const VALIDATE: &str = r#"
import glob, json, sys, jsonschema
schemas, run = sys.argv[1], sys.argv[2]
for name, files in [("cell", glob.glob(run + "/cells/*.json")), ("env", [run + "/env.json"]), ("plan", [run + "/plan.json"])]:
    schema = json.load(open(f"{schemas}/{name}.schema.json"))
    check = jsonschema.validators.validator_for(schema)(schema)
    for f in files:
        check.validate(json.load(open(f)))
        print("valid", name)
"#;
    let o = std::process::Command::new(python_with("jsonschema"))
        .arg("-c")
        .arg(VALIDATE)
        .arg(root().join("results/schema"))
        .arg(&run)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("valid ")).count(), 3, "{out}");
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces, so split after `)`.
        let Some((comm, rest)) = stat.split_once(") ") else { continue };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            out.push((child, comm.split_once('(').map(|(_, c)| c.to_string()).unwrap_or_default()));
        }
    }
    out
}

/// A harness killed outright (SIGKILL: no handler runs) takes its QEMU and
/// its iperf3 server and the relays of the guest's connections with it.
#[test]
fn a_harness_killed_outright_leaves_no_qemu_or_iperf3_behind() {
    let _lock = heavy_lock();
    build_x86_64_first("6.12-fixed", None);
    let (_dir, file, results) = matrix_dir(&matrix("dma32", "network"));
    let mut child = bounce()
        .args(["matrix", "--accel", "tcg", "--matrix"])
        .arg(&file)
        .arg("--results")
        .arg(&results)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let harness = child.id();
    // The relays QEMU starts per guest connection are not the harness's
    // children (GLib spawns them detached): found by their command line,
    // which runs the harness's binary through /proc/HARNESS/exe.
    let own = format!("/proc/{}/exe", child.id());
    let relays = || processes_mentioning(&own, " relay 127.0.0.1:");
    let kids = wait_for(&mut child, 600, "the guest, the iperf3 server and a relayed connection", || {
        let mut kids = children_of(harness);
        let has = |name: &str| kids.iter().any(|(_, c)| c.starts_with(name));
        let relayed = relays();
        let all = has("qemu-system") && has("iperf3") && !relayed.is_empty();
        kids.extend(relayed.into_iter().map(|p| (p, "bounce relay".to_string())));
        all.then_some(kids)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while kids.iter().any(|(p, _)| alive(*p)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let left: Vec<&(i32, String)> = kids.iter().filter(|(p, _)| alive(*p)).collect();
    assert!(left.is_empty(), "outlived the harness: {left:?}");
}

/// Two harnesses at once: the second waits for the first's guests (their
/// timings would skew each other) and gives up with the lock's name when
/// told to wait no longer; both keep their own run directory.
#[test]
fn a_second_harness_waits_for_the_first_s_guests() {
    let _heavy = heavy_lock();
    build_x86_64_first("6.12-fixed", None);
    let yaml = matrix("dma32", "memory")
        .replace("workloads: [memory]", "workloads: [memory]\nparams: {memory: {oom_probe: 0}}");
    let (dir, file, results) = matrix_dir(&yaml);
    let lock = bounce::paths::cache_root().unwrap().join("locks/guests.lock");
    // Held by "another harness": this test.
    let held = bounce::lock::Lock::exclusive(&lock).unwrap();
    let o = bounce()
        .args(["matrix", "--matrix"])
        .arg(&file)
        .arg("--results")
        .arg(&results)
        .env("BOUNCE_LOCK_WAIT_S", "2")
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("another bounce is booting guests on this host"), "{err}");
    assert!(err.contains(&format!("gave up after 2 s waiting for {}", lock.display())), "{err}");
    assert!(!results.join("runs").exists(), "a harness that gave up left a run directory");
    // Released while the second waits: it goes on and passes.
    let start = |r: &str| {
        bounce().args(["matrix", "--matrix"]).arg(&file).arg("--results").arg(dir.path().join(r)).spawn().unwrap()
    };
    let waiting = start("results");
    std::thread::sleep(std::time::Duration::from_secs(3));
    drop(held);
    let o = waiting.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}", o.status);
    // Two runs started in the same second keep apart.
    let runs = results.join("runs");
    let a = bounce::results::store::RunDir::create(&results, "same-second").unwrap();
    let b = bounce::results::store::RunDir::create(&results, "same-second").unwrap();
    assert_ne!(a.path, b.path);
    assert!(runs.join("same-second-2/cells").is_dir());
}

/// The report's tail arrives even when a workload left a child holding
/// the result channel and the harness was slow to read (a watchdog's
/// `sleep` held it, and poweroff cut the nightly's report of one boot in
/// 48): the harness is stopped while the guest writes its last sections.
#[test]
fn a_report_arrives_whole_when_a_child_still_holds_the_channel() {
    let _lock = heavy_lock();
    let project = project_with_bad_parts();
    build_x86_64_first("6.12-fixed", Some(project.path()));
    let (_dir, file, results) = matrix_dir(&matrix("dma32", "tail"));
    let mut child = bounce()
        .args(["matrix", "--matrix"])
        .arg(&file)
        .arg("--results")
        .arg(&results)
        .env("BOUNCE_ROOT", project.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let channel = wait_for(&mut child, 600, "the tail workload to start", || {
        let run = the_run(&results)?;
        let c = run.join("guests/6.12-fixed.dma32.tail.default/rep-0/channel.log");
        std::fs::read_to_string(&c).ok()?.contains("tail-go").then_some(c)
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(12));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let c = std::fs::read_to_string(&channel).unwrap();
    assert!(c.contains("tail line 19 of a report that must arrive whole"));
    assert!(c.contains("@@bounce end dmesg") && c.contains("@@bounce done rc=0"));
}

/// A kernel that stalls (the seeded defect-stall: a debugfs knob spins
/// with preemption off) ends its boot the moment the kernel reports the
/// stall, with the kernel's words as the cause, instead of waiting out a
/// 600 s workload timeout that would say only "did not finish".
#[test]
fn a_stalled_kernel_ends_its_boot_with_the_kernel_s_diagnosis() {
    let _lock = heavy_lock();
    let project = project_with_bad_parts();
    let p = project.path();
    write_variant(
        p,
        "6.12-stall",
        &(fixed_with(p, "defect-stall.mbox").replace("arches: [x86_64, arm64]", "arches: [x86_64]")
            + "cmdline: [\"rcupdate.rcu_cpu_stall_timeout=3\"]\n"),
    );
    std::fs::write(p.join("workloads/spin.sh"), "workload_main() {\n\techo 60 > /sys/kernel/debug/bounce_stall_s\n}\n")
        .unwrap();
    std::fs::write(
        p.join("workloads/spin.yaml"),
        "description: the stall knob\nguest: spin.sh\nkind: common\ntimeout_s: 600\nmetrics: {}\n",
    )
    .unwrap();
    build_x86_64_first("6.12-stall", Some(p));
    let yaml = matrix("dma32", "spin").replace("[6.12-fixed]", "[6.12-stall]");
    let started = std::time::Instant::now();
    // The host's clock, so two vCPUs: RCU starts the grace period the
    // stuck CPU then never ends on the other one.
    let r = run_matrix_in(Some(p), &yaml, &["--clock", "host"]);
    assert_eq!(r.code, Some(6), "{}\n{}", r.out, r.err);
    assert!(
        r.out.contains("FAIL 6.12-stall.dma32.spin.default [correctness]: kernel stalled during the workload: `")
            && r.out.contains("detected stall"),
        "{}",
        r.out
    );
    // Ended by the diagnosis, not by the 600 s timeout.
    assert!(started.elapsed() < std::time::Duration::from_secs(600));
}

/// A kernel that spins with interrupts off on its only CPU says nothing:
/// no RCU stall (no other CPU to notice), no lockup detector. The harness
/// notices the silence from the host within about a minute and asks QEMU
/// where the CPU is (resolved with System.map), on x86 and arm64; the boot
/// fails as a kernel hang naming the function, not at the 600 s timeout
/// as "did not finish".
#[test]
fn a_kernel_spinning_with_interrupts_off_is_named_as_a_hang_within_a_minute() {
    let _lock = heavy_lock();
    let project = project_with_bad_parts();
    let p = project.path();
    write_variant(p, "6.12-spin", &fixed_with(p, "defect-spin.mbox"));
    std::fs::write(
        p.join("workloads/spin.sh"),
        "workload_main() {\n\techo spinning >&3\n\techo 1 > /sys/kernel/debug/bounce_spin\n}\n",
    )
    .unwrap();
    std::fs::write(
        p.join("workloads/spin.yaml"),
        "description: the spin knob\nguest: spin.sh\nkind: common\ntimeout_s: 600\nmetrics: {}\n",
    )
    .unwrap();
    let yaml = matrix("dma32, arm64", "spin").replace("[6.12-fixed]", "[6.12-spin]");
    // The instruction clock: one vCPU, the case the kernel cannot report.
    let r = run_matrix_in(Some(p), &yaml, &[]);
    assert_eq!(r.code, Some(6), "{}\n{}", r.out, r.err);
    for profile in ["dma32", "arm64"] {
        let id = format!("6.12-spin.{profile}.spin.default");
        let f = r.cell(&id).worst_failure().cloned().unwrap_or_else(|| panic!("{id} passed\n{}", r.out));
        assert_eq!(f.class, bounce::failure::FailureClass::Correctness, "{f:?}");
        assert!(f.message.starts_with("kernel hung during the workload: nothing written for "), "{}", f.message);
        assert!(f.message.contains("its CPU was in `bounce_spin_forever"), "{}", f.message);
        // Two guests side by side, each named about a minute after it went
        // quiet: timed from the guest's start, not from the run's (which
        // builds the spin kernel first on a cold cache: 518 s there).
        let total = r.cell(&id).reps[0].total_s;
        assert!(total < 300.0, "{id}: {total} s");
    }
}

/// The guest's network is restricted to the harness's services: a port
/// open on the host (on every address) is out of reach through the host's
/// alias 10.0.2.2 and through the host's own address, while the forwarded
/// stream checker still carries a verified stream (so the guest's network
/// works and the refusals are the restriction's).
#[test]
fn a_guest_reaches_its_services_and_no_other_host_port() {
    let _lock = heavy_lock();
    let project = project_with_bad_parts();
    let p = project.path();
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = reached.clone();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(c);
        }
    });
    // The host's address on its default route, if it has one (no packet
    // is sent to learn it).
    let host_ip = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").and_then(|()| s.local_addr()))
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "10.0.2.2".into());
    std::fs::write(
        p.join("workloads/escape.sh"),
        r#"workload_main() {
	net_up || return 1
	rc=0
	# The probe itself works: it connects to the forward.
	nc -w 5 "$BOUNCE_PEER" "$BOUNCE_STREAM_PORT" -e true < /dev/null || rc=3
	for a in 10.0.2.2 "$BOUNCE_HOST_IP"; do
		if nc -w 5 "$a" "$BOUNCE_PROBE_PORT" -e true < /dev/null; then
			echo "escape: reached $a:$BOUNCE_PROBE_PORT" >&3
			rc=1
		fi
	done
	bounce-stream up "$BOUNCE_PEER" "$BOUNCE_STREAM_PORT" 1 65536 || rc=2
	# Unbound, the NIC unmaps its receive ring (the counters' leak check).
	for i in /sys/class/net/*; do
		[ "${i##*/}" = lo ] && continue
		dev=$(readlink -f "$i/device")
		echo "${dev##*/}" > "$dev/driver/unbind"
	done
	return $rc
}
"#,
    )
    .unwrap();
    std::fs::write(
        p.join("workloads/escape.yaml"),
        format!(
            "description: tries the host's ports\nguest: escape.sh\nkind: common\ntimeout_s: 120\nneeds: [nic]\nservices: [stream]\nparams: {{probe_port: {port}, host_ip: \"{host_ip}\"}}\nmetrics: {{}}\n"
        ),
    )
    .unwrap();
    let r = run_matrix_in(Some(p), &matrix("dma32", "escape"), &[]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.out, r.err);
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0, "a guest connection reached port {port}");
}

/// The results' disk fills up mid-run (a tmpfs of a few MiB, filled to
/// the last byte once the first cell is written): the run stops as an
/// infrastructure failure (exit 3) naming the path it could not write,
/// the finished cell is still whole on disk, and no QEMU is left.
#[test]
fn a_full_disk_stops_the_run_naming_the_path_and_keeps_finished_cells() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test mounts a tmpfs: run the suite as root (CI does)");
    }
    let _lock = heavy_lock();
    build_x86_64_first("6.12-fixed", None);
    let (dir, file, results) = matrix_dir(
        "repetitions: 1\nkernels: [6.12-fixed]\nprofiles: [dma32]\nworkloads: [memory]\nparams: {memory: {oom_probe: 0}}\nswiotlb: {default: \"\", small: \"swiotlb=512\"}\nboot_timeout_s: 60\n",
    );
    std::fs::create_dir_all(&results).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "bounce-full"])
        .arg(&results)
        .status()
        .unwrap();
    assert!(mounted.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(results.clone());
    let mut child = spawn_matrix(&file, &results, &["--jobs", "1"]);
    let first = wait_for(&mut child, 600, "the first cell", || {
        let cells = the_run(&results)?.join("cells");
        std::fs::read_dir(cells).ok()?.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "json"))
    });
    let kept = std::fs::read_to_string(&first).unwrap();
    // Fill every byte that is left.
    let mut filler = std::fs::File::create(results.join("filler")).unwrap();
    let block = vec![0u8; 64 << 10];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    let _ = std::io::Write::write_all(&mut filler, &[0]);
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    let all = format!("{out}\n{err}");
    assert!(
        all.lines().any(|l| l.contains(&results.display().to_string()) && l.contains("No space left on device")),
        "{all}"
    );
    // The finished cell is as it was written, and still parses.
    assert_eq!(std::fs::read_to_string(&first).unwrap(), kept);
    let _: bounce::results::CellResult = serde_json::from_str(&kept).unwrap();
    assert!(qemu_pids_mentioning(&results.display().to_string()).is_empty());
    drop(dir);
}
