//! The regression gate against real kernels: seeded defects of each class
//! a gate must catch (kernels/patches/defect-*.mbox) fail it with their
//! exit code, and the same kernel against itself, across two runs through
//! a saved baseline, passes it.

mod common;
use common::*;
use std::path::Path;

/// dma_map_benchmark cut to its headline latency run (and the shortest
/// sweep), on the forced-bouncing x86 guest.
fn dmabench_matrix(reps: u32, series: &[&str]) -> String {
    let series = if series.is_empty() {
        String::new()
    } else {
        let entries: Vec<String> = series
            .iter()
            .map(|s| format!("  - {{path: {}}}", root().join("kernels/patches").join(s).display()))
            .collect();
        format!("series:\n{}\n", entries.join("\n"))
    };
    format!(
        r#"
repetitions: {reps}
kernels: [6.12-dynamic]
{series}profiles: [sev-emulated]
workloads: [dmabench]
params:
  dmabench: {{sweep_threads: [1], sweep_granules: [1], sweep_dirs: [to]}}
swiotlb:
  default: ""
"#
    )
}

fn run_in(project: &Path, yaml: &str, extra: &[&str]) -> MatrixRun {
    run_matrix_in(Some(project), yaml, extra)
}

/// `bounce ARGS` in `project`: exit code, stdout, stderr.
fn bounce_in(project: &Path, args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let o = bounce().env("BOUNCE_ROOT", project).args(args).output().unwrap();
    let (out, err) = text(&o);
    (o.status.code(), out, err)
}

/// A bounce path 3 us slower per copy (+25 % of a one-page mapping on the
/// instruction clock): the gate names map_us and unmap_us, on the patched
/// kernel only, and exits 7. The unpatched kernel in the same run, judged
/// against a baseline saved from an earlier run, raises nothing (an A/A
/// across runs).
#[test]
fn a_seeded_slowdown_fails_the_gate_and_its_base_against_a_baseline_passes() {
    let _lock = heavy_lock();
    build_x86_64_first("6.12-dynamic", None);
    let project = project_copy();
    // The gate as a nightly runs it: with this host's calibration. (On the
    // host's clock, judged by their own spread alone, sev-emulated map_us
    // boots of one kernel in two runs minutes apart differed by +24 %, and
    // the unpatched kernel "regressed".)
    let noise = bounce::stats::noise::FILE;
    std::fs::create_dir_all(project.path().join(noise).parent().unwrap()).unwrap();
    std::fs::copy(root().join(noise), project.path().join(noise)).unwrap();

    let base = run_in(project.path(), &dmabench_matrix(6, &[]), &[]);
    assert_eq!(base.code, Some(0), "{}\n{}", base.out, base.err);
    let (code, out, err) = bounce_in(
        project.path(),
        &["baseline".as_ref(), "save".as_ref(), base.run_dir.as_os_str(), "nightly".as_ref()],
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(project
        .path()
        .join("results/baselines/nightly/cells/6.12-dynamic.sev-emulated.dmabench.default.json")
        .is_file());

    // Same-run A/B: the baseline's build of 6.12-dynamic boots beside
    // tonight's (the same build here: an A/A) and the series.
    let r = run_in(project.path(), &dmabench_matrix(6, &["defect-slow.mbox"]), &["--gate", "nightly"]);
    assert_eq!(r.code, Some(7), "exit 7 (regression) expected:\n{}\n{}", r.out, r.err);
    r.assert_all_passed();
    assert!(
        r.out.contains("same-run A/B: 6.12-dynamic@good (the last good build of baseline nightly, 1 night saved)"),
        "{}",
        r.out
    );
    assert_eq!(r.cell("6.12-dynamic@good.sev-emulated.dmabench.default").reps.len(), 6);
    // The gate's line leads the summary; its whole verdict ends the report.
    let lines: Vec<&str> = r.out.lines().collect();
    let summary_gate = lines.iter().position(|l| l.starts_with("gate: ")).expect(&r.out);
    assert!(lines[..summary_gate].iter().any(|l| l.starts_with("correctness: ")), "{}", r.out);
    let last = lines.iter().rposition(|l| l.starts_with("gate: ")).unwrap();
    assert!(last > summary_gate && lines[summary_gate] == lines[last], "{}", r.out);
    let gate = &lines[last..];
    assert!(gate[0].contains("regressed"), "{}", r.out);
    let regressed: Vec<&&str> = gate.iter().filter(|l| l.contains("REGRESSED")).collect();
    assert!(regressed.iter().any(|l| l.contains("dmabench.map_us")), "{}", r.out);
    // Only the patched kernel's comparison regressed; tonight's kernel
    // against its last good build did not.
    for l in &regressed {
        assert!(l.contains("6.12-dynamic+defect-slow (new)"), "a regression outside the defect:\n{l}\n{}", r.out);
    }
    // What a CI system reads: the same verdicts as JUnit testcases.
    let cases = junit_cases(&r.run_dir.join("report.junit.xml"));
    let failing: Vec<&String> = cases.iter().filter(|l| l.contains(" FAIL ")).collect();
    assert!(!failing.is_empty(), "{cases:#?}");
    for l in &failing {
        assert!(l.starts_with("regression ") && l.contains("6.12-dynamic+defect-slow (new)"), "{l}");
    }
    assert!(
        failing.iter().any(|l| l.contains("sev-emulated.dmabench.map_us") && l.contains("threshold")),
        "{failing:#?}"
    );
    assert_eq!(cases.iter().filter(|l| l.starts_with("correctness ")).count(), 3, "{cases:#?}");
    let slow = r.value("6.12-dynamic+defect-slow.sev-emulated.dmabench.default", "dmabench.map_us");
    let fast = r.value("6.12-dynamic.sev-emulated.dmabench.default", "dmabench.map_us");
    assert!(slow > fast, "{slow} vs {fast}");

    // A run read again (as a merged sharded nightly is) gates the same:
    // the same mode, the same verdict, the same exit.
    let (code, out, err) = bounce_in(project.path(), &["report".as_ref(), r.run_dir.as_os_str(), "--gate".as_ref()]);
    assert_eq!(code, Some(7), "{out}\n{err}");
    let again: Vec<&str> = out.lines().skip_while(|l| !l.starts_with("gate: ")).collect();
    assert!(
        again.first().is_some_and(|l| l.contains(" regressed")) && !again.first().unwrap().contains(" 0 regressed"),
        "{out}"
    );
    assert!(out.contains("same-run A/B: 6.12-dynamic@good"), "{out}");

    // --dry-run names the good build and lists its cells.
    let m = project.path().join("dry.yaml");
    std::fs::write(&m, dmabench_matrix(6, &[])).unwrap();
    let (code, out, err) = bounce_in(
        project.path(),
        &[
            "matrix".as_ref(),
            "--matrix".as_ref(),
            m.as_os_str(),
            "--gate".as_ref(),
            "nightly".as_ref(),
            "--dry-run".as_ref(),
        ],
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("same-run A/B: 6.12-dynamic@good boots baseline nightly's build "), "{out}");
    assert!(out.contains("  6.12-dynamic@good.sev-emulated.dmabench.default  (kernel 6.12-dynamic@good"), "{out}");

    // The same two runs through `bounce compare`: the unpatched cells of
    // the second run against the baseline pass the gate.
    let (code, out, err) =
        bounce_in(project.path(), &["compare".as_ref(), "nightly".as_ref(), r.run_dir.as_os_str(), "--gate".as_ref()]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("gate: 2 gated metric rows, 0 regressed"), "{out}");
}

/// A bit flipped in every page-sized bounce and slots that leak: both are
/// correctness failures (exit 6), caught by fio's verify and by the
/// swiotlb counters, while the unpatched kernel's cells pass.
#[test]
fn seeded_corruption_and_slot_leak_fail_as_correctness() {
    let _lock = heavy_lock();
    build_x86_64_first("6.12-dynamic", None);
    let yaml = dmabench_matrix(1, &["defect-corrupt.mbox", "defect-leak.mbox"])
        .replace("workloads: [dmabench]", "workloads: [dmabench, storage]")
        .replace("params:\n", "params:\n  storage: {jobs: [seq-64k, rand-4k], size_mib: 4}\n");
    let r = run_matrix_in(None, &yaml, &["--gate"]);
    assert_eq!(r.code, Some(6), "exit 6 (correctness) expected:\n{}\n{}", r.out, r.err);
    for w in ["dmabench", "storage"] {
        let c = r.cell(&format!("6.12-dynamic.sev-emulated.{w}.default"));
        assert_eq!(c.status(), bounce::results::Status::Pass, "base {w}: {:?}", c.worst_failure());
    }
    let failure = |id: &str| r.cell(id).worst_failure().cloned().unwrap_or_else(|| panic!("{id} passed\n{}", r.out));
    let corrupt = failure("6.12-dynamic+defect-corrupt.sev-emulated.storage.default");
    assert_eq!(corrupt.class, bounce::failure::FailureClass::Correctness, "{corrupt:?}");
    let leak = failure("6.12-dynamic+defect-leak.sev-emulated.dmabench.default");
    assert_eq!(leak.class, bounce::failure::FailureClass::Correctness, "{leak:?}");
    assert!(leak.message.contains("did not return to its idle value"), "{}", leak.message);
    let cases = junit_cases(&r.run_dir.join("report.junit.xml"));
    let line =
        |id: &str| cases.iter().find(|l| l.contains(&format!(" {id} "))).unwrap_or_else(|| panic!("{id}: {cases:#?}"));
    assert!(
        line("6.12-dynamic+defect-corrupt.sev-emulated.storage.default").contains(" FAIL storage: fio job"),
        "{cases:#?}"
    );
    assert!(line("6.12-dynamic+defect-leak.sev-emulated.dmabench.default").contains(" FAIL "), "{cases:#?}");
    assert!(line("6.12-dynamic.sev-emulated.storage.default").contains(" PASS"), "{cases:#?}");
}

/// A three-patch series whose second patch is the seeded slowdown:
/// `bounce bisect` boots the base and the whole series, then only the
/// prefixes a bisection needs (one patch: passes; two: regressed), and
/// names patch 2 with the gate's exit code.
#[test]
fn bisect_names_the_patch_that_slowed_the_bounce_path() {
    let _lock = heavy_lock();
    build_x86_64_first("6.12-dynamic", None);
    let (_dir, file, results) = matrix_dir(&dmabench_matrix(5, &["defect-slow-series.mbox"]));
    let o = bounce()
        .args(["bisect", "--seed", "5", "--matrix"])
        .arg(&file)
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    eprintln!("{out}");
    assert!(qemu_pids_mentioning(&results.display().to_string()).is_empty(), "QEMU left running:\n{err}");
    assert_eq!(o.status.code(), Some(7), "exit 7 (regression) expected:\n{out}\n{err}");
    let steps: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with('[')).collect();
    assert_eq!(steps.len(), 3, "base+whole, then prefixes 1 and 2:\n{out}");
    assert!(steps[0].contains("[3/3]") && steps[0].contains("REGRESSED"), "{out}");
    assert!(steps[1].contains("[1/3]") && steps[1].contains("passes the gate"), "{out}");
    assert!(steps[2].contains("[2/3]") && steps[2].contains("REGRESSED"), "{out}");
    assert!(out.contains("first bad patch: [2/3] swiotlb: SEEDED DEFECT: slow down every bounce copy"), "{out}");
    // Three runs, one a step: the prefix of three patches is never built
    // twice, the base booted once.
    assert_eq!(std::fs::read_dir(results.join("runs")).unwrap().count(), 3, "{out}");
}
