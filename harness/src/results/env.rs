//! The records a run keeps about where and how it ran: the accelerator
//! and clock, the host, QEMU, each kernel build. Other modules produce
//! them (host/ probes, kernel/ builds); they live here, with the result
//! model, so that reading a stored run needs nothing but results/.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn qemu_arg(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The accelerator and how it was chosen; recorded with every result.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AccelChoice {
    pub accel: Accel,
    pub reason: String,
    /// How guest time passed (runs from before the choice existed: the host's).
    #[serde(default)]
    pub clock: Clock,
}

/// How guest time passes. Under TCG on the host's clock every guest timing
/// measures how busy the host was as much as the guest's own work (one-page
/// map latency moved 12-27 % between identical boots here). QEMU's
/// instruction counter (`-icount shift=S`) makes guest time the count of
/// instructions the guest executed, 2^S ns each: the same work takes the
/// same guest time whatever else the host runs, so two guests can share the
/// host without disturbing each other's timings. Only TCG can count; KVM
/// guests run on the host's clock, and their timings are real.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    #[default]
    Host,
    /// `-icount shift=S,sleep=on`: an instruction is 2^S ns of guest time;
    /// an idle guest's time still follows the host's (sleep=on), so guest
    /// timeouts and network peers behave.
    Instructions(u8),
}

impl Clock {
    /// The instruction clock's rate: 2^2 ns an instruction (250 MHz at one
    /// instruction a cycle) keeps a one-page map at about 3,000
    /// instructions well above the benchmark's 0.1 us resolution, and a
    /// timed second of guest work at a quarter of the instructions shift 0
    /// would need.
    pub const DEFAULT_SHIFT: u8 = 2;

    /// QEMU's arguments for this clock under `accel`.
    pub fn qemu_args(self, accel: Accel) -> Vec<String> {
        match (self, accel) {
            (Clock::Instructions(shift), Accel::Tcg) => vec!["-icount".into(), format!("shift={shift},sleep=on")],
            _ => Vec::new(),
        }
    }

    pub fn label(self) -> String {
        match self {
            Clock::Host => "host clock".into(),
            Clock::Instructions(s) => format!("instruction clock, {} ns an instruction", 1u64 << s),
        }
    }
}

impl AccelChoice {
    /// `tcg`, or `tcg, instruction clock (4 ns)` when guests counted.
    pub fn short(&self) -> String {
        match self.clock {
            Clock::Host => self.accel.qemu_arg().to_string(),
            Clock::Instructions(s) => format!("{}, instruction clock ({} ns)", self.accel.qemu_arg(), 1u64 << s),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostInfo {
    pub cpu_model: String,
    pub cores: usize,
    pub mem_total_kib: u64,
    pub kernel: String,
    pub kvm_device: bool,
}

/// `RunEnv::kernels` is keyed `KERNEL (ARCH)`, KERNEL as the run's kernel
/// axis names it (which a pinned `@good` build does not share with the
/// variant its record says it was built as).
pub fn kernel_label(kernel: &str, arch: &str) -> String {
    format!("{kernel} ({arch})")
}

/// The kernel-axis name in a `kernel_label`.
pub fn label_kernel(label: &str) -> &str {
    label.rsplit_once(" (").map_or(label, |(k, _)| k)
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
    /// The guest root filesystem's identity by guest arch: the content key
    /// of what every kernel boots with (busybox, fio, iperf3, the
    /// workloads' scripts and programs).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rootfs: BTreeMap<String, String>,
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
    /// A gated run that booted a stored baseline's last good kernel beside
    /// its own (same-run A/B).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_good: Option<LastGood>,
    /// A merged run's shards: where and when each share ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardNote>,
}

/// The baseline whose last good builds this run booted, and their names on
/// its kernel axis (`KERNEL@good`; their builds are in `kernels`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LastGood {
    pub baseline: String,
    pub kernels: Vec<String>,
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
    /// Measured by a harness with uncommitted changes (`harness_rev` ends
    /// in `-dirty`): no commit reproduces the run exactly.
    pub fn dirty(&self) -> bool {
        self.harness_rev.ends_with("-dirty")
    }

    /// Why numbers from `self` and `other` should not be compared, if they
    /// should not: a different accelerator or clock, QEMU, host class,
    /// compiler or guest root filesystem changes timings (and on the
    /// instruction clock, counted instructions) more than many patches do.
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
        let toolchains =
            |e: &RunEnv| e.kernels.values().map(|b| b.toolchain.clone()).collect::<std::collections::BTreeSet<_>>();
        let (a, b) = (toolchains(self), toolchains(other));
        if !a.is_empty() && !b.is_empty() && a != b {
            why.push(format!(
                "kernels built with `{}` here and `{}` there",
                a.into_iter().collect::<Vec<_>>().join("`, `"),
                b.into_iter().collect::<Vec<_>>().join("`, `")
            ));
        }
        for (arch, a) in &self.rootfs {
            if let Some(b) = other.rootfs.get(arch).filter(|b| *b != a) {
                why.push(format!(
                    "{arch} guest root filesystem {a} here and {b} there (fio, iperf3, busybox or a workload's script or program changed)"
                ));
            }
        }
        why
    }

    /// What differs between the two without making their numbers
    /// incomparable, shown beside a comparison: the harness's revision
    /// (its checks, not the guests' work) and the host's kernel (under TCG
    /// the guest's instructions do not pass through it).
    pub fn differences(&self, other: &RunEnv) -> Vec<String> {
        let mut d = Vec::new();
        if self.harness_rev != other.harness_rev {
            d.push(format!("harness {} here and {} there", self.harness_rev, other.harness_rev));
        }
        if self.host.kernel != other.host.kernel {
            d.push(format!("host kernel {} here and {} there", self.host.kernel, other.host.kernel));
        }
        d
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProfileNote {
    pub bounces_because: String,
    pub emulated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SeriesMeta {
    pub name: String,
    pub origin: String,
    pub hash: String,
    pub subjects: Vec<String>,
    /// KCIDB's patchset hash (sha256 over each patch's sha256); empty in
    /// entries built before it was kept, and refreshed when one is loaded.
    #[serde(default)]
    pub patchset_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BuildMeta {
    pub key: String,
    pub variant: String,
    pub arch: String,
    pub source: String,
    /// The git tree's public https URL, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_url: Option<String>,
    pub kernel_version: String,
    pub config_base: String,
    pub fragments: Vec<String>,
    #[serde(default)]
    pub series: Option<SeriesMeta>,
    pub toolchain: String,
    pub swiotlb_dynamic: bool,
    pub objects: u64,
    /// True when the build reused a warm build directory (only what the
    /// series touched was compiled).
    #[serde(default)]
    pub incremental: bool,
    pub duration_s: f64,
    pub image_blake3: String,
    /// The make command line that built it, runnable by hand.
    pub reproducer: String,
    pub built_at: String,
}
