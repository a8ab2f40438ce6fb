//! The nightly CI workflow (.github/workflows/nightly.yml): valid for
//! GitHub Actions as its published schema says (check-jsonschema's
//! vendored copy), shaped as the README describes, and its shell steps
//! turn the harness's exit codes into the right job results (run against
//! a stand-in `cargo` that exits with a chosen code).

mod common;
use common::*;
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workflow_file() -> PathBuf {
    root().join(".github/workflows/nightly.yml")
}

fn workflow() -> Value {
    let text = std::fs::read_to_string(workflow_file()).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn job<'a>(w: &'a Value, name: &str) -> &'a Value {
    let j = &w["jobs"][name];
    assert!(j.is_mapping(), "the workflow has no job `{name}`");
    j
}

fn steps(job: &Value) -> &Vec<Value> {
    job["steps"].as_sequence().expect("a job with steps")
}

fn run_of(step: &Value) -> &str {
    step["run"].as_str().unwrap_or("")
}

/// The one step of `job` whose script contains `needle`.
fn step_running<'a>(w: &'a Value, job_name: &str, needle: &str) -> &'a Value {
    let found: Vec<&Value> = steps(job(w, job_name)).iter().filter(|s| run_of(s).contains(needle)).collect();
    assert_eq!(found.len(), 1, "job {job_name}: one step running `{needle}` expected");
    found[0]
}

/// check-jsonschema against GitHub's workflow schema: (passed, its output).
fn validate(file: &Path) -> (bool, String) {
    validate_as(file, "vendor.github-workflows")
}

/// check-jsonschema against one of its vendored schemas.
fn validate_as(file: &Path, schema: &str) -> (bool, String) {
    let py = python_with("check-jsonschema");
    let o = Command::new(py.with_file_name("check-jsonschema"))
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    (o.status.success(), format!("{out}{err}"))
}

#[test]
fn the_workflow_passes_the_schema_and_broken_copies_do_not() {
    let (ok, said) = validate(&workflow_file());
    assert!(ok, "nightly.yml is not a valid workflow:\n{said}");

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, w: &Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, serde_yaml::to_string(w).unwrap()).unwrap();
        p
    };
    // The copies go through serde_yaml: the unbroken one must still pass,
    // so a rejection below is the breakage's, not the round trip's.
    let (ok, said) = validate(&write("same.yml", &workflow()));
    assert!(ok, "the re-serialised workflow should still validate:\n{said}");

    let mut no_runner = workflow();
    no_runner["jobs"]["merge"].as_mapping_mut().unwrap().remove("runs-on").expect("merge has runs-on");
    let mut misspelt = workflow();
    let m = misspelt["jobs"]["merge"].as_mapping_mut().unwrap();
    let s = m.remove("steps").unwrap();
    m.insert("step".into(), s);
    for (name, broken) in [("no-runs-on.yml", no_runner), ("step-not-steps.yml", misspelt)] {
        let (ok, said) = validate(&write(name, &broken));
        assert!(!ok, "check-jsonschema accepted a broken workflow ({name}):\n{said}");
        assert!(said.contains("Schema validation errors"), "{name}: rejected for another reason:\n{said}");
    }
}

#[test]
fn shards_merge_and_gate_fit_together() {
    let w = workflow();
    // YAML 1.1 readers take `on` for a boolean; this one keeps the word.
    let on = if w["on"].is_null() { &w[Value::Bool(true)] } else { &w["on"] };
    assert!(on["schedule"][0]["cron"].is_string(), "a nightly cron: {on:?}");
    assert!(on.get("workflow_dispatch").is_some(), "started by hand too: {on:?}");

    for name in ["kernels", "shard", "merge"] {
        let j = job(&w, name);
        assert!(j["timeout-minutes"].as_u64().is_some(), "job {name} has no timeout-minutes");
        assert_eq!(j["container"].as_str(), Some("debian:bookworm"), "job {name}");
        for s in steps(j) {
            if let Some(uses) = s["uses"].as_str() {
                assert!(uses.contains("@v"), "job {name}: `{uses}` is not pinned to a version tag");
            }
        }
    }

    // The kernels job builds the kernels nightly.yaml boots.
    let nightly: Value = serde_yaml::from_str(&std::fs::read_to_string(root().join("nightly.yaml")).unwrap()).unwrap();
    let build = run_of(step_running(&w, "kernels", "-- build "));
    for k in nightly["kernels"].as_sequence().unwrap() {
        assert!(build.contains(k.as_str().unwrap()), "the kernels job does not build {k:?}: {build}");
    }
    assert!(build.contains("--arch x86_64"), "{build}");

    // Shards 1..N, each run with `--shard K/N` of that same N.
    let shard = job(&w, "shard");
    assert_eq!(shard["needs"].as_str(), Some("kernels"));
    let listed: Vec<u64> =
        shard["strategy"]["matrix"]["shard"].as_sequence().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let n = listed.len() as u64;
    assert!(n >= 2, "{listed:?}");
    assert_eq!(listed, (1..=n).collect::<Vec<_>>(), "the shard matrix must list 1..N");
    let boots = run_of(step_running(&w, "shard", "-- matrix "));
    assert!(boots.contains("--matrix nightly.yaml"), "{boots}");
    assert!(boots.contains(&format!("--shard ${{{{ matrix.shard }}}}/{n} ")), "not `--shard K/{n}`:\n{boots}");
    assert!(!boots.contains("--gate"), "a shard is judged only after the merge:\n{boots}");

    // The merge job waits for every shard, and the gate decides last.
    let merge = job(&w, "merge");
    let needs: Vec<&str> = match &merge["needs"] {
        Value::String(s) => vec![s.as_str()],
        Value::Sequence(v) => v.iter().filter_map(Value::as_str).collect(),
        other => panic!("merge needs: {other:?}"),
    };
    assert!(needs.contains(&"shard"), "merge needs {needs:?}");
    let last = run_of(steps(merge).last().unwrap());
    assert!(
        last.contains("-- compare nightly-tcg merged --gate"),
        "the merge job's last step must be the gate:\n{last}"
    );
    assert!(steps(merge).last().unwrap()["continue-on-error"].is_null(), "the gate's result must count");
    assert!(run_of(step_running(&w, "merge", "results merge")).contains("--into merged"));
    let reports = run_of(step_running(&w, "merge", "report merged"));
    for f in ["text", "markdown", "html", "junit", "kcidb"] {
        assert!(reports.contains(&format!("report {f} ")), "no {f} report:\n{reports}");
    }
}

/// Run a step's script as GitHub's `shell: bash` does, with `cargo` a
/// stand-in that prints its arguments and exits with `code`: (exit code,
/// what it wrote to $GITHUB_OUTPUT, to $GITHUB_STEP_SUMMARY).
fn run_step(script: &str, code: i32, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let cargo = bin.join("cargo");
    std::fs::write(&cargo, format!("#!/bin/sh\necho \"cargo $*\"\nexit {code}\n")).unwrap();
    std::fs::set_permissions(&cargo, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = script.replace("${{ matrix.shard }}", "2");
    assert!(!script.contains("${{"), "an expression left to substitute:\n{script}");
    let (output, summary) = (dir.path().join("output"), dir.path().join("summary"));
    let o = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (o.status.code().unwrap_or(-1), read(&output), read(&summary))
}

#[test]
fn a_shard_passes_on_verdicts_and_fails_on_anything_else() {
    let w = workflow();
    let boots = run_of(step_running(&w, "shard", "-- matrix "));
    for (code, job_passes) in [(0, true), (6, true), (7, true), (2, false), (3, false), (130, false)] {
        let (got, output, _) = run_step(boots, code, &[]);
        assert_eq!(got == 0, job_passes, "bounce matrix exiting {code}: the step exited {got}");
        assert!(output.contains(&format!("exit={code}")), "{output}");
    }
}

#[test]
fn the_reports_step_writes_every_report_and_keeps_the_worst_code() {
    let w = workflow();
    let reports = run_of(step_running(&w, "merge", "report merged"));
    for code in [0, 6, 130] {
        let (got, output, _) = run_step(reports, code, &[]);
        assert_eq!(got, 0, "bounce report exiting {code} must not stop the job before the gate");
        assert!(output.contains(&format!("status={code}")), "{output}");
    }
}

#[test]
fn the_gate_step_fails_on_a_regression_and_a_failed_cell_outranks_it() {
    let w = workflow();
    let gate = steps(job(&w, "merge")).last().unwrap();
    let status_env = gate["env"]["REPORT_STATUS"].as_str().unwrap_or("");
    assert!(status_env.contains("steps.reports.outputs.status"), "{gate:?}");
    let script = run_of(gate);
    // (bounce report's code, bounce compare's) -> the job's.
    for (report, compare, want) in [(0, 0, 0), (0, 7, 7), (0, 2, 2), (6, 0, 6), (6, 7, 6), (130, 0, 130)] {
        let (got, _, summary) = run_step(script, compare, &[("REPORT_STATUS", &report.to_string())]);
        assert_eq!(got, want, "report {report}, compare {compare}");
        assert!(
            summary.contains("compare nightly-tcg merged --gate"),
            "the gate's output is in the summary:\n{summary}"
        );
    }
}

/// The README's GitLab CI equivalent: valid for GitLab's published schema,
/// sharded the same way, the gate last.
#[test]
fn the_readme_gitlab_snippet_is_valid_and_gates_last() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = readme.split("\n## Nightly in CI\n").nth(1).expect("README has a `## Nightly in CI` section");
    let section = section.split("\n## ").next().unwrap();
    let snippet = section.split("```yaml\n").nth(1).and_then(|s| s.split("\n```").next()).expect("a yaml block");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(".gitlab-ci.yml");
    std::fs::write(&file, snippet).unwrap();
    let (ok, said) = validate_as(&file, "vendor.gitlab-ci");
    assert!(ok, "the README's .gitlab-ci.yml is not valid:\n{said}");

    let ci: Value = serde_yaml::from_str(snippet).unwrap();
    assert_eq!(ci["stages"], serde_yaml::from_str::<Value>("[kernels, shard, merge]").unwrap());
    let script = |job: &str| -> Vec<String> {
        ci[job]["script"].as_sequence().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
    };
    assert!(ci["shard"]["parallel"].as_u64().is_some());
    assert!(script("shard").iter().any(|l| l.contains("--shard $CI_NODE_INDEX/$CI_NODE_TOTAL")));
    assert_eq!(ci["merge"]["artifacts"]["reports"]["junit"].as_str(), Some("report.junit.xml"));
    let merge = script("merge");
    assert!(merge.last().unwrap().contains("-- compare nightly-tcg merged --gate"), "{merge:?}");
}
