//! The facts about a run that a reader needs to trust (or distrust) its
//! numbers: where it ran, with what, accelerated how.

use super::accel::AccelChoice;
use crate::kernel::cache::BuildMeta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostInfo {
    pub cpu_model: String,
    pub cores: usize,
    pub mem_total_kib: u64,
    pub kernel: String,
    pub kvm_device: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunEnv {
    pub started_at: String,
    pub command: String,
    pub matrix_file: String,
    pub host: HostInfo,
    pub qemu: BTreeMap<String, String>,
    /// By guest architecture.
    pub accel: BTreeMap<String, AccelChoice>,
    pub harness_rev: String,
    /// By `VARIANT (ARCH)`.
    pub kernels: BTreeMap<String, BuildMeta>,
    /// How each profile makes DMA bounce, and whether it imitates hardware.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileNote>,
    /// The comparisons the report draws, kept with the run so a stored run
    /// reports the same tables whatever later happens to its matrix file.
    #[serde(default)]
    pub compare: Vec<crate::results::Comparison>,
    /// The seed of the run order (`bounce matrix --seed` repeats it).
    #[serde(default)]
    pub order_seed: Option<u64>,
    /// A merged run's shards: where and when each share ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardNote>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardNote {
    /// `K/N`.
    pub shard: String,
    pub run: String,
    pub host: HostInfo,
    pub started_at: String,
}

impl RunEnv {
    /// Why numbers from `self` and `other` should not be compared, if they
    /// should not: a different accelerator, QEMU or host class changes
    /// every timing more than any patch does.
    pub fn incomparable(&self, other: &RunEnv) -> Vec<String> {
        let mut why = Vec::new();
        for (arch, a) in &self.accel {
            if let Some(b) = other.accel.get(arch) {
                if a.accel != b.accel {
                    why.push(format!("{arch} ran under {} here and {} there", a.accel.qemu_arg(), b.accel.qemu_arg()));
                } else if a.clock != b.clock {
                    why.push(format!(
                        "{arch} guests ran on the {} here and the {} there",
                        a.clock.label(),
                        b.clock.label()
                    ));
                }
            }
        }
        for (qemu, v) in &self.qemu {
            if let Some(w) = other.qemu.get(qemu) {
                if v != w {
                    why.push(format!("{qemu} is `{v}` here and `{w}` there"));
                }
            }
        }
        if self.host.cpu_model != other.host.cpu_model || self.host.cores != other.host.cores {
            why.push(format!(
                "host `{}` x{} here and `{}` x{} there",
                self.host.cpu_model, self.host.cores, other.host.cpu_model, other.host.cores
            ));
        }
        why
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProfileNote {
    pub bounces_because: String,
    pub emulated: bool,
}

pub fn host_info() -> HostInfo {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_total_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    HostInfo {
        cpu_model,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        mem_total_kib,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string(),
        kvm_device: Path::new("/dev/kvm").exists(),
    }
}

/// `qemu-system-x86_64 --version`'s first line.
pub fn qemu_version(qemu: &str) -> String {
    Command::new(qemu)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The harness's git revision, marked `-dirty` with local changes, so a
/// published number can be traced to the code that measured it.
pub fn harness_rev(root: &Path) -> String {
    let git =
        |args: &[&str]| Command::new("git").arg("-C").arg(root).args(args).output().ok().filter(|o| o.status.success());
    let Some(rev) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".into();
    };
    let rev = String::from_utf8_lossy(&rev.stdout).trim().to_string();
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).map(|o| !o.stdout.is_empty()).unwrap_or(false);
    if dirty {
        format!("{rev}-dirty")
    } else {
        rev
    }
}
