//! Results on disk: one directory per run, one JSON file per cell.
//!
//! ```text
//! results/runs/RUN/
//!   env.json                host, QEMU, accel, kernels, harness revision
//!   cells/CELL.json         status and every sample of every metric
//!   guests/CELL/rep-N/      console.log, channel.log, qemu.stderr, guest.json
//!   report.txt, report.md   the comparison tables
//! ```

use super::CellResult;
use crate::failure::{Failure, Result};
use crate::host::env::RunEnv;
use std::path::{Path, PathBuf};

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn create(results: &Path, name: &str) -> Result<RunDir> {
        let path = results.join("runs").join(name);
        std::fs::create_dir_all(path.join("cells"))
            .map_err(|e| Failure::infra(format!("cannot create {}: {e}", path.display())))?;
        Ok(RunDir { path })
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

    pub fn read_env(&self) -> Result<RunEnv> {
        read_json(&self.path.join("env.json"))
    }

    /// Written through a temporary file and a rename, so a reader (or a
    /// crash) never sees half a cell.
    pub fn write_cell(&self, cell: &CellResult) -> Result<()> {
        write_json(&self.path.join("cells").join(format!("{}.json", cell.key.id())), cell)
    }

    pub fn read_cells(&self) -> Result<Vec<CellResult>> {
        let dir = self.path.join("cells");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Failure::infra(format!("cannot read {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| read_json(p)).collect()
    }

    pub fn write_text(&self, name: &str, text: &str) -> Result<()> {
        std::fs::write(self.path.join(name), text).map_err(|e| Failure::infra(format!("cannot write {name}: {e}")))
    }
}

pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(value).unwrap())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Failure::infra(format!("cannot write {}: {e}", path.display())))
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Failure::infra(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}
