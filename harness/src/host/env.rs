//! The facts about a run that a reader needs to trust (or distrust) its
//! numbers: where it ran, with what, accelerated how.

use std::path::Path;
use std::process::Command;

pub use crate::results::env::{
    kernel_label, label_kernel, BuildMeta, HostInfo, LastGood, ProfileNote, RunEnv, ShardNote,
};

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
    super::cmd::output(Command::new(qemu).arg("--version"), super::cmd::QUICK)
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
