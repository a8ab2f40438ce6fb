//! The command line's promises that need no kernel: dry runs, one-line
//! errors with a location, exit codes by failure class.

mod common;
use common::*;
use std::process::Command;

#[test]
fn dry_run_lists_the_default_matrix() {
    let o = bounce().args(["matrix", "--dry-run"]).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("88 cells x 3 repetitions = 264 boots"), "{out}");
    // A default-size pool that runs out, on both architectures.
    for id in ["6.12-dynamic.sev-emulated.dmacheck-transient.default", "6.12-dynamic.arm64.dmacheck-transient.default"]
    {
        assert!(out.contains(&format!("  {id}  (")), "{id} missing from:\n{out}");
    }
    assert!(
        out.contains("kernels to build or find in the cache: 6.12-fixed (x86_64), 6.12-dynamic (x86_64), 6.12-fixed (arm64), 6.12-dynamic (arm64)"),
        "{out}"
    );
    for profile in ["sev-emulated [emulated]", "dma32", "arm64", "arm64-embedded"] {
        for kernel in ["6.12-fixed", "6.12-dynamic"] {
            for workload in ["memory", "dmabench"] {
                let line = format!("(kernel {kernel}, profile {profile}, workload {workload}, swiotlb default");
                assert!(out.contains(&line), "{line} missing from:\n{out}");
            }
        }
    }
    // The emulated SEV profile bounces everything and sizes its pool as SEV does.
    assert!(out.contains("6.12-dynamic.sev-emulated.memory.1mib  (kernel 6.12-dynamic, profile sev-emulated [emulated], workload memory, swiotlb 1mib: swiotlb=512,1,force)"), "{out}");
    assert!(out.contains("swiotlb default: swiotlb=62976,force)"), "{out}");
    // The small pools exist only where they say something.
    assert!(out.contains("6.12-dynamic.dma32.growth.256k") && !out.contains("memory.256k"), "{out}");
    // The paths the gentle cells never reach: the DMA API's guarantees on
    // every profile, 4 vCPUs on one pool, a default-size pool run out, NVMe
    // (min_align_mask) on the default and a small pool, memory after I/O
    // grew the pool.
    for profile in ["sev-emulated", "dma32", "arm64", "arm64-embedded"] {
        assert!(out.contains(&format!("6.12-fixed.{profile}.dmacheck.default ")), "{profile}: {out}");
    }
    for profile in ["sev-emulated", "arm64", "arm64-embedded"] {
        assert!(out.contains(&format!("6.12-fixed.{profile}.dmacheck.1mib ")), "{profile}: {out}");
    }
    assert!(!out.contains("dma32.dmacheck.1mib") && !out.contains("nvme.storage.1mib-io"), "{out}");
    for cell in [
        "6.12-dynamic.sev-emulated.dmacheck-smp.1mib",
        "6.12-dynamic.arm64.dmacheck-smp.1mib",
        "6.12-dynamic.sev-emulated.drm-many.default",
        "6.12-dynamic.nvme.storage.256k-io",
        "6.12-dynamic.arm64-embedded.storage-mem.1mib",
        "6.12-dynamic.sev-emulated.storage-mem.1mib",
    ] {
        assert!(out.contains(&format!("{cell}  (")), "{cell}: {out}");
    }
    assert!(out.contains("skip 6.12-dynamic.nvme.growth.256k: profile is only for storage"), "{out}");
    assert!(!out.contains("dmabench.256k") && !out.contains("growth.default"), "{out}");
    assert!(out.contains("6.12-fixed.arm64-embedded.drm.1mib") && !out.contains("storage.1mib "), "{out}");
    // Growth under real I/O: a 256 KiB pool under storage and network,
    // where every DMA bounces, and nowhere else.
    for w in ["storage", "network"] {
        assert!(out.contains(&format!("6.12-dynamic.sev-emulated.{w}.256k-io")), "{out}");
        assert!(!out.contains(&format!("6.12-dynamic.dma32.{w}.256k-io")), "{out}");
    }
    // A workload meets only profiles with its device: no GPU on dma32.
    assert!(!out.contains("  6.12-fixed.dma32.drm") && out.contains("sev-emulated.drm.default"), "{out}");
    assert!(out.contains("skip 6.12-fixed.dma32.drm.default: profile has no `gpu`"), "{out}");
    // A real SEV profile is listed, skipped with its reason, on this host.
    if bounce::host::sev::host().is_err() {
        assert!(out.contains("skip 6.12-fixed.sev.memory.default: needs a host with SEV: "), "{out}");
    }
}

/// Output cut short by a closed pipe (`| head`) ends the harness quietly.
#[test]
fn a_closed_pipe_is_no_panic() {
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; '{}' matrix --dry-run | head -1", env!("CARGO_BIN_EXE_bounce")))
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(out.contains("cells x 3 repetitions"), "{out}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn broken_matrix_is_one_line_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("matrix.yaml");
    std::fs::write(&f, "repetitions: 3\nkernels: [6.12-fixed\nprofiles: [dma32]\n").unwrap();
    let o = bounce().args(["matrix", "--dry-run", "--matrix"]).arg(&f).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("bounce: input error: {}:", f.display())), "{err}");

    std::fs::write(
        &f,
        "repetitions: 3\nkernels: [6.12-fixed]\nprofiles: [dma32]\nworkloads: [memroy]\nswiotlb: {default: \"\"}\n",
    )
    .unwrap();
    let o = bounce().args(["matrix", "--dry-run", "--matrix"]).arg(&f).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("matrix.yaml:4: unknown workload `memroy`"), "{err}");
}

#[test]
fn missing_tools_name_the_one_command_that_installs_them() {
    // An empty PATH hides every tool; BOUNCE_NO_INSTALL stops a root run
    // from installing, which is what a non-root user would see.
    let o = bounce().arg("doctor").env("PATH", "/nonexistent").env("BOUNCE_NO_INSTALL", "1").output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    assert!(out.contains("MISSING flex"), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("install them with: sudo dpkg --add-architecture arm64 && sudo apt-get update -q && sudo apt-get install -y -q --no-install-recommends qemu-system-x86 && sudo apt-get install -y -q --no-install-recommends qemu-system-arm && sudo apt-get install"), "{err}");
}

#[test]
fn unknown_variant_lists_the_known_ones() {
    let o = bounce().args(["build", "6.13-nope"]).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("unknown kernel variant `6.13-nope`")
            && err.contains("6.1, 6.12-dynamic, 6.12-dynamic-debug, 6.12-fixed"),
        "{err}"
    );
}

#[test]
fn series_options_say_what_they_need() {
    let o = bounce().args(["build", "6.12-dynamic", "--per-patch"]).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--per-patch needs --series or --b4"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mbox");
    std::fs::write(&empty, "just some words\n").unwrap();
    let o = bounce().args(["build", "6.12-dynamic", "--series"]).arg(&empty).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("empty.mbox") && err.contains("contains no diff"), "{err}");
}

/// Offline, b4 cannot reach lore: the error says to save the mbox instead.
#[test]
fn b4_without_a_network_points_at_the_mbox_path() {
    let cache = tempfile::tempdir().unwrap();
    let o = bounce()
        .args(["build", "6.12-dynamic", "--b4", "20230419100359.3140-1-petrtesarik@huaweicloud.com"])
        .env("BOUNCE_CACHE", cache.path())
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("save the series from your mail client as an mbox and pass --series PATH")
            || err.contains("install it"),
        "{err}"
    );
}

#[test]
fn an_empty_cache_lists_nothing_and_collects_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let o = bounce().args(["cache", "ls"]).env("BOUNCE_CACHE", cache.path()).output().unwrap();
    assert!(o.status.success());
    assert!(text(&o).0.contains("0 entries"), "{}", text(&o).0);
    let o = bounce().args(["cache", "gc"]).env("BOUNCE_CACHE", cache.path()).output().unwrap();
    assert!(o.status.success());
    assert!(text(&o).0.contains("freed 0 B"), "{}", text(&o).0);
}

#[test]
fn gate_commands_reject_bad_input_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // A baseline that does not exist: said before any boot.
    let o = bounce().args(["compare", "no-such-baseline", "also-none", "--gate"]).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`no-such-baseline` is neither a run directory"), "{err}");
    let o = bounce()
        .args(["matrix", "--matrix", "nightly.yaml", "--gate", "no-such-baseline"])
        .current_dir(root())
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.lines().count() <= 2 && err.contains("bounce baseline save RUN NAME"), "{err}");
    // Stored samples need a baseline to be stored in.
    let o = bounce()
        .args(["matrix", "--matrix", "nightly.yaml", "--gate", "--stored"])
        .current_dir(root())
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--gate BASELINE --stored"), "{err}");
    // Drift is measured across runs hours apart, not one run thrice.
    let o = bounce()
        .args(["calibrate", "--drift", "nightly-tcg", "nightly-tcg", "nightly-tcg"])
        .current_dir(root())
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("started 0 min after") && err.contains("at least 60 min apart"), "{err}");
    // A run directory with a failed cell is no baseline; a name with a slash is refused.
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("cells")).unwrap();
    let o = bounce().args(["baseline", "save"]).arg(&run).arg("../escape").output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("use a plain name"), "{err}");
    // Calibration needs enough boots to measure noise at all.
    let o =
        bounce().args(["calibrate", "--matrix", "nightly.yaml", "--reps", "3"]).current_dir(root()).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("at least 6 boots"), "{err}");
}

#[test]
fn the_nightly_matrix_is_one_kernel_with_gated_metrics_in_every_cell() {
    let o = bounce().args(["matrix", "--matrix", "nightly.yaml", "--dry-run"]).current_dir(root()).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("8 cells x 6 repetitions = 48 boots"), "{out}");
    assert!(out.contains("kernels to build or find in the cache: 6.12-dynamic (x86_64)\n"), "{out}");
    let m = bounce::matrix::Matrix::load(&root(), &root().join("nightly.yaml")).unwrap();
    for w in m.workloads.values() {
        assert!(w.metrics.values().any(|d| d.gate), "workload {} has no gated metric", w.name);
    }
}

/// The published schemas are what the code generates today: a change to
/// the result types that forgets `bounce schema` fails here.
#[test]
fn the_published_json_schemas_match_the_result_types() {
    let dir = tempfile::tempdir().unwrap();
    let o = bounce().args(["schema", "--out"]).arg(dir.path()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    for name in ["cell.schema.json", "env.schema.json", "plan.schema.json"] {
        let fresh = std::fs::read_to_string(dir.path().join(name)).unwrap();
        let published = std::fs::read_to_string(root().join("results/schema").join(name))
            .unwrap_or_else(|e| panic!("results/schema/{name}: {e} (run `bounce schema`)"));
        assert_eq!(fresh, published, "results/schema/{name} is stale: run `bounce schema`");
    }
}

/// Input that would escape a folder, overflow or panic is refused when it
/// loads: one line naming the file, line and what to do, exit 2.
#[test]
fn hostile_input_is_one_line_and_exit_2_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.yaml");
    let good =
        "repetitions: 1\nkernels: [6.12-fixed]\nprofiles: [dma32]\nworkloads: [memory]\nswiotlb: {default: \"\"}\n";
    let cases: &[(&str, &str)] = &[
        (
            &good.replace("[6.12-fixed]", "[\"../../etc/x\"]"),
            "m.yaml:2: kernel variant name \"../../etc/x\" contains a path separator",
        ),
        (&good.replace("[dma32]", "[\".hidden\"]"), "m.yaml:3: profile name \".hidden\" starts with `.`"),
        (
            &good.replace("[memory]", "[\"mem\\u001b[31m\"]"),
            "workload name \"mem\\u{1b}[31m\" contains whitespace or a control character",
        ),
        (
            &good.replace("{default: \"\"}", "{\"../x\": \"\"}"),
            "m.yaml:5: swiotlb setting name \"../x\" contains a path separator",
        ),
        (&good.replace("repetitions: 1", "repetitions: 4294967295"), "m.yaml:1: repetitions must be 1 to 1000"),
        (
            &format!("{good}boot_timeout_s: 18446744073709551615\n"),
            "m.yaml:6: boot_timeout_s: 18446744073709551615 is not 1 to 86400 seconds",
        ),
        // A parameter that would smuggle its own kernel words in.
        (
            &format!("{good}params: {{memory: {{oom_probe: \"0 init=/bin/sh\"}}}}\n"),
            "m.yaml:6: workload memory: parameter `oom_probe`: value \"0 init=/bin/sh\" contains ' ': it would split the kernel command line",
        ),
    ];
    for (yaml, want) in cases {
        std::fs::write(&f, yaml).unwrap();
        let o = bounce().args(["matrix", "--dry-run", "--matrix"]).arg(&f).output().unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{yaml}\n{out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "want {want}\n got {err}");
    }
    // --reps past what any matrix means: refused before anything is planned.
    let o = bounce().args(["matrix", "--dry-run", "--reps", "4294967295"]).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("4294967295 is not in 1..=1000"), "{err}");

    // A profile whose pool rule cannot hold (min over max panicked in clamp).
    let root = tempfile::tempdir().unwrap();
    for d in ["kernels", "workloads", "rootfs"] {
        std::os::unix::fs::symlink(common::root().join(d), root.path().join(d)).unwrap();
    }
    std::fs::create_dir(root.path().join("profiles")).unwrap();
    let sev = std::fs::read_to_string(common::root().join("profiles/sev-emulated.yaml")).unwrap();
    for (from, to, want) in [
        (
            "min_mib: 64, max_mib: 1024",
            "min_mib: 2048, max_mib: 1024",
            "default_pool wants percent_of_ram 0-100 and min_mib <= max_mib",
        ),
        (
            "memory_mib: 2048",
            "memory_mib: 18446744073709551615",
            "memory_mib 18446744073709551615 is not 16 to 1048576",
        ),
    ] {
        std::fs::write(root.path().join("profiles/sev-emulated.yaml"), sev.replace(from, to)).unwrap();
        std::fs::write(&f, good.replace("[dma32]", "[sev-emulated]")).unwrap();
        let o = bounce()
            .env("BOUNCE_ROOT", root.path())
            .args(["matrix", "--dry-run", "--matrix"])
            .arg(&f)
            .output()
            .unwrap();
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{out}{err}");
        assert!(err.contains(want) && err.contains("profiles/sev-emulated.yaml"), "{err}");
    }
}

/// Without HOME the cache is a private directory of our own, never a
/// shared one someone else could have made first.
#[test]
fn without_home_the_cache_is_private() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |tmp: &std::path::Path| {
        bounce()
            .args(["cache", "ls"])
            .env_remove("HOME")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("BOUNCE_CACHE")
            .env("TMPDIR", tmp)
            .output()
            .unwrap()
    };
    let o = run(tmp.path());
    assert!(o.status.success(), "{}", text(&o).1);
    let uid = nix::unistd::geteuid();
    let dir = tmp.path().join(format!("bounce-cache-{uid}"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    // One another user could have planted: refused, with what to do.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = run(tmp.path());
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("others may write or read it") && err.contains("set BOUNCE_CACHE (or HOME)"), "{err}");
}

/// Root is needed only to install host tools. As a normal user, `bounce
/// doctor` names what is missing and the one command (with sudo) that
/// installs it, runs no apt-get itself, and exits 3; a matrix plans as that
/// user.
#[test]
fn a_normal_user_is_told_the_root_command_and_nothing_is_installed() {
    let project = common::project_copy();
    let arch = project.path().join("kernels/arch/x86_64.yaml");
    let yaml = std::fs::read_to_string(&arch).unwrap().replace(
        "host_tools:\n",
        "host_tools:\n  - bin: bounce-no-such-tool\n    package: bounce-no-such-pkg\n    why: a tool this host lacks\n",
    );
    std::fs::write(&arch, yaml).unwrap();
    std::fs::copy(common::root().join("matrix.yaml"), project.path().join("matrix.yaml")).unwrap();
    let home = tempfile::tempdir().unwrap();
    nix::unistd::chown(home.path(), Some(65534.into()), Some(65534.into())).unwrap();
    let as_nobody = |args: &[&str]| {
        let o = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_bounce"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", home.path())
            .env("BOUNCE_ROOT", project.path())
            .output()
            .unwrap();
        (o.status.code(), text(&o))
    };
    let (code, (out, err)) = as_nobody(&["doctor"]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(out.contains("MISSING") && out.contains("bounce-no-such-pkg"), "{out}");
    assert!(
        err.contains("install them with: sudo apt-get update -q && ")
            && err.contains("sudo apt-get install -y -q --no-install-recommends bounce-no-such-pkg"),
        "{err}"
    );
    assert!(!err.contains("installing host tools"), "{err}");
    let (code, (out, err)) = as_nobody(&["matrix", "--dry-run"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("6.12-fixed.dma32.storage.default"), "{out}");
}

/// A directory with cells/ but not the rest of a run is the user's to
/// fix: exit 2, one line naming what is missing and what to do; without
/// plan.json nothing says whether the run finished, so that is the same.
#[test]
fn report_of_cells_without_env_json_is_an_input_error() {
    let published = std::fs::read_dir(root().join("results/published")).unwrap().flatten().map(|e| e.path()).max();
    let published = published.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    copy_dir(&published.join("cells"), &run.join("cells"));
    let o = bounce().arg("report").arg(&run).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("bounce: input error: "), "{err}");
    assert!(err.contains(&format!("{} has cells/ but no env.json", run.display())), "{err}");
    assert!(err.contains("copy the whole run directory"), "{err}");
    std::fs::copy(published.join("env.json"), run.join("env.json")).unwrap();
    let o = bounce().arg("report").arg(&run).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{} has cells/ but no plan.json", run.display())), "{err}");
    std::fs::copy(published.join("plan.json"), run.join("plan.json")).unwrap();
    let o = bounce().arg("report").arg(&run).output().unwrap();
    // Complete now: the run's own verdict (the published run holds one
    // unexpected correctness failure, 6), not an input error.
    assert!(matches!(o.status.code(), Some(0) | Some(6)), "{:?} {}", o.status.code(), text(&o).1);
}

/// The gate's error rates are measured by a command, from the committed
/// nightly baseline, at the nightly matrix's sizes; bad input is one line.
#[test]
fn calibrate_power_prints_the_gates_false_alarm_rate_and_power() {
    let o = bounce()
        .args(["calibrate", "--power", "--nights", "60", "--power-nights", "5"])
        .current_dir(root())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("same-run nightly gate: 6 boots a cell of tonight's kernel against 6 of the last good build"),
        "{out}"
    );
    assert!(
        out.contains(
            "13 gated rows, measured by running the gate itself over nights drawn from nightly-tcg (10 boots a cell)"
        ),
        "{out}"
    );
    for line in ["boots resampled from the stored run:", "normal noise at the calibrated spread:", "false alarms: "] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    assert!(out.contains("storage.bw_geomean") && out.contains("-15%"), "{out}");
    let o = bounce().args(["calibrate", "--power", "--run", "no-such-run"]).current_dir(root()).output().unwrap();
    let (_, err) = text(&o);
    assert_eq!((o.status.code(), err.lines().count()), (Some(2), 1), "{err}");
}
