//! Workloads: defined once in `workloads/NAME.yaml` (guest program,
//! parameters, metrics with unit and better-direction, correctness rules),
//! parsed here from the guest's result channel.

pub mod checks;
pub mod parse;

use crate::failure::{Classify, Failure, Result};
use crate::guest::channel::Transcript;
use crate::guest::qemu::Attach;
use crate::results::{Better, MetricDecl};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    #[serde(skip)]
    pub name: String,
    #[serde(skip)]
    pub file: PathBuf,
    pub description: String,
    /// The guest script under workloads/ that defines `workload_main`.
    pub guest: String,
    /// Seconds the guest may take after reaching init, under TCG on a busy
    /// two-core host.
    pub timeout_s: u64,
    /// What a profile must have for this workload to run on it: a device
    /// role (`disk`, `nic`, `gpu`) or a device name (the part of `-device`
    /// before the first comma, e.g. `edu`).
    #[serde(default)]
    pub needs: Vec<String>,
    /// When true a run in which nothing bounced fails: the cell was meant to
    /// test swiotlb and silently did not.
    #[serde(default)]
    pub must_bounce: bool,
    /// Passed to the guest as `bounce.KEY=VALUE`.
    #[serde(default)]
    pub params: BTreeMap<String, serde_yaml::Value>,
    /// Kernel log lines this workload causes on purpose.
    #[serde(default)]
    pub expected_log: Vec<ExpectedLog>,
    pub metrics: BTreeMap<String, MetricDecl>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedLog {
    pub pattern: String,
    pub why: String,
}

impl Workload {
    pub fn load(root: &Path, name: &str) -> Result<Workload> {
        let (mut w, file): (Workload, _) = crate::yaml::load_named(&root.join("workloads"), "workload", name)?;
        w.name = name.to_string();
        w.file = file;
        if !root.join("workloads").join(&w.guest).exists() {
            return Err(Failure::input(format!(
                "{}: guest program `{}` not found in workloads/",
                w.file.display(),
                w.guest
            )));
        }
        Ok(w)
    }

    /// Kernel command line words that carry the workload and its parameters.
    pub fn cmdline(&self) -> Vec<String> {
        let mut v = vec![format!("bounce.workload={}", self.guest.trim_end_matches(".sh"))];
        for (k, val) in &self.params {
            let s = match val {
                serde_yaml::Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
            };
            v.push(format!("bounce.{k}={s}"));
        }
        v
    }

    /// Metric values from a finished guest, keyed `workload.metric`. A value
    /// the parser produces that the definition does not declare is a bug in
    /// the harness, caught here rather than shown without a unit.
    pub fn metrics(&self, t: &Transcript) -> Result<BTreeMap<String, f64>> {
        let raw = match self.name.as_str() {
            "memory" => parse::memory(t)?,
            "dmabench" => parse::dmabench(t)?,
            other => return Err(Failure::input(format!("{}: no parser for workload `{other}`", self.file.display()))),
        };
        let mut out = BTreeMap::new();
        for (k, v) in raw {
            if !self.metrics.contains_key(&k) {
                return Err(Failure::infra(format!(
                    "parser for `{}` produced undeclared metric `{k}` (declare it in {})",
                    self.name,
                    self.file.display()
                )));
            }
            out.insert(format!("{}.{k}", self.name), v);
        }
        Ok(out)
    }

    /// What this workload needs attached to its guest; creates the scratch
    /// disk in the guest's directory (sparse: only what is written costs).
    pub fn attach(&self, guest_dir: &Path) -> Result<Attach> {
        let mut a = Attach { nic: self.needs("nic"), gpu: self.needs("gpu"), ..Attach::default() };
        if self.needs("disk") {
            let mib = self.params.get("disk_mib").and_then(|v| v.as_u64()).unwrap_or(64);
            std::fs::create_dir_all(guest_dir).infra(|| format!("cannot create {}", guest_dir.display()))?;
            let img = guest_dir.join("scratch.img");
            let f = std::fs::File::create(&img).infra(|| format!("cannot create {}", img.display()))?;
            f.set_len(mib << 20).infra(|| format!("cannot size {}", img.display()))?;
            a.disk = Some(img);
        }
        Ok(a)
    }

    fn needs(&self, what: &str) -> bool {
        self.needs.iter().any(|n| n == what)
    }

    /// Declarations keyed like `metrics()` values.
    pub fn declarations(&self) -> BTreeMap<String, MetricDecl> {
        self.metrics.iter().map(|(k, d)| (format!("{}.{k}", self.name), d.clone())).collect()
    }
}

impl MetricDecl {
    pub fn is_directional(&self) -> bool {
        self.better != Better::None
    }
}
