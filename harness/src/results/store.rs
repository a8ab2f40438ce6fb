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
        let copy = || -> std::io::Result<()> {
            std::fs::create_dir_all(tmp.join("cells"))?;
            std::fs::copy(self.path.join("env.json"), tmp.join("env.json"))?;
            std::fs::copy(self.path.join("plan.json"), tmp.join("plan.json"))?;
            for e in std::fs::read_dir(self.path.join("cells"))? {
                let p = e?.path();
                if p.extension().is_some_and(|x| x == "json") {
                    std::fs::copy(&p, tmp.join("cells").join(p.file_name().unwrap()))?;
                }
            }
            // Replaced whole: a reader never sees half of an old and half
            // of a new baseline.
            let _ = std::fs::remove_dir_all(&dest);
            std::fs::rename(&tmp, &dest)
        };
        copy().infra(|| format!("cannot save baseline {}", dest.display()))?;
        RunDir::open(&dest)
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
