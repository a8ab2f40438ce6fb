//! Guest profiles as data (`profiles/NAME.yaml`): the machine, its devices,
//! and why DMA bounces on it.

use crate::failure::Result;
use serde::Deserialize;
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
    /// `-device` values, in order.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Extra kernel command line words.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// True when the profile imitates hardware this host lacks (SEV without
    /// an SEV host): results say so.
    #[serde(default)]
    pub emulated: bool,
}

fn default_cpu() -> String {
    "max".into()
}

impl Profile {
    pub fn load(root: &Path, name: &str) -> Result<Profile> {
        let (mut p, file): (Profile, _) = crate::yaml::load_named(&root.join("profiles"), "profile", name)?;
        p.name = name.to_string();
        p.file = file;
        Ok(p)
    }
}
