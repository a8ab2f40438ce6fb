//! The published run's reports as their consumers read them, with no
//! boot: `bounce report` of results/published/ (and of copies of it),
//! read back by kcidb-io's validator, junitparser and plain string
//! checks. KCIDB paths unique within a build, JUnit and KCIDB counting
//! the same, no path of the machine that ran it, a dirty harness said.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The newest published run, as the benches take it.
fn published() -> PathBuf {
    std::fs::read_dir(root().join("results/published")).unwrap().flatten().map(|e| e.path()).max().unwrap()
}

/// `bounce report DIR --format FORMAT`: its stdout, after checking it
/// rendered: exit 0, or 6 when the run holds a cell that failed
/// unexpectedly (the published run does: a dynamic kernel's refusal),
/// never an input or infrastructure error of the report itself.
fn report(dir: &Path, format: &str) -> String {
    let o = bounce().arg("report").arg(dir).args(["--format", format]).output().unwrap();
    let (out, err) = text(&o);
    assert!(matches!(o.status.code(), Some(0) | Some(6)), "{format}: {:?} {err}", o.status.code());
    out
}

fn written(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// The published run's cells and plan copied under `dir`, and its
/// env.json to change before writing it there.
fn published_copy(dir: &std::path::Path) -> (std::path::PathBuf, Value) {
    let run = dir.join("run");
    copy_dir(&published().join("cells"), &run.join("cells"));
    std::fs::copy(published().join("plan.json"), run.join("plan.json")).unwrap();
    let env = serde_json::from_str(&std::fs::read_to_string(published().join("env.json")).unwrap()).unwrap();
    (run, env)
}

/// kcidb-io's own validator, exactly (no unknown field).
fn assert_valid_kcidb(file: &std::path::Path) {
    let o = std::process::Command::new(python_with("kcidb-io"))
        .arg("-c")
        .arg("import json, sys, kcidb_io\nkcidb_io.schema.V5_3.validate_exactly(json.load(open(sys.argv[1])))")
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "kcidb-io rejected it:\n{}", text(&o).1);
}

#[test]
fn kcidb_paths_are_unique_within_a_build_and_carry_the_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let file = written(tmp.path(), "kcidb.json", &report(&published(), "kcidb"));
    assert_valid_kcidb(&file);

    let data: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let tests = data["tests"].as_array().unwrap();
    let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for t in tests {
        let path = t["path"].as_str().unwrap();
        *seen.entry((t["build_id"].as_str().unwrap(), path)).or_default() += 1;
        // The machine a test ran on, where KCIDB 5.3 has room for it.
        let profile = t["environment"]["misc"]["profile"].as_str().unwrap_or_else(|| panic!("no profile: {t}"));
        assert!(t["environment"]["comment"].as_str().unwrap().contains(&format!("profile {profile}")), "{t}");
        // swiotlb.WORKLOAD.PROFILE.SETTING.metric..., or
        // swiotlb.gate|compare.COMPARISON.WORKLOAD.PROFILE.CONTEXT.metric...
        let segs: Vec<&str> = path.split('.').collect();
        let at = if matches!(segs[1], "gate" | "compare") { 3 } else { 1 };
        assert!(segs.len() > at + 2, "{path}");
        assert_eq!(segs[at + 1], profile, "{path}");
        assert!(!segs[at + 1..].contains(&segs[at]), "the workload twice in {path}");
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dups.is_empty(),
        "{} of {} paths repeat within a build: {:?}",
        dups.len(),
        tests.len(),
        &dups[..3.min(dups.len())]
    );
    assert!(tests.iter().any(|t| t["path"] == "swiotlb.dmabench.sev-emulated.default.map_stddev_us"), "{tests:?}");
    // A comparison's gated rows are there, ungated ones measured (DONE).
    assert!(tests
        .iter()
        .any(|t| t["path"].as_str().unwrap().starts_with("swiotlb.compare.kernel_6_12-fixed_vs_6_12-dynamic.")));

    // An expected failure is a limit the matrix provokes, not the code's fault.
    let issues = data["issues"].as_array().unwrap();
    assert!(!issues.is_empty());
    for i in issues {
        assert_eq!(i["culprit"]["code"], false, "{i}");
        assert!(i["comment"].as_str().unwrap().contains("not a bug"), "{i}");
    }
}

/// JUnit's and KCIDB's verdicts of the same run, counted the same way:
/// what a dashboard fed either would show.
#[test]
fn junit_and_kcidb_count_the_same_passes_failures_and_expected_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let run = published();
    let xml = written(tmp.path(), "junit.xml", &report(&run, "junit"));
    const READ: &str = r#"
import sys, junitparser
for suite in junitparser.JUnitXml.fromfile(sys.argv[1]):
    for case in suite:
        r = case.result
        kind = "pass" if not r else type(r[0]).__name__.lower()
        if kind == "skipped":
            kind += ":" + (r[0].type or "")
        print(suite.name, kind)
"#;
    let o = std::process::Command::new(python_with("junitparser")).arg("-c").arg(READ).arg(&xml).output().unwrap();
    assert!(o.status.success(), "junitparser: {}", text(&o).1);
    let mut junit: BTreeMap<String, usize> = BTreeMap::new();
    let mut regression_cases = 0;
    for l in text(&o).0.lines() {
        let (suite, kind) = l.split_once(' ').unwrap();
        *junit.entry(kind.to_string()).or_default() += 1;
        regression_cases += usize::from(suite == "regression");
    }

    let data: Value = serde_json::from_str(&report(&run, "kcidb")).unwrap();
    let incident: BTreeSet<&str> = data["incidents"]
        .as_array()
        .map(|a| a.iter().filter(|i| i["present"] == true).map(|i| i["test_id"].as_str().unwrap()).collect())
        .unwrap_or_default();
    let mut kcidb: BTreeMap<String, usize> = BTreeMap::new();
    let mut compared = 0;
    // The tests JUnit has a case for: the cells and the comparisons' gated
    // rows, not the per-metric medians.
    for t in data["tests"].as_array().unwrap() {
        let (cell, row) = (t["misc"].get("boots").is_some(), t["misc"].get("comparison").is_some());
        if !cell && !row {
            continue;
        }
        compared += usize::from(row);
        let kind = match (t["status"].as_str().unwrap(), incident.contains(t["id"].as_str().unwrap())) {
            (_, true) => "skipped:expected-failure",
            ("PASS" | "DONE", _) => "pass",
            ("FAIL", _) => "failure",
            ("ERROR" | "MISS", _) => "error",
            ("SKIP", _) => "skipped:not-compared",
            (s, _) => panic!("status {s}: {t}"),
        };
        *kcidb.entry(kind.to_string()).or_default() += 1;
    }
    assert_eq!(junit, kcidb, "JUnit (left) and KCIDB (right) disagree");
    // The published run's expected failures (cells the matrix expects to
    // fail that did), and its comparisons' gated rows without --gate.
    let expected = std::fs::read_dir(published().join("cells"))
        .unwrap()
        .flatten()
        .map(|e| serde_json::from_str::<Value>(&std::fs::read_to_string(e.path()).unwrap()).unwrap())
        .filter(|c| {
            !c["expected_failure"].is_null()
                && c["reps"].as_array().unwrap().iter().any(|r| r["status"].as_str() != Some("pass"))
        })
        .count();
    assert!(expected > 0);
    assert_eq!(junit.get("skipped:expected-failure"), Some(&expected), "{junit:?}");
    assert!(regression_cases > 0 && regression_cases == compared, "{regression_cases} vs {compared}");
}

/// No report points at the machine that ran the run: files are named by
/// their place in the run directory, the run by its name.
#[test]
fn reports_name_files_relative_to_the_run_directory() {
    let run = published();
    let abs = run.canonicalize().unwrap();
    for format in ["text", "markdown", "html", "junit", "kcidb", "json"] {
        let out = report(&abs, format);
        assert!(!out.contains(&abs.display().to_string()), "{format} names the directory it was read from");
        assert!(!out.contains("/results/runs/"), "{format} names a run directory of the machine that ran it");
        for (i, _) in out.match_indices("guests/") {
            assert!(
                i == 0 || !out[..i].ends_with('/'),
                "{format}: an absolute path at {}",
                &out[i.saturating_sub(60)..i + 40]
            );
        }
    }
    // The failures still say which log to read, inside the run.
    let text = report(&abs, "text");
    assert!(text.contains("(channel: guests/6.12-fixed."), "{text}");
}

/// A run measured by a harness with uncommitted changes says so on its
/// first screen, in every form a person reads, and KCIDB and JUnit carry
/// the revision; a clean one says nothing.
#[test]
fn a_dirty_harness_is_said_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, mut env) = published_copy(tmp.path());
    for (rev, dirty) in [("243a2d8f7d0a-dirty", true), ("243a2d8f7d0a", false)] {
        env["harness_rev"] = Value::String(rev.into());
        std::fs::write(run.join("env.json"), env.to_string()).unwrap();
        for format in ["text", "markdown", "html", "terminal"] {
            let out = report(&run, format);
            let first: String = out.lines().take(4).collect::<Vec<_>>().join("\n");
            let says =
                if format == "html" { out.contains("WARNING: harness") } else { first.contains("WARNING: harness") };
            assert_eq!(says, dirty, "{format} {rev}:\n{first}");
        }
        let kcidb: Value = serde_json::from_str(&report(&run, "kcidb")).unwrap();
        assert_eq!(kcidb["builds"][0]["misc"]["harness_dirty"], dirty);
        assert!(report(&run, "junit").contains(&format!("<property name=\"harness\" value=\"{rev}\"/>")));
    }
}

/// A kernel built from a git tree names its commit and, when the tree
/// has a public https remote, its repository, and KCIDB still validates.
#[test]
fn a_git_checkout_names_its_commit_and_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let (run, mut env) = published_copy(tmp.path());
    let sha = "adc218676eef25575469234709c2d87185ca223a";
    let url = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git";
    for k in env["kernels"].as_object_mut().unwrap().values_mut() {
        k["source"] = Value::String(format!("git:{sha}"));
        k["repository_url"] = Value::String(url.into());
    }
    std::fs::write(run.join("env.json"), env.to_string()).unwrap();
    let file = written(tmp.path(), "kcidb.json", &report(&run, "kcidb"));
    assert_valid_kcidb(&file);
    let data: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let checkouts = data["checkouts"].as_array().unwrap();
    assert!(!checkouts.is_empty());
    for c in checkouts {
        assert_eq!((c["git_commit_hash"].as_str(), c["git_repository_url"].as_str()), (Some(sha), Some(url)), "{c}");
    }
}
