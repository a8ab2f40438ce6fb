//! Guest profiles as data (`profiles/NAME.yaml`): the machine, its devices,
//! how swiotlb is set up on it, and why DMA bounces there.

use crate::failure::{Failure, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(skip)]
    pub name: String,
    #[serde(skip)]
    pub file: PathBuf,
    pub description: String,
    /// Why swiotlb is in the DMA path on this guest; printed in reports.
    pub bounces_because: String,
    pub arch: String,
    /// `-machine` value.
    pub machine: String,
    /// `-cpu` under TCG; KVM always uses `host`.
    #[serde(default = "default_cpu")]
    pub cpu: String,
    pub memory_mib: u64,
    pub smp: u32,
    /// `-device` values every boot gets, in order.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Where a workload's scratch disk goes: the controller (if any) and
    /// the disk device, which the harness completes with its drive.
    #[serde(default)]
    pub disk: Option<DiskSlot>,
    /// The NIC a network workload uses (with QEMU user networking).
    #[serde(default)]
    pub nic: Option<String>,
    /// The display device a DRM workload uses.
    #[serde(default)]
    pub gpu: Option<String>,
    /// Extra kernel command line words.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// Why this profile's guests must run on the host's clock under TCG
    /// (an emulated device that does not keep to the instruction clock);
    /// None: they run on the run's clock.
    #[serde(default)]
    pub host_clock: Option<String>,
    #[serde(default)]
    pub swiotlb: SwiotlbSetup,
    /// A confidential-computing technology the guest really uses; the
    /// profile runs only on hosts that have it.
    #[serde(default)]
    pub confidential: Option<Confidential>,
    /// Firmware for `-bios` (OVMF for SEV guests).
    #[serde(default)]
    pub firmware: Option<PathBuf>,
    /// True when the profile imitates hardware this host lacks (SEV without
    /// an SEV host): results and tables say so.
    #[serde(default)]
    pub emulated: bool,
    /// The only workloads this profile is for (a device set that matters to
    /// them alone); empty: every workload whose needs it meets.
    #[serde(default)]
    pub workloads: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSlot {
    /// `-device` for the controller (given `id=scratchctl`), if the disk needs one.
    #[serde(default)]
    pub controller: Option<String>,
    /// `-device` for the disk itself (given `drive=scratch`).
    pub device: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidential {
    Sev,
}

/// How the harness sets up swiotlb on top of the matrix's pool setting.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwiotlbSetup {
    /// Bounce every DMA mapping (`swiotlb=...,force`), as memory encryption does.
    #[serde(default)]
    pub force: bool,
    /// The pool the kernel would size itself on the imitated platform, used
    /// when the matrix's setting gives no size (the kernel ignores its own
    /// rule when `swiotlb=` is given, and so does the harness).
    #[serde(default)]
    pub default_pool: Option<PoolRule>,
}

/// `mem_encrypt_setup_arch()`: a share of RAM, clamped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolRule {
    pub percent_of_ram: u64,
    pub min_mib: u64,
    pub max_mib: u64,
}

/// Slots are 2 KiB (IO_TLB_SHIFT 11); the kernel rounds nslabs up to a
/// whole segment of 128 slots.
const SLAB: u64 = 2048;
const SEGMENT: u64 = 128;

impl PoolRule {
    /// What the harness asks for. The kernel then rounds it up to a power
    /// of two when it spreads the slabs over areas (round_up_default_nslabs):
    /// 6 % of 2 GiB asks for 62976 slabs and gets 65536, as a real SEV
    /// guest of that size does.
    pub fn nslabs(&self, memory_mib: u64) -> u64 {
        let bytes = (memory_mib << 20) * self.percent_of_ram / 100;
        let bytes = bytes.clamp(self.min_mib << 20, self.max_mib << 20);
        (bytes / SLAB).div_ceil(SEGMENT) * SEGMENT
    }
}

fn default_cpu() -> String {
    "max".into()
}

impl Profile {
    /// A machine with nothing attached (no swiotlb setup, no devices): the
    /// KVM probe's guest, and the guest of a bare boot-to-result timing.
    pub fn bare(name: &str, arch: &crate::kernel::arch::Arch, memory_mib: u64, smp: u32) -> Profile {
        Profile {
            name: name.into(),
            file: PathBuf::new(),
            description: name.into(),
            bounces_because: String::new(),
            arch: arch.name.clone(),
            machine: arch.probe_machine.clone(),
            cpu: default_cpu(),
            memory_mib,
            smp,
            devices: vec![],
            disk: None,
            nic: None,
            gpu: None,
            cmdline: vec![],
            host_clock: None,
            swiotlb: Default::default(),
            confidential: None,
            firmware: None,
            emulated: false,
            workloads: vec![],
        }
    }

    pub fn load(root: &Path, name: &str) -> Result<Profile> {
        let (mut p, file): (Profile, _) = crate::yaml::load_named(&root.join("profiles"), "profile", name)?;
        p.name = name.to_string();
        p.file = file;
        if p.confidential.is_some() && p.emulated {
            return Err(Failure::input(format!(
                "{}: a profile is either `confidential` (real hardware) or `emulated`, not both",
                p.file.display()
            )));
        }
        // QEMU takes sizes up to its host's memory; past a TiB is a typo, and
        // the pool rule's arithmetic must not overflow.
        if !(16..=1 << 20).contains(&p.memory_mib) {
            return Err(Failure::input(format!(
                "{}: memory_mib {} is not 16 to 1048576",
                p.file.display(),
                p.memory_mib
            )));
        }
        if let Some((w, known)) = crate::yaml::first_unknown(&root.join("workloads"), &p.workloads) {
            return Err(Failure::input(format!(
                "{}: workloads: `{w}` is not a workload (known: {known})",
                p.file.display()
            )));
        }
        if let Some(r) = &p.swiotlb.default_pool {
            if r.percent_of_ram > 100 || r.min_mib > r.max_mib || r.max_mib > 1 << 20 {
                return Err(Failure::input(format!(
                    "{}: default_pool wants percent_of_ram 0-100 and min_mib <= max_mib <= 1048576 (got {}, {}, {})",
                    p.file.display(),
                    r.percent_of_ram,
                    r.min_mib,
                    r.max_mib
                )));
            }
        }
        Ok(p)
    }

    /// Whether this profile fills a workload's need.
    pub fn has(&self, need: &Need) -> bool {
        match need {
            Need::Disk => self.disk.is_some(),
            Need::Nic => self.nic.is_some(),
            Need::Gpu => self.gpu.is_some(),
            Need::Device(dev) => self.devices.iter().any(|d| d.split(',').next() == Some(dev.as_str())),
        }
    }

    /// Why this host cannot run the profile, if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        match self.confidential {
            Some(Confidential::Sev) => crate::host::sev::host()
                .as_ref()
                .err()
                .map(|why| format!("needs a host with SEV: {why} (the sev-emulated profile imitates it)")),
            None => None,
        }
    }

    /// The kernel's swiotlb words for one cell: the matrix's setting with
    /// this profile's sizing rule and forcing merged in, so a cell never
    /// carries two `swiotlb=` words (the kernel would take the last one).
    pub fn swiotlb_words(&self, setting: &str) -> Vec<String> {
        let mut words: Vec<String> = Vec::new();
        let mut sized: Option<String> = None;
        for w in setting.split_whitespace() {
            match w.strip_prefix("swiotlb=") {
                Some(v) => sized = Some(v.to_string()),
                None => words.push(w.to_string()),
            }
        }
        let mut value: Option<String> =
            sized.or_else(|| self.swiotlb.default_pool.as_ref().map(|r| r.nslabs(self.memory_mib).to_string()));
        if self.swiotlb.force {
            value = Some(match value {
                Some(v) if !v.split(',').any(|p| p == "force") => format!("{v},force"),
                Some(v) => v,
                None => "force".into(),
            });
        }
        if let Some(v) = value {
            words.insert(0, format!("swiotlb={v}"));
        }
        words
    }
}

/// What a workload needs of a profile: one of the device roles a profile
/// fills (the one that bounces), or a fixed device by its QEMU name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Need {
    Disk,
    Nic,
    Gpu,
    /// The part of a profile's `-device` before the first comma (`edu`).
    Device(String),
}

impl TryFrom<String> for Need {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Need, String> {
        Ok(match s.as_str() {
            "disk" => Need::Disk,
            "nic" => Need::Nic,
            "gpu" => Need::Gpu,
            d if !d.is_empty() && d.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
                Need::Device(s)
            }
            _ => return Err(format!("need {s:?} is neither disk, nic, gpu nor a QEMU device name")),
        })
    }
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Need::Disk => "disk",
            Need::Nic => "nic",
            Need::Gpu => "gpu",
            Need::Device(d) => d,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sev_sizing_follows_mem_encrypt_setup_arch() {
        let r = PoolRule { percent_of_ram: 6, min_mib: 64, max_mib: 1024 };
        // 2 GiB: 6 % is 122.9 MiB -> 62915 slabs, rounded up to 62976.
        assert_eq!(r.nslabs(2048), 62976);
        // Small guests get the 64 MiB floor, huge ones the 1 GiB ceiling.
        assert_eq!(r.nslabs(512), 32768);
        assert_eq!(r.nslabs(64 * 1024), 524288);
    }

    #[test]
    fn swiotlb_words_merge_the_cell_setting_and_the_profile() {
        let root = crate::paths::project_root();
        let sev = Profile::load(&root, "sev-emulated").unwrap();
        let n = sev.swiotlb.default_pool.as_ref().unwrap().nslabs(sev.memory_mib);
        assert_eq!(sev.swiotlb_words(""), [format!("swiotlb={n},force")]);
        assert_eq!(sev.swiotlb_words("swiotlb=512,1"), ["swiotlb=512,1,force"]);
        assert_eq!(sev.swiotlb_words("swiotlb=512,1 iommu=soft"), ["swiotlb=512,1,force", "iommu=soft"]);
        let emb = Profile::load(&root, "arm64-embedded").unwrap();
        assert_eq!(emb.swiotlb_words(""), ["swiotlb=16384,force"]);
        let dma32 = Profile::load(&root, "dma32").unwrap();
        assert!(dma32.swiotlb_words("").is_empty());
        assert_eq!(dma32.swiotlb_words("swiotlb=128,1"), ["swiotlb=128,1"]);
    }

    #[test]
    fn shipped_profiles_load() {
        let root = crate::paths::project_root();
        for n in crate::yaml::names(&root.join("profiles")) {
            let p = Profile::load(&root, &n).unwrap();
            crate::kernel::arch::Arch::load(&root, &p.arch).unwrap();
        }
    }
}
