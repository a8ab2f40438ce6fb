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
    /// make target and where it leaves the bootable image.
    pub target: String,
    pub image: String,
    pub qemu: String,
    /// The serial console device name inside the guest.
    pub console: String,
    /// First guess at the number of compiled objects, for the progress bar
    /// until a real build of the variant has been timed.
    pub objects_estimate: u64,
    #[serde(default)]
    pub host_tools: Vec<Requirement>,
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
