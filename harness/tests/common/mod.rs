//! Shared by the integration tests: the real binary, one lock so tests
//! that build kernels or boot guests never run at once (two cores), and a
//! way to run a matrix and read its stored results.

#![allow(dead_code)]

use bounce::results::CellResult;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bounce() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bounce"))
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Held for the whole of a heavy test; the lock lives in the user's cache so
/// separate test binaries (and a `bounce matrix` in another terminal) share it.
pub fn heavy_lock() -> bounce::lock::Lock {
    bounce::lock::Lock::exclusive(&bounce::paths::cache_root().unwrap().join("locks/heavy-tests.lock")).unwrap()
}

/// QEMU processes whose command line mentions `needle` (the harness puts
/// each guest's directory there, through -pidfile).
pub fn qemu_pids_mentioning(needle: &str) -> Vec<i32> {
    processes_mentioning("qemu-system", needle)
}

/// Processes whose command line starts with `program` and mentions `needle`.
pub fn processes_mentioning(program: &str, needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.starts_with(program) && cmd.contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// A finished `bounce matrix` and what it stored.
pub struct MatrixRun {
    pub out: String,
    pub err: String,
    pub code: Option<i32>,
    /// Holds the matrix file and the results.
    pub dir: tempfile::TempDir,
    pub run_dir: PathBuf,
    pub cells: BTreeMap<String, CellResult>,
}

impl MatrixRun {
    pub fn cell(&self, id: &str) -> &CellResult {
        self.cells.get(id).unwrap_or_else(|| panic!("no cell {id}; have {:?}", self.cells.keys()))
    }

    /// The median of a metric over the cell's passing boots.
    pub fn value(&self, id: &str, metric: &str) -> f64 {
        let c = self.cell(id);
        let m = c.metrics.get(metric).unwrap_or_else(|| panic!("{id}: no metric {metric}; has {:?}", c.metrics.keys()));
        bounce::stats::median(&m.values()).unwrap()
    }

    /// A guest file of the cell's first boot (console.log, channel.log, ...).
    pub fn guest_file(&self, id: &str, file: &str) -> String {
        let c = self.cell(id);
        std::fs::read_to_string(self.run_dir.join(&c.reps[0].guest_dir).join(file)).unwrap()
    }

    /// Every cell passed, or the whole output to see why not.
    pub fn assert_all_passed(&self) {
        for c in self.cells.values() {
            assert!(
                c.status() == bounce::results::Status::Pass,
                "{} failed: {:?}\n{}\n{}",
                c.key.id(),
                c.worst_failure(),
                self.out,
                self.err
            );
        }
    }
}

/// Write `yaml` as a matrix and run it (in the project at `project`, or
/// this checkout), then read the one run directory it made.
/// A temporary directory holding `yaml` as matrix.yaml: (the directory,
/// the matrix file, where its run directories go).
pub fn matrix_dir(yaml: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("matrix.yaml");
    std::fs::write(&file, yaml).unwrap();
    let results = dir.path().join("results");
    (dir, file, results)
}

/// `bounce matrix` on `file` into `results`, started and left running,
/// its output piped.
pub fn spawn_matrix(file: &Path, results: &Path, extra: &[&str]) -> std::process::Child {
    bounce()
        .args(["matrix", "--matrix"])
        .arg(file)
        .arg("--results")
        .arg(results)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn run_matrix_in(project: Option<&Path>, yaml: &str, extra: &[&str]) -> MatrixRun {
    let (dir, file, results) = matrix_dir(yaml);
    let mut cmd = bounce();
    cmd.args(["matrix", "--matrix"]).arg(&file).arg("--results").arg(&results).args(extra);
    if let Some(p) = project {
        cmd.env("BOUNCE_ROOT", p);
    }
    let o = cmd.output().unwrap();
    let (out, err) = text(&o);
    assert!(
        qemu_pids_mentioning(&results.display().to_string()).is_empty(),
        "QEMU left running after the matrix:\n{err}"
    );
    let runs: Vec<PathBuf> = std::fs::read_dir(results.join("runs"))
        .unwrap_or_else(|e| panic!("no run directory ({e}):\n{out}\n{err}"))
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(runs.len(), 1, "one run directory expected");
    let run = bounce::results::store::RunDir::open(&runs[0]).unwrap();
    let cells = run.read_cells().unwrap().into_iter().map(|c| (c.key.id(), c)).collect();
    MatrixRun { out, err, code: o.status.code(), dir, run_dir: runs[0].clone(), cells }
}

pub fn run_matrix(yaml: &str) -> MatrixRun {
    run_matrix_in(None, yaml, &[])
}

/// Build an x86_64 kernel before a test waits on something timed: a cold
/// cache builds it for minutes, and the wait is meant for the guest alone.
pub fn build_x86_64_first(variant: &str, project: Option<&Path>) {
    let mut c = bounce();
    c.args(["build", variant, "--arch", "x86_64"]);
    if let Some(p) = project {
        c.env("BOUNCE_ROOT", p);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
}

/// Poll `probe` every 200 ms until it yields, for at most `secs`; the
/// child must still be running meanwhile (its stderr says why it is not).
pub fn wait_for<T>(child: &mut std::process::Child, secs: u64, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        assert!(std::time::Instant::now() < deadline, "waited {secs} s for {what}");
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("the child exited ({status}) while waiting for {what}:\n{err}");
        }
        if let Some(v) = probe() {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
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

/// A copy of the project's data folders, to add test-only workloads,
/// profiles or variants to.
pub fn project_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["kernels", "profiles", "rootfs", "workloads"] {
        copy_dir(&root().join(d), &dir.path().join(d));
    }
    dir
}

/// A Python with the PyPI package `pkg` (a venv in the cache, made once):
/// the real consumers of what the harness writes for other tools.
pub fn python_with(pkg: &str) -> PathBuf {
    let venv = bounce::paths::cache_root().unwrap().join("venvs").join(pkg);
    let py = venv.join("bin/python");
    let ready = venv.join(".installed");
    if !ready.exists() {
        let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
        assert!(ok(Command::new("python3").args(["-m", "venv"]).arg(&venv)), "python3 -m venv {}", venv.display());
        assert!(ok(Command::new(&py).args(["-m", "pip", "install", "-q", pkg])), "pip install {pkg}");
        std::fs::write(&ready, "").unwrap();
    }
    py
}

/// Every testcase of a JUnit file as junitparser reads it:
/// `SUITE CLASSNAME NAME PASS|FAIL MESSAGE`.
pub fn junit_cases(file: &Path) -> Vec<String> {
    const READ: &str = r#"
import sys, junitparser
for suite in junitparser.JUnitXml.fromfile(sys.argv[1]):
    for case in suite:
        bad = [r for r in case.result if isinstance(r, (junitparser.Failure, junitparser.Error))]
        print(suite.name, case.classname, case.name, "FAIL" if bad else "PASS", " | ".join(r.message or "" for r in bad))
"#;
    let o = Command::new(python_with("junitparser")).arg("-c").arg(READ).arg(file).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "junitparser could not read {}:\n{err}", file.display());
    out.lines().map(str::to_string).collect()
}
