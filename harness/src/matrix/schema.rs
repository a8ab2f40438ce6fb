//! The matrix file's shape, as serde reads it.

use super::{Comparison, ExpectedFailure};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    pub repetitions: u32,
    pub kernels: Vec<String>,
    /// Patch series to put on kernels of the matrix: each adds variants
    /// `KERNEL+SERIES` (and `KERNEL+SERIES@N` per patch) to the kernel axis.
    #[serde(default)]
    pub series: Vec<SeriesEntry>,
    pub profiles: Vec<String>,
    pub workloads: Vec<String>,
    /// Workload parameters to override, by workload (smaller sizes for a
    /// quick run, longer runs for a publication).
    #[serde(default)]
    pub params: BTreeMap<String, BTreeMap<String, serde_yaml::Value>>,
    /// Name -> extra kernel command line (empty: the kernel's default pool),
    /// optionally only for some workloads or profiles.
    pub swiotlb: BTreeMap<String, SwiotlbSetting>,
    #[serde(default)]
    pub compare: Vec<Comparison>,
    /// Cells known to fail, and why: a regression gate must stay green on
    /// a failure that is the point (a fixed 1 MiB pool cannot map a
    /// framebuffer), and must notice when one starts passing.
    #[serde(default)]
    pub expect_fail: Vec<ExpectedFailure>,
    /// Seconds a guest may take to reach init (default: 60 with KVM, 240
    /// under TCG, which a busy two-core host needs).
    #[serde(default)]
    pub boot_timeout_s: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesEntry {
    /// An mbox, a directory of patches or a quilt `series` file, relative
    /// to the matrix file.
    pub path: PathBuf,
    /// The kernels it goes on (default: every kernel of the matrix).
    #[serde(default)]
    pub on: Vec<String>,
    /// Also build every prefix of the series, to tell which patch moved a
    /// metric.
    #[serde(default)]
    pub per_patch: bool,
}

/// A value of the swiotlb axis: kernel words, or kernel words that apply
/// only to some workloads or profiles (a pool small enough to force growth
/// says nothing new about MemTotal).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SwiotlbSetting {
    Words(String),
    Restricted {
        args: String,
        #[serde(default)]
        workloads: Vec<String>,
        #[serde(default)]
        profiles: Vec<String>,
    },
}

impl SwiotlbSetting {
    pub fn args(&self) -> &str {
        match self {
            SwiotlbSetting::Words(w) => w,
            SwiotlbSetting::Restricted { args, .. } => args,
        }
    }

    pub(super) fn applies(&self, workload: &str, profile: &str) -> bool {
        match self {
            SwiotlbSetting::Words(_) => true,
            SwiotlbSetting::Restricted { workloads, profiles, .. } => {
                (workloads.is_empty() || workloads.iter().any(|w| w == workload))
                    && (profiles.is_empty() || profiles.iter().any(|p| p == profile))
            }
        }
    }
}
