//! The matrix: which kernels, on which guests, running what, with which
//! swiotlb boot settings, how many times, compared how.

pub mod run;

use crate::failure::{Failure, Result};
use crate::guest::profile::Profile;
use crate::kernel::arch::Arch;
use crate::kernel::variant::Variant;
use crate::results::CellKey;
use crate::workload::Workload;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    pub repetitions: u32,
    pub kernels: Vec<String>,
    pub profiles: Vec<String>,
    pub workloads: Vec<String>,
    /// Name -> extra kernel command line (empty: the kernel's default pool).
    pub swiotlb: BTreeMap<String, String>,
    #[serde(default)]
    pub compare: Vec<Comparison>,
}

/// "Put `base` and `new` side by side along `axis`, all else equal."
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub axis: String,
    pub base: String,
    pub new: String,
}

/// A loaded and checked matrix, with everything it names loaded too.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub file: PathBuf,
    pub spec: MatrixFile,
    pub variants: BTreeMap<String, Variant>,
    pub arches: BTreeMap<String, Arch>,
    pub profiles: BTreeMap<String, Profile>,
    pub workloads: BTreeMap<String, Workload>,
}

/// A cell the matrix cannot run, and why (shown by --dry-run).
#[derive(Debug, Clone)]
pub struct Skipped {
    pub key: CellKey,
    pub why: String,
}

/// The 1-based line of the first occurrence of `needle` in the file, so
/// semantic errors point at a line like syntax errors do.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1).unwrap_or(1)
}

impl Matrix {
    pub fn load(root: &Path, file: &Path) -> Result<Matrix> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::input(format!("cannot read {}: {e}", file.display())))?;
        let spec: MatrixFile = crate::yaml::parse(file, &text)?;
        let at =
            |needle: &str, msg: String| Failure::input(format!("{}:{}: {msg}", file.display(), line_of(&text, needle)));
        if spec.repetitions == 0 {
            return Err(at("repetitions", "repetitions must be at least 1".into()));
        }
        for (axis, list) in [
            ("kernels", spec.kernels.len()),
            ("profiles", spec.profiles.len()),
            ("workloads", spec.workloads.len()),
            ("swiotlb", spec.swiotlb.len()),
        ] {
            if list == 0 {
                return Err(at(axis, format!("`{axis}` is empty: the matrix would have no cells")));
            }
        }
        let mut variants = BTreeMap::new();
        let mut arches = BTreeMap::new();
        for k in &spec.kernels {
            let v = Variant::load(root, k).map_err(|e| at(k, e.message))?;
            let a = Arch::load(root, &v.arch).map_err(|e| at(k, e.message))?;
            arches.insert(v.arch.clone(), a);
            variants.insert(k.clone(), v);
        }
        let mut profiles = BTreeMap::new();
        for p in &spec.profiles {
            profiles.insert(p.clone(), Profile::load(root, p).map_err(|e| at(p, e.message))?);
        }
        let mut workloads = BTreeMap::new();
        for w in &spec.workloads {
            workloads.insert(w.clone(), Workload::load(root, w).map_err(|e| at(w, e.message))?);
        }
        for (name, args) in &spec.swiotlb {
            if args.split_whitespace().any(|w| !w.starts_with("swiotlb=") && !w.starts_with("iommu=")) {
                return Err(at(
                    name,
                    format!("swiotlb setting `{name}`: expected only swiotlb=/iommu= words, found `{args}`"),
                ));
            }
        }
        for c in &spec.compare {
            let values: Vec<&String> = match c.axis.as_str() {
                "kernel" => spec.kernels.iter().collect(),
                "profile" => spec.profiles.iter().collect(),
                "workload" => spec.workloads.iter().collect(),
                "swiotlb" => spec.swiotlb.keys().collect(),
                other => {
                    return Err(at(
                        &format!("axis: {other}"),
                        format!("compare: unknown axis `{other}` (kernel, profile, workload, swiotlb)"),
                    ))
                }
            };
            for v in [&c.base, &c.new] {
                if !values.contains(&v) {
                    return Err(at(v, format!("compare: `{v}` is not a value of the {} axis", c.axis)));
                }
            }
        }
        Ok(Matrix { file: file.to_path_buf(), spec, variants, arches, profiles, workloads })
    }

    /// Every runnable cell, ordered so that cells differing only in kernel
    /// sit next to each other (run back to back, A/B interleaved), and the
    /// combinations that cannot run with the reason.
    pub fn expand(&self) -> (Vec<CellKey>, Vec<Skipped>) {
        let mut cells = Vec::new();
        let mut skipped = Vec::new();
        for p in &self.spec.profiles {
            for w in &self.spec.workloads {
                for s in self.spec.swiotlb.keys() {
                    for k in &self.spec.kernels {
                        let key =
                            CellKey { kernel: k.clone(), profile: p.clone(), workload: w.clone(), swiotlb: s.clone() };
                        match self.why_not(&key) {
                            None => cells.push(key),
                            Some(why) => skipped.push(Skipped { key, why }),
                        }
                    }
                }
            }
        }
        (cells, skipped)
    }

    fn why_not(&self, key: &CellKey) -> Option<String> {
        let v = &self.variants[&key.kernel];
        let p = &self.profiles[&key.profile];
        let w = &self.workloads[&key.workload];
        if v.arch != p.arch {
            return Some(format!("kernel is {}, profile is {}", v.arch, p.arch));
        }
        let devices: Vec<&str> = p.devices.iter().map(|d| d.split(',').next().unwrap_or("")).collect();
        for need in &w.needs_devices {
            if !devices.contains(&need.as_str()) {
                return Some(format!("profile has no `{need}` device"));
            }
        }
        None
    }

    /// Run order: repetition-major, so a drifting host spreads over every
    /// cell instead of landing on one kernel.
    pub fn schedule(&self, cells: &[CellKey]) -> Vec<(CellKey, u32)> {
        (0..self.spec.repetitions).flat_map(|r| cells.iter().map(move |c| (c.clone(), r))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Matrix> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("matrix.yaml");
        std::fs::write(&f, text).unwrap();
        Matrix::load(&crate::paths::project_root(), &f)
            .map_err(|e| Failure::input(e.message.replace(&f.display().to_string(), "matrix.yaml")))
    }

    const GOOD: &str = "repetitions: 2\nkernels: [6.12-fixed, 6.12-dynamic]\nprofiles: [dma32]\nworkloads: [memory, dmabench]\nswiotlb:\n  default: \"\"\n  1mib: swiotlb=512,1\ncompare:\n  - {axis: kernel, base: 6.12-fixed, new: 6.12-dynamic}\n";

    #[test]
    fn expands_the_full_product_interleaving_kernels() {
        let m = load_text(GOOD).unwrap();
        let (cells, skipped) = m.expand();
        assert_eq!(cells.len(), 2 * 2 * 2);
        assert!(skipped.is_empty());
        assert_eq!(cells[0].kernel, "6.12-fixed");
        assert_eq!(cells[1].kernel, "6.12-dynamic");
        assert_eq!(cells[0].with_axis("kernel", "6.12-dynamic"), cells[1]);
        let sched = m.schedule(&cells);
        assert_eq!(sched.len(), 16);
        assert_eq!(sched[8], (cells[0].clone(), 1));
    }

    #[test]
    fn default_matrix_loads() {
        let root = crate::paths::project_root();
        let m = Matrix::load(&root, &root.join("matrix.yaml")).unwrap();
        assert!(!m.expand().0.is_empty());
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = load_text("repetitions: 2\nkernels: [6.12-fixed\n").unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:"), "{}", e.message);
        let e = load_text(&GOOD.replace("6.12-dynamic]", "6.12-dynamc]")).unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:2: unknown kernel variant `6.12-dynamc`"), "{}", e.message);
        let e = load_text(&GOOD.replace("repetitions: 2", "repetitions: two")).unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:1:14: repetitions: invalid type"), "{}", e.message);
        let e = load_text(&GOOD.replace("new: 6.12-dynamic}", "new: 6.6}")).unwrap_err();
        assert!(e.message.contains("`6.6` is not a value of the kernel axis"), "{}", e.message);
        let e = load_text(&GOOD.replace("1mib: swiotlb=512,1", "1mib: mem=1G")).unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:7: swiotlb setting `1mib`"), "{}", e.message);
        let e = load_text(&GOOD.replace("workloads: [memory, dmabench]", "workload: [memory]")).unwrap_err();
        assert!(e.message.starts_with("matrix.yaml:4:1: unknown field `workload`"), "{}", e.message);
    }
}
