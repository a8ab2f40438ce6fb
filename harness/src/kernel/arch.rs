//! Architectures as data (`kernels/arch/*.yaml`), as TuxMake does: adding
//! one is a file, not code.

use crate::failure::Result;
use crate::host::tools::Requirement;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    #[serde(skip)]
    pub name: String,
    /// ARCH= for make.
    pub kernel_arch: String,
    /// CROSS_COMPILE= for make and the prefix of the guest C compiler.
    #[serde(default)]
    pub cross_compile: String,
    /// Debian's name for the architecture: guest packages (busybox, fio,
    /// iperf3) are Debian's binaries for it.
    pub debian_arch: String,
    /// make target and where it leaves the bootable image.
    pub target: String,
    pub image: String,
    pub qemu: String,
    /// The machine a KVM probe guest boots on.
    pub probe_machine: String,
    /// The serial console device name inside the guest.
    pub console: String,
    /// How the result channel reaches the guest: QEMU arguments that attach
    /// the chardev `res` to a UART, and that UART's name in the guest.
    pub results_channel: ResultsChannel,
    /// What config base `guest` means here: tinyconfig plus these fragments
    /// (kernels/config/), in order.
    pub guest_fragments: Vec<String>,
    /// First guess at the number of compiled objects, for the progress bar
    /// until a real build of the variant has been timed.
    pub objects_estimate: u64,
    #[serde(default)]
    pub host_tools: Vec<Requirement>,
    /// Kernel command line words every guest of this architecture gets.
    #[serde(default)]
    pub cmdline: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsChannel {
    pub qemu: Vec<String>,
    pub tty: String,
}

impl Arch {
    pub fn load(root: &Path, name: &str) -> Result<Arch> {
        let (mut arch, _): (Arch, _) = crate::yaml::load_named(&root.join("kernels/arch"), "architecture", name)?;
        arch.name = name.to_string();
        Ok(arch)
    }

    /// The C compiler for guest programs and the kernel.
    pub fn gcc(&self) -> String {
        format!("{}gcc", self.cross_compile)
    }

    pub fn requirements(&self) -> Vec<Requirement> {
        self.host_tools.clone()
    }
}

/// Every architecture the project describes.
pub fn all(root: &Path) -> Result<Vec<Arch>> {
    crate::yaml::names(&root.join("kernels/arch")).iter().map(|n| Arch::load(root, n)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shipped_arches_load_and_name_their_fragments() {
        let root = crate::paths::project_root();
        let arches = super::all(&root).unwrap();
        assert_eq!(arches.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["arm64", "x86_64"]);
        for a in arches {
            for f in &a.guest_fragments {
                assert!(root.join("kernels/config").join(f).is_file(), "{}: {f}", a.name);
            }
        }
    }
}
