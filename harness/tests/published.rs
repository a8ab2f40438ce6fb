//! The published run's reports as their readers see them, with no boot:
//! `bounce report` of results/published/ (and of copies of it). No path
//! of the machine that ran it, a dirty harness said.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The newest published run, as the benches take it.
fn published() -> PathBuf {
    std::fs::read_dir(root().join("results/published")).unwrap().flatten().map(|e| e.path()).max().unwrap()
}

/// `bounce report DIR --format FORMAT`: its stdout, after checking it
/// rendered (exit 0 for the published run: its failures were expected).
fn report(dir: &Path, format: &str) -> String {
    let o = bounce().arg("report").arg(dir).args(["--format", format]).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{format}: {err}");
    out
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
/// first screen, in every form a person reads; a clean one says nothing.
#[test]
fn a_dirty_harness_is_said_first() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    copy_dir(&published().join("cells"), &run.join("cells"));
    std::fs::copy(published().join("plan.json"), run.join("plan.json")).unwrap();
    let mut env: Value = serde_json::from_str(&std::fs::read_to_string(published().join("env.json")).unwrap()).unwrap();
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
    }
}
