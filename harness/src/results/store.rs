//! Results on disk: one directory per run, one JSON file per cell.
//!
//! ```text
//! results/runs/RUN/
//!   env.json                host, QEMU, accel, kernels, harness revision
//!   plan.json               every planned boot, and whether the run finished
//!   cells/CELL.json         status and every sample of every metric
//!   guests/CELL/rep-N/      console.log, channel.log, qemu.stderr, guest.json
//!   report.txt, report.md   the comparison tables
//! ```

use super::env::RunEnv;
use super::{CellResult, RunPlan};
use crate::failure::{Classify, Failure, Result};
use crate::paths::write_atomic;
use std::path::{Path, PathBuf};

/// A baseline's record of the runs saved as it.
const HISTORY: &str = "history.json";

/// One run saved as a baseline: when, and which builds (by label, their
/// cache keys) it holds, so the good kernel of any night can be named.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Night {
    pub saved_at: String,
    pub run: String,
    pub started_at: String,
    pub harness_rev: String,
    pub kernels: std::collections::BTreeMap<String, String>,
}

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// A new run directory named `name`, or `name-2`, `name-3`... when
    /// another harness started one in the same second: each run keeps its
    /// own directory, never another's cells.
    pub fn create(results: &Path, name: &str) -> Result<RunDir> {
        let runs = results.join("runs");
        std::fs::create_dir_all(&runs).infra(|| format!("cannot create {}", runs.display()))?;
        for n in 1..1000 {
            let path = if n == 1 { runs.join(name) } else { runs.join(format!("{name}-{n}")) };
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    std::fs::create_dir(path.join("cells"))
                        .infra(|| format!("cannot create {}/cells", path.display()))?;
                    return Ok(RunDir { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Failure::infra(format!("cannot create {}: {e}", path.display()))),
            }
        }
        Err(Failure::infra(format!("{}: 999 runs named {name} already", runs.display())))
    }

    pub fn open(path: &Path) -> Result<RunDir> {
        if !path.join("cells").is_dir() {
            return Err(Failure::input(format!("{} is not a bounce run directory (no cells/)", path.display())));
        }
        Ok(RunDir { path: path.to_path_buf() })
    }

    pub fn guest_dir(&self, cell_id: &str, rep: u32) -> (PathBuf, String) {
        let rel = format!("guests/{cell_id}/rep-{rep}");
        (self.path.join(&rel), rel)
    }

    pub fn write_env(&self, env: &RunEnv) -> Result<()> {
        write_json(&self.path.join("env.json"), env)
    }

    /// Without env.json the cells cannot be judged (which kernels, which
    /// machine, which comparisons): the directory given is not a whole
    /// run, which is the caller's to fix, not the machine's.
    pub fn read_env(&self) -> Result<RunEnv> {
        let path = self.path.join("env.json");
        if !path.exists() {
            return Err(Failure::input(format!(
                "{} has cells/ but no env.json (the kernels, host and comparisons the cells were measured with): copy the whole run directory, not only its cells",
                self.path.display()
            )));
        }
        read_json(&path)
    }

    pub fn write_plan(&self, plan: &RunPlan) -> Result<()> {
        write_json(&self.path.join("plan.json"), plan)
    }

    /// The run's plan. Without it nothing says whether the run finished,
    /// and an interrupted run would read as complete with what it has:
    /// the directory given is not a whole run.
    pub fn read_plan(&self) -> Result<RunPlan> {
        let path = self.path.join("plan.json");
        if !path.exists() {
            return Err(Failure::input(format!(
                "{} has cells/ but no plan.json (the boots the run planned, and whether it finished): copy the whole run directory, not only its cells",
                self.path.display()
            )));
        }
        read_json(&path)
    }

    /// Written through a temporary file and a rename, so a reader (or a
    /// crash) never sees half a cell.
    pub fn write_cell(&self, cell: &CellResult) -> Result<()> {
        write_json(&self.path.join("cells").join(format!("{}.json", cell.key.id())), cell)
    }

    pub fn read_cells(&self) -> Result<Vec<CellResult>> {
        let dir = self.path.join("cells");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .infra(|| format!("cannot read {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| read_json(p)).collect()
    }

    /// Keep this run's raw samples and environment as a named baseline
    /// (`results/baselines/NAME/`: env.json, plan.json and cells/, no guest
    /// logs); only a finished run is one.
    pub fn save_baseline(&self, baselines: &Path, name: &str) -> Result<RunDir> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') || name.chars().any(char::is_control)
        {
            return Err(Failure::input(format!("baseline name `{name}`: use a plain name (no `/`, no leading `.`)")));
        }
        if let Some(why) = self.read_plan()?.incomplete(&self.read_cells()?) {
            return Err(Failure::input(format!("{}: an unfinished run is no baseline: {why}", self.path.display())));
        }
        let dest = baselines.join(name);
        let tmp = baselines.join(format!(".{name}.partial"));
        let _ = std::fs::remove_dir_all(&tmp);
        // A gated night booted the previous good build beside its own: the
        // baseline keeps tonight's kernel alone, as the next night's good.
        let mut env = self.read_env()?;
        let pinned = env.last_good.take().map(|g| g.kernels).unwrap_or_default();
        let is_pinned = |kernel: &str| pinned.iter().any(|k| k == kernel);
        env.kernels.retain(|label, _| !is_pinned(super::env::label_kernel(label)));
        env.compare.retain(|c| !is_pinned(&c.base));
        let mut plan = self.read_plan()?;
        plan.boots.retain(|b| !is_pinned(&b.cell.kernel));
        let mut history: Vec<Night> = read_json(&dest.join(HISTORY)).unwrap_or_default();
        history.push(Night {
            saved_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            run: self.name(),
            started_at: env.started_at.clone(),
            harness_rev: env.harness_rev.clone(),
            kernels: env.kernels.iter().map(|(label, b)| (label.clone(), b.key.clone())).collect(),
        });
        let copy = || -> Result<()> {
            std::fs::create_dir_all(tmp.join("cells")).infra(|| format!("cannot create {}", tmp.display()))?;
            write_json(&tmp.join("env.json"), &env)?;
            write_json(&tmp.join("plan.json"), &plan)?;
            write_json(&tmp.join(HISTORY), &history)?;
            for cell in self.read_cells()?.iter().filter(|c| !is_pinned(&c.key.kernel)) {
                write_json(&tmp.join("cells").join(format!("{}.json", cell.key.id())), cell)?;
            }
            // Replaced whole: a reader never sees half of an old and half
            // of a new baseline.
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::rename(&tmp, &dest).infra(|| format!("cannot save baseline {}", dest.display()))
        };
        copy()?;
        RunDir::open(&dest)
    }

    /// A baseline's nights: every run saved as it, oldest first.
    pub fn read_history(&self) -> Vec<Night> {
        read_json(&self.path.join(HISTORY)).unwrap_or_default()
    }

    /// A run directory, or the name of a baseline under `baselines`.
    pub fn resolve(arg: &str, baselines: &Path) -> Result<RunDir> {
        let p = Path::new(arg);
        if p.join("cells").is_dir() {
            return RunDir::open(p);
        }
        let named = baselines.join(arg);
        if !arg.contains('/') && named.join("cells").is_dir() {
            return RunDir::open(&named);
        }
        Err(Failure::input(format!(
            "`{arg}` is neither a run directory (with cells/) nor a baseline in {} (`bounce baseline save RUN NAME` makes one)",
            baselines.display()
        )))
    }

    pub fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    pub fn write_text(&self, name: &str, text: &str) -> Result<()> {
        write_atomic(&self.path.join(name), text.as_bytes())
    }
}

pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).infra(|| format!("{}", path.display()))?;
    write_atomic(path, text.as_bytes())
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).infra(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).input(|| format!("{}", path.display()))
}

/// The JSON Schema of every file a run directory holds, generated from
/// the types that write them: `bounce schema` publishes them under
/// `results/schema/`, and a test checks a real run against them.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    let json = |s: schemars::Schema| s.to_value();
    vec![
        ("cell.schema.json", json(schemars::schema_for!(CellResult))),
        ("env.schema.json", json(schemars::schema_for!(RunEnv))),
        ("plan.schema.json", json(schemars::schema_for!(RunPlan))),
        ("run.schema.json", json(schemars::schema_for!(RunRecord))),
    ]
}

/// A whole run in one document (`bounce report RUN --format json`).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct RunRecord<'a> {
    pub env: &'a RunEnv,
    pub plan: &'a RunPlan,
    pub cells: &'a [CellResult],
}

pub fn run_json(env: &RunEnv, plan: &RunPlan, cells: &[CellResult]) -> Result<String> {
    serde_json::to_string_pretty(&RunRecord { env, plan, cells }).infra(|| "cannot write the run as JSON".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::env::LastGood;
    use crate::results::testing::{cell, env, passed};
    use crate::results::{PlannedBoot, RunState};

    fn build(variant: &str, key: &str) -> super::super::env::BuildMeta {
        serde_json::from_value(serde_json::json!({
            "key": key, "variant": variant, "arch": "x86_64", "source": "", "kernel_version": "6.12",
            "config_base": "guest", "fragments": [], "toolchain": "gcc", "swiotlb_dynamic": true, "objects": 1,
            "duration_s": 1.0, "image_blake3": "", "reproducer": "", "built_at": ""
        }))
        .unwrap()
    }

    /// A gated night booted the last good build beside its own kernel;
    /// saved as the baseline, it keeps tonight's kernel alone (the next
    /// night's good one), and the baseline's history grows by the night.
    #[test]
    fn a_baseline_saved_from_a_same_run_gate_keeps_tonights_kernel_and_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let baselines = dir.path().join("baselines");
        for (night, key) in [("n1", "old"), ("n2", "new")] {
            let run = RunDir::create(dir.path(), night).unwrap();
            let mut e = env("cpu", "7.2", "2026-12-07T10:00:00Z");
            e.kernels.insert("k@good (x86_64)".into(), build("k", "older"));
            e.kernels.insert("k (x86_64)".into(), build("k", key));
            e.last_good = Some(LastGood { baseline: "nightly".into(), kernels: vec!["k@good".into()] });
            run.write_env(&e).unwrap();
            let mut boots = Vec::new();
            for k in ["k@good", "k"] {
                let mut c = cell(k, &[("dmabench.map_us", true, &[1.0])]);
                c.reps = vec![passed(0)];
                boots.push(PlannedBoot { cell: c.key.clone(), rep: 0 });
                run.write_cell(&c).unwrap();
            }
            run.write_plan(&RunPlan { boots, state: RunState::Complete, shard: None, timing: None }).unwrap();
            run.save_baseline(&baselines, "nightly").unwrap();
        }
        let b = RunDir::open(&baselines.join("nightly")).unwrap();
        let cells = b.read_cells().unwrap();
        assert_eq!(cells.iter().map(|c| c.key.kernel.as_str()).collect::<Vec<_>>(), ["k"]);
        let e = b.read_env().unwrap();
        assert_eq!(e.kernels.keys().collect::<Vec<_>>(), ["k (x86_64)"]);
        assert_eq!(e.kernels["k (x86_64)"].key, "new");
        assert!(e.last_good.is_none());
        assert_eq!(b.read_plan().unwrap().incomplete(&cells), None);
        let h = b.read_history();
        assert_eq!(h.iter().map(|n| n.run.as_str()).collect::<Vec<_>>(), ["n1", "n2"]);
        assert_eq!(h[1].kernels["k (x86_64)"], "new");
    }
}
