//! Loading a matrix: the file, then everything it names, checked, with
//! errors that point at the line.

use super::{Axis, Comparison, Matrix, MatrixFile, SeriesOnKernel, SwiotlbSetting};
use crate::failure::{Classify, Failure, Result};
use crate::guest::profile::Profile;
use crate::kernel::arch::Arch;
use crate::kernel::series::{Series, SeriesSource};
use crate::kernel::variant::Variant;
use crate::workload::Workload;
use std::collections::BTreeMap;
use std::path::Path;

/// The 1-based line of the first occurrence of `needle` in the file, so
/// semantic errors point at a line like syntax errors do.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1).unwrap_or(1)
}

/// More boots than this is a typo, and would only be found out hours later
/// (or as an allocation of billions of planned boots).
pub const MAX_REPS: u32 = 1000;

impl Matrix {
    pub fn load(root: &Path, file: &Path) -> Result<Matrix> {
        let text = std::fs::read_to_string(file).input(|| format!("cannot read {}", file.display()))?;
        let spec: MatrixFile = crate::yaml::parse(file, &text)?;
        let at =
            |needle: &str, msg: String| Failure::input(format!("{}:{}: {msg}", file.display(), line_of(&text, needle)));
        if !(1..=MAX_REPS).contains(&spec.repetitions) {
            return Err(at("repetitions", format!("repetitions must be 1 to {MAX_REPS}")));
        }
        if let Some(t) = spec.boot_timeout_s.filter(|t| !(1..=crate::guest::machine::MAX_TIMEOUT_S).contains(t)) {
            return Err(at(
                "boot_timeout_s",
                format!("boot_timeout_s: {t} is not 1 to {} seconds", crate::guest::machine::MAX_TIMEOUT_S),
            ));
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
        for k in &spec.kernels {
            let v = Variant::load(root, k).map_err(|e| at(k, e.message))?;
            variants.insert(k.clone(), v);
        }
        let mut kernels = spec.kernels.clone();
        let mut compare = spec.compare.clone();
        let mut on_kernels = Vec::new();
        let dir = file.parent().unwrap_or(Path::new("."));
        for entry in &spec.series {
            let needle = entry.path.display().to_string();
            let path = crate::kernel::variant::resolve(dir, &entry.path);
            let series = Series::load(&SeriesSource::Path(path)).map_err(|e| at(&needle, e.message))?;
            let on = if entry.on.is_empty() { spec.kernels.clone() } else { entry.on.clone() };
            for base in &on {
                let v = variants
                    .get(base)
                    .cloned()
                    .ok_or_else(|| at(base, format!("series {needle}: `on: {base}` is not a kernel of this matrix")))?;
                let mut prev = base.clone();
                let mut prefixes = Vec::new();
                for n in 1..=series.patches.len() {
                    let upto = (n < series.patches.len()).then_some(n);
                    let d = v.with_series(&series, upto);
                    prefixes.push(d.name.clone());
                    if entry.per_patch || upto.is_none() {
                        if entry.per_patch {
                            compare.push(Comparison {
                                axis: Axis::Kernel,
                                base: prev.clone(),
                                new: d.name.clone(),
                                gate: true,
                            });
                        }
                        prev = d.name.clone();
                        kernels.push(d.name.clone());
                    }
                    variants.insert(d.name.clone(), d);
                }
                let full = v.with_series(&series, None).name;
                let whole = Comparison { axis: Axis::Kernel, base: base.clone(), new: full, gate: true };
                if !compare.contains(&whole) {
                    compare.push(whole);
                }
                on_kernels.push(SeriesOnKernel { series: series.clone(), base: base.clone(), prefixes });
            }
        }
        let mut profiles = BTreeMap::new();
        let mut arches = BTreeMap::new();
        for p in &spec.profiles {
            let prof = Profile::load(root, p).map_err(|e| at(p, e.message))?;
            if !arches.contains_key(&prof.arch) {
                arches.insert(prof.arch.clone(), Arch::load(root, &prof.arch).map_err(|e| at(p, e.message))?);
            }
            profiles.insert(p.clone(), prof);
        }
        let mut workloads = BTreeMap::new();
        for w in &spec.workloads {
            let mut wl = Workload::load(root, w).map_err(|e| at(w, e.message))?;
            if let Some(over) = spec.params.get(w) {
                wl = wl.with_params(over).map_err(|e| at("params", e.message))?;
            }
            workloads.insert(w.clone(), wl);
        }
        if let Some(w) = spec.params.keys().find(|w| !spec.workloads.contains(w)) {
            return Err(at("params", format!("params: `{w}` is not a workload of this matrix")));
        }
        for (name, setting) in &spec.swiotlb {
            crate::paths::check_name("swiotlb setting", name).map_err(|e| at(name, e))?;
            let args = setting.args();
            if args.split_whitespace().any(|w| !w.starts_with("swiotlb=") && !w.starts_with("iommu=")) {
                return Err(at(
                    name,
                    format!("swiotlb setting `{name}`: expected only swiotlb=/iommu= words, found `{args}`"),
                ));
            }
            if let Some(why) = areas_problem(args) {
                return Err(at(name, format!("swiotlb setting `{name}`: {why}")));
            }
            if let SwiotlbSetting::Restricted { workloads, profiles, .. } = setting {
                if let Some(w) = workloads.iter().find(|w| !spec.workloads.contains(w)) {
                    return Err(at(name, format!("swiotlb setting `{name}`: `{w}` is not a workload of this matrix")));
                }
                if let Some(p) = profiles.iter().find(|p| !spec.profiles.contains(p)) {
                    return Err(at(name, format!("swiotlb setting `{name}`: `{p}` is not a profile of this matrix")));
                }
            }
        }
        for e in &spec.expect_fail {
            if let Err(err) = glob::Pattern::new(&e.cells) {
                return Err(at(&e.cells, format!("expect_fail: `{}` is not a glob: {err}", e.cells)));
            }
        }
        for c in &compare {
            let values: Vec<&String> = match c.axis {
                Axis::Kernel => kernels.iter().collect(),
                Axis::Profile => spec.profiles.iter().collect(),
                Axis::Workload => spec.workloads.iter().collect(),
                Axis::Swiotlb => spec.swiotlb.keys().collect(),
            };
            for v in [&c.base, &c.new] {
                if !values.contains(&v) {
                    return Err(at(v, format!("compare: `{v}` is not a value of the {} axis", c.axis)));
                }
            }
        }
        Ok(Matrix {
            file: file.to_path_buf(),
            spec,
            kernels,
            variants,
            arches,
            profiles,
            workloads,
            compare,
            series: on_kernels,
        })
    }
}

/// `swiotlb=SLABS,AREAS`: the kernel rounds an area count up to a power
/// of two and a pool up to one 128-slab segment an area (swiotlb.c,
/// round_up_default_nslabs), quietly: a cell meant to test that pool
/// would test another.
fn areas_problem(args: &str) -> Option<String> {
    let value = args.split_whitespace().find_map(|w| w.strip_prefix("swiotlb="))?;
    let mut parts = value.split(',');
    let slabs: u64 = parts.next()?.parse().ok()?;
    let areas: u64 = parts.next()?.parse().ok()?;
    if !areas.is_power_of_two() {
        return Some(format!(
            "{areas} areas: the kernel would make it {}; ask for a power of two",
            areas.max(1).next_power_of_two()
        ));
    }
    if slabs < 128 * areas {
        return Some(format!(
            "{slabs} slabs in {areas} areas is under one 128-slab segment an area: the kernel would make the pool {} slabs; ask for that",
            128 * areas
        ));
    }
    None
}
