//! The one result model. Guests produce it, the store writes it, every
//! report reads it. Metrics are flat `workload.metric` names (as lkp-tests
//! does) so any two runs compare without special cases.

pub mod store;

use crate::failure::Failure;
use crate::host::accel::AccelChoice;
use crate::workload::checks::Finding;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
    /// Informational (a pool size, a count of slabs): shown, never judged.
    None,
}

/// Declared once, where the workload is defined (as mmtests does).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDecl {
    pub unit: String,
    pub better: Better,
    pub description: String,
}

/// The coordinates of a cell in the matrix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CellKey {
    pub kernel: String,
    pub profile: String,
    pub workload: String,
    /// Name of the swiotlb boot setting (an axis of the matrix).
    pub swiotlb: String,
}

impl CellKey {
    pub fn id(&self) -> String {
        format!("{}.{}.{}.{}", self.kernel, self.profile, self.workload, self.swiotlb)
    }
    /// The value of a named axis, for comparisons along any axis.
    pub fn axis(&self, axis: &str) -> Option<&str> {
        Some(match axis {
            "kernel" => &self.kernel,
            "profile" => &self.profile,
            "workload" => &self.workload,
            "swiotlb" => &self.swiotlb,
            _ => return None,
        })
    }
    pub fn with_axis(&self, axis: &str, value: &str) -> CellKey {
        let mut k = self.clone();
        match axis {
            "kernel" => k.kernel = value.into(),
            "profile" => k.profile = value.into(),
            "workload" => k.workload = value.into(),
            "swiotlb" => k.swiotlb = value.into(),
            _ => {}
        }
        k
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
}

/// One boot of one cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepResult {
    pub rep: u32,
    pub status: Status,
    pub failure: Option<Failure>,
    pub boot_s: Option<f64>,
    pub total_s: f64,
    /// Relative to the run directory.
    pub guest_dir: String,
    #[serde(default)]
    pub log_findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub rep: u32,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    #[serde(flatten)]
    pub decl: MetricDecl,
    pub samples: Vec<Sample>,
}

impl Metric {
    pub fn values(&self) -> Vec<f64> {
        self.samples.iter().map(|s| s.value).collect()
    }
}

/// Everything about one cell: written after every repetition, so an
/// interrupted run keeps what it measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    pub key: CellKey,
    /// The kernel's build key (content hash) and whether it is dynamic.
    pub kernel_build: String,
    pub swiotlb_dynamic: bool,
    pub swiotlb_cmdline: String,
    pub accel: AccelChoice,
    pub emulated: bool,
    pub reps: Vec<RepResult>,
    pub metrics: BTreeMap<String, Metric>,
    /// The matrix said this cell fails, and why.
    #[serde(default)]
    pub expected_failure: Option<crate::matrix::ExpectedFailure>,
}

impl CellResult {
    pub fn status(&self) -> Status {
        if !self.reps.is_empty() && self.reps.iter().all(|r| r.status == Status::Pass) {
            Status::Pass
        } else {
            Status::Fail
        }
    }

    /// Failed as the matrix said it would: every failed repetition has the
    /// declared class.
    pub fn failed_as_expected(&self) -> bool {
        self.expected_failure.as_ref().is_some_and(|e| {
            self.status() == Status::Fail
                && self.reps.iter().filter_map(|r| r.failure.as_ref()).all(|f| f.class == e.class)
        })
    }

    /// The most serious failure among the repetitions.
    pub fn worst_failure(&self) -> Option<&Failure> {
        self.reps.iter().filter_map(|r| r.failure.as_ref()).max_by_key(|f| f.class)
    }
}
