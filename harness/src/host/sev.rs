//! Does this host run real SEV guests? Read the way the kernel and QEMU
//! decide it: the CPU says so (CPUID 0x8000001F), kvm_amd has SEV on, and
//! /dev/sev exists. The C-bit position and the physical address bits lost
//! to encryption come from the same CPUID leaf and go on QEMU's command line.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// (eax, ebx, ecx, edx) of one CPUID leaf.
pub type Cpuid = (u32, u32, u32, u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SevHost {
    pub cbitpos: u32,
    pub reduced_phys_bits: u32,
}

/// Where detection looks; tests point these at a fake sysfs and a fake CPU.
pub struct Inputs {
    pub dev_sev: PathBuf,
    pub kvm_amd_sev: PathBuf,
    /// CPUID(leaf), None when the leaf is absent.
    pub cpuid: Box<dyn Fn(u32) -> Option<Cpuid>>,
}

impl Inputs {
    pub fn host() -> Inputs {
        Inputs {
            dev_sev: "/dev/sev".into(),
            kvm_amd_sev: "/sys/module/kvm_amd/parameters/sev".into(),
            cpuid: Box::new(host_cpuid),
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn host_cpuid(leaf: u32) -> Option<(u32, u32, u32, u32)> {
    // The maximum extended leaf is checked before the leaf itself is read.
    let max = std::arch::x86_64::__cpuid(leaf & 0x8000_0000).eax;
    if leaf > max {
        return None;
    }
    let r = std::arch::x86_64::__cpuid(leaf);
    Some((r.eax, r.ebx, r.ecx, r.edx))
}

#[cfg(not(target_arch = "x86_64"))]
fn host_cpuid(_leaf: u32) -> Option<(u32, u32, u32, u32)> {
    None
}

/// SEV's host facts, or why this host cannot run an SEV guest.
pub fn detect(i: &Inputs) -> Result<SevHost, String> {
    let (eax, ebx, _, _) =
        (i.cpuid)(0x8000_001F).ok_or("the CPU has no CPUID leaf 0x8000001F (not an AMD CPU with memory encryption)")?;
    if eax & 0b10 == 0 {
        return Err("the CPU does not report SEV (CPUID 0x8000001F EAX bit 1 is clear)".into());
    }
    let param = std::fs::read_to_string(&i.kvm_amd_sev)
        .map_err(|_| format!("{} is missing: kvm_amd is not loaded", i.kvm_amd_sev.display()))?;
    if !matches!(param.trim(), "Y" | "1") {
        return Err(format!("kvm_amd has SEV off ({} = {})", i.kvm_amd_sev.display(), param.trim()));
    }
    if !Path::new(&i.dev_sev).exists() {
        return Err(format!("{} is missing (no SEV firmware interface)", i.dev_sev.display()));
    }
    Ok(SevHost { cbitpos: ebx & 0x3f, reduced_phys_bits: (ebx >> 6) & 0x3f })
}

/// This host, detected once per process.
pub fn host() -> &'static Result<SevHost, String> {
    static H: std::sync::OnceLock<Result<SevHost, String>> = std::sync::OnceLock::new();
    H.get_or_init(|| detect(&Inputs::host()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(eax: u32, ebx: u32, param: Option<&str>, dev: bool) -> (tempfile::TempDir, Inputs) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sev");
        if let Some(v) = param {
            std::fs::write(&p, v).unwrap();
        }
        let dev_sev = d.path().join("dev-sev");
        if dev {
            std::fs::write(&dev_sev, "").unwrap();
        }
        let i = Inputs {
            dev_sev,
            kvm_amd_sev: p,
            cpuid: Box::new(move |leaf| (leaf == 0x8000_001F).then_some((eax, ebx, 0, 0))),
        };
        (d, i)
    }

    #[test]
    fn an_epyc_with_sev_enabled_is_detected_with_its_c_bit() {
        // EPYC 7003: SME|SEV|SEV-ES, C-bit 51, one physical bit lost.
        let (_d, i) = fake(0x1000f, 51 | (1 << 6), Some("Y\n"), true);
        assert_eq!(detect(&i), Ok(SevHost { cbitpos: 51, reduced_phys_bits: 1 }));
    }

    #[test]
    fn each_missing_piece_is_named() {
        let (_d, i) = fake(0x1, 51, Some("Y"), true);
        assert!(detect(&i).unwrap_err().contains("does not report SEV"));
        let (_d, i) = fake(0x3, 51, Some("N"), true);
        assert!(detect(&i).unwrap_err().contains("kvm_amd has SEV off"));
        let (_d, i) = fake(0x3, 51, None, true);
        assert!(detect(&i).unwrap_err().contains("kvm_amd is not loaded"));
        let (_d, i) = fake(0x3, 51, Some("1"), false);
        assert!(detect(&i).unwrap_err().contains("dev-sev is missing"));
        let i = Inputs { dev_sev: "/x".into(), kvm_amd_sev: "/y".into(), cpuid: Box::new(|_| None) };
        assert!(detect(&i).unwrap_err().contains("no CPUID leaf 0x8000001F"));
    }
}
